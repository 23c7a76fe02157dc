# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared connection on a real lab host, with Debian's python3 and python3-pymysql."""

from __future__ import annotations

import json
import os

import pytest

CONNECTION_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'plugins', 'module_utils', 'connection.py')

PROBE = r'''
import json, sys
sys.path.insert(0, '/tmp/probe')
import connection as c
params = dict((k, v.get('default')) for k, v in c.login_argument_spec().items())
params.update(json.loads(sys.argv[1]))
try:
    conn = c.Connection(params)
    out = {'server_id': conn.variable('server_id'), 'queries': conn.queries,
           'target': conn.target}
    try:
        conn.query('SELECT * FROM no_such_db.t WHERE pw = %s', ['Hidden-1'], secret_args=(0,))
    except c.DbError as e:
        out['query_error'] = str(e)
    print(json.dumps(out))
except c.DbError as e:
    print(json.dumps({'error': str(e)}))
'''


@pytest.fixture
def host(make_hosts):
    h = make_hosts('conn')['conn']
    h.run('mkdir -p /tmp/probe')
    with open(CONNECTION_PY) as f:
        h.run('cat > /tmp/probe/connection.py', input=f.read())
    h.run('cat > /tmp/probe/probe.py', input=PROBE)
    return h


def probe(host, **params):
    return json.loads(host.run(['/usr/bin/python3', '/tmp/probe/probe.py',
                                json.dumps(params)]).stdout)


def test_root_over_the_default_socket(host):
    out = probe(host)
    assert out['server_id'] == host.server_id
    assert out['target'] == 'root@socket /run/mysqld/mysqld.sock'
    assert 'Hidden-1' not in out['query_error'] and '(1146)' in out['query_error']
    assert out['queries'][-1].endswith("pw = '********'")


def test_wrong_password_is_one_clear_line_without_the_password(host):
    host.sql("CREATE USER 'app'@'%' IDENTIFIED BY 'Right-Pw-9'")
    out = probe(host, login_host=host.ip, login_user='app', login_password='Wrong-Pw-7')
    assert out['error'].startswith('cannot connect to MariaDB as app@%s:3306: (1045)'
                                   % host.ip)
    assert 'Wrong-Pw-7' not in out['error'] and '\n' not in out['error']
    ok = probe(host, login_host=host.ip, login_user='app', login_password='Right-Pw-9')
    assert ok['server_id'] == host.server_id


def test_unreachable_server(host):
    out = probe(host, login_host='127.0.0.1', login_port=3999, connect_timeout=3)
    assert out['error'].startswith('cannot connect to MariaDB as ')
    assert '(2003)' in out['error']
