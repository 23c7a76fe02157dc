# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A dead replica (issue 12, item 4): its server stopped. The diagnosis says `down`; the
playbook leaves it alone and fails for it, after the other replicas, unless
replica_rebuild_force=true, which rebuilds it (under writes on the primary) from the option
files' paths, on production-shaped hosts (the datadir /data/mysql on its own mount, the logs in
/var/log/mysql: the paths come from the option files, the old datadir is kept in the mount).
And datadir_swap on a server that is down: a rollback leaves it stopped; a server that runs
but does not answer is refused."""

from __future__ import annotations

import json
import os
import subprocess

import scenarios
from ansible_run import REPO, run_playbook, run_playbook_results
from faults import LoadGenerator

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
# The playbook's last play: one line per replica, then the failure of a replica left alone
# because its server is down, held until the others are done.
LAST_PLAY = 'Sum up, then fail the replicas left alone because their server is down'
PATH_VARIABLES = ('datadir', 'pid_file', 'log_error', 'log_bin_basename', 'log_bin_index',
                  'relay_log_basename', 'relay_log_index')
STAGING = '/var/lib/mysql.reseed-staging'


# The first test's hosts are production-shaped (tests/lab/README.md, hardened): the datadir
# /data/mysql on its own mount (the old one kept inside it), binlogs and relay logs in
# /var/log/mysql, Ansible as `ops` with sudo.
HARD_DATADIR = '/data/mysql'


def listing(host, path='/var/lib/mysql'):
    """Every file under path with its size and modification time."""
    return sorted(host.run(['find', path, '-printf', '%p %s %T@\\n']).stdout.splitlines())


def server_pids(host):
    return host.run('pidof mariadbd', check=False).stdout.split()


def recap(stdout, host):
    """The PLAY RECAP line of host."""
    return next(line for line in stdout.split('PLAY RECAP')[-1].splitlines()
                if line.startswith(host.name + ' '))


def assert_down(res, datadir=HARD_DATADIR):
    assert not res.failed, res.result
    assert res['state'] == 'down' and res['needs_rebuild'] is False, res.result
    assert 'the server is down, no mariadbd process runs' in res['reason'], res['reason']
    assert res['datadir'] == datadir and res['server_pids'] == []


def assert_refused(run, dead, files):
    """The playbook without force: that replica fails with the one-line message, untouched,
    and its result says refused, from the diagnosis down."""
    proc, results = run
    assert proc.returncode != 0, proc.stdout[-4000:]
    result = results['replica_rebuild_results'][dead.name]
    assert (result['action'], result['diagnosis_before'], result['diagnosis_after']) == (
        'refused', 'down', 'down'), result
    message = '%s: the server is down, no mariadbd process runs' % dead.name
    assert message in proc.stdout, proc.stdout[-4000:]
    assert 'nothing on this replica was touched; replica_rebuild_force=true rebuilds it' in proc.stdout
    assert 'failed=1' in recap(proc.stdout, dead), recap(proc.stdout, dead)
    assert listing(dead, HARD_DATADIR) == files
    assert server_pids(dead) == []


def assert_rebuilt(proc, primary, dead, old_datadirs):
    assert proc.returncode == 0, proc.stdout[-6000:]
    s = dead.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), scenarios.threads(s)
    scenarios.wait_caught_up(primary, dead)
    assert dead.sql_value('SELECT COUNT(*) FROM labdb.t') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.t')
    assert 'tables equal at' in proc.stdout
    assert dead.sql_value('SELECT @@datadir') == HARD_DATADIR + '/'
    assert dead.sql_value('SELECT @@relay_log_basename') == '/var/log/mysql/relay-bin'
    assert dead.run(['findmnt', '-n', '-o', 'TARGET', '--target', HARD_DATADIR]).stdout.strip() \
        == HARD_DATADIR
    kept = dead.run('ls -d %s/#sql-reseed-old-*' % HARD_DATADIR).stdout.split()
    assert len(kept) == old_datadirs, kept
    return sorted(kept)[-1]


def test_dead_replica_stopped_refused_then_forced(make_hosts, inventory, run_module,
                                                  repl_password):
    roles = ('primary', 'dead', 'healthy')
    hosts = make_hosts(*roles, hardened=roles)
    primary, dead, healthy = hosts['primary'], hosts['dead'], hosts['healthy']
    scenarios.setup_replication(primary, [dead, healthy], repl_password, rows=3000)
    # serial 1, inventory order: the dead replica's batch comes first.
    inv = inventory(primary, [dead, healthy])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}
    forced = dict(extra, replica_rebuild_force=True)
    live_paths = dict(zip(PATH_VARIABLES, dead.sql(
        'SELECT ' + ', '.join('@@' + v for v in PATH_VARIABLES))[0]))
    healthy_pid = server_pids(healthy)

    # (a) The server stopped.
    dead.service('stop')
    info = run_module(inv, dead.name, 'replication_info', {})
    assert_down(info)
    # The option files give the paths the running server reported.
    assert info['server_paths'] == dict(
        # log_error: '' from a server with none (systemd), None from option files naming none.
        (k, v.rstrip('/') if k == 'datadir' else (v or None)) for k, v in live_paths.items()) | {
        'innodb_data_home_dir': None, 'innodb_log_group_home_dir': None,
        'innodb_undo_directory': None}, (info['server_paths'], live_paths)
    # A host that must run (the primary, in the role) fails instead, saying so.
    must = run_module(inv, dead.name, 'replication_info', {'fail_when_down': True})
    assert must.failed and 'replication_info on %s: the server is down' % dead.name in must['msg']
    # Wrong credentials on a running server still fail: that is no 'down'.
    denied = run_module(inv, healthy.name, 'replication_info',
                        {'login_user': 'nobody', 'login_password': 'wrong'})
    assert denied.failed and '(1045)' in denied['msg'], denied.result

    files = listing(dead, HARD_DATADIR)
    refused, results = run_playbook_results(inv, PLAYBOOK, extra)
    assert_refused((refused, results), dead, files)
    assert results['replica_rebuild_results'][healthy.name]['action'] == 'none', results
    # The other replica was still handled, after the dead one's batch: the play went on.
    assert '%s: healthy (' % healthy.name in refused.stdout, refused.stdout[-4000:]
    assert 'failed=0' in recap(refused.stdout, healthy)
    assert server_pids(healthy) == healthy_pid
    # The failure is held until the end (a failed batch of serial 1 would end the play).
    before, after = refused.stdout.split('PLAY [%s]' % LAST_PLAY)
    assert '%s: healthy (' % healthy.name in before
    assert 'fatal: [%s]' % dead.name in after and 'fatal: [%s]' % healthy.name not in after

    # Forced, under writes on the primary: rebuilt from the option files' paths, the old
    # datadir kept in the mount; the healthy replica left alone.
    with LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        rebuilt = run_playbook(inv, PLAYBOOK, forced, limit=dead.name)
    assert writer.errors == [] and writer.inserted > 0, writer.errors[:3]
    old = assert_rebuilt(rebuilt, primary, dead, old_datadirs=1)
    assert dead.run(['test', '-f', old + '/ibdata1']).returncode == 0
    assert dead.sql_value('SELECT COUNT(*) FROM labdb.load') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.load')
    assert server_pids(healthy) == healthy_pid
    # (A server that no longer starts, its datadir damaged, forced: test_systemd.py, case 3.)

    # A primary that is down is no rebuild case: the diagnosis fails, naming it, and (as any
    # failure but a dead replica's) ends the run: the replicas run together (the fleet), so
    # each fails there, and nothing changed on either.
    primary.service('stop')
    stopped = run_playbook(inv, PLAYBOOK, forced)
    assert stopped.returncode != 0
    assert 'replication_info on %s: the server is down, no mariadbd process runs' % (
        primary.name) in stopped.stdout, stopped.stdout[-4000:]
    assert 'PLAY [%s]' % LAST_PLAY not in stopped.stdout
    for replica in (dead, healthy):
        assert 'changed=0' in recap(stopped.stdout, replica), stopped.stdout[-3000:]
    assert server_pids(healthy) == healthy_pid


def test_swap_on_a_down_server_rolls_back_stopped_and_refuses_a_live_one(
        make_hosts, inventory, run_module):
    # Hand-started: the hidden server below is one more server with no unit, which a
    # systemd host would name as run outside its unit first (test_systemd.py covers that).
    host = make_hosts('r', systemd=())['r']
    inv = inventory(host)
    host.sql('CREATE DATABASE swaptest; CREATE TABLE swaptest.t (id INT PRIMARY KEY); '
             'INSERT INTO swaptest.t VALUES (1)')
    host.run(['mariadb-backup', '--backup', '--target-dir=' + STAGING])
    host.run(['mariadb-backup', '--prepare', '--target-dir=' + STAGING])
    host.run(['touch', STAGING + '/reseed_received'])
    host.run(['truncate', '-s', '0', STAGING + '/ibdata1'])  # a copy that cannot start
    host.service('stop')

    # A server that runs but does not answer (no socket where clients look, no TCP): it is
    # not stopped behind its back. Started here, by us, and stopped by its pid.
    server = host.popen(['/usr/sbin/mariadbd', '--user=mysql', '--skip-networking',
                         '--socket=/tmp/hidden.sock', '--pid-file=/tmp/hidden.pid'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        scenarios.wait_for(lambda: host.run('test -S /tmp/hidden.sock', check=False)
                           .returncode == 0, what='the hidden server listens')
        pid = int(host.run('cat /tmp/hidden.pid').stdout)
        info = run_module(inv, host.name, 'replication_info', {})
        assert info['state'] == 'down' and info['server_pids'] == [pid], info.result
        assert 'a mariadbd process runs (pid %d) and does not accept connections' % pid \
            in info['reason']
        res = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING})
        assert res.failed and 'step read the server' in res['msg'], res.result
        assert 'a mariadbd process (pid %d) serves /var/lib/mysql' % pid in res['msg']
        assert 'nothing was moved' in res['msg'] and '\n' not in res['msg']
    finally:
        host.run(['kill', str(int(host.run('cat /tmp/hidden.pid').stdout))], check=False)
        server.wait(timeout=120)
    assert server_pids(host) == []
    assert host.run(['test', '-d', STAGING]).returncode == 0
    files = listing(host)

    # Down, and the copy does not start: rolled back, the server left stopped as it was.
    res = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING, 'start_timeout': 60})
    assert res.failed and res['server_was_running'] is False, res.result
    assert 'step start the new server' in res['msg'], res['msg']
    assert 'the old datadir is back at /var/lib/mysql and its server is left stopped, as it was' \
        in res['msg'], res['msg']
    assert server_pids(host) == []
    assert host.run(['test', '-e', res['hold_config']], check=False).returncode != 0
    assert host.run('ls -d /var/lib/mysql.reseed-old-*', check=False).stdout == ''
    # The old datadir as it was: same files, sizes and times (the server never ran on it).
    assert listing(host) == files
    assert host.run(['test', '-f', STAGING + '/xtrabackup_checkpoints']).returncode == 0
    assert json.loads(json.dumps(res['external_logs'])) == []
