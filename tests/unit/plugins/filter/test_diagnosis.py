# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.reseed.mariadb.plugins.filter.diagnosis import FilterModule, diagnosis
from ansible_collections.reseed.mariadb.plugins.module_utils import binlog
from ansible_collections.reseed.mariadb.plugins.module_utils import gtid as gtidlib
from ansible_collections.reseed.mariadb.plugins.module_utils import replica_status as rs

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'module_utils', 'fixtures', 'binlog')


def status(**kw):
    base = {'Connection_name': '', 'Master_Host': '10.0.0.1', 'Slave_IO_Running': 'Yes',
            'Slave_SQL_Running': 'Yes', 'Seconds_Behind_Master': '0', 'Last_IO_Errno': '0',
            'Last_SQL_Errno': '0', 'Using_Gtid': 'Slave_Pos'}
    base.update(kw)
    return rs.normalize(base)


def replica_read(binlog_state, *statuses):
    """What replication_info returns on a replica read without the primary's state."""
    conns = list(statuses) if statuses else [status()]
    state, needs, reason, conns = rs.diagnose_server(conns)
    return dict(changed=False, state=state, needs_rebuild=needs, reason=reason,
                connections=conns, gtid_binlog_state=binlog_state, datadir='/var/lib/mysql',
                server_id=12)


def test_a_replica_behind_a_primary_read_after_it_is_healthy():
    # The replica read at 0-11-500, the primary read after it at 0-11-530: no errant GTID.
    got = diagnosis(replica_read('0-11-500'), '0-11-530')
    assert (got['state'], got['needs_rebuild'], got['errant_gtids']) == ('healthy', False, [])
    assert got['datadir'] == '/var/lib/mysql'  # the rest of the read is kept


def test_a_replica_ahead_of_the_primary_in_its_own_server_id_is_diverged():
    # The primary lost its binlog tail in a crash: it restarted at 0-11-7, the replica had 37.
    got = diagnosis(replica_read('0-11-37'), '0-11-7')
    assert (got['state'], got['needs_rebuild']) == ('diverged', True)
    assert got['errant_gtids'] == ['0-11-37'] and '0-11-37' in got['reason']


def test_a_gtid_of_the_replica_own_server_id_is_errant():
    got = diagnosis(replica_read('0-11-500,0-12-3'), '0-11-530')
    assert got['state'] == 'diverged' and got['errant_gtids'] == ['0-12-3']


def test_a_network_error_is_no_verdict_on_a_replica_ahead_of_the_primary():
    # The primary's restart: the IO thread retries after 2003. Behind the primary it is a
    # network matter; ahead of it (the primary lost what the replica holds) it is divergence.
    retrying = status(Slave_IO_Running='Connecting', Last_IO_Errno='2003',
                      Last_IO_Error="Can't connect")
    got = diagnosis(replica_read('0-11-500', retrying), '0-11-530')
    assert (got['state'], got['needs_rebuild']) == ('broken', False)
    got = diagnosis(replica_read('0-11-530', retrying), '0-11-500')
    assert (got['state'], got['needs_rebuild']) == ('diverged', True), got
    assert '0-11-530' in got['reason'] and 'IO thread error 2003' in got['reason']


def test_a_replication_error_with_errant_gtids_is_broken_and_rebuilds():
    failed = status(Slave_SQL_Running='No', Last_SQL_Errno='1451')
    got = diagnosis(replica_read('0-11-500,0-12-1', failed), '0-11-530')
    assert (got['state'], got['needs_rebuild']) == ('broken', True) and '0-12-1' in got['reason']


def test_any_connection_needing_a_rebuild_is_named():
    other = status(Connection_name='eu', Slave_SQL_Running='No', Last_SQL_Errno='1062')
    got = diagnosis(replica_read('0-11-5', status(), other), '0-11-5')
    assert got['state'] == 'healthy' and got['needs_rebuild']
    assert got['reason'].startswith("connection 'eu': SQL thread error 1062")


def test_not_replicating_with_errant_gtids():
    got = diagnosis(dict(replica_read('0-12-4'), connections=[]), '0-11-9')
    assert (got['state'], got['needs_rebuild']) == ('diverged', True)
    got = diagnosis(dict(replica_read(''), connections=[]), '0-11-9')
    assert (got['state'], got['needs_rebuild']) == ('not_configured', False)


def test_a_server_that_is_down_is_passed_on_as_it_is():
    down = dict(state='down', needs_rebuild=False, reason='the server is down', connections=[],
                datadir='/var/lib/mysql', server_pids=[])
    assert diagnosis(down, '0-11-9') == down


def test_bad_input_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match='replication_info'):
        diagnosis('healthy', '0-11-9')
    with pytest.raises(AnsibleFilterError, match='cannot be read as GTIDs'):
        diagnosis(replica_read('0-11-5'), 'not-a-gtid')


def test_the_filter_is_registered():
    assert FilterModule().filters()['diagnosis'] is diagnosis


def same_gtid_reads(replica_dir, log_slave_updates=True):
    """The primary's read with binlog_restarts and the replica's fingerprints, from the real
    binlog files of tests/unit/plugins/module_utils/fixtures/binlog (test_binlog.py)."""
    def server(name):
        d = os.path.join(FIXTURES, name)
        return binlog.Binlog(sorted(os.listdir(d)), d)
    restarts = server('primary').restarts()
    primary = dict(gtid_binlog_state='0-10-10', binlog_restarts=restarts, fingerprints={})
    fps = binlog.fingerprints(server(replica_dir), [r['first_gtid'] for r in restarts],
                              gtidlib.state('0-10-10'), gtidlib.position('0-10-10'))
    return primary, dict(fingerprints=fps, log_slave_updates=log_slave_updates)


def test_a_replica_that_replicates_without_error_but_holds_other_transactions_is_diverged():
    # The primary restarted behind it and reused the numbers: no errant GTID, no error.
    primary, fps = same_gtid_reads('diverged')
    got = diagnosis(replica_read('0-10-10'), primary, fingerprints=fps)
    assert (got['state'], got['needs_rebuild'], got['errant_gtids']) == ('diverged', True, [])
    assert got['reason'].startswith('same GTID, other transaction: 0-10-6 on the primary'), got
    assert got['reason'].endswith('(rebuild)'), got
    assert got['same_gtid']['diverged'] == '0-10-6'


def test_a_replica_consistent_with_the_restarted_primary_is_healthy():
    primary, fps = same_gtid_reads('healthy')
    got = diagnosis(replica_read('0-10-10'), primary, fingerprints=fps)
    assert (got['state'], got['needs_rebuild']) == ('healthy', False), got
    assert got['same_gtid']['checked'] == ['0-10-6']


def test_a_skipped_fingerprint_read_diagnoses_by_gtids_alone():
    primary, fps = same_gtid_reads('diverged')
    skipped = {'changed': False, 'skipped': True, 'skip_reason': 'Conditional result was False'}
    got = diagnosis(replica_read('0-10-10'), primary, fingerprints=skipped)
    assert (got['state'], 'same_gtid' in got) == ('healthy', False)


def test_a_check_that_cannot_be_made_is_said():
    primary, fps = same_gtid_reads('healthy', log_slave_updates=False)
    fps['fingerprints']['0-10-6'].update(found=False, reason='not in this server\'s binlog')
    got = diagnosis(replica_read('0-10-10'), primary, fingerprints=fps)
    assert (got['state'], got['needs_rebuild']) == ('healthy', False)
    assert got['reason'].endswith('; the same-GTID check could not be made (0-10-6: not in this '
                                  'server\'s binlog): turn on log_slave_updates on the replica, '
                                  'or compare the data (playbooks/replica_status.yml with '
                                  'replica_status_checksum=true, docs/VERIFY.md)'), got['reason']


def test_a_broken_replica_that_also_diverged_says_both():
    primary, fps = same_gtid_reads('diverged')
    read = replica_read('0-10-10', status(Slave_SQL_Running='No', Last_SQL_Errno='1146',
                                          Last_SQL_Error='Table x.y does not exist'))
    got = diagnosis(read, primary, fingerprints=fps)
    assert got['state'] == 'diverged' and '; also SQL thread error 1146' in got['reason'], got


def test_a_replica_ahead_that_also_diverged_says_both():
    # Ahead of the primary (errant 0-10-11) and another transaction under 0-10-6, its IO
    # thread waiting with the restart's error: the first GTID that differs, then the rest.
    primary, fps = same_gtid_reads('diverged')
    read = replica_read('0-10-11', status(Slave_IO_Running='Connecting', Last_IO_Errno='2003',
                                          Last_IO_Error="Can't connect to server"))
    got = diagnosis(read, primary, fingerprints=fps)
    assert (got['state'], got['needs_rebuild'], got['errant_gtids']) == (
        'diverged', True, ['0-10-11']), got
    assert got['reason'].startswith('same GTID, other transaction: 0-10-6 on the primary'), got
    assert '(rebuild); also ' in got['reason'] and 'IO thread error 2003' in got['reason'], got
