# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server as its host runs it: start and stop it through the host's service manager
(systemctl when systemd runs the host, i.e. /run/systemd/system exists, else the SysV
``service`` command), find its processes, and read its paths from its option files when
it does not run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import socket

from ansible_collections.reseed.mariadb.plugins.module_utils import datadir as dd

SERVER_PROGRAMS = ('mariadbd', 'mysqld')  # /proc/PID/comm; mysqld_safe is not one


def systemd_running():
    return os.path.isdir('/run/systemd/system')


class Service(object):
    """The server's unit (systemd) or init script (SysV service).

    Under systemd, as Debian 12 packages MariaDB (shared/MARIABACKUP.md, "systemd"):
    - the socket units that start the service on a connection (mariadb.socket: shipped
      disabled, often enabled; its TriggeredBy=) are stopped with it, or the next connection (a
      monitor, a check of ours) starts the old server again in the middle of the swap; those
      that were active are started again before the service (a socket refuses to listen
      while its service runs);
    - a start refused by the start rate limit (start-limit-hit: more than 5 starts in
      10 s, with a failed start and a rollback among them) is retried once after
      `systemctl reset-failed`;
    - `systemctl start` and `stop` wait for the unit itself, bounded by its own
      TimeoutStartSec= / TimeoutStopSec= (900 s for Debian's: a first start that runs a long
      crash recovery is not cut short by a timeout of ours); a caller's own timeout counts
      only from when they return;
    - the server's errors go to the journal when log_error is not set: journal_errors()."""

    def __init__(self, module, name):
        self.module = module
        self.name = name
        self.systemd = systemd_running()
        self.program = module.get_bin_path('systemctl' if self.systemd else 'service')
        self.unit = name if '.' in name else name + '.service'
        self.instance = instance_of(self.unit)
        self.held_sockets = []   # socket units this run stopped, started again with the service

    @property
    def manager(self):
        return 'systemd' if self.systemd else 'service'

    def missing(self):
        """Why the service manager cannot be used, or None."""
        if not self.program:
            return ('no %s command found to manage the %s service'
                    % ('systemctl' if self.systemd else 'service', self.name))
        return None

    def show(self, unit, *properties):
        """{property: value} of systemctl show (empty when it cannot be asked)."""
        argv = [self.program, 'show', unit] + ['--property=' + p for p in properties]
        rc, out, dummy = self.module.run_command(argv)
        if rc != 0:
            return {}
        return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)

    def active_sockets(self):
        """The socket units that start the service and listen now."""
        names = self.show(self.unit, 'TriggeredBy').get('TriggeredBy', '').split()
        return [n for n in names if n.endswith('.socket')
                and self.show(n, 'ActiveState').get('ActiveState') == 'active']

    def run(self, action):
        """(ok, one-line reason) for action start|stop."""
        if not self.systemd:
            return self._command(['service', self.name, action])
        if action == 'stop':
            self.held_sockets = self.active_sockets() or self.held_sockets
            return self._command(['systemctl', 'stop'] + self.held_sockets + [self.unit])
        # The sockets first, on their own: a socket unit refuses to listen while its
        # service runs ("Socket service mariadb.service already active, refusing"), and one
        # transaction of both does not order them (measured on Debian 12).
        began = self.show(self.unit, STARTED).get(STARTED)
        ok, why = self._start_sockets()
        if not ok:
            return ok, why
        ok, why = self._command(['systemctl', 'start', self.unit])
        if not ok and self.refused_start(began):
            self._command(['systemctl', 'reset-failed', self.unit] + self.held_sockets)
            self._start_sockets()
            ok, why = self._command(['systemctl', 'start', self.unit])
            why = why and why + ' (after systemctl reset-failed: its start rate limit was hit)'
        if not ok and self.held_sockets:
            # A server that does not start, behind a listening socket: every connection (a
            # check of ours, a monitor) starts it again, until the start rate limit stops
            # the old server's start too (measured). Held down until the next start.
            self._command(['systemctl', 'stop'] + self.held_sockets)
        return ok, why

    def refused_start(self, began):
        """Whether the start that just failed was refused by the start rate limit. Result=
        says start-limit-hit only when the unit's last result was a success: a unit that
        failed (exit-code) and then hit the limit keeps Result=exit-code (systemd 252,
        measured). A refused start never leaves the failed state, so its
        InactiveExitTimestampMonotonic is the one from before the start (began)."""
        props = self.show(self.unit, 'Result', STARTED)
        return props.get('Result') == 'start-limit-hit' or bool(
            began and began != '0' and props.get(STARTED) == began)

    def _start_sockets(self):
        if not self.held_sockets:
            return True, ''
        return self._command(['systemctl', 'start'] + self.held_sockets)

    def _command(self, argv):
        argv = [self.program] + argv[1:]
        rc, out, err = self.module.run_command(argv)
        if rc == 0:
            return True, ''
        tail = ' | '.join(line.strip() for line in (err or out or '').strip().splitlines()[-3:])
        return False, '%s exited %d: %s' % (' '.join(argv), rc, tail)

    def facts(self, pids=(), paths=()):
        """What the role and the modules need to know of the server's unit, read once: the
        manager; under systemd the unit's state (ActiveState, MainPID, UnitFileState),
        its TimeoutStartSec in seconds (None: infinity), the server processes of pids
        that run outside it (outside_unit: one line, or None) and the first of paths its
        sandbox hides or seals (sandbox_problem, or None)."""
        out = dict(manager=self.manager, name=self.name, unit=self.unit, active_state=None,
                   main_pid=None, unit_file_state=None, timeout_start_seconds=None,
                   outside_unit=None, sandbox_problem=None)
        if not self.systemd or not self.program:
            return out
        props = self.show(self.unit, *UNIT_FACTS)
        out.update(active_state=props.get('ActiveState') or None,
                   unit_file_state=props.get('UnitFileState') or None,
                   main_pid=int(props.get('MainPID') or 0) or None,
                   timeout_start_seconds=timespan_seconds(props.get('TimeoutStartUSec')),
                   outside_unit=outside_unit_problem(self.unit, props, pids),
                   sandbox_problem=unit_sandbox_problem(self.unit, props, paths))
        return out

    def sandbox_problem(self, paths):
        """Why the unit's sandbox hides or seals one of paths (the datadir, the logs), or
        None: ProtectHome= (a datadir under /home) and ProtectSystem= (full: /usr, /boot,
        /etc read-only; strict: all but ReadWritePaths=). Only under systemd."""
        if not self.systemd:
            return None
        props = self.show(self.unit, 'ProtectHome', 'ProtectSystem', 'ReadWritePaths')
        return unit_sandbox_problem(self.unit, props, paths)

    def journal_errors(self, lines=50):
        """Why the unit's last start failed, from its journal (systemd; last_error), or ''."""
        program = self.module.get_bin_path('journalctl') if self.systemd else None
        if not program:
            return ''
        rc, out, dummy = self.module.run_command(
            [program, '--unit', self.unit, '--lines', str(lines), '--no-pager', '--output', 'cat'])
        if rc != 0:
            return ''
        return last_error(out.splitlines())


# When the unit last left the inactive or failed state: a start that systemd refused
# before running anything leaves it as it was.
STARTED = 'InactiveExitTimestampMonotonic'
UNIT_FACTS = ('ActiveState', 'MainPID', 'UnitFileState', 'TimeoutStartUSec', 'ControlGroup',
              'ProtectHome', 'ProtectSystem', 'ReadWritePaths')
TIMESPAN_UNITS = {'us': 1e-6, 'ms': 1e-3, 's': 1, 'sec': 1, 'min': 60, 'h': 3600, 'd': 86400,
                  'w': 604800, 'M': 2629800, 'y': 31557600}


def timespan_seconds(text):
    """Seconds of a systemctl show timespan ("15min", "1min 30s", "500ms"), None for
    "infinity", an empty or an unreadable value."""
    text = (text or '').strip()
    if not text or text == 'infinity':
        return None
    total = 0.0
    for number, unit in re.findall(r'([0-9.]+)\s*([a-zA-Z]*)', text):
        factor = TIMESPAN_UNITS.get(unit or 's')
        if factor is None:
            return None
        total += float(number) * factor
    return total


def cgroup_paths(pid, proc='/proc'):
    """The cgroup paths of a process (/proc/PID/cgroup), [] when unreadable."""
    try:
        with open(os.path.join(proc, str(pid), 'cgroup')) as f:
            return [line.strip().split(':', 2)[2] for line in f if line.count(':') >= 2]
    except (IOError, OSError):
        return []


def outside_unit_problem(unit, props, pids, proc='/proc'):
    """One line naming the server processes (pids) the unit does not run (started by hand,
    or by another unit), or None. A process is the unit's when it is its MainPID or sits in
    its cgroup (a forking unit's child). systemctl stop would not stop the others."""
    group = props.get('ControlGroup') or ''
    main = int(props.get('MainPID') or 0)
    outside = [pid for pid in pids if pid != main and not (
        group and any(path == group or path.endswith(group) for path in cgroup_paths(pid, proc)))]
    if not outside:
        return None
    return ('mariadbd (pid %s) runs outside %s (the unit is %s): it was started by hand or by '
            'something else, and systemctl stop %s would not stop it: shut it down '
            '(mariadb-admin shutdown), start it with systemctl start %s, and run again'
            % (', '.join(str(p) for p in outside), unit, props.get('ActiveState') or 'unknown',
               unit, unit))


def last_error(lines):
    """Why the server's last start failed, from lines of its error log or journal: the first
    [ERROR] line after its last "Starting MariaDB" (what the others follow from; its closing
    "[ERROR] Aborting" says only that it stopped), else the last [ERROR] line, or ''."""
    lines = [line.strip() for line in lines]
    starts = [i for i, line in enumerate(lines) if '] Starting MariaDB' in line]
    found = [line for line in lines[starts[-1] if starts else 0:] if '[ERROR]' in line]
    telling = [line for line in found if not line.endswith('[ERROR] Aborting')]
    if starts and telling:
        return telling[0]
    return (telling or found or [''])[-1]


def _under(path, top):
    top = top.rstrip('/') or '/'
    return path == top or path.startswith(top + '/') or top == '/'


def unit_sandbox_problem(unit, props, paths):
    """One line naming the first of paths that the unit (its systemctl show properties)
    cannot write, or None."""
    home = props.get('ProtectHome', 'no')
    system = props.get('ProtectSystem', 'no')
    writable = props.get('ReadWritePaths', '').split()
    for path in paths:
        if not path:
            continue
        path = os.path.realpath(path)
        if home in ('yes', 'read-only', 'tmpfs', 'true') and any(
                _under(path, top) for top in ('/home', '/root', '/run/user')):
            return ('%s is under /home, /root or /run/user, which %s hides from the server '
                    '(ProtectHome=%s): move it, or allow it (systemctl edit %s: '
                    'ProtectHome=false)' % (path, unit, home, unit))
        sealed = {'yes': ('/usr', '/boot', '/efi'), 'true': ('/usr', '/boot', '/efi'),
                  'full': ('/usr', '/boot', '/efi', '/etc'), 'strict': ('/',)}.get(system, ())
        if any(_under(path, top) for top in sealed) and not any(
                _under(path, top.lstrip('-')) for top in writable):
            return ('%s is read-only for the server under %s (ProtectSystem=%s): move it, or '
                    'allow it (systemctl edit %s: ReadWritePaths=%s)'
                    % (path, unit, system, unit, path))
    return None


def server_processes(proc='/proc'):
    """[(pid, cwd)] of every mariadbd (or mysqld) process this host runs. The server works
    in its datadir, so cwd tells which datadir a process serves (None when unreadable)."""
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, 'comm')) as f:
                if f.read().strip() not in SERVER_PROGRAMS:
                    continue
        except (IOError, OSError):
            continue  # gone meanwhile
        try:
            cwd = os.path.realpath(os.readlink(os.path.join(proc, entry, 'cwd')))
        except OSError:
            cwd = None
        found.append((int(entry), cwd))
    return sorted(found)


def serving(processes, datadir):
    """The pids among processes (server_processes()) that serve datadir, or whose datadir
    is unknown: a server that cannot be told apart from this one is taken for it."""
    datadir = os.path.realpath(datadir) if datadir else None
    return [pid for pid, cwd in processes if cwd is None or datadir is None or cwd == datadir]


def instance_of(name):
    """The instance of a template unit's name (mariadb@node2 -> node2), or None."""
    base = name[:-len('.service')] if name.endswith('.service') else name
    if '@' not in base:
        return None
    return base.split('@', 1)[1] or None


def option_file_paths(module, instance=None):
    """(paths, None) with the server's paths as its option files give them (datadir.
    server_paths: datadir, pid_file, log_error, binlog and relay-log names, innodb_*), or
    (None, one-line reason). For a server that does not run: SELECT @@datadir cannot be
    asked. Reads the groups the server reads (my_print_defaults --mysqld, with the
    instance's group suffix for an instance of a template unit); the datadir, when
    no option names it, is the packages' compiled-in one (datadir.DEFAULT_DATADIR). Reads
    only: nothing is written anywhere."""
    program = module.get_bin_path('my_print_defaults')
    if not program:
        return None, 'my_print_defaults is not installed (it comes with the MariaDB client)'
    # An instance of mariadb@.service runs mariadbd --defaults-group-suffix=.INSTANCE: it
    # reads [mysqld.INSTANCE] after [mysqld] (MYSQLD_MULTI_INSTANCE in Debian's unit).
    suffix = ['--defaults-group-suffix=.' + instance] if instance else []
    rc, out, err = module.run_command([program] + suffix + ['--mysqld'])
    if rc != 0:
        return None, 'my_print_defaults --mysqld exited %d: %s' % (rc, (err or out).strip()[-300:])
    return dd.server_paths(dd.parse_option_lines(out.splitlines()), socket.gethostname()), None
