# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnosis under writes (issue 21): with a writer of tens of commits a second on the
primary, a healthy replica is never called errant and never rebuilt. The replica's state is
read first and the primary's after it (roles/replica_rebuild/tasks/diagnose.yml); read the
other way round, every GTID the primary committed between the two reads looked errant.

One set of production-shaped hosts (Ansible as `ops` with sudo, no root ssh, /data/mysql on
its own mount, logs in /var/log/mysql): a primary and four replicas. (The fleet run, a chain
through the broken replicas with the others left alone, is test_fleet's and
test_replica_keeps'; one replica at a time, test_role_ssh_key's ssh transport.)
1. The primary crashes and comes back without its binlog tail (issue 27): r1 had received
   it and is ahead of the primary in the primary's own server_id, its IO thread showing the
   restart's error 2003: diverged, not "fix the network". r2 and r3 had received part of
   the tail, and the primary wrote past it with other transactions under the same GTIDs: r2
   replicates on without an error, r3 waits with error 2003 and would go on the same way;
   the comparison of the transactions under the same GTID finds both diverged. All three
   are rebuilt; r4, consistent with the restarted primary, is left alone.
2. After a clean restart and a rotation of the primary's binlog, six rounds in a row of the
   role's diagnosis (tests/integration/playbooks/diagnose_loop.yml), the rebuild playbook in
   check mode and the status playbook, under the writer: no replica is found to need a
   rebuild; r4 without log_slave_updates is told the same-GTID check cannot be made, and
   the status playbook's data checksum (replica_status_checksum) finds its data equal, then
   the row it lost on its own.
No run prints a warning (deprecations included): a user reads one as a fault.
Every step asserts on the role's structured results (set_stats) and the servers' state."""

from __future__ import annotations

import os
import time

import scenarios
from ansible_run import REPO, run_playbook_results
from faults import LoadGenerator

REBUILD = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
STATUS = os.path.join(REPO, 'playbooks', 'replica_status.yml')
LOOP = os.path.join(REPO, 'tests', 'integration', 'playbooks', 'diagnose_loop.yml')
# Deprecation warnings shown (the lab's runs hide them by default).
LOUD = {'ANSIBLE_DEPRECATION_WARNINGS': 'True'}
# Each LoadGenerator round is two commits (an insert and an update): 80 commits a second
# asked, at least 50 required of the busiest runs.
WRITER_RATE = 40
# Rounds of the role's diagnosis in a row under the writer: each reads 4 replicas, then the
# primary, while tens of commits a second land between the two reads (read the wrong way
# round, every round's every replica was a false alarm).
ROUNDS = 6


def server_pid(host):
    return host.run('cat "$(mariadb -NBe \'SELECT @@pid_file\')"').stdout.strip()


def commits_per_second(writer):
    span = (writer.last or 0) - (writer.first or 0)
    return (writer.inserted + writer.updated) / span if span > 0 else 0.0


class Fleet(object):
    """The hosts, the inventory and one playbook run with the writer on the primary."""

    def __init__(self, primary, replicas, inventory, password):
        self.primary, self.replicas, self.inventory = primary, replicas, inventory
        self.extra = {'replica_rebuild_replication_user': 'repl',
                      'replica_rebuild_replication_password': password}

    def run(self, playbook, check=False, rate=WRITER_RATE, **extra):
        pids = dict((r.name, server_pid(r)) for r in self.replicas)
        with LoadGenerator(self.primary, rate=rate, max_rows=10 ** 7) as writer:
            proc, results = run_playbook_results(self.inventory, playbook,
                                                 dict(self.extra, **extra), check=check,
                                                 env=LOUD)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        # A user reads a warning on a normal run as a fault (issue 25).
        warnings = [line for line in (proc.stdout + proc.stderr).splitlines()
                    if '[WARNING]' in line or '[DEPRECATION WARNING]' in line]
        assert warnings == [], warnings
        assert writer.errors == [] and writer.inserted > 0, writer.errors
        return results, pids, writer

    def rebuilt_only(self, expected, results, pids):
        """The replicas `expected` rebuilt and healthy; every other replica left alone (its
        server the same process) and healthy, before and after."""
        by_host = results['replica_rebuild_results']
        assert sorted(by_host) == sorted(r.name for r in self.replicas), by_host
        for r in self.replicas:
            got = by_host[r.name]
            if r in expected:
                assert got['action'] == 'rebuilt' and got['diagnosis_after'] == 'healthy', got
                assert server_pid(r) != pids[r.name]
            else:
                assert (got['action'], got['diagnosis_before'], got['diagnosis_after']) == \
                    ('none', 'healthy', 'healthy'), (r.name, got)
                assert server_pid(r) == pids[r.name], r.name
            s = r.slave_status()
            assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
                (r.name, scenarios.threads(s))
        for r in self.replicas:
            scenarios.wait_caught_up(self.primary, r)
            for table in ('labdb.t', 'labdb.log', 'labdb.load'):
                query = 'CHECKSUM TABLE %s' % table
                assert r.sql(query)[0][1] == self.primary.sql(query)[0][1], (r.name, table)


def test_only_the_broken_replica_is_rebuilt_under_writes(make_hosts, inventory, repl_password):
    names = ('primary', 'r1', 'r2', 'r3', 'r4')
    hosts = make_hosts(*names, hardened=names)
    primary = hosts['primary']
    replicas = [hosts[n] for n in names[1:]]
    r1, r2, r3, r4 = replicas
    scenarios.setup_replication(primary, replicas, repl_password, rows=2000)
    fleet = Fleet(primary, replicas, inventory(primary, replicas), repl_password)
    primary_id = primary.sql_value('SELECT @@server_id')

    # 1. The primary lost its binlog tail in a crash (issue 27's two cases). r1 had received
    # 1000 transactions of it and r2 and r3 the first 30. A slow writer after the restart,
    # so that the primary does not write past r1 before the diagnosis: r1 is ahead of it
    # (errant GTIDs), its IO thread still showing the restart's error 2003 (it retries in
    # an hour): not "fix the network". r2 is overtaken: the primary wrote 60 other
    # transactions under the numbers r2 holds, and r2 replicates on from its own position
    # without any error. r3 is behind: the same 60 overtook it while its IO thread waits
    # with error 2003, and it would go on as r2 did once it reconnects. Only the
    # transactions compared under the same GTID tell. r4, consistent with the restarted
    # primary, must be left alone.
    primary_pos, r1_pos = scenarios.lose_binlog_tail(primary, r1, others=(r4,), tail=1000,
                                                     partial=((r2, 30), (r3, 30)),
                                                     retrying=(r1, r3))
    assert int(primary_pos.split('-')[-1]) + 1000 == int(r1_pos.split('-')[-1]), \
        (primary_pos, r1_pos)
    scenarios.overtake(primary, r2, 60)
    s = r2.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running'], s['Last_IO_Errno'],
            s['Last_SQL_Errno']) == ('Yes', 'Yes', '0', '0'), scenarios.threads(s)
    for r in (r2, r3):
        assert r.sql_value("SELECT COUNT(*) FROM labdb.log WHERE msg LIKE 'tail %'") == '30'
    for r in (r1, r3):
        s = r.slave_status()
        assert (s['Slave_IO_Running'], s['Last_IO_Errno']) == ('Connecting', '2003'), \
            scenarios.threads(s)
    # r3 is behind the primary, by GTIDs: nothing errant.
    assert int(scenarios.gtid_binlog_pos(primary).split('-')[-1]) > \
        int(r3.sql_value('SELECT @@GLOBAL.gtid_slave_pos').split('-')[-1])
    results, pids, writer = fleet.run(REBUILD, rate=2)
    before = results['replica_rebuild_results'][r1.name]
    assert before['diagnosis_before'] == 'diverged', before
    assert '0-%s-' % primary_id in before['reason'], before  # the GTIDs the primary lost
    assert 'IO thread error 2003' in before['reason'], before
    first = '0-%s-%d' % (primary_id, int(primary_pos.split('-')[-1]) + 1)
    for r in (r2, r3):
        before = results['replica_rebuild_results'][r.name]
        assert before['diagnosis_before'] == 'diverged', before
        assert before['reason'].startswith(
            'same GTID, other transaction: %s on the primary is not %s here: the primary\'s '
            'was written at ' % (first, first)), before
        assert 'behind this replica, and reused the numbers' in before['reason'], before
    fleet.rebuilt_only((r1, r2, r3), results, pids)
    for r in (r1, r2, r3):
        assert r.sql_value("SELECT COUNT(*) FROM labdb.log WHERE msg LIKE 'tail %'") == '0'
    # The rebuilt replicas kept their own retry (a setting of theirs): the lab's again.
    for r in (r1, r3):
        assert r.slave_status()['Connect_Retry'] == '3600', r.name
        r.sql('STOP SLAVE; CHANGE MASTER TO MASTER_CONNECT_RETRY = 1; START SLAVE;')

    # 2. Six rounds of the role's own diagnosis in a row under the writer (one playbook,
    # tasks/diagnose.yml again and again), then the status playbook: no replica is found to
    # need a rebuild. The primary restarted cleanly and rotated its binlog before: every
    # replica's transactions after both restarts are compared in every round (no false
    # alarm), and r4, whose log_slave_updates is now OFF, is told the check cannot be made.
    r4.run("printf '[mariadb]\\nlog_slave_updates = OFF\\n' "
           '> /etc/mysql/mariadb.conf.d/70-no-log-slave-updates.cnf')
    r4.service('restart')
    primary.service('restart')
    primary.sql("INSERT INTO labdb.log (msg) VALUES ('after a clean restart'); "
                "FLUSH BINARY LOGS; INSERT INTO labdb.log (msg) VALUES ('after a rotation');")
    for r in replicas:
        scenarios.wait_caught_up(primary, r)
    started = time.time()
    results, pids, writer = fleet.run(LOOP, diagnose_rounds=ROUNDS)
    rounds = results['diagnose_rounds']
    assert len(rounds) == ROUNDS * len(replicas), sorted(rounds)
    false_alarms = sorted((k, v['state'], v['reason']) for k, v in rounds.items()
                          if (v['state'], v['needs_rebuild']) != ('healthy', False))
    rate = commits_per_second(writer)
    print('%d diagnosis rounds of 4 replicas under writes in %.0f s, writer at %.0f commits/s: '
          '%d false alarms' % (ROUNDS, time.time() - started, rate, len(false_alarms)))
    assert false_alarms == []
    assert rate >= 50, rate
    unchecked = sorted(k for k, v in rounds.items()
                       if 'the same-GTID check could not be made' in v['reason'])
    assert unchecked == sorted('%s/%d' % (r4.name, n) for n in range(ROUNDS)), unchecked
    assert 'log_slave_updates is OFF' in rounds['%s/0' % r4.name]['reason'], rounds
    results, pids, writer = fleet.run(REBUILD, check=True)
    assert dict((h, (v['diagnosis_before'], v['action'])) for h, v in
                results['replica_rebuild_results'].items()) == dict(
        (r.name, ('healthy', 'none')) for r in replicas), results
    # The status playbook, with the data checksum offered where the same-GTID check could
    # not be made: r4's data is compared with the primary's, and found equal; the others'
    # transactions were compared, their data is not.
    results, pids, writer = fleet.run(STATUS, replica_status_checksum=True)
    status = results['replica_status']
    assert dict((h, (v['state'], v['needs_rebuild'], v['data_equal'])) for h, v in
                status.items()) == dict(
        (r.name, ('healthy', False, True if r is r4 else None)) for r in replicas), status
    assert 'the data checksum matches the primary at 0-' in status[r4.name]['reason'], status
    assert pids == dict((r.name, server_pid(r)) for r in replicas)
    # r4 loses a row on its own, outside its binlog: no GTID tells, the checksum does.
    r4.sql("SET SESSION sql_log_bin = 0; DELETE FROM labdb.log WHERE msg = 'after a rotation';")
    results, pids, writer = fleet.run(STATUS, replica_status_checksum=True)
    status = results['replica_status']
    assert (status[r4.name]['state'], status[r4.name]['needs_rebuild'],
            status[r4.name]['data_equal']) == ('diverged', True, False), status
    assert status[r4.name]['reason'].startswith('the data differs from the primary at 0-'), status
    assert status[r4.name]['reason'].endswith(': labdb.log (rebuild)'), status
    assert all(status[r.name]['state'] == 'healthy' for r in (r1, r2, r3)), status
    assert pids == dict((r.name, server_pid(r)) for r in replicas)
