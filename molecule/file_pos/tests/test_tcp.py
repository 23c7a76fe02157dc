# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_pos streams over tcp: the receiver (backup_receive, started by Ansible in the
background) is gone once the copy is in: no process of it, nothing listening on the transfer
port."""

import labstate

testinfra_hosts = labstate.rebuilt_names()


def test_the_scenario_streams_over_plain_tcp(host):
    assert labstate.var(host, 'replica_rebuild_transport') == 'tcp'


def test_nothing_listens_on_the_transfer_port(host):
    port = labstate.var(host, 'replica_rebuild_port', labstate.role_default('replica_rebuild_port'))
    assert labstate.listening_ports(host), 'ss listed no listening socket at all'
    assert port not in labstate.listening_ports(host)


def test_no_receiver_runs(host):
    assert labstate.processes(host, 'backup_receive') == []
