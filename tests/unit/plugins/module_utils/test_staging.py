# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staging directory: its states, its lock, its free space, its seal."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import staging as st

GB = 10 ** 9


def test_states(tmp_path):
    d = tmp_path / 'staging'
    assert st.state(str(d), datadirs=[]) == 'absent'
    d.mkdir()
    assert st.state(str(d), datadirs=[]) == 'empty'
    (d / 'reseed_receiving').write_text('')
    assert st.state(str(d), datadirs=[]) == 'reseed'
    (d / 'reseed_receiving').unlink()
    (d / 'ibdata1').write_text('precious')
    assert st.state(str(d), datadirs=[]) == 'foreign'
    assert st.problem_of_state('foreign').startswith('the staging directory exists')
    # A running server's datadir is it, or inside it; inside a datadir is fine (mount point).
    assert st.state(str(d), datadirs=[str(d)]) == 'datadir'
    assert st.state(str(tmp_path), datadirs=[str(d)]) == 'datadir'
    inside = d / '#sql-reseed-staging'
    assert st.state(str(inside), datadirs=[str(d)]) == 'absent'
    (tmp_path / 'file').write_text('x')
    assert st.state(str(tmp_path / 'file'), datadirs=[]) == 'foreign'


def test_make_new_removes_an_old_copy_and_makes_a_private_marked_directory(tmp_path):
    d = tmp_path / 'staging'
    d.mkdir()
    (d / 'reseed_received').write_text('')
    (d / 'old.ibd').write_text('old')
    st.make_new(str(d), 'reseed')
    assert sorted(os.listdir(str(d))) == ['reseed_receiving']
    assert stat.S_IMODE(os.stat(str(d)).st_mode) == 0o700


def test_seal_only_a_whole_copy(tmp_path):
    d = tmp_path / 'staging'
    st.make_new(str(d), 'absent')
    assert st.seal(str(d)) == ['no xtrabackup_checkpoints',
                               'no xtrabackup_info (streamed last: the stream did not finish)']
    assert not (d / 'reseed_received').exists()
    (d / 'xtrabackup_checkpoints').write_text('backup_type = full-backuped\n')
    (d / 'mariadb_backup_info').write_text('')  # 11.1 and later name it so
    assert st.seal(str(d)) == []
    assert sorted(os.listdir(str(d))) == ['mariadb_backup_info', 'reseed_received',
                                          'xtrabackup_checkpoints']


def test_one_stream_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(st, 'LOCK_DIR', str(tmp_path / 'lock'))
    d = str(tmp_path / 'staging')
    held = st.take_lock(d)
    assert st.is_locked(d)
    with pytest.raises(st.Busy, match='another stream into .* is still running'):
        st.take_lock(d)
    held.close()
    assert not st.is_locked(d)
    assert st.lock_path(d).startswith(str(tmp_path / 'lock') + '/reseed')


@pytest.mark.parametrize('free,needed,problem', [
    (100 * GB, 50 * GB, None),
    (50 * GB, 50 * GB, '50.0 GB free for the copy, 55.3 GB needed'),
    (1, None, None),
])
def test_space(free, needed, problem):
    got = st.space_problem(free, needed)
    assert got == problem if problem is None else problem in got


def test_free_bytes_count_what_an_old_copy_frees(tmp_path):
    d = tmp_path / 'staging'
    d.mkdir()
    (d / 'big').write_bytes(b'x' * 100000)
    assert st.free_bytes(str(d), 'reseed') - st.free_bytes(str(d), 'foreign') >= 100000 - 8192
    assert st.free_bytes(str(tmp_path / 'a' / 'b'), 'absent') > 0
    assert st.path_problem('/staging') and st.path_problem('/var/../x') and \
        st.path_problem('var/lib/x') and st.path_problem('/var/lib/x') is None
