# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sections `stages`, `ours` and `shaped`: the stream alone, its stages alone, and by hand.

- stages: mariadb-backup to a file and to /dev/null on the source; the transport alone (ssh,
  and socat over tcp) with the stream's bytes; `mbstream -x -p N` from a file on the
  destination; raw `tar | ssh | tar` of the datadir; the hand pipeline
  `mariadb-backup | ssh | mbstream -x`.
- ours: reseed.mariadb.backup_stream per transport x compression x parallel.
- shaped: backup_stream on a shaped link (tc on the destination) with compression none, zstd
  and auto, per transport (--shaped-transports).
"""

from __future__ import annotations

import time

from core import BACKUP, SSH, datadir_bytes

STREAM_FILE = '/tmp/stream.xb'
EXTRACT_DIR = '/var/lib/bench-x'
CLEAN_DST = 'rm -rf %s && mkdir -p %s' % (EXTRACT_DIR, EXTRACT_DIR)


def stages(bench):
    """Each stage alone, the raw limit and the hand pipeline."""
    src, dst, p = bench.src, bench.dst, bench.parallel
    src.run('tar -C /var/lib/mysql -cf - . > /dev/null')  # warm the page cache
    src.run('rm -rf /tmp/bench-bk %s' % STREAM_FILE)
    to_file = bench.timed(src, BACKUP.format(p=p) + ' > ' + STREAM_FILE,
                          before='rm -rf /tmp/bench-bk ' + STREAM_FILE)
    stream = int(src.run('stat -c %s ' + STREAM_FILE).stdout)
    raw = datadir_bytes(src)
    bench.facts.update(stream_bytes=stream, datadir_bytes=raw)
    print('datadir %.2f GB, stream %.2f GB' % (raw / 1e9, stream / 1e9), flush=True)
    bench.add('mariadb-backup to a file (source)', 'info', to_file, stream)
    bench.add('mariadb-backup to /dev/null (source read)', 'limit', bench.timed(
        src, BACKUP.format(p=p) + ' > /dev/null', before='rm -rf /tmp/bench-bk'),
        stream, stage='backup')
    bench.add('ssh alone, stream bytes', 'limit', bench.timed(
        src, "%s %s 'cat > /dev/null' < %s" % (SSH, dst.ip, STREAM_FILE)), stream, stage='ssh')
    bench.add('socat tcp alone, stream bytes', 'limit', bench.repeated(lambda: socat(bench)),
              stream, stage='tcp')
    bench.add('socat openssl (TLS) alone, stream bytes', 'limit',
              bench.repeated(lambda: socat(bench, tls=True)), stream, stage='tls')
    src.run('%s %s "cat > %s" < %s' % (SSH, dst.ip, STREAM_FILE, STREAM_FILE))
    for n in sorted({1, 2, p}):
        bench.add('mbstream -x -p %d from a file (destination)' % n, 'limit', bench.timed(
            dst, 'mbstream -x -p %d -C %s < %s' % (n, EXTRACT_DIR, STREAM_FILE),
            before=CLEAN_DST), stream, stage='mbstream-%d' % n)
    dst.run('rm -f %s; %s' % (STREAM_FILE, CLEAN_DST))
    bench.add('raw tar | ssh | tar of the datadir', 'raw', bench.timed(
        src, "%s %s '%s' && tar -C /var/lib/mysql -cf - . | %s %s 'tar -C %s -xf -'"
        % (SSH, dst.ip, CLEAN_DST, SSH, dst.ip, EXTRACT_DIR)), raw)
    bench.add('hand pipeline: mariadb-backup | ssh | mbstream -x', 'naive', bench.timed(
        src, BACKUP.format(p=p) + " | %s %s 'mbstream -x -C %s'" % (SSH, dst.ip, EXTRACT_DIR),
        before="rm -rf /tmp/bench-bk && %s %s '%s'" % (SSH, dst.ip, CLEAN_DST)),
        stream, transport='ssh', extract_p=1)
    dst.run('rm -rf %s /tmp/bench-bk' % EXTRACT_DIR)
    src.run('rm -rf /tmp/bench-bk %s' % STREAM_FILE)


def socat(bench, tls=False):
    """The tcp transport alone, or TLS (OpenSSL, as our tls transport uses it, with a
    throwaway certificate): one connection per listener, which exits after it."""
    src, dst = bench.src, bench.dst
    listen, connect = 'TCP-LISTEN', 'TCP'
    if tls:
        dst.run('test -e /tmp/bench-tls.pem || (openssl req -x509 -newkey ec -pkeyopt '
                'ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=bench -keyout '
                '/tmp/bench-tls.key -out /tmp/bench-tls.crt 2>/dev/null && '
                'cat /tmp/bench-tls.key /tmp/bench-tls.crt > /tmp/bench-tls.pem)')
        listen, connect = 'OPENSSL-LISTEN', 'OPENSSL'
    extra = ',cert=/tmp/bench-tls.pem,verify=0' if tls else ''
    listener = dst.popen('socat -u %s:4455,bind=%s,reuseaddr,rcvbuf=4194304%s OPEN:/dev/null'
                         % (listen, dst.ip, extra))
    try:
        time.sleep(0.5)
        return bench.shell(src, 'socat -u -b 1048576 OPEN:%s %s:%s:4455,sndbuf=4194304%s'
                           % (STREAM_FILE, connect, dst.ip, ',verify=0' if tls else ''))
    finally:
        listener.wait(30)


def parallel_pair(value):
    """A --parallels entry: 'N' (mariadb-backup --parallel and mbstream -p both N) or 'N/M'
    (mariadb-backup N, mbstream M) -> (N, M)."""
    parts = str(value).split('/', 1)
    return int(parts[0]), int(parts[-1])


def stream_row(bench, label, transport, compression, parallel, **attrs):
    """The median run of our stream as a row; names what `auto` chose. parallel: N or
    'N/M' (parallel_pair)."""
    parallel, extract_p = parallel_pair(parallel)
    m = bench.repeated(lambda: bench.stream(transport, compression, parallel,
                                            extract_parallel=extract_p))
    chosen = m.extra['auto'].get('chosen')
    name = '%sbackup_stream %s, %s%s, parallel %s (%.2f GB sent)' % (
        label, transport, compression, ' -> %s' % chosen if chosen else '',
        parallel if extract_p == parallel else '%d, mbstream -p %d' % (parallel, extract_p),
        m.extra['bytes_sent'] / 1e9)
    row = bench.add(name, 'ours', m, m.extra['bytes_read'], transport=transport,
                    parallel=parallel, extract_p=extract_p, compression=compression,
                    bytes_sent=m.extra['bytes_sent'], auto=m.extra['auto'] or None, **attrs)
    bench.facts.setdefault('stream_bytes', m.extra['bytes_read'])
    return row


TRANSPORTS = ('tls', 'tcp', 'ssh')


def ours(bench, transports=TRANSPORTS, compressions=('none', 'zstd', 'auto'), parallels=(1, 2)):
    for transport in transports:
        for compression in compressions:
            for p in parallels:
                stream_row(bench, '', transport, compression, p)
    bench.dst.run('rm -rf %s' % EXTRACT_DIR)


def shaped(bench, rates, transports=('ssh',)):
    """Our stream on the destination's link shaped to each rate (both ways), per transport."""
    for rate in rates:
        bench.dst.shape(rate)
        try:
            for transport in transports:
                for compression in ('none', 'zstd', 'auto'):
                    stream_row(bench, 'shaped %s: ' % rate, transport, compression,
                               bench.parallel, link=rate)
        finally:
            bench.dst.shape(None)
    bench.dst.run('rm -rf %s' % EXTRACT_DIR)
