# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir_swap's main() on directories in a temporary folder, the server and its service
faked: each failure says its step, code and whether the host is as it was, in C(failure),
and its msg is the one it always was."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError
from ansible_collections.reseed.mariadb.plugins.modules import datadir_swap as mod


class Host(object):
    """The server (up or not, its variables) and what its service does when asked."""

    def __init__(self, datadir, stop=(True, ''), starts=((True, ''),), login_error=None):
        self.up, self.login_error = True, login_error
        self.stop, self.starts, self.actions = stop, list(starts), []
        self.vars = dict((name, None) for name in mod.dd.SERVER_PATH_VARIABLES)
        self.vars.update(datadir=datadir, pid_file=datadir + '/none.pid', log_error='')


@pytest.fixture
def host(tmp_path, monkeypatch):
    datadir, staging = tmp_path / 'mysql', tmp_path / 'mysql.reseed-staging'
    datadir.mkdir()
    (datadir / 'ibdata1').write_text('old')
    staging.mkdir()
    for name, text in (('xtrabackup_checkpoints', 'backup_type = log-applied\n'),
                       ('xtrabackup_info', 'x = y\n'), ('reseed_received', '{}'),
                       ('ibdata1', 'new')):
        (staging / name).write_text(text)
    box = Host(str(datadir))

    class Connection(object):
        def __init__(self, params):
            if box.login_error or not box.up:
                raise DbError(box.login_error or 'cannot connect: (2002) no socket', 1045 if
                              box.login_error else 2002)

        def variable(self, name):
            return box.vars[name]

        def close(self):
            pass

    class Service(object):
        systemd, instance, manager, unit = False, None, 'service', 'mariadb.service'

        def __init__(self, module, name):
            self.name = name

        def missing(self):
            return None

        def facts(self, pids=(), paths=()):
            return dict(manager='service', outside_unit=None, sandbox_problem=None)

        def run(self, action):
            box.actions.append(action)
            if action == 'stop':
                box.up = not box.stop[0]
                return box.stop
            ok, why = box.starts.pop(0)
            box.up = ok
            return ok, why

        def journal_errors(self):
            return ''

    monkeypatch.setattr(mod, 'Connection', Connection)
    monkeypatch.setattr(mod, 'Service', Service)
    monkeypatch.setattr(mod.svc, 'server_processes', lambda: [])
    box.staging = str(staging)
    return box


@pytest.fixture
def run(module_main):
    """A function (host, **args) -> main()'s result dict (host's staging, a short start)."""
    def run_it(host, **args):
        return module_main(mod, dict(dict(staging=host.staging, hold_replication=False,
                                          start_timeout=1), **args))
    return run_it


def prefix(step):
    return 'datadir_swap on %s, step %s: ' % (mod.socket.gethostname(), step)


def test_a_refused_login_fails_reading_the_server_having_changed_nothing(host, run):
    host.login_error = "cannot connect to MariaDB as root@socket /x: (1045) Access denied"
    res = run(host)
    assert res['failure'] == dict(step='read the server', side='replica', code='login',
                                  changed_nothing=True, message=res['msg'][len(prefix('read the server')):])
    assert res['msg'] == prefix('read the server') + host.login_error + (
        ': datadir_swap reads the datadir and log paths from the running server: check the '
        'login options')
    assert res['datadir_untouched'] is True and res['changed'] is False
    assert res['service_manager'] == 'service' and res['external_logs'] == []


def test_a_copy_not_prepared_is_refused_in_the_preflight(host, run):
    with open(os.path.join(host.staging, 'xtrabackup_checkpoints'), 'w') as f:
        f.write('backup_type = full-backuped\n')
    res = run(host)
    assert (res['failure']['step'], res['failure']['code']) == ('preflight', 'not_prepared')
    assert res['failure']['changed_nothing'] is True and res['datadir_untouched'] is True
    assert res['msg'] == prefix('preflight') + (
        '%s is not prepared (backup_type = full-backuped, not log-applied): run '
        'reseed.mariadb.backup_prepare on it first' % host.staging)
    assert host.actions == []


def test_a_stop_that_fails_leaves_the_old_server_running(host, run):
    host.stop = (False, 'service mariadb stop exited 1: busy')
    res = run(host)
    assert res['failure'] == dict(step='stop the old server', side='replica', code='stop_failed',
                                  changed_nothing=True, message='service mariadb stop exited 1: '
                                  'busy: nothing was moved; check the service')
    assert res['msg'] == prefix('stop the old server') + res['failure']['message']
    assert host.actions == ['stop'] and res['datadir_untouched'] is True


def test_a_new_server_that_does_not_start_is_rolled_back_the_host_as_it_was(host, run):
    host.starts = [(False, 'service mariadb start exited 1: failed'), (True, '')]
    res = run(host)
    datadir = host.vars['datadir']
    assert res['failure'] == dict(step='start the new server', side='replica', code='rolled_back',
                                  changed_nothing=True, message=res['failure']['message'])
    assert res['msg'] == prefix('start the new server') + (
        'service mariadb start exited 1: failed: rolled back: the old datadir is back at %s and '
        'its server runs again; the copy that did not start is kept at %s' % (datadir, host.staging))
    assert res['changed'] is True and res['datadir_untouched'] is True
    assert host.actions == ['stop', 'start', 'stop', 'start'] and host.up
    with open(os.path.join(datadir, 'ibdata1')) as f:
        assert f.read() == 'old'
    with open(os.path.join(host.staging, 'ibdata1')) as f:
        assert f.read() == 'new'


def test_a_rollback_that_fails_says_what_is_left_to_repair(host, monkeypatch, run):
    host.starts = [(False, 'service mariadb start exited 1: failed')]

    def rollback(swap):
        raise OSError(13, 'Permission denied')
    monkeypatch.setattr(mod.Swap, 'rollback', rollback)
    res = run(host)
    assert (res['failure']['code'], res['failure']['changed_nothing']) == ('rollback_failed', False)
    assert res['datadir_untouched'] is False and res['changed'] is True
    assert res['msg'].startswith(prefix('start the new server') + 'service mariadb start exited '
                                 '1: failed; the rollback failed too ([Errno 13] Permission '
                                 'denied): moves done and not undone: %s -> ' % host.vars['datadir'])
    assert res['msg'].endswith('; repair by hand')


def test_a_swap_that_works_has_no_failure(host, run):
    res = run(host)
    assert res['changed'] is True and 'failure' not in res and 'datadir_untouched' not in res
    assert res['msg'].startswith('swapped in %s; old datadir ' % host.staging)
    res = run(host)
    assert res['changed'] is False and res['msg'].startswith('already swapped in: ')
