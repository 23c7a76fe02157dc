# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import resource

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import open_files

INF = resource.RLIM_INFINITY


def test_tablespace_names():
    assert open_files.is_tablespace('t0001.ibd')
    assert open_files.is_tablespace('far.isl')  # a table with DATA DIRECTORY elsewhere
    for name in ('t.frm', 'ibdata1', 'undo001', 'ib_logfile0', 't.MYD', 't.ibd.bak',
                 'mysql-bin.000001'):
        assert not open_files.is_tablespace(name), name


def test_count_walks_every_database_but_the_collections_own_copies(tmp_path):
    for db, names in (('app', ['a.ibd', 'a.frm', 'b.ibd', 'b.frm']), ('mysql', ['x.ibd', 'y.MAD']),
                      ('#sql-reseed-old-20261203', ['old.ibd'])):
        (tmp_path / db).mkdir()
        for name in names:
            (tmp_path / db / name).write_text('')
    (tmp_path / 'ibdata1').write_text('')
    (tmp_path / 'far.isl').write_text('')
    assert open_files.count_tablespaces(str(tmp_path)) == 4
    assert open_files.count_tablespaces(str(tmp_path / 'missing')) == 0


def test_soft_raised_to_the_hard_limit():
    p = open_files.plan(1024, 524288, 4000)
    assert p == dict(tablespaces=4000, needed=4000 + open_files.MARGIN, soft=1024, hard=524288,
                     limit=524288, raised=True, enough=True)
    assert open_files.option(p) == ['--open-files-limit=524288']


def test_enough_already_is_left_as_it_is():
    p = open_files.plan(65536, 65536, 10)
    assert p['limit'] == 65536 and not p['raised'] and p['enough']


@pytest.mark.parametrize('hard,enough', [(4000 + open_files.MARGIN - 1, False),
                                         (4000 + open_files.MARGIN, True)])
def test_refused_below_the_need(hard, enough):
    assert open_files.plan(1024, hard, 4000)['enough'] is enough


def test_unlimited_counts_as_the_kernels_ceiling():
    p = open_files.plan(1024, INF, 4000, infinity=INF)
    assert p['hard'] == open_files.CEILING and p['limit'] == open_files.CEILING and p['enough']
    p = open_files.plan(INF, INF, 4000, infinity=INF)
    assert p['soft'] == p['limit'] == open_files.CEILING and not p['raised']


def test_refusal_is_one_line_with_host_numbers_and_remedy():
    p = open_files.plan(1024, 2048, 4000)
    msg = open_files.refusal('db1', 'preflight of the source', p, 'ops')
    assert '\n' not in msg
    assert msg.startswith('db1: preflight of the source: ')
    for text in ('2048', str(p['needed']), '4000 tablespaces', 'LimitNOFILE=',
                 '/etc/security/limits.conf', "'ops' hard nofile", 'ulimit -Hn',
                 'nothing was started'):
        assert text in msg, text
    assert "its hard nofile" in open_files.refusal('db1', 'prepare', p)


def test_their_own_option_wins():
    p = open_files.plan(1024, 8192, 10)
    assert open_files.option(p, ['--open-files-limit=100000']) == []
    assert open_files.option(p, ['--tmpdir=/srv']) == ['--open-files-limit=8192']


@pytest.mark.parametrize('text,out', [
    ('[ERROR] InnoDB: Operating system error number 24 in a file operation.\n'
     'InnoDB: Error number 24 means \'Too many open files\'', True),
    ('mariadb-backup: Error writing file (errno: 28 "No space left on device")', False),
    ('', False), (None, False)])
def test_exhausted(text, out):
    assert open_files.exhausted(text) is out


def test_hint_names_the_limit_it_ran_with():
    text = open_files.hint(open_files.plan(1024, 1024, 4000))
    assert '1024' in text and '4000 tablespaces' in text and 'ulimit -Hn' in text


def test_apply_raises_this_process_and_a_child_inherits_it():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == INF or hard <= 64:
        pytest.skip('needs a finite hard limit above 64')
    pid = os.fork()
    if pid == 0:  # in a child: the test process keeps its own limits
        code = 1
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
            p = open_files.current(10)
            assert p['soft'] == 64 and p['raised']
            open_files.apply(p)
            code = 0 if resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard) else 2
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
