# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data path and the whole rebuild, measured on the lab: limits, baselines and ours.

    make bench                                      # 1 GB of InnoDB data, every section
    make bench BENCH_ARGS='--size-gb 8 --only stages,ours'
    .venv/bin/python bench/bench.py --hosts bh --size-gb 0.05 --repeat 1 --keep

Every figure of a run is taken in that run, so ratios hold on a noisy machine. Prints one
markdown table (with the machine-wide CPU of each step) and the issue-7 targets, and writes
bench/results/<time>.md, .json and .png (a bar chart). Never run by the tests.

Sections (--only, comma-separated; all but fleet by default), in this order:
- stages: each stage alone, raw `tar | ssh | tar`, the hand pipeline (datapath.py);
- ours: reseed.mariadb.backup_stream (and backup_receive) per transport x compression x parallel (datapath.py);
- shaped: our stream (tls, ssh) on a link shaped to 1gbit and 100mbit (datapath.py);
- logical: mariadb-dump | mariadb, mydumper + myloader (logical.py);
- playbook: playbooks/rebuild_replica.yml, and the replica's downtime (rebuild.py);
- fleet (only when asked for, never by default): four replicas PREFIX-r1..r4 rebuilt with
  replica_rebuild_fleet=true, one at a time, and one alone; the primary's bytes read by
  mariadb-backup and sent, each replica's downtime and each host's CPU seconds (fleet.py;
  issue 13). --fleet-rate 200mbit shapes every host's link first, so that the link is the
  limit and not the lab's shared cores (issue 24).
The page cache is warm (a read of the datadir comes first), dirty pages are flushed (sync)
before each step, and each step waits until the memory freed before it has been handed back
to the hypervisor where the machine does that (core.settle_memory), so that a stage alone
and our stream start from the same memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import time
import traceback

import core  # first: it puts tests/lab on the path
import datapath
import fleet
import logical
import rebuild
import report
from lab import Lab

SECTIONS = ('stages', 'ours', 'shaped', 'logical', 'playbook', 'fleet')
DEFAULT = SECTIONS[:-1]  # fleet: four more hosts and nine rebuilds, only with --only fleet


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size-gb', type=float, default=1.0,
                        help='sysbench data on the source (default 1)')
    parser.add_argument('--parallel', type=int, default=2,
                        help='mariadb-backup --parallel of the stages, and the parallel of '
                             'the shaped runs (default 2)')
    parser.add_argument('--hosts', default='bench', metavar='PREFIX',
                        help='lab hosts PREFIX-src and PREFIX-dst, and PREFIX-r1..r4 for '
                             'the fleet section (default bench)')
    parser.add_argument('--only', default=','.join(DEFAULT),
                        help='sections, comma-separated: %s (default all but fleet)'
                             % ','.join(SECTIONS))
    parser.add_argument('--rates', default='1gbit,100mbit',
                        help='link rates of the shaped section (tc syntax, comma-separated)')
    parser.add_argument('--transports', default='tls,tcp,ssh',
                        help='transports of the ours section (comma-separated)')
    parser.add_argument('--compressions', default='none,zstd,auto',
                        help='compressions of the ours section (comma-separated)')
    parser.add_argument('--parallels', default='1,2',
                        help='parallel values of the ours section (comma-separated): N for '
                        'mariadb-backup --parallel and mbstream -p both N, N/M for mbstream '
                        '-p M')
    parser.add_argument('--shaped-transports', default='tls,ssh',
                        help='transports of the shaped section (comma-separated)')
    parser.add_argument('--playbook-break', choices=('1236', 'none'), default='1236',
                        help='break the replica before the playbook (error 1236), or leave '
                             'it healthy and force the rebuild')
    parser.add_argument('--fleet-runs', default='single,fleet,serial',
                        help='runs of the fleet section (comma-separated; default '
                        'single,fleet,serial)')
    parser.add_argument('--fleet-compression', choices=('none', 'zstd', 'auto'), default='none',
                        help='replica_rebuild_compression of the fleet section (default none: '
                             'the same in its three runs)')
    parser.add_argument('--fleet-rate', default=None, metavar='RATE',
                        help='shape every host link of the fleet section to RATE (tc syntax, '
                        'e.g. 200mbit), so that the link is the limit (default: not shaped)')
    parser.add_argument('--fleet-drop-old', action='store_true',
                        help='the fleet section\'s rebuilds delete the old datadir once the new '
                             'one runs (replica_rebuild_keep_old_datadir: false), for sizes '
                             'whose kept datadirs the disk cannot hold (8 GB here)')
    parser.add_argument('--keep', action='store_true', help='reuse and keep the bench hosts')
    parser.add_argument('--repeat', type=int, default=3, help='runs per step (median)')
    parser.add_argument('--out', default=os.path.join(core.ROOT, 'bench', 'results'))
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(',') if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown or not args.sections:
        parser.error('--only: sections are %s (not %s)'
                     % (', '.join(SECTIONS), ', '.join(sorted(unknown))))
    return args


def run_sections(bench, args):
    """Each chosen section in order; one that fails is reported and the others still run."""
    actions = {
        'stages': lambda: datapath.stages(bench),
        'ours': lambda: datapath.ours(bench, args.transports.split(','),
                                      args.compressions.split(','),
                                      args.parallels.split(',')),
        'shaped': lambda: datapath.shaped(bench, args.rates.split(','),
                                          args.shaped_transports.split(',')),
        'logical': lambda: logical.logical(bench),
        'playbook': lambda: rebuild.playbook(bench, args.playbook_break),
        'fleet': lambda: fleet.fleet(bench, args.hosts, args.keep, args.fleet_compression,
                                     args.fleet_runs.split(','), args.fleet_drop_old,
                                     args.fleet_rate),
    }
    errors = []
    for name in SECTIONS:
        if name in args.sections:
            print('== %s' % name, flush=True)
            start = time.monotonic()
            try:
                actions[name]()
            except Exception as e:  # a long run keeps what the other sections measured
                traceback.print_exc()
                errors.append((name, str(e).strip().splitlines()[0] if str(e) else repr(e)))
            print('== %s: %.0f s' % (name, time.monotonic() - start), flush=True)
    return errors


def main(argv=None):
    args = parse_args(argv)
    lab = Lab()
    names = ('%s-src' % args.hosts, '%s-dst' % args.hosts)
    src, dst = core.prepare_hosts(lab, names, args.size_gb, args.keep)
    cpu = core.CpuClock()
    cpu.start()
    bench = core.Bench(src, dst, args.repeat, cpu, args.parallel)
    try:
        errors = run_sections(bench, args)
        facts = bench.facts
        facts.setdefault('datadir_bytes', core.datadir_bytes(src))
    finally:
        cpu.stop()
        shutil.rmtree(bench.tmp, ignore_errors=True)
        if not args.keep:
            for name in names:
                lab.destroy(name)
    stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
    size = '%g GB of sysbench data (datadir %.2f GB%s)' % (
        args.size_gb, facts['datadir_bytes'] / 1e9,
        ', stream %.2f GB' % (facts['stream_bytes'] / 1e9) if 'stream_bytes' in facts else '')
    head = 'Run %s on %s/%s: %d CPUs, %s, parallel %d, sections %s' % (
        stamp, names[0], names[1], os.cpu_count(), size, args.parallel, ','.join(args.sections))
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, stamp)
    record = {'stamp': stamp, 'args': vars(args), 'cpus': os.cpu_count(), 'rows': bench.rows,
              'facts': facts, 'notes': bench.notes, 'errors': errors}

    def write_record():
        with open(base + '.json', 'w') as f:
            json.dump(record, f, indent=2)
    write_record()  # the measurements first: a report that fails below loses none of them
    text = report.markdown(head, bench.rows, bench.notes, errors, bench.repeat)
    with open(base + '.md', 'w') as f:
        f.write(text)
    record['targets'] = report.targets(bench.rows)
    write_record()
    title = 'reseed.mariadb bench %s: %s, %d CPUs' % (stamp, size, os.cpu_count())
    charts = []
    if bench.rows:
        report.chart(bench.rows, base + '.png', title)
        charts.append(base + '.png')
    runs = report.fleet_runs(bench.rows)
    if runs:  # single, fleet, serial side by side
        report.chart([runs[m] for m in ('single', 'fleet', 'serial') if m in runs],
                     base + '-fleet.png', 'fleet, ' + title)
        charts.append(base + '-fleet.png')
    print('\n' + text)
    print('written: %s' % ', '.join([base + '.md', base + '.json'] + charts))
    return 1 if errors else 0


if __name__ == '__main__':
    raise SystemExit(main())
