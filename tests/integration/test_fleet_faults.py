# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults in a fleet (replica_rebuild_fleet), on one set of hosts: a primary and three
replicas broken by 1236, chained r1 -> r2 -> r3. Every fault must end with no replica left
half-swapped, each replica either healed or on its old server (same process, same data,
still broken), and a re-run healing whatever is left (issue 13, item 5):

1. the middle replica's receiver dies mid-stream: r1 is healed, r2 and r3 fail with their
   old servers intact;
2. the re-run: r3's new datadir does not start: r3 is rolled back, r2 is healed, r1 (healthy
   now) is left alone;
3. the re-run (r3 alone to rebuild: no chain): the source's mariadb-backup dies mid-stream:
   r3 intact;
4. the re-run as a tree (replica_rebuild_fanout 2: r1 passes the stream on to r2 and r3),
   every replica rebuilt by force: r2's receiver dies mid-stream; r1 and r3 (still broken)
   are rebuilt, r2 keeps its old server, healthy: every replica ends healthy.

The hosts are production-shaped (tests/lab/README.md, hardened): Ansible is the
unprivileged `ops` with sudo, sshd refuses root, the datadir is /data/mysql on its own mount
(the staging copy and the kept datadir inside it), binlogs and relay logs in /var/log/mysql.
"""

from __future__ import annotations

import os
import time

import faults
import scenarios
from ansible_run import REPO
from faults import fatal_lines

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
STAGING = '/data/mysql/#sql-reseed-staging'
THROTTLE = 4  # MB/s: the stream lasts several seconds, time to strike halfway
MID_STREAM = 8 << 20  # bytes in a replica's staging copy: the stream is under way


def failure_line(out, *needles):
    """The one fatal line holding every needle (no traceback, one line)."""
    lines = fatal_lines(out)
    line = next((ln for ln in lines if all(n in ln for n in needles)), None)
    assert line, 'no single line holds %r:\n%s' % (needles, '\n'.join(lines) or out[-4000:])
    assert 'Traceback' not in line and '\n' not in line, line
    return line


def intact(replica, pid, rolled_back=False):
    """On its old server: the same process, its data, still stopped by 1236; no stream of
    ours left on it, its copy (if any) unsealed, or after a rollback kept as it was swapped
    back (sealed, for a look; the next run reclaims it)."""
    assert faults.mariadbd_pid(replica) == pid, replica.name
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '20000'
    assert replica.slave_status()['Last_IO_Errno'] == '1236', replica.name
    assert faults.module_pids(replica, 'backup_receive') == []
    assert faults.transfer_leftovers(replica) == [], replica.name
    listing = replica.run(['ls', '-A', STAGING], check=False).stdout.split()
    assert 'reseed_swapped' not in listing, listing
    assert ('reseed_received' in listing) == rolled_back, listing
    assert replica.run('test -e /etc/mysql/mariadb.conf.d/99-reseed-hold.cnf',
                       check=False).returncode == 1


def healed(primary, replica, out):
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        (replica.name, scenarios.threads(s))
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.t')
    assert '"%s: broken -> healthy: rebuilt from %s' % (replica.name, primary.name) in out, \
        out[-4000:]
    assert replica.run('ls -d /data/mysql/#sql-reseed-old-*').stdout.strip()


def source_clean(primary):
    assert faults.pids(primary, 'mariadb-backup') == []
    assert faults.module_pids(primary, 'backup_stream') == []
    assert faults.transfer_leftovers(primary) == []


def strike_mid_stream(inv, extra, primary, replica, inject):
    """Start the fleet's run throttled and uncompressed (the stream lasts seconds), strike
    once the backup runs on the primary and replica's new copy is under way (not the sealed
    one an earlier run left there, which is reclaimed first), wait for the run's end;
    returns (rc, output, seconds from the strike to the end)."""
    run = faults.start_playbook(inv, PLAYBOOK, dict(
        extra, replica_rebuild_throttle_mbps=THROTTLE, replica_rebuild_compression='none'))
    faults.wait_until(lambda: faults.pids(primary, 'mariadb-backup'), 300, 0.05,
                      'the backup to start on the primary', abort=lambda: run.proc.poll() is not None)
    faults.wait_staging_bytes(replica, STAGING, MID_STREAM, run)
    struck = time.time()
    inject(run)
    rc, out = run.wait(600)
    return rc, out, time.time() - struck


def test_fleet_faults_leave_each_replica_healed_or_intact_and_reruns_converge(
        make_hosts, inventory, repl_password):
    names = ('primary', 'r1', 'r2', 'r3')
    hosts = make_hosts(*names, hardened=names)
    primary = hosts['primary']
    r1, r2, r3 = hosts['r1'], hosts['r2'], hosts['r3']
    scenarios.setup_replication(primary, [r1, r2, r3], repl_password, rows=20000)
    for replica in (r1, r2, r3):
        scenarios.break_1236(primary, replica)
    inv = inventory(primary, [r1, r2, r3])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password,
             'replica_rebuild_fleet': True}
    pids = dict((r.name, faults.mariadbd_pid(r)) for r in (r1, r2, r3))
    figures = {}

    # 1. The middle of the chain dies: r2's receiver, killed mid-stream. r1, before it,
    # finishes; r3, after it, loses its upstream.
    rc, out, figures['mid_chain_to_end'] = strike_mid_stream(
        inv, extra, primary, r2,
        lambda run: faults.kill_in_host(r2, faults.module_pids(r2, 'backup_receive')))
    assert rc != 0, out[-6000:]
    healed(primary, r1, out)
    chain = '(chain %s -> %s -> %s)' % (r1.name, r2.name, r3.name)
    for replica in (r2, r3):
        failure_line(out, '%s: stream from %s %s' % (replica.name, primary.name, chain),
                     'Nothing was swapped')
        intact(replica, pids[replica.name])
    source_clean(primary)
    pids[r1.name] = faults.mariadbd_pid(r1)

    # 2. The re-run chains r2 -> r3 (r1 is healthy: left alone), while the primary takes
    # writes. r3's prepared copy loses its system tablespace before its swap: its new server
    # does not start, it is rolled back onto its old datadir; r2 is healed.
    with faults.LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        run = faults.start_playbook(inv, PLAYBOOK, extra)
        faults.spoil_copy_once_prepared(r3, STAGING, run)
        rc, out = run.wait(600)
    assert rc != 0, out[-6000:]
    writer.check_arrived(r1, r2)
    healed(primary, r2, out)
    failure_line(out, r3.name, 'step start the new server', 'rolled back')
    assert faults.mariadbd_pid(r3) != pids[r3.name]  # stopped for the swap, started again
    pids[r3.name] = faults.mariadbd_pid(r3)
    scenarios.wait_error(r3, 'Last_IO_Errno', 1236)
    intact(r3, pids[r3.name], rolled_back=True)
    assert faults.mariadbd_pid(r1) == pids[r1.name]
    assert '"%s: healthy -> healthy: none"' % r1.name in out
    source_clean(primary)
    pids[r2.name] = faults.mariadbd_pid(r2)

    # 3. The source dies mid-stream. r3 is the only replica left to rebuild: the stream of a
    # replica alone, no chain.
    rc, out, figures['source_death_to_end'] = strike_mid_stream(
        inv, extra, primary, r3,
        lambda run: faults.kill_in_host(primary, faults.pids(primary, 'mariadb-backup')))
    assert rc != 0, out[-6000:]
    assert 'first replica of the chain' not in out
    failure_line(out, '%s: stream from %s: ' % (r3.name, primary.name),
                 'mariadb-backup on the source failed', 'killed by signal 9', 'not sealed',
                 'Nothing was swapped')
    intact(r3, pids[r3.name])
    source_clean(primary)

    # (The controller interrupted mid-stream, the same stream of a replica alone:
    # test_reliability.py::test_controller_interrupted_mid_stream.)

    # 4. The re-run, as a tree by force, under writes: r1 receives from the source and
    # passes the stream on to both r2 and r3. r2's receiver dies mid-stream: only r2 is cut
    # off, r3 gets its copy from r1 all the same, and is healed: every replica ends healthy,
    # with every row written.
    with faults.LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        rc, out, figures['tree_hop_to_end'] = strike_mid_stream(
            inv, dict(extra, replica_rebuild_force=True, replica_rebuild_fanout=2), primary, r2,
            lambda run: faults.kill_in_host(r2, faults.module_pids(r2, 'backup_receive')))
    assert rc != 0, out[-6000:]
    writer.check_arrived(r1, r2, r3)
    failure_line(out, '%s: stream from %s (tree, fan-out 2: %s -> %s, %s)' % (
        r2.name, primary.name, r1.name, r2.name, r3.name), 'Nothing was swapped')
    assert faults.mariadbd_pid(r1) != pids[r1.name]
    assert '"%s: healthy -> healthy: rebuilt from %s' % (r1.name, primary.name) in out
    s = r1.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes')
    assert faults.mariadbd_pid(r3) != pids[r3.name]
    healed(primary, r3, out)
    assert faults.mariadbd_pid(r2) == pids[r2.name]
    s = r2.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes')
    assert faults.module_pids(r2, 'backup_receive') == []
    for host in (primary, r1, r2, r3):
        assert faults.transfer_leftovers(host) == [], host.name
    print(dict((k, round(v, 1)) for k, v in figures.items()))
