# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Section `fleet` (opt-in): four replicas healed from one backup (replica_rebuild_fleet),
against the same four one at a time and one replica alone (issue 13).

Four more lab hosts, PREFIX-r1..r4, are made GTID replicas of the bench source at its
current position (without its data: the rebuild brings that), as the playbook section does
with one. Then, each forced (replica_rebuild_force: healthy replicas are rebuilt) and with
the same compression (none by default: `auto` may choose differently from run to run, and
the bytes sent would not compare), playbooks/rebuild_replica.yml runs, timed end to end
(verification included):
- single: an inventory of the source and r1 alone;
- fleet: the four with replica_rebuild_fleet=true (one backup through a chain);
- serial: the four with today's play (one replica at a time, one backup each).
During each run the primary's own counters are read, not the collection's figures: a loop
inside the primary reads /proc/<pid>/io of every mariadb-backup process there every 0.05 s
(the last value per pid counts; the sum over pids is the run's), and eth0's tx_bytes in the
primary's namespace is read before and after. A DowntimeProbe per replica (rebuild.py)
logs in every 0.1 s: its longest outage is the downtime a client sees.

With a rate (bench.py --fleet-rate 200mbit), every host's link (the source's and each
replica's) is shaped to it first, both ways (lab.Host.shape: a token bucket on each end of
its veth), so that the link and not the lab's two shared cores is the limit, as on real
hosts with CPUs of their own (issue 24). The CPU seconds each host used in a run are read
too (host_cpu_seconds), so that the CPU floor of each hop shows.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading

from core import ansible_run
from lab import pid_namespace
import rebuild
import scenarios

REPLICAS = 4
RUNNING = '/tmp/bench-backup-io.run'
# Inside the primary: every mariadb-backup's /proc/<pid>/io, each line prefixed by its pid and
# b (a --backup) or o (another run: --version...), until RUNNING is removed.
IO_LOOP = ('touch {f}; while [ -e {f} ]; do for d in /proc/[0-9]*; do '
           'read -r c 2>/dev/null < $d/comm || continue; case $c in '
           'mariadb-backup|mariabackup) k=o; case "$(tr "\\0" " " < $d/cmdline 2>/dev/null)" in '
           '*--backup*) k=b;; esac; sed "s|^|${{d#/proc/}} $k |" $d/io 2>/dev/null;; esac; '
           'done; sleep 0.05; done').format(f=RUNNING)
TX_BYTES = 'cat /sys/class/net/eth0/statistics/tx_bytes'
TICKS = os.sysconf('SC_CLK_TCK')


def host_cpu_seconds(host):
    """The CPU seconds (user + system) of the host's processes so far: every live process of
    its pid namespace, with what the children it reaped had used (cutime, cstime). A process
    that has ended counts through the one that reaped it (its parent, or the host's first
    process), once. Read from the controller's /proc: the lab's pid namespaces are children
    of the controller's. Not counted: what a command entered from the controller (nsenter,
    as Host.run does) used once it ended, its parent being outside the host."""
    namespace = pid_namespace(host.init_pid)
    total = 0
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or pid_namespace(entry) != namespace:
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue  # ended meanwhile: its reaper has it
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / float(TICKS)


class BackupReads(object):
    """The primary's mariadb-backup processes' read counters while a run lasts: {pid:
    {'rchar': n, 'read_bytes': n}}, each the last value seen, and which pids were seen as a
    --backup. rchar counts every byte its read calls returned (from the page cache or the
    disk), read_bytes those the disk had to fetch. One process is one entry, whatever its
    command line looked like at each look."""

    def __init__(self, host):
        self.host = host
        self.last = {}
        self.backup_pids = set()
        self.proc = None
        self.reader = None

    def __enter__(self):
        self.host.run('rm -f %s' % RUNNING)
        self.proc = self.host.popen(IO_LOOP, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        scenarios.wait_for(lambda: self.host.run('test -e %s' % RUNNING, check=False)
                           .returncode == 0, 30, what='the io loop on the primary')
        return self

    def read(self):
        for line in self.proc.stdout:
            pid, kind, key, value = (line.split() + [''] * 4)[:4]
            if key in ('rchar:', 'read_bytes:') and value.isdigit():
                self.last.setdefault(pid, {})[key[:-1]] = int(value)
                if kind == 'b':
                    self.backup_pids.add(pid)

    def __exit__(self, *exc):
        self.host.run('rm -f %s' % RUNNING, check=False)
        self.proc.wait(30)
        self.reader.join(10)

    def total(self, key):
        """The sum of `key` over every mariadb-backup process seen."""
        return sum(v.get(key, 0) for v in self.last.values())

    def backups(self):
        """How many mariadb-backup --backup processes ran."""
        return len(self.backup_pids)

    def processes(self):
        """[(pid, 'backup' or 'other', rchar, read_bytes)] of every process seen."""
        return [(pid, 'backup' if pid in self.backup_pids else 'other', v.get('rchar'),
                 v.get('read_bytes')) for pid, v in sorted(self.last.items())]


def make_replicas(bench, prefix, keep):
    """PREFIX-r1..r4, each a running GTID replica of the bench source; and the password."""
    lab, password = bench.src.lab, secrets.token_hex(12)
    replicas = []
    for i in range(1, REPLICAS + 1):
        name = '%s-r%d' % (prefix, i)
        if not keep:
            lab.destroy(name)
        replicas.append(lab.create(name))
    for replica in replicas:
        rebuild.make_replica(bench.src, replica, password)
    return replicas, password


def run_once(bench, inventory, replicas, extra, name):
    """One forced rebuild of `replicas` (the hosts of `inventory`), with the primary's
    counters and each replica's downtime."""
    src = bench.src
    sent = int(src.run(TX_BYTES).stdout)
    cpu = dict((h.name, host_cpu_seconds(h)) for h in [src] + list(replicas))
    with BackupReads(src) as reads:
        m, probes = rebuild.run_rebuild(bench, inventory, extra, replicas, name)
    cpu = dict((h.name, round(host_cpu_seconds(h) - cpu[h.name], 2))
               for h in [src] + list(replicas))
    stream = rebuild.result_with(m.extra['timings'], 'backup_stream', 'bytes_read')
    m.extra.update(sent=int(src.run(TX_BYTES).stdout) - sent, backups=reads.backups(),
                   host_cpu=cpu,
                   processes=reads.processes(),
                   read=reads.total('rchar'), read_disk=reads.total('read_bytes'),
                   down=dict((n, p.longest()) for n, p in probes.items()),
                   copy=stream.get('bytes_read'), stream_sent=stream.get('bytes_sent'),
                   compression=(stream.get('auto_compression') or {}).get(
                       'chosen', extra['replica_rebuild_compression']))
    return m


RUNS = (  # (mode, replicas, replica_rebuild_fleet, label)
    ('single', 1, False, 'single: 1 replica alone (an inventory of one), end to end'),
    ('fleet', REPLICAS, True, 'fleet: %d replicas, replica_rebuild_fleet=true (one backup '
                              'through a chain), end to end' % REPLICAS),
    ('serial', REPLICAS, False, "serial: %d replicas one at a time (today's play), end to end"
     % REPLICAS),
)


def fleet(bench, prefix, keep, compression='none', runs=None, drop_old=False, rate=None):
    unknown = set(runs or ()) - set(r[0] for r in RUNS)
    if unknown:
        raise ValueError('--fleet-runs: runs are %s, not %s' % (
            ', '.join(r[0] for r in RUNS), ', '.join(sorted(unknown))))
    replicas, password = make_replicas(bench, prefix, keep)
    try:
        for host in [bench.src] + replicas if rate else ():
            host.shape(rate)
        for mode, count, chain, label in RUNS:
            if runs and mode not in runs:
                continue
            hosts = replicas[:count]
            inventory = ansible_run.write_inventory(
                bench.src.lab, os.path.join(bench.tmp, 'fleet-%s.json' % mode),
                bench.src.name, [h.name for h in hosts])
            extra = {'replica_rebuild_replication_user': scenarios.REPL_USER,
                     'replica_rebuild_replication_password': password,
                     'replica_rebuild_force': True, 'replica_rebuild_fleet': chain,
                     'replica_rebuild_compression': compression,
                     'replica_rebuild_keep_old_datadir': not drop_old}
            m = bench.repeated(lambda: run_once(bench, inventory, hosts, extra, mode))
            down = m.extra['down']
            bench.add(label, 'fleet', m, fleet=mode, part='wall', replicas=count, link=rate,
                      host_cpu=m.extra['host_cpu'],
                      backups=m.extra['backups'], read=m.extra['read'],
                      read_disk=m.extra['read_disk'], sent=m.extra['sent'],
                      copy=m.extra['copy'], stream_sent=m.extra['stream_sent'],
                      processes=m.extra['processes'],
                      compression=m.extra['compression'],
                      downtime=dict((n, round(d.seconds, 2)) for n, d in down.items()))
            for name in sorted(down):
                bench.add('%s: %s down, probed from the controller every 0.1 s' % (mode, name),
                          'fleet', down[name], fleet=mode, part='downtime', replica=name)
    finally:
        if rate:
            bench.src.shape(None)
        if not keep:
            for replica in replicas:
                bench.src.lab.destroy(replica.name)
        elif rate:
            for replica in replicas:
                replica.shape(None)
