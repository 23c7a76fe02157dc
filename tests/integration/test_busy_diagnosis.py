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
1. The primary crashes and comes back without its binlog tail, which r1 had received: r1 is
   ahead of the primary in the primary's own server_id (real divergence) and is rebuilt;
   r2..r4, consistent with the restarted primary, are left alone.
2. Ten rounds in a row of the role's diagnosis (tests/integration/playbooks/diagnose_loop.yml),
   the rebuild playbook in check mode and the status playbook, under the writer: no replica
   is found to need a rebuild.
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

    # 1. The primary lost its binlog tail in a crash; r1 had received it. A slow writer
    # after the restart, so that the primary does not write past r1 before the diagnosis
    # (that case, same GTID numbers with other transactions, is not found by GTIDs alone).
    primary_pos, r1_pos = scenarios.lose_binlog_tail(primary, r1, others=(r2, r3, r4),
                                                     tail=1000)
    assert int(primary_pos.split('-')[-1]) + 1000 == int(r1_pos.split('-')[-1]), \
        (primary_pos, r1_pos)
    results, pids, writer = fleet.run(REBUILD, rate=2)
    before = results['replica_rebuild_results'][r1.name]
    assert before['diagnosis_before'] in ('broken', 'diverged'), before
    assert '0-%s-' % primary_id in before['reason'], before  # the GTIDs the primary lost
    fleet.rebuilt_only((r1,), results, pids)
    assert r1.sql_value("SELECT COUNT(*) FROM labdb.log WHERE msg LIKE 'tail %'") == '0'

    # 2. Ten rounds of the role's own diagnosis in a row under the writer (one playbook,
    # tasks/diagnose.yml again and again), then the status playbook: no replica is found to
    # need a rebuild.
    started = time.time()
    results, pids, writer = fleet.run(LOOP, diagnose_rounds=10)
    rounds = results['diagnose_rounds']
    assert len(rounds) == 10 * len(replicas), sorted(rounds)
    false_alarms = sorted((k, v['state'], v['reason']) for k, v in rounds.items()
                          if (v['state'], v['needs_rebuild']) != ('healthy', False))
    rate = commits_per_second(writer)
    print('10 diagnosis rounds of 4 replicas under writes in %.0f s, writer at %.0f commits/s: '
          '%d false alarms' % (time.time() - started, rate, len(false_alarms)))
    assert false_alarms == []
    assert rate >= 50, rate
    results, pids, writer = fleet.run(REBUILD, check=True)
    assert dict((h, (v['diagnosis_before'], v['action'])) for h, v in
                results['replica_rebuild_results'].items()) == dict(
        (r.name, ('healthy', 'none')) for r in replicas), results
    results, pids, writer = fleet.run(STATUS)
    assert dict((h, (v['state'], v['needs_rebuild'])) for h, v in
                results['replica_status'].items()) == dict(
        (r.name, ('healthy', False)) for r in replicas), results
    assert pids == dict((r.name, server_pid(r)) for r in replicas)
