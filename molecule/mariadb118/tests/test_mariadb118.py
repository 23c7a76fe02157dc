# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mariadb118: every host runs MariaDB 11.8; the rebuilt replicas run 11.8 on a copy made
by 11.8's mariadb-backup, and the breakages are undone. The checks every rebuilt replica
passes are in molecule/shared/tests/test_rebuilt.py."""

import labstate

testinfra_hosts = labstate.rebuilt_names()


def test_every_host_runs_mariadb_11_8_and_python_3_13():
    for name in labstate.all_names():
        host = labstate.get(name)
        assert labstate.sql_value(host, 'SELECT @@version').startswith('11.8.'), name
        assert host.check_output('python3 -c "import sys; print(sys.version_info[:2])"') == \
            '(3, 13)', name


def test_the_copy_was_made_by_mariadb_backup_11_8(host):
    """11.8's mariadb-backup names its metadata mariadb_backup_* (10.11: xtrabackup_*)."""
    datadir = labstate.datadir(host)
    info = host.file(datadir + '/mariadb_backup_info')
    assert info.is_file
    assert 'server_version = 11.8.' in info.content_string
    assert host.file(datadir + '/mariadb_backup_checkpoints').is_file
    assert not host.file(datadir + '/xtrabackup_checkpoints').exists


def test_the_breakages_are_undone():
    for kind in ('1236', '1062'):
        labstate.assert_breakage_undone(kind)
