# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A terabyte on paper: the rebuild's time projected from the stages' measured costs.

    python3 bench/model.py                 # the tables of docs/PERFORMANCE.md, "A terabyte on paper"
    python3 bench/model.py --read-gbps 2.0 # another source disk (the lab's read 1.30 GB/s)

Nothing is measured here (standard library only, no lab): every input below is a figure
measured by bench/ and published in docs/PERFORMANCE.md or docs/VERIFY.md, with its section.
A GB is 10^9 bytes of the copy (mariadb-backup's stream), as in the bench.

The model, in one paragraph. The stream is a pipeline: every stage runs at once, so its time
is the copy's size times the slowest of (a) each stage's own limit (a single-threaded stage
cannot pass 1 / its CPU seconds per GB; mariadb-backup's read is bounded by the rate
measured), (b) each host's CPU floor (the CPU seconds per GB of the stages on that host,
over its cores; on the lab every host shares the same two cores), (c) the link. CPU
seconds per GB are the stages' alone and scale linearly with bytes. Around the stream: the
play's fixed time (Ansible's tasks, the swap, the replication start: measured as the play to
a healthy replica less its stream and prepare), the prepare, and the verification, a scan of
every table on the primary and on the replica in one thread each, at the measured rate.
"""

from __future__ import absolute_import, division, print_function

import argparse

__metaclass__ = type

# --- Measured inputs (value, where it was measured) --------------------------------------
DATA = 'PERFORMANCE.md, "Current figures", "The data path"'
SETTLED = DATA + ', 8 GB, 2026-12-02 11:20, median of 3'
SETTLED_1 = DATA + ', 1 GB, 2026-12-02 11:00, median of 3'
PLAY = 'PERFORMANCE.md, "Current figures", "The whole rebuild"'
PLAY_8 = PLAY + ', 8 GB, 2026-12-02 11:55, one run'
PLAY_1 = PLAY + ', 1 GB, 2026-12-02 08:20, median of 3'
DEFAULTS = 'PERFORMANCE.md, "The defaults and the runs behind them" (2026-11-24)'
FLEET = 'PERFORMANCE.md, "Current figures", "The fleet", run of 2026-12-02 '

INPUTS = {
    # The stages alone, 8 GB (a copy of 8.21 GB): seconds, CPU seconds, GB.
    'read': ((6.32, 1.53, 8.21), 'mariadb-backup --parallel 2 to /dev/null; ' + SETTLED),
    'tls': ((14.33, 21.99, 8.21), 'socat openssl alone, both ends; ' + SETTLED),
    'tcp': ((5.22, 8.50, 8.21), 'socat alone, both ends; ' + SETTLED),
    'ssh': ((18.47, 35.26, 8.28), ('ssh alone, both ends; PERFORMANCE_HISTORY.md, '
                                   '"Runs of 2026-11-24, 21:40-23:10", 8 GB, one run')),
    'extract': ((13.58, 25.78, 8.21), 'mbstream -x -p 2 from a file; ' + SETTLED),
    # What the lab's free page reporting adds to an extract (CPU s per GB): the same 1.13 GB
    # extracted 15 s after the rm -rf of the last one, against right after it. A host that
    # does not hand freed memory back to a hypervisor does not pay it.
    'page_reporting': (2.5, 'PERFORMANCE.md, "Method", "Settled memory"'),
    # zstd -1 on this data, in memory, 2 threads: MB/s of input, ratio.
    'zstd': ((472.0, 2.57, 2), 'zstd -b level 1; ' + DEFAULTS),
    # The prepare of a quiet copy (seconds): 8 GB, 1 GB.
    'prepare': ((0.14, 0.24), PLAY_8 + '; ' + PLAY_1),
    # The prepare under writes, use_memory 1G: (GB of redo, seconds) twice.
    'prepare_redo': (((0.192, 2.23), (0.327, 4.50)),
                     'bench/prepare_memory.py; ' + DEFAULTS),
    # The verification step (every table, the primary's and the replica's scan at once,
    # one thread each): seconds, GB.
    'verify': ((67.98, 8.21), PLAY_8),
    # The play to a healthy replica, its stream, its prepare (seconds): 8 GB, 1 GB.
    'play_to_healthy': (((40.41, 24.28, 0.14), (20.63, 4.13, 0.24)), PLAY_8 + '; ' + PLAY_1),
    # The whole run less the play to healthy and the verification (the summary): 8 GB, 1 GB.
    'tail': (((109.37, 40.41, 67.98), (33.31, 20.63, 11.77)), PLAY_8 + '; ' + PLAY_1),
    # datadir_swap's downtime_seconds (one swap; a fleet swaps one replica at a time).
    'swap': ((2.96, 3.10), PLAY_8 + '; ' + PLAY_1),
}

# --- Measured totals the model is checked against ------------------------------------------
# (name, kind, GB of copy, measured seconds, measured CPU s or None, where)
CHECKS = [
    ('stream tls, 1 GB', 'stream_tls', 1.13, 3.20, 5.46, SETTLED_1),
    ('stream tls, 8 GB', 'stream_tls', 8.21, 23.82, 43.15, SETTLED),
    ('stream tcp, 1 GB', 'stream_tcp', 1.13, 2.78, 4.68, SETTLED_1),
    ('stream tcp, 8 GB', 'stream_tcp', 8.21, 20.12, 35.96, SETTLED),
    ('verification, 1 GB', 'verify', 1.13, 11.77, None, PLAY_1),
    ('play to healthy, 1 GB', 'healthy', 1.13, 20.63, None, PLAY_1),
    ('play to healthy, 8 GB', 'healthy', 8.21, 40.41, None, PLAY_8),
    ('whole run, 1 GB', 'whole', 1.13, 33.31, None, PLAY_1),
    ('whole run, 8 GB', 'whole', 8.21, 109.37, None, PLAY_8),
]
# The fleet bench (fleet of 4 against one replica, the whole run with verification): taken
# before the TLS relay's rewrite and the settled memory, so only its ratio is compared.
FLEET_CHECKS = [
    ('fleet of 4 / one replica, 1 GB', 1.125, 124.57 / 37.10, FLEET + '04:19'),
    ('fleet of 4 / one replica, 8 GB', 8.214, 453.34 / 152.04, FLEET + '07:09'),
]

# The projection's hosts.
LINK_GBPS = 10 / 8.0  # 10 Gbit/s, in GB/s of payload (no framing or TCP overhead counted)
CORES = 8
LAB_CORES = 2  # the lab: every host on the same two cores
MBSTREAM_THREADS = 2  # replica_rebuild_parallel: 2 (mbstream -p 2)


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def per_gb(name):
    """(CPU seconds per GB, GB per second) of a stage measured alone."""
    (seconds, cpu, gb), dummy = INPUTS[name]
    return cpu / gb, gb / seconds


def fixed_seconds():
    """The play to a healthy replica less its stream and prepare."""
    return mean(h - s - p for h, s, p in INPUTS['play_to_healthy'][0])


def tail_seconds():
    return mean(w - h - v for w, h, v in INPUTS['tail'][0])


def swap_seconds():
    return mean(INPUTS['swap'][0])


def scan_seconds_per_gb():
    seconds, gb = INPUTS['verify'][0]
    return seconds / gb


def prepare_seconds(redo_gb=0.0):
    """A quiet copy's prepare, plus the measured slope per GB of redo to apply."""
    (g1, s1), (g2, s2) = INPUTS['prepare_redo'][0]
    return mean(INPUTS['prepare'][0]) + redo_gb * (s2 - s1) / (g2 - g1)


def stream(gb, transport='tls', compression='none', replicas=1, cores=CORES,
           shared_cores=None, link_gbps=LINK_GBPS, read_gbps=None, page_reporting=False):
    """The stream of gb GB to one replica, or to `replicas` in a chain (each extracts and
    forwards the same bytes; the source sends once). shared_cores: every host on those
    cores (the lab). Returns seconds, CPU seconds (all hosts), the limit's name, and the
    seconds per GB of every limit."""
    read_cpu, measured_read = per_gb('read')
    read_gbps = read_gbps or measured_read
    wire = 1.0
    compress_cpu = 0.0
    if compression == 'zstd':
        (mb_s, ratio, threads), dummy = INPUTS['zstd']
        wire = 1.0 / ratio
        compress_cpu = threads / (mb_s / 1000.0)  # CPU s per GB of input
    end_cpu = per_gb(transport)[0] / 2 * wire  # one end of the connection, per GB of copy
    extract_cpu = per_gb('extract')[0] - (0 if page_reporting else INPUTS['page_reporting'][0])
    source_cpu = read_cpu + compress_cpu + end_cpu
    # Each replica: its receiving end, its extract and (but the last) the forwarding end,
    # done by the same thread as the receiving (pipeline.Pump.receive -> transfer.Fanout).
    # zstd's decompression on the replica was not measured alone and is not counted.
    hop_thread = [end_cpu * (2 if i < replicas - 1 else 1) for i in range(replicas)]
    replica_cpu = [t + extract_cpu for t in hop_thread]
    limits = {
        'backup read': 1.0 / read_gbps,
        'source relay (1 thread)': end_cpu,
        'replica relay (1 thread)': max(hop_thread),
        'extract (mbstream -p 2)': extract_cpu / MBSTREAM_THREADS,
    }
    if compress_cpu:
        limits['zstd (-T0, all cores)'] = compress_cpu / (shared_cores or cores)
    if shared_cores:
        limits['CPU (all hosts on %d cores)' % shared_cores] = (
            source_cpu + sum(replica_cpu)) / shared_cores
    else:
        limits['source CPU'] = source_cpu / cores
        limits['replica CPU'] = max(replica_cpu) / cores
    if link_gbps:
        limits['link'] = wire / link_gbps
    limit = max(limits, key=limits.get)
    # How many of the source's cores the stream keeps busy at that rate.
    return dict(seconds=gb * limits[limit], cpu=gb * (source_cpu + sum(replica_cpu)),
                limit=limit, limits=limits, source_cores=source_cpu / limits[limit])


def rebuild(gb, replicas=1, mode='chain', redo_gb=0.0, **kw):
    """The whole run: one replica (replicas=1), a chain of replicas (one backup, swaps one
    at a time, the primary scanned once, then every replica's compare at once), or serial
    (one whole rebuild after the other). Seconds of each part and the limit."""
    if mode == 'serial':
        one = rebuild(gb, 1, 'chain', redo_gb, **kw)
        return dict((k, v * replicas if k in ('healthy', 'verify', 'whole', 'stream', 'cpu')
                     else v) for k, v in one.items())
    s = stream(gb, replicas=replicas, **kw)
    scan = gb * scan_seconds_per_gb()
    shared = kw.get('shared_cores')
    if replicas == 1:
        # phase all: the two scans overlap, one thread each, on their own cores (the lab:
        # two scans on two cores).
        verify = scan * max(1.0, 2.0 / shared) if shared else scan
    else:
        # the primary's scan, then every replica's compare at once (VERIFY.md, "A fleet").
        verify = scan + (scan * max(1.0, float(replicas) / shared) if shared else scan)
    fixed = fixed_seconds() + (replicas - 1) * swap_seconds()
    prepare = prepare_seconds(redo_gb) * (max(1.0, float(replicas) / shared) if shared else 1)
    healthy = fixed + s['seconds'] + prepare
    parts = dict(fixed=fixed, stream=s['seconds'], prepare=prepare, verify=verify,
                 tail=tail_seconds())
    return dict(healthy=healthy, verify=verify, whole=healthy + verify + tail_seconds(),
                stream=s['seconds'], cpu=s['cpu'], stream_limit=s['limit'],
                source_cores=s['source_cores'], limit=max(parts, key=parts.get))


def lab(gb, kind):
    """The model on the lab: every host on two cores, no link limit, page reporting on."""
    kw = dict(shared_cores=LAB_CORES, link_gbps=None, page_reporting=True)
    if kind.startswith('stream_'):
        s = stream(gb, transport=kind[len('stream_'):], **kw)
        return s['seconds'], s['cpu']
    r = rebuild(gb, **kw)
    return {'verify': r['verify'], 'healthy': r['healthy'], 'whole': r['whole']}[kind], None


def checks():
    """(name, measured s, model s, error, measured CPU, model CPU, CPU error, where)."""
    rows = []
    for name, kind, gb, seconds, cpu, where in CHECKS:
        m_s, m_cpu = lab(gb, kind)
        rows.append((name, seconds, m_s, m_s / seconds - 1, cpu, m_cpu,
                     None if cpu is None else m_cpu / cpu - 1, where))
    return rows


def fleet_checks():
    kw = dict(shared_cores=LAB_CORES, link_gbps=None, page_reporting=True)
    rows = []
    for name, gb, measured, where in FLEET_CHECKS:
        ratio = rebuild(gb, 4, **kw)['whole'] / rebuild(gb, 1, **kw)['whole']
        rows.append((name, measured, ratio, ratio / measured - 1, where))
    return rows


SCENARIOS = [  # (label, replicas, mode, transport, compression)
    ('one replica, tls', 1, 'chain', 'tls', 'none'),
    ('one replica, tcp', 1, 'chain', 'tcp', 'none'),
    ('one replica, tls + zstd', 1, 'chain', 'tls', 'zstd'),
    ('one replica, ssh', 1, 'chain', 'ssh', 'none'),
    ('fleet of 10, chain, tls', 10, 'chain', 'tls', 'none'),
    ('fleet of 10, chain, tcp', 10, 'chain', 'tcp', 'none'),
    ('10 one at a time, tls', 10, 'serial', 'tls', 'none'),
]


def projection(sizes=(100, 1000), read_gbps=None, redo_gb=0.0):
    rows = []
    for gb in sizes:
        for label, replicas, mode, transport, compression in SCENARIOS:
            r = rebuild(gb, replicas, mode, redo_gb, transport=transport,
                        compression=compression, read_gbps=read_gbps)
            rows.append((gb, label, r))
    return rows


def hms(seconds):
    if seconds < 100:
        return '%.0f s' % seconds
    if seconds < 3600:
        return '%.1f min' % (seconds / 60)
    return '%.2f h' % (seconds / 3600)


def size(gb):
    return '1 TB' if gb == 1000 else '%g GB' % gb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--read-gbps', type=float, help="the source's read rate (GB/s); "
                    'default: the lab\'s measured mariadb-backup read')
    ap.add_argument('--redo-gb', type=float, default=0.0, help='GB of redo the prepare applies')
    args = ap.parse_args()

    print('Inputs (per GB of copy; measured, see the source of each)\n')
    print('| stage | CPU s per GB | GB/s alone | source |')
    print('|---|---:|---:|---|')
    for name in ('read', 'tls', 'tcp', 'ssh', 'extract'):
        cpu, rate = per_gb(name)
        print('| %s | %.3f | %.2f | %s |' % (name, cpu, rate, INPUTS[name][1]))
    (mb_s, ratio, threads), where = INPUTS['zstd']
    print('| zstd -1 | %.2f | %.2f (%d threads), ratio %.2f | %s |' % (
        threads / (mb_s / 1000.0), mb_s / 1000.0, threads, ratio, where))
    print('| verification scan, one thread per side | %.2f | %.3f | %s |' % (
        scan_seconds_per_gb(), 1 / scan_seconds_per_gb(), INPUTS['verify'][1]))
    print('\nFixed: play %.1f s around stream and prepare, prepare %.2f s (+%.1f s per GB '
          'of redo), swap %.2f s, summary %.2f s; lab page reporting %.1f CPU s per GB '
          'extracted.' % (fixed_seconds(), prepare_seconds(), prepare_seconds(1) -
                          prepare_seconds(), swap_seconds(), tail_seconds(),
                          INPUTS['page_reporting'][0]))

    print('\nCheck: the model on the lab (every host on 2 cores, page reporting) against '
          'the measured runs\n')
    print('| run | measured s | model s | error | measured CPU s | model CPU s | error |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for name, m, p, e, cpu, pcpu, ecpu, dummy in checks():
        print('| %s | %.2f | %.2f | %+.0f %% | %s | %s | %s |' % (
            name, m, p, 100 * e, '' if cpu is None else '%.2f' % cpu,
            '' if cpu is None else '%.2f' % pcpu, '' if cpu is None else '%+.0f %%' % (100 * ecpu)))
    for name, m, p, e, dummy in fleet_checks():
        print('| %s | %.2fx | %.2fx | %+.0f %% | | | |' % (name, m, p, 100 * e))

    print('\nProjection: %g Gbit/s link, %d cores per host, no page reporting%s%s\n' % (
        LINK_GBPS * 8, CORES, '' if args.read_gbps is None else
        ', source read %.2f GB/s' % args.read_gbps,
        '' if not args.redo_gb else ', %.1f GB of redo' % args.redo_gb))
    print('| copy | rebuild | stream | stream limit | source cores busy | to healthy | '
          'verification | whole run | limit of the run |')
    print('|---|---|---:|---|---:|---:|---:|---:|---|')
    for gb, label, r in projection(read_gbps=args.read_gbps, redo_gb=args.redo_gb):
        print('| %s | %s | %s | %s | %.1f | %s | %s | %s | %s |' % (
            size(gb), label, hms(r['stream']), r['stream_limit'], r['source_cores'],
            hms(r['healthy']), hms(r['verify']), hms(r['whole']),
            'verification' if r['limit'] == 'verify' else r['limit']))


if __name__ == '__main__':
    main()
