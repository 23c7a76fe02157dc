# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible callback for bench/: each task's start and end (epoch seconds) and the few
figures the benchmark reads from its results, written as JSON to $BENCH_TIMINGS_FILE when
the playbook ends. Never the results themselves: they may hold secrets."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: bench_timings
type: aggregate
short_description: per-task times and stream, prepare and swap figures, for bench/
description:
  - Writes each task's name, action, start and end time and, from its results, only
    seconds, downtime_seconds, bytes_read, bytes_sent, rate_mb_s and auto_compression.
requirements:
  - BENCH_TIMINGS_FILE set in the environment (the JSON file to write).
'''

FIGURES = ('seconds', 'downtime_seconds', 'bytes_read', 'bytes_sent', 'rate_mb_s',
           'auto_compression')


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_timings'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks = []
        self.by_uuid = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        record = {'name': task.get_name(), 'action': task.action, 'start': time.time(),
                  'end': None, 'results': []}
        self.tasks.append(record)
        self.by_uuid[task._uuid] = record

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _record(self, result, status):
        record = self.by_uuid.get(result._task._uuid)
        if record is None:
            return
        record['end'] = time.time()
        res = result._result
        record['results'].append(dict(
            [('host', result._host.get_name()), ('status', status)] +
            [(k, res[k]) for k in FIGURES if k in res]))

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('BENCH_TIMINGS_FILE')
        if path:
            with open(path, 'w') as f:
                json.dump({'tasks': self.tasks}, f, indent=1)
