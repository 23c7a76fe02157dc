# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server's processes, told apart by the datadir they work in."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.reseed.mariadb.plugins.module_utils import service


def fake_proc(tmp_path, processes):
    proc = tmp_path / 'proc'
    proc.mkdir()
    (proc / 'self').mkdir()
    for pid, comm, cwd in processes:
        d = proc / str(pid)
        d.mkdir()
        (d / 'comm').write_text(comm + '\n')
        if cwd:
            os.symlink(cwd, str(d / 'cwd'))
    return str(proc)


def test_server_processes_by_name_and_datadir(tmp_path):
    data, other = tmp_path / 'mysql', tmp_path / 'other'
    data.mkdir()
    other.mkdir()
    proc = fake_proc(tmp_path, [(10, 'mariadbd', str(data)), (11, 'mysqld_safe', '/'),
                                (12, 'mysqld', str(other)), (13, 'mariadbd', None),
                                (14, 'bash', str(data))])
    found = service.server_processes(proc)
    assert found == [(10, str(data)), (12, str(other)), (13, None)]
    # Another instance (another datadir) is not this server; one whose datadir cannot be
    # read is taken for it.
    assert service.serving(found, str(data) + '/') == [10, 13]
    assert service.serving([], str(data)) == []
    assert service.serving(found, None) == [10, 12, 13]
