# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""transfer_cert's main() in a temporary directory, openssl faked: each failure says its
step, side, code and that it changed nothing, in C(failure), and its msg is the one it
always was."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible.module_utils import basic

from ansible_collections.reseed.mariadb.plugins.modules import transfer_cert as mod


@pytest.fixture
def run(monkeypatch, module_main):
    """A function (tmp_path, openssl=None: not installed, or (rc, stderr), **args) -> result."""
    def run_it(tmp_path, openssl=None, **args):
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda m, name, *a, **k: '/usr/bin/openssl' if openssl else None)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command',
                            lambda m, cmd, **k: (openssl[0], '', openssl[1]))
        return module_main(mod, dict(args, tmpdir=str(tmp_path)))
    return run_it


def test_no_openssl_and_an_openssl_that_fails_leave_nothing(tmp_path, run):
    res = run(tmp_path, prefix='db2')
    assert res['failure'] == dict(step='make', side='link', code='no_openssl',
                                  changed_nothing=True, message=res['msg'][len('transfer_cert: '):])
    assert res['msg'] == ('transfer_cert: openssl is not installed on this host (package '
                          'openssl): the tls transport needs it')
    assert res['changed'] is False
    res = run(tmp_path, openssl=(1, 'a\nb\nc\nunknown curve\n'), prefix='db2')
    assert res['failure'] == dict(step='make', side='link', code='openssl_failed',
                                  changed_nothing=True, message=res['msg'][len('transfer_cert: '):])
    assert res['msg'] == ('transfer_cert: openssl could not make a certificate (exit code 1): '
                          'b | c | unknown curve')
    assert os.listdir(str(tmp_path)) == []  # the directory made for it is gone


def test_a_directory_of_another_prefix_is_not_removed(tmp_path, run):
    other = tmp_path / 'reseed-cert-db3-abc'
    other.mkdir()
    res = run(tmp_path, state='absent', prefix='db2', path=str(other))
    assert res['failure'] == dict(step='remove', side='link', code='not_cert_dir',
                                  changed_nothing=True, message=res['msg'][len('transfer_cert: '):])
    assert res['msg'] == ('transfer_cert: %s is not a transfer certificate directory of db2'
                          % other)
    assert other.is_dir()
    res = run(tmp_path, state='absent', prefix='db3', path=str(other))
    assert res['removed'] == [str(other)] and res['changed'] and not other.exists()
