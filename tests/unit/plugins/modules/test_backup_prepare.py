# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_prepare's main() on a copy in a temporary directory, mariadb-backup faked: each
failure says its step, side, code and whether it changed the copy, in C(failure), and its
msg is the one it always was."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible.module_utils import basic

from ansible_collections.reseed.mariadb.plugins.modules import backup_prepare as mod

VERSION = 'mariadb-backup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)'


def copy(tmp_path, backup_type='full-backuped', qp=False, name='staging'):
    """A whole copy as backup_stream leaves it (or a legacy --compress one)."""
    path = tmp_path / name
    path.mkdir()
    (path / 'xtrabackup_checkpoints').write_text('backup_type = %s\n' % backup_type)
    (path / ('xtrabackup_info.qp' if qp else 'xtrabackup_info')).write_text('x = y\n')
    (path / 'reseed_received').write_text('{}')
    (path / 'xtrabackup_binlog_info').write_text('mysql-bin.000003\t817\t0-1-100\n')
    if qp:
        (path / 'ibdata1.qp').write_text('')
    return str(path)


class MariaBackup(object):
    """run_command's stand-in: what each mariadb-backup action exits with; a prepare that
    succeeds writes log-applied, as mariadb-backup does, unless told not to."""

    def __init__(self, prepare=(0, 'completed OK!'), decompress=0, writes=True):
        self.prepare, self.decompress, self.writes, self.ran = prepare, decompress, writes, []

    def __call__(self, args):
        self.ran.append(args[1])
        target = [a for a in args if a.startswith('--target-dir=')]
        if args[1] == '--version':
            return 0, '', VERSION
        if args[1] == '--decompress':
            return self.decompress, '', 'decompress: bad block' if self.decompress else ''
        rc, err = self.prepare
        if rc == 0 and self.writes and 'completed OK!' in err:
            with open(os.path.join(target[0].split('=', 1)[1], 'xtrabackup_checkpoints'), 'w') as f:
                f.write('backup_type = log-applied\n')
        return rc, '', err


@pytest.fixture
def run(monkeypatch, module_main):
    """A function (path, programs=('qpress',), backup=None, **args) -> main()'s result dict."""
    def run_it(path, programs=('qpress',), backup=None, **args):
        found = dict((name, '/usr/bin/' + name) for name in programs)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda m, name, *a, **k: found.get(name))
        backup = backup or MariaBackup()
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda m, args, **k: backup(args))
        monkeypatch.setattr(mod.open_files, 'apply', lambda plan: plan)
        return module_main(mod, dict(args, path=path))
    return run_it


def test_a_copy_that_is_not_whole_is_refused_before_anything(tmp_path, run):
    path = copy(tmp_path)
    os.remove(os.path.join(path, 'reseed_received'))
    res = run(path, programs=('mariadb-backup',))
    assert res['failed'] and res['changed'] is False
    assert res['failure'] == dict(step='check', side='replica', code='not_whole_copy',
                                  changed_nothing=True, message=res['failure']['message'])
    assert res['msg'] == ('backup_prepare on %s: not a whole copy (no reseed_received record (the '
                          'stream was not sealed: the receiving side or mariadb-backup did not '
                          'finish with success)): stream it again into an empty directory' % path)
    assert res['msg'] == 'backup_prepare on %s: %s' % (path, res['failure']['message'])


def test_qp_files_without_qpress_and_no_mariadb_backup(tmp_path, run):
    res = run(copy(tmp_path, qp=True), programs=('mariadb-backup',))
    assert (res['failure']['step'], res['failure']['code']) == ('check', 'qp_files')
    assert 'qpress is not installed' in res['msg'] and res['failure']['changed_nothing']
    res = run(copy(tmp_path, name='plain'), programs=())
    assert (res['failure']['step'], res['failure']['code']) == ('check', 'not_installed')
    assert res['msg'].endswith(': mariadb-backup is not installed (Debian and RHEL: package '
                               'mariadb-backup, of the server\'s version)')


def test_a_failed_prepare_changed_the_copy_and_names_the_redo_format(tmp_path, run):
    path = copy(tmp_path)
    err = ('[00] InnoDB: Upgrade after a crash is not supported.\n'
           '[00] The redo log was created with MariaDB 10.5.9; upgrade is not possible')
    res = run(path, programs=('mariadb-backup',),
              backup=MariaBackup(prepare=(1, err)))
    assert res['failure'] == dict(step='prepare', side='replica', code='redo_format',
                                  changed_nothing=False, message=res['msg'].split(': ', 1)[1])
    assert res['changed'] is True
    assert res['msg'] == (
        'backup_prepare on %s: mariadb-backup --prepare failed (exit code 1) (the copy\'s redo log '
        'format needs a mariadb-backup of the same major series as the server that made it): '
        '[00] InnoDB: Upgrade after a crash is not supported. | [00] The redo log was created '
        'with MariaDB 10.5.9; upgrade is not possible' % path)
    # What was read before the prepare is returned with the failure.
    assert res['gtid'] == '0-1-100' and res['open_files']['enough'] is True
    res = run(str(tmp_path / 'staging'), programs=('mariadb-backup',),
              backup=MariaBackup(prepare=(1, 'some error')))
    assert res['failure']['code'] == 'prepare_failed'


def test_a_failed_decompress_and_a_prepare_that_said_ok_wrongly(tmp_path, run):
    path = copy(tmp_path, qp=True)
    res = run(path, backup=MariaBackup(decompress=2),
              programs=('qpress', 'mariadb-backup'))
    assert res['failure'] == dict(step='decompress', side='replica', code='decompress_failed',
                                  changed_nothing=False, message='mariadb-backup --decompress '
                                  'failed (exit code 2): decompress: bad block')
    res = run(path, backup=MariaBackup(writes=False),
              programs=('qpress', 'mariadb-backup'))
    assert (res['failure']['step'], res['failure']['code']) == ('verify', 'not_prepared')
    assert res['msg'] == ('backup_prepare on %s: mariadb-backup --prepare said OK but the '
                          'checkpoints say full-backuped' % path)


def test_a_prepare_that_works_has_no_failure_and_a_second_run_changes_nothing(tmp_path, run):
    path = copy(tmp_path)
    backup = MariaBackup()
    res = run(path, programs=('mariadb-backup',), backup=backup)
    assert res['changed'] is True and res['prepared'] is True and 'failure' not in res
    assert res['backup_type'] == 'log-applied' and res['msg'].startswith('prepared in ')
    res = run(path, programs=('mariadb-backup',), backup=backup)
    assert res['changed'] is False and res['msg'] == 'already prepared'
    assert backup.ran == ['--version', '--prepare', '--version']
