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
