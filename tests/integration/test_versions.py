# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB 11.8 (Debian 13 lab hosts that boot systemd 257, tests/lab/release.py; MariaDB is
their mariadb.service): mixed 10.11/11.8 pairs (an 11.8 replica of a 10.11 primary broken by
error 1236, healed); and, on one set of 11.8 hosts, the cases of issue 14: replicas broken by
1062 and by an errant GTID healed in one run by the playbook with its defaults while the
primary takes writes (TLS auto: 11.8 checks the primary's certificate), file/position mode
(error 1236), a copy from a healthy replica, a dead replica rebuilt when forced. (The swap's
rollback on 11.8 is a case of test_datadir_swap.py.) docs/VERSIONS.md records what differs
from 10.11."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

import scenarios
from ansible_run import REPO, run_playbook
from faults import LoadGenerator

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
PATH_VARIABLES = ('datadir', 'pid_file', 'log_error', 'log_bin_basename', 'log_bin_index',
                  'relay_log_basename', 'relay_log_index')


def test_mixed_versions_newer_replica_rebuilt_older_one_refused(make_hosts, inventory,
                                                                repl_password):
    """A rolling upgrade: a 10.11 primary's 11.8 replica is rebuilt (11.8's mariadb-backup
    prepares the 10.11 copy, the 11.8 server upgrades it in place); an 11.8 primary's 10.11
    replica is refused before anything changes, both versions named (MariaDB does not move
    data back to an older series)."""
    roles = ('old', 'new', 'newp', 'oldr')
    hosts = make_hosts(*roles, release={'new': 'trixie', 'newp': 'trixie'}, systemd=roles)
    old, new, newp, oldr = hosts['old'], hosts['new'], hosts['newp'], hosts['oldr']
    extra = {'replica_rebuild_replication_user': scenarios.REPL_USER,
             'replica_rebuild_replication_password': repl_password}
    # 10.11 primary -> 11.8 replica, broken by 1236: rebuilt and verified.
    scenarios.setup_replication(old, [new], repl_password, rows=2000)
    scenarios.break_1236(old, new)
    proc = run_playbook(inventory(old, [new]), PLAYBOOK, extra)
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert 'tables equal at' in proc.stdout
    s = new.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        scenarios.threads(s)
    assert new.sql_value('SELECT @@version').startswith('11.8.')
    scenarios.wait_caught_up(old, new)
    assert new.sql('SELECT COUNT(*), SUM(n) FROM labdb.t') == old.sql(
        'SELECT COUNT(*), SUM(n) FROM labdb.t')
    # 11.8 primary -> 10.11 replica: refused in the preflight, nothing changed on it.
    scenarios.setup_replication(newp, [oldr], repl_password, rows=500)
    pid = oldr.run('pidof mariadbd').stdout.strip()
    proc = run_playbook(inventory(newp, [oldr]), PLAYBOOK,
                        dict(extra, replica_rebuild_force=True))
    assert proc.returncode != 0
    fatal = [line for line in proc.stdout.splitlines() if line.startswith('fatal: [%s]'
                                                                          % oldr.name)]
    assert fatal and 'MariaDB 10.11.' in fatal[-1] and 'MariaDB 11.8.' in fatal[-1] and \
        'upgrade this replica to 11.8 first' in fatal[-1] and 'Nothing was swapped' in \
        fatal[-1], fatal
    assert oldr.run('pidof mariadbd').stdout.strip() == pid
    assert oldr.run('test -e /var/lib/mysql.reseed-staging', check=False).returncode == 1
    assert newp.run('pidof mariadb-backup', check=False).returncode == 1


# ---- the other rebuild cases on 11.8, on one set of hosts ------------------------------
# An 11.8 primary and two 11.8 replicas, made once for the cases below (a rebuild costs a
# minute on CI's two cores; hosts and data a quarter of one). Each case breaks a replica
# that replicates, heals it and leaves both replicas replicating and caught up, so the
# next case starts from that state (run alone, a case finds it too).

def reports(stdout):
    """{host: replica_rebuild_result} as the role's 'Report' task printed it."""
    out = {}
    for m in re.finditer(r'^ok: \[([^\]]+)\] => (\{\n.*?\n\})$', stdout, re.M | re.S):
        data = json.loads(m.group(2))
        if 'replica_rebuild_result' in data:
            out[m.group(1)] = data['replica_rebuild_result']
    return out


def server_pid(host):
    return host.run('pidof mariadbd', check=False).stdout.strip()


def old_datadirs(host):
    return sorted(host.run('ls -d /var/lib/mysql.reseed-old-*', check=False).stdout.split())


def same_data(primary, replica):
    """Caught up, then the same rows and checksums as the primary."""
    scenarios.wait_caught_up(primary, replica)
    for query in ('SELECT COUNT(*), SUM(n), MIN(v), MAX(v) FROM labdb.t',
                  'SELECT COUNT(*), SUM(id), SUM(LENGTH(msg)) FROM labdb.log',
                  'CHECKSUM TABLE labdb.t, labdb.log'):
        assert replica.sql(query) == primary.sql(query), (replica.name, query)


def assert_rebuilt(proc, primary, replica, before, mode='gtid', source=None):
    """The playbook's run rebuilt `replica` (state `before`: its server pid and kept old
    datadirs) from `source` (the primary unless told): a new server on the copy, replicating
    from the primary in `mode`, verified, with the primary's rows; its old datadir kept."""
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    result = reports(proc.stdout).get(replica.name)
    assert result and result['action'] == 'rebuilt', (replica.name, result)
    assert result['source'] == (source or primary).name, result
    assert re.match(r'\d+ tables equal at ', result['verified']), result['verified']
    assert server_pid(replica) not in ('', before['pid'])  # a new server, the copy's
    kept = old_datadirs(replica)
    assert len(kept) == len(before['old']) + 1 and result['old_datadir'] in kept, (
        kept, result)
    assert replica.run(['test', '-f', result['old_datadir'] + '/ibdata1']).returncode == 0
    s = scenarios.wait_running(replica)
    assert (s['Last_IO_Errno'], s['Last_SQL_Errno']) == ('0', '0'), scenarios.threads(s)
    assert s['Using_Gtid'] == ('No' if mode == 'file_pos' else 'Slave_Pos'), s['Using_Gtid']
    assert s['Master_Host'] == primary.ip
    # A row written now arrives (and, in file_pos mode too, moves the replica's
    # gtid_slave_pos to the primary's last GTID, which same_data waits for).
    marker = 'after the rebuild of %s, %s' % (replica.name, time.time())
    primary.sql('INSERT INTO labdb.log (msg) VALUES (%s)' % scenarios.q(marker))
    same_data(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.log WHERE msg = %s'
                             % scenarios.q(marker)) == '1'
    # Nothing of this server's own in its binlog: the data came from the primary.
    sid = replica.sql_value('SELECT @@server_id')
    assert '-%s-' % sid not in replica.sql_value('SELECT @@GLOBAL.gtid_binlog_state')
    assert replica.sql_value('SELECT @@version').startswith('11.8.')
    assert replica.run('test -e /var/lib/mysql.reseed-staging', check=False).returncode == 1
    # The copy was made by 11.8's mariadb-backup: its metadata under the new names.
    assert replica.run('test -f /var/lib/mysql/mariadb_backup_info').returncode == 0
    print(dict((k, result.get(k)) for k in (  # figures for docs/VERSIONS.md (pytest -rP)
        'host', 'diagnosis_before', 'source', 'bytes', 'stream_seconds', 'downtime_seconds',
        'verified')))
    return result


def state(*hosts):
    return dict((h.name, {'pid': server_pid(h), 'old': old_datadirs(h)}) for h in hosts)


@pytest.fixture(scope='module')
def on_11_8(lab):
    """An 11.8 primary with 3000 rows and two 11.8 replicas (r1, r2), replicating."""
    number = lab.next_number()
    names = dict((role, 't%d-%s' % (number, role)) for role in ('primary', 'r1', 'r2'))
    password = "Rp'l\\" + os.urandom(8).hex()
    try:
        hosts = dict((role, lab.create(name, release='trixie', systemd=True))
                     for role, name in names.items())
        scenarios.setup_replication(hosts['primary'], [hosts['r1'], hosts['r2']], password,
                                    rows=3000)
        for h in hosts.values():
            assert h.sql_value('SELECT @@version').startswith('11.8.'), h.name
        yield dict(hosts, password=password, extra={
            'replica_rebuild_replication_user': scenarios.REPL_USER,
            'replica_rebuild_replication_password': password})
    finally:
        if os.environ.get('RESEED_LAB_KEEP') != '1':
            for name in names.values():
                lab.destroy(name)


def replicating(primary, *replicas):
    for r in replicas:
        scenarios.wait_running(r)
        scenarios.wait_caught_up(primary, r)


def test_11_8_replicas_broken_by_1062_and_errant_gtid_healed_in_one_run(on_11_8, inventory):
    primary, r1, r2 = on_11_8['primary'], on_11_8['r1'], on_11_8['r2']
    replicating(primary, r1, r2)
    scenarios.break_1062(primary, r1)
    errant = scenarios.break_errant(primary, r2)
    before = state(r1, r2)
    with LoadGenerator(primary) as load:
        time.sleep(1)  # rows before the rebuild starts
        run_started = time.time()
        proc = run_playbook(inventory(primary, [r1, r2]), PLAYBOOK, on_11_8['extra'])
        run_ended = time.time()
        time.sleep(1)  # a few rows after the rebuild too
    assert load.errors == [] and load.spanned(run_started, run_ended), (
        load.inserted, load.errors[:3])
    assert_rebuilt(proc, primary, r1, before[r1.name])
    assert_rebuilt(proc, primary, r2, before[r2.name])
    assert proc.stdout.count('tables equal at') >= 2
    for replica in (r1, r2):
        # Every row the writer committed, through the rebuild.
        assert replica.sql('SELECT COUNT(*), SUM(id) FROM labdb.load') == primary.sql(
            'SELECT COUNT(*), SUM(id) FROM labdb.load'), replica.name
        # replica_rebuild_primary_ssl auto: an 11.8 primary accepts TLS by itself, so the
        # replica replicates over it, and 11.8 checks the server's certificate (through the
        # password).
        s = replica.slave_status()
        assert (s['Master_SSL_Allowed'], s['Master_SSL_Verify_Server_Cert']) == ('Yes', 'Yes'), s
    # The breakages are undone: the primary's row, no errant transaction.
    assert r1.sql_value('SELECT v FROM labdb.t WHERE id = 100001') == 'primary'
    assert r2.sql_value("SELECT COUNT(*) FROM labdb.log WHERE msg = "
                        "'errant write on the replica'") == '0'
    assert r2.sql_value('SELECT @@GLOBAL.gtid_binlog_state') != errant


def test_11_8_replica_rebuilt_in_file_pos_mode(on_11_8, inventory):
    primary, r1, r2 = on_11_8['primary'], on_11_8['r1'], on_11_8['r2']
    replicating(primary, r1, r2)
    scenarios.break_1236(primary, r1)
    before = state(r1, r2)
    with LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        proc = run_playbook(inventory(primary, [r1]), PLAYBOOK,
                            dict(on_11_8['extra'], replica_rebuild_mode='file_pos'))
    assert_rebuilt(proc, primary, r1, before[r1.name], mode='file_pos')
    writer.check_arrived(r1, r2)
    # Replicating by file and position, at the primary's own (the writer has stopped).
    file_name, position = primary.sql('SHOW MASTER STATUS')[0][:2]

    def at_position():
        status = r1.slave_status()
        return status if status['Exec_Master_Log_Pos'] == position else None
    s = scenarios.wait_for(at_position, what='%s at %s:%s' % (r1.name, file_name, position))
    assert (s['Master_Log_File'], s['Read_Master_Log_Pos']) == (file_name, position)
    assert (s['Relay_Master_Log_File'], s['Exec_Master_Log_Pos']) == (file_name, position)
    assert r1.sql_value("SELECT COUNT(*) FROM labdb.log WHERE msg IN "
                        "('after replica stopped', 'in the new binlog')") == '2'
    assert state(r2) == {r2.name: before[r2.name]}  # the other replica untouched


def test_11_8_replica_rebuilt_from_a_healthy_11_8_replica(on_11_8, inventory):
    primary, r1, r2 = on_11_8['primary'], on_11_8['r1'], on_11_8['r2']
    replicating(primary, r1, r2)
    scenarios.break_1032(primary, r1)
    before = state(r1, r2)
    with LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        proc = run_playbook(inventory(primary, [r1], [r2]), PLAYBOOK,
                            dict(on_11_8['extra'], replica_rebuild_source=r2.name))
    assert_rebuilt(proc, primary, r1, before[r1.name], source=r2)
    writer.check_arrived(r1, r2)
    # The copy came from the donor (its mariadb-backup, with --slave-info), not the primary.
    assert 'SET GLOBAL gtid_slave_pos' in r1.run(
        'cat /var/lib/mysql/mariadb_backup_slave_info').stdout
    # The donor gave its copy and replicates on, the same server on the same datadir.
    assert state(r2) == {r2.name: before[r2.name]}
    s = scenarios.wait_running(r2)
    assert s['Using_Gtid'] == 'Slave_Pos' and s['Last_SQL_Errno'] == '0', scenarios.threads(s)
    same_data(primary, r2)
    assert r1.sql('SELECT n FROM labdb.t WHERE id = 7') == primary.sql(
        'SELECT n FROM labdb.t WHERE id = 7')


def test_11_8_dead_replica_rebuilt_when_forced(on_11_8, inventory, run_module):
    """A stopped 11.8 replica: diagnosed down with its paths from 11.8's option files, left
    alone without force, rebuilt with it."""
    primary, r1, r2 = on_11_8['primary'], on_11_8['r1'], on_11_8['r2']
    replicating(primary, r1, r2)
    inv = inventory(primary, [r2])
    live = dict(zip(PATH_VARIABLES, r2.sql('SELECT ' + ', '.join(
        '@@' + v for v in PATH_VARIABLES))[0]))
    r2.service('stop')
    assert server_pid(r2) == ''
    before = state(r2)
    info = run_module(inv, r2.name, 'replication_info', {})
    assert not info.failed and info['state'] == 'down', info.result
    assert info['needs_rebuild'] is False and info['server_pids'] == []
    assert 'the server is down, no mariadbd process runs' in info['reason'], info['reason']
    # A log_error not set (Debian's under systemd: the journal) reads '' live, None from
    # the option files of a stopped server.
    assert dict((k, info['server_paths'][k]) for k in PATH_VARIABLES) == dict(
        (k, v.rstrip('/') if k == 'datadir' else (v or None)) for k, v in live.items()), (
        info['server_paths'], live)
    refused = run_playbook(inv, PLAYBOOK, on_11_8['extra'])
    assert refused.returncode != 0
    assert '%s: the server is down, no mariadbd process runs' % r2.name in refused.stdout
    assert server_pid(r2) == '' and old_datadirs(r2) == before[r2.name]['old']
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('while the replica was down')")
    with LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        proc = run_playbook(inv, PLAYBOOK, dict(on_11_8['extra'], replica_rebuild_force=True))
    assert_rebuilt(proc, primary, r2, before[r2.name])
    writer.check_arrived(r1, r2)
    assert reports(proc.stdout)[r2.name]['diagnosis_before'] == 'down'
    replicating(primary, r1)  # the other replica, on the same primary, went on
