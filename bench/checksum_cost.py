# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What verifying costs the primary: reseed.mariadb.checksum on the lab, under writes.

    .venv/bin/python bench/checksum_cost.py --size-gb 1 --json 1gb.json
    .venv/bin/python bench/checksum_cost.py --chart chart.png 1gb.json 8gb.json

A primary and a replica with sysbench data; a writer commits small transactions on the
primary throughout and records each commit's latency. Each check (chunked, the default, and
the single snapshot of old, `--modes`) reports its durations (whole check, the longest
snapshot held on the primary, replica paused and the longest hold of its replication), the
primary's oldest transaction and history list length sampled every 0.5 s (issue 24), and
the writer's commit latency (median, p99, max) during the check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lab'))

import ansible_run  # noqa: E402
import scenarios  # noqa: E402
from faults import InnoDBWatch  # noqa: E402
from lab import Lab  # noqa: E402

PRIMARY, REPLICA = 'ckb-primary', 'ckb-replica'
ROWS_PER_GB = 4200000


class LatencyWriter(threading.Thread):
    def __init__(self, host):
        super().__init__(daemon=True)
        self.conn = host.connect()
        self.samples = []  # (time, seconds)
        self.stop = threading.Event()

    def run(self):
        with self.conn.cursor() as cur:
            cur.execute('CREATE TABLE IF NOT EXISTS labdb.ticks (id INT AUTO_INCREMENT '
                        'PRIMARY KEY, at DOUBLE)')
            while not self.stop.is_set():
                start = time.monotonic()
                cur.execute('INSERT INTO labdb.ticks (at) VALUES (%s)', [time.time()])
                self.samples.append((start, time.monotonic() - start))
                time.sleep(0.005)

    def window(self, start, end):
        lat = sorted(s for t, s in self.samples if start <= t < end)
        if not lat:
            return {}
        return {'commits': len(lat), 'p50_ms': round(lat[len(lat) // 2] * 1000, 2),
                'p99_ms': round(lat[int(len(lat) * 0.99)] * 1000, 2),
                'max_ms': round(lat[-1] * 1000, 2)}


def one_check(inv, primary, password, writer, mode):
    """One check of the replica against the primary, chunked or in a single snapshot."""
    watch = InnoDBWatch(primary)
    watch.start()
    t0 = time.monotonic()
    res = ansible_run.run_module(inv, REPLICA, 'checksum', {
        'chunked': mode == 'chunked', 'primary': {
            'login_host': primary.ip, 'login_user': 'ck', 'login_password': password}})
    t1 = time.monotonic()
    watch.finish()
    if res.failed:
        raise SystemExit('checksum failed: %s' % res.get('msg'))
    out = dict(mode=mode, tables=res['tables'], rounds=res.get('rounds'),
               chunks=res.get('chunks'), seconds=res['seconds'], ansible_seconds=round(t1 - t0, 1),
               longest_snapshot_seconds=res['primary_snapshot_seconds'],
               oldest_trx_sampled_seconds=round(max(watch.ages), 1),
               history_min=min(watch.history), history_max=max(watch.history),
               replica_paused_seconds=res['replica_paused_seconds'],
               replica_hold_seconds=res.get('replica_hold_seconds'),
               commits_during=writer.window(t0, t1))
    print('%(mode)s: check %(seconds).1f s (%(rounds)s rounds, %(chunks)s chunks), longest '
          'snapshot %(longest_snapshot_seconds).2f s (oldest transaction sampled '
          '%(oldest_trx_sampled_seconds).1f s), history list %(history_min)d..%(history_max)d, '
          'replica paused %(replica_paused_seconds).1f s (longest hold %(replica_hold_seconds)s s), '
          'commits during %(commits_during)s' % out)
    return out


def chart(paths, out):
    """A chart of runs' JSON (--json): per size, each mode's longest snapshot and history
    list growth on the primary."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    runs.sort(key=lambda r: r['size_gb'])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, (field, title) in zip(axes, (
            ('longest_snapshot_seconds', "the primary's longest snapshot (s)"),
            ('history_max', "the primary's history list length, at most"))):
        labels, values, colours = [], [], []
        for run in runs:
            for mode in ('chunked', 'single'):
                if mode in run['modes']:
                    labels.append('%.0f GB %s' % (run['size_gb'], mode))
                    values.append(run['modes'][mode][field])
                    colours.append('tab:green' if mode == 'chunked' else 'tab:grey')
        bars = ax.barh(labels, values, color=colours)
        ax.bar_label(bars, fmt='%g', padding=3)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.2)
    fig.suptitle('Verification under writes: chunked (default) against one snapshot '
                 '(bench/checksum_cost.py)', fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--chart', nargs='+', metavar=('PNG', 'JSON'),
                        help='no run: chart the runs of these JSON files (--json) into PNG')
    parser.add_argument('--size-gb', type=float, default=1.0)
    parser.add_argument('--modes', default='chunked,single',
                        help='the checks to run, in turn: chunked (the default), single')
    parser.add_argument('--json', help='write the figures to this file too')
    args = parser.parse_args()
    if args.chart:
        chart(args.chart[1:], args.chart[0])
        return
    lab = Lab()
    for name in (PRIMARY, REPLICA):
        lab.destroy(name)
    primary, replica = lab.create(PRIMARY), lab.create(REPLICA)
    try:
        password = os.urandom(8).hex()
        scenarios.setup_replication(primary, [replica], password, rows=1000)
        rows = max(1000, int(args.size_gb * ROWS_PER_GB / 8))
        primary.sql('CREATE DATABASE sbtest')
        primary.run('sysbench oltp_read_write --mysql-user=root --mysql-socket=/run/mysqld/'
                    'mysqld.sock --mysql-db=sbtest --tables=8 --table-size=%d --threads=2 '
                    'prepare >/dev/null' % rows, timeout=3600)
        scenarios.wait_caught_up(primary, replica, timeout=3600)
        primary.sql("CREATE USER 'ck'@'%%' IDENTIFIED BY '%s'; GRANT SELECT ON *.* TO 'ck'@'%%'"
                    % password)
        scenarios.wait_caught_up(primary, replica)
        size = primary.sql_value("SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1e9, 2) "
                                 "FROM information_schema.TABLES WHERE TABLE_SCHEMA='sbtest'")
        print('InnoDB data and indexes: %s GB' % size)
        writer = LatencyWriter(primary)
        writer.start()
        time.sleep(5)
        figures = dict(size_gb=float(size), modes={})
        with tempfile.TemporaryDirectory() as tmp:
            inv = ansible_run.write_inventory(lab, os.path.join(tmp, 'inv.json'), PRIMARY,
                                              [REPLICA])
            for mode in args.modes.split(','):
                figures['modes'][mode] = one_check(inv, primary, password, writer, mode)
                scenarios.wait_caught_up(primary, replica, timeout=600)
                time.sleep(5)
        writer.stop.set()
        writer.join(10)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(figures, f, indent=1)
    finally:
        lab.destroy(PRIMARY)
        lab.destroy(REPLICA)


if __name__ == '__main__':
    main()
