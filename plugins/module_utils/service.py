# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and stop the server through the host's service manager: systemctl when systemd
runs the host (/run/systemd/system exists), else the SysV ``service`` command."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.reseed.mariadb.plugins.module_utils.datadir import service_commands


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
