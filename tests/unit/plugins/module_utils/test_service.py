# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server's processes, told apart by the datadir they work in."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.reseed.mariadb.plugins.module_utils import service


def fake_proc(tmp_path, processes):
    proc = tmp_path / 'proc'
    proc.mkdir()
    (proc / 'self').mkdir()
    for pid, comm, cwd in processes:
        d = proc / str(pid)
        d.mkdir()
        (d / 'comm').write_text(comm + '\n')
        if cwd:
            os.symlink(cwd, str(d / 'cwd'))
    return str(proc)


def test_server_processes_by_name_and_datadir(tmp_path):
    data, other = tmp_path / 'mysql', tmp_path / 'other'
    data.mkdir()
    other.mkdir()
    proc = fake_proc(tmp_path, [(10, 'mariadbd', str(data)), (11, 'mysqld_safe', '/'),
                                (12, 'mysqld', str(other)), (13, 'mariadbd', None),
                                (14, 'bash', str(data))])
    found = service.server_processes(proc)
    assert found == [(10, str(data)), (12, str(other)), (13, None)]
    # Another instance (another datadir) is not this server; one whose datadir cannot be
    # read is taken for it.
    assert service.serving(found, str(data) + '/') == [10, 13]
    assert service.serving([], str(data)) == []
    assert service.serving(found, None) == [10, 12, 13]


class FakeSystemd(object):
    """A module whose run_command answers as systemctl and journalctl of a systemd host
    would: units (ActiveState, Result, TriggeredBy) and what each start does."""

    def __init__(self, units, starts=(), journal=''):
        self.units = units
        self.starts = list(starts)   # exit codes of the service's next starts (0: none left)
        self.journal = journal
        self.calls = []

    def get_bin_path(self, name):
        return '/usr/bin/' + name

    def run_command(self, argv):
        self.calls.append(argv[1:])
        program, verb = os.path.basename(argv[0]), argv[1]
        if program == 'journalctl':
            return 0, self.journal, ''
        if program == 'service':
            return 0, '', ''
        if verb == 'show':
            unit = self.units.get(argv[2], {})
            props = [a.split('=', 1)[1] for a in argv[3:]]
            return 0, ''.join('%s=%s\n' % (p, unit.get(p, '')) for p in props), ''
        if verb == 'stop':
            for name in argv[2:]:
                self.units[name]['ActiveState'] = 'inactive'
            return 0, '', ''
        if verb == 'reset-failed':
            self.units[argv[2]]['Result'] = 'success'
            return 0, '', ''
        rc = self.starts.pop(0) if self.starts and argv[2].endswith('.service') else 0
        if rc:
            self.units[argv[2]].update(ActiveState='failed', Result='start-limit-hit')
            return rc, '', 'Job for %s failed.' % argv[2]
        for name in argv[2:]:
            self.units[name]['ActiveState'] = 'active'
        return 0, '', ''


def systemd_service(monkeypatch, fake, name='mariadb'):
    monkeypatch.setattr(service, 'systemd_running', lambda: True)
    return service.Service(fake, name)


def debian_units(socket_state='active'):
    return {'mariadb.service': {'ActiveState': 'active', 'Result': 'success',
                                'TriggeredBy': 'mariadb-extra.socket mariadb.socket'},
            'mariadb.socket': {'ActiveState': socket_state},
            'mariadb-extra.socket': {'ActiveState': 'inactive'}}


def test_systemd_stop_holds_the_socket_down_and_start_restores_it(monkeypatch):
    # Debian 12 enables mariadb.socket: stopping the service alone lets the next connection
    # start the old server again.
    fake = FakeSystemd(debian_units())
    svc = systemd_service(monkeypatch, fake)
    assert svc.run('stop') == (True, '')
    assert ['stop', 'mariadb.socket', 'mariadb.service'] in fake.calls
    assert fake.units['mariadb.socket']['ActiveState'] == 'inactive'
    assert svc.run('start') == (True, '')
    # The socket first, on its own: it refuses to listen while the service runs.
    assert fake.calls[-2:] == [['start', 'mariadb.socket'], ['start', 'mariadb.service']]
    # The extra port's socket was not listening before: it is not started.
    assert fake.units['mariadb-extra.socket']['ActiveState'] == 'inactive'
    assert fake.units['mariadb.socket']['ActiveState'] == 'active'


def test_systemd_a_socket_that_did_not_listen_is_left_alone(monkeypatch):
    fake = FakeSystemd(debian_units(socket_state='inactive'))
    svc = systemd_service(monkeypatch, fake)
    svc.run('stop')
    svc.run('start')
    assert ['stop', 'mariadb.service'] in fake.calls
    assert fake.calls[-1] == ['start', 'mariadb.service']
    assert fake.units['mariadb.socket']['ActiveState'] == 'inactive'


def test_systemd_a_second_stop_keeps_what_the_first_held(monkeypatch):
    # A rollback stops the new server again: the sockets the first stop held stay held
    # and come back with the old server.
    fake = FakeSystemd(debian_units())
    svc = systemd_service(monkeypatch, fake)
    svc.run('stop')
    svc.run('start')
    fake.units['mariadb.socket']['ActiveState'] = 'inactive'  # as if still held
    svc.run('stop')
    assert svc.run('start') == (True, '')
    assert fake.calls[-2:] == [['start', 'mariadb.socket'], ['start', 'mariadb.service']]


def test_systemd_start_after_the_rate_limit_is_retried_once_after_reset_failed(monkeypatch):
    fake = FakeSystemd(debian_units(), starts=[1])
    svc = systemd_service(monkeypatch, fake)
    assert svc.run('start') == (True, '')
    assert ['reset-failed', 'mariadb.service'] in fake.calls
    # A start that fails for another reason is not retried.
    fake = FakeSystemd(debian_units(), starts=[1, 1])
    svc = systemd_service(monkeypatch, fake)
    svc.run('stop')
    ok, why = svc.run('start')
    assert not ok and why.startswith('/usr/bin/systemctl start mariadb.service exited 1')
    assert why.endswith('(after systemctl reset-failed: its start rate limit was hit)'), why
    assert ['reset-failed', 'mariadb.service', 'mariadb.socket'] in fake.calls
    # A server that does not start is not left behind a listening socket: any connection
    # would start it again.
    assert fake.calls[-1] == ['stop', 'mariadb.socket']
    assert fake.units['mariadb.socket']['ActiveState'] == 'inactive'


def test_a_failed_unit_refused_by_the_rate_limit_is_retried_too(monkeypatch):
    # A unit that failed (exit-code) and then hit the limit keeps Result=exit-code; the
    # refused start did not leave the failed state: its InactiveExitTimestamp is unchanged.
    units = debian_units()
    units['mariadb.service'].update(ActiveState='failed', Result='exit-code',
                                    InactiveExitTimestampMonotonic='5000')
    fake = FakeSystemd(units, starts=[1])
    fake.units['mariadb.service']['Result'] = 'exit-code'
    svc = systemd_service(monkeypatch, fake)
    original = fake.run_command

    def refused_keeps_result(argv):
        rc, out, err = original(argv)
        if argv[1] == 'start' and rc:
            fake.units['mariadb.service']['Result'] = 'exit-code'
        return rc, out, err
    fake.run_command = refused_keeps_result
    assert svc.run('start') == (True, '')
    assert ['reset-failed', 'mariadb.service'] in fake.calls
    # A start that ran and failed moved the timestamp: not retried.
    units = debian_units()
    units['mariadb.service'].update(InactiveExitTimestampMonotonic='5000')
    fake = FakeSystemd(units, starts=[1])
    original2 = fake.run_command

    def ran_and_failed(argv):
        rc, out, err = original2(argv)
        if argv[1] == 'start' and rc:
            fake.units['mariadb.service'].update(Result='exit-code',
                                                 InactiveExitTimestampMonotonic='6000')
        return rc, out, err
    fake.run_command = ran_and_failed
    svc = systemd_service(monkeypatch, fake)
    ok, why = svc.run('start')
    assert not ok and ['reset-failed', 'mariadb.service'] not in fake.calls


def test_systemd_instance_unit_and_journal_errors(monkeypatch):
    units = {'mariadb@db2.service': {'ActiveState': 'active', 'TriggeredBy': ''}}
    fake = FakeSystemd(units, journal='starting\n2026-12-04 [ERROR] InnoDB: bad page\n'
                                      '2026-12-04 [ERROR] Aborting\nstopped\n')
    svc = systemd_service(monkeypatch, fake, 'mariadb@db2')
    assert svc.unit == 'mariadb@db2.service'
    svc.run('stop')
    assert ['stop', 'mariadb@db2.service'] in fake.calls
    assert svc.journal_errors() == '2026-12-04 [ERROR] InnoDB: bad page'
    assert fake.calls[-1] == ['--unit', 'mariadb@db2.service', '--lines', '50', '--no-pager',
                              '--output', 'cat']


def test_sysv_service_command(monkeypatch):
    monkeypatch.setattr(service, 'systemd_running', lambda: False)
    fake = FakeSystemd({})
    svc = service.Service(fake, 'mariadb')
    assert svc.run('stop') == (True, '')
    assert fake.calls == [['mariadb', 'stop']]
    assert svc.journal_errors() == ''


def test_a_path_the_units_sandbox_hides_or_seals_is_named():
    debian = {'ProtectHome': 'yes', 'ProtectSystem': 'full', 'ReadWritePaths': ''}
    problem = service.unit_sandbox_problem
    assert problem('mariadb.service', debian, ['/var/lib/mysql', '/var/log/mysql']) is None
    why = problem('mariadb.service', debian, ['/home/mysql/data'])
    assert why.startswith('/home/mysql/data is under /home, /root or /run/user, which '
                          'mariadb.service hides from the server (ProtectHome=yes)'), why
    why = problem('mariadb.service', debian, ['/data/mysql', '/etc/mysql/binlogs'])
    assert '(ProtectSystem=full)' in why and 'ReadWritePaths=/etc/mysql/binlogs' in why, why
    strict = {'ProtectHome': 'no', 'ProtectSystem': 'strict', 'ReadWritePaths': '-/data /srv/db'}
    assert problem('mariadb.service', strict, ['/data/mysql', '/srv/db/logs']) is None
    assert problem('mariadb.service', strict, ['/var/lib/mysql']).startswith(
        '/var/lib/mysql is read-only for the server under mariadb.service (ProtectSystem=strict)')
    assert problem('mariadb.service', {}, ['/home/x', None]) is None


def test_last_error_says_why_the_last_start_failed():
    log = ['2026-12-04 20:55:50 0 [Note] Starting MariaDB 10.11.19-MariaDB as process 693',
           '2026-12-04 20:55:50 0 [ERROR] InnoDB: old attempt',
           '2026-12-04 20:55:51 0 [Note] Starting MariaDB 10.11.19-MariaDB as process 841',
           "2026-12-04 20:55:51 0 [ERROR] InnoDB: The Auto-extending data file './ibdata1' is "
           'of a different size 0 pages than specified by innodb_data_file_path',
           '2026-12-04 20:55:51 0 [ERROR] Unknown/unsupported storage engine: InnoDB',
           '2026-12-04 20:55:51 0 [ERROR] Aborting']
    assert "'./ibdata1' is of a different size" in service.last_error(log)
    # No start in the lines read: the last error that says something.
    assert service.last_error(log[3:]).endswith('Unknown/unsupported storage engine: InnoDB')
    assert service.last_error(['x [ERROR] Aborting']) == 'x [ERROR] Aborting'
    assert service.last_error(['[Note] fine']) == ''


def test_timespans_as_systemctl_show_prints_them():
    assert service.timespan_seconds('15min') == 900
    assert service.timespan_seconds('1min 30s') == 90
    assert service.timespan_seconds('1h 2min 500ms') == 3720.5
    assert service.timespan_seconds('90') == 90
    assert service.timespan_seconds('infinity') is None
    assert service.timespan_seconds('') is None
    assert service.timespan_seconds('3 fortnights') is None


def fake_cgroups(tmp_path, groups):
    proc = tmp_path / 'proc'
    for pid, path in groups.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / 'cgroup').write_text('1:name=systemd:%s\n0::%s\n' % (path, path))
    return str(proc)


def test_a_server_outside_its_unit_is_named(tmp_path):
    # In a container the cgroup path has the container's own prefix before the unit's group.
    proc = fake_cgroups(tmp_path, {33: '/rsd-h/payload/system.slice/mariadb.service',
                                   34: '/rsd-h/payload/system.slice/mariadb.service',
                                   90: '/rsd-h/payload/user.slice/session-2.scope'})
    unit = {'ActiveState': 'active', 'MainPID': '33', 'ControlGroup': '/system.slice/mariadb.service'}
    problem = service.outside_unit_problem
    assert problem('mariadb.service', unit, [33], proc) is None
    # A forking unit's child: in the unit's cgroup, not its MainPID.
    assert problem('mariadb.service', unit, [34], proc) is None
    inactive = {'ActiveState': 'inactive', 'MainPID': '0', 'ControlGroup': ''}
    why = problem('mariadb.service', inactive, [90], proc)
    assert why.startswith('mariadbd (pid 90) runs outside mariadb.service (the unit is '
                          'inactive): it was started by hand'), why
    assert 'systemctl start mariadb.service' in why
    assert problem('mariadb.service', inactive, [], proc) is None


def test_unit_facts_read_once(monkeypatch, tmp_path):
    units = {'mariadb.service': {'ActiveState': 'active', 'MainPID': '4211',
                                 'UnitFileState': 'enabled', 'TimeoutStartUSec': '15min',
                                 'ProtectHome': 'yes', 'ControlGroup': '/system.slice/x'}}
    fake = FakeSystemd(units)
    facts = systemd_service(monkeypatch, fake).facts([4211], ['/home/db'])
    assert facts == dict(manager='systemd', name='mariadb', unit='mariadb.service',
                         active_state='active', main_pid=4211, unit_file_state='enabled',
                         timeout_start_seconds=900.0, outside_unit=None,
                         sandbox_problem=facts['sandbox_problem'])
    assert facts['sandbox_problem'].startswith('/home/db is under /home')
    assert len([c for c in fake.calls if c[0] == 'show']) == 1
    monkeypatch.setattr(service, 'systemd_running', lambda: False)
    sysv = service.Service(FakeSystemd({}), 'mysql').facts([1], ['/home/db'])
    assert sysv['manager'] == 'service' and sysv['sandbox_problem'] is None


def test_an_instance_reads_its_own_option_group():
    assert service.instance_of('mariadb@node2') == 'node2'
    assert service.instance_of('mariadb@node2.service') == 'node2'
    assert service.instance_of('mariadb') is None
    assert service.instance_of('mariadb@.service') is None

    class Module(object):
        def get_bin_path(self, name):
            return '/usr/bin/' + name

        def run_command(self, argv):
            self.argv = argv
            return 0, '--datadir=/var/lib/mysql-node2\n--socket=/run/mysqld/node2.sock\n', ''

    module = Module()
    paths, why = service.option_file_paths(module, 'node2')
    assert module.argv == ['/usr/bin/my_print_defaults', '--defaults-group-suffix=.node2', '--mysqld']
    assert paths['datadir'] == '/var/lib/mysql-node2' and why is None
