# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rebuild on production-shaped hosts (tests/lab/README.md, hardened): Ansible logs in
as the unprivileged `ops` with sudo, sshd refuses root, the datadir is /data/mysql on its own
mount, binlogs and relay logs in /var/log/mysql. With the role's defaults (transport tls) no
database host logs in to another; what stands in the way is said before anything changes."""

from __future__ import annotations

import os
import re

import scenarios
from ansible_run import REPO, run_playbook, run_playbook_results, task_lines
from faults import LoadGenerator, logins_between
from secrets_watch import SecretsWatch

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
STATUS = os.path.join(REPO, 'playbooks', 'replica_status.yml')
STAGING = '/data/mysql/#sql-reseed-staging'


def mariadbd_pid(host):
    return host.run('pidof mariadbd').stdout.strip()


def unchanged(replica, pid, other_hosts):
    """Nothing changed on the replica: same server, no staging, no certificate or key left."""
    assert mariadbd_pid(replica) == pid
    assert replica.run(['test', '-e', STAGING], check=False).returncode == 1
    for host in [replica] + other_hosts:
        assert host.run('ls -d /tmp/reseed-cert-* 2>/dev/null || true').stdout == ''


def one_fatal_msg(stdout):
    msgs = re.findall(r'^fatal: \[[^\]]*\]: FAILED! => .*"msg": "([^"]*)"', stdout, re.M)
    return msgs[-1] if msgs else stdout[-3000:]


def failed_result(results, replica, task, **failure):
    """The role's result of a replica whose rebuild failed: the task, and the module's
    failure fields (changed_nothing true: nothing changed on the replica)."""
    result = results['replica_rebuild_results'][replica.name]
    assert result['action'] == 'failed' and result['failed_task'] == task, result
    assert dict((k, result['failure'][k]) for k in failure) == failure, result
    assert result['failure']['changed_nothing'] is True, result
    return result


def test_rebuild_on_production_shaped_hosts(make_hosts, inventory, repl_password):
    hosts = make_hosts('primary', 'replica', hardened=('primary', 'replica'))
    primary, replica = hosts['primary'], hosts['replica']
    scenarios.setup_replication(primary, [replica], repl_password, rows=3000)
    inv = inventory(primary, [replica])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password,
             'replica_rebuild_force': True}
    pid = mariadbd_pid(replica)
    keys = replica.run('cat /home/ops/.ssh/authorized_keys').stdout

    # 1. sudo asks for a password and none was given: said, with the fix; nothing changed.
    # Reported as any failed rebuild is (main.yml's first block): the result says where.
    replica.set_sudo_password_required(True)
    try:
        proc, results = run_playbook_results(inv, PLAYBOOK, extra)
    finally:
        replica.set_sudo_password_required(False)
    msg = one_fatal_msg(proc.stdout)
    assert proc.returncode != 0 and msg.startswith(
        '%s: preflight: Ansible cannot act as root on this replica (Missing sudo password): '
        'give the become password' % replica.name), msg
    result = results['replica_rebuild_results'][replica.name]
    assert (result['action'], result['failed_task'], result['diagnosis_before']) == (
        'failed', 'Say why Ansible cannot act as root', 'unknown'), result
    unchanged(replica, pid, [primary])

    # 2. The receiver's port cannot be bound (something else listens there).
    holder = replica.run('python3 -c "import socket, time; s = socket.socket(); '
                         's.bind((\'0.0.0.0\', 4444)); s.listen(1); time.sleep(300)" '
                         '>/dev/null 2>&1 & echo $!').stdout.strip()
    try:
        scenarios.wait_for(lambda: ':4444 ' in replica.run('ss -ltnH').stdout, 10)
        proc, results = run_playbook_results(inv, PLAYBOOK, extra)
    finally:
        replica.run(['kill', holder])  # our own process, by its pid
        scenarios.wait_for(lambda: ':4444 ' not in replica.run('ss -ltnH').stdout, 10)
    msg = one_fatal_msg(proc.stdout)
    assert proc.returncode != 0 and 'cannot listen on *:4444: Address already in use: stop what ' \
        'uses the port, or choose another (replica_rebuild_port)' in msg, msg
    failed_result(results, replica, 'Check the replica can receive the copy (staging directory, '
                  'free space, programs, port)', step='preflight', side='replica',
                  code='cannot_listen')
    unchanged(replica, pid, [primary])

    # 3. A firewall on the replica drops the port: the source says which port, and what to
    # do; the receiver is stopped at once; nothing changed on either host.
    replica.block_port(4444)
    try:
        proc, results = run_playbook_results(inv, PLAYBOOK,
                                             dict(extra, replica_rebuild_connect_timeout=8))
    finally:
        replica.unblock_port(4444)
    msg = one_fatal_msg(proc.stdout)
    assert proc.returncode != 0 and msg.startswith(
        '%s: stream from %s: backup_stream to %s:4444 (tls): nothing changed: cannot connect to '
        "the replica's receiver at %s:4444: timed out" % (replica.name, primary.name, replica.ip,
                                                          replica.ip)), msg
    assert 'is open to this host (firewall)' in msg and 'Nothing was swapped' in msg, msg
    failed_result(results, replica, 'Say why the stream failed', step='connect', side='link',
                  code='unreachable')
    unchanged(replica, pid, [primary])
    assert primary.run('pidof mariadb-backup', check=False).returncode == 1

    # 4. Broken by 1236, rebuilt with the defaults: no login between the database hosts, no
    # key anywhere, the certificates gone; data on the mount, binlogs where they were.
    scenarios.break_1236(primary, replica)
    with SecretsWatch([repl_password]) as watch:
        proc = run_playbook(inv, PLAYBOOK, {k: v for k, v in extra.items()
                                            if k != 'replica_rebuild_force'})
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert watch.leaks == [] and repl_password not in proc.stdout + proc.stderr
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        scenarios.threads(s)
    assert 'tables equal at' in proc.stdout
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.t')
    assert replica.sql_value('SELECT @@datadir') == '/data/mysql/'
    assert replica.sql_value('SELECT @@log_bin_basename') == '/var/log/mysql/mysql-bin'
    assert replica.run('findmnt -n -o TARGET --target /data/mysql').stdout.strip() == '/data/mysql'
    assert replica.run('ls -d /data/mysql/#sql-reseed-old-* 2>/dev/null || ls -d '
                       '/data/mysql.reseed-old-*').stdout.strip()
    assert logins_between((primary, replica)) == []
    assert replica.run('cat /home/ops/.ssh/authorized_keys').stdout == keys
    for host in (primary, replica):
        assert host.run('ls -d /tmp/reseed-cert-* 2>/dev/null || true').stdout == ''
    primary.sql('INSERT INTO labdb.t (id) VALUES (900001)')
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t WHERE id = 900001') == '1'


# A dead replica on production-shaped hosts: stopped, refused then forced,
# test_dead_replica.py::test_dead_replica_stopped_refused_then_forced; no longer starting,
# forced, test_systemd.py (case 3).


def test_source_auto_on_production_shaped_hosts(hardened_trio, inventory, repl_password):
    """replica_rebuild_source=auto where every host is production-shaped, while a writer
    inserts on the primary: the status playbook names the broken replica; with the healthy
    replica's replication stopped, check mode chooses the primary and changes nothing; then
    the copy comes from the healthy replica (its mariadb-backup run through sudo by `ops`,
    its coordinates from --slave-info) over tls, no database host logs in to another, no
    secret is shown or in any argv, the healthy replica keeps its server; run again, nothing
    changes."""
    primary, broken, healthy = hardened_trio
    scenarios.break_1062(primary, broken)
    healthy_pid = mariadbd_pid(healthy)
    inv = inventory(primary, [broken, healthy])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}

    status = run_playbook(inv, STATUS)
    assert status.returncode == 0, status.stdout[-3000:]
    assert 'broken; needs_rebuild=True' in status.stdout
    assert 'healthy; needs_rebuild=False' in status.stdout

    # A replica whose replication is stopped is not healthy: auto takes the primary (check
    # mode, which chooses and changes nothing).
    healthy.sql('STOP SLAVE')
    check = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_source='auto'), check=True)
    assert check.returncode == 0, check.stdout[-6000:]
    assert 'source auto: the primary %s (no healthy replica)' % primary.name in check.stdout, \
        check.stdout[-6000:]
    assert broken.slave_status()['Last_SQL_Errno'] == '1062'
    assert broken.run(['test', '-e', STAGING], check=False).returncode == 1
    healthy.sql('START SLAVE')
    scenarios.wait_caught_up(primary, healthy)

    with SecretsWatch([repl_password]) as watch, \
            LoadGenerator(primary, rate=20, max_rows=100000) as writer:
        proc = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_source='auto'),
                            verbosity=1)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert writer.errors == [] and writer.inserted > 0, writer.errors
    assert watch.leaks == [] and repl_password not in proc.stdout + proc.stderr
    assert 'source auto: the healthy replica %s (the highest GTID' % healthy.name in proc.stdout
    assert '"source": "%s"' % healthy.name in proc.stdout, proc.stdout[-6000:]
    # The summary has the stream's figures.
    for field in ('bytes', 'bytes_received', 'stream_seconds', 'downtime_seconds'):
        assert '"%s": ' % field in proc.stdout, field
    s = broken.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running'], s['Last_SQL_Errno']) == \
        ('Yes', 'Yes', '0'), scenarios.threads(s)
    assert s['Using_Gtid'] == 'Slave_Pos'
    assert 'tables equal at' in proc.stdout
    primary.sql('INSERT INTO labdb.t (id) VALUES (900002)')
    for replica in (broken, healthy):
        scenarios.wait_caught_up(primary, replica)
        for table in ('labdb.t', 'labdb.load'):
            assert replica.sql_value('SELECT COUNT(*) FROM %s' % table) == primary.sql_value(
                'SELECT COUNT(*) FROM %s' % table), (replica.name, table)
    assert broken.sql_value('SELECT @@datadir') == '/data/mysql/'
    assert broken.run('ls -d /data/mysql/#sql-reseed-old-* 2>/dev/null || ls -d '
                      '/data/mysql.reseed-old-*').stdout.strip()
    assert broken.run('test -e /etc/mysql/mariadb.conf.d/99-reseed-hold.cnf',
                      check=False).returncode == 1
    # The lab hosts have every package: dpkg said so, the package manager was not called.
    for side in ('replica', 'source'):
        lines = task_lines(proc.stdout, 'Install mariadb-backup, zstd and PyMySQL on the ' + side)
        assert lines and all(line.startswith('skipping: [') for line in lines), (side, lines)
    assert mariadbd_pid(healthy) == healthy_pid
    assert logins_between((primary, broken, healthy)) == []

    # Again: nothing to do, nothing changed, nothing restarted.
    pid = mariadbd_pid(broken)
    again = run_playbook(inv, PLAYBOOK, extra)
    assert again.returncode == 0, again.stdout[-3000:]
    recap = again.stdout.split('PLAY RECAP')[-1]
    assert 'changed=0' in recap and 'changed=1' not in recap, recap
    assert mariadbd_pid(broken) == pid and mariadbd_pid(healthy) == healthy_pid
