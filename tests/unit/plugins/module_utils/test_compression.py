# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""compression=auto: the choice, and the sample measured with the real zstd."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import compression


@pytest.mark.parametrize('sample,link,chosen', [
    ({'zstd_mb_s': 600.0, 'ratio': 2.6}, 125.0, True),     # 1 Gbit: compress
    ({'zstd_mb_s': 600.0, 'ratio': 1.05}, 125.0, False),   # incompressible
    ({'zstd_mb_s': 600.0, 'ratio': 2.6}, 1250.0, False),   # 10 Gbit: zstd is the bottleneck
    ({'zstd_mb_s': 1600.0, 'ratio': 2.6}, 1250.0, False),  # 0.7 x 1600 in the stream: slower
    ({'zstd_mb_s': 3200.0, 'ratio': 2.6}, 1250.0, True),   # many cores
    ({'zstd_mb_s': 250.0, 'ratio': 2.6}, 360.0, False),    # ssh on the 2-core lab: CPU-bound
    ({'zstd_mb_s': 250.0, 'ratio': 2.6}, 12.5, True),      # 100 Mbit
    (None, 125.0, False),
    ({'zstd_mb_s': 600.0, 'ratio': 2.6}, None, False),     # the link could not be measured
])
def test_auto_compression_choice(sample, link, chosen):
    assert compression.choose_zstd(sample, link) is chosen


class BinPaths(object):
    """What measure_zstd asks of the module: where a program is."""

    @staticmethod
    def get_bin_path(name, required=False):
        return shutil.which(name)


@pytest.mark.skipif(not shutil.which('zstd'), reason='zstd is not installed')
def test_compression_sample_of_real_files(tmp_path):
    # 12 MiB of text-like pages (compressible), more than any pipe holds: the sample must
    # not deadlock between writing zstd's input and reading its output.
    datadir = tmp_path / 'mysql'
    (datadir / 'db').mkdir(parents=True)
    page = b''.join(b'row %08d padding padding padding\n' % i for i in range(400))
    with open(str(datadir / 'db' / 't.ibd'), 'wb') as f:
        for i in range(12 * 2 ** 20 // len(page) + 1):
            f.write(page)
    (datadir / 'ibdata1').write_bytes(os.urandom(2 ** 20))
    (datadir / 'mysql-bin.000001').write_bytes(b'not data')
    sample = compression.measure_zstd(BinPaths(), compression.read_sample(str(datadir),
                                                                          limit=8 * 2 ** 20))
    assert sample['sample_bytes'] == 8 * 2 ** 20  # the largest data files first, capped
    assert sample['ratio'] > 5 and sample['zstd_mb_s'] > 0
    assert compression.read_sample(str(tmp_path / 'empty')) == b''
    assert compression.measure_zstd(BinPaths(), b'small') is None
