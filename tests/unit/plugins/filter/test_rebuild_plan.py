# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.reseed.mariadb.plugins.filter.rebuild_plan import FilterModule, rebuild_plan

UNIT = {'manager': 'systemd', 'unit': 'mariadb.service', 'outside_unit': None,
        'sandbox_problem': None}


def diagnosis(state='healthy', needs=False, **kw):
    base = dict(state=state, needs_rebuild=needs, reason='%s (test)' % state,
                connections=[{'connection_name': '', 'ssl_allowed': 'No'}],
                datadir='/var/lib/mysql/', datadir_mount={'mount_point': False},
                server_pids=[], server_service=dict(UNIT))
    base.update(kw)
    return base


def plan(diag, primary=None, host='r1', source='db1', **kw):
    return rebuild_plan(diag, primary or {'tls': False}, host, source, **kw)


def test_a_healthy_replica_is_left_as_it_is_and_its_paths_known_all_the_same():
    got = plan(diagnosis())
    assert (got['rebuild'], got['why'], got['left_alone'], got['problem']) == (False, '', '', '')
    assert (got['datadir'], got['staging'], got['datadir_mount_point']) == (
        '/var/lib/mysql', '/var/lib/mysql.reseed-staging', False)
    assert got['server_service'] == UNIT and got['primary_tls'] is False


@pytest.mark.parametrize('diag, force, why', [
    (diagnosis('broken', True), False, 'diagnosis'),
    (diagnosis('not_configured'), False, 'not_configured'),
    (diagnosis(), True, 'forced'),
    (diagnosis(), 'yes', 'forced'),  # as an extra variable's word
    (diagnosis(), 'false', ''),
])
def test_why_a_replica_is_rebuilt(diag, force, why):
    got = plan(diag, force=force)
    assert (got['rebuild'], got['why']) == (bool(why), why)


def test_a_datadir_that_is_a_mount_point_gets_its_copy_inside_it():
    got = plan(diagnosis('broken', True, datadir='/data/mysql', datadir_mount={'mount_point': True}))
    assert (got['staging'], got['datadir_mount_point']) == ('/data/mysql/#sql-reseed-staging', True)


def test_a_replica_whose_server_is_down_is_left_alone_unless_forced():
    down = diagnosis('down', reason='the server is down (no mariadbd runs)')
    got = plan(down)
    assert got['rebuild'] is False and got['problem'] == ''
    assert got['left_alone'] == ('r1: the server is down (no mariadbd runs): nothing on this '
                                 'replica was touched; replica_rebuild_force=true rebuilds it '
                                 'from db1.')
    assert plan(down, force=True)['left_alone'] == ''
    hidden = diagnosis('down', reason='a mariadbd process runs (pid 41)', server_pids=[41])
    assert plan(hidden)['left_alone'].endswith('replica_rebuild_force=true would not stop '
                                               'that process either.')
    # Forced, a server that runs but does not answer is still not stopped behind its back.
    assert plan(hidden, force=True)['problem'] == (
        'r1: paths: a mariadbd process runs (pid 41); nothing was changed (a server that runs '
        'is not stopped behind its back).')


@pytest.mark.parametrize('change, words', [
    ({'server_service': dict(UNIT, outside_unit='mariadbd (pid 7) runs outside mariadb.service')},
     'r1: paths: mariadbd (pid 7) runs outside mariadb.service; nothing was changed.'),
    ({'server_service': dict(UNIT, sandbox_problem='/home/db is under /home')},
     'r1: paths: /home/db is under /home; nothing was changed.'),
    ({'datadir': ''}, "r1: paths: the replica's datadir is unknown (broken (test)): fix its "
     "option files; nothing was changed."),
    ({'datadir_mount': None}, 'r1: paths: the mount that holds the datadir /var/lib/mysql/ is '
     'unknown (replication_info could not read /proc/self/mountinfo; see its warning): '
     'nothing was changed.'),
])
def test_what_stops_a_rebuild_before_anything_changes(change, words):
    diag = diagnosis('broken', True, **change)
    assert plan(diag)['problem'] == words
    assert plan(diagnosis(**change))['problem'] == ''  # not to be rebuilt: nothing stops it


def test_a_replica_to_rebuild_that_is_the_source_of_the_copy_is_refused():
    got = plan(diagnosis('broken', True), host='r1', source='r1', source_auto=True)
    assert got['problem'].startswith('r1: this replica needs a rebuild and is the source of the '
                                     'copy (chosen by replica_rebuild_source auto')
    got = plan(diagnosis('broken', True), host='r1', source='r1')
    assert 'replica_rebuild_source: rebuild it from another source' in got['problem']


@pytest.mark.parametrize('setting, primary, own, given, tls', [
    ('auto', {'tls': False}, 'No', False, False),
    ('auto', {'tls': True}, 'No', False, True),      # the primary requires or offers it
    ('auto', {'tls': False}, 'Yes', False, True),    # the replica's own MASTER_SSL=1
    ('auto', {'tls': False}, 'No', True, True),      # a CA, certificate or key given
    ('false', {'tls': True}, 'Yes', True, False),
    (True, {'tls': False}, 'No', False, True),
])
def test_replication_over_tls_is_decided_once(setting, primary, own, given, tls):
    diag = diagnosis(connections=[{'connection_name': '', 'ssl_allowed': own},
                                  {'connection_name': 'other', 'ssl_allowed': 'Yes'}])
    got = plan(diag, primary, primary_ssl=setting, primary_ssl_given=given)
    assert got['primary_tls'] is tls


def test_bad_input_is_said():
    with pytest.raises(AnsibleFilterError, match='rebuild_plan: expects'):
        rebuild_plan('broken', {}, 'r1', 'db1')
    assert FilterModule().filters()['rebuild_plan'] is rebuild_plan
