# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""replica_local against a fake server: capture keeps the accounts' text in a 0600 file and
returns names only; restore disables the events, carries the accounts with no hash in its
queries, and runs nothing the second time."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError
from ansible_collections.reseed.mariadb.plugins.modules import replica_local as mod

HASH = '*2B602296A79E0A8784ACC5C88D92E46588CCA3C3'


class Cursor(object):
    def __init__(self, db):
        self.db = db

    def execute(self, sql, args=None):
        self.db.executed.append(sql)
        if sql.startswith('CREATE USER'):
            self.db.accounts[('mon', '%')] = (sql, [])
        elif sql.startswith('GRANT'):
            self.db.accounts[('mon', '%')][1].append(sql)

    def close(self):
        pass


class FakeDb(object):
    """A server with accounts {(user, host): (create, grants)}, events and globals."""

    def __init__(self, accounts, events=(), globals_=None, slaves=()):
        self.accounts = dict(accounts)
        self.events = [dict(e) for e in events]
        self.globals = dict(globals_ or {})
        self.slaves = list(slaves)
        self.queries, self.executed = [], []
        self.conn = self

    def cursor(self):
        return Cursor(self)

    def variable(self, name):
        if name not in self.globals:
            raise DbError('unknown', 1193)
        return self.globals[name]

    def query(self, sql, args=None, secret_args=()):
        self.queries.append((sql, args))
        if sql.startswith('SHOW ALL SLAVES STATUS'):
            return self.slaves
        if sql.startswith('SELECT CURRENT_USER'):
            return [{'u': 'root@localhost'}]
        if sql.startswith('SELECT User AS u'):
            return [{'u': u, 'h': h} for u, h in sorted(self.accounts)]
        if sql.startswith('SHOW CREATE USER') or sql.startswith('SHOW GRANTS'):
            if tuple(args) not in self.accounts:
                raise DbError('no such account', 1133)
            create, grants = self.accounts[tuple(args)]
            if sql.startswith('SHOW CREATE USER'):
                return [{'CREATE USER for x': create}]
            return [{'Grants for x': g} for g in grants]
        if sql.startswith('DROP USER'):
            self.accounts.pop(tuple(args), None)
        if sql.startswith('SELECT EVENT_SCHEMA'):
            return self.events
        if sql.startswith('ALTER DEFINER'):
            for e in self.events:
                if '`%s`.`%s`' % (e['EVENT_SCHEMA'], e['EVENT_NAME']) in sql:
                    e['STATUS'] = 'SLAVESIDE_DISABLED'
        if sql.startswith('SET GLOBAL'):
            self.globals[sql.split()[2]] = args[0]
        return []


class FakeModule(object):
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = dict(digest_key='k', source_digests={}, carry_accounts=True,
                           keep_settings=True, connection_name='',
                           allow_other_connections=False, held_by=[], upgrade_timeout=5,
                           require_state=True)
        self.params.update(params)


ROOT = ('CREATE USER `root`@`localhost` IDENTIFIED VIA unix_socket',
        ['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION'])
MON = ("CREATE USER `mon`@`%%` IDENTIFIED BY PASSWORD '%s'" % HASH,
       ["GRANT PROCESS ON *.* TO `mon`@`%%` IDENTIFIED BY PASSWORD '%s'" % HASH])
GLOBALS = dict(event_scheduler='ON', read_only=1, slave_net_timeout=60,
               replicate_do_db='', slave_parallel_threads=4)
ROW = {'Connection_name': '', 'SQL_Delay': 5, 'Slave_heartbeat_period': 7.5,
       'Connect_Retry': 60, 'Master_SSL_Allowed': 'No'}


def capture(tmp_path, db, check_mode=False, **params):
    source = FakeDb({('root', 'localhost'): ROOT})
    digests = mod.digest(source, dict(digest_key='k'))['digests']
    module = FakeModule(check_mode, source_digests=digests,
                        state_file=str(tmp_path / 'reseed' / 'state.json'), **params)
    return module, mod.capture(module, db, module.params)


def test_capture_names_the_replicas_own_accounts_and_keeps_their_text_root_only(tmp_path):
    db = FakeDb({('root', 'localhost'): ROOT, ('mon', '%'): MON}, globals_=GLOBALS,
                slaves=[ROW])
    module, result = capture(tmp_path, db)
    assert result['accounts'] == ['mon@%'] and result['changed']
    assert result['settings'] == {'primary_delay': 5, 'primary_heartbeat_period': 7.5}
    assert result['globals']['read_only'] == 1 and result['event_scheduler'] == 'ON'
    assert HASH not in json.dumps(result)
    path = module.params['state_file']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path) as f:
        assert HASH in f.read()


def test_capture_in_check_mode_writes_nothing(tmp_path):
    db = FakeDb({('mon', '%'): MON}, globals_=GLOBALS, slaves=[ROW])
    module, result = capture(tmp_path, db, check_mode=True)
    assert result['accounts'] == ['mon@%'] and not result['changed']
    assert not os.path.exists(module.params['state_file'])


def test_capture_refuses_other_connections_and_writes_nothing(tmp_path):
    db = FakeDb({}, globals_=GLOBALS, slaves=[ROW, dict(ROW, Connection_name='eu')])
    module, result = capture(tmp_path, db)
    assert result['refused'] and result['other_connections'] == ['eu']
    assert not os.path.exists(module.params['state_file'])
    module, result = capture(tmp_path, db, allow_other_connections=True)
    assert not result['refused'] and result['other_connections'] == ['eu']


def test_capture_keeps_the_file_of_a_run_that_swapped_and_did_not_finish(tmp_path):
    db = FakeDb({('mon', '%'): MON}, globals_=GLOBALS, slaves=[ROW])
    module, first = capture(tmp_path, db)
    hold = tmp_path / 'hold.cnf'
    hold.write_text('[mariadbd]\n')
    copy = FakeDb({}, globals_=GLOBALS, slaves=[])  # the copy's server: none of it
    module, again = capture(tmp_path, copy, held_by=[str(hold)])
    assert again['pending'] and again['accounts'] == ['mon@%']
    assert again['settings'] == first['settings']


def test_restore_disables_events_carries_accounts_without_a_hash_and_is_idempotent(tmp_path):
    replica = FakeDb({('root', 'localhost'): ROOT, ('mon', '%'): MON}, globals_=GLOBALS,
                     slaves=[ROW])
    module = capture(tmp_path, replica)[0]
    events = [{'EVENT_SCHEMA': 'labdb', 'EVENT_NAME': 'tick', 'DEFINER': 'root@localhost',
               'STATUS': 'ENABLED'}]
    new = FakeDb({('root', 'localhost'): ROOT}, events=events,
                 globals_=dict(GLOBALS, event_scheduler='OFF', slave_parallel_threads=0))
    result = mod.restore(module, new, module.params)
    assert result['events_disabled'] == ['labdb.tick'] and result['changed']
    assert new.events[0]['STATUS'] == 'SLAVESIDE_DISABLED'
    assert result['accounts_restored'] == ['mon@%']
    assert new.accounts[('mon', '%')] == MON
    assert result['globals_restored'] == {'slave_parallel_threads': 4, 'event_scheduler': 'ON'}
    assert new.queries[0] == ('SET SESSION sql_log_bin = 0', None)
    assert HASH not in repr(new.queries) and HASH not in json.dumps(result)
    # The scheduler is set back after the events are disabled.
    order = [q[0] if isinstance(q, tuple) else q for q in new.queries]
    assert order.index('SET GLOBAL event_scheduler = %s') > [
        i for i, q in enumerate(order) if q.startswith('ALTER DEFINER')][0]
    again = mod.restore(module, new, module.params)
    assert not again['changed'] and again['events_disabled'] == [] and \
        again['accounts_restored'] == []


def test_restore_without_carrying_leaves_the_copys_accounts(tmp_path):
    replica = FakeDb({('mon', '%'): MON}, globals_=GLOBALS, slaves=[ROW])
    module, result = capture(tmp_path, replica, carry_accounts=False)
    with open(module.params['state_file']) as f:
        assert HASH not in f.read()
    new = FakeDb({}, globals_=dict(GLOBALS, event_scheduler='OFF'))
    result = mod.restore(module, new, module.params)
    assert result['accounts_restored'] == [] and ('mon', '%') not in new.accounts


def test_finish_sets_read_only_back_and_removes_the_file(tmp_path):
    replica = FakeDb({}, globals_=dict(GLOBALS, read_only=0), slaves=[ROW])
    module = capture(tmp_path, replica)[0]
    new = FakeDb({}, globals_=dict(GLOBALS, read_only=1))
    result = mod.finish(module, new, module.params)
    assert result['globals_restored'] == {'read_only': 0} and new.globals['read_only'] == 0
    assert not os.path.exists(module.params['state_file'])
    assert not os.path.exists(os.path.dirname(module.params['state_file']))  # made for it
    assert mod.finish(module, new, module.params)['changed'] is False


def test_discard_removes_the_file_and_its_own_directory_only(tmp_path):
    replica = FakeDb({('mon', '%'): MON}, globals_=GLOBALS, slaves=[ROW])
    module = capture(tmp_path, replica)[0]
    path = module.params['state_file']
    result = mod.discard(FakeModule(True, state_file=path), dict(state_file=path))
    assert result['changed'] and os.path.exists(path)  # check mode: said, not done
    assert mod.discard(module, module.params)['changed']
    assert not os.path.exists(os.path.dirname(path))
    assert mod.discard(module, module.params)['changed'] is False
    # A directory that holds something else of the host's stays.
    capture(tmp_path, replica)
    (tmp_path / 'reseed' / 'other').write_text('x')
    assert mod.discard(module, module.params)['changed']
    assert os.listdir(os.path.dirname(path)) == ['other']


def test_finish_sets_the_scheduler_again_if_something_turned_it_off(tmp_path):
    replica = FakeDb({}, globals_=GLOBALS, slaves=[ROW])
    module = capture(tmp_path, replica)[0]
    new = FakeDb({}, globals_=dict(GLOBALS, event_scheduler='OFF'))
    result = mod.finish(module, new, module.params)
    assert result['globals_restored'] == {'event_scheduler': 'ON'}
    assert new.globals['event_scheduler'] == 'ON'


def test_restore_without_a_capture_still_disables_the_events(tmp_path):
    events = [{'EVENT_SCHEMA': 'labdb', 'EVENT_NAME': 'tick', 'DEFINER': 'root@localhost',
               'STATUS': 'ENABLED'}]
    new = FakeDb({}, events=events, globals_=dict(GLOBALS, event_scheduler='OFF'))
    module = FakeModule(state_file=str(tmp_path / 'none.json'), require_state=False)
    result = mod.restore(module, new, module.params)
    assert result['events_disabled'] == ['labdb.tick'] and result['globals_restored'] == {}
    assert new.globals['event_scheduler'] == 'OFF'
    module = FakeModule(state_file=str(tmp_path / 'none.json'), require_state=True)
    with pytest.raises(mod.Failed):
        mod.restore(module, new, module.params)


# ---- main(): the failure in fields, the msg as it was --------------------------------------

class Server(FakeDb):
    """FakeDb as main() connects to it: statements recorded as Connection records them (text),
    and a statement that fails (fail: prefix -> server error number)."""

    def __init__(self, *args, **kwargs):
        self.fail = kwargs.pop('fail', {})
        FakeDb.__init__(self, *args, **kwargs)

    def query(self, sql, args=None, secret_args=()):
        for prefix, code in self.fail.items():
            if sql.startswith(prefix):
                self.queries.append(sql)
                raise DbError('%s failed on root@localhost: (%d) refused' % (sql, code), code)
        try:
            return FakeDb.query(self, sql, args, secret_args)
        finally:
            self.queries[-1] = sql

    def close(self):
        pass


@pytest.fixture
def run_main(monkeypatch, module_main, fake_connection):
    """A function (server, **args) -> main()'s result dict (no mariadb-upgrade running)."""
    def run_it(server, **args):
        fake_connection(mod, server)
        monkeypatch.setattr(mod, 'upgrade_pids', lambda: [])
        return module_main(mod, args)
    return run_it


def state_file(tmp_path, **state):
    path = tmp_path / 'state.json'
    path.write_text(mod.rl.state_text(dict(dict(event_scheduler='ON', accounts=[],
                                                carry_accounts=False, globals={},
                                                late_globals={}), **state)))
    return str(path)


EVENTS = [{'EVENT_SCHEMA': 'labdb', 'EVENT_NAME': 'tick', 'DEFINER': 'root@localhost',
           'STATUS': 'ENABLED'}]


def test_a_restore_without_its_state_file_changed_nothing(tmp_path, run_main):
    path = str(tmp_path / 'none.json')
    res = run_main(Server({}, events=EVENTS, globals_=GLOBALS),
                   phase='restore', state_file=path)
    assert res['failure'] == dict(step='restore', side='replica', code='no_state_file',
                                  changed_nothing=True, message=res['msg'][len('replica_local restore: '):])
    assert res['msg'] == ('replica_local restore: no state file %s; run phase=capture before the '
                          'swap (the role replica_rebuild does)' % path)
    assert res['changed'] is False and res['state_file'] == path


def test_a_restore_that_fails_mid_way_changed_the_server(tmp_path, run_main):
    path = state_file(tmp_path, globals={'bogus': 1})
    server = Server({}, events=EVENTS, globals_=dict(GLOBALS, bogus=0))
    res = run_main(server, phase='restore', state_file=path)
    assert res['failure'] == dict(step='restore', side='replica', code='unknown_global',
                                  changed_nothing=False, message=res['failure']['message'])
    assert res['msg'] == ("replica_local restore: unknown global 'bogus' in the state file; "
                          "remove the state file and rebuild again")
    assert res['changed'] is True and any(q.startswith('ALTER DEFINER') for q in res['queries'])
    # An account whose statement the server refuses: by its number only, changed.
    account = dict(user='mon', host='%', create=MON[0], grants=MON[1])
    path = state_file(tmp_path, carry_accounts=True, accounts=[account])

    class Refusing(Cursor):
        def execute(self, sql, args=None):
            raise ValueError(1064, "syntax near '%s'" % HASH)  # as PyMySQL's errors carry it
    server = Server({}, globals_=GLOBALS)
    server.cursor = lambda: Refusing(server)
    res = run_main(server, phase='restore', state_file=path)
    assert (res['failure']['code'], res['failure']['changed_nothing']) == ('account_failed', False)
    assert res['msg'] == ('replica_local restore: (the definition of mon@% read before the swap) '
                          'failed with server error 1064; read the server error log; the account '
                          'is as the copy had it')
    assert HASH not in json.dumps(res)


def test_finish_names_its_phase_and_a_refused_statement_changed_nothing(tmp_path, run_main):
    path = state_file(tmp_path, late_globals={'read_only': 0})
    res = run_main(Server({}, globals_=GLOBALS, fail={'SET GLOBAL': 1227}),
                   phase='finish', state_file=path)
    assert res['failure'] == dict(step='finish', side='replica', code='statement_error_1227',
                                  changed_nothing=True, message=res['failure']['message'])
    assert res['msg'] == ('replica_local finish: SET GLOBAL read_only = %s failed on '
                          'root@localhost: (1227) refused')
    assert os.path.exists(path)
    # The state file's content is the restore's to say, in any phase.
    (tmp_path / 'state.json').write_text('{}')
    res = run_main(Server({}, globals_=GLOBALS), phase='finish',
                   state_file=path)
    assert (res['failure']['step'], res['failure']['code']) == ('finish', 'bad_state_file')
    assert res['msg'] == ('replica_local restore: %s: not a reseed replica_local state file of '
                          'version 1; remove it and rebuild again' % path)


def test_a_refused_login_fails_the_capture_having_changed_nothing(tmp_path, run_main):
    login = DbError('cannot connect to MariaDB as root@socket /x: (1045) Access denied', 1045)
    res = run_main(login, phase='capture', digest_key='run-key', source_digests={},
                   state_file=str(tmp_path / 'state.json'))
    assert res['failure'] == dict(step='capture', side='replica', code='login',
                                  changed_nothing=True, message=str(login))
    assert res['msg'] == 'replica_local capture: ' + str(login)
    assert res['queries'] == [] and res['changed'] is False
