# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""temp_account: the plan from what the server prints, the statements against a fake server
(outside the binlog, the password a masked driver parameter), idempotence, check mode."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import connection
from ansible_collections.reseed.mariadb.plugins.modules import temp_account as mod

PASSWORD = "It's-a-Secret'; DROP TABLE t; --"
# The server's own answer (SELECT PASSWORD('abc') on the lab's MariaDB 10.11).
ABC_HASH = '*0D3CED9BEC10A777AEC23CCC353A8C08A633045E'


def test_native_hash_is_the_servers():
    assert mod.native_hash('abc') == ABC_HASH


def shown(name, host, password, options=''):
    """SHOW CREATE USER and SHOW GRANTS as MariaDB 10.11 prints them."""
    account = '`%s`@`%s`' % (name, host)
    auth = " IDENTIFIED BY PASSWORD '%s'" % mod.native_hash(password)
    return ('CREATE USER %s%s%s' % (account, auth, options),
            ['GRANT SELECT ON *.* TO %s%s' % (account, auth)])


def test_plan_leaves_the_account_as_made_alone():
    assert mod.plan('present', shown('reseed_verify', '%', 'abc'),
                    'reseed_verify', '%', 'abc') == 'none'
    # A server that prints the grant without the hash.
    create, grants = shown('reseed_verify', '%', 'abc')
    assert mod.plan('present', (create, ['GRANT SELECT ON *.* TO `reseed_verify`@`%`']),
                    'reseed_verify', '%', 'abc') == 'none'


def test_plan_creates_a_missing_account_and_replaces_one_that_differs():
    assert mod.plan('present', None, 'reseed_verify', '%', 'abc') == 'created'
    # Another password.
    assert mod.plan('present', shown('reseed_verify', '%', 'old'),
                    'reseed_verify', '%', 'abc') == 'replaced'
    # Options: locked, a TLS requirement, limits.
    for options in (' ACCOUNT LOCK', ' REQUIRE SSL', ' WITH MAX_QUERIES_PER_HOUR 5'):
        assert mod.plan('present', shown('reseed_verify', '%', 'abc', options),
                        'reseed_verify', '%', 'abc') == 'replaced'
    # More privileges than SELECT, or SELECT on one schema only.
    create, grants = shown('reseed_verify', '%', 'abc')
    more = (create, grants + ['GRANT INSERT ON `mysql`.* TO `reseed_verify`@`%`'])
    assert mod.plan('present', more, 'reseed_verify', '%', 'abc') == 'replaced'
    other = (create, [grants[0].replace('SELECT', 'SELECT, PROCESS')])
    assert mod.plan('present', other, 'reseed_verify', '%', 'abc') == 'replaced'
    narrow = (create, ['GRANT USAGE ON *.* TO `reseed_verify`@`%`',
                       'GRANT SELECT ON `db`.* TO `reseed_verify`@`%`'])
    assert mod.plan('present', narrow, 'reseed_verify', '%', 'abc') == 'replaced'
    granting = (create, [grants[0] + ' WITH GRANT OPTION'])
    assert mod.plan('present', granting, 'reseed_verify', '%', 'abc') == 'replaced'
    # An authentication plugin other than mysql_native_password.
    socket = ('CREATE USER `reseed_verify`@`%` IDENTIFIED VIA unix_socket', grants)
    assert mod.plan('present', socket, 'reseed_verify', '%', 'abc') == 'replaced'


def test_plan_drops_only_what_exists():
    assert mod.plan('absent', None, 'reseed_verify', '%', None) == 'none'
    assert mod.plan('absent', shown('reseed_verify', '%', 'abc'),
                    'reseed_verify', '%', None) == 'dropped'


def test_names_are_quoted_as_the_server_prints_them():
    create, grants = mod.wanted_texts('we`ird', '10.0.0.%', 'abc')
    assert create.startswith('CREATE USER `we``ird`@`10.0.0.%` IDENTIFIED BY PASSWORD ')
    assert grants[1] == ['GRANT SELECT ON *.* TO `we``ird`@`10.0.0.%`']


class Cursor(object):
    """Just enough of a PyMySQL cursor for Connection.query: statements are recorded as
    run, values substituted by PyMySQL's own escaping."""

    def __init__(self, server):
        self.server = server
        self.description = None
        self.rows = []

    def mogrify(self, sql, args=None):
        import pymysql.converters
        if args is None:
            return sql
        return sql % tuple(pymysql.converters.escape_item(a, 'utf8mb4') for a in args)

    def execute(self, sql, args=None):
        self.rows = self.server.run(sql, list(args or ()))
        self.description = [('x',)] if self.rows is not None else None

    def fetchall(self):
        return self.rows or []

    def close(self):
        pass


class FakeServer(object):
    """Accounts {(user, host): (password, grants, options)}; every statement run, and whether
    the binlog was off for it."""

    def __init__(self, accounts=None):
        self.accounts = dict(accounts or {})
        self.log_bin = True
        self.ran = []  # (sql, args, binlogged)

    def cursor(self):
        return Cursor(self)

    def close(self):
        pass

    def run(self, sql, args):
        self.ran.append((sql, args, self.log_bin))
        key = tuple(args[:2])
        if sql == 'SET SESSION sql_log_bin = 0':
            self.log_bin = False
        elif sql.startswith('SELECT COUNT(*)'):
            return [{'n': int(key in self.accounts)}]
        elif sql.startswith('SHOW CREATE USER'):
            password, grants, options = self.accounts[key]
            return [{'CREATE USER for x': shown(key[0], key[1], password, options)[0]}]
        elif sql.startswith('SHOW GRANTS'):
            password, grants, options = self.accounts[key]
            return [{'Grants for x': g} for g in grants]
        elif sql.startswith('CREATE OR REPLACE USER'):
            self.accounts[key] = (args[2], ['GRANT USAGE ON *.* TO `%s`@`%s`' % key], '')
        elif sql.startswith('GRANT SELECT ON *.*'):
            password = self.accounts[key][0]
            self.accounts[key] = (password, shown(key[0], key[1], password)[1], '')
        elif sql.startswith('DROP USER IF EXISTS'):
            self.accounts.pop(key, None)
        else:
            raise AssertionError('unexpected statement: %s' % sql)
        return None


@pytest.fixture
def server(monkeypatch):
    box = {'server': FakeServer()}

    class FakePymysql(object):
        cursors = connection.pymysql.cursors
        converters = connection.pymysql.converters
        err = connection.pymysql.err

        @staticmethod
        def connect(**kwargs):
            return box['server']

    monkeypatch.setattr(connection, 'pymysql', FakePymysql)
    monkeypatch.setattr(connection, 'HAS_PYMYSQL', True)
    return box


@pytest.fixture
def run(module_main):
    """A function (args) -> main()'s result dict (logging in on a socket that is not there)."""
    def run_it(args):
        return module_main(mod, dict(args, login_unix_socket='/nonexistent.sock'))
    return run_it


def test_create_runs_outside_the_binlog_with_the_password_as_a_masked_parameter(server, run):
    res = run(dict(name='reseed_verify', password=PASSWORD))
    assert res['changed'] is True and res['action'] == 'created', res
    fake = server['server']
    assert fake.accounts[('reseed_verify', '%')][0] == PASSWORD
    writes = [(sql, binlogged) for sql, args, binlogged in fake.ran
              if not sql.startswith(('SELECT', 'SHOW', 'SET'))]
    assert [w[0].split(' %s')[0] for w in writes] == [
        'CREATE OR REPLACE USER', 'GRANT SELECT ON *.* TO']
    assert not any(binlogged for sql, binlogged in writes)
    # The password went to the driver as a value, and nowhere in what is returned.
    create = [args for sql, args, b in fake.ran if sql.startswith('CREATE')][0]
    assert create[2] == PASSWORD
    assert "IDENTIFIED BY '********'" in ' '.join(res['queries'])
    assert PASSWORD not in json.dumps(res)
    assert 'DROP TABLE' not in json.dumps(res)  # not even a piece of it


def test_present_twice_changes_nothing_the_second_time(server, run):
    run(dict(name='reseed_verify', password=PASSWORD))
    before = len(server['server'].ran)
    res = run(dict(name='reseed_verify', password=PASSWORD))
    assert res['changed'] is False and res['action'] == 'none', res
    assert all(sql.startswith(('SELECT', 'SHOW')) for sql, a, b in server['server'].ran[before:])


def test_another_password_replaces_the_account(server, run):
    server['server'].accounts[('reseed_verify', '%')] = (
        'old', shown('reseed_verify', '%', 'old')[1], '')
    res = run(dict(name='reseed_verify', password=PASSWORD))
    assert res['changed'] is True and res['action'] == 'replaced'
    assert server['server'].accounts[('reseed_verify', '%')][0] == PASSWORD


def test_check_mode_reports_and_writes_nothing(server, run):
    res = run(dict(name='reseed_verify', password=PASSWORD, _ansible_check_mode=True))
    assert res['changed'] is True and res['action'] == 'created'
    assert server['server'].accounts == {}
    assert all(sql.startswith(('SELECT', 'SHOW')) for sql, a, b in server['server'].ran)
    server['server'].accounts[('reseed_verify', '%')] = ('abc', [], '')
    res = run(dict(name='reseed_verify', state='absent', _ansible_check_mode=True))
    assert res['changed'] is True and res['action'] == 'dropped'
    assert ('reseed_verify', '%') in server['server'].accounts


def test_absent_drops_outside_the_binlog_then_has_nothing_to_do(server, run):
    server['server'].accounts[('reseed_verify', '%')] = (
        'abc', shown('reseed_verify', '%', 'abc')[1], '')
    res = run(dict(name='reseed_verify', state='absent'))
    assert res['changed'] is True and res['action'] == 'dropped'
    assert server['server'].accounts == {}
    drops = [b for sql, a, b in server['server'].ran if sql.startswith('DROP')]
    assert drops == [False]
    res = run(dict(name='reseed_verify', state='absent'))
    assert res['changed'] is False and res['action'] == 'none'


def test_an_empty_password_is_refused_before_connecting(server, run):
    res = run(dict(name='reseed_verify', password=''))
    assert res['failed'] and 'empty password' in res['msg'] and res['changed'] is False
    assert server['server'].ran == []


def test_a_refused_statement_says_what_the_login_needs(server, monkeypatch, run):
    def refuse(sql, args):
        if sql.startswith('CREATE'):
            raise connection.pymysql.err.OperationalError(
                1227, 'Access denied; you need (at least one of) the CREATE USER privilege(s)')
        return FakeServer.run(server['server'], sql, args)
    monkeypatch.setattr(server['server'], 'run', refuse)
    res = run(dict(name='reseed_verify', password=PASSWORD))
    assert res['failed'] and res['msg'].startswith('temp_account: cannot create reseed_verify@%: ')
    assert 'CREATE USER, SELECT WITH GRANT OPTION and BINLOG ADMIN' in res['msg']
    assert '\n' not in res['msg'] and PASSWORD not in json.dumps(res)


def test_the_failure_in_fields_and_the_msg_as_it_was(server, monkeypatch, run):
    res = run(dict(name='reseed_verify', password=''))
    assert res['failure'] == dict(step='create', side='source', code='empty_password',
                                  changed_nothing=True, message=res['msg'][len('temp_account: '):])
    assert res['msg'] == ('temp_account: cannot read reseed_verify@%: an empty password is '
                          'refused: give the account a password')
    # Refused at CREATE: nothing was written; refused at GRANT: the account was created.
    for refused, changed_nothing in (('CREATE', True), ('GRANT', False)):
        def refuse(sql, args, refused=refused):
            if sql.startswith(refused):
                raise connection.pymysql.err.OperationalError(1227, 'Access denied')
            return FakeServer.run(server['server'], sql, args)
        monkeypatch.setattr(server['server'], 'run', refuse)
        res = run(dict(name='reseed_verify', password=PASSWORD))
        assert res['failure'] == dict(step='create', side='source', code='privileges',
                                      changed_nothing=changed_nothing,
                                      message=res['msg'][len('temp_account: '):])
        assert res['changed'] is not changed_nothing and res['action'] == 'created'
        assert res['msg'].endswith('(1227) Access denied; ' + mod.PRIVILEGE_HINT)
        assert PASSWORD not in json.dumps(res)
        server['server'].accounts.clear()


def test_a_drop_that_cannot_log_in_changed_nothing(server, monkeypatch, run):
    class Refusing(object):
        cursors = connection.pymysql.cursors
        err = connection.pymysql.err

        @staticmethod
        def connect(**kwargs):
            raise Refusing.err.OperationalError(1045, "Access denied for user 'x'")
    monkeypatch.setattr(connection, 'pymysql', Refusing)
    res = run(dict(name='reseed_verify', state='absent'))
    assert res['failure'] == dict(step='drop', side='source', code='login', changed_nothing=True,
                                  message=res['msg'][len('temp_account: '):])
    assert res['msg'] == ("temp_account: cannot read reseed_verify@%: cannot connect to MariaDB as "
                          "root@socket /nonexistent.sock: (1045) Access denied for user 'x'")
    assert res['changed'] is False and res['queries'] == []
