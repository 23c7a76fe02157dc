# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir_swap on real hosts: the swap, the mount-point layout, rollback, refusals, check
mode and binlogs kept outside the datadir."""

from __future__ import annotations

import json
import secrets

import pytest

import scenarios

STAGING = '/var/lib/mysql.reseed-staging'
MOUNT_STAGING = '/var/lib/mysql/#sql-reseed-staging'


def make_copy(host, staging=STAGING, prepare=True):
    """A copy of the host's own server holding rows 1..3 in swaptest.t; afterwards the live
    server gets row 4, which only the old datadir holds."""
    host.sql('CREATE DATABASE IF NOT EXISTS swaptest; '
             'CREATE TABLE swaptest.t (id INT PRIMARY KEY) ENGINE=InnoDB; '
             'INSERT INTO swaptest.t VALUES (1),(2),(3)')
    host.run(['mariadb-backup', '--backup', '--target-dir=' + staging])
    if prepare:
        host.run(['mariadb-backup', '--prepare', '--target-dir=' + staging])
    host.run(['touch', staging + '/reseed_received'])
    host.sql('INSERT INTO swaptest.t VALUES (4)')


def pid(host):
    return host.run('cat /run/mysqld/mysqld.pid').stdout.strip()


def listing(host, path):
    return host.run(['find', path, '-printf', '%p %s %T@\\n']).stdout


def rows(host):
    return [r[0] for r in host.sql('SELECT id FROM swaptest.t ORDER BY id')]


@pytest.fixture
def one(make_hosts, inventory):
    host = make_hosts('r')['r']
    return host, inventory(host)


def test_swap_plain_datadir(one, run_module):
    host, inv = one
    make_copy(host)
    before = pid(host)
    res = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING})
    assert not res.failed, res.result
    assert res.changed and res['layout'] == 'rename'
    old = res['old_datadir']
    assert old.startswith('/var/lib/mysql.reseed-old-')
    assert 0 < res['downtime_seconds'] < 120
    assert pid(host) != before
    assert rows(host) == ['1', '2', '3']
    assert host.sql_value('SELECT @@read_only') == '1'
    # skip_slave_start is an option, not a variable in 10.11: the server's options show it.
    assert '--skip_slave_start' in host.run(['my_print_defaults', 'mariadbd']).stdout.split()
    assert host.run('cat %s' % res['hold_config']).stdout.count('skip_slave_start') == 1
    # The old datadir is kept, whole, private; the copy is no longer at the staging path.
    assert host.run(['test', '-f', old + '/swaptest/t.ibd']).returncode == 0
    assert host.run(['test', '-f', old + '/ibdata1']).returncode == 0
    assert host.run(['stat', '-c', '%U %a', old, '/var/lib/mysql']).stdout.split() == [
        'mysql', '700', 'mysql', '700']
    # Debian's debian-start (mariadb-upgrade, run as root at each start) writes
    # mysql_upgrade_info as root, as on any Debian host: the one file not the server's.
    host.wait_start_scripts()
    assert host.run(['find', '/var/lib/mysql', '!', '-user', 'mysql']).stdout.split() in (
        [], ['/var/lib/mysql/mysql_upgrade_info'])
    assert host.run(['test', '-e', STAGING], check=False).returncode != 0
    # Again with the same (now swapped-in) staging: nothing changes, nothing restarts.
    again = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING})
    assert not again.failed and not again.changed, again.result
    assert again['old_datadir'] == old and pid(host) != before


def test_keep_old_false_deletes_the_old_datadir_once_the_new_one_runs(one, run_module):
    host, inv = one
    make_copy(host)
    # An account only the old server has: the new one refuses it, which still proves it
    # accepts connections (the copy brings the source's accounts).
    password = "Sw'ap\\" + secrets.token_hex(6)
    host.sql("CREATE USER swapadm@localhost IDENTIFIED BY %s" % scenarios.q(password))
    res = run_module(inv, host.name, 'datadir_swap', {
        'staging': STAGING, 'keep_old': False, 'login_user': 'swapadm',
        'login_password': password})
    assert not res.failed and res['old_deleted'] is True, res.result
    assert password not in res.stdout + res.stderr + json.dumps(res.result)
    assert host.run(['test', '-e', res['old_datadir']], check=False).returncode != 0
    assert rows(host) == ['1', '2', '3']


def test_swap_mount_point_datadir(make_hosts, inventory, run_module):
    host = make_hosts('m', datadir_mount=('m',))['m']
    inv = inventory(host)
    make_copy(host, MOUNT_STAGING)
    # Refused beside the datadir: that would be another filesystem, a full copy.
    host.run(['mkdir', STAGING])
    bad = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING})
    assert bad.failed and 'step preflight' in bad['msg'], bad.result
    assert 'another filesystem' in bad['msg'] and MOUNT_STAGING in bad['msg'], bad['msg']
    res = run_module(inv, host.name, 'datadir_swap', {'staging': MOUNT_STAGING})
    assert not res.failed, res.result
    assert res['layout'] == 'entries'
    old = res['old_datadir']
    assert old.startswith('/var/lib/mysql/#sql-reseed-old-')
    assert rows(host) == ['1', '2', '3']
    assert host.run(['test', '-f', old + '/swaptest/t.ibd']).returncode == 0
    assert host.run(['mountpoint', '-q', '/var/lib/mysql']).returncode == 0
    # The kept datadir is inside the live one, under a name the server does not list.
    assert host.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE '#%'") == []
    assert host.run('mariadb-dump --all-databases > /dev/null', check=False).returncode == 0


def external_logs(host):
    host.run('cat > /etc/mysql/mariadb.conf.d/70-external-logs.cnf',
             input='[mariadbd]\nlog_bin = /var/log/mysql/mysql-bin\n'
                   'relay_log = /var/log/mysql/relay-bin\n')
    host.service('restart')
    assert host.sql_value('SELECT @@log_bin_basename') == '/var/log/mysql/mysql-bin'


# The plain layout on 10.11 is external_logs' datadir (its logs aside); through the role, a copy
# that does not start is test_fleet_faults.py's (step 2).
@pytest.mark.parametrize('setup,release', [
    ('mount_point', None), ('external_logs', None),
    ('plain', 'trixie'),  # MariaDB 11.8 (docs/VERSIONS.md)
], ids=['mount_point', 'external_logs', 'plain-11.8'])
def test_corrupt_copy_rolls_back(make_hosts, inventory, run_module, setup, release):
    host = make_hosts('r', datadir_mount=('r',) if setup == 'mount_point' else (),
                      release={'r': release} if release else None)['r']
    inv = inventory(host)
    # 11.8's mariadb-backup names its metadata mariadb_backup_*, 10.11's xtrabackup_*.
    checkpoints = 'mariadb_backup_checkpoints' if release else 'xtrabackup_checkpoints'
    staging = MOUNT_STAGING if setup == 'mount_point' else STAGING
    if setup == 'external_logs':
        external_logs(host)
    make_copy(host, staging)
    datadir_before = host.run('ls -a /var/lib/mysql').stdout
    host.run(['chmod', '0750', '/var/lib/mysql'])  # not the 0700 the swap gives the old one
    logs_before = host.run('ls /var/log/mysql').stdout
    host.run(['truncate', '-s', '0', staging + '/ibdata1'])
    before = pid(host)
    res = run_module(inv, host.name, 'datadir_swap', {'staging': staging, 'start_timeout': 60})
    assert res.failed
    assert 'step start the new server' in res['msg'] and 'rolled back' in res['msg'], res['msg']
    assert staging in res['msg'] and 'Traceback' not in res['msg']
    assert '\n' not in res['msg']
    # The old server runs on its own data; the hold file is gone; the copy is kept.
    assert rows(host) == ['1', '2', '3', '4']
    assert host.sql_value('SELECT @@read_only') == '0'
    assert pid(host) != before  # stopped for the swap, started again on the old datadir
    if release:
        assert host.sql_value('SELECT @@version').startswith('11.8.')
    assert host.run(['test', '-e', res['hold_config']], check=False).returncode != 0
    assert host.run(['test', '-f', staging + '/' + checkpoints]).returncode == 0
    assert host.run(['test', '-f', staging + '/reseed_swapped'], check=False).returncode != 0
    assert host.run('ls -d /var/lib/mysql.reseed-old-* /var/lib/mysql/#sql-reseed-old-*',
                    check=False).stdout == ''
    assert host.run(['stat', '-c', '%a', '/var/lib/mysql']).stdout.strip() == '750'
    # The datadir holds what it held (the server may add its own runtime files back).
    after = set(host.run('ls -a /var/lib/mysql').stdout.split())
    assert set(datadir_before.split()) - after == set()
    assert host.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE '#%'") == []
    if setup == 'external_logs':
        assert set(logs_before.split()) <= set(host.run('ls /var/log/mysql').stdout.split())
        assert host.sql('SHOW BINARY LOGS')[0][0] == 'mysql-bin.000001'


def test_unprepared_copy_refused_before_stopping(one, run_module):
    host, inv = one
    make_copy(host, prepare=False)
    before, files = pid(host), listing(host, '/var/lib/mysql/swaptest')
    res = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING})
    assert res.failed and 'step preflight' in res['msg'] and 'not prepared' in res['msg'], res
    assert 'backup_prepare' in res['msg']
    assert pid(host) == before and listing(host, '/var/lib/mysql/swaptest') == files


def test_check_mode_changes_nothing(one, run_module):
    host, inv = one
    make_copy(host)
    before = pid(host)
    files = listing(host, '/var/lib/mysql/swaptest') + listing(host, STAGING)
    res = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING}, check=True)
    assert not res.failed and res.changed, res.result
    assert res['msg'].startswith('would stop mariadb')
    assert res['old_datadir'].startswith('/var/lib/mysql.reseed-old-')
    assert pid(host) == before
    assert listing(host, '/var/lib/mysql/swaptest') + listing(host, STAGING) == files
    assert host.run('ls /etc/mysql/mariadb.conf.d/').stdout.count('reseed') == 0


def test_external_binlog_and_relay_log_moved_aside(one, run_module):
    host, inv = one
    external_logs(host)
    make_copy(host)
    # A transaction of the old server's own (an errant GTID, on a replica): in its binlog
    # state, which it writes to mysql-bin.state when it stops.
    host.sql('SET SESSION gtid_domain_id = 7; INSERT INTO swaptest.t VALUES (5)')
    assert '7-' in host.sql_value('SELECT @@gtid_binlog_state')
    host.sql('FLUSH BINARY LOGS')
    old_logs = host.run('ls /var/log/mysql').stdout.split()
    assert 'mysql-bin.000002' in old_logs
    res = run_module(inv, host.name, 'datadir_swap', {'staging': STAGING})
    assert not res.failed, res.result
    moved = {e['from'].rsplit('/', 1)[1]: e['to'] for e in res['external_logs']}
    assert {'mysql-bin.000001', 'mysql-bin.000002', 'mysql-bin.index',
            'mysql-bin.state'} <= set(moved), moved
    # The new server's binlog state is its own: none of the old server's GTIDs.
    assert '7-' not in host.sql_value('SELECT @@gtid_binlog_state')
    for to in moved.values():
        assert to.startswith('/var/log/mysql/reseed-old-')
        assert host.run(['test', '-f', to]).returncode == 0
    # The new server began its own binlog: the old files are not in its index.
    assert [r[0] for r in host.sql('SHOW BINARY LOGS')] == ['mysql-bin.000001']
    assert rows(host) == ['1', '2', '3']


def test_staging_on_another_filesystem_refused_before_stopping(one, run_module):
    host, inv = one
    make_copy(host, '/tmp/staging')  # /tmp is the host's own mount, not /var/lib's
    before = pid(host)
    res = run_module(inv, host.name, 'datadir_swap', {'staging': '/tmp/staging'})
    assert res.failed and 'step preflight' in res['msg'], res.result
    assert 'another filesystem' in res['msg'] and STAGING in res['msg'], res['msg']
    assert pid(host) == before and rows(host) == ['1', '2', '3', '4']
