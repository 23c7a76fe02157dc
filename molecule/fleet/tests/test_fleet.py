# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet: the four replicas were healed from ONE backup, each breakage undone. The checks
every rebuilt replica passes (threads, data equal to the primary's, old datadir kept, no
trace of the transfer) are in molecule/shared/tests/test_rebuilt.py."""

import labstate


def backup_info(host):
    """The copy's own record of the backup it came from (mariadb-backup writes it into the
    copy, and the swap keeps it in the new datadir): {key: value}."""
    datadir = labstate.datadir(host)
    name = next(n for n in ('mariadb_backup_info', 'xtrabackup_info')
                if host.file('%s/%s' % (datadir, n)).exists)
    lines = host.file('%s/%s' % (datadir, name)).content_string.splitlines()
    return dict(line.split(' = ', 1) for line in lines if ' = ' in line)


def test_one_backup_for_the_four_replicas():
    """Every rebuilt replica's copy is the same backup: one uuid, one start time, one
    position, made on the primary (not on a replica)."""
    names = labstate.rebuilt_names()
    assert len(names) == 4, names
    infos = [backup_info(labstate.get(name)) for name in names]
    for key in ('uuid', 'start_time', 'binlog_pos'):
        assert len(set(info[key] for info in infos)) == 1, (key, [i.get(key) for i in infos])
    primary_id = labstate.sql_value(labstate.primary(), 'SELECT @@server_id')
    assert ('-%s-' % primary_id) in infos[0]['binlog_pos'], infos[0]['binlog_pos']


def test_each_breakage_is_undone():
    for kind in ('1236', '1062', '1032', 'errant'):
        labstate.assert_breakage_undone(kind)
