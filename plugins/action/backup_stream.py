# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Show a stream's progress while it runs.

Ansible prints nothing while a task runs, and a backup stream can take hours. This action
runs the backup_stream module in the background (Ansible's own async machinery, as
ansible.builtin.gather_facts does for its parallel modules), and while it runs, polls the
source host: it refreshes a heartbeat file, reads the module's progress file, and prints a
line (bytes, rate, percent of the estimated size, ETA) every PRINT_EVERY seconds. The module
stops the stream when the heartbeat grows stale, so an interrupted or killed controller
never leaves a stream running unattended on the primary.

Check mode, preflight=true, and a task that sets its own C(async), run the module as usual.

The module's result reaches the task as it is, its C(failure) and C(receiver_failure)
included. A failed result without a C(failure) of the module's own (it crashed, was killed,
its options were refused, the job could not be followed) gets one here, side C(source), step
C(stream): C(not_started) or C(no_result).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import time
import uuid

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()
MODULE = 'reseed.mariadb.backup_stream'
POLL_EVERY = 3.0  # seconds between two looks at the job
WAIT_TICK = 0.2  # within a look, the source checks the job this often: its end is seen at once
RUNNING = '"started": true, "finished": false'  # async_wrapper's job file until the job ends
PRINT_EVERY = 10.0  # seconds between two progress lines (issue: at least every 30 s)
ASYNC_LIMIT = 7 * 24 * 3600  # async_wrapper's own time limit; the heartbeat ends orphans
SEPARATOR = '--reseed-job-file--'
SIGNALS = (signal.SIGINT, signal.SIGTERM)
JOB_KEYS = ('ansible_job_id', 'finished', 'started', 'results_file', 'stdout', 'stderr',
            'stdout_lines', 'stderr_lines')


def progress_line(host, destination, data):
    """One line for a human from the module's progress file (a dict)."""
    line = '%s -> %s: %s' % (host, destination, size(data.get('read', 0)))
    if data.get('over_estimate'):
        # The redo written during the copy grows it past the estimate from the data size.
        line = '%s -> %s: more than estimated (~%s): %s so far' % (
            host, destination, size(data.get('expected_bytes', 0)), size(data.get('read', 0)))
    elif data.get('expected_bytes'):
        line += ' of ~%s' % size(data['expected_bytes'])
    if 'percent' in data:
        line += ' (%.1f%%)' % data['percent']
    line += ', %.1f MB/s' % data.get('rate_mb_s', 0)
    if data.get('sent') and data.get('read') and data['sent'] != data['read']:
        line += ', %s sent' % size(data['sent'])
    if 'eta_seconds' in data:
        line += ', ETA %s' % duration(data['eta_seconds'])
    line += ', %s elapsed' % duration(data.get('elapsed', 0))
    if data.get('waiting'):
        # The copy's backup lock waits on the source (module_utils/source_watch.py).
        line += '; ' + data['waiting']
    return line


def size(count):
    return '%.2f GB' % (count / 1e9) if count >= 1e9 else '%.0f MB' % (count / 1e6)


def still_running(job_file_text):
    """Whether Ansible's async job file says the job runs on (anything unreadable: ask)."""
    try:
        data = json.loads(job_file_text)
    except ValueError:
        return False
    return isinstance(data, dict) and bool(data.get('started')) and not data.get('finished')


def wait_command(heartbeat, progress_file, job_file, poll):
    """The shell command of one look at the job: refresh the heartbeat, wait up to `poll`
    seconds while the job file says the job runs, then print the progress file, SEPARATOR
    and the job file."""
    return ('touch {hb} && n=0; while [ "$n" -lt {ticks} ] && grep -qF {running} {job} '
            '2>/dev/null && sleep {tick}; do n=$((n + 1)); done; cat {progress} 2>/dev/null; '
            'echo; echo {sep}; cat {job} 2>/dev/null').format(
                hb=shlex.quote(heartbeat), ticks=int(poll / WAIT_TICK),
                running=shlex.quote(RUNNING), job=shlex.quote(job_file), tick=WAIT_TICK,
                progress=shlex.quote(progress_file), sep=SEPARATOR)


class Interrupted(Exception):
    """A signal reached the worker while it waited for the stream."""


def on_signal(signum, frame):
    # Ansible's worker would kill itself at once (os._exit): first stop the stream.
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def set_handlers(handlers):
    try:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    except ValueError:  # not the main thread (not how Ansible runs actions): no handlers
        pass


def with_failure(result, code, changed_nothing=False):
    """A failed result as it is when it has its C(failure), else with one saying that the
    module did not report its own (see the module's RETURN)."""
    if result.get('failed') and not isinstance(result.get('failure'), dict):
        result['failure'] = dict(step='stream', side='source', code=code,
                                 changed_nothing=changed_nothing,
                                 message=str(result.get('msg') or 'the module ended without '
                                             'a result'))
    return result


def duration(seconds):
    seconds = int(seconds)
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm%02ds' % (seconds // 60, seconds % 60)
    return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        self.__ppid = os.getppid()
        if self._task.check_mode or self._task.async_val or \
                boolean(self._task.args.get('preflight', False), strict=False):
            result.update(self._execute_module(module_name=MODULE, task_vars=task_vars))
            return with_failure(result, 'no_result')

        args = dict(self._task.args)
        async_dir = self._remote_expand_user(
            self.get_shell_option('async_dir', default='~/.ansible_async'))
        host = self._task.delegate_to or task_vars.get('inventory_hostname')
        # Named after the source host, so that an operator sees whose stream a file is.
        name = 'reseed-stream-%s-%s' % (re.sub(r'[^\w.-]', '_', str(host)), uuid.uuid4().hex[:12])
        join = self._connection._shell.join_path
        heartbeat = join(async_dir, name + '.heartbeat')
        ours = [heartbeat]  # removed at the end; a progress_file the user chose stays
        if not args.get('progress_file'):
            args['progress_file'] = join(async_dir, name + '.progress')
            ours.append(args['progress_file'])
        args['heartbeat_file'] = heartbeat
        timeout = int(args.get('heartbeat_timeout') or 120)
        poll = min(POLL_EVERY, timeout / 4.0)
        self._remote('mkdir -p %s && touch %s' % (shlex.quote(async_dir), shlex.quote(heartbeat)))

        saved = self._task.async_val
        self._task.async_val = ASYNC_LIMIT
        try:
            job = self._execute_module(module_name=MODULE, module_args=args,
                                       task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = saved
        if job.get('failed') or 'ansible_job_id' not in job:
            self._remove([heartbeat])
            result.update(job)
            return with_failure(result, 'not_started', changed_nothing=True)

        status_args = {'jid': job['ansible_job_id'], '_async_dir': async_dir}
        previous = dict((sig, signal.getsignal(sig)) for sig in SIGNALS)
        try:
            set_handlers(dict((sig, on_signal) for sig in SIGNALS))
            status = self._wait(args, heartbeat, poll, host, status_args, task_vars,
                                job['results_file'])
        except BaseException as e:
            # Ctrl-C (Ansible forwards it to its workers), a lost connection, an error:
            # without its heartbeat file the module stops the stream within a second.
            # Best effort: the stale heartbeat stops it in heartbeat_timeout seconds anyway.
            try:
                self._remove([heartbeat])
            except Exception:
                pass
            if isinstance(e, Interrupted):
                set_handlers(previous)
                os.kill(os.getpid(), e.args[0])  # now Ansible's own handling of the signal
            if not isinstance(e, AnsibleError) or isinstance(e, AnsibleConnectionFailure):
                raise  # an unreachable source stays unreachable
            result.update(failed=True, msg=str(e))
            return with_failure(result, 'no_result')
        finally:
            set_handlers(previous)
        # The job file too: what async_status's cleanup mode does, without a Python start.
        self._remove(ours + [job['results_file']])
        for key in JOB_KEYS:
            status.pop(key, None)
        result.update(status)
        return with_failure(result, 'no_result')

    def _wait(self, args, heartbeat, poll, host, status_args, task_vars, results_file):
        """Poll until the job ends, refreshing the heartbeat, printing progress. One shell
        command a poll, which waits on the source up to `poll` seconds for the job to end
        (async_wrapper writes {"started": true, "finished": false, ...} in its job file until
        then): the end is seen within WAIT_TICK, and no Python starts on the source before."""
        printed = 0.0
        warned = set()
        command = wait_command(heartbeat, args['progress_file'], results_file, poll)
        while True:
            if os.getppid() != self.__ppid:
                # ansible-playbook was killed (kill -9, the OOM killer): this worker lives on
                # in its own session, but nobody waits for the result any more.
                raise AnsibleError('backup_stream: ansible-playbook is gone: stopping the stream')
            asked = time.time()
            out = self._remote(command)
            progress, sep, job = out.partition(SEPARATOR)
            running = still_running(job.strip())
            if running and time.time() - asked < poll / 2:
                # The source did not wait (a sleep without fractions, a job file of another
                # form): wait here instead.
                time.sleep(poll - (time.time() - asked))
            try:
                data = json.loads(progress.strip())
            except ValueError:
                data = None
            if data and data.get('warning') and data['warning'] not in warned:
                # The module's preflight warning, said as the stream starts: as a warning it
                # reaches the controller with the task's result, at its end.
                display.display('%s -> %s: before the copy: %s' % (
                    host, args.get('destination'), data['warning']))
                warned.add(data['warning'])
            if not running:
                status = self._execute_module(module_name='ansible.legacy.async_status',
                                              module_args=dict(status_args),
                                              task_vars=task_vars)
                if status.get('finished'):
                    return status
            if time.time() - printed >= PRINT_EVERY:
                if data and not data.get('done'):
                    display.display(progress_line(host, args.get('destination'), data))
                    printed = time.time()

    def _remove(self, paths):
        self._remote('rm -f ' + ' '.join(shlex.quote(path) for path in paths))

    def _remote(self, command):
        res = self._low_level_execute_command(command, sudoable=True)
        if res.get('rc') != 0:
            raise AnsibleError('backup_stream: on the source, %r failed (exit code %s): %s'
                               % (command, res.get('rc'), (res.get('stderr') or '').strip()))
        return res.get('stdout', '')
