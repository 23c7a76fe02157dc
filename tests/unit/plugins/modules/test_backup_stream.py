# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_stream's pure parts: versions, the option file, the ssh tunnel's command."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.reseed.mariadb.plugins.modules import backup_stream as bs


@pytest.mark.parametrize('backup,server,ok', [
    ('10.11.19-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.20-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.8-MariaDB', '10.11.19-MariaDB', False),
    ('10.6.19-MariaDB', '10.11.19-MariaDB', False),
    ('11.4.2-MariaDB', '10.11.19-MariaDB', False),
])
def test_version_problem(backup, server, ok):
    assert (bs.version_problem(backup, server) is None) == ok


def test_option_file_is_private_and_escaped(tmp_path):
    password = 'a"b\\c\'d #e'
    path = bs.write_option_file(str(tmp_path), {'login_user': 'backup',
                                                'login_password': password})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = open(path).read()
    assert text == '[client]\nuser="backup"\npassword="a\\"b\\\\c\'d #e"\n'


def test_ssh_tunnel_command_ends_with_the_destination_and_never_asks():
    argv = bs.ssh_argv({'ssh_port': 2222, 'ssh_key': '/tmp/k/id', 'ssh_options': ['Cipher=x'],
                        'ssh_user': 'ops', 'destination': '10.0.0.12'})
    assert argv[0] == 'ssh' and argv[-1] == 'ops@10.0.0.12'
    assert 'BatchMode=yes' in argv and 'ExitOnForwardFailure=yes' in argv
    assert argv[argv.index('-i') + 1] == '/tmp/k/id' and argv[argv.index('-p') + 1] == '2222'
