# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""replication and replication_info on real servers."""

from __future__ import annotations

import subprocess

import pytest

import scenarios
from secrets_watch import SecretsWatch


@pytest.fixture
def fresh(make_hosts, inventory, repl_password):
    hosts = make_hosts('primary', 'replica')
    primary, replica = hosts['primary'], hosts['replica']
    scenarios.create_replication_user(primary, repl_password)
    scenarios.load_data(primary, rows=500)
    return dict(primary=primary, replica=replica, password=repl_password,
                inventory=inventory(primary, [replica]))


def configure_args(env, **kw):
    args = dict(primary_host=env['primary'].ip, primary_user='repl',
                primary_password=env['password'], primary_connect_retry=1, wait_timeout=60,
                primary_heartbeat_period=2.5)
    args.update(kw)
    return args


def test_gtid_mode_configures_waits_and_is_idempotent(fresh, run_module):
    primary, replica = fresh['primary'], fresh['replica']
    # Check mode first: nothing changes.
    res = run_module(fresh['inventory'], replica.name, 'replication', configure_args(fresh),
                     check=True, diff=True)
    assert not res.failed, res.result
    assert res['changed'] and replica.slave_status() == {}
    with SecretsWatch([fresh['password']]) as watch:
        res = run_module(fresh['inventory'], replica.name, 'replication',
                         configure_args(fresh), diff=True, verbosity=3)
    assert not res.failed, res.result
    assert res['changed'] and res['status']['io_running'] == 'Yes'
    assert res['status']['seconds_behind'] == 0
    assert watch.leaks == [] and fresh['password'] not in res.stdout + str(res.result)
    assert any('MASTER_PASSWORD = \'********\'' in q for q in res['queries'])
    # The diff (printed by Ansible's callback) shows the password only as a mask.
    assert '"primary_password": "********"' in res.stdout, res.stdout[-3000:]
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '500'
    status = replica.slave_status()
    assert status['Using_Gtid'] == 'Slave_Pos' and status['Master_Host'] == primary.ip
    assert res['status']['io_running'] == 'Yes' and res['settings']['primary_heartbeat_period'] == 2.5
    again = run_module(fresh['inventory'], replica.name, 'replication', configure_args(fresh))
    assert not again.failed and again['changed'] is False, again.result
    assert not any(q.startswith(('CHANGE', 'STOP', 'START')) for q in again['queries'])
    # A changed setting is applied, with a stop and a start, and nothing else.
    delayed = run_module(fresh['inventory'], replica.name, 'replication',
                         configure_args(fresh, primary_connect_retry=5), diff=True)
    assert delayed['changed'] and '-    "primary_connect_retry": 1,' in delayed.stdout
    assert replica.slave_status()['Connect_Retry'] == '5'
    # That CHANGE MASTER named no heartbeat period, which the server would have set back to
    # its default (slave_net_timeout / 2): the next run would have changed it again.
    again = run_module(fresh['inventory'], replica.name, 'replication',
                       configure_args(fresh, primary_connect_retry=5))
    assert not again.failed and again['changed'] is False, again['queries']
    assert again['settings']['primary_heartbeat_period'] == 2.5
    # Started means both threads: one stopped by hand is started again, and that is a change.
    for thread in ('SQL_THREAD', 'IO_THREAD'):
        replica.sql('STOP SLAVE %s' % thread)
        res = run_module(fresh['inventory'], replica.name, 'replication',
                         configure_args(fresh, primary_connect_retry=5))
        assert not res.failed and res['changed'], (thread, res.result)
        assert [q for q in res['queries'] if q.startswith(('CHANGE', 'STOP', 'START'))] == [
            "START SLAVE ''"], res['queries']
        status = replica.slave_status()
        assert (status['Slave_IO_Running'], status['Slave_SQL_Running']) == ('Yes', 'Yes'), \
            scenarios.threads(status)


def test_gtid_slave_pos_start_point_and_file_pos_mode(fresh, run_module):
    primary, replica = fresh['primary'], fresh['replica']
    pos = primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    # As after a restore: the replica already has the data up to pos.
    replica.sql('SET SESSION sql_log_bin=0; CREATE DATABASE labdb; '
                'CREATE TABLE labdb.t (id INT PRIMARY KEY, v VARCHAR(64), n INT NOT NULL DEFAULT 0)')
    res = run_module(fresh['inventory'], replica.name, 'replication',
                     configure_args(fresh, gtid_slave_pos=pos))
    assert not res.failed, res.result
    assert replica.sql_value('SELECT @@GLOBAL.gtid_slave_pos') == pos
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '0'  # nothing replayed
    # file/position, the seed's way.
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('marker')")
    file, position = primary.sql('SHOW MASTER STATUS')[0][:2]
    run_module(fresh['inventory'], replica.name, 'replication', {'state': 'reset'})
    assert replica.slave_status() == {}
    res = run_module(fresh['inventory'], replica.name, 'replication', configure_args(
        fresh, mode='file_pos', primary_log_file=file, primary_log_pos=int(position)))
    assert not res.failed, res.result
    status = replica.slave_status()
    assert status['Using_Gtid'] == 'No' and status['Relay_Master_Log_File'] == file
    again = run_module(fresh['inventory'], replica.name, 'replication', configure_args(
        fresh, mode='file_pos', primary_log_file=file, primary_log_pos=int(position)))
    assert again['changed'] is False, again['queries']
    # Only started again, no mode given: it stays on file and position (the default mode is
    # for a new connection), and nothing is changed but the start.
    replica.sql('STOP SLAVE')
    res = run_module(fresh['inventory'], replica.name, 'replication', {'state': 'started'})
    assert not res.failed and res['changed'], res.result
    assert [q for q in res['queries'] if q.startswith(('CHANGE', 'SET', 'START'))] == [
        "START SLAVE ''"], res['queries']
    assert scenarios.wait_running(replica)['Using_Gtid'] == 'No'


def test_wrong_password_returns_the_real_error(fresh, run_module):
    res = run_module(fresh['inventory'], fresh['replica'].name, 'replication',
                     configure_args(fresh, primary_password='not-the-password', error_grace=3))
    assert res.failed
    assert 'IO thread error 1045' in res['msg'] and 'not-the-password' not in str(res.result)
    assert fresh['primary'].ip in res['msg'] and 'fix the network or the credentials' in res['msg']


def test_stop_and_reset(replicated, run_module):
    replica = replicated['replica']
    inv = replicated['inventory']
    res = run_module(inv, replica.name, 'replication', {'state': 'stopped'})
    assert res['changed'] and replica.slave_status()['Slave_IO_Running'] == 'No'
    assert run_module(inv, replica.name, 'replication', {'state': 'stopped'})['changed'] is False
    info = run_module(inv, replica.name, 'replication_info', {})
    assert info['state'] == 'stopped' and info['needs_rebuild'] is False
    assert run_module(inv, replica.name, 'replication', {'state': 'reset'})['changed']
    assert run_module(inv, replica.name, 'replication', {'state': 'reset'})['changed'] is False
    info = run_module(inv, replica.name, 'replication_info', {})
    assert info['state'] == 'not_configured' and info['connections'] == []


@pytest.mark.parametrize('kind,state,errno', [
    ('1032', 'broken', 1032), ('1062', 'broken', 1062), ('1236', 'broken', 1236),
    ('errant', 'diverged', None)])
def test_breakages_are_diagnosed(replicated, run_module, kind, state, errno):
    primary, replica = replicated['primary'], replicated['replica']
    scenarios.BREAKAGES[kind](primary, replica)
    res = run_module(replicated['inventory'], replica.name, 'replication_info', {
        'primary': {'login_host': primary.ip, 'login_user': 'repl',
                    'login_password': replicated['password']}}, check=True)
    assert not res.failed, res.result
    assert res['state'] == state and res['needs_rebuild'] is True, res['reason']
    assert res['changed'] is False
    if errno:
        assert str(errno) in res['reason']
    else:
        assert res['errant_gtids'] and ('-%d-' % replica.server_id) in res['errant_gtids'][0]


def test_healthy_and_lagging(replicated, run_module):
    primary, replica = replicated['primary'], replicated['replica']
    inv = replicated['inventory']
    res = run_module(inv, replica.name, 'replication_info', {
        'primary_gtid_binlog_state': primary.sql_value('SELECT @@GLOBAL.gtid_binlog_state')})
    assert (res['state'], res['needs_rebuild'], res['errant_gtids']) == ('healthy', False, [])
    assert res['gtid_strict_mode'] is True and res['server_id'] == replica.server_id
    # A delayed replica (MASTER_DELAY) is behind by its delay on purpose: healthy.
    replica.sql('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=30; START SLAVE;')
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('delayed')")

    def behind():
        status = replica.slave_status()
        return status if status.get('Seconds_Behind_Master') not in (None, '0') else None
    lag = scenarios.wait_for(behind, 60)
    res = run_module(inv, replica.name, 'replication_info', {'lag_seconds': 0})
    assert res['state'] == 'healthy' and 'MASTER_DELAY 30' in res['reason'], (res['reason'], lag)
    # Behind for a reason of its own: its SQL thread waits for a lock taken on the replica.
    replica.sql('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE;')
    scenarios.wait_for(lambda: replica.sql_value(
        "SELECT COUNT(*) FROM labdb.log WHERE msg = 'delayed'") == '1', 60)
    # The lock goes with its session, after the sleep (the client runs in the host's pid
    # namespace: killing the nsenter outside would leave it).
    locker = replica.popen(['mariadb', '-e', 'LOCK TABLES labdb.log WRITE; SELECT SLEEP(20)'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        scenarios.wait_for(lambda: replica.sql_value(
            "SELECT COUNT(*) FROM information_schema.processlist "
            "WHERE info = 'SELECT SLEEP(20)'") == '1', 30)
        primary.sql("INSERT INTO labdb.log (msg) VALUES ('held')")
        lag = scenarios.wait_for(behind, 15)
        res = run_module(inv, replica.name, 'replication_info', {'lag_seconds': 0})
        assert res['state'] == 'lagging' and res['needs_rebuild'] is False, (res['reason'], lag)
    finally:
        locker.wait(timeout=60)
    scenarios.wait_for(lambda: replica.sql_value(
        "SELECT COUNT(*) FROM labdb.log WHERE msg = 'held'") == '1', 60)


def test_multi_source_connections_are_separate(make_hosts, inventory, run_module,
                                               repl_password):
    hosts = make_hosts('p1', 'p2', 'r')
    # Different GTID domains per primary, as multi-source needs, from their first write.
    hosts['p2'].sql('SET GLOBAL gtid_domain_id = 2')
    for p in (hosts['p1'], hosts['p2']):
        scenarios.create_replication_user(p, repl_password)
    hosts['p1'].sql('CREATE DATABASE one; CREATE TABLE one.t (i INT PRIMARY KEY); INSERT INTO one.t VALUES (1)')
    hosts['p2'].sql('CREATE DATABASE two; CREATE TABLE two.t (i INT PRIMARY KEY); INSERT INTO two.t VALUES (2)')
    inv = inventory(hosts['p1'], [hosts['r']], [hosts['p2']])
    for name, p in (('one', hosts['p1']), ('two', hosts['p2'])):
        res = run_module(inv, hosts['r'].name, 'replication', dict(
            connection_name=name, primary_host=p.ip, primary_user='repl',
            primary_password=repl_password, wait_timeout=60))
        assert not res.failed, res.result
    assert hosts['r'].sql_value('SELECT i FROM two.t') == '2'
    # Both primaries' states together cover everything the replica holds: nothing errant.
    both = ','.join(p.sql_value('SELECT @@GLOBAL.gtid_binlog_state')
                    for p in (hosts['p1'], hosts['p2']))
    info = run_module(inv, hosts['r'].name, 'replication_info',
                      {'primary_gtid_binlog_state': both})
    assert info['errant_gtids'] == [] and info['needs_rebuild'] is False, info.result
    run_module(inv, hosts['r'].name, 'replication', {'connection_name': 'two', 'state': 'stopped'})
    info = run_module(inv, hosts['r'].name, 'replication_info', {})
    states = dict((c['connection_name'], c['state']) for c in info['connections'])
    assert states == {'one': 'healthy', 'two': 'stopped'}
    assert dict((c['connection_name'], c['primary_host']) for c in info['connections']) == {
        'one': hosts['p1'].ip, 'two': hosts['p2'].ip}


def test_tls_replication(make_hosts, inventory, run_module, repl_password, tmp_path):
    hosts = make_hosts('primary', 'replica')
    primary, replica = hosts['primary'], hosts['replica']
    scenarios.enable_tls(primary, [replica], str(tmp_path))
    scenarios.create_replication_user(primary, repl_password)
    primary.sql("ALTER USER 'repl'@'%' REQUIRE SSL")  # plain text would be refused
    scenarios.load_data(primary, rows=50)
    inv = inventory(primary, [replica])
    args = dict(primary_host=primary.ip, primary_user='repl', primary_password=repl_password,
                primary_connect_retry=1, wait_timeout=60, primary_ssl=True,
                primary_ssl_ca='/etc/mysql/ssl/ca.pem', primary_ssl_verify_server_cert=True)
    res = run_module(inv, replica.name, 'replication', args)
    assert not res.failed, res.result
    status = replica.slave_status()
    assert status['Master_SSL_Allowed'] == 'Yes' and status['Slave_IO_Running'] == 'Yes'
    assert status['Master_SSL_Verify_Server_Cert'] == 'Yes'
    assert status['Master_SSL_CA_File'] == '/etc/mysql/ssl/ca.pem'
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '50'
    again = run_module(inv, replica.name, 'replication', args)
    assert again['changed'] is False, again['queries']


def test_wait_gtid_and_check_mode_on_a_running_replica(replicated, run_module):
    primary, replica = replicated['primary'], replicated['replica']
    inv = replicated['inventory']
    args = dict(primary_host=primary.ip, primary_user='repl', primary_connect_retry=1,
                wait_timeout=60)
    # The lab set it up with MASTER_CONNECT_RETRY=1: asking for 7 in check mode changes nothing.
    res = run_module(inv, replica.name, 'replication', dict(args, primary_connect_retry=7),
                     check=True, diff=True)
    assert not res.failed and res['changed'], res.result
    assert res['queries'] == [q for q in res['queries'] if q.startswith(('SHOW', 'SELECT'))]
    assert replica.slave_status()['Connect_Retry'] == '1'
    # Wait for a position: returns only once the replica has applied the primary's writes.
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('waited for')")
    pos = primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    res = run_module(inv, replica.name, 'replication', dict(args, wait_gtid=pos))
    assert not res.failed and res['changed'] is False, res.result
    assert any('MASTER_GTID_WAIT' in q for q in res['queries'])
    assert replica.sql_value("SELECT COUNT(*) FROM labdb.log WHERE msg = 'waited for'") == '1'
