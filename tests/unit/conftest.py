# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures the unit tests share.

- ``module_main(mod, args)``: runs ``mod.main()`` with those module args, returns its result.
- ``fake_connection(mod, server, primary=None)``: ``mod.Connection`` hands out server (primary,
  when given, for login_host db1); a DbError is raised instead.
- ``free_port()``: a loopback port nothing listens on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import socket

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError


@pytest.fixture
def module_main(monkeypatch, capsys):
    """A function (mod, args) -> the result dict of mod.main() run with those module args."""
    def run_main(mod, args):
        monkeypatch.setattr(basic, '_ANSIBLE_ARGS',
                            to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args})))
        # ansible-core 2.19 wants the serialization profile the controller would send.
        monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)
        with pytest.raises(SystemExit):
            mod.main()
        return json.loads(capsys.readouterr().out)
    return run_main


@pytest.fixture
def fake_connection(monkeypatch):
    """A function (mod, server, primary=None): mod.Connection gives server (primary for db1)."""
    def patch(mod, server, primary=None):
        def connect(params):
            to_primary = primary is not None and params.get('login_host') == 'db1'
            found = primary if to_primary else server
            if isinstance(found, DbError):
                raise found
            return found
        monkeypatch.setattr(mod, 'Connection', connect)
    return patch


@pytest.fixture
def free_port():
    """A function () -> a loopback port that was free a moment ago."""
    def find():
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        return port
    return find
