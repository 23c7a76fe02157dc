# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checksum module's phases against fake servers: what a fleet's check runs on a
replica and on the primary, and that a paused replica is resumed as found on every path."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError
from ansible_collections.reseed.mariadb.plugins.modules import checksum as mod

STATUS = {'Connection_name': '', 'Slave_IO_Running': 'Yes', 'Slave_SQL_Running': 'Yes',
          'Last_SQL_Errno': '0', 'Last_SQL_Error': '', 'Using_Gtid': 'Slave_Pos',
          'Slave_heartbeat_period': '7.500'}
TABLES = [{'db': 'shop', 'tbl': 'orders', 'engine': 'InnoDB'},
          {'db': 'shop', 'tbl': 'legacy', 'engine': 'MyISAM'}]


class FakeDb(object):
    """Answers the statements the module sends; `sums` is what every checksum returns."""

    def __init__(self, status=None, sums=(100, 123), fail=None):
        self.status = dict(STATUS, **(status or {}))
        self.sums, self.fail, self.queries = sums, fail or {}, []

    def query(self, sql, args=None, secret_args=()):
        self.queries.append(sql % tuple(repr(a) for a in args) if args else sql)
        for prefix, error in self.fail.items():
            if sql.startswith(prefix):
                raise error
        if sql.startswith('SHOW ALL SLAVES STATUS'):
            return [dict(self.status)]
        if sql.startswith('STOP SLAVE'):
            self.status.update(Slave_IO_Running='No', Slave_SQL_Running='No')
        if sql.startswith('START SLAVE'):
            self.status['Slave_IO_Running'] = 'Yes'
            self.status['Slave_SQL_Running'] = 'No' if 'UNTIL' in sql else 'Yes'
        if 'information_schema.TABLES' in sql:
            return TABLES
        if 'information_schema.COLUMNS' in sql:
            return [{'col': 'id'}, {'col': 'v'}]
        if 'information_schema.STATISTICS' in sql:
            return [{'col': 'id'}]
        if 'LIMIT 1 OFFSET' in sql:
            return []  # fewer rows than a chunk: the table is one chunk
        if 'BIT_XOR' in sql:
            return [{'row_count': self.sums[0], 'checksum': self.sums[1]}]
        if sql.startswith('SHOW STATUS'):
            return [{'Variable_name': 'Binlog_snapshot_file', 'Value': 'mysql-bin.000002'},
                    {'Variable_name': 'Binlog_snapshot_position', 'Value': '900'}]
        if 'BINLOG_GTID_POS' in sql:
            return [{'gtid': '0-1-42'}]
        if 'MASTER_GTID_WAIT' in sql:
            return [{'r': 0}]
        return []


class FakeModule(object):
    def __init__(self, **params):
        self.check_mode = False
        self.params = dict(connection_name='', databases=None, catch_up_timeout=5,
                           exclude_databases=['mysql'], fail_on_mismatch=True, phase='all',
                           paused=None, primary_scan=None, chunked=True, chunk_seconds=0.5,
                           max_snapshot_seconds=5.0, max_rows_per_second=0)
        self.params.update(params)


def scan():
    out = {}
    mod.scan_primary(FakeModule(phase='primary'), FakeDb(), out)
    return out['scan']


def test_pause_stops_replication_and_says_how_it_ran():
    db, out = FakeDb({'Slave_SQL_Running': 'No'}), {}
    mod.pause(FakeModule(phase='pause'), db, out)
    assert out['paused']['threads'] == ['IO_THREAD'] and out['paused']['since'] > 0
    assert db.queries == ['SHOW ALL SLAVES STATUS', "STOP SLAVE ''"]


def test_pause_refuses_a_broken_replica_and_stops_nothing():
    db = FakeDb({'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1062'})
    with pytest.raises(mod.Failed, match='SQL error 1062'):
        mod.pause(FakeModule(phase='pause'), db, {})
    assert db.queries == ['SHOW ALL SLAVES STATUS']


def test_the_primarys_scan_is_its_rounds_and_a_short_list():
    db, out = FakeDb(), {}
    mod.scan_primary(FakeModule(phase='primary'), db, out)
    s = out['scan']
    assert (s['gtid'], s['binlog_file'], s['binlog_pos']) == ('0-1-42', 'mysql-bin.000002', 900)
    assert s['checksums'] == [['shop.orders', 100, '123']]
    assert s['rounds'] == [dict(gtid='0-1-42', binlog_file='mysql-bin.000002', binlog_pos=900,
                                seconds=s['rounds'][0]['seconds'],
                                chunks=[['shop.orders', None, None, 100, '123']])]
    assert s['tables'] == {'shop.orders': ['shop', 'orders', ['id']]}
    assert 'MyISAM' in s['skipped_tables']['shop.legacy']
    assert out['msg'] == '1 tables checksummed on the primary, in 1 snapshots up to 0-1-42'
    # The tables' columns and keys are read before the snapshot, not inside it.
    opened = db.queries.index('START TRANSACTION WITH CONSISTENT SNAPSHOT')
    assert all('information_schema' in q for q in db.queries[:opened - 1])
    assert db.queries[-1] == 'COMMIT' and sum('BIT_XOR' in q for q in db.queries) == 1
    assert 'max_statement_time' in db.queries[-2]


def test_compare_runs_up_to_the_primarys_gtid_and_resumes_as_paused():
    db, out = FakeDb({'Slave_IO_Running': 'No', 'Slave_SQL_Running': 'No'}), {}
    mod.compare_with_primary(FakeModule(phase='compare', primary_scan=scan(),
                                        paused={'threads': ['IO_THREAD', 'SQL_THREAD'],
                                                'since': 1.0}), db, out)
    assert out['equal'] and out['msg'] == '1 tables equal at 0-1-42' and out['resumed']
    assert out['replica_paused_seconds'] > 1000
    assert "START SLAVE '' UNTIL master_gtid_pos = '0-1-42'" in db.queries
    assert db.queries[-2:] == ["STOP SLAVE ''", "START SLAVE ''"]


def test_compare_finds_a_different_table():
    db, out = FakeDb(sums=(99, 123)), {}
    mod.compare_with_primary(FakeModule(phase='compare', primary_scan=scan(),
                                        paused={'threads': ['SQL_THREAD']}), db, out)
    assert not out['equal'] and out['mismatches'][0]['replica_rows'] == 99
    assert db.queries[-1] == "START SLAVE '' SQL_THREAD"


@pytest.mark.parametrize('primary_scan,fail,message', [
    ({'gtid': '', 'binlog_file': None}, {}, 'no scan of the primary'),
    (dict(gtid='0-1-42', binlog_file='f.1', binlog_pos=4, rounds=[{'chunks': [['x']]}]), {},
     'primary_scan: not a round'),
    (None, {'SELECT MASTER_GTID_WAIT': DbError('lost', 2013)}, 'lost'),
    (None, {'SELECT COUNT(*)': DbError('gone', 2013)}, 'gone'),
])
def test_a_failed_compare_resumes_the_replica_as_it_was_paused(primary_scan, fail, message):
    """Only the IO thread ran: the SQL thread stays stopped, and a CHANGE MASTER with the
    heartbeat period as it was clears any UNTIL first."""
    db, out = FakeDb(fail=fail), {}
    module = FakeModule(phase='compare', primary_scan=primary_scan or scan(),
                        paused={'threads': ['IO_THREAD']})
    with pytest.raises((mod.Failed, DbError), match=message):
        mod.compare_with_primary(module, db, out)
    assert out['resumed'] is True
    assert db.queries[-3] == "STOP SLAVE ''"
    assert db.queries[-2].startswith('CHANGE MASTER') and '7.5' in db.queries[-2]
    assert db.queries[-1] == "START SLAVE '' IO_THREAD"


def test_a_failed_resume_is_not_reported_as_resumed():
    db, out = FakeDb(fail={'START SLAVE': DbError('read only', 1290)}), {}
    with pytest.raises(mod.Failed, match='read only') as failed:
        mod.resume_paused(FakeModule(phase='resume', paused={'threads': ['IO_THREAD', 'SQL_THREAD']}),
                          db, out)
    assert 'resumed' not in out
    # Paused before the phase, paused after it: as it was.
    assert (failed.value.code, failed.value.changed_nothing) == ('resume_failed', True)


def test_resume_starts_what_ran_and_nothing_else():
    db, out = FakeDb(), {}
    mod.resume_paused(FakeModule(phase='resume', paused={'threads': []}), db, out)
    assert out['resumed'] and out['msg'] == 'replication resumed (nothing ran)'
    assert db.queries[-1].startswith('CHANGE MASTER')
    with pytest.raises(mod.Failed, match='no replication connection'):
        mod.resume_paused(FakeModule(phase='resume', connection_name='east',
                                     paused={'threads': []}), db, {})


# ---- main(): the failure in fields, the msg as it was --------------------------------------

class Server(FakeDb):
    """FakeDb as main() connects to it; refuse: statements (exact) that fail."""

    def __init__(self, status=None, sums=(100, 123), refuse=None):
        FakeDb.__init__(self, status, sums)
        self.refuse = refuse or {}

    def query(self, sql, args=None, secret_args=()):
        if sql in self.refuse:
            self.queries.append(sql)
            raise self.refuse[sql]
        return FakeDb.query(self, sql, args, secret_args)

    def close(self):
        pass


@pytest.fixture
def run_main(module_main, fake_connection):
    """A function (replica, source, **args) -> main()'s result dict (the primary at db1)."""
    def run_it(replica, source, **args):
        fake_connection(mod, replica, source)
        return module_main(mod, dict(dict(primary=dict(login_host='db1'),
                                          exclude_databases=['mysql'], catch_up_timeout=5),
                                     **args))
    return run_it


def test_a_broken_replica_is_refused_as_the_replicas_having_changed_nothing(run_main):
    replica = Server({'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1062',
                      'Last_SQL_Error': 'Duplicate entry'})
    res = run_main(replica, Server())
    assert res['failure'] == dict(step='all', side='replica', code='replication_broken',
                                  changed_nothing=True, message=res['msg'][len('checksum: '):])
    assert res['msg'] == ('checksum: replication is broken on the replica (SQL error 1062: '
                          'Duplicate entry): heal it before checking the data')
    assert res['changed'] is False and res['queries'] == ['SHOW ALL SLAVES STATUS']


def test_a_primary_out_of_reach_is_the_links_and_no_login_host_the_sources(run_main):
    lost = DbError("cannot connect to MariaDB as reseed_verify@db1:3306: (2003) Can't connect",
                   2003)
    res = run_main(Server(), lost)
    assert res['failure'] == dict(step='all', side='link', code='login', changed_nothing=True,
                                  message=str(lost))
    assert res['msg'] == 'checksum: ' + str(lost)
    res = run_main(Server(), Server(), phase='primary', primary=None)
    assert res['failure'] == dict(step='primary', side='source', code='options',
                                  changed_nothing=True, message=res['msg'][len('checksum: '):])
    assert res['msg'] == ('checksum: primary.login_host is required (the primary as this host '
                          'reaches it)')
    assert res['queries'] == []
    # Refused by the primary inside its snapshot: the source's.
    denied = DbError('SHOW STATUS failed on reseed_verify@db1:3306: (1227) denied', 1227)
    res = run_main(Server(), Server(refuse={
        "SHOW STATUS LIKE 'binlog_snapshot_%'": denied}), phase='primary')
    assert (res['failure']['side'], res['failure']['code']) == ('source', 'statement_error_1227')


def test_a_resume_that_fails_leaves_replication_stopped_and_says_so(run_main):
    replica = Server(refuse={'START SLAVE %s': DbError('START SLAVE failed on root@localhost: '
                                                       '(1290) read only', 1290)})
    res = run_main(replica, Server())
    assert res['failure'] == dict(step='all', side='replica', code='resume_failed',
                                  changed_nothing=False, message=res['msg'][len('checksum: '):])
    assert res['msg'] == 'checksum: START SLAVE failed on root@localhost: (1290) read only'
    assert res['changed'] is True and 'resumed' not in res


def test_a_mismatch_fails_with_the_verdict_as_its_msg(run_main):
    res = run_main(Server(sums=(99, 123)), Server())
    assert res['failure'] == dict(step='all', side='replica', code='mismatch',
                                  changed_nothing=True, message=res['msg'])
    assert not res['equal'] and res['mismatches'][0]['replica_rows'] == 99
    assert res['changed'] is False and 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ' in res['queries']
    res = run_main(Server(sums=(99, 123)), Server(), fail_on_mismatch=False)
    assert not res.get('failed') and 'failure' not in res and res['equal'] is False
