# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/binlog.py on real binlog files of MariaDB 10.11 (fixtures/binlog), made on lab
hosts with scenarios.lose_binlog_tail and scenarios.overtake: a primary (server_id 10) that
wrote 0-10-1..4 (CREATE TABLE labdb.small, INSERT of 2 rows, UPDATE, DELETE) in
mysql-bin.000001, rotated (FLUSH BINARY LOGS) into .000002 (0-10-5, an INSERT), wrote
3 more that replica `diverged` received (0-10-6..8, labdb.log), crashed and came back from a
cold copy at 0-10-5 (.000003, created at startup) and wrote 5 other transactions
0-10-6..10 (labdb.log); `diverged` then went on from 0-10-9 without an error; `healthy` (its
IO thread stopped through the crash) holds the primary's 0-10-1..10. Both replicas log with
log_slave_updates into one file each."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import struct

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import binlog
from ansible_collections.reseed.mariadb.plugins.module_utils import gtid as gtidlib

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'binlog')


def server(name):
    directory = os.path.join(FIXTURES, name)
    return binlog.Binlog(sorted(os.listdir(directory)), directory)


def test_the_heads_say_which_file_a_start_opened_and_with_which_state():
    heads = server('primary').heads
    assert [(h['file'], h['created_at_startup'], h['gtid_list'], h['first_gtid'])
            for h in heads] == [
        ('mysql-bin.000001', True, '', '0-10-1'),       # the server's very first start
        ('mysql-bin.000002', False, '0-10-4', '0-10-5'),  # FLUSH BINARY LOGS
        ('mysql-bin.000003', True, '0-10-5', '0-10-6')]   # the restart after the crash


def test_only_a_restart_after_earlier_history_is_where_a_divergence_can_start():
    restarts = server('primary').restarts()
    assert [(r['file'], r['first_gtid']) for r in restarts] == [('mysql-bin.000003', '0-10-6')]
    fp = restarts[0]['fingerprint']
    assert (fp['gtid'], fp['file'], fp['tables']) == ('0-10-6', 'mysql-bin.000003', ['labdb.log'])


@pytest.mark.parametrize('gtid', [(0, 10, 1), (0, 10, 2), (0, 10, 3), (0, 10, 4), (0, 10, 5)])
def test_the_same_transaction_has_the_same_fingerprint_on_another_server(gtid):
    # Other positions, table ids and Xids on the replica; the same transaction.
    fp_primary = server('primary').fingerprint(gtid)[0]
    for name in ('healthy', 'diverged'):
        fp_replica = server(name).fingerprint(gtid)[0]
        assert binlog.compare(fp_primary, fp_replica) is None, (name, fp_primary, fp_replica)
        assert fp_replica['digest'] == fp_primary['digest']


def test_the_kinds_of_change_are_told_apart():
    primary = server('primary')
    fps = [primary.fingerprint((0, 10, n))[0] for n in (1, 2, 3, 4)]
    # The DDL is a statement, run without a default database ('-').
    assert [f['tables'] for f in fps] == [['-'], ['labdb.small'], ['labdb.small'],
                                          ['labdb.small']]
    assert len(set(f['shape'] for f in fps)) == 4  # a statement, an insert, an update, a delete
    assert len(set(f['digest'] for f in fps)) == 4


def test_a_reused_number_is_another_transaction():
    fp_primary = server('primary').fingerprint((0, 10, 6))[0]
    fp_diverged = server('diverged').fingerprint((0, 10, 6))[0]
    fp_healthy = server('healthy').fingerprint((0, 10, 6))[0]
    assert binlog.compare(fp_primary, fp_healthy) is None
    why = binlog.compare(fp_primary, fp_diverged)
    assert why.startswith("the primary's was written at %s, this replica's at %s" % (
        fp_primary['written'], fp_diverged['written'])), why


def test_same_time_and_tables_other_rows_differ_and_other_shapes_only_compare_time():
    base = dict(timestamp=1, written='t', tables=['db.t'], shape='s', digest='a')
    assert binlog.compare(base, dict(base, digest='b')) == \
        'both were written at t in db.t, with other rows'
    # ROW on one side, STATEMENT (or another binlog_row_image) on the other: time and tables.
    assert binlog.compare(base, dict(base, shape='other', digest='b')) is None
    assert binlog.compare(base, dict(base, tables=['db.u'])) == \
        "the primary's changed db.t, this replica's db.u"


def fingerprints(name, gtids, log_slave_updates=True, log_bin=True):
    s = server(name)
    # The state and position the fixtures' servers had.
    state = {'primary': '0-10-10', 'healthy': '0-10-10', 'diverged': '0-10-10'}[name]
    return binlog.fingerprints(s if log_bin else None, gtids, gtidlib.state(state),
                               gtidlib.position(state), log_slave_updates)


def test_same_gtid_finds_the_first_reused_number_and_names_the_restart():
    primary = server('primary')
    restarts = primary.restarts()
    asked = [r['first_gtid'] for r in restarts]
    got = binlog.same_gtid(restarts, {}, fingerprints('diverged', asked))
    assert got['diverged'] == '0-10-6' and got['checked'] == ['0-10-6'], got
    assert got['reason'].startswith('same GTID, other transaction: 0-10-6 on the primary is not '
                                    '0-10-6 here: '), got
    assert got['reason'].endswith('(the primary restarted at 0-10-5, binlog mysql-bin.000003, '
                                  'behind this replica, and reused the numbers)'), got
    healthy = binlog.same_gtid(restarts, {}, fingerprints('healthy', asked))
    assert (healthy['diverged'], healthy['checked'], healthy['unchecked']) == \
        (None, ['0-10-6'], [])


def test_a_stopped_replicas_last_transaction_is_compared_too():
    # The replica's last GTID, fingerprinted on both: 0-10-8 is the diverged one's own.
    primary_fps = fingerprints('primary', ['0-10-8'])
    got = binlog.same_gtid([], primary_fps, fingerprints('diverged', ['0-10-8']))
    assert got['diverged'] == '0-10-8' and 'restarted' not in got['reason'], got


def test_what_cannot_be_compared_is_said_only_when_the_replica_cannot_log_it():
    restarts = server('primary').restarts()
    off = fingerprints('healthy', ['0-10-6'], log_slave_updates=False)
    # The fixture's binlog does hold it; a server with log_slave_updates off would not.
    off['0-10-6'].update(found=False, reason='not in this server\'s binlog (log_slave_updates '
                         'is OFF: what it applies is not logged)')
    got = binlog.same_gtid(restarts, {}, off, log_slave_updates=False)
    assert got['diverged'] is None and got['checked'] == []
    assert got['unchecked'] == ['0-10-6: not in this server\'s binlog (log_slave_updates is '
                                'OFF: what it applies is not logged)'], got
    no_binlog = fingerprints('healthy', ['0-10-6'], log_bin=False)
    assert no_binlog['0-10-6'] == dict(gtid='0-10-6', held=True, found=False,
                                       reason='this server has no binlog (log_bin is OFF)')
    assert binlog.same_gtid(restarts, {}, no_binlog)['unchecked'] == [
        '0-10-6: this server has no binlog (log_bin is OFF)']


def test_a_gtid_the_replica_never_applied_or_logged_before_its_binlog_is_not_a_finding():
    # A replica rebuilt from a copy after the restart: it applied 0-10-6 (the copy) but its
    # binlog starts later. Not checked, and not reported: the copy came from the primary.
    s = binlog.Binlog(['mysql-bin.000003'], os.path.join(FIXTURES, 'primary'))
    got = binlog.fingerprints(s, ['0-10-2', '0-10-11'], gtidlib.state('0-10-10'),
                              gtidlib.position('0-10-10'))
    assert got['0-10-2']['found'] is False and 'older than this server' in got['0-10-2']['reason']
    assert got['0-10-11']['held'] is False and got['0-10-11']['found'] is False
    assert binlog.same_gtid([], {'0-10-2': dict(found=True, fingerprint={})}, got)['unchecked'] == []


def test_a_file_being_written_is_read_up_to_its_last_whole_event(tmp_path):
    source = os.path.join(FIXTURES, 'primary', 'mysql-bin.000003')
    cut = tmp_path / 'mysql-bin.000003'
    with open(source, 'rb') as f:
        data = f.read()
    cut.write_bytes(data[:-10])
    whole = binlog.BinlogFile(source)
    partial = binlog.BinlogFile(str(cut))
    assert len(list(partial.events())) == len(list(whole.events())) - 1
    assert partial.head() == whole.head()


def test_not_a_binlog_and_an_encrypted_one_fail_with_the_reason(tmp_path):
    bad = tmp_path / 'mysql-bin.000009'
    bad.write_bytes(b'hello world, not a binlog')
    with pytest.raises(binlog.BinlogError, match='is not a binlog file'):
        binlog.BinlogFile(str(bad)).head()
    source = os.path.join(FIXTURES, 'primary', 'mysql-bin.000001')
    with open(source, 'rb') as f:
        data = f.read()
    fde_size = struct.unpack_from('<I', data, 4 + 9)[0]
    encryption = struct.pack('<IBIIIH', 0, binlog.START_ENCRYPTION, 10, 19 + 17 + 4, 0, 0)
    enc = tmp_path / 'mysql-bin.000010'
    enc.write_bytes(data[:4 + fde_size] + encryption + b'\0' * 21)
    with pytest.raises(binlog.BinlogError, match='encrypted'):
        binlog.BinlogFile(str(enc)).head()


def test_a_gtid_that_is_not_one_is_refused():
    with pytest.raises(binlog.BinlogError, match='is not a GTID'):
        binlog.parse_text('0-10')


def test_bytes_read_are_counted(tmp_path):
    shutil.copy(os.path.join(FIXTURES, 'primary', 'mysql-bin.000002'), str(tmp_path))
    s = binlog.Binlog(['mysql-bin.000002'], str(tmp_path))
    assert 0 < s.bytes_read <= os.path.getsize(str(tmp_path / 'mysql-bin.000002'))
