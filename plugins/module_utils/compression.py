# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""compression=auto: measure, on a sample of the data, whether zstd beats the link.

zstd --adapt was measured to raise its level on a busy 2-core source (it reads a consumer
short of CPU as a slow link), taking CPU from ssh and mariadb-backup: 3x slower than zstd -1.
So the choice is made once, before the stream, from two measurements: how fast and how much
zstd -1 compresses a sample of the largest data files, and how fast the transport itself
carries bytes to the destination (the module sends part of the same sample through it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import time

from ansible_collections.reseed.mariadb.plugins.module_utils import transfer

SAMPLE_BYTES = 64 << 20
PROBE_BYTES = 32 << 20  # sent through the transport to measure it


def read_sample(datadir, limit=SAMPLE_BYTES):
    """Up to limit bytes of the largest data files (InnoDB tablespaces), or b''."""
    files = []
    for top, dirs, names in os.walk(datadir):
        for name in names:
            if name.endswith('.ibd') or name.startswith('ibdata'):
                path = os.path.join(top, name)
                try:
                    files.append((os.path.getsize(path), path))
                except OSError:
                    pass
    data = b''
    for size, path in sorted(files, reverse=True):
        try:
            with open(path, 'rb') as f:
                data += f.read(limit - len(data))
        except (IOError, OSError):
            continue
        if len(data) >= limit:
            break
    return data


def measure_zstd(module, data):
    """Compress data with zstd -1 -T0; dict(sample_bytes, ratio, zstd_mb_s), or None when
    the sample is too small to tell (under 1 MiB) or zstd failed."""
    if len(data) < 1 << 20:
        return None
    # Not module.run_command: it writes all of stdin before it reads stdout, and zstd stops
    # reading once its output pipe is full (a deadlock past 64 KiB of output).
    start = time.time()
    try:
        proc = subprocess.Popen([module.get_bin_path('zstd', required=True), '-q', '-c',
                                 '-T0', '-1'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        out = proc.communicate(data)[0]
    except OSError:
        return None
    seconds = max(time.time() - start, 1e-3)
    if proc.returncode != 0 or not out:
        return None
    return {'sample_bytes': len(data), 'ratio': round(len(data) / float(len(out)), 2),
            'zstd_mb_s': round(len(data) / seconds / 1e6, 1)}


# In the stream zstd shares the source's cores with mariadb-backup and the transport: on the
# 2-core lab it ran at 0.6 to 0.7x the rate it reached on the sample alone (bench/).
IN_STREAM_SHARE = 0.7
MARGIN = 1.1


def choose_zstd(sample, link_mb_s):
    """Compress when min(compression rate in the stream, link rate x ratio) beats the link
    by 10%. link_mb_s: what the transport carries uncompressed, in MB/s."""
    if not sample or not link_mb_s:
        return False
    rate = min(sample['zstd_mb_s'] * IN_STREAM_SHARE, link_mb_s * sample['ratio'])
    return rate > MARGIN * link_mb_s


def probe_link(channel, data, chunk=1 << 20):
    """Send data through the stream's connection as PROBE frames; the receiver lets the
    first quarter warm the connection up (TCP slow start), times the rest from the marker
    (an empty PROBE frame) to PROBE_END, writes nothing, and answers. Returns (MB/s, None)
    or (None, why not)."""
    warmup = len(data) // 4
    try:
        for start in range(0, warmup, chunk):
            channel.send(transfer.PROBE, data[start:min(start + chunk, warmup)])
        channel.send(transfer.PROBE)
        for start in range(warmup, len(data), chunk):
            channel.send(transfer.PROBE, data[start:start + chunk])
        channel.send(transfer.PROBE_END)
        kind, answer = channel.recv_json(transfer.PROBE_RESULT)
    except transfer.TransferError as e:
        return None, str(e)
    nbytes, ns = int(answer.get('bytes', 0)), int(answer.get('ns', 0))
    if nbytes < len(data) // 2:  # three quarters are timed
        return None, 'only %d of %d bytes arrived' % (nbytes, len(data))
    return round(nbytes / max(ns, 1000000) * 1000.0, 1), None
