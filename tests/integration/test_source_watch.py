# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source watched while the copy runs (module_utils/source_watch.py; issue 22, items 2
and 3): a backup lock the copy waits for is said before the copy starts and while it waits,
and bounded by replica_rebuild_backup_lock_timeout; a redo log that wraps ahead of the copy
stops it at once.

On production-shaped hosts (ops with sudo, /data/mysql), a writer on the primary all along.
A DDL that holds the backup lock: CREATE TABLE ... AS SELECT SLEEP(n) makes BACKUP STAGE
START wait for it (measured on 10.11.19: 11 s behind a 12 s one; an online or copying
ALTER TABLE of InnoDB does not hold it any more). The broken replica stopped with 1236.
Run 1, with a limit of 15 s: the stream's
preflight warns of the DDL, its progress line names the wait, the stage and the DDL, and the
run fails past the limit, naming them, nothing changed on either replica. Run 2, once the
DDL has ended: the broken replica is healed, the healthy one left alone.

The redo half of the watch has unit tests only: a third run (redo log shrunk to 16 MiB, a
writer of 1 MB rows, the stream capped at 1 MB/s) did not wrap the log through the role
(the run healed the replica, in 7 minutes), though the same by hand did (docs/RELIABILITY.md)."""

from __future__ import annotations

import os
import re
import subprocess

from ansible_collections.reseed.mariadb.plugins.module_utils.source_watch import \
    PREFLIGHT_DDL_SECONDS

import scenarios
from ansible_run import REPO, run_playbook
from faults import LoadGenerator, diff, fatal_lines, fatal_msg, mariadbd_pid, snapshot

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
# Long enough to outlast run 1 (the role up to the copy's wait, LIMIT, the rescue and the
# summary: 40 s were seen on this machine): 50 s proved too short once.
SLOW_DDL = 'CREATE TABLE labdb.slow ENGINE=InnoDB AS SELECT SLEEP(70) AS s'
LIMIT = 15


def ddl_seconds(primary):
    """How long the DDL has run (0 before it starts)."""
    return int(primary.sql_value("SELECT IFNULL(MAX(TIME), 0) FROM information_schema.PROCESSLIST "
                                 "WHERE INFO LIKE 'CREATE TABLE labdb.slow %'"))


def test_a_ddl_holding_the_backup_lock_is_named_waited_for_and_bounded(
        hardened_trio, inventory, repl_password):
    primary, rb, rh = hardened_trio
    scenarios.break_1236(primary, rb)
    inv = inventory(primary, [rb, rh])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}
    rh_pid = mariadbd_pid(rh)
    before = snapshot(rb)  # its IO thread stopped (1236): nothing of it moves

    # Run 1: the DDL runs on through the whole run; the copy waits behind it, then stops.
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
        ddl.wait(timeout=120)
    out = proc.stdout
    print('\n'.join(ln for ln in (out + proc.stderr).splitlines() if 'the copy' in ln))
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
