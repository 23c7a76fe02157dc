# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_stream's pure parts: versions, the option file, the ssh tunnel's command."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import versions
from ansible_collections.reseed.mariadb.plugins.modules import backup_stream as bs


@pytest.mark.parametrize('backup,server,ok', [
    ('10.11.19-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.20-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.8-MariaDB', '10.11.19-MariaDB', False),
    ('10.6.19-MariaDB', '10.11.19-MariaDB', False),
    ('11.4.2-MariaDB', '10.11.19-MariaDB', False),
])
def test_version_problem(backup, server, ok):
    assert (versions.backup_problem(backup, server) is None) == ok


@pytest.mark.parametrize('source,replica,problem', [
    (('10.11.19-MariaDB', '10.11.19-MariaDB'), ('10.11.19-MariaDB', '10.11.19-MariaDB'), None),
    # Measured: a 10.11 copy is prepared by 11.8's tool and upgraded by an 11.8 server.
    (('10.11.19-MariaDB', '10.11.19-MariaDB'), ('11.8.9-MariaDB', '11.8.9-MariaDB'), None),
    (('11.8.9-MariaDB', '11.8.9-MariaDB'), ('10.11.19-MariaDB', '10.11.19-MariaDB'),
     'MariaDB 10.11.19-MariaDB here cannot take the data of MariaDB 11.8.9-MariaDB on the '
     'source (an older series: MariaDB does not support moving data back): upgrade this '
     'replica to 11.8 first, or copy from a source of its series; mariadb-backup '
     '10.11.19-MariaDB here cannot prepare a copy made by mariadb-backup 11.8.9-MariaDB on the '
     'source: install mariadb-backup of the 11.8 series or newer here'),
    (('10.11.19-MariaDB', '10.11.19-MariaDB'), (None, None), None),
])
def test_replica_of_the_sources_series_or_newer(source, replica, problem):
    keys = ('mariabackup_version', 'server_version')
    assert versions.replica_problem(dict(zip(keys, source)), dict(zip(keys, replica))) == problem


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
