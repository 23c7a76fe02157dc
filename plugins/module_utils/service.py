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
import socket

from ansible_collections.reseed.mariadb.plugins.module_utils import datadir as dd
from ansible_collections.reseed.mariadb.plugins.module_utils.datadir import service_commands

SERVER_PROGRAMS = ('mariadbd', 'mysqld')  # /proc/PID/comm; mysqld_safe is not one


def systemd_running():
    return os.path.isdir('/run/systemd/system')


class Service(object):

    def __init__(self, module, name):
        self.module = module
        self.name = name
        self.systemd = systemd_running()
        self.program = module.get_bin_path('systemctl' if self.systemd else 'service')

    @property
    def manager(self):
        return 'systemd' if self.systemd else 'service'

    def missing(self):
        """Why the service manager cannot be used, or None."""
        if not self.program:
            return ('no %s command found to manage the %s service'
                    % ('systemctl' if self.systemd else 'service', self.name))
        return None

    def run(self, action):
        """(ok, one-line reason) for action start|stop."""
        argv = service_commands(self.systemd, self.name, action)
        argv[0] = self.program
        rc, out, err = self.module.run_command(argv)
        if rc == 0:
            return True, ''
        tail = ' | '.join(line.strip() for line in (err or out or '').strip().splitlines()[-3:])
        return False, '%s exited %d: %s' % (' '.join(argv), rc, tail)


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


def option_file_paths(module):
    """(paths, None) with the server's paths as its option files give them (datadir.
    server_paths: datadir, pid_file, log_error, binlog and relay-log names, innodb_*), or
    (None, one-line reason). For a server that does not run: SELECT @@datadir cannot be
    asked. Reads the groups the server reads (my_print_defaults --mysqld); the datadir, when
    no option names it, is the packages' compiled-in one (datadir.DEFAULT_DATADIR). Reads
    only: nothing is written anywhere."""
    program = module.get_bin_path('my_print_defaults')
    if not program:
        return None, 'my_print_defaults is not installed (it comes with the MariaDB client)'
    rc, out, err = module.run_command([program, '--mysqld'])
    if rc != 0:
        return None, 'my_print_defaults --mysqld exited %d: %s' % (rc, (err or out).strip()[-300:])
    return dd.server_paths(dd.parse_option_lines(out.splitlines()), socket.gethostname()), None
