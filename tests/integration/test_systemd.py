# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rebuild on hosts that boot systemd (issue 23): production-shaped (Ansible as `ops`
with sudo, no root ssh, /data/mysql on its own mount, logs in /var/log/mysql) and running
MariaDB as Debian's own mariadb.service, its units as packaged (tests/lab/lab.py, systemd
hosts). A primary with a writer on it and two replicas: r1 broken by error 1236 is rebuilt
and replicates again, r2 is left alone. r1 runs its server socket-activated
(mariadb.socket enabled, as many set it up; Debian 12's package ships it disabled) and a
client connects to it every 100 ms through the whole run: once the old server is down, it
never comes back on the old datadir (the socket would start it on the next connection
unless it is held down too), and the socket listens again after the run. Then a copy that
does not start, swapped in on r1: rolled back against Restart=on-abnormal, the unit left as
it was, the server's error read from the journal. Asserted on the servers and on systemd's own view of
the unit (`systemctl show`), not on our output. When the run fails, the failure says which
task, with what message, and what the unit's journal holds."""

from __future__ import annotations

import os
import threading
import time

import scenarios
from ansible_run import REPO, run_playbook_results
from faults import LoadGenerator, fatal_lines

REBUILD = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
UNIT = ('ActiveState', 'SubState', 'MainPID', 'NRestarts', 'UnitFileState')
SOCKET = ('LoadState', 'ActiveState', 'SubState', 'UnitFileState')
WRITER_RATE = 20


def mariadbd_pid(host):
    return host.run('pidof mariadbd').stdout.strip()


def systemd_view(host):
    """mariadb.service's state, and mariadb.socket's (LoadState not-found: no such unit)."""
    return host.unit_state('mariadb', UNIT), host.unit_state('mariadb.socket', SOCKET)


def failing_tasks(stdout):
    """The name of each task that failed, with the line Ansible printed for it."""
    found = []
    for block in stdout.split('\nTASK [')[1:]:
        head, body = block.partition('\n')[::2]
        lines = fatal_lines(body)
        if lines:
            found.append('TASK [%s: %s' % (head.split(']')[0], ' | '.join(lines)))
    return found


def failure_report(proc, hosts):
    """What a failed run leaves to read: the failing tasks and messages, then each host's
    unit state and the last lines of its mariadb.service journal."""
    parts = failing_tasks(proc.stdout) or [proc.stdout[-4000:]]
    for h in hosts:
        parts.append('--- %s: %s\n%s' % (h.name, h.unit_state('mariadb', UNIT),
                                         h.journal(lines=40)))
    return '\n'.join(parts + [proc.stderr[-2000:]])


def poll_old_datadir(host, seen, stop):
    """Connect to host every 100 ms until stop: 1 while its server runs on the old datadir
    (which has labdb.old_datadir), 0 on another, None when nothing answers."""
    query = ("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'labdb' "
             "AND table_name = 'old_datadir'")
    while not stop.is_set():
        try:
            conn = host.connect(read_timeout=2)
            try:
                with conn.cursor() as cur:
                    cur.execute(query)
                    seen.append(int(cur.fetchone()[0]))
            finally:
                conn.close()
        except Exception:  # pylint: disable=broad-except  # any failure: nothing answered
            seen.append(None)
        time.sleep(0.1)


def test_rebuild_on_systemd_hosts(make_hosts, inventory, repl_password, run_module):
    names = ('primary', 'r1', 'r2')
    hosts = make_hosts(*names, hardened=names, systemd=names)
    primary, r1, r2 = (hosts[n] for n in names)
    for h in (primary, r1, r2):
        state, socket = systemd_view(h)
        assert (state['ActiveState'], state['SubState'], state['MainPID']) == \
            ('active', 'running', mariadbd_pid(h)), (h.name, state)
        print('%s booted to mariadb.service active in %s s; mariadb.socket %s' % (
            h.name, open(os.path.join(h.dir, 'boot.seconds')).read().strip(), socket))
    scenarios.setup_replication(primary, [r1, r2], repl_password, rows=2000)
    scenarios.break_1236(primary, r1)
    # Socket activation on r1: the socket first (the server holds the ports), then the
    # server with the socket's descriptors. A table of its own marks the old datadir.
    r1.run('systemctl stop mariadb && systemctl enable --now mariadb.socket && '
           'systemctl start mariadb')
    r1.sql('SET SESSION sql_log_bin = 0; CREATE TABLE labdb.old_datadir (id INT PRIMARY KEY);')
    before = dict((r.name, systemd_view(r)) for r in (r1, r2))
    r2_pid = mariadbd_pid(r2)
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}

    seen, stop = [], threading.Event()
    poller = threading.Thread(target=poll_old_datadir, args=(r1, seen, stop), daemon=True)
    poller.start()
    try:
        with LoadGenerator(primary, rate=WRITER_RATE, max_rows=10 ** 7) as writer:
            proc, results = run_playbook_results(inventory(primary, [r1, r2]), REBUILD, extra)
    finally:
        stop.set()
        poller.join(10)
    assert proc.returncode == 0, failure_report(proc, (r1, r2))
    # What the client saw: the old datadir (1), then no server (None), then the new one (0);
    # never the old one again once it was down.
    answers = [a for i, a in enumerate(seen) if i == 0 or a != seen[i - 1]]
    assert answers[0] == 1 and answers[-1] == 0, answers
    assert 1 not in answers[1:], answers
    print('r1 as a client saw it every 100 ms through the run: %s (%d connections)'
          % (answers, len(seen)))
    assert writer.errors == [] and writer.inserted > 0, writer.errors

    by_host = results['replica_rebuild_results']
    assert (by_host[r1.name]['action'], by_host[r1.name]['diagnosis_after']) == \
        ('rebuilt', 'healthy'), by_host[r1.name]
    assert by_host[r2.name]['action'] == 'none', by_host[r2.name]
    # The real state: both replicate and hold the primary's rows; r2's server never stopped.
    for r in (r1, r2):
        s = r.slave_status()
        assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
            (r.name, scenarios.threads(s))
        scenarios.wait_caught_up(primary, r)
        for table in ('labdb.t', 'labdb.log', 'labdb.load'):
            query = 'CHECKSUM TABLE %s' % table
            assert r.sql(query)[0][1] == primary.sql(query)[0][1], (r.name, table)
    assert mariadbd_pid(r2) == r2_pid
    # systemd's view: r1's server is the unit's main process again, the unit enabled as
    # before, no restart of systemd's own (Restart=on-abnormal), the socket as it was.
    state, socket = systemd_view(r1)
    unit_before, socket_before = before[r1.name]
    assert (state['ActiveState'], state['SubState'], state['MainPID']) == \
        ('active', 'running', mariadbd_pid(r1)), state
    assert state['MainPID'] != unit_before['MainPID'], (unit_before, state)
    assert (state['UnitFileState'], state['NRestarts']) == \
        (unit_before['UnitFileState'], unit_before['NRestarts']), (unit_before, state)
    assert socket == socket_before, (socket_before, socket)
    assert systemd_view(r2) == before[r2.name]

    # 2. A copy that does not start, swapped in on r1 (datadir_swap alone): the rollback wins
    # against the unit's Restart=on-abnormal and leaves the unit as it was (no restart of
    # systemd's own, enabled, the socket listening), and the failure names the server's
    # error from the journal: under systemd Debian sets no log_error (nor does the lab).
    assert r1.sql_value('SELECT @@log_error') in ('', None), 'log_error is set'
    staging = '/data/mysql/#sql-reseed-staging'  # the datadir is its own mount
    r1.run(['mariadb-backup', '--backup', '--target-dir=' + staging])
    r1.run(['mariadb-backup', '--prepare', '--target-dir=' + staging])
    r1.run(['touch', staging + '/reseed_received'])
    r1.run(['truncate', '-s', '0', staging + '/ibdata1'])
    before = systemd_view(r1)
    res = run_module(inventory(primary, [r1, r2]), r1.name, 'datadir_swap',
                     {'staging': staging, 'start_timeout': 60})
    assert res.failed and 'step start the new server' in res['msg'], res
    assert 'rolled back' in res['msg'] and '(journalctl -u mariadb.service: ' in res['msg'], \
        res['msg'] + '\n' + r1.journal(lines=60) + r1.journal('mariadb.socket', lines=20)
    assert 'ibdata1' in res['msg'] and '\n' not in res['msg'], res['msg']  # why, not 'Aborting'
    state, socket = systemd_view(r1)
    assert (state['ActiveState'], state['SubState'], state['MainPID']) == \
        ('active', 'running', mariadbd_pid(r1)), state
    assert (state['NRestarts'], state['UnitFileState']) == \
        (before[0]['NRestarts'], before[0]['UnitFileState']), (before, state)
    assert socket == before[1], (before, socket)
    # The old datadir serves again and replicates.
    scenarios.wait_running(r1)
    scenarios.wait_caught_up(primary, r1)
    assert r1.run(['test', '-f', staging + '/xtrabackup_checkpoints']).returncode == 0
    print('rollback under systemd: %s' % res['msg'])
