# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible callback for the lab tests: what the playbook left with set_stats (the role's
replica_rebuild_results, replica_status.yml's replica_status), written as JSON to
$RESEED_RESULTS_FILE when the playbook ends, so that tests assert on the role's structured
result as AWX would keep it, not on lines of output."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: reseed_results
type: aggregate
short_description: the run's set_stats data, as JSON, for the lab tests
description:
  - Writes the custom statistics of the run (set_stats, not per host) to a JSON file.
requirements:
  - RESEED_RESULTS_FILE set in the environment (the JSON file to write).
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'reseed_results'
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('RESEED_RESULTS_FILE')
        if not path:
            return
        with open(path, 'w') as f:
            json.dump((stats.custom or {}).get('_run', {}), f, default=str)
