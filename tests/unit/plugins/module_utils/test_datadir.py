# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import datadir as dd

D = '/var/lib/mysql'


def test_timestamp_is_utc_and_sortable():
    assert dd.timestamp(0) == '19700101T000000Z'
    assert re.match(r'^\d{8}T\d{6}Z$', dd.timestamp())
    assert dd.timestamp(1) < dd.timestamp(100000)


def test_old_and_failed_paths_per_layout():
    assert dd.old_path(D + '/', 'rename', 'T') == '/var/lib/mysql.reseed-old-T'
    assert dd.old_path(D, 'entries', 'T') == '/var/lib/mysql/#sql-reseed-old-T'
    assert dd.failed_path(D, 'rename', 'T') == '/var/lib/mysql.reseed-failed-T'
    assert dd.failed_path(D, 'entries', 'T') == '/var/lib/mysql/#sql-reseed-failed-T'
    # Every name kept inside a live datadir must be one the server does not list.
    assert dd.hidden_name('#sql-reseed-old-T')


def test_is_inside():
    assert dd.is_inside('/var/lib/mysql/x', D)
    assert dd.is_inside(D + '/', D)
    assert not dd.is_inside('/var/lib/mysql.reseed-staging', D)
    assert not dd.is_inside('/var/lib/mysqlx', D)


# choose_layout(datadir, staging, mount_point, same_mount, same_filesystem): the facts of
# module_utils/mounts.py (test_mounts.py), not st_dev numbers.
PLAIN = dict(mount_point=False, same_mount=True, same_filesystem=True)
MOUNTED = dict(mount_point=True, same_mount=True, same_filesystem=True)


def test_plain_datadir_sibling_staging_is_a_rename():
    assert dd.choose_layout(D, '/var/lib/mysql.reseed-staging', **PLAIN) == 'rename'


def test_plain_datadir_staging_elsewhere_is_refused():
    with pytest.raises(dd.PlanError, match='another filesystem.*/var/lib/mysql.reseed-staging'):
        dd.choose_layout(D, '/srv/staging', False, False, False)


def test_plain_datadir_staging_on_another_mount_of_the_same_filesystem_is_refused():
    # /srv/staging a bind mount of the datadir's own filesystem: rename(2) says EXDEV.
    with pytest.raises(dd.PlanError, match='another mount.*EXDEV.*/var/lib/mysql.reseed-staging'):
        dd.choose_layout(D, '/srv/staging', False, False, True)


def test_plain_datadir_staging_inside_is_refused():
    with pytest.raises(dd.PlanError, match='plain directory'):
        dd.choose_layout(D, D + '/#sql-reseed-staging', **PLAIN)


def test_mount_point_staging_inside_with_hidden_name():
    assert dd.choose_layout(D, D + '/#sql-reseed-staging', **MOUNTED) == 'entries'


def test_bind_mount_of_the_same_filesystem_is_a_mount_point():
    # The datadir a bind of a directory of its parent's filesystem (st_dev equal to its
    # parent's): staged inside it, entries; staged beside it, told to stage inside.
    assert dd.choose_layout('/data/mysql', '/data/mysql/#sql-reseed-staging',
                            True, True, True) == 'entries'
    with pytest.raises(dd.PlanError, match='is a mount point.*/data/mysql/#sql-reseed-staging'):
        dd.choose_layout('/data/mysql', '/data/mysql.reseed-staging', True, False, True)


def test_mount_point_staging_a_mount_of_its_own_inside_is_refused():
    with pytest.raises(dd.PlanError, match='mount of its own'):
        dd.choose_layout(D, D + '/#sql-reseed-staging', True, False, True)


@pytest.mark.parametrize('name', ['.reseed-staging', '#reseed-staging', 'staging'])
def test_mount_point_staging_visible_name_is_refused(name):
    with pytest.raises(dd.PlanError, match='#sql-reseed-staging'):
        dd.choose_layout(D, D + '/' + name, **MOUNTED)


def test_mount_point_staging_nested_is_refused():
    with pytest.raises(dd.PlanError, match='direct child'):
        dd.choose_layout(D, D + '/#sql-x/copy', **MOUNTED)


def test_mount_point_staging_beside_is_refused():
    with pytest.raises(dd.PlanError, match='another filesystem'):
        dd.choose_layout(D, '/var/lib/mysql.reseed-staging', True, False, False)


def test_staging_is_or_holds_the_datadir():
    with pytest.raises(dd.PlanError, match='itself'):
        dd.choose_layout(D, D + '/', **PLAIN)
    with pytest.raises(dd.PlanError, match='inside the staging'):
        dd.choose_layout(D, '/var/lib', **PLAIN)


def test_suggested_staging():
    assert dd.suggested_staging(D, False) == '/var/lib/mysql.reseed-staging'
    assert dd.suggested_staging(D, True) == '/var/lib/mysql/#sql-reseed-staging'


def test_entries_to_move_aside_keep_staging_hidden_and_lost_found():
    entries = ['ibdata1', 'mysql', '#sql-reseed-staging', '#sql-reseed-old-1', 'lost+found',
               'labdb', 'mysql-bin.000001', '#innodb_temp']
    assert dd.entries_to_move_aside(entries, '#sql-reseed-staging') == [
        '#innodb_temp', 'ibdata1', 'labdb', 'mysql', 'mysql-bin.000001']


def test_innodb_paths_inside_are_fine():
    assert dd.external_paths_problem(D, {'innodb_data_home_dir': '',
                                         'innodb_log_group_home_dir': './',
                                         'innodb_undo_directory': None}) is None
    assert dd.external_paths_problem(D, {'innodb_undo_directory': 'undo'}) is None
    assert dd.external_paths_problem(D, {'innodb_data_home_dir': D + '/'}) is None


def test_innodb_paths_outside_are_refused():
    msg = dd.external_paths_problem(D, {'innodb_log_group_home_dir': '/srv/redo',
                                        'innodb_undo_directory': '../undo'})
    assert 'innodb_log_group_home_dir=/srv/redo' in msg and 'innodb_undo_directory=../undo' in msg
    assert 'move-back' in msg


def test_external_log_sets():
    logs = {'log_bin_basename': '/var/log/mysql/mysql-bin',
            'log_bin_index': '/var/log/mysql/mysql-bin.index',
            'relay_log_basename': D + '/relay-bin', 'relay_log_index': D + '/relay-bin.index'}
    assert dd.external_log_sets(D, logs) == [
        ('/var/log/mysql', 'mysql-bin', '/var/log/mysql/mysql-bin.index')]
    assert dd.external_log_sets(D, {'log_bin_basename': None, 'relay_log_basename': 'r'}) == []
    # An index outside with the files inside still moves the set.
    sets = dd.external_log_sets(D, {'relay_log_basename': D + '/relay',
                                    'relay_log_index': '/srv/relay.index'})
    assert sets == [(D, 'relay', '/srv/relay.index')]


def test_external_log_files_match_only_the_set():
    names = ['mysql-bin.000001', 'mysql-bin.000002', 'mysql-bin.index', 'mysql-bin.state',
             'mysql-bin.000001.bak', 'mysql-binx.000001', 'error.log', 'relay-bin.000001']
    assert dd.external_log_files(names, 'mysql-bin', '/var/log/mysql/mysql-bin.index',
                                 '/var/log/mysql') == [
        'mysql-bin.000001', 'mysql-bin.000002', 'mysql-bin.index', 'mysql-bin.state']


def test_drop_in_holds_replication_for_mariadbd():
    text = dd.drop_in_text()
    assert '[mariadbd]' in text and '\nskip_slave_start\n' in text and 'read_only = ON' in text
    # OFF, not DISABLED: the copy's events are disabled, then the scheduler set back at runtime.
    assert '\nevent_scheduler = OFF\n' in text
    # An instance's own group: the host's other servers do not read it.
    node2 = dd.drop_in_text('node2')
    assert '[mariadbd.node2]\nskip_slave_start\n' in node2 and '[mariadbd]' not in node2


def test_modes():
    assert dd.strip_other_access(0o40755, True) == 0o700
    assert dd.strip_other_access(0o664, False) == 0o660
    assert dd.strip_other_access(0o640, False) == 0o640


# ---- a stopped server's paths, from its option files ------------------------------------
# Each case was measured on MariaDB 10.11.19 (the lab): the options after Debian's and the
# lab's own (pid-file /run/mysqld/mysqld.pid, log_bin=mysql-bin, relay_log=relay-bin,
# log_error=/var/log/mysql/error.log), then the server's variables.
LAB_OPTIONS = ['--socket=/run/mysqld/mysqld.sock', '--pid-file=/run/mysqld/mysqld.pid',
               '--basedir=/usr', '--server_id=10', '--log_bin=mysql-bin',
               '--relay_log=relay-bin', '--log_error=/var/log/mysql/error.log']


def paths(*extra, **kw):
    return dd.server_paths(dd.parse_option_lines(LAB_OPTIONS + list(extra)), 'host1', **kw)


def test_parse_option_lines():
    assert dd.parse_option_lines(['--log_bin=a=b', '--log-bin', '--loose-Innodb_Undo_Directory=/u',
                                  'junk', '  --skip-log-bin  ']) == [
        ('log-bin', 'a=b'), ('log-bin', None), ('innodb-undo-directory', '/u'),
        ('skip-log-bin', None)]


def test_server_paths_lab_defaults():
    assert paths() == {
        'datadir': '/var/lib/mysql', 'pid_file': '/run/mysqld/mysqld.pid',
        'log_error': '/var/log/mysql/error.log',
        'log_bin_basename': '/var/lib/mysql/mysql-bin',
        'log_bin_index': '/var/lib/mysql/mysql-bin.index',
        'relay_log_basename': '/var/lib/mysql/relay-bin',
        'relay_log_index': '/var/lib/mysql/relay-bin.index',
        'innodb_data_home_dir': None, 'innodb_log_group_home_dir': None,
        'innodb_undo_directory': None}
    assert set(paths()) == set(dd.SERVER_PATH_VARIABLES)


@pytest.mark.parametrize('extra,expected', [
    # an extension is dropped
    (['--log_bin=/var/log/mysql/mysql-bin.log'],
     dict(log_bin_basename='/var/log/mysql/mysql-bin',
          log_bin_index='/var/log/mysql/mysql-bin.index')),
    # a bare log-bin: named after the pid file, not the host
    (['--log-bin'], dict(log_bin_basename='/var/lib/mysql/mysqld-bin',
                         log_bin_index='/var/lib/mysql/mysqld-bin.index')),
    (['--log-basename=foo', '--log-bin'],
     dict(log_bin_basename='/var/lib/mysql/foo-bin', log_bin_index='/var/lib/mysql/foo-bin.index',
          relay_log_basename='/var/lib/mysql/foo-relay-bin',
          relay_log_index='/var/lib/mysql/foo-relay-bin.index', pid_file='/var/lib/mysql/foo.pid')),
    # an index takes .index; relay logs lose their extension too
    (['--relay-log=/var/log/mysql/relay.log', '--log-bin-index=bin.idx',
      '--log-bin=/var/log/mysql/mb.log'],
     dict(log_bin_basename='/var/log/mysql/mb', log_bin_index='/var/lib/mysql/bin.index',
          relay_log_basename='/var/log/mysql/relay', relay_log_index='/var/log/mysql/relay.index')),
    (['--skip-log-bin'], dict(log_bin_basename=None, log_bin_index=None)),
    # any value names the file, even 0 or OFF
    (['--log-bin=0'], dict(log_bin_basename='/var/lib/mysql/0', log_bin_index='/var/lib/mysql/0.index')),
    # log-basename where it appears: a later relay_log and pid-file win
    (['--log-basename=foo', '--relay_log=rr', '--pid-file=/run/mysqld/mysqld.pid'],
     dict(log_bin_basename='/var/lib/mysql/foo-bin', log_bin_index='/var/lib/mysql/foo-bin.index',
          relay_log_basename='/var/lib/mysql/rr', relay_log_index='/var/lib/mysql/foo-relay-bin.index')),
])
def test_server_paths_as_the_server_names_them(extra, expected):
    got = paths(*extra)
    assert dict((k, got[k]) for k in expected) == expected


def test_server_paths_datadir_and_innodb():
    got = paths('--datadir=/data/mysql/', '--innodb_undo_directory=/undo',
                '--innodb-data-home-dir=', '--pid-file=run.pid', '--log-error')
    assert got['datadir'] == '/data/mysql'
    assert got['pid_file'] == '/data/mysql/run.pid'
    assert got['log_bin_basename'] == '/data/mysql/mysql-bin'
    assert got['log_error'] == '/data/mysql/host1.err'
    assert got['innodb_undo_directory'] == '/undo' and got['innodb_data_home_dir'] == ''
    # No datadir option (Debian leaves it commented out): the compiled-in one; no pid-file:
    # <hostname>.pid in it.
    bare = dd.server_paths([], 'host1', default_datadir='/srv/db/')
    assert bare['datadir'] == '/srv/db' and bare['pid_file'] == '/srv/db/host1.pid'
    assert bare['log_bin_basename'] is None and bare['log_error'] is None
    assert bare['relay_log_basename'] == '/srv/db/host1-relay-bin'
    assert dd.server_paths([], 'h')['datadir'] == dd.DEFAULT_DATADIR
    assert dd.external_paths_problem(got['datadir'], got) and not dd.external_paths_problem(
        bare['datadir'], bare)


def test_server_dirs_are_the_datadir_and_the_log_folders():
    assert dd.server_dirs('/var/lib/mysql', {}) == ['/var/lib/mysql']
    assert dd.server_dirs('/var/lib/mysql', dict(
        log_bin_basename='/var/lib/mysql/mysql-bin', relay_log_basename='relay/r')) == [
        '/var/lib/mysql', '/var/lib/mysql/relay']
    assert dd.server_dirs('/data/mysql', dict(
        log_bin_basename='/var/log/mysql/mysql-bin', relay_log_basename='/var/log/mysql/relay')) == [
        '/data/mysql', '/var/log/mysql']
