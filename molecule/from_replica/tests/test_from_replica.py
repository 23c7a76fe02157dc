# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""from_replica: the donor gave its copy and still replicates, untouched."""

import labstate

testinfra_hosts = labstate.healthy_names()


def test_the_donor_is_the_source_of_the_rebuilt_replica():
    (name,) = labstate.rebuilt_names()
    assert labstate.var(name, 'replica_rebuild_source') == testinfra_hosts[0]


def test_the_donor_still_replicates(host):
    status = labstate.assert_replicating(host)
    assert status['Using_Gtid'] == 'Slave_Pos'
    labstate.assert_same_data_as_primary(host)


def test_the_donor_kept_its_datadir(host):
    assert labstate.kept_old_datadirs(host) == []
