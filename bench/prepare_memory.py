# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What `use_memory` buys the prepare: one copy taken under writes, prepared at each size.

    .venv/bin/python bench/prepare_memory.py --size-gb 1 --hosts bench1 --keep

The source takes sysbench oltp_write_only writes while mariadb-backup, throttled so that the
backup lasts long enough to copy a busy redo log (--throttle), streams into the destination.
Each use_memory value then prepares its own copy of that copy (the same redo to apply), and
the table gives the prepare's seconds and the redo it applied. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import core  # noqa: E402
from lab import Lab  # noqa: E402

COPY = '/var/lib/bench-prep'


def checkpoints(host, path):
    text = host.run('cat %s/xtrabackup_checkpoints' % path).stdout
    return dict(line.split(' = ', 1) for line in text.splitlines() if ' = ' in line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-gb', type=float, default=1)
    parser.add_argument('--hosts', default='bench')
    parser.add_argument('--keep', action='store_true')
    parser.add_argument('--throttle', type=int, default=40,
                        help='mariadb-backup --throttle (IO operations a second)')
    parser.add_argument('--sizes', default='100M,1G,4G', help='use_memory values')
    args = parser.parse_args(argv)
    lab = Lab()
    names = ('%s-src' % args.hosts, '%s-dst' % args.hosts)
    src, dst = core.prepare_hosts(lab, names, args.size_gb, args.keep)
    rows = []
    try:
        dst.run('rm -rf %s* && mkdir -p %s' % (COPY, COPY), timeout=600)
        # In the host, in the background, its pid noted: stopped by that pid afterwards.
        writer = src.run('sysbench oltp_write_only --mysql-user=root '
                         '--mysql-socket=/run/mysqld/mysqld.sock --mysql-db=sbtest '
                         '--tables=%d --table-size=%d --threads=2 --time=3600 run '
                         '>/dev/null 2>&1 & echo $!' % (core.TABLES, max(1000, int(
                             args.size_gb * core.ROWS_PER_GB / core.TABLES)))).stdout.strip()
        time.sleep(5)  # the writes are under way before the copy starts
        start = time.time()
        try:
            src.run('mariadb-backup --backup --stream=xbstream --throttle=%d '
                    '--target-dir=/tmp/bench-bk 2>/tmp/bench-bk.log | %s root@%s '
                    '"mbstream -x -C %s"' % (args.throttle, core.SSH, dst.ip, COPY),
                    timeout=7200)
        finally:
            src.run('kill %s' % writer, check=False)
        backup_seconds = time.time() - start
        marks = checkpoints(dst, COPY)
        redo = int(dst.run('stat -c %%s %s/ib_logfile0' % COPY).stdout)
        for size in args.sizes.split(','):
            target = '%s-%s' % (COPY, size)
            dst.run('rm -rf %s && cp -a %s %s && sync' % (target, COPY, target), timeout=1800)
            began = time.time()
            dst.run('mariadb-backup --prepare --use-memory=%s --target-dir=%s '
                    '>/tmp/bench-prep.log 2>&1' % (size, target), timeout=7200)
            rows.append((size, time.time() - began))
            dst.run('rm -rf %s' % target, timeout=600)
    finally:
        dst.run('rm -rf %s' % COPY, timeout=600)
        if not args.keep:
            for name in names:
                lab.destroy(name)
    lsn = int(marks.get('to_lsn', 0)), int(marks.get('last_lsn', 0))
    print('Copy under sysbench oltp_write_only (2 threads), mariadb-backup --throttle=%d: '
          '%.1f s; redo copied %.0f MB (ib_logfile0), LSN %d to %d (%.0f MB of redo to '
          'apply)\n' % (args.throttle, backup_seconds, redo / 1e6, lsn[0], lsn[1],
                        (lsn[1] - lsn[0]) / 1e6))
    print('| use_memory | prepare seconds |\n|---|---:|')
    for size, seconds in rows:
        print('| %s | %.2f |' % (size, seconds))
    print(json.dumps({'backup_seconds': backup_seconds, 'redo_bytes': redo, 'lsn': lsn,
                      'prepare': dict(rows)}))


if __name__ == '__main__':
    main()
