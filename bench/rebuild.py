# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Section `playbook`: the whole rebuild as users run it, and the replica's downtime.

The destination is made a GTID replica of the source (at the source's current position,
without its data: the rebuild brings that), then broken (error 1236: the source purged the
binlogs it needs) or left healthy and rebuilt with replica_rebuild_force. Then
playbooks/rebuild_replica.yml runs against the two hosts, timed from start to end (a
healthy, caught-up, verified replica), with a callback that records each task's times and
the stream's, prepare's and swap's own figures. Meanwhile a thread on the controller logs in
to the replica every 0.1 s: the longest stretch it could not is the downtime users see.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time

import pymysql

from core import ROOT, Measure, ansible_run
import scenarios
from lab import ADMIN_USER

PLAYBOOK = os.path.join(ROOT, 'playbooks', 'rebuild_replica.yml')
CALLBACKS = os.path.join(ROOT, 'bench', 'callback_plugins')
# The task of roles/replica_rebuild/tasks/replicate.yml that returns once the replica is healthy.
HEALTHY_TASK = "Replicate from the copy's coordinates and wait until caught up"


class DowntimeProbe(threading.Thread):
    """Every `every` seconds, a TCP connection and a MariaDB login to host:3306 with a 1 s
    timeout. A server that answers, even to refuse the login, accepts connections; only
    client-side failures (refused, timed out, lost: pymysql's 2000-2999) count as down.
    Logins that complete keep the server's max_connect_errors count for us at zero."""

    def __init__(self, host, every=0.1):
        super().__init__(daemon=True)
        self.host, self.every = host, every
        self.tries = []  # (start epoch, up)
        self.stopped = threading.Event()

    def up(self):
        try:
            pymysql.connect(host=self.host.ip, port=3306, user=ADMIN_USER,
                            password=self.host.lab.admin_password, connect_timeout=1).close()
            return True
        except pymysql.err.MySQLError as e:
            code = e.args[0] if e.args and isinstance(e.args[0], int) else 2000
            return not 2000 <= code < 3000
        except OSError:
            return False

    def run(self):
        while not self.stopped.is_set():
            start = time.time()
            self.tries.append((start, self.up()))
            self.stopped.wait(max(0.0, self.every - (time.time() - start)))

    def stop(self):
        self.stopped.set()
        self.join(10)

    def outages(self):
        """(start, end) of each stretch of failed tries: from the first failed try to the
        first successful one after it (or the last try, when none came)."""
        found, start = [], None
        for t, up in self.tries:
            if not up and start is None:
                start = t
            elif up and start is not None:
                found.append((start, t))
                start = None
        if start is not None:
            found.append((start, self.tries[-1][0]))
        return found

    def longest(self):
        """A Measure of the longest outage (its window, for the CPU); 0 s when none."""
        found = self.outages()
        if not found:
            return Measure(0.0)
        start, end = max(found, key=lambda o: o[1] - o[0])
        return Measure(end - start, (start, end))


def make_replica(src, dst, password):
    """dst: a running GTID replica of src at src's current position."""
    scenarios.create_replication_user(src, password)
    scenarios.load_data(src, rows=100)  # labdb: break_1236 writes there
    pos = scenarios.gtid_binlog_pos(src)
    dst.sql('STOP SLAVE; RESET SLAVE ALL; RESET MASTER; SET GLOBAL gtid_slave_pos = %s;'
            % scenarios.q(pos))
    scenarios.start_replication(src, dst, password)


def result_with(timings, action, key):
    """The first result of a task of `action` that has `key` (figures only), or {}."""
    for task in timings['tasks']:
        if task['action'].endswith(action):
            for res in task['results']:
                if res.get(key) is not None:
                    return res
    return {}


def run_rebuild(bench, inventory, extra, probed, name='timings'):
    """One run of the rebuild playbook on `inventory`, timed from start to end, with a
    DowntimeProbe on each host of `probed` (the replicas). Returns (Measure, {host name:
    its probe}); the Measure has the callback's timings."""
    timings_file = os.path.join(bench.tmp, name + '.json')
    env = {'ANSIBLE_CALLBACKS_ENABLED': 'bench_timings',
           'ANSIBLE_CALLBACK_PLUGINS': CALLBACKS, 'BENCH_TIMINGS_FILE': timings_file}
    probes = dict((host.name, DowntimeProbe(host)) for host in probed)
    for probe in probes.values():
        probe.start()
    try:
        bench.cpu.sample()
        start = time.time()
        proc = ansible_run.run_playbook(inventory, PLAYBOOK, extra, env=env, timeout=7200)
        end = bench.cpu.sample()
    finally:
        for probe in probes.values():
            probe.stop()
    if proc.returncode != 0:
        raise RuntimeError('the rebuild playbook failed:\n' + proc.stdout[-3000:])
    with open(timings_file) as f:
        timings = json.load(f)
    for host in probed:  # the kept old datadir: disk, not time
        host.run('rm -rf /var/lib/mysql.reseed-old-*')
    return Measure(end - start, (start, end), timings=timings), probes


def rebuild_once(bench, breakage, password):
    src, dst = bench.src, bench.dst
    if breakage == '1236':
        scenarios.break_1236(src, dst)
    extra = {'replica_rebuild_replication_user': scenarios.REPL_USER,
             'replica_rebuild_replication_password': password,
             'replica_rebuild_force': breakage == 'none'}
    m, probes = run_rebuild(bench, bench.inventory, extra, [dst])
    start, timings, probe = m.window[0], m.extra['timings'], probes[dst.name]
    # Healthy: the role's replication task returned (both threads running, caught up with
    # the primary). The verification that follows (verify.yml: its own replication tasks
    # pause and resume the replica, then the checksums) is timed from there to the end of
    # its last checksum task.
    healthy = [t['end'] for t in timings['tasks']
               if t['action'] == 'reseed.mariadb.replication' and t['end']
               and t['name'].endswith(HEALTHY_TASK)]
    checked = [t['end'] for t in timings['tasks']
               if t['action'] == 'reseed.mariadb.checksum' and t['end']]
    m.extra.update(outages=probe.outages(), down=probe.longest(), tries=len(probe.tries),
                   healthy=healthy[-1] - start if healthy else None,
                   verify=checked[-1] - healthy[-1] if healthy and checked else None)
    return m


def playbook(bench, breakage):
    password = secrets.token_hex(12)
    make_replica(bench.src, bench.dst, password)
    m = bench.repeated(lambda: rebuild_once(bench, breakage, password))
    timings, outages = m.extra['timings'], m.extra['outages']
    bench.add('playbook rebuild_replica.yml: %s replica to healthy'
              % ('broken (1236)' if breakage == '1236' else 'forced, healthy'), 'playbook', m)
    if m.extra['healthy'] is not None:
        bench.add('playbook: from its start to a healthy replica (replicating, caught up)',
                  'playbook', Measure(m.extra['healthy']), part='healthy')
    if m.extra['verify'] is not None:
        bench.add('playbook: then every table checksummed on both (reseed.mariadb.checksum)',
                  'playbook', Measure(m.extra['verify']), part='verify')
    stream = result_with(timings, 'backup_stream', 'bytes_read')
    if stream:
        bench.add('playbook: stream (backup_stream, compression %s, its own seconds)' % (
            (stream.get('auto_compression') or {}).get('chosen', 'auto')),
            'playbook', Measure(stream['seconds']), stream['bytes_read'], part='stream')
    prepare = result_with(timings, 'backup_prepare', 'seconds').get('seconds')
    if prepare is not None:
        bench.add('playbook: prepare (backup_prepare, its own seconds)', 'playbook',
                  Measure(prepare), part='prepare')
    bench.add('playbook: replica down, probed from the controller every 0.1 s', 'playbook',
              m.extra['down'], part='downtime_probe')
    swap = result_with(timings, 'datadir_swap', 'downtime_seconds').get('downtime_seconds')
    if swap is not None:
        bench.add("playbook: replica down, datadir_swap's downtime_seconds", 'playbook',
                  Measure(swap), part='downtime_swap')
    slow = sorted((t for t in timings['tasks'] if t['end']),
                  key=lambda t: t['start'] - t['end'])[:6]
    bench.notes.append('Playbook, slowest tasks of the median run: ' + '; '.join(
        '%s %.1f s' % (t['name'].split(' : ')[-1], t['end'] - t['start']) for t in slow) +
        '. The probe saw %d outage(s) in %d tries.' % (len(outages), m.extra['tries']))
    bench.facts['playbook'] = {
        'seconds': m.seconds, 'healthy_seconds': m.extra['healthy'],
        'verify_seconds': m.extra['verify'], 'stream_seconds': stream.get('seconds'),
        'prepare_seconds': prepare, 'swap_downtime_seconds': swap,
        'probe_outages': [round(b - a, 2) for a, b in outages],
        'tasks': [{'name': t['name'], 'action': t['action'],
                   'seconds': round(t['end'] - t['start'], 2) if t['end'] else None}
                  for t in timings['tasks']]}
