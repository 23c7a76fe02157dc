# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reseed.mariadb.checksum on real servers, with the primary taking writes throughout."""

from __future__ import annotations

import threading
import time

import pytest

import scenarios
from faults import InnoDBWatch

CHECK_USER, CHECK_PASSWORD = 'checksum', "Ch'k\\pw-42"


class Writer(threading.Thread):
    """Inserts numbered rows and updates others on the primary until stopped."""

    def __init__(self, primary):
        super().__init__(daemon=True)
        self.conn = primary.connect()
        self.stop = threading.Event()
        self.count = 0
        self.error = None

    def run(self):
        try:
            with self.conn.cursor() as cur:
                cur.execute('CREATE TABLE IF NOT EXISTS labdb.numbers '
                            '(n INT PRIMARY KEY, touched INT NOT NULL DEFAULT 0)')
                while not self.stop.is_set():
                    self.count += 1
                    cur.execute('INSERT INTO labdb.numbers (n) VALUES (%s)', [self.count])
                    cur.execute('UPDATE labdb.t SET n = n + 1 WHERE id = %s',
                                [self.count % 100 + 1])
                    time.sleep(0.002)
        except Exception as e:  # reported by the test
            self.error = e

    def finish(self):
        self.stop.set()
        self.join(30)
        self.conn.close()
        assert self.error is None, self.error
        return self.count


def io_thread_alone_fetches(primary, replica, msg):
    """A new transaction on the primary reaches the replica's relay log; its SQL thread
    stays stopped."""
    primary.sql("INSERT INTO labdb.log (msg) VALUES (%s)" % scenarios.q(msg))
    after = primary.sql_value('SELECT @@gtid_binlog_pos')
    scenarios.wait_for(lambda: replica.slave_status()['Gtid_IO_Pos'] == after, 30,
                       what='the IO thread fetching %s' % msg)
    status = replica.slave_status()
    assert (status['Slave_IO_Running'], status['Slave_SQL_Running']) == ('Yes', 'No'), status


@pytest.fixture
def checked(replicated, inventory):
    primary = replicated['primary']
    primary.sql("CREATE USER {u}@'%' IDENTIFIED BY {p}; GRANT SELECT ON *.* TO {u}@'%';".format(
        u=scenarios.q(CHECK_USER), p=scenarios.q(CHECK_PASSWORD)))
    scenarios.wait_caught_up(primary, replicated['replica'])
    replicated['args'] = {'primary': {'login_host': primary.ip, 'login_user': CHECK_USER,
                                      'login_password': CHECK_PASSWORD}}
    return replicated


def test_equal_while_the_primary_takes_writes(checked, run_module):
    primary, replica = checked['primary'], checked['replica']
    writer = Writer(primary)
    writer.start()
    time.sleep(1)
    res = run_module(checked['inventory'], replica.name, 'checksum', checked['args'])
    during = writer.count
    time.sleep(0.5)
    total = writer.finish()
    assert not res.failed, res.result
    assert res['equal'] is True and res['changed'] is False
    assert res['tables'] >= 3 and not res['mismatches']
    assert set(res['checksums']) >= {'labdb.t', 'labdb.log', 'labdb.numbers'}
    assert res['gtid'].startswith('0-%d-' % primary.server_id)
    assert 0 < res['checksums']['labdb.numbers']['rows'] <= during
    assert CHECK_PASSWORD not in res.stdout and CHECK_PASSWORD not in str(res.result)
    # Replication resumed and got every numbered row.
    status = scenarios.wait_running(replica)
    assert status['Until_Condition'] == 'None'
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.numbers') == str(total)


def test_threads_resume_as_found_with_no_until_left(checked, run_module):
    """A GTID UNTIL is also sent to the primary by the IO thread when it connects: an IO
    thread started alone after the check, with the UNTIL still set, stops at once. The SQL
    thread paused by a DBA stays paused; the IO thread keeps fetching past the check."""
    primary, replica = checked['primary'], checked['replica']
    # A heartbeat period of the DBA's own, which a CHANGE MASTER naming none would reset.
    replica.sql('STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 7.5; START SLAVE IO_THREAD')
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('before the check')")
    res = run_module(checked['inventory'], replica.name, 'checksum', checked['args'])
    assert not res.failed, res.result
    assert res['equal'] is True
    status = replica.slave_status()
    assert (status['Slave_SQL_Running'], status['Until_Condition']) == ('No', 'None'), status
    assert status['Slave_IO_Running'] in ('Yes', 'Connecting', 'Preparing'), status
    applied = replica.sql_value('SELECT @@gtid_slave_pos')
    assert applied == res['gtid'], (applied, res['gtid'])
    io_thread_alone_fetches(primary, replica, 'after the check')
    assert replica.sql_value('SELECT @@gtid_slave_pos') == applied
    head, row = replica.run(['mariadb', '--batch', '-e', 'SHOW ALL SLAVES STATUS']).stdout.splitlines()
    heartbeat = dict(zip(head.split('\t'), row.split('\t')))['Slave_heartbeat_period']
    assert float(heartbeat) == 7.5, heartbeat
    # Both running: one START SLAVE, nothing left of the UNTIL.
    replica.sql('START SLAVE SQL_THREAD')
    scenarios.wait_caught_up(primary, replica)
    res = run_module(checked['inventory'], replica.name, 'checksum', checked['args'])
    assert not res.failed, res.result
    assert replica.slave_status()['Until_Condition'] == 'None'
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('after the second check')")
    scenarios.wait_caught_up(primary, replica)
    status = replica.slave_status()
    assert (status['Slave_IO_Running'], status['Slave_SQL_Running']) == ('Yes', 'Yes'), status


def test_a_changed_row_on_the_replica_is_found(checked, run_module):
    replica = checked['replica']
    replica.sql("SET SESSION sql_log_bin=0; UPDATE labdb.t SET v='tampered' WHERE id=42;")
    res = run_module(checked['inventory'], replica.name, 'checksum', checked['args'])
    assert res.failed
    assert [m['table'] for m in res['mismatches']] == ['labdb.t']
    assert '1 of' in res['msg'] and 'labdb.t' in res['msg']
    scenarios.wait_running(replica)
    res = run_module(checked['inventory'], replica.name, 'checksum',
                     dict(checked['args'], fail_on_mismatch=False, databases=['labdb']))
    assert not res.failed and res['equal'] is False


def test_the_same_change_missing_on_two_rows_is_found(checked, run_module):
    """Two rows that missed the same change: with a linear hash (CRC32, as in
    pt-table-checksum's default) their differences cancel in the XOR fold
    (CRC32('10#open...') ^ CRC32('11#open...') == CRC32('10#done...') ^ CRC32('11#done...'));
    with MD5 they do not."""
    primary, replica = checked['primary'], checked['replica']
    primary.sql("UPDATE labdb.t SET v = 'open', n = 5 WHERE id IN (10, 11)")
    scenarios.wait_caught_up(primary, replica)
    replica.sql("SET SESSION sql_log_bin=0; UPDATE labdb.t SET v = 'done' WHERE id IN (10, 11);")
    res = run_module(checked['inventory'], replica.name, 'checksum',
                     dict(checked['args'], fail_on_mismatch=False, databases=['labdb']))
    assert not res.failed and res['equal'] is False, res.result
    assert [m['table'] for m in res['mismatches']] == ['labdb.t']


def test_file_position_replica_and_non_transactional_tables(checked, run_module):
    primary, replica = checked['primary'], checked['replica']
    primary.sql('CREATE TABLE labdb.legacy (i INT) ENGINE=MyISAM; INSERT INTO labdb.legacy VALUES (1);')
    scenarios.wait_caught_up(primary, replica)
    replica.sql('STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID=no; START SLAVE;')
    assert replica.slave_status()['Using_Gtid'] == 'No'
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('file/pos')")
    res = run_module(checked['inventory'], replica.name, 'checksum', checked['args'])
    assert not res.failed, res.result
    assert res['equal'] and 'labdb.legacy' in res['skipped_tables']
    assert res['binlog_file'].startswith('mysql-bin.') and res['binlog_pos'] > 0
    assert scenarios.wait_running(replica)['Using_Gtid'] == 'No'


def test_broken_replica_is_refused_and_left_as_it_was(checked, run_module):
    primary, replica = checked['primary'], checked['replica']
    scenarios.break_1062(primary, replica)
    res = run_module(checked['inventory'], replica.name, 'checksum', checked['args'])
    assert res.failed and 'SQL error 1062' in res['msg'] and 'heal it' in res['msg']
    status = replica.slave_status()
    assert status['Last_SQL_Errno'] == '1062' and status['Slave_IO_Running'] == 'Yes'


def test_password_in_no_argv_and_not_in_output_at_vvvv(checked, run_module):
    from secrets_watch import SecretsWatch
    with SecretsWatch([CHECK_PASSWORD]) as watch:
        res = run_module(checked['inventory'], checked['replica'].name, 'checksum',
                         checked['args'], verbosity=4)
    assert not res.failed, res.result
    assert watch.samples > 10 and len(watch.processes_seen) > 10
    assert watch.leaks == []
    assert CHECK_PASSWORD not in res.stdout + res.stderr
    assert CHECK_PASSWORD not in str(res.result)


def test_phases_pause_primary_compare_while_the_primary_takes_writes(checked, run_module):
    """A fleet's check, on one replica: paused, the primary scanned (by itself, without the
    replica), compared at the scan's GTID; replication resumed with no UNTIL left."""
    primary, replica = checked['primary'], checked['replica']
    writer = Writer(primary)
    writer.start()
    time.sleep(1)
    paused = run_module(checked['inventory'], replica.name, 'checksum', {'phase': 'pause'})
    assert not paused.failed, paused.result
    assert paused['paused']['threads'] == ['IO_THREAD', 'SQL_THREAD']
    stopped = replica.slave_status()
    assert (stopped['Slave_IO_Running'], stopped['Slave_SQL_Running']) == ('No', 'No'), stopped
    scan = run_module(checked['inventory'], replica.name, 'checksum',
                      dict(checked['args'], phase='primary'))
    assert not scan.failed, scan.result
    assert scan['scan']['gtid'].startswith('0-%d-' % primary.server_id)
    rows = dict((table, n) for table, n, checksum in scan['scan']['checksums'])
    assert rows['labdb.t'] == 100 and rows['labdb.numbers'] > 0, rows
    assert CHECK_PASSWORD not in scan.stdout and CHECK_PASSWORD not in str(scan.result)
    res = run_module(checked['inventory'], replica.name, 'checksum', {
        'phase': 'compare', 'paused': paused['paused'], 'primary_scan': scan['scan']})
    total = writer.finish()
    assert not res.failed, res.result
    assert res['equal'] is True and res['resumed'] is True and res['gtid'] == scan['gtid']
    assert res['replica_paused_seconds'] >= res['seconds'] > 0
    assert not any(q.startswith('SELECT BINLOG_GTID_POS') for q in res['queries'])
    status = scenarios.wait_running(replica)
    assert status['Until_Condition'] == 'None'
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.numbers') == str(total)


def test_phases_resume_as_found_after_a_failed_compare_or_none(checked, run_module):
    """A compare that finds a difference still resumes; a replica paused whose compare never
    ran is resumed by phase resume: the SQL thread a DBA had stopped stays stopped."""
    primary, replica = checked['primary'], checked['replica']
    replica.sql("SET SESSION sql_log_bin=0; UPDATE labdb.t SET v='tampered' WHERE id=7;")
    paused = run_module(checked['inventory'], replica.name, 'checksum', {'phase': 'pause'})
    scan = run_module(checked['inventory'], replica.name, 'checksum',
                      dict(checked['args'], phase='primary'))
    res = run_module(checked['inventory'], replica.name, 'checksum', {
        'phase': 'compare', 'paused': paused['paused'], 'primary_scan': scan['scan']})
    assert res.failed and res['resumed'] is True
    assert [m['table'] for m in res['mismatches']] == ['labdb.t']
    scenarios.wait_running(replica)
    replica.sql('STOP SLAVE SQL_THREAD')
    paused = run_module(checked['inventory'], replica.name, 'checksum', {'phase': 'pause'})
    assert paused['paused']['threads'] == ['IO_THREAD']
    res = run_module(checked['inventory'], replica.name, 'checksum',
                     {'phase': 'resume', 'paused': paused['paused']})
    assert not res.failed and res['resumed'] is True, res.result
    io_thread_alone_fetches(primary, replica, 'after the resume')


BIG_ROWS = 200000


def test_chunks_find_one_row_under_writes_in_short_snapshots(checked, run_module):
    """A table of 200,000 rows (CI's size; bench/ has 1 GB) with one row changed on the
    replica, the primary taking writes: the check finds that table and the one chunk that
    holds the row, with no read view on the primary older than the bound (sampled every
    0.5 s) and the history list flat; a table without a primary key is checked whole, named."""
    primary, replica = checked['primary'], checked['replica']
    primary.sql('CREATE TABLE labdb.big (id INT PRIMARY KEY, a CHAR(32), b INT) ENGINE=InnoDB; '
                'INSERT INTO labdb.big SELECT seq, MD5(seq), seq %% 977 FROM seq_1_to_%d; '
                'CREATE TABLE labdb.nokey (v INT) ENGINE=InnoDB; '
                'INSERT INTO labdb.nokey SELECT seq FROM seq_1_to_50' % BIG_ROWS, database='labdb')
    scenarios.wait_caught_up(primary, replica, timeout=120)
    replica.sql("SET SESSION sql_log_bin=0; UPDATE labdb.big SET a='tampered' WHERE id=123457;")
    bound = 2.0
    writer, watch = Writer(primary), InnoDBWatch(primary)
    writer.start()
    time.sleep(1)
    watch.start()
    res = run_module(checked['inventory'], replica.name, 'checksum', dict(
        checked['args'], fail_on_mismatch=False, chunk_seconds=0.02, max_snapshot_seconds=bound))
    watch.finish()
    total = writer.finish()
    assert not res.failed, res.result
    assert res['equal'] is False and [m['table'] for m in res['mismatches']] == ['labdb.big']
    assert len(res['mismatched_chunks']) == 1, res['mismatched_chunks']
    chunk = res['mismatched_chunks'][0]
    assert chunk['table'] == 'labdb.big' and chunk['primary_rows'] == chunk['replica_rows']
    assert (chunk['lower'] is None or chunk['lower'][0] < 123457) and \
        (chunk['upper'] is None or chunk['upper'][0] >= 123457), chunk
    # and in it, the row: its rows read again on both sides at one later position.
    assert (chunk['rows'], chunk['rows_differing']) == ([[123457]], 1), chunk
    assert res['rounds'] >= 3 and res['chunks'] > res['rounds'], (res['rounds'], res['chunks'])
    assert list(res['unchunked_tables']) == ['labdb.nokey'], res['unchunked_tables']
    # No read view on the primary lived past the bound (the writer's transactions are short).
    assert res['primary_snapshot_seconds'] <= bound + 0.5, res['primary_snapshot_seconds']
    # INNODB_TRX's trx_started is to the second: a sample may read up to 1 s more.
    assert len(watch.ages) >= 4 and max(watch.ages) <= bound + 1.0, watch.ages
    assert max(watch.history) - min(watch.history) < 2000, watch.history
    # Replication was held for a round at a time, and resumed with every row.
    assert res['replica_hold_seconds'] <= bound + 3, res['replica_hold_seconds']
    status = scenarios.wait_running(replica)
    assert status['Until_Condition'] == 'None'
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.numbers') == str(total)
    print('chunks: %d rounds, %d chunks, longest snapshot %.2f s (sampled %.2f s), '
          'longest hold %.2f s, history %d..%d' % (
              res['rounds'], res['chunks'], res['primary_snapshot_seconds'], max(watch.ages),
              res['replica_hold_seconds'], min(watch.history), max(watch.history)))
