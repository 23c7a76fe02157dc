# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mountpoint: the datadir is still its own mount point; the copy came in and the old data
went aside inside it, where the server does not see a database."""

import labstate

testinfra_hosts = labstate.rebuilt_names()


def test_the_datadir_is_still_its_own_mount_point(host):
    assert labstate.datadir_is_mount_point(host)
    kept = labstate.kept_old_datadirs(host)
    assert [k.rsplit('/', 1)[0] for k in kept] == [labstate.datadir(host)], kept


def test_the_kept_datadir_is_not_a_database(host):
    databases = [row[0] for row in labstate.sql(host, 'SHOW DATABASES')]
    assert not [d for d in databases if 'reseed' in d], databases
