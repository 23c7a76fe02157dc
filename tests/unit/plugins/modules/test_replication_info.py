# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""replication_info's main() against fake servers: each failure says its step, side, code and
that it changed nothing, in C(failure), and its msg is the one it always was."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError
from ansible_collections.reseed.mariadb.plugins.modules import replication_info as mod

VARS = dict(gtid_current_pos='0-1-5', gtid_slave_pos='0-1-5', gtid_binlog_pos='0-1-5',
            gtid_binlog_state='0-1-5', gtid_strict_mode='1', read_only='1', server_id='2',
            log_bin='1', version='10.11.19-MariaDB', datadir='/var/lib/mysql/', have_ssl='YES',
            log_bin_basename='/var/lib/mysql/mysql-bin', log_slave_updates='1')


class Server(object):
    """Connection's stand-in: the variables, no replication rows; a login or a statement
    that fails (a DbError)."""

    def __init__(self, variables=None, login=None, fail=None):
        self.vars = dict(VARS, **(variables or {}))
        self.login, self.fail, self.queries = login, fail or {}, []

    def connect(self, params):
        if self.login:
            raise self.login
        self.queries = []
        return self

    def query(self, sql, args=None):
        self.queries.append(sql)
        for prefix, error in self.fail.items():
            if sql.startswith(prefix):
                raise error
        if sql.startswith('SHOW BINARY LOGS'):
            return [{'Log_name': 'mysql-bin.000001'}]
        return []

    def variable(self, name):
        self.query('SELECT @@GLOBAL.%s AS value' % name)
        return self.vars[name]

    def close(self):
        pass


@pytest.fixture
def run(monkeypatch, module_main):
    """A function (replica, source=None, **args) -> main()'s result dict (the primary at db1)."""
    def run_it(replica, source=None, **args):
        def connect(params):
            return (source if params.get('login_host') == 'db1' else replica).connect(params)
        monkeypatch.setattr(mod, 'Connection', connect)
        monkeypatch.setattr(mod, 'server_service', lambda *a, **k: None)
        monkeypatch.setattr(mod, 'datadir_mount', lambda module, datadir: None)
        return module_main(mod, args)
    return run_it


def test_a_healthy_read_has_no_failure(run):
    res = run(Server(), source=Server(), primary=dict(login_host='db1'))
    assert not res.get('failed') and 'failure' not in res
    assert res['errant_gtids'] == [] and res['datadir'] == '/var/lib/mysql'
    assert res['queries'][-1] == 'primary: SELECT @@GLOBAL.gtid_binlog_state AS value'


def test_a_primary_that_cannot_be_reached_is_the_links_and_one_that_refuses_the_sources(run):
    lost = DbError("cannot connect to MariaDB as repl@db1:3306: (2003) Can't connect", 2003)
    res = run(Server(), Server(login=lost), primary=dict(login_host='db1'))
    assert res['failure'] == dict(step='read primary', side='link', code='login',
                                  changed_nothing=True, message=res['msg'][len('replication_info: '):])
    assert res['msg'] == ("replication_info: reading the primary's gtid_binlog_state (check the "
                          "primary login options): cannot connect to MariaDB as repl@db1:3306: "
                          "(2003) Can't connect")
    # The variables, the redo sample (two reads), SHOW ALL SLAVES STATUS.
    assert res['changed'] is False and len(res['queries']) == len(mod.VARIABLES) + 3
    denied = DbError('SELECT @@GLOBAL.gtid_binlog_state AS value failed on repl@db1:3306: '
                     '(1227) denied', 1227)
    res = run(Server(), Server(fail={'SELECT': denied}),
              primary=dict(login_host='db1'))
    assert (res['failure']['step'], res['failure']['side'], res['failure']['code']) == (
        'read primary', 'source', 'statement_error_1227')


def test_a_failed_read_of_this_server_is_the_replicas(run):
    gone = DbError('SHOW ALL SLAVES STATUS failed on root@localhost: (1227) denied', 1227)
    res = run(Server(fail={'SHOW ALL': gone}))
    assert res['failure'] == dict(step='read replica', side='replica', code='statement_error_1227',
                                  changed_nothing=True, message=res['msg'][len('replication_info: '):])
    assert res['msg'] == ("replication_info: reading this host's server status (variables, SHOW "
                          "ALL SLAVES STATUS): SHOW ALL SLAVES STATUS failed on root@localhost: "
                          "(1227) denied")
    login = DbError('cannot connect to MariaDB as root@db2:3306: (1045) Access denied', 1045)
    res = run(Server(login=login), login_host='db2')
    assert (res['failure']['side'], res['failure']['code']) == ('replica', 'login')


def test_a_server_that_must_run_and_is_down_names_this_host(monkeypatch, run):
    monkeypatch.setattr(mod.service, 'server_processes', lambda: [])
    monkeypatch.setattr(mod.service, 'option_file_paths', lambda module, instance: (None, None))
    down = DbError('cannot connect to MariaDB as root@socket /run/mysqld/mysqld.sock: (2002) '
                   'no socket', 2002)
    res = run(Server(login=down), login_unix_socket='/run/mysqld/mysqld.sock',
              fail_when_down=True)
    assert res['failure'] == dict(step='read replica', side='replica', code='server_down',
                                  changed_nothing=True, message=res['failure']['message'])
    assert res['msg'] == ('replication_info on %s: the server is down, no mariadbd process runs '
                          '(%s): this server must run here; start it, or find out why it does '
                          'not' % (mod.socket.gethostname(), down))
    assert res['state'] == 'down' and res['server_pids'] == [] and res['queries'] == []


def test_binlog_files_that_cannot_be_read_and_a_primary_state_that_is_not_gtids(monkeypatch, run):
    def denied(names, folder):
        raise IOError(13, 'Permission denied', folder + '/mysql-bin.000001')
    monkeypatch.setattr(mod.binloglib, 'Binlog', denied)
    res = run(Server(), binlog_restarts=True)
    assert (res['failure']['step'], res['failure']['side'], res['failure']['code']) == (
        'read binlog', 'replica', 'binlog_permission')
    assert res['msg'] == ("replication_info on %s: reading the binlog files in /var/lib/mysql: "
                          "[Errno 13] Permission denied: '/var/lib/mysql/mysql-bin.000001'; the "
                          "module reads them as the user it runs as: run it with become"
                          % mod.socket.gethostname())
    res = run(Server(), primary_gtid_binlog_state='not a gtid')
    assert res['failure']['step'] == 'diagnose'
    assert (res['failure']['side'], res['failure']['code']) == ('source', 'primary_gtid_state')
    assert res['msg'].startswith("replication_info: the primary's gtid_binlog_state cannot be "
                                 "read as GTIDs: ")


def test_binary_logs_lists_the_files_only_when_asked_and_none_without_binlog(run):
    res = run(Server(), binary_logs=True)
    assert res['binary_logs'] == ['mysql-bin.000001'] and 'SHOW BINARY LOGS' in res['queries']
    plain = run(Server())
    assert 'binary_logs' not in plain and 'SHOW BINARY LOGS' not in plain['queries']
    unlogged = run(Server(variables=dict(log_bin='0')), binary_logs=True)
    assert unlogged['binary_logs'] == [] and 'SHOW BINARY LOGS' not in unlogged['queries']
