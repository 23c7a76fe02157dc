# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import checksum as ck


def test_identifiers_are_quoted_whatever_their_name():
    assert ck.quote_ident('we`ird name') == '`we``ird name`'
    sql = ck.checksum_sql('db`1', 't', ['a', 'b`c'])
    assert 'FROM `db``1`.`t`' in sql
    assert 'CAST(`b``c` AS BINARY)' in sql and 'ISNULL(`a`)' in sql


def test_checksum_sql_needs_columns():
    with pytest.raises(ValueError, match='no columns'):
        ck.checksum_sql('d', 't', [])


def test_tables_sql_parameters():
    sql, args = ck.tables_sql(['shop'], ['mysql', 'sys'])
    assert sql.count('%s') == 3 and args == ['shop', 'mysql', 'sys']
    sql, args = ck.tables_sql(None, [])
    assert '%s' not in sql and args == []


def test_split_tables_by_engine():
    ok, skipped = ck.split_tables([{'db': 'a', 'tbl': 'x', 'engine': 'InnoDB'},
                                   {'db': 'a', 'tbl': 'y', 'engine': 'MyISAM'}])
    assert ok == {'a.x': ('a', 'x')}
    assert 'MyISAM' in skipped['a.y']


def test_compare_equal_and_different():
    p = {'a.x': (10, 123), 'a.y': (1, 5), 'a.p': (0, 0)}
    r = {'a.x': (10, 123), 'a.y': (1, 6), 'a.r': (3, 3)}
    res = ck.compare(p, r)
    assert not res['equal'] and res['tables'] == 2
    assert res['mismatches'] == [{'table': 'a.y', 'primary_rows': 1, 'replica_rows': 1,
                                  'primary_checksum': '5', 'replica_checksum': '6'}]
    assert res['only_on_primary'] == ['a.p'] and res['only_on_replica'] == ['a.r']
    line = ck.describe(res)
    assert '1 of 2 tables differ (a.y)' in line and 'missing on the replica: a.p' in line
    same = ck.compare({'a.x': (1, 2)}, {'a.x': ('1', '2')})
    assert same['equal'] and ck.describe(same) == '1 tables equal'


@pytest.mark.parametrize('cur,target,reached', [
    (('mysql-bin.000002', 100), ('mysql-bin.000002', 100), True),
    (('mysql-bin.000002', 99), ('mysql-bin.000002', 100), False),
    (('mysql-bin.000010', 4), ('mysql-bin.000009', 5000), True),
    (('mysql-bin.000009', 4), ('mysql-bin.000010', 4), False),
    ((None, None), ('mysql-bin.000001', 4), False),
    (('mysql-bin.000003', '120'), ('mysql-bin.000003', 120), True),
])
def test_position_reached(cur, target, reached):
    assert ck.position_reached(cur[0], cur[1], target[0], target[1]) is reached


def test_refusal_says_why_a_replica_cannot_be_checked():
    assert 'no replication connection' in ck.refusal(None, 'east')
    broken = {'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1062', 'Last_SQL_Error': 'dup'}
    assert 'SQL error 1062: dup' in ck.refusal(broken, '') and 'heal it' in ck.refusal(broken, '')
    assert ck.refusal({'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '0'}, '') is None
    assert ck.refusal({'Slave_SQL_Running': 'Yes', 'Last_SQL_Errno': 0}, '') is None


@pytest.mark.parametrize('io,sql,threads', [
    ('Yes', 'Yes', ['IO_THREAD', 'SQL_THREAD']),
    ('Connecting', 'Yes', ['IO_THREAD', 'SQL_THREAD']),
    ('Preparing', 'No', ['IO_THREAD']),
    ('No', 'Yes', ['SQL_THREAD']),
    ('No', 'No', []),
])
def test_running_threads_as_found(io, sql, threads):
    assert ck.running_threads({'Slave_IO_Running': io, 'Slave_SQL_Running': sql}) == threads


def test_a_scan_goes_through_json_and_back():
    import json
    sums = {'b.y': (2, 18446744073709551615), 'a.x': (0, 0)}
    entries = json.loads(json.dumps(ck.scan_list(sums)))
    assert entries == [['a.x', 0, '0'], ['b.y', 2, '18446744073709551615']]
    assert ck.scan_sums(entries) == sums
    assert ck.scan_sums([]) == {} and ck.scan_sums(None) == {}


@pytest.mark.parametrize('entry', [['a.x', 1], 'a.x', ['a.x', 'many', '1'], ['a.x', 1, None]])
def test_a_malformed_scan_is_refused(entry):
    with pytest.raises(ValueError, match='not a \\[table, rows, checksum\\] entry'):
        ck.scan_sums([entry])


def test_verdict_of_a_replica_against_the_primarys_scan():
    snap = {'gtid': '0-1-42', 'binlog_file': 'mysql-bin.000002', 'binlog_pos': 900}
    primary = ck.scan_sums([['a.x', 10, '123'], ['a.y', 1, '5']])
    res = ck.verdict(snap, primary, {'a.m': 'MyISAM'}, {'a.x': (10, 123), 'a.y': (1, 5)},
                     {'a.n': 'Aria'})
    assert res['equal'] and res['msg'] == '2 tables equal at 0-1-42'
    assert res['skipped_tables'] == {'a.m': 'MyISAM', 'a.n': 'Aria'}
    assert res['checksums'] == {'a.x': {'rows': 10, 'checksum': '123'},
                                'a.y': {'rows': 1, 'checksum': '5'}}
    assert (res['gtid'], res['binlog_file'], res['binlog_pos']) == ('0-1-42', 'mysql-bin.000002', 900)
    res = ck.verdict(dict(snap, gtid=''), primary, {}, {'a.x': (9, 123)}, {})
    assert not res['equal'] and res['msg'] == ('1 of 1 tables differ (a.x); missing on the '
                                               'replica: a.y at mysql-bin.000002:900')
