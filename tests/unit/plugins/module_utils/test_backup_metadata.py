# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.reseed.mariadb.plugins.module_utils import backup_metadata as bm

gtids = st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1),
                           st.integers(1, 2**63 - 1)), min_size=0, max_size=5).map(
    lambda items: ','.join('%d-%d-%d' % t for t in items))


BINLOG_NAMES = st.from_regex(r'[a-z][a-z0-9_-]{0,20}\.[0-9]{6}', fullmatch=True)


@given(gtids, st.integers(4, 2**40), BINLOG_NAMES)
def test_binlog_info_round_trip(gtid, pos, name):
    info = bm.parse_binlog_info('%s\t%d\t%s\n' % (name, pos, gtid))
    assert info == {'binlog_file': name, 'binlog_pos': pos, 'gtid': gtid}


def test_real_10_11_file_and_variants():
    assert bm.parse_binlog_info('mysql-bin.000001\t817\t0-10-3\n') == {
        'binlog_file': 'mysql-bin.000001', 'binlog_pos': 817, 'gtid': '0-10-3'}
    assert bm.parse_binlog_info('mysql-bin.000002\t4\t\n')['gtid'] == ''
    assert bm.parse_binlog_info('mysql-bin.000002\t1234')['gtid'] == ''
    assert bm.parse_binlog_info('b.000009\t99\t0-1-13,5-1-1')['gtid'] == '0-1-13,5-1-1'


@pytest.mark.parametrize('text,message', [
    ('', 'expected one line'),
    ('a\t1\nb\t2\n', 'found 2'),
    ('mysql-bin.000001\tabc\t0-1-1', "position 'abc' is not a number"),
    ('mysql-bin.000001\t2\t', 'before the first event'),
    ('mysql-bin.000001\t100\t0-1', 'is not a GTID list'),
    ('onlyonefield', 'expected "file<TAB>position<TAB>gtid"'),
])
def test_malformed_binlog_info(text, message):
    with pytest.raises(bm.MetadataError, match=message) as err:
        bm.parse_binlog_info(text, 'mariadb_backup_binlog_info')
    assert str(err.value).startswith('mariadb_backup_binlog_info: ')


def test_slave_info_gtid_and_file_position():
    gtid = bm.parse_slave_info("SET GLOBAL gtid_slave_pos = '0-1-13,1-2-50';\n"
                               "CHANGE MASTER TO master_use_gtid = slave_pos;\n")
    assert gtid == {'gtid_slave_pos': '0-1-13,1-2-50', 'master_log_file': None,
                    'master_log_pos': None, 'use_gtid': 'slave_pos'}
    fp = bm.parse_slave_info("CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000007', "
                             "MASTER_LOG_POS=4711;\n")
    assert (fp['master_log_file'], fp['master_log_pos'], fp['gtid_slave_pos']) == \
        ('mysql-bin.000007', 4711, None)
    with pytest.raises(bm.MetadataError, match='no "SET GLOBAL'):
        bm.parse_slave_info('garbage')
    with pytest.raises(bm.MetadataError, match='go together'):
        bm.parse_slave_info("CHANGE MASTER TO MASTER_LOG_FILE='x.000001';")


def test_checkpoints():
    cp = bm.parse_checkpoints('backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44404\n')
    assert cp['backup_type'] == 'full-backuped' and not bm.is_prepared(cp)
    assert bm.is_prepared(bm.parse_checkpoints('backup_type = log-applied\n'))
    with pytest.raises(bm.MetadataError, match='no backup_type'):
        bm.parse_checkpoints('from_lsn = 0\n')
    with pytest.raises(bm.MetadataError, match='line 2'):
        bm.parse_checkpoints('backup_type = x\nnonsense\n')


def test_files_are_found_under_both_names_newer_first(tmp_path):
    (tmp_path / 'xtrabackup_binlog_info').write_text('old.000001\t4\t\n')
    assert bm.read(str(tmp_path), 'binlog_info', bm.parse_binlog_info)['binlog_file'] == \
        'old.000001'
    (tmp_path / 'mariadb_backup_binlog_info').write_text('new.000001\t4\t\n')
    assert bm.read(str(tmp_path), 'binlog_info', bm.parse_binlog_info)['binlog_file'] == \
        'new.000001'
    assert bm.read(str(tmp_path), 'slave_info', bm.parse_slave_info, required=False) is None
    with pytest.raises(bm.MetadataError, match='not a complete mariadb-backup copy'):
        bm.read(str(tmp_path), 'checkpoints', bm.parse_checkpoints)


def test_completeness(tmp_path):
    assert bm.completeness_problems(str(tmp_path / 'nope')) == [
        '%s does not exist' % (tmp_path / 'nope')]
    problems = bm.completeness_problems(str(tmp_path))
    assert len(problems) == 3
    (tmp_path / 'xtrabackup_checkpoints').write_text('backup_type = full-backuped\n')
    (tmp_path / 'xtrabackup_info').write_text('tool_name = mariadb-backup\n')
    (tmp_path / bm.RECEIVED_MARKER).write_text('')
    assert bm.completeness_problems(str(tmp_path)) == []


def test_a_legacy_compressed_copy_counts_as_whole(tmp_path):
    # mariadb-backup --compress writes xtrabackup_info.qp; the checkpoints stay plain.
    for name in ('xtrabackup_checkpoints', 'xtrabackup_info.qp', bm.RECEIVED_MARKER):
        (tmp_path / name).write_text('x')
    assert bm.completeness_problems(str(tmp_path)) == []
    (tmp_path / 'xtrabackup_info.qp').unlink()
    assert any('no xtrabackup_info' in p for p in bm.completeness_problems(str(tmp_path)))
