# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replica keeps what is its own across a rebuild (issue 21): the copy's events do not
run on it, its own accounts and its replication settings come back, and a multi-source
replica is refused with nothing changed.

On production-shaped hosts (ops with sudo, /data/mysql): a primary whose event inserts
every second, with event_scheduler=ON in every host's config (so that the new server, which
starts from the config, would run the copy's events: SET GLOBAL alone would not survive its
restart and hide the bug) and set at once too. Replica A is broken (1062), has an account of
its own, MASTER_DELAY, a heartbeat period and read_only set with SET GLOBAL; replica B is
healthy and left alone. Two playbook runs: the rebuild (at -vvv, searched for the account's
hash), then B with a second named connection, forced: refused."""

from __future__ import annotations

import os
import secrets
import time

import pymysql

import scenarios
from ansible_run import REPO, run_playbook_results
from faults import LoadGenerator, mariadbd_pid
from secrets_watch import SecretsWatch

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
EVENTS_CNF = '/etc/mysql/mariadb.conf.d/70-events.cnf'
STATE_FILE = '/var/lib/reseed/replica_local.json'
DELAY, HEARTBEAT = 5, 7.5


def all_slaves(host):
    """SHOW ALL SLAVES STATUS as {connection name: row} (only it shows the heartbeat)."""
    out = host.run(['mariadb', '--batch', '--raw', '-e', 'SHOW ALL SLAVES STATUS']).stdout
    lines = out.splitlines()
    if not lines:
        return {}
    keys = lines[0].split('\t')
    rows = [dict(zip(keys, line.split('\t'))) for line in lines[1:]]
    return dict((r['Connection_name'], r) for r in rows)


def event_status(host, name='tick'):
    return host.sql_value("SELECT STATUS FROM information_schema.EVENTS "
                          "WHERE EVENT_SCHEMA = 'labdb' AND EVENT_NAME = '%s'" % name)


def log_in(host, user, password):
    conn = pymysql.connect(host=host.ip, user=user, password=password, connect_timeout=10)
    try:
        with conn.cursor() as c:
            c.execute('SELECT CURRENT_USER()')
            return c.fetchone()[0]
    finally:
        conn.close()


def own_gtids(host):
    """The GTIDs of the host's own server_id in its binlog state (errant on a replica)."""
    own = '-%s-' % host.sql_value('SELECT @@server_id')
    return [g for g in (host.sql_value('SELECT @@gtid_binlog_state') or '').split(',')
            if own in g]


def test_rebuilt_replica_keeps_its_events_off_its_accounts_and_settings(
        hardened_trio, inventory, repl_password):
    primary, ra, rb = hardened_trio
    for host in (primary, ra, rb):
        host.run(['sh', '-c', 'printf "[mariadbd]\\nevent_scheduler = ON\\n" > %s' % EVENTS_CNF])
        host.sql('SET GLOBAL event_scheduler = ON')
    primary.sql('CREATE TABLE labdb.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6)) '
                'ENGINE=InnoDB; CREATE EVENT labdb.tick ON SCHEDULE EVERY 1 SECOND '
                'DO INSERT INTO labdb.ticks (at) VALUES (NOW(6))')
    scenarios.wait_caught_up(primary, ra)
    scenarios.wait_caught_up(primary, rb)
    # Replica A: an account of its own, its connection's settings, read_only by SET GLOBAL.
    mon_password = secrets.token_urlsafe(12)
    ra.sql("SET SESSION sql_log_bin = 0; CREATE USER 'mon'@'%%' IDENTIFIED BY %s; "
           "GRANT PROCESS, SLAVE MONITOR ON *.* TO 'mon'@'%%'" % scenarios.q(mon_password))
    mon_hash = ra.sql_value("SELECT authentication_string FROM mysql.user WHERE user = 'mon'")
    assert mon_hash and mon_hash.startswith('*'), mon_hash
    ra.sql('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = %d, MASTER_HEARTBEAT_PERIOD = %s; '
           'START SLAVE; SET GLOBAL read_only = ON' % (DELAY, HEARTBEAT))
    scenarios.wait_running(ra)
    assert event_status(ra) == 'SLAVESIDE_DISABLED'  # built by replication
    scenarios.break_1062(primary, ra)
    b_pid = mariadbd_pid(rb)
    inv = inventory(primary, [ra, rb])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}

    # Run 1: A rebuilt, B left alone; at -vvv, watched for the account's hash and password.
    started = time.time()
    with SecretsWatch([mon_hash, mon_password]) as watch, \
            LoadGenerator(primary, rate=10, max_rows=100000) as writer:
        proc, results = run_playbook_results(inv, PLAYBOOK, extra, verbosity=3)
    print('run 1 (rebuild at -vvv): %.1f s' % (time.time() - started))
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert writer.errors == [] and writer.inserted > 0
    for secret in (mon_hash, mon_hash.lstrip('*'), mon_password):
        assert secret not in proc.stdout and secret not in proc.stderr
    assert watch.leaks == [], watch.leaks
    result = results['replica_rebuild_results'][ra.name]
    print('result of %s: %s' % (ra.name, result))
    assert result['action'] == 'rebuilt', result
    assert result['events_disabled'] >= 1, result
    assert result['accounts_restored'] == ['mon@%'], result
    assert result['accounts_dropped'] == [], result
    assert {'primary_delay', 'primary_heartbeat_period'} <= set(result['settings_restored']), result
    assert results['replica_rebuild_results'][rb.name]['action'] == 'none'
    assert mariadbd_pid(rb) == b_pid
    assert scenarios.threads(rb.slave_status())['Slave_SQL_Running'] == 'Yes'

    # A stays healthy for 20 s while the primary's event fires every second: a copy's event
    # left ENABLED fires within the second and writes a GTID of A's own (own_gtids below).
    deadline = time.time() + 20
    while time.time() < deadline:
        s = ra.slave_status()
        assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
            scenarios.threads(s)
        assert s['Last_SQL_Errno'] == '0', scenarios.threads(s)
        time.sleep(5)
    assert event_status(ra) == 'SLAVESIDE_DISABLED'
    assert event_status(primary) == 'ENABLED'
    assert ra.sql_value('SELECT @@event_scheduler') == 'ON'
    assert own_gtids(ra) == [], own_gtids(ra)
    # What A kept: its account (its old password), its connection settings, read_only.
    assert log_in(ra, 'mon', mon_password) == 'mon@%'
    row = all_slaves(ra)['']
    assert int(row['SQL_Delay']) == DELAY and float(row['Slave_heartbeat_period']) == HEARTBEAT
    assert ra.sql_value('SELECT @@read_only') == '1'
    assert ra.run(['test', '-e', STATE_FILE], check=False).returncode == 1
    assert ra.run(['test', '-e', '/etc/mysql/mariadb.conf.d/99-reseed-hold.cnf'],
                  check=False).returncode == 1
    # Rows equal, with the event stopped so that they stand still.
    primary.sql('ALTER EVENT labdb.tick DISABLE')
    scenarios.wait_caught_up(primary, ra, timeout=DELAY + 60)
    for table in ('labdb.t', 'labdb.load', 'labdb.ticks'):
        assert ra.sql_value('SELECT COUNT(*) FROM %s' % table) == primary.sql_value(
            'SELECT COUNT(*) FROM %s' % table), table
    assert int(primary.sql_value('SELECT COUNT(*) FROM labdb.ticks')) > 20

    # Run 2: B with a second named connection (not started), forced: refused, untouched.
    rb.sql("CHANGE MASTER 'eu' TO MASTER_HOST = %s, MASTER_USER = 'repl', "
           "MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos" % (
               scenarios.q(ra.ip), scenarios.q(repl_password)))
    before = (mariadbd_pid(rb), rb.run('ls -a /data/mysql').stdout)
    started = time.time()
    proc, results = run_playbook_results(inv, PLAYBOOK, dict(extra, replica_rebuild_force=True),
                                         limit=rb.name)
    print('run 2 (multi-source refused): %.1f s' % (time.time() - started))
    assert proc.returncode != 0, proc.stdout[-4000:]
    result = results['replica_rebuild_results'][rb.name]
    assert result['action'] == 'refused' and result['connections_refused'] == ['eu'], result
    assert mariadbd_pid(rb) == before[0]
    assert rb.run('ls -a /data/mysql').stdout == before[1]
    assert set(all_slaves(rb)) == {'', 'eu'}
    s = rb.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes')
    assert rb.run(['test', '-e', STATE_FILE], check=False).returncode == 1
