# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The login options become the right PyMySQL arguments; secrets never show."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import getpass

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import connection as c


def params(**kw):
    base = dict((k, v.get('default')) for k, v in c.login_argument_spec().items())
    base['config_file'] = '/nonexistent/.my.cnf'
    base.update(kw)
    return base


def test_localhost_uses_the_default_socket_when_it_exists(tmp_path):
    sock = tmp_path / 'mysqld.sock'
    sock.write_text('')
    kw = c.connect_kwargs(params(), default_sockets=('/nope.sock', str(sock)))
    assert kw['unix_socket'] == str(sock) and 'host' not in kw
    assert kw['user'] == getpass.getuser() and 'password' not in kw


def test_localhost_falls_back_to_tcp_without_a_socket():
    kw = c.connect_kwargs(params(), default_sockets=('/nope.sock',))
    assert kw['host'] == 'localhost' and kw['port'] == 3306


def test_remote_host_and_credentials():
    kw = c.connect_kwargs(params(login_host='10.0.0.5', login_port=3307, login_user='repl',
                                 login_password='s3cret'), default_sockets=())
    assert (kw['host'], kw['port'], kw['user'], kw['password']) == ('10.0.0.5', 3307, 'repl',
                                                                    's3cret')
    assert 'ssl' not in kw
    assert c.describe_target(kw) == 'repl@10.0.0.5:3307'
    assert 's3cret' not in c.describe_target(kw)


def test_tls_options():
    kw = c.connect_kwargs(params(login_host='db', ca_cert='/ca.pem', client_cert='/c.pem',
                                 client_key='/k.pem', check_hostname=False), default_sockets=())
    assert kw['ssl'] == {'ca': '/ca.pem', 'cert': '/c.pem', 'key': '/k.pem',
                         'check_hostname': False}


def test_config_file_naming_a_host_wins_over_the_default_socket(tmp_path):
    sock = tmp_path / 'mysqld.sock'
    sock.write_text('')
    cnf = tmp_path / 'my.cnf'
    cnf.write_text('[client]\nhost=db.example\nuser=backup\n')
    kw = c.connect_kwargs(params(config_file=str(cnf)), default_sockets=(str(sock),))
    assert kw['read_default_file'] == str(cnf) and 'unix_socket' not in kw
    assert 'user' not in kw  # the file's user, not the operating system's
    assert c.describe_target(kw) == 'the user of %s@db.example:3306' % cnf
    cnf.write_text('[client]\nuser=backup\npassword=x\n')
    kw = c.connect_kwargs(params(config_file=str(cnf)), default_sockets=(str(sock),))
    assert kw['unix_socket'] == str(sock)


def test_unreadable_config_file_is_ignored_for_the_socket_choice(tmp_path):
    cnf = tmp_path / 'my.cnf'
    cnf.write_bytes(b'\xff\xfe not an option file')
    assert c.client_section(str(cnf)) == {}


def test_scrub_masks_every_secret():
    assert c.scrub("Access denied for 'pw1' and pw2", ['pw1', None, '', 'pw2']) == \
        "Access denied for '********' and ********"
    assert c.scrub(None, ['x']) == ''


@pytest.mark.parametrize('exc,text,code', [
    (Exception(1045, "Access denied for user 'x'"), "(1045) Access denied for user 'x'", 1045),
    (Exception('plain'), 'plain', None),
    (ValueError(), 'ValueError', None),
])
def test_format_error_and_code(exc, text, code):
    assert c.format_error(exc) == text
    assert c.error_code(exc) == code


class FakeCursor(object):
    def mogrify(self, sql, args):
        return sql % tuple(repr(a) for a in args) if isinstance(args, list) else sql % dict(
            (k, repr(v)) for k, v in args.items())


def test_recorded_statements_mask_secret_arguments():
    conn = c.Connection.__new__(c.Connection)
    conn.secrets = []
    shown = conn.mogrify_masked(FakeCursor(), 'CHANGE MASTER TO MASTER_USER=%s, '
                                'MASTER_PASSWORD=%s', ['repl', "p'w"], secret_args=(1,))
    assert "p'w" not in shown and c.MASK in shown and 'repl' in shown
    assert "p'w" in conn.secrets
    shown = conn.mogrify_masked(FakeCursor(), 'SET %(a)s %(pw)s', {'a': 1, 'pw': 'zz'},
                                secret_args=('pw',))
    assert 'zz' not in shown and 'zz' in conn.secrets


def test_missing_pymysql_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(c, 'HAS_PYMYSQL', False)
    with pytest.raises(c.DbError, match='python3-pymysql'):
        c.Connection(params())


def test_db_error_carries_the_server_error_number():
    e = c.DbError('x failed', 1617)
    assert e.code == 1617 and str(e) == 'x failed'
    assert c.DbError('no code').code is None


def test_local_server_is_a_socket_or_a_loopback_address():
    assert c.local_server(c.connect_kwargs(params(), default_sockets=('/nope.sock',)))
    assert c.local_server({'unix_socket': '/run/mysqld/mysqld.sock'})
    assert c.local_server({'host': '127.0.0.2'}) and c.local_server({'host': '::1'})
    assert not c.local_server(c.connect_kwargs(params(login_host='10.0.0.5')))


def test_a_refused_connection_carries_its_error_number(tmp_path):
    # A socket path where nothing listens: what a stopped server leaves.
    with pytest.raises(c.DbError) as e:
        c.Connection(params(login_unix_socket=str(tmp_path / 'mysqld.sock'), connect_timeout=2))
    assert e.value.code in c.SERVER_DOWN_ERRORS
