# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data path, measured on the lab: the limits, the hand pipeline, and ours, in one run.

    make bench                       # 1 GB of InnoDB data
    .venv/bin/python bench/bench.py --size-gb 8 --keep

Every figure of a run is taken in that run, so ratios hold on a noisy machine. Prints a
markdown table and writes it to bench/results/<time>.md (and .json). Never run by the tests.

What is measured, page cache warm (a warm-up read of the datadir comes first):
- limits, each stage alone: mariadb-backup to /dev/null on the source; the transport alone
  (ssh, and socat over tcp) with the stream's byte count; `mbstream -x` from a file on the
  destination (-p 1 and -p 2); raw `tar | ssh | tar` of the datadir;
- the seed's hand pipeline: `mariadb-backup | ssh | mbstream -x`;
- ours: reseed.mariadb.backup_stream per transport (ssh, tcp), compression and parallelism.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lab'))

import ansible_run  # noqa: E402
from lab import Lab  # noqa: E402

SRC, DST = 'bench-src', 'bench-dst'
ROWS_PER_GB = 4200000  # sysbench rows (about 250 bytes with the secondary index)
BACKUP = ('mariadb-backup --backup --stream=xbstream --parallel={p} '
          '--target-dir=/tmp/bench-bk 2>/tmp/bench-bk.log')
SSH = 'ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'


REPEAT = 1


def timed(host, cmd, timeout=7200, before=None):
    """Median wall time of REPEAT runs of cmd; `before` (a command) runs untimed each time.

    Dirty pages of the previous step are flushed first (sync), so that no step pays for the
    writeback of another.
    """
    times = []
    for run in range(REPEAT):
        if before:
            host.run(before, timeout=timeout)
        host.run('sync', timeout=timeout)
        start = time.monotonic()
        host.run(cmd, timeout=timeout)
        times.append(time.monotonic() - start)
    return sorted(times)[len(times) // 2]


def prepare(lab, size_gb, keep):
    hosts = []
    for name in (SRC, DST):
        if not keep:
            lab.destroy(name)
        hosts.append(lab.create(name))
    src, dst = hosts
    # The source may ssh to the destination (as the hand pipeline does).
    pub = src.run('cat /root/.ssh/id_ed25519.pub').stdout
    dst.run('grep -qF "%s" /root/.ssh/authorized_keys || cat >> /root/.ssh/authorized_keys'
            % pub.strip().split()[1], input=pub)
    tables = 8
    rows = max(1000, int(size_gb * ROWS_PER_GB / tables))
    have = src.sql_value("SELECT COALESCE(SUM(TABLE_ROWS), 0) FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = 'sbtest'") or '0'
    if int(have) < rows * tables * 0.8:
        src.sql('DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest;')
        print('loading %d tables x %d rows with sysbench ...' % (tables, rows), flush=True)
        timed(src, 'sysbench oltp_read_write --mysql-user=root '
                   '--mysql-socket=/run/mysqld/mysqld.sock --mysql-db=sbtest --tables=%d '
                   '--table-size=%d --threads=2 prepare >/dev/null' % (tables, rows))
    return src, dst


def datadir_bytes(host):
    return int(host.run('du -sb /var/lib/mysql').stdout.split()[0])


def measure(src, dst, parallel):
    rows = []

    def add(name, seconds, nbytes, kind):
        rows.append({'name': name, 'seconds': round(seconds, 2), 'bytes': nbytes,
                     'mb_s': round(nbytes / seconds / 1e6, 1) if seconds else None,
                     'kind': kind})
        print('  %-58s %7.2f s' % (name, seconds), flush=True)

    clean_dst = 'rm -rf /var/lib/bench-x && mkdir -p /var/lib/bench-x'
    src.run('tar -C /var/lib/mysql -cf - . > /dev/null')  # warm the page cache
    src.run('rm -rf /tmp/bench-bk /tmp/stream.xb')
    t = timed(src, BACKUP.format(p=parallel) + ' > /tmp/stream.xb')
    stream = int(src.run('stat -c %s /tmp/stream.xb').stdout)
    raw = datadir_bytes(src)
    print('datadir %.2f GB, stream %.2f GB' % (raw / 1e9, stream / 1e9), flush=True)
    add('mariadb-backup to a file (source)', t, stream, 'info')
    add('mariadb-backup to /dev/null (source read)', timed(
        src, BACKUP.format(p=parallel) + ' > /dev/null', before='rm -rf /tmp/bench-bk'),
        stream, 'limit')
    add('ssh alone, stream bytes', timed(
        src, "%s %s 'cat > /dev/null' < /tmp/stream.xb" % (SSH, dst.ip)), stream, 'limit')
    times = []
    for run in range(REPEAT):
        # One connection per listener: socat exits after it, nothing is left to stop.
        listener = dst.popen('socat -u TCP-LISTEN:4455,bind=%s,reuseaddr,rcvbuf=4194304 '
                             'OPEN:/dev/null' % dst.ip)
        time.sleep(0.5)
        start = time.monotonic()
        src.run('socat -u -b 1048576 OPEN:/tmp/stream.xb TCP:%s:4455,sndbuf=4194304' % dst.ip)
        times.append(time.monotonic() - start)
        listener.wait(30)
    add('socat tcp alone, stream bytes', sorted(times)[len(times) // 2], stream, 'limit')
    src.run('%s %s "cat > /tmp/stream.xb" < /tmp/stream.xb' % (SSH, dst.ip))
    for p in (1, 2):
        add('mbstream -x -p %d from a file (destination)' % p, timed(
            dst, 'mbstream -x -p %d -C /var/lib/bench-x < /tmp/stream.xb' % p,
            before=clean_dst), stream, 'limit')
    dst.run('rm -f /tmp/stream.xb; ' + clean_dst)
    add('raw tar | ssh | tar of the datadir', timed(
        src, "%s %s '%s' && tar -C /var/lib/mysql -cf - . | %s %s 'tar -C /var/lib/bench-x "
        "-xf -'" % (SSH, dst.ip, clean_dst, SSH, dst.ip)), raw, 'raw')
    add('hand pipeline: mariadb-backup | ssh | mbstream -x', timed(
        src, BACKUP.format(p=parallel) + " | %s %s 'mbstream -x -C /var/lib/bench-x'"
        % (SSH, dst.ip), before="rm -rf /tmp/bench-bk && %s %s '%s'" % (SSH, dst.ip, clean_dst)),
        stream, 'naive')
    dst.run('rm -rf /var/lib/bench-x /tmp/bench-bk; rm -f /tmp/stream.xb')
    src.run('rm -rf /tmp/bench-bk /tmp/stream.xb')
    for transport in ('ssh', 'tcp'):
        for compression in ('none', 'zstd', 'auto'):
            for p in (1, 2):
                seconds, sent = ours(src, dst, transport, compression, p)
                add('backup_stream %s, %s, parallel %d (%.2f GB sent)' % (
                    transport, compression, p, sent / 1e9), seconds, stream, 'ours')
    dst.run('rm -rf /var/lib/bench-x')
    return rows, raw, stream


def ours(src, dst, transport, compression, parallel):
    """reseed.mariadb.backup_stream through Ansible; the module's own wall time (median)."""
    with tempfile.TemporaryDirectory() as tmp:
        inv = ansible_run.write_inventory(src.lab, os.path.join(tmp, 'inv.json'), src.name,
                                          [dst.name])
        runs = []
        for run in range(REPEAT):
            res = ansible_run.run_module(inv, src.name, 'backup_stream', {
                'destination': dst.ip, 'staging_dir': '/var/lib/bench-x',
                'transport': transport, 'compression': compression, 'parallel': parallel})
            if res.failed:
                raise SystemExit('backup_stream failed: %s' % res.get('msg'))
            runs.append((res['seconds'], res['bytes_sent']))
    return sorted(runs)[len(runs) // 2]


def table(rows):
    """Markdown: each step with its rate and how many times faster than the hand pipeline."""
    naive = next((r['seconds'] for r in rows if r['kind'] == 'naive'), None)
    lines = ['| step | seconds | MB/s | x hand pipeline |', '|---|---:|---:|---:|']
    for r in rows:
        lines.append('| %s | %.2f | %s | %s |' % (
            r['name'].replace('|', '\\|'), r['seconds'], r['mb_s'],
            '%.2f' % (naive / r['seconds']) if naive and r['seconds'] else ''))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size-gb', type=float, default=1.0)
    parser.add_argument('--parallel', type=int, default=2)
    parser.add_argument('--keep', action='store_true', help='reuse and keep the bench hosts')
    parser.add_argument('--repeat', type=int, default=3, help='runs per step (median)')
    parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'results'))
    args = parser.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    lab = Lab()
    src, dst = prepare(lab, args.size_gb, args.keep)
    try:
        rows, raw, stream = measure(src, dst, args.parallel)
    finally:
        if not args.keep:
            lab.destroy(SRC)
            lab.destroy(DST)
    text = table(rows)
    stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
    head = ('Run %s: %d CPUs, datadir %.2f GB, stream %.2f GB, parallel %d\n\n'
            % (stamp, os.cpu_count(), raw / 1e9, stream / 1e9, args.parallel))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, stamp + '.md'), 'w') as f:
        f.write(head + text + '\n')
    with open(os.path.join(args.out, stamp + '.json'), 'w') as f:
        json.dump({'rows': rows, 'datadir_bytes': raw, 'stream_bytes': stream,
                   'parallel': args.parallel}, f, indent=2)
    print('\n' + head + text)


if __name__ == '__main__':
    main()
