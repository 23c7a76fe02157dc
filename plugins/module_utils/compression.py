# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""compression=auto: measure, on a sample of the data, whether zstd beats the link.

zstd --adapt was measured to raise its level on a busy 2-core source (it reads a consumer
short of CPU as a slow link), taking CPU from ssh and mariadb-backup: 3x slower than zstd -1.
So the choice is made once, before the stream, from a measured sample.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import time

SAMPLE_BYTES = 64 << 20


def compression_sample(module, datadir, limit=SAMPLE_BYTES):
    """Compress up to limit bytes of the largest data files with zstd -1 -T0; returns
    dict(sample_bytes, ratio, zstd_mb_s) or None when there is nothing to sample."""
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


def choose_zstd(sample, link_mb_s):
    """Compress when min(compression rate, link rate x ratio) beats the link by 15%."""
    if not sample:
        return False
    return min(sample['zstd_mb_s'], link_mb_s * sample['ratio']) > 1.15 * link_mb_s
