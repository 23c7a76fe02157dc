# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reseed.mariadb.rebuild_plan: a replica's plan, decided once from its diagnosis and the
primary's read (module_utils/plan.py), on the controller. The role's later steps take the
plan's fields and derive none of them again."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.reseed.mariadb.plugins.module_utils import plan as planlib


def rebuild_plan(diagnosis, primary, host, source, **settings):
    if not isinstance(diagnosis, dict) or not isinstance(primary, dict):
        raise AnsibleFilterError('rebuild_plan: expects the diagnosis (the diagnosis filter\'s '
                                 'result) and the primary\'s replication_info result')
    return planlib.plan(diagnosis, primary, host, source, **settings)


class FilterModule(object):

    def filters(self):
        return {'rebuild_plan': rebuild_plan}
