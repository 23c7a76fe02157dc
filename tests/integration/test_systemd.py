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

import json
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
# The backup account's password: quotes and a backslash, as the replication one's.
BACKUP_PW = "Bk'p\\" + 'x7#"y'


def mariadbd_pid(host):
    return host.run('pidof mariadbd', check=False).stdout.strip()


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
    # The copy logs in with the backup account given, although root's ~/.my.cnf on the
    # primary names another one for mariadb-backup (left from backups by hand): read after
    # the module's own option file (--defaults-extra-file), it would win.
    primary.sql("CREATE USER reseed_bk@localhost IDENTIFIED BY {p}; GRANT RELOAD, PROCESS, "
                "BINLOG MONITOR ON *.* TO reseed_bk@localhost;".format(p=scenarios.q(BACKUP_PW)))
    primary.run("printf '[mariadb-backup]\\nuser=old_backup\\npassword=stale\\n' > /root/.my.cnf")
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password,
             'replica_rebuild_backup_user': 'reseed_bk', 'replica_rebuild_backup_password': BACKUP_PW}

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


NODE2_CNF = """[mysqld.node2]
datadir=/var/lib/mysql-node2
socket=/run/mysqld/mysqld-node2.sock
pid-file=/run/mysqld/mysqld-node2.pid
port=3307
server_id=%d
log_bin=/var/lib/mysql-node2/node2-bin
relay_log=/var/lib/mysql-node2/node2-relay-bin
innodb_buffer_pool_size=32M
"""
NODE2_SOCKET = '/run/mysqld/mysqld-node2.sock'
# A unit whose start takes longer than datadir_swap's start_timeout, as a crash recovery
# would, and a start rate limit that holds for ten minutes (as some set it).
SLOW_START = '[Service]\nExecStartPre=/bin/sleep 6\n'
LONG_RATE_LIMIT = '[Unit]\nStartLimitIntervalSec=600\nStartLimitBurst=3\n'


def instance_inventory(lab, tmp_path, primary, host, alias, hostvars):
    """An inventory of primary and one replica, `alias`: another server on `host` (its
    address), told apart by `hostvars` (its unit, its socket)."""
    inv = lab.inventory(primary.name, [host.name])
    replicas = inv['all']['children']['mariadb_replicas']['hosts']
    replicas[alias] = dict(replicas.pop(host.name), **hostvars)
    path = str(tmp_path / 'inventory-instance.json')
    with open(path, 'w') as f:
        json.dump(inv, f, indent=2)
    return path


def drop_in(host, unit, name, text):
    path = '/etc/systemd/system/%s.d/%s.conf' % (unit, name)
    host.run(['mkdir', '-p', os.path.dirname(path)])
    host.run(['tee', path], input=text)
    host.run('systemctl daemon-reload')


def assert_refused_untouched(proc, results, host, message, files):
    """The run failed for host at its paths step with message, before any copy."""
    assert proc.returncode != 0, proc.stdout[-4000:]
    lines = [line for line in failing_tasks(proc.stdout) if message in line]
    assert lines, failure_report(proc, [host])
    assert '%s: paths: ' % host.name in lines[0] and 'nothing was changed' in lines[0], lines
    assert 'Traceback' not in proc.stdout
    assert host.run('ls -d /data/mysql/#sql-reseed-* /data/mysql.reseed-* /home/mysql/*',
                    check=False).stdout.strip() == ''
    assert host.run(['find', '/data/mysql', '-maxdepth', '1', '-printf', '%p %s\\n']).stdout == files
    print('refused: %s' % lines[0])
    return results


def test_refusals_dead_replica_and_instance_on_systemd(make_hosts, inventory, repl_password,
                                                       run_module, lab, tmp_path):
    """On systemd hosts: (1) a replica whose server was started by hand while its unit is
    inactive is refused before the copy (systemctl stop would not stop it); (2) a dead
    replica whose datadir was moved under /home, which the unit's ProtectHome hides, is
    refused before the copy; (3) a dead replica (its datadir no longer starts) behind a
    start rate limit that holds for 10 minutes, forced: healed, the limit reset; the other
    replica left alone throughout, a writer on the primary; (4) an instance unit
    mariadb@node2 on the other replica, swapped by datadir_swap alone while mariadb.service
    beside it keeps running, its start slower than start_timeout (the unit's own
    TimeoutStartSec bounds it)."""
    names = ('primary', 'r1', 'r2')
    hosts = make_hosts(*names, hardened=names, systemd=names)
    primary, r1, r2 = (hosts[n] for n in names)
    scenarios.setup_replication(primary, [r1, r2], repl_password, rows=2000)
    inv = inventory(primary, [r1, r2])
    forced = {'replica_rebuild_replication_user': 'repl',
              'replica_rebuild_replication_password': repl_password,
              'replica_rebuild_force': True}
    r1_pid, r1_view = mariadbd_pid(r1), systemd_view(r1)

    # 1. Started by hand, the unit inactive: a stop of the unit would not stop it.
    r2.run('systemctl stop mariadb && install -d -o mysql -g root /run/mysqld && '
           'setsid -f mariadbd --user=mysql </dev/null >/dev/null 2>&1')
    scenarios.wait_for(lambda: isinstance(r2.sql('SELECT 1', check=False), list),
                       what='the server started by hand on %s' % r2.name)
    by_hand = mariadbd_pid(r2)
    files = r2.run(['find', '/data/mysql', '-maxdepth', '1', '-printf', '%p %s\\n']).stdout
    proc, results = run_playbook_results(inv, REBUILD, forced, limit=r2.name)
    assert_refused_untouched(
        proc, results, r2, 'mariadbd (pid %s) runs outside mariadb.service (the unit is '
        'inactive)' % by_hand, files)
    assert mariadbd_pid(r2) == by_hand and r2.unit_state()['ActiveState'] == 'inactive'
    r2.run('mariadb-admin shutdown')
    scenarios.wait_for(lambda: mariadbd_pid(r2) == '', what='the hand-started server gone')

    # 2. Dead, its option files pointing under /home, which ProtectHome hides from the unit.
    r2.run(['tee', '/etc/mysql/mariadb.conf.d/99-moved.cnf'],
           input='[mysqld]\ndatadir=/home/mysql\n')
    r2.run('install -d -o mysql -g mysql /home/mysql')
    files = r2.run(['find', '/data/mysql', '-maxdepth', '1', '-printf', '%p %s\\n']).stdout
    proc, results = run_playbook_results(inv, REBUILD, forced, limit=r2.name)
    assert_refused_untouched(proc, results, r2, '/home/mysql is under /home, /root or '
                             '/run/user, which mariadb.service hides from the server '
                             '(ProtectHome=yes)', files)
    r2.run('rm -r /etc/mysql/mariadb.conf.d/99-moved.cnf /home/mysql')

    # 3. Dead (its datadir no longer starts), the unit held by a start rate limit of 10
    # minutes: forced, healed; the limit is reset by the swap and the unit left enabled.
    drop_in(r2, 'mariadb.service', 'limit', LONG_RATE_LIMIT)
    r2.run(['truncate', '-s', '0', '/data/mysql/ibdata1'])
    for dummy in range(4):
        r2.run('systemctl start mariadb', check=False)
    dead = r2.unit_state('mariadb', UNIT + ('Result',))
    assert dead['ActiveState'] == 'failed', dead
    refused = r2.journal(lines=5)
    assert 'Start request repeated too quickly' in refused, refused
    with LoadGenerator(primary, rate=WRITER_RATE, max_rows=10 ** 7) as writer:
        proc, results = run_playbook_results(inv, REBUILD, forced, limit=r2.name)
    assert proc.returncode == 0, failure_report(proc, (r2,))
    assert writer.errors == [] and writer.inserted > 0, writer.errors
    assert results['replica_rebuild_results'][r2.name]['action'] == 'rebuilt', results
    state = r2.unit_state('mariadb', UNIT + ('Result',))
    assert (state['ActiveState'], state['SubState'], state['MainPID'], state['Result'],
            state['UnitFileState']) == ('active', 'running', mariadbd_pid(r2), 'success',
                                        dead['UnitFileState']), (dead, state)
    scenarios.wait_running(r2)
    scenarios.wait_caught_up(primary, r2)
    for table in ('labdb.t', 'labdb.load'):
        query = 'CHECKSUM TABLE %s' % table
        assert r2.sql(query)[0][1] == primary.sql(query)[0][1], table
    kept = r2.run('ls -d /data/mysql/#sql-reseed-old-*').stdout.split()
    assert len(kept) == 1, kept
    # The datadir kept is the damaged one, as it was (its ibdata1 emptied).
    assert r2.run(['stat', '-c', '%s', kept[0] + '/ibdata1']).stdout.strip() == '0'
    # The other replica was left alone through the three runs.
    assert (mariadbd_pid(r1), systemd_view(r1)) == (r1_pid, r1_view)

    # 4. An instance of mariadb@.service beside mariadb.service on r1, a replica of the
    # primary of its own, broken (1062): rebuilt through the role, inventory host r1-node2
    # (r1's address, the instance's unit and socket), under a writer; mariadb.service
    # beside it untouched, the instance's own account kept.
    r1.run(['tee', '/etc/mysql/mariadb.conf.d/70-node2.cnf'], input=NODE2_CNF % (r1.server_id + 1000))
    r1.run('install -d -o mysql -g mysql -m 0750 /var/lib/mysql-node2 && '
           'systemctl start mariadb@node2')
    instance = r1.at_socket(NODE2_SOCKET)
    scenarios.start_replication(primary, instance, repl_password)
    scenarios.wait_caught_up(primary, instance)
    instance.sql("SET SESSION sql_log_bin=0; CREATE USER n2app@localhost IDENTIFIED BY 'n2';"
                 "GRANT SELECT ON labdb.* TO n2app@localhost")
    scenarios.break_1062(primary, instance)
    alias = r1.name + '-node2'
    inv_node2 = instance_inventory(lab, tmp_path, primary, r1, alias, {
        'replica_rebuild_service_name': 'mariadb@node2',
        'replica_rebuild_login_unix_socket': NODE2_SOCKET})
    node2_before = r1.unit_state('mariadb@node2', UNIT)
    with LoadGenerator(primary, rate=WRITER_RATE, max_rows=10 ** 7) as writer:
        proc, results = run_playbook_results(inv_node2, REBUILD, {
            'replica_rebuild_replication_user': 'repl',
            'replica_rebuild_replication_password': repl_password}, limit=alias)
    assert proc.returncode == 0, failure_report(proc, (r1,))
    assert writer.errors == [] and writer.inserted > 0, writer.errors
    result = results['replica_rebuild_results'][alias]
    assert (result['diagnosis_before'], result['action'], result['diagnosis_after']) == (
        'broken', 'rebuilt', 'healthy'), result
    assert ' tables equal at ' in result['verified'], result
    node2_after = r1.unit_state('mariadb@node2', UNIT)
    assert (node2_after['ActiveState'], node2_after['NRestarts']) == (
        'active', node2_before['NRestarts']), (node2_before, node2_after)
    assert node2_after['MainPID'] != node2_before['MainPID'], (node2_before, node2_after)
    scenarios.wait_running(instance)
    scenarios.wait_caught_up(primary, instance)
    for table in ('labdb.t', 'labdb.load'):
        query = 'CHECKSUM TABLE %s' % table
        assert instance.sql(query)[0][1] == primary.sql(query)[0][1], table
    assert instance.sql_value("SELECT COUNT(*) FROM mysql.user WHERE user = 'n2app'") == '1'
    assert instance.sql_value('SELECT @@port') == '3307'
    assert len(r1.run('ls -d /var/lib/mysql-node2.reseed-old-*').stdout.split()) == 1
    # r1's own server, mariadb.service, was left alone: same pid, still replicating.
    assert (r1.unit_state('mariadb', UNIT)['MainPID'], r1.slave_status()['Slave_SQL_Running']) == (
        r1_pid, 'Yes')
    print('mariadb@node2 rebuilt through the role: %s' % result)

    # 5. The same instance, swapped by datadir_swap alone, its start slower than start_timeout.
    node2 = ['mariadb', '-S', NODE2_SOCKET]
    r1.run(node2 + ['-e', 'CREATE DATABASE n2; CREATE TABLE n2.kept (id INT PRIMARY KEY); '
                    'INSERT INTO n2.kept VALUES (1), (2)'])
    staging = '/var/lib/mysql-node2.reseed-staging'
    r1.run(['mariadb-backup', '--defaults-group-suffix=.node2', '--backup',
            '--socket=' + NODE2_SOCKET, '--target-dir=' + staging])
    r1.run(['mariadb-backup', '--prepare', '--target-dir=' + staging])
    r1.run(['touch', staging + '/reseed_received'])
    r1.run(node2 + ['-e', 'DROP DATABASE n2'])  # the copy has it, the old datadir not
    drop_in(r1, 'mariadb@node2.service', 'slow', SLOW_START)
    before = r1.unit_state('mariadb@node2', UNIT)
    started = time.time()
    res = run_module(inv, r1.name, 'datadir_swap', {
        'staging': staging, 'service_name': 'mariadb@node2', 'login_unix_socket': NODE2_SOCKET,
        'start_timeout': 3})
    took = time.time() - started
    assert not res.failed, res.result
    assert res['service']['unit'] == 'mariadb@node2.service', res['service']
    state = r1.unit_state('mariadb@node2', UNIT)
    assert (state['ActiveState'], state['SubState']) == ('active', 'running'), state
    assert state['MainPID'] != before['MainPID'] and state['NRestarts'] == before['NRestarts']
    assert r1.run(node2 + ['-N', '-e', 'SELECT COUNT(*) FROM n2.kept']).stdout.strip() == '2'
    assert res['old_datadir'].startswith('/var/lib/mysql-node2.reseed-old-'), res['old_datadir']
    # Held in the instance's own group, in a file of its own: mariadb.service does not read it.
    hold = '/etc/mysql/mariadb.conf.d/99-reseed-hold-node2.cnf'
    assert res['hold_config'] == hold, res['hold_config']
    assert '[mariadbd.node2]' in r1.run(['cat', hold]).stdout
    assert r1.run(node2 + ['-N', '-e', 'SELECT @@read_only']).stdout.strip() == '1'
    assert r1.sql_value('SELECT @@read_only') == '0'
    r1.run(['rm', hold])
    # The server beside it, r1's own mariadb.service, was not touched.
    assert r1.unit_state('mariadb', UNIT)['MainPID'] == r1_pid
    assert r1.slave_status()['Slave_SQL_Running'] == 'Yes'
    print('mariadb@node2 swapped in %.1f s (its start takes 6 s more, start_timeout 3 s): %s'
          % (took, res['msg']))
