# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source watched while the copy runs (module_utils/source_watch.py; issue 22, items 2
and 3): a backup lock the copy waits for is said before the copy starts and while it waits,
and bounded by replica_rebuild_backup_lock_timeout; a redo log that wraps ahead of the copy
stops it at once.

On production-shaped hosts (ops with sudo, /data/mysql), a writer on the primary all along.
A DDL that holds the backup lock: CREATE TABLE ... AS SELECT SLEEP(n) makes BACKUP STAGE
START wait for it (measured on 10.11.19: 11 s behind a 12 s one; an online or copying
ALTER TABLE of InnoDB does not hold it any more); here its SELECT waits on a user lock
(GET_LOCK) the test holds until run 1 has ended. The broken replica stopped with 1236.
Run 1, with a limit of 15 s: the stream's
preflight warns of the DDL, its progress line names the wait, the stage and the DDL, and the
run fails past the limit, naming them, nothing changed on either replica. Run 2, once the
DDL has ended: the broken replica is healed, the healthy one left alone.

Runs 3-4, the redo (issue 22, item 3; redo_log_too_small below): the primary's redo log
shrunk to 16 MiB while about 8 MB/s of redo is written, the copy capped at 2 MB/s: the
preflight warns with the numbers, the wrap stops the copy within seconds, naming the fix;
then, with replica_rebuild_redo_log_raise, the log is raised for the copy and set back:
healed. Each run prints the worst commit round of the writer on the primary."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils.source_watch import \
    PREFLIGHT_DDL_SECONDS

import scenarios
from ansible_run import REPO, run_playbook
from faults import (LoadGenerator, RedoWriter, diff, fatal_lines, fatal_msg, mariadbd_pid,
                    snapshot)

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
# The DDL waits on a user lock the test holds through run 1 and lets go of after it: it
# outlasts the run however long the run takes, and ends as soon as the run has.
HOLD = 'reseed_hold'
SLOW_DDL = "CREATE TABLE labdb.slow ENGINE=InnoDB AS SELECT GET_LOCK('%s', 600) AS s" % HOLD
LIMIT = 15
# Runs 3-4: a 16 MiB redo log (10.11 refuses one smaller than innodb_log_buffer_size, 16M
# by default), about 8 MB/s of redo, a copy capped at 2 MB/s in run 3.
REDO_LOG = 16 << 20
REDO_MB_S = 8
THROTTLE = 2
RAISE = '1G'


def ddl_seconds(primary):
    """How long the DDL has run (0 before it starts)."""
    return int(primary.sql_value("SELECT IFNULL(MAX(TIME), 0) FROM information_schema.PROCESSLIST "
                                 "WHERE INFO LIKE 'CREATE TABLE labdb.slow %'"))


# The wrap is asserted seen within 15 s of the copy's start: by itself (conftest.py).
@pytest.mark.alone
def test_a_ddl_holding_the_backup_lock_then_a_redo_log_too_small_for_the_copy(
        hardened_trio, inventory, repl_password):
    primary, rb, rh = hardened_trio
    scenarios.break_1236(primary, rb)
    inv = inventory(primary, [rb, rh])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}
    rh_pid = mariadbd_pid(rh)
    before = snapshot(rb)  # its IO thread stopped (1236): nothing of it moves

    # Run 1: the DDL runs on through the whole run; the copy waits behind it, then stops.
    holder = primary.popen(['mariadb', '-e', "SELECT GET_LOCK('%s', 0); SELECT SLEEP(600)" % HOLD],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scenarios.wait_for(lambda: primary.sql_value("SELECT IS_USED_LOCK('%s')" % HOLD) != 'NULL',
                       30, what='the test to hold %s' % HOLD)
    ddl = primary.popen(['mariadb', '-e', SLOW_DDL], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
    try:
        # The preflight names DDL that has run PREFLIGHT_DDL_SECONDS or more (a shorter one
        # is likely over before the copy reaches its stages): the run starts past that, or
        # a fast run reaches the stream first and the warning is rightly not given.
        scenarios.wait_for(lambda: ddl_seconds(primary) >= PREFLIGHT_DDL_SECONDS, 30,
                           what='the DDL to run %d s' % PREFLIGHT_DDL_SECONDS)
        with LoadGenerator(primary, rate=20, max_rows=100000) as writer:
            proc = run_playbook(inv, PLAYBOOK, dict(
                extra, replica_rebuild_backup_lock_timeout=LIMIT))
        assert ddl.poll() is None, 'the DDL ended before the run: no wait was seen'
    finally:
        # The holder's session killed, the lock is free: the DDL ends at once.
        primary.sql("KILL %s" % primary.sql_value("SELECT IS_USED_LOCK('%s')" % HOLD))
        holder.wait(timeout=60)
        ddl.wait(timeout=120)
    out = proc.stdout
    print('\n'.join(ln for ln in (out + proc.stderr).splitlines() if 'the copy' in ln))
    print('run 1: worst commit round of the writer on the primary: %.2f s' % writer.worst)
    assert proc.returncode != 0, out[-6000:]
    assert writer.errors == [] and writer.inserted > 0
    # Before the copy: said as the stream starts (and as the task's warning, at its end),
    # naming the DDL and the limit.
    said = re.findall(r'^%s -> %s: before the copy: %s: the copy may wait for its backup locks '
                      r'\(at most %d s, replica_rebuild_backup_lock_timeout\): DDL: session \d+ '
                      r'of root, CREATE TABLE labdb\.slow ' % (
                          re.escape(primary.name), re.escape(rb.ip), re.escape(primary.name),
                          LIMIT), out, re.M)
    assert said, out[-6000:]
    assert 'the copy may wait for its backup locks' in proc.stderr, proc.stderr[-3000:]
    # While it waits: the progress line says at which stage, how long, and behind what.
    waits = re.findall(r'^%s -> %s: .*; (the copy waits at BACKUP STAGE START on the source '
                       r'for \d+ s: DDL: session \d+ of root, CREATE TABLE labdb\.slow .*)$'
                       % (re.escape(primary.name), re.escape(rb.ip)), out, re.M)
    assert waits, out[-6000:]
    # Past the limit: one line, the stage, the DDL, the limit, what to do; nothing changed.
    lines = [ln for ln in fatal_lines(out) if 'replica_rebuild_backup_lock_timeout' in ln]
    assert lines, '\n'.join(fatal_lines(out)) or out[-4000:]
    msg = fatal_msg(lines[-1])
    assert msg.startswith('%s: stream from %s: ' % (rb.name, primary.name)), msg
    assert re.search(r'the copy waited \d+ s at BACKUP STAGE START on the source, longer than '
                     r'replica_rebuild_backup_lock_timeout \(%d s\), and was stopped: DDL: '
                     r'session \d+ of root, CREATE TABLE labdb\.slow ' % LIMIT, msg), msg
    assert 'Run again once it has ended' in msg and 'Nothing was swapped' in msg, msg
    assert diff(before, snapshot(rb)) == {}
    assert mariadbd_pid(rh) == rh_pid and scenarios.threads(rh.slave_status())[
        'Slave_SQL_Running'] == 'Yes'
    assert not primary.run(['pidof', 'mariadb-backup'], check=False).stdout.strip()

    # Run 2, the DDL over: healed, the healthy replica left alone.
    assert ddl.returncode == 0, ddl.stderr.read()
    with LoadGenerator(primary, rate=20, max_rows=100000) as writer:
        proc = run_playbook(inv, PLAYBOOK, extra)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert writer.errors == [] and writer.inserted > 0
    assert 'the copy may wait' not in proc.stdout + proc.stderr
    scenarios.wait_caught_up(primary, rb)
    status = rb.slave_status()
    assert (status['Slave_IO_Running'], status['Slave_SQL_Running']) == ('Yes', 'Yes')
    assert rb.sql_value('SELECT COUNT(*) FROM labdb.slow') == '1'
    assert rb.sql_value('SELECT COUNT(*) FROM labdb.load') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.load')
    assert mariadbd_pid(rh) == rh_pid
    redo_log_too_small(primary, rb, rh, inv, extra)


class Sampler(threading.Thread):
    """Calls look() every half second until the block ends."""

    def __init__(self, look):
        super(Sampler, self).__init__(daemon=True)
        self.look, self.done = look, threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(10)

    def run(self):
        while not self.done.wait(0.5):
            self.look()


def progress_seconds(out, primary, rb):
    """The elapsed seconds of the stream's progress lines."""
    return [int(x) for x in re.findall(r'^%s -> %s: .*?(\d+)s elapsed' % (
        re.escape(primary.name), re.escape(rb.ip)), out, re.M)]


def redo_log_too_small(primary, rb, rh, inv, extra):
    """Runs 3-4 (issue 22, item 3): the primary's redo log shrunk to 16 MiB while about 8 MB/s
    of redo is written; run 3 caps the copy at 2 MB/s, so mariadb-backup's redo copy, which
    goes through the same stream, falls behind and the log wraps ahead of it. The preflight
    warns with the numbers, the watch stops the copy within seconds of the wrap naming the
    fix, nothing changed on the replica. Run 4, replica_rebuild_redo_log_raise: the log is
    raised for the copy and set back after: healed."""
    rh_pid = mariadbd_pid(rh)
    scenarios.break_1236(primary, rb)
    before = snapshot(rb)
    with RedoWriter(primary, mb_per_s=REDO_MB_S) as redo, \
            LoadGenerator(primary, rate=20, max_rows=100000) as writer:
        primary.sql('SET GLOBAL innodb_log_file_size = %d' % REDO_LOG)  # done as it writes
        started = time.time()
        proc = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_throttle_mbps=THROTTLE))
        took = time.time() - started
        rate = redo.rate()
        assert redo.errors == [] and redo.rounds > 0
    out = proc.stdout
    print('run 3: %.0f s, %.1f MB/s of redo, worst commit round %.2f s; %s' % (
        took, rate, writer.worst, '\n'.join(
            ln for ln in (out + proc.stderr).splitlines() if 'redo' in ln)[-3000:]))
    assert proc.returncode != 0, out[-6000:]
    assert writer.errors == [] and writer.inserted > 0
    # Before the copy: the rate, what the log holds, the copy's time, the size to raise it to.
    assert re.search(r"preflight of the source: at [\d.]+ MB/s of redo the source's 16M redo log "
                     r"\(innodb_log_file_size\) holds [\d.]+ s of writes, and the copy needs ~\d+ s "
                     r"\(at replica_rebuild_throttle_mbps %d\)" % THROTTLE,
                     out + proc.stderr), out[-6000:]
    # The wrap: stopped at once, in one line naming the fix.
    lines = [ln for ln in fatal_lines(out) if 'the redo log wrapped' in ln]
    assert lines, '\n'.join(fatal_lines(out)) or out[-4000:]
    msg = fatal_msg(lines[-1])
    assert msg.startswith('%s: stream from %s: ' % (rb.name, primary.name)), msg
    assert 'innodb_log_file_size 16M' in msg and 'replica_rebuild_redo_log_raise' in msg, msg
    assert 'Nothing was swapped' in msg, msg
    # Within 15 s of the copy's start, when the log is overwritten in its first seconds (at
    # 2 MB/s, the copy alone would take a minute and more).
    elapsed = progress_seconds(out, primary, rb)
    assert elapsed and max(elapsed) <= 15, elapsed
    assert diff(before, snapshot(rb)) == {}
    assert mariadbd_pid(rh) == rh_pid
    assert not primary.run(['pidof', 'mariadb-backup'], check=False).stdout.strip()

    # Run 4: the log raised for the copy, under the same writes, and set back after it.
    sizes = set()
    with RedoWriter(primary, mb_per_s=REDO_MB_S) as redo, \
            LoadGenerator(primary, rate=20, max_rows=100000) as writer, \
            Sampler(lambda: sizes.add(int(primary.sql_value('SELECT @@innodb_log_file_size')))):
        proc = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_redo_log_raise=RAISE))
        assert redo.errors == [] and redo.rounds > 0
    assert sizes == {REDO_LOG, 1 << 30}, sizes  # raised for the copy, and only then
    print('run 4: worst commit round %.2f s' % writer.worst)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert writer.errors == [] and writer.inserted > 0
    assert primary.sql_value('SELECT @@innodb_log_file_size') == str(REDO_LOG)
    scenarios.wait_caught_up(primary, rb)
    status = rb.slave_status()
    assert (status['Slave_IO_Running'], status['Slave_SQL_Running']) == ('Yes', 'Yes')
    assert rb.sql_value('SELECT COUNT(*) FROM labdb.load') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.load')
    assert mariadbd_pid(rh) == rh_pid
