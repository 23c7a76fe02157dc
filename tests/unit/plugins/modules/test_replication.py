# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication module's decisions against a fake server: what it runs, and when."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError
from ansible_collections.reseed.mariadb.plugins.modules import replication as mod

ROW = {'Master_Host': '10.0.0.1', 'Master_Port': '3306', 'Master_User': 'repl',
       'Connect_Retry': '1', 'Master_SSL_Allowed': 'No', 'SQL_Delay': '0',
       'Using_Gtid': 'Slave_Pos', 'Slave_IO_Running': 'Yes', 'Slave_SQL_Running': 'Yes',
       'Seconds_Behind_Master': '0', 'Last_IO_Errno': '0', 'Last_SQL_Errno': '0'}


class FakeDb(object):
    def __init__(self, fail=None, rows=None):
        self.queries, self.fail, self.rows = [], fail or {}, list(rows or [])

    def query(self, sql, args=None, secret_args=()):
        shown = [('***' if i in secret_args else a) for i, a in enumerate(args or [])]
        self.queries.append((sql, shown))
        for prefix, code in self.fail.items():
            if sql.startswith(prefix):
                raise DbError('%s failed' % sql, code)
        if sql.startswith('SHOW ALL SLAVES STATUS'):
            return [dict({'Connection_name': ''}, **self.rows.pop(0))] if self.rows else []
        return [{'r': 0}]

    def variable(self, name):
        return '0-1-5'


class FakeModule(object):
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = dict(state='started', connection_name='', mode='gtid',
                           gtid_slave_pos=None, primary_log_file=None, primary_log_pos=None,
                           force_position=False, primary_password='s3cr\'et',
                           update_password='on_change', wait_gtid=None, max_lag=0,
                           wait_timeout=5, error_grace=0)
        for option, keyword, field, kind in mod.cm.OPTIONS:
            self.params.setdefault(option, None)
        self.params.update(primary_host='10.0.0.1', primary_port=3306, primary_user='repl',
                           primary_connect_retry=1)
        self.params.update(params)


def test_same_settings_change_nothing():
    db = FakeDb()
    changed, before, after = mod.configure(FakeModule(), db, dict(ROW))
    assert changed is False and before == after and db.queries == []


def test_a_new_connection_sends_password_and_position():
    db = FakeDb()
    changed, before, after = mod.configure(FakeModule(gtid_slave_pos='0-1-9'), db, None)
    assert changed and after['primary_password'] == '********'
    sqls = [q[0] for q in db.queries]
    assert sqls[0] == 'SET GLOBAL gtid_slave_pos = %s' and sqls[1].startswith('CHANGE MASTER')
    assert '***' in db.queries[1][1] and "s3cr'et" not in str(db.queries)


def test_a_changed_setting_stops_changes_only_it_and_keeps_the_password():
    db = FakeDb()
    changed, before, after = mod.configure(FakeModule(primary_connect_retry=5), db, dict(ROW))
    assert changed and (before['primary_connect_retry'], after['primary_connect_retry']) == (1, 5)
    assert db.queries[0][0] == 'STOP SLAVE %s'
    assert db.queries[1] == ('CHANGE MASTER %s TO MASTER_CONNECT_RETRY = %s, '
                             'MASTER_USE_GTID = slave_pos', ['', 5])


def test_check_mode_runs_nothing():
    db = FakeDb()
    changed, before, after = mod.configure(FakeModule(check_mode=True, primary_host='db2'),
                                           db, dict(ROW))
    assert changed and after['primary_host'] == 'db2' and db.queries == []


def test_gtid_slave_pos_while_another_connection_runs_says_what_to_do():
    db = FakeDb(fail={'SET GLOBAL gtid_slave_pos': 1198})
    with pytest.raises(mod.Failed, match='stop every connection'):
        mod.configure(FakeModule(gtid_slave_pos='0-1-9', connection_name='two'), db, None)


def test_wait_returns_the_replication_error_not_a_timeout():
    failing = dict(ROW, Slave_IO_Running='Connecting', Last_IO_Errno='1045',
                   Last_IO_Error="Access denied for user 'repl'")
    db = FakeDb(rows=[failing] * 5)
    with pytest.raises(mod.Failed, match='replicating from 10.0.0.1:3306, IO thread error 1045: Access denied.*credentials'):
        mod.wait_healthy(db, FakeModule().params)


def test_wait_tolerates_connecting_then_reports_healthy():
    connecting = dict(ROW, Slave_IO_Running='Connecting', Seconds_Behind_Master=None)
    db = FakeDb(rows=[connecting, dict(ROW)])
    assert mod.wait_healthy(db, FakeModule().params)['io_running'] == 'Yes'


def test_switching_to_file_pos_applies_the_coordinates_but_a_rerun_does_not():
    db = FakeDb()
    module = FakeModule(mode='file_pos', primary_log_file='mysql-bin.000002',
                        primary_log_pos=4711)
    changed, before, after = mod.configure(module, db, dict(ROW))
    assert changed and after['primary_log_file'] == 'mysql-bin.000002'
    assert db.queries[1] == ('CHANGE MASTER %s TO MASTER_LOG_FILE = %s, MASTER_LOG_POS = %s, '
                             'MASTER_USE_GTID = no', ['', 'mysql-bin.000002', 4711])
    db = FakeDb()
    changed, before, after = mod.configure(module, db, dict(ROW, Using_Gtid='No'))
    assert changed is False and db.queries == []


def test_status_row_finds_the_connection_without_case():
    db = FakeDb(rows=[dict(ROW, Connection_name='Eu')])
    assert mod.status_row(db, 'eu')['Connection_name'] == 'Eu'
    assert mod.status_row(FakeDb(rows=[dict(ROW, Connection_name='eu')]), '') is None


def test_a_delayed_replica_is_caught_up_within_its_delay():
    assert mod.within_lag({'SQL_Delay': 0}, 0, 0)
    assert not mod.within_lag({'SQL_Delay': 0}, 5, 0)
    assert mod.within_lag({'SQL_Delay': 5, 'SQL_Remaining_Delay': None}, 5, 0)
    assert not mod.within_lag({'SQL_Delay': 5, 'SQL_Remaining_Delay': None}, 40, 0)
    # Waiting out the delay of the next event: everything before it is applied.
    assert mod.within_lag({'SQL_Delay': 5, 'SQL_Remaining_Delay': 3}, 7, 0)


# ---- main(): the failure in fields, the msg as it was --------------------------------------

class Server(object):
    """Connection's stand-in for main(): statements recorded as Connection records them,
    SHOW ALL SLAVES STATUS answered from rows in turn (None: no connection; the last stays)."""

    def __init__(self, rows, fail=None, name=''):
        self.rows, self.fail, self.name, self.queries = list(rows), fail or {}, name, []

    def query(self, sql, args=None, secret_args=()):
        self.queries.append(sql)
        for prefix, code in self.fail.items():
            if sql.startswith(prefix):
                raise DbError('%s failed on root@localhost: (%d) refused' % (sql, code), code)
        if sql.startswith('SHOW ALL SLAVES STATUS'):
            row = self.rows.pop(0) if len(self.rows) > 1 else self.rows[0]
            return [dict(row, Connection_name=self.name)] if row else []
        return [{'r': 0}]

    def variable(self, name):
        return '0-1-5'

    def close(self):
        pass


@pytest.fixture
def run_main(module_main, fake_connection):
    """A function (server, **args) -> main()'s result dict (a primary at 10.0.0.1)."""
    def run_it(server, **args):
        fake_connection(mod, server)
        return module_main(mod, dict(dict(primary_host='10.0.0.1', primary_port=3306,
                                          primary_user='repl', primary_password='pw',
                                          primary_connect_retry=1, error_grace=0,
                                          wait_timeout=5), **args))
    return run_it


def test_access_denied_by_the_primary_is_the_sources_and_changed_nothing(run_main):
    failing = dict(ROW, Slave_IO_Running='Connecting', Last_IO_Errno='1045',
                   Last_IO_Error="Access denied for user 'repl'")
    res = run_main(Server([failing]))
    assert res['failure'] == dict(step='wait', side='source', code='io_error_1045',
                                  changed_nothing=True, message=res['msg'].split("'': ", 1)[1])
    assert res['msg'] == ("replication on connection '': replicating from 10.0.0.1:3306, IO "
                          "thread error 1045: Access denied for user 'repl' (no rebuild: fix the "
                          "network or the credentials)")
    assert res['changed'] is False and res['queries'] == ['SHOW ALL SLAVES STATUS'] * 3


def test_a_new_connection_that_cannot_reach_the_primary_is_the_links(run_main):
    refused = dict(ROW, Slave_IO_Running='Connecting', Last_IO_Errno='2003',
                   Last_IO_Error="Can't connect to server on '10.0.0.1' (111)")
    res = run_main(Server([None, refused]), gtid_slave_pos='0-1-9')
    assert (res['failure']['side'], res['failure']['code']) == ('link', 'io_error_2003')
    assert res['failure']['changed_nothing'] is False and res['changed'] is True
    assert 'START SLAVE %s' in res['queries']
    # The SQL thread stopped on an error is named first, as the msg does.
    broken = dict(refused, Slave_SQL_Running='No', Last_SQL_Errno='1062',
                  Last_SQL_Error='Duplicate entry')
    res = run_main(Server([broken]))
    assert (res['failure']['side'], res['failure']['code']) == ('replica', 'sql_error_1062')
    assert 'SQL thread error 1062: Duplicate entry' in res['msg']


def test_gtid_slave_pos_refused_changed_nothing_unless_the_connection_was_stopped(run_main):
    res = run_main(Server([None], {'SET GLOBAL gtid_slave_pos': 1198}, 'two'),
                   connection_name='two', gtid_slave_pos='0-1-9')
    assert res['failure'] == dict(step='configure', side='replica', code='gtid_running',
                                  changed_nothing=True, message=res['failure']['message'])
    assert res['msg'] == ("replication on connection 'two': cannot set gtid_slave_pos while "
                          "another replication connection runs (error 1198): stop every "
                          "connection (state=stopped per connection_name), then run this task "
                          "again")
    res = run_main(Server([ROW], {'SET GLOBAL gtid_slave_pos': 1198}, 'two'),
                   connection_name='two', gtid_slave_pos='0-1-9', force_position=True)
    assert res['failure']['changed_nothing'] is False and res['changed'] is True
    assert res['queries'][-2:] == ['STOP SLAVE %s', 'SET GLOBAL gtid_slave_pos = %s']


def test_login_options_and_a_lost_statement(run_main):
    res = run_main(DbError('cannot connect to MariaDB as root@localhost: '
                           '(1045) Access denied', 1045))
    assert res['failure'] == dict(step='configure', side='replica', code='login',
                                  changed_nothing=True, message=res['failure']['message'])
    assert res['msg'] == ("replication on connection '': cannot connect to MariaDB as "
                          "root@localhost: (1045) Access denied")
    assert res['queries'] == [] and res['changed'] is False
    res = run_main(Server([ROW]), mode='gtid',
                   primary_log_file='mysql-bin.000001', primary_log_pos=4)
    assert (res['failure']['code'], res['msg']) == ('options', 'replication: primary_log_file/pos '
                                                    'go with mode=file_pos; with mode=gtid give '
                                                    'gtid_slave_pos')
    # A connection lost during STOP SLAVE (2013): it may have stopped.
    res = run_main(Server([ROW], {'STOP SLAVE': 2013}), state='stopped')
    assert (res['failure']['step'], res['failure']['code']) == ('stop', 'statement_error_2013')
    assert res['failure']['changed_nothing'] is False
    assert res['msg'] == ("replication on connection '': STOP SLAVE %s failed on root@localhost: "
                          "(2013) refused")
