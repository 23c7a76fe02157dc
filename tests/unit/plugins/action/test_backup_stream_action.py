# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress line the action plugin prints, and the module's heartbeat watchdog."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

from ansible_collections.reseed.mariadb.plugins.action import backup_stream as action
from ansible_collections.reseed.mariadb.plugins.module_utils import pipeline
from ansible_collections.reseed.mariadb.plugins.modules import backup_stream as module


def test_progress_line_says_bytes_share_rate_and_eta():
    line = action.progress_line('db1', '10.0.0.2', {
        'read': 1250000000, 'sent': 500000000, 'expected_bytes': 2900000000,
        'percent': 43.1, 'rate_mb_s': 180.4, 'eta_seconds': 9.0, 'elapsed': 75.2})
    assert line == ('db1 -> 10.0.0.2: 1.25 GB of ~2.90 GB (43.1%), 180.4 MB/s, '
                    '500 MB sent, ETA 9s, 1m15s elapsed')


def test_progress_line_without_an_estimate_or_compression():
    line = action.progress_line('db1', 'db2', {'read': 10 ** 9, 'sent': 10 ** 9,
                                               'rate_mb_s': 50.0, 'elapsed': 7300})
    assert line == 'db1 -> db2: 1.00 GB, 50.0 MB/s, 2h01m elapsed'


def test_progress_line_says_what_the_copy_waits_for():
    line = action.progress_line('db1', 'db2', {'read': 10 ** 9, 'rate_mb_s': 0.0,
                                               'elapsed': 70, 'waiting': 'the copy waits'})
    assert line == 'db1 -> db2: 1.00 GB, 0.0 MB/s, 1m10s elapsed; the copy waits'


def test_progress_line_past_the_estimate_says_so_and_keeps_the_rate():
    # The redo written during the copy grew it past the estimate: no share past 100 %, no
    # negative ETA (issue 22 measured '12.67 GB of ~8.18 GB (99.9%), ETA -31s').
    data = dict(read=12670000000, sent=12670000000, expected_bytes=8180000000, rate_mb_s=52.1,
                elapsed=243, **pipeline.estimate(12670000000, 8180000000, 243))
    assert action.progress_line('db1', 'db2', data) == (
        'db1 -> db2: more than estimated (~8.18 GB): 12.67 GB so far, 52.1 MB/s, 4m03s elapsed')


def test_estimate_share_and_eta_stay_true():
    assert pipeline.estimate(0, 100, 5) == {} and pipeline.estimate(50, 0, 5) == {}
    assert pipeline.estimate(25, 100, 10) == {'percent': 25.0, 'eta_seconds': 30.0}
    assert pipeline.estimate(99999, 100000, 10)['percent'] == 99.9  # never 100 while it runs
    for done in (100, 101, 10 ** 6):
        assert pipeline.estimate(done, 100, 10) == {'over_estimate': True}
    assert all(0 <= pipeline.estimate(d, 1000, 7).get('eta_seconds', 0) and
               pipeline.estimate(d, 1000, 7).get('percent', 0) < 100 for d in range(1, 2000, 7))


def test_heartbeat_watchdog(tmp_path):
    assert module.heartbeat_watchdog(None, 120) is None
    beat = tmp_path / 'beat'
    beat.write_text('')
    mtime = os.path.getmtime(str(beat))
    clock = [mtime + 1]
    check = module.heartbeat_watchdog(str(beat), 120, now=lambda: clock[0])
    clock[0] = mtime + 119
    assert check() is None
    clock[0] = mtime + 122
    assert 'no heartbeat for 121 s, limit 120 s' in check()  # counted from the start
    # A file older than the module itself counts from the module's start.
    check = module.heartbeat_watchdog(str(beat), 120, now=lambda: clock[0])
    assert check() is None
    clock[0] += 121
    assert 'no heartbeat for 121 s' in check()
    beat.unlink()
    assert 'was removed' in check()


def test_the_job_file_says_whether_the_job_runs_on():
    assert action.still_running('{"started": true, "finished": false, "ansible_job_id": "j1"}')
    assert not action.still_running('{"changed": true, "bytes_read": 5}')  # the module's result
    assert not action.still_running('')  # gone or being written: ask async_status
    assert not action.still_running('{"started": true, "finished": true}')


def test_running_is_what_async_wrapper_writes_until_the_job_ends():
    # async_wrapper: jwrite({"started": True, "finished": False, "ansible_job_id": jid})
    assert action.RUNNING in json.dumps({"started": True, "finished": False,
                                         "ansible_job_id": "j1"})


def look(tmp_path, poll, change_after=None):
    """Run one look at the job (the real shell command, in sh) and return (seconds, out)."""
    beat, progress, job = (str(tmp_path / n) for n in ('beat', 'progress', 'job'))
    with open(progress, 'w') as f:
        f.write('{"read": 5}')
    with open(job, 'w') as f:
        f.write(json.dumps({"started": True, "finished": False, "ansible_job_id": "j1"}))
    if change_after is not None:
        def finish():
            time.sleep(change_after)
            with open(job + '.tmp', 'w') as f:
                f.write('{"changed": true, "bytes_read": 5}')
            os.rename(job + '.tmp', job)  # as async_wrapper's jwrite does
        threading.Thread(target=finish, daemon=True).start()
    started = time.time()
    out = subprocess.run(['sh', '-c', action.wait_command(beat, progress, job, poll)],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    assert os.path.exists(beat)  # the heartbeat was refreshed
    return time.time() - started, out


def test_a_look_waits_on_the_source_while_the_job_runs(tmp_path):
    seconds, out = look(tmp_path, poll=1.0)
    assert seconds >= 0.8
    progress, job = out.split(action.SEPARATOR)
    assert json.loads(progress) == {'read': 5} and action.still_running(job.strip())


def test_a_look_ends_when_the_job_ends(tmp_path):
    seconds, out = look(tmp_path, poll=30.0, change_after=0.3)
    assert seconds < 20  # not the whole poll
    assert out.split(action.SEPARATOR)[1].strip() == '{"changed": true, "bytes_read": 5}'


FAILURE = dict(step='result', side='replica', code='receiver_failed', changed_nothing=False,
               message='the receiver on the replica failed: x')


def test_the_modules_failure_reaches_the_task_unchanged():
    result = {'failed': True, 'msg': 'backup_stream to db2:4444 (tls): ...', 'failure': FAILURE,
              'receiver_failure': {'code': 'extract_failed'}}
    assert action.with_failure(dict(result), 'no_result') == result
    assert action.with_failure({'changed': True}, 'no_result') == {'changed': True}


def test_a_result_without_the_modules_failure_gets_one():
    result = action.with_failure({'failed': True, 'msg': 'MODULE FAILURE'}, 'no_result')
    assert result['failure'] == dict(step='stream', side='source', code='no_result',
                                     changed_nothing=False, message='MODULE FAILURE')


class Task(object):
    check_mode = False
    async_val = 0
    delegate_to = None

    def __init__(self, args):
        self.args = args


def test_a_preflight_runs_in_the_foreground(monkeypatch):
    ran = []
    plugin = action.ActionModule.__new__(action.ActionModule)
    plugin._task = Task({'destination': 'db2', 'preflight': 'yes'})
    monkeypatch.setattr(action.ActionBase, 'run', lambda self, tmp=None, task_vars=None: {})

    def execute(module_name, task_vars=None, **kwargs):
        ran.append((module_name, kwargs))
        return {'changed': False, 'msg': 'the preflight passed'}
    plugin._execute_module = execute
    assert plugin.run(task_vars={}) == {'changed': False, 'msg': 'the preflight passed'}
    assert ran == [(action.MODULE, {})]  # not wrapped in async
