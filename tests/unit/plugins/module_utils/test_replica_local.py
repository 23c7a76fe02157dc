# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import replica_local as rl

CREATE = "CREATE USER `mon`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A8784ACC5C88D92E46588CCA3C3'"
GRANTS = ["GRANT PROCESS ON *.* TO `mon`@`%`", "GRANT SELECT ON `db`.* TO `mon`@`%`"]


def test_digest_is_keyed_and_ignores_the_order_of_grants():
    a = rl.account_digest('k1', CREATE, GRANTS)
    assert a == rl.account_digest('k1', CREATE, list(reversed(GRANTS)))
    assert a != rl.account_digest('k2', CREATE, GRANTS)
    assert a != rl.account_digest('k1', CREATE.replace('2B6', '3B6'), GRANTS)
    assert a != rl.account_digest('k1', CREATE, GRANTS[:1])
    assert '2B602296' not in a


def test_local_accounts_are_those_the_source_lacks_or_holds_otherwise():
    replica = {'mon@%': 'a', 'app@%': 'b', 'root@localhost': 'c', 'mariadb.sys@localhost': 'x',
               'exporter@10.0.0.5': 'd'}
    source = {'mon@%': 'a', 'app@%': 'B', 'root@localhost': 'C', 'mariadb.sys@localhost': 'y'}
    assert rl.local_accounts(replica, source, skip=['root@localhost']) == [
        'app@%', 'exporter@10.0.0.5']


def test_account_name_splits_nothing_and_quotes_nothing():
    assert rl.account_name('mon', '10.%') == 'mon@10.%'


def test_connection_settings_only_what_differs_from_a_new_connection():
    row = {'SQL_Delay': 30, 'Connect_Retry': 60, 'Slave_heartbeat_period': 7.5,
           'Replicate_Ignore_Server_Ids': '3, 4', 'Replicate_Do_Domain_Ids': '',
           'Replicate_Ignore_Domain_Ids': '2', 'Master_SSL_Allowed': 'No',
           'Master_SSL_CA_File': '', 'Master_SSL_Cert': '', 'Master_SSL_Key': '',
           'Master_SSL_Verify_Server_Cert': 'No', 'Master_Host': '10.0.0.1'}
    assert rl.connection_settings(row, 60) == {
        'primary_delay': 30, 'primary_heartbeat_period': 7.5, 'ignore_server_ids': [3, 4],
        'ignore_domain_ids': [2]}
    # The heartbeat at its default (slave_net_timeout / 2) is not carried.
    assert 'primary_heartbeat_period' not in rl.connection_settings(
        dict(row, Slave_heartbeat_period=30.0), 60)


def test_connection_settings_keep_tls():
    row = {'Master_SSL_Allowed': 'Yes', 'Master_SSL_CA_File': '/etc/mysql/ca.pem',
           'Master_SSL_Verify_Server_Cert': 'Yes', 'Slave_heartbeat_period': 30.0}
    assert rl.connection_settings(row, 60) == {
        'primary_ssl': True, 'primary_ssl_ca': '/etc/mysql/ca.pem',
        'primary_ssl_verify_server_cert': True}


def test_other_connections():
    rows = [{'Connection_name': ''}, {'Connection_name': 'eu'}, {'Connection_name': 'b'}]
    assert rl.other_connections(rows) == ['b', 'eu']
    assert rl.other_connections(rows[:1]) == []


def test_globals_to_restore_only_what_differs_and_what_the_server_knows():
    saved = {'read_only': 1, 'replicate_do_db': 'a,b', 'slave_parallel_threads': 4,
             'gone_in_this_version': 'x'}
    current = {'read_only': 1, 'replicate_do_db': '', 'slave_parallel_threads': 0}
    assert rl.globals_to_restore(saved, current) == {'replicate_do_db': 'a,b',
                                                     'slave_parallel_threads': 4}


def test_enabled_events_and_their_statement_keep_the_definer():
    rows = [{'EVENT_SCHEMA': 'db', 'EVENT_NAME': 'tick', 'DEFINER': 'app@10.%',
             'STATUS': 'ENABLED'},
            {'EVENT_SCHEMA': 'db', 'EVENT_NAME': 'old', 'DEFINER': 'app@%',
             'STATUS': 'DISABLED'},
            {'EVENT_SCHEMA': 'db', 'EVENT_NAME': 'done', 'DEFINER': 'app@%',
             'STATUS': 'SLAVESIDE_DISABLED'}]
    events = rl.enabled_events(rows)
    assert events == [('db', 'tick', 'app@10.%')]
    sql, args = rl.disable_event_sql(*events[0])
    assert sql == 'ALTER DEFINER = %s@%s EVENT `db`.`tick` DISABLE ON SLAVE'
    assert args == ['app', '10.%']
    # A user name with an @ in it: the host is after the last one.
    assert rl.disable_event_sql('d', 'e', 'a@b@h')[1] == ['a@b', 'h']


def test_event_identifiers_are_quoted():
    sql, args = rl.disable_event_sql('we`ird', 'e`; DROP', 'root@localhost')
    assert '`we``ird`.`e``; DROP`' in sql


def test_scheduler_to_restore():
    assert rl.scheduler_to_restore('ON', 'OFF') == 'ON'
    assert rl.scheduler_to_restore('OFF', 'OFF') is None
    assert rl.scheduler_to_restore('DISABLED', 'OFF') is None  # not settable at runtime
    assert rl.scheduler_to_restore('ON', 'DISABLED') is None
    assert rl.scheduler_to_restore('ON', 'ON') is None


def test_restore_statements_drop_then_create_from_the_text_read():
    account = {'user': 'mon', 'host': '%', 'create': CREATE, 'grants': GRANTS}
    statements = rl.restore_statements(account)
    assert statements[0] == ('DROP USER IF EXISTS %s@%s', ['mon', '%'])
    assert statements[1] == (CREATE, None)
    assert [s for s, a in statements[2:]] == GRANTS
    assert rl.same_definition(account, CREATE, list(reversed(GRANTS)))
    assert not rl.same_definition(account, CREATE, GRANTS[:1])


def test_state_round_trip_and_foreign_files_refused():
    text = rl.state_text({'accounts': [], 'globals': {'read_only': 1}})
    assert rl.load_state(text)['globals'] == {'read_only': 1}
    with pytest.raises(ValueError):
        rl.load_state(json.dumps({'version': 99}))
    with pytest.raises(ValueError):
        rl.load_state('[]')


def test_the_servers_upgrade_is_recognised_by_its_program():
    assert rl.is_upgrade(b'/usr/bin/mysql_upgrade\0--defaults-extra-file=/etc/mysql/debian.cnf\0')
    assert rl.is_upgrade(b'/bin/bash\0/usr/bin/mariadb-upgrade\0')
    assert rl.is_upgrade(b'mariadb-upgrade\0')
    assert not rl.is_upgrade(b'/usr/sbin/mariadbd\0--basedir=/usr\0')
    assert not rl.is_upgrade(b'/usr/bin/mariadb\0-e\0SELECT 1\0')
    assert not rl.is_upgrade(b'')
