# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch the source while mariadb-backup copies it: its backup locks and its redo log.

Backup locks: what the copy's lock waits for, said while it waits, and bounded.

mariadb-backup takes the server's backup locks (BACKUP STAGE START, FLUSH, BLOCK_DDL,
BLOCK_COMMIT) in turn. Each can wait: BACKUP STAGE START for another backup that holds the
backup lock (measured on 10.11.19: 14 s of silence behind a session in BACKUP STAGE START),
BLOCK_DDL for DDL in its last phase, BLOCK_COMMIT for a session that holds FLUSH TABLES
WITH READ LOCK or writes a non-transactional table. mariadb-backup prints nothing meanwhile,
and while a stage request waits, the statements it blocks (DDL, then commits at
BLOCK_COMMIT) queue behind it on the source. Nothing of mariadb-backup bounds the wait
(10.11's --ftwrl-* options no longer apply).

This module reads the source's processlist: the copy's own session waiting in a BACKUP
STAGE or FLUSH statement, what it probably waits for (other backups, DDL, FTWRL, longest
first), and other mariadb-backup processes on the host. The sender shows it in its progress
and stops the copy once it has waited longer than its limit.

Redo: the copy needs every redo record from its start, read from the server's circular
redo log while the server writes on. When the server writes more than the log holds ahead
of what mariadb-backup has read ("log scanned up to (LSN)" on its stderr), the records it
still needed are overwritten and the copy is useless; mariadb-backup then retries that
read once a second and streams on, and says so only when it ends ("Was only able to copy
log ..."), minutes later on a large copy (measured on 10.11.19: a 16 MiB log overwritten in
its first 10 s, then a minute of streaming before the end). The watch compares the server's
Innodb_lsn_current with the copy's position and stops the copy at once.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import threading
import time

BACKUP_LOCK = re.compile(r'^\s*(BACKUP\s+STAGE\s+\w+|BACKUP\s+LOCK|FLUSH\s+(NO_WRITE_TO_BINLOG\s+|'
                         r'LOCAL\s+)?TABLES?\s+WITH\s+READ\s+LOCK)', re.I)
DDL = re.compile(r'^\s*(ALTER|CREATE|DROP|RENAME|TRUNCATE|OPTIMIZE|REPAIR)\s', re.I)
# Where mariadb-backup says its redo copy is: ">> log scanned up to (LSN)" (older releases,
# and --verbose), "Retrying read of log at LSN=N" (10.11.19, once a second, while the record
# it needs next is unreadable: measured behind a 16 MiB log the server had overwritten).
SCANNED = re.compile(br'(?:>> log scanned up to \(|Retrying read of log at LSN=)(\d+)')
# The redo log of 10.8 and later: one file, ib_logfile0, whose first 12 KiB are its header.
LOG_HEADER = 12288
REDO_QUERY = ("SELECT VARIABLE_VALUE AS lsn FROM information_schema.GLOBAL_STATUS "
              "WHERE VARIABLE_NAME = 'INNODB_LSN_CURRENT'")
REDO_WARN_SHARE = 0.5
# The shortest interval two redo samples are compared over.
REDO_SAMPLE_SECONDS = 1.0
# How long the copy runs before its rate is trusted for the outlook.
OUTLOOK_SECONDS = 6
PREFLIGHT_DDL_SECONDS = 10
BACKUP_PROGRAMS = ('mariadb-backup', 'mariabackup', 'xtrabackup', 'innobackupex')
# The processlist columns read (MariaDB's information_schema.PROCESSLIST).
QUERY = ('SELECT ID, USER, HOST, COMMAND, TIME, STATE, INFO '
         'FROM information_schema.PROCESSLIST '
         "WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump') AND ID <> CONNECTION_ID()")


def statement(row, width=60):
    """The first words of a session's statement, on one line."""
    text = ' '.join((row.get('INFO') or '').split())
    return text if len(text) <= width else text[:width - 3] + '...'


def copy_waiting(rows, user, elapsed):
    """The copy's own session waiting for a backup lock: of `user`, in a BACKUP STAGE (or
    FLUSH ... READ LOCK) statement, in a 'Waiting for ...' state, started since the copy
    began (`elapsed` seconds ago; another backup's waiting session is older). None when it
    does not wait."""
    for row in rows:
        if (row.get('USER') == user and BACKUP_LOCK.match(row.get('INFO') or '') and
                (row.get('STATE') or '').startswith('Waiting') and
                int(row.get('TIME') or 0) <= elapsed + 1):
            return row
    return None


def likely_blockers(rows, waiting_id=None, processes=()):
    """What a backup lock may wait for, most likely first: other sessions in a backup-lock
    statement (another backup), DDL, each with how long it has run; then other backup
    programs on the host (pid, seconds)."""
    found = []
    for row in sorted(rows, key=lambda r: -int(r.get('TIME') or 0)):
        if row.get('ID') == waiting_id:
            continue
        info = row.get('INFO') or ''
        if BACKUP_LOCK.match(info):
            kind = 'another backup'
        elif DDL.match(info):
            kind = 'DDL'
        else:
            continue
        found.append('%s: session %s of %s, %s, running %s s' % (
            kind, row.get('ID'), row.get('USER'), statement(row), row.get('TIME')))
    for pid, name, seconds in processes:
        found.append('another backup: %s (pid %d on the source), running %d s' % (
            name, pid, seconds))
    return found


def preflight_blockers(rows, ddl_seconds=PREFLIGHT_DDL_SECONDS):
    """Before the copy: other backups, and DDL that has run `ddl_seconds` or more (a
    shorter one is likely over before the copy reaches its stages)."""
    rows = [r for r in rows if not DDL.match(r.get('INFO') or '') or
            int(r.get('TIME') or 0) >= ddl_seconds]
    return likely_blockers(rows, None, backup_processes())


def backup_processes(parent=None, proc='/proc'):
    """Backup programs running on this host but our own (the children of `parent`):
    [(pid, name, seconds running)]."""
    found = []
    try:
        boot = time.time() - float(open(os.path.join(proc, 'uptime')).read().split()[0])
        ticks = os.sysconf('SC_CLK_TCK')
    except (IOError, OSError, ValueError):
        return found
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, 'cmdline'), 'rb') as f:
                argv0 = f.read().split(b'\0')[0].decode('utf-8', 'replace')
            with open(os.path.join(proc, entry, 'stat')) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            ppid, start = int(fields[1]), int(fields[19]) / float(ticks)
        except (IOError, OSError, ValueError, IndexError):
            continue  # ended meanwhile
        name = os.path.basename(argv0)
        if name in BACKUP_PROGRAMS and ppid != parent:
            found.append((int(entry), name, int(time.time() - boot - start)))
    return found


def waiting_note(row, blockers, limit):
    """The progress's words for a copy that waits."""
    stage = statement(row)
    note = 'the copy waits at %s on the source for %s s' % (stage, row.get('TIME'))
    if 'BLOCK_COMMIT' in stage.upper() or 'READ LOCK' in stage.upper():
        note += ' (commits on the source queue behind it)'
    elif 'BLOCK_DDL' in stage.upper():
        note += ' (DDL on the source queues behind it)'
    note += ': ' + ('; '.join(blockers[:3]) if blockers else
                    'no DDL or other backup seen (SHOW PROCESSLIST on the source names it)')
    return note + '; stopped after %d s (replica_rebuild_backup_lock_timeout)' % limit


def scanned_lsn(stderr_tail):
    """The last LSN mariadb-backup says it has read the redo log up to (None: not yet)."""
    found = SCANNED.findall(stderr_tail or b'')
    return int(found[-1]) if found else None


def redo_ahead(server_lsn, scanned, log_file_size):
    """(bytes the server has written past what the copy read, the share of the log's
    capacity that is), or None when either LSN is unknown."""
    if server_lsn is None or scanned is None or not log_file_size:
        return None
    ahead = max(0, int(server_lsn) - int(scanned))
    return ahead, ahead / float(max(1, int(log_file_size) - LOG_HEADER))


def mib(count):
    value = count / 1048576.0
    return '%.0f MiB' % value if value >= 10 else '%.1f MiB' % value


def option_size(count):
    """A size as DBAs write it in an option file (96M), or in MiB."""
    count = int(count)
    return '%dM' % (count >> 20) if count and count % 1048576 == 0 else mib(count)


def redo_note(ahead, share, log_file_size):
    return ('the source has written %s of redo ahead of the copy, %d%% of its redo log '
            '(innodb_log_file_size %s): the copy fails if that reaches 100%%'
            % (mib(ahead), int(share * 100), option_size(log_file_size)))


def redo_wrapped(ahead, log_file_size, suggested=None):
    return ('the redo log wrapped ahead of the copy: the source wrote %s of redo past what '
            'mariadb-backup had read, more than its redo log holds (innodb_log_file_size %s), '
            'so records the copy needs are overwritten and it was stopped at once. Raise '
            'innodb_log_file_size on the source%s (SET GLOBAL innodb_log_file_size = ..., '
            'dynamic since 10.9), or set replica_rebuild_redo_log_raise for the run to raise '
            'it for the copy, or rebuild when it writes less (without '
            'replica_rebuild_throttle_mbps)' % (
                mib(ahead), option_size(log_file_size),
                ' to at least %s' % gib_or_mib(suggested) if suggested else ''))


def redo_sample(db):
    """The source's redo position now: {lsn, log_file_size, at (epoch seconds)}; lsn None
    when the server does not say (no InnoDB)."""
    rows = db.query(REDO_QUERY)
    size = db.query('SELECT @@GLOBAL.innodb_log_file_size AS size')
    return dict(lsn=int(rows[0]['lsn']) if rows and rows[0]['lsn'] is not None else None,
                log_file_size=int(size[0]['size'] or 0) if size else 0, at=time.time())


def redo_rate(first, last, least_seconds=REDO_SAMPLE_SECONDS):
    """Bytes of redo a second between two samples; None when it cannot be told (an LSN
    unknown, samples less than `least_seconds` apart, or an LSN that went back: another
    server, or one restarted in between)."""
    if not first or not last or first.get('lsn') is None or last.get('lsn') is None:
        return None
    seconds = float(last['at']) - float(first['at'])
    if seconds < least_seconds or int(last['lsn']) < int(first['lsn']):
        return None
    return (int(last['lsn']) - int(first['lsn'])) / seconds


def size_for(count):
    """The innodb_log_file_size to suggest for `count` bytes of redo: twice that, as a power
    of two of MiB (a size DBAs write: 512M, 2G), above the server's default (96M)."""
    mib_needed = max(128, int(-(-2 * count // 1048576)))
    size = 1
    while size < mib_needed:
        size *= 2
    return size << 20


def gib_or_mib(count):
    """A suggested size as an option file has it: 2G, 512M."""
    count = int(count)
    return '%dG' % (count >> 30) if count % (1 << 30) == 0 else '%dM' % (count >> 20)


def redo_outlook(rate, log_file_size, copy_bytes, copy_rate, how):
    """Whether the source's redo log holds the redo the copy will need: at `rate` bytes of
    redo a second, the log (its capacity) holds `holds_seconds` of writes; a copy of
    `copy_bytes` at `copy_rate` bytes a second (`how`: how that rate is known) needs
    `copy_seconds`. mariadb-backup reads the redo while it copies, through the same stream,
    so the log must hold what the server writes while the redo copy falls behind; when the
    whole copy's redo does not fit in it, that is a risk (`risk`), and `suggested` the size
    that holds it twice over. None when the rate is unknown."""
    if rate is None or not log_file_size:
        return None
    capacity = max(1, int(log_file_size) - LOG_HEADER)
    outlook = dict(rate_mb_s=round(rate / 1e6, 2), log_file_size=int(log_file_size),
                   holds_seconds=round(capacity / rate, 1) if rate > 0 else None,
                   copy_seconds=None, rate_from=how, risk=False, suggested=None)
    if copy_rate and copy_bytes:
        seconds = copy_bytes / float(copy_rate)
        outlook['copy_seconds'] = round(seconds, 1)
        if rate * seconds > capacity:
            outlook.update(risk=True, suggested=size_for(rate * seconds))
    return outlook


def redo_risk_text(outlook, more=''):
    """The outlook of a risk, in one line with the fix."""
    suggested = outlook['suggested']
    holds = outlook['holds_seconds']
    return ("at %.1f MB/s of redo the source's %s redo log (innodb_log_file_size) holds %s s "
            "of writes, and the copy needs ~%d s%s (%s): if mariadb-backup's redo copy falls that "
            'far behind, the copy fails. Raise innodb_log_file_size on the source to at least %s '
            '(dynamic since 10.9: SET GLOBAL innodb_log_file_size = %d), set '
            'replica_rebuild_redo_log_raise to have the run raise it and restore it after, or '
            'rebuild when it writes less' % (
                outlook['rate_mb_s'], option_size(outlook['log_file_size']),
                '%.1f' % holds if holds < 10 else '%d' % holds, outlook['copy_seconds'], more,
                outlook['rate_from'],
                gib_or_mib(suggested), suggested))


class SourceWatch(threading.Thread):
    """Reads the source every `every` seconds while the copy runs: its processlist, and
    with `stderr_peek` (a function returning the tail of mariadb-backup's stderr so far) its
    redo position. `note` is what the progress should say (the copy's lock wait, redo
    filling up; None when all is well), `abort` the reason to stop the copy (a lock waited
    more than `limit` seconds, or the redo log wrapped). connect() returns a connection with
    query(sql) and the login user's name in `user`; a failure to connect or read leaves the
    watch silent (`error` says why): the copy goes on unwatched."""

    def __init__(self, connect, limit, every=2.0, stderr_peek=None, copied=None,
                 redo_check='warn', first_redo=None):
        super(SourceWatch, self).__init__()
        self.daemon = True
        self.connect = connect
        self.limit = limit
        self.every = every
        self.stderr_peek = stderr_peek
        # copied(): (bytes read, bytes expected, seconds) of the copy so far, for the outlook
        # of its redo (redo_check: warn, refuse: stop the copy then, off).
        self.copied = copied
        self.redo_check = redo_check
        self.first_redo = first_redo  # the redo sample the rate is measured from
        self.started = time.time()
        self.note = self.abort = self.abort_code = self.error = None
        self.longest = 0
        self.redo_peak = 0.0  # the largest share of the redo log ahead of the copy seen
        self.outlook = None  # the first redo outlook that was a risk
        self.stopping = threading.Event()

    def run(self):
        db = None
        try:
            db = self.connect()
            while not self.stopping.wait(self.every):
                self.look(db)
        except Exception as e:  # any driver error: the watch stops, the copy goes on
            self.error = str(e)
            self.note = None
        finally:
            if db is not None:
                db.close()

    def look(self, db):
        notes = [n for n in (self.look_locks(db), self.look_redo(db)) if n]
        self.note = '; '.join(notes) or None

    def look_locks(self, db):
        rows = db.query(QUERY)
        row = copy_waiting(rows, db.user, time.time() - self.started)
        if row is None:
            return None
        waited = int(row.get('TIME') or 0)
        self.longest = max(self.longest, waited)
        blockers = likely_blockers(rows, row.get('ID'), backup_processes(os.getpid()))
        if waited > self.limit and not self.abort:
            self.abort_code = 'backup_lock_timeout'
            self.abort = ('the copy waited %d s at %s on the source, longer than '
                          'replica_rebuild_backup_lock_timeout (%d s), and was stopped: %s. '
                          'Run again once it has ended, or raise '
                          'replica_rebuild_backup_lock_timeout' % (
                              waited, statement(row), self.limit,
                              '; '.join(blockers[:3]) or 'nothing named it'))
        return waiting_note(row, blockers, self.limit)

    def look_redo(self, db):
        sample = redo_sample(db)
        if self.first_redo is None or redo_rate(self.first_redo, sample, 0) is None:
            self.first_redo = sample
        notes = [self.look_outlook(sample)]
        scanned = scanned_lsn(self.stderr_peek()) if self.stderr_peek else None
        found = redo_ahead(sample['lsn'], scanned, sample['log_file_size'])
        if found is not None:
            ahead, share = found
            size = sample['log_file_size']
            self.redo_peak = max(self.redo_peak, share)
            if share >= 1 and not self.abort:
                self.abort_code, self.abort = 'redo_wrapped', redo_wrapped(
                    ahead, size, self.wrap_size(sample))
            if share >= REDO_WARN_SHARE:
                notes.append(redo_note(ahead, share, size))
        return '; '.join(n for n in notes if n) or None

    def wrap_size(self, sample):
        """The size to suggest once the log has wrapped: for the redo of the whole copy at
        the redo and copy rates so far (None when they cannot be told)."""
        rate = redo_rate(self.first_redo, sample)
        done, expected, seconds = self.copied() if self.copied else (0, 0, 0)
        if not rate or not done or not seconds:
            return None
        return size_for(rate * max(expected, done) / (done / float(seconds)))

    def look_outlook(self, sample):
        """The redo the rest of the copy needs, against the log: from the copy's rate so far
        (after OUTLOOK_SECONDS) and the redo rate since the first sample."""
        if self.copied is None or self.redo_check == 'off':
            return None
        done, expected, seconds = self.copied()
        if seconds < OUTLOOK_SECONDS or not done or not expected or done >= expected:
            return None
        outlook = redo_outlook(redo_rate(self.first_redo, sample), sample['log_file_size'],
                               expected - done, done / float(seconds),
                               'at the copy\'s rate so far, %.1f MB/s' % (done / 1e6 / seconds))
        if not outlook or not outlook['risk']:
            return None
        self.outlook = self.outlook or outlook
        text = redo_risk_text(outlook, ' more')
        if self.redo_check == 'refuse' and not self.abort:
            self.abort_code = 'redo_log_too_small'
            self.abort = ('stopped, before the redo log wraps (replica_rebuild_redo_check: '
                          'refuse): ' + text)
        return text

    def stop(self):
        self.stopping.set()
        self.join(10)
