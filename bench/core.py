# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every section of the benchmark shares: the bench hosts, the machine-wide CPU clock,
the median of repeated runs and the rows of the table."""

from __future__ import annotations

import bisect
import json
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lab'))

import ansible_run  # noqa: E402
from streaming import Streamer  # noqa: E402

ROWS_PER_GB = 4200000  # sysbench rows (about 250 bytes with the secondary index)
TABLES = 8
BACKUP = ('mariadb-backup --backup --stream=xbstream --parallel={p} '
          '--target-dir=/tmp/bench-bk 2>/tmp/bench-bk.log')
SSH = 'ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'
CLK_TCK = os.sysconf('SC_CLK_TCK')
# Free page reporting (virtio-balloon): this VM hands freed memory back to its host, and the
# next touch of it costs about 2.5 CPU s per GB in page faults (docs/PERFORMANCE.md).
REPORTED_KIB = '/sys/module/page_reporting/parameters/reported_kib'


def settle_memory(quiet=4.0, limit=30.0):
    """Wait until the memory that the previous step freed (a removed copy) has been handed
    back to the hypervisor: the count of reported memory has not moved for `quiet` seconds
    (the kernel reports in 2-second rounds). Every timed step starts so, stages alone and
    streams alike: a stage run right after its `rm -rf` would reuse memory still in the
    guest, which our stream, started through Ansible seconds later, cannot. Returns the MiB
    handed back meanwhile; 0 at once on a machine without free page reporting."""
    if not os.path.exists(REPORTED_KIB):
        return 0

    def reported():
        with open(REPORTED_KIB) as f:
            return int(f.read())

    first = last = reported()
    still = time.time()
    deadline = still + limit
    while time.time() < deadline and time.time() - still < quiet:
        time.sleep(0.25)
        now = reported()
        if now != last:
            last, still = now, time.time()
    return (last - first) // 1024


def busy_cpu_seconds():
    """Busy CPU seconds of the whole machine since boot: user, nice, system, irq, softirq
    and steal of /proc/stat's first line (guest time is already in user)."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / float(CLK_TCK)


class CpuClock(threading.Thread):
    """Machine-wide busy CPU seconds sampled every 0.1 s, so that the CPU of a window known
    only afterwards (a module's own start and end, a task's) can be read off. Lab hosts
    share the controller's kernel: their processes and Ansible's all count."""

    def __init__(self, every=0.1):
        super().__init__(daemon=True)
        self.every = every
        self.samples = []  # (epoch seconds, busy CPU seconds), in time order
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def sample(self):
        """Take a sample now; returns its time."""
        with self.lock:
            now = time.time()
            bisect.insort(self.samples, (now, busy_cpu_seconds()))
        return now

    def run(self):
        while not self.stopped.wait(self.every):
            self.sample()

    def stop(self):
        self.stopped.set()

    def busy_at(self, t):
        """Busy CPU seconds at time t, interpolated between the two samples around it."""
        with self.lock:
            samples = list(self.samples)
        i = bisect.bisect_left(samples, (t, float('-inf')))
        if i == 0:
            return samples[0][1]
        if i == len(samples):
            return samples[-1][1]
        (t0, b0), (t1, b1) = samples[i - 1], samples[i]
        return b0 + (b1 - b0) * (t - t0) / (t1 - t0) if t1 > t0 else b1

    def between(self, window):
        return self.busy_at(window[1]) - self.busy_at(window[0])


class Measure(object):
    """One run of a step: its seconds, its time window (epoch start, end) for the CPU, and
    whatever else it returned."""

    def __init__(self, seconds, window=None, **extra):
        self.seconds = seconds
        self.window = window
        self.extra = extra


def median(measures):
    return sorted(measures, key=lambda m: m.seconds)[len(measures) // 2]


class Bench(object):
    """The two bench hosts, the clock, and the rows measured so far."""

    def __init__(self, src, dst, repeat, cpu, parallel):
        self.src, self.dst = src, dst
        self.repeat = max(1, repeat)
        self.cpu = cpu
        self.parallel = parallel
        self.rows = []
        self.notes = []  # lines for the report, below the table
        self.facts = {}  # what sections learnt that others or the report use
        self.tmp = tempfile.mkdtemp(prefix='reseed-bench-')
        self.inventory = ansible_run.write_inventory(
            src.lab, os.path.join(self.tmp, 'inv.json'), src.name, [dst.name])
        self.streamers = {}  # (transport, staging) -> Streamer: its certificates made once

    def repeated(self, run_once):
        """The median (by seconds) of self.repeat calls of run_once() -> Measure."""
        return median([run_once() for dummy in range(self.repeat)])

    def shell(self, host, cmd, before=None, timeout=7200):
        """A Measure of cmd on host; `before` (a command on host, or a function) runs untimed
        first. Dirty pages of the previous step are flushed (sync) first, so that no step
        pays for another's writeback, and freed memory is let go (settle_memory)."""
        if callable(before):
            before()
        elif before:
            host.run(before, timeout=timeout)
        host.run('sync', timeout=timeout)
        settle_memory()
        start = self.cpu.sample()
        host.run(cmd, timeout=timeout)
        end = self.cpu.sample()
        return Measure(end - start, (start, end))

    def timed(self, host, cmd, before=None, timeout=7200):
        """The median Measure of cmd on host over the repeats."""
        return self.repeated(lambda: self.shell(host, cmd, before, timeout))

    def add(self, name, kind, measure, nbytes=None, **attrs):
        """A row of the table. kind: info, limit, raw, naive, ours, logical, playbook.
        attrs: stage (a limit's name: backup, ssh, tcp, mbstream-N), transport and
        extract_p (the stages a row is bounded by), link (a shaped link's rate)."""
        seconds = measure.seconds
        cpu = self.cpu.between(measure.window) if measure.window else None
        row = dict(attrs, name=name, kind=kind, seconds=round(seconds, 2), bytes=nbytes,
                   mb_s=round(nbytes / seconds / 1e6, 1) if nbytes and seconds else None,
                   cpu_s=round(cpu, 2) if cpu is not None else None,
                   cpu_floor_s=round(cpu / os.cpu_count(), 2) if cpu is not None else None)
        self.rows.append(row)
        print('  %-70s %8.2f s%s' % (name, seconds, '' if cpu is None else
                                     '  (CPU %.1f s)' % cpu), flush=True)
        return row

    def stream(self, transport, compression, parallel, staging='/var/lib/bench-x',
               extract_parallel=None):
        """One run of reseed.mariadb.backup_stream through Ansible (and its action plugin)
        into backup_receive on the destination (both ends, as the role starts them), into an
        emptied staging directory. Its seconds are the sending module's own; its window, for
        the CPU, comes from the progress file's last write (the same kernel's clock)."""
        self.dst.run('rm -rf %s' % staging, timeout=600)
        self.dst.run('sync', timeout=600)
        settle_memory()
        key = (transport, staging)
        if key not in self.streamers:
            self.streamers[key] = Streamer(
                self.inventory, self.src, self.dst, tempfile.mkdtemp(prefix='bench-stream-', dir=self.tmp),
                transport, staging=staging,
                ssh_key='/root/.ssh/id_ed25519' if transport == 'ssh' else None)
        res, received = self.streamers[key].stream(send={
            'compression': compression, 'parallel': parallel,
            'progress_file': '/tmp/bench-progress.json'},
            receive={'parallel': parallel if extract_parallel is None else extract_parallel})
        if res.failed or received.get('failed'):
            raise RuntimeError('backup_stream failed: %s; receiver: %s' % (
                res.get('msg'), received.get('msg')))
        progress = json.loads(self.src.run('cat /tmp/bench-progress.json').stdout)
        end = progress['updated']
        return Measure(res['seconds'], (end - res['seconds'], end),
                       bytes_read=res['bytes_read'], bytes_sent=res['bytes_sent'],
                       auto=(res.get('auto_compression') or {}))


def datadir_bytes(host):
    return int(host.run('du -sb /var/lib/mysql').stdout.split()[0])


def prepare_hosts(lab, names, size_gb, keep):
    """The source (with size_gb of sysbench data) and the destination; the source may ssh
    to the destination, as the hand pipeline does."""
    hosts = []
    for name in names:
        if not keep:
            lab.destroy(name)
        hosts.append(lab.create(name))
    src, dst = hosts
    pub = src.run('cat /root/.ssh/id_ed25519.pub').stdout
    dst.run('grep -qF "%s" /root/.ssh/authorized_keys || cat >> /root/.ssh/authorized_keys'
            % pub.strip().split()[1], input=pub)
    rows = max(1000, int(size_gb * ROWS_PER_GB / TABLES))
    have = src.sql_value("SELECT COALESCE(SUM(TABLE_ROWS), 0) FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = 'sbtest'") or '0'
    # TABLE_ROWS is an estimate; a reused source within 20% of the size is kept.
    if not 0.8 < int(have) / float(rows * TABLES) < 1.2:
        src.sql('DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest;')
        print('loading %d tables x %d rows with sysbench ...' % (TABLES, rows), flush=True)
        src.run('sysbench oltp_read_write --mysql-user=root '
                '--mysql-socket=/run/mysqld/mysqld.sock --mysql-db=sbtest --tables=%d '
                '--table-size=%d --threads=2 prepare >/dev/null' % (TABLES, rows),
                timeout=7200)
    return src, dst
