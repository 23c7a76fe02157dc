# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""source_watch: the copy's own waiting session is told from another backup's, what it
waits for is named longest first, and the watch stops the copy past its limit."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

from ansible_collections.reseed.mariadb.plugins.module_utils import source_watch as bl


def row(id_, info, time_, state='', user='root'):
    return dict(ID=id_, USER=user, HOST='localhost', COMMAND='Query', TIME=time_,
                STATE=state, INFO=info)


# Measured on 10.11.19: another session in BACKUP STAGE START (then SLEEP), ours waiting.
OTHER_HOLDS = [row(61, 'SELECT SLEEP(15)', 10, 'User sleep'),
               row(63, 'BACKUP STAGE START', 9, 'Waiting for backup lock')]


def test_the_copys_own_waiting_session_is_found_and_an_older_one_is_not_ours():
    assert bl.copy_waiting(OTHER_HOLDS, 'root', 12)['ID'] == 63
    # Started waiting before our copy began: another backup's, not ours.
    assert bl.copy_waiting(OTHER_HOLDS, 'root', 3) is None
    assert bl.copy_waiting(OTHER_HOLDS, 'backup', 12) is None  # another account's
    running = [row(63, 'BACKUP STAGE BLOCK_COMMIT', 0, 'starting')]
    assert bl.copy_waiting(running, 'root', 5) is None  # not waiting


def test_blockers_name_other_backups_and_ddl_longest_first_with_processes():
    rows = OTHER_HOLDS + [
        row(70, 'ALTER TABLE shop.orders ADD COLUMN c INT, ALGORITHM=COPY', 63, 'copy to tmp table'),
        row(71, 'FLUSH TABLES WITH READ LOCK', 120, 'Waiting for table flush', user='dump'),
        row(72, 'SELECT * FROM shop.orders', 500, 'Sending data')]
    found = bl.likely_blockers(rows, 63, [(4242, 'mariadb-backup', 312)])
    assert found == [
        'another backup: session 71 of dump, FLUSH TABLES WITH READ LOCK, running 120 s',
        'DDL: session 70 of root, ALTER TABLE shop.orders ADD COLUMN c INT, ALGORITHM=COPY, '
        'running 63 s',
        'another backup: mariadb-backup (pid 4242 on the source), running 312 s']


def test_the_preflight_names_only_ddl_that_has_run_a_while(monkeypatch):
    # This host's own backups (a lab's, while these tests run) are not this test's.
    monkeypatch.setattr(bl, 'backup_processes', lambda parent=None: [])
    rows = [row(70, 'ALTER TABLE shop.orders ADD COLUMN c INT', 12, 'copy to tmp table'),
            row(71, 'ALTER TABLE shop.items ADD COLUMN c INT', 3, 'copy to tmp table'),
            row(72, 'BACKUP STAGE START', 1, 'Waiting for backup lock', user='dump')]
    found = bl.preflight_blockers(rows)
    assert [f.split(',')[0] for f in found] == ['DDL: session 70 of root',
                                                'another backup: session 72 of dump']


def test_the_note_names_the_stage_the_wait_and_what_queues_behind_it():
    waiting = row(63, 'BACKUP STAGE BLOCK_COMMIT', 23, 'Waiting for backup lock')
    note = bl.waiting_note(waiting, ['DDL: session 70 of root, ALTER TABLE t, running 63 s'], 60)
    assert note == ('the copy waits at BACKUP STAGE BLOCK_COMMIT on the source for 23 s '
                    '(commits on the source queue behind it): DDL: session 70 of root, '
                    'ALTER TABLE t, running 63 s; stopped after 60 s '
                    '(replica_rebuild_backup_lock_timeout)')
    assert 'SHOW PROCESSLIST' in bl.waiting_note(waiting, [], 60)


class FakeDb(object):
    user = 'root'

    def __init__(self, rows, lsn=None, log_file_size=4 << 20):
        self.rows = rows
        self.lsn, self.size = lsn, log_file_size

    def query(self, sql):
        if sql == bl.REDO_QUERY:
            return [{'lsn': str(self.lsn)}] if self.lsn is not None else []
        if 'innodb_log_file_size' in sql:
            return [{'size': self.size}]
        assert sql == bl.QUERY
        return self.rows


def test_the_watch_notes_the_wait_then_stops_the_copy_past_its_limit():
    watch = bl.SourceWatch(lambda: None, limit=10)
    watch.started -= 30  # the copy began 30 s ago
    watch.look(FakeDb([row(61, 'SELECT SLEEP(99)', 20, 'User sleep'),
                       row(63, 'BACKUP STAGE START', 8, 'Waiting for backup lock')]))
    assert watch.note.startswith('the copy waits at BACKUP STAGE START on the source for 8 s')
    assert watch.abort is None and watch.longest == 8
    watch.look(FakeDb([row(63, 'BACKUP STAGE START', 11, 'Waiting for backup lock')]))
    assert watch.abort.startswith('the copy waited 11 s at BACKUP STAGE START on the source, '
                                  'longer than replica_rebuild_backup_lock_timeout (10 s)')
    assert watch.abort.endswith('raise replica_rebuild_backup_lock_timeout')
    watch.look(FakeDb([]))
    assert watch.note is None and watch.longest == 11


def test_the_watch_goes_silent_when_it_cannot_log_in():
    def refuse():
        raise RuntimeError('cannot connect')
    watch = bl.SourceWatch(refuse, limit=10, every=0.01)
    watch.start()
    watch.stop()
    assert watch.error == 'cannot connect' and watch.abort is None and watch.note is None


def test_backup_processes_other_than_our_children(tmp_path):
    (tmp_path / 'uptime').write_text('1000.0 10.0\n')
    ticks = os.sysconf('SC_CLK_TCK')

    def proc(pid, argv0, ppid, started_at):
        d = tmp_path / str(pid)
        d.mkdir()
        (d / 'cmdline').write_bytes(argv0.encode() + b'\0--backup\0')
        fields = ['S', str(ppid)] + ['0'] * 17 + [str(int(started_at * ticks))]
        (d / 'stat').write_text('%d (%s) %s\n' % (pid, os.path.basename(argv0), ' '.join(fields)))
    proc(10, '/usr/bin/mariadb-backup', 1, 900.0)
    proc(11, '/usr/bin/mariadb-backup', 77, 990.0)  # ours: a child of pid 77
    proc(12, '/usr/sbin/mariadbd', 1, 10.0)
    found = bl.backup_processes(77, proc=str(tmp_path))
    assert [(pid, name) for pid, name, seconds in found] == [(10, 'mariadb-backup')]
    assert 90 <= found[0][2] <= 100 + 5


STDERR = (b'[00] 2026-12-03 13:11:03 >> log scanned up to (1000000)\n'
          b'[01] 2026-12-03 13:11:04 Streaming ./labdb/t.ibd to <STDOUT>\n'
          b'[00] 2026-12-03 13:11:05 >> log scanned up to (1500000)\n')


def test_the_copys_redo_position_is_its_last_scanned_line():
    assert bl.scanned_lsn(STDERR) == 1500000
    # 10.11.19 behind an overwritten log: the read it retries, once a second.
    retrying = STDERR + (b'[00] 2026-12-03 13:28:39 Retrying read of log at LSN=154651864\n'
                         b'[00] 2026-12-03 13:28:39 Streaming ./w/base.ibd\n')
    assert bl.scanned_lsn(retrying) == 154651864
    assert bl.scanned_lsn(b'[00] Connecting to MariaDB server\n') is None
    assert bl.redo_ahead(None, 5, 100) is None and bl.redo_ahead(5, None, 100) is None
    ahead, share = bl.redo_ahead(1500000 + 2091008, 1500000, (4 << 20))
    assert ahead == 2091008 and abs(share - 0.5) < 0.001  # 4 MiB less its 12 KiB header
    assert bl.redo_ahead(10, 20, 1 << 20) == (0, 0.0)  # read past the server's last look


def test_the_watch_says_the_redo_fills_up_then_stops_the_copy_when_it_wraps():
    watch = bl.SourceWatch(lambda: None, limit=60, stderr_peek=lambda: STDERR)
    watch.look(FakeDb([], lsn=1500000 + 1000000))
    assert watch.note is None and watch.abort is None  # 24 %: nothing to say
    watch.look(FakeDb([], lsn=1500000 + 3000000))
    assert watch.note == ('the source has written 2.9 MiB of redo ahead of the copy, 71% of '
                          'its redo log (innodb_log_file_size 4M): the copy fails if that '
                          'reaches 100%') and watch.abort is None
    watch.look(FakeDb([], lsn=1500000 + (5 << 20)))
    assert watch.abort.startswith('the redo log wrapped ahead of the copy: the source wrote '
                                  '5.0 MiB of redo past what mariadb-backup had read')
    assert 'innodb_log_file_size 4M' in watch.abort and watch.redo_peak > 1
    assert watch.abort_code == 'redo_wrapped'
    # Before mariadb-backup has said where it is: nothing read, nothing said.
    quiet = bl.SourceWatch(lambda: None, limit=60, stderr_peek=lambda: b'')
    quiet.look(FakeDb([], lsn=10 ** 9))
    assert quiet.note is None and quiet.abort is None


def sample(lsn, at, size=96 << 20):
    return dict(lsn=lsn, at=at, log_file_size=size)


def test_the_redo_rate_is_told_only_from_two_samples_of_one_server_apart_enough():
    assert bl.redo_rate(sample(1000, 10.0), sample(13001000, 12.0)) == 6500000
    assert bl.redo_rate(sample(1000, 10.0), sample(2000, 10.5)) is None  # too close
    assert bl.redo_rate(sample(9000, 10.0), sample(2000, 20.0)) is None  # went back: restarted
    assert bl.redo_rate(sample(None, 10.0), sample(2000, 20.0)) is None  # no InnoDB
    assert bl.redo_rate(None, sample(2000, 20.0)) is None


def test_the_suggested_size_holds_the_copys_redo_twice_in_a_size_dbas_write():
    assert bl.size_for(960e6) == 2 << 30  # the example: 12 MB/s for 80 s
    assert bl.gib_or_mib(bl.size_for(960e6)) == '2G'
    assert bl.gib_or_mib(bl.size_for(100e6)) == '256M'
    assert bl.size_for(1) == 128 << 20  # above the server's default, 96M


def test_the_outlook_is_a_risk_when_the_copys_redo_does_not_fit_the_log():
    outlook = bl.redo_outlook(12e6, 96 << 20, 8e9, 100e6, 'at replica_rebuild_throttle_mbps 100')
    assert outlook['risk'] and outlook['holds_seconds'] == 8.4
    assert outlook['copy_seconds'] == 80 and outlook['suggested'] == 2 << 30
    text = bl.redo_risk_text(outlook)
    assert text.startswith("at 12.0 MB/s of redo the source's 96M redo log "
                           "(innodb_log_file_size) holds 8.4 s of writes, and the copy needs ~80 s "
                           "(at replica_rebuild_throttle_mbps 100): ")
    assert 'at least 2G (dynamic since 10.9: SET GLOBAL innodb_log_file_size = 2147483648)' in text
    assert 'replica_rebuild_redo_log_raise' in text
    # The same log, a quiet source: no risk; a rate unknown: no outlook; no copy rate: no verdict.
    assert not bl.redo_outlook(0.1e6, 96 << 20, 8e9, 100e6, 'x')['risk']
    assert bl.redo_outlook(None, 96 << 20, 8e9, 100e6, 'x') is None
    unknown = bl.redo_outlook(12e6, 96 << 20, 8e9, None, 'x')
    assert not unknown['risk'] and unknown['copy_seconds'] is None


class Copy(object):
    """The copy's progress as the pipeline would say it."""

    def __init__(self, done, expected, seconds):
        self.value = (done, expected, seconds)

    def __call__(self):
        return self.value


def test_the_watch_warns_from_the_copys_rate_so_far_and_stops_it_only_when_told_to():
    for check in ('warn', 'refuse', 'off'):
        copy = Copy(20e6, 400e6, 4)  # 5 MB/s: 76 s to go
        watch = bl.SourceWatch(lambda: None, limit=60, copied=copy, redo_check=check,
                               first_redo=sample(1000, 0))
        watch.first_redo['at'] = time.time() - 10
        watch.look(FakeDb([], lsn=1000 + 10 * 2000000, log_file_size=16 << 20))
        assert watch.note is None  # the copy's rate is not trusted before 6 s
        copy.value = (40e6, 400e6, 8)
        watch.look(FakeDb([], lsn=1000 + 10 * 2000000, log_file_size=16 << 20))
        if check == 'off':
            assert watch.note is None and watch.outlook is None
            continue
        # 2 MB/s of redo: a 16 MiB log holds 8 s; 72 s of copy to go.
        assert watch.note.startswith("at 2.0 MB/s of redo the source's 16M redo log")
        assert 'the copy needs ~72 s more (at the copy\'s rate so far, 5.0 MB/s)' in watch.note
        assert watch.outlook['risk'] and watch.outlook['suggested'] == 512 << 20
        if check == 'warn':
            assert watch.abort is None
        else:
            assert watch.abort_code == 'redo_log_too_small'
            assert watch.abort.startswith('stopped, before the redo log wraps '
                                          '(replica_rebuild_redo_check: refuse): at 2.0 MB/s')


def test_a_wrap_names_the_size_that_would_have_held_the_whole_copys_redo():
    # 2 MB/s of redo for 10 s; the copy read 40 of 400 MB in 8 s: 80 s in all, 160 MB of redo.
    watch = bl.SourceWatch(lambda: None, limit=60, stderr_peek=lambda: STDERR,
                           copied=Copy(40e6, 400e6, 8), redo_check='off',
                           first_redo=sample(1500000 - 20000000, time.time() - 10))
    watch.look(FakeDb([], lsn=1500000 + (5 << 20)))
    assert watch.abort_code == 'redo_wrapped' and watch.note is not None
    assert 'Raise innodb_log_file_size on the source to at least 512M (SET GLOBAL' in watch.abort
    assert 'replica_rebuild_redo_log_raise' in watch.abort
