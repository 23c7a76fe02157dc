# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import replica_status as rs


def row(**kw):
    base = {'Connection_name': '', 'Master_Host': '10.0.0.1', 'Master_Port': '3306',
            'Slave_IO_Running': 'Yes', 'Slave_SQL_Running': 'Yes',
            'Seconds_Behind_Master': '0', 'Last_IO_Errno': '0', 'Last_IO_Error': '',
            'Last_SQL_Errno': '0', 'Last_SQL_Error': '', 'Using_Gtid': 'Slave_Pos'}
    base.update(kw)
    return rs.normalize(base)


def test_normalize_types_and_nulls():
    s = row(Seconds_Behind_Master=None, Master_Port='3307')
    assert s['seconds_behind'] is None and s['primary_port'] == 3307
    assert s['last_io_errno'] == 0 and s['connection_name'] == ''
    assert rs.normalize({})['io_running'] == ''


@pytest.mark.parametrize('kw,state,needs', [
    ({}, 'healthy', False),
    ({'Seconds_Behind_Master': '600'}, 'lagging', False),
    ({'Slave_IO_Running': 'No', 'Slave_SQL_Running': 'No', 'Seconds_Behind_Master': None},
     'stopped', False),
    ({'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1032', 'Last_SQL_Error': 'row not found'},
     'broken', True),
    ({'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1062'}, 'broken', True),
    ({'Slave_IO_Running': 'No', 'Last_IO_Errno': '1236', 'Last_IO_Error': 'not in binlog'},
     'broken', True),
    ({'Slave_IO_Running': 'Connecting', 'Last_IO_Errno': '1236'}, 'broken', True),
    ({'Slave_IO_Running': 'Connecting', 'Last_IO_Errno': '1045', 'Last_IO_Error': 'denied'},
     'broken', False),
    ({'Slave_IO_Running': 'Connecting', 'Last_IO_Errno': '2003'}, 'broken', False),
    ({'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1451'}, 'broken', False),
])
def test_diagnosis_follows_the_rule(kw, state, needs):
    got = rs.diagnose(row(**kw))
    assert got[:2] == (state, needs), got


def test_reasons_say_what_to_do():
    state, needs, reason = rs.diagnose(row(**{'Slave_IO_Running': 'Connecting',
                                              'Last_IO_Errno': '1045',
                                              'Last_IO_Error': 'Access denied'}))
    assert 'IO thread error 1045: Access denied' in reason and 'credentials' in reason
    assert 'look at the error first' in rs.diagnose(row(**{'Slave_SQL_Running': 'No',
                                                           'Last_SQL_Errno': '1451'}))[2]


def test_errant_gtids_make_diverged_even_while_running():
    state, needs, reason = rs.diagnose(row(), errant=[(0, 12, 5)])
    assert (state, needs) == ('diverged', True) and '0-12-5' in reason
    state, needs, reason = rs.diagnose(row(**{'Slave_SQL_Running': 'No',
                                              'Last_SQL_Errno': '1451'}), errant=[(0, 12, 5)])
    assert (state, needs) == ('broken', True)


def test_a_delayed_replica_is_lagging_only_past_its_delay():
    # SQL_Delay (MASTER_DELAY) 3600: an hour behind is what was asked for.
    state, needs, reason = rs.diagnose(row(Seconds_Behind_Master='3590', SQL_Delay='3600'))
    assert (state, needs) == ('healthy', False) and 'MASTER_DELAY 3600' in reason
    state, needs, reason = rs.diagnose(row(Seconds_Behind_Master='3700', SQL_Delay='3600'))
    assert (state, needs) == ('lagging', False) and '100 more than its MASTER_DELAY' in reason
    assert rs.diagnose(row(Seconds_Behind_Master='61'))[0] == 'lagging'


def test_not_configured_and_overrides():
    assert rs.diagnose(None) == ('not_configured', False, 'replication is not configured')
    assert rs.diagnose(row(**{'Slave_SQL_Running': 'No', 'Last_SQL_Errno': '1062'}),
                       rebuild_sql_errors=())[:2] == ('broken', False)
    assert rs.diagnose(row(Seconds_Behind_Master='30'), lag_seconds=10)[0] == 'lagging'


def test_diagnose_down_says_whether_a_process_runs():
    state, needs, reason = rs.diagnose_down('cannot connect ... (2003)', [])
    assert (state, needs) == ('down', False)
    assert reason == 'the server is down, no mariadbd process runs (cannot connect ... (2003))'
    state, needs, reason = rs.diagnose_down('(2003)', [41, 42])
    assert (state, needs) == ('down', False)
    assert 'a mariadbd process runs (pid 41, 42) and does not accept connections' in reason
