# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import change_master as cm


def test_statement_values_are_parameters_and_the_password_secret():
    sql, args, secret = cm.statement('eu', {'primary_host': 'db1', 'primary_port': 3306,
                                            'primary_ssl': True, 'use_gtid': 'slave_pos'},
                                     password="p'w\\x")
    assert sql == ('CHANGE MASTER %s TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_SSL = %s, '
                   'MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos')
    assert args == ['eu', 'db1', 3306, 1, "p'w\\x"] and secret == (4,)
    assert "p'w" not in sql


def test_file_position_statement():
    sql, args, secret = cm.statement('', {'use_gtid': 'no'}, log_file='mysql-bin.000002',
                                     log_pos='4711')
    assert sql.endswith('MASTER_LOG_FILE = %s, MASTER_LOG_POS = %s, MASTER_USE_GTID = no')
    assert args == ['', 'mysql-bin.000002', 4711] and secret == ()


def test_use_gtid_is_only_ever_a_known_keyword():
    with pytest.raises(ValueError):
        cm.statement('', {'use_gtid': 'slave_pos; DROP TABLE x'})
    with pytest.raises(ValueError, match='nothing'):
        cm.statement('', {})


def test_current_wanted_and_differences():
    current = cm.current_settings({'Master_Host': 'db1', 'Master_Port': '3306',
                                   'Master_User': 'repl', 'Connect_Retry': '60',
                                   'Master_SSL_Allowed': 'No', 'SQL_Delay': '0',
                                   'Using_Gtid': 'Slave_Pos'})
    assert current['primary_port'] == 3306 and current['primary_ssl'] is False
    assert current['use_gtid'] == 'slave_pos'
    wanted = cm.wanted_settings({'primary_host': 'db1', 'primary_port': 3306,
                                 'primary_user': 'repl', 'primary_password': 'x',
                                 'primary_ssl': None}, 'slave_pos')
    assert 'primary_password' not in wanted and 'primary_ssl' not in wanted
    assert cm.differences(current, wanted) == {}
    assert cm.differences(current, cm.wanted_settings({'primary_host': 'db2'}, 'no')) == {
        'primary_host': ('db1', 'db2'), 'use_gtid': ('slave_pos', 'no')}
    assert cm.shown({'a': 1}, password_changes=True) == {'a': 1, 'primary_password': cm.MASK}


def test_heartbeat_compares_to_the_millisecond():
    current = cm.current_settings({'Slave_heartbeat_period': '7.500', 'Using_Gtid': 'Slave_Pos'})
    assert current['primary_heartbeat_period'] == 7.5
    same = cm.wanted_settings({'primary_heartbeat_period': 7.5000001}, 'slave_pos')
    assert cm.differences(current, same) == {}
    other = cm.wanted_settings({'primary_heartbeat_period': 10}, 'slave_pos')
    assert cm.differences(current, other) == {'primary_heartbeat_period': (7.5, 10.0)}


def test_the_mode_asked_for_or_kept():
    # Given: as given, whatever the connection uses.
    assert cm.use_gtid_for('gtid', 'current_pos') == 'slave_pos'
    assert cm.use_gtid_for('file_pos', 'slave_pos') == 'no'
    # Implied by the coordinates given.
    assert cm.use_gtid_for(None, 'slave_pos', log_file='mysql-bin.000002') == 'no'
    assert cm.use_gtid_for(None, 'no', gtid_pos='0-1-5') == 'slave_pos'
    assert cm.use_gtid_for(None, 'current_pos', gtid_pos='0-1-5') == 'current_pos'
    # Neither: kept; a new connection uses slave_pos.
    for kept in ('no', 'current_pos', 'slave_pos'):
        assert cm.use_gtid_for(None, kept) == kept
    assert cm.use_gtid_for(None, None) == 'slave_pos'


def test_the_heartbeat_period_is_always_named():
    current = cm.current_settings({'Slave_heartbeat_period': '7.500', 'Using_Gtid': 'Slave_Pos'})
    sql, args, secret = cm.statement('', cm.naming_heartbeat({'use_gtid': 'slave_pos'}, current))
    assert sql == 'CHANGE MASTER %s TO MASTER_HEARTBEAT_PERIOD = %s, MASTER_USE_GTID = slave_pos'
    assert args == ['', 7.5] and secret == ()
    # A period asked for wins; a connection that shows none (new) gets none.
    assert cm.naming_heartbeat({'primary_heartbeat_period': 2.0}, current) == {
        'primary_heartbeat_period': 2.0}
    assert cm.naming_heartbeat({'primary_port': 3307}, {}) == {'primary_port': 3307}


def test_id_lists_read_compare_and_write_as_tuples():
    current = cm.current_settings({'Replicate_Ignore_Server_Ids': '4, 3', 'Using_Gtid': 'Slave_Pos',
                                   'Replicate_Do_Domain_Ids': '',
                                   'Replicate_Ignore_Domain_Ids': '2'})
    assert current['ignore_server_ids'] == [3, 4] and current['do_domain_ids'] == []
    wanted = cm.wanted_settings({'ignore_server_ids': [4, 3], 'ignore_domain_ids': [],
                                 'do_domain_ids': None}, 'slave_pos')
    assert wanted['ignore_server_ids'] == [3, 4] and 'do_domain_ids' not in wanted
    assert cm.differences(current, wanted) == {'ignore_domain_ids': ([2], [])}
    sql, args, secret = cm.statement('', {'ignore_server_ids': [4, 3], 'ignore_domain_ids': []})
    assert sql == 'CHANGE MASTER %s TO IGNORE_SERVER_IDS = %s, IGNORE_DOMAIN_IDS = %s'
    assert args == ['', (3, 4), ()]
