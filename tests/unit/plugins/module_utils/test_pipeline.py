# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pipeline runner with real processes (small ones): bytes, exit codes, blame."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import sys

from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import (
    Pipeline, Stage)

PY = sys.executable


def py(code):
    return [PY, '-c', code]


def test_bytes_are_counted_and_delivered(tmp_path):
    out = tmp_path / 'out'
    progress = tmp_path / 'progress.json'
    stages = [Stage('source', py('import sys; sys.stdout.buffer.write(b"x" * 3000000)')),
              Stage('sink', py('import sys; open(%r, "wb").write(sys.stdin.buffer.read())'
                               % str(out)))]
    pipe = Pipeline(stages, {'read': 0}, progress_file=str(progress), expected_bytes=3000000)
    assert pipe.run() is None
    assert pipe.counts() == {'read': 3000000}
    assert out.stat().st_size == 3000000
    final = json.loads(progress.read_text())
    assert final['done'] is True and final['read'] == 3000000


def test_three_stages_two_counters(tmp_path):
    stages = [Stage('a', py('import sys; sys.stdout.buffer.write(b"ab" * 500000)')),
              Stage('half', py('import sys; d = sys.stdin.buffer.read(); '
                               'sys.stdout.buffer.write(d[: len(d) // 2])')),
              Stage('sink', py('import sys; sys.stdin.buffer.read()'))]
    pipe = Pipeline(stages, {'read': 0, 'sent': 1})
    assert pipe.run() is None
    assert pipe.counts() == {'read': 1000000, 'sent': 500000}


def test_ok_text_required():
    stages = [Stage('backup', py('import sys; sys.stderr.write("almost\\n")'),
                    ok_text='completed OK!'),
              Stage('sink', py('import sys; sys.stdin.buffer.read()'))]
    blamed = Pipeline(stages, {'read': 0}).run()
    assert blamed is stages[0]
    assert 'exit code 0 without "completed OK!"' in blamed.describe(lambda t: t)


def test_the_root_cause_is_blamed_not_the_broken_pipe_victims():
    # The sink dies after a little; the source then gets EPIPE and fails too.
    stages = [Stage('source', py('import sys, time\nwhile True: sys.stdout.buffer.write(b"x" * 65536)')),
              Stage('sink', py('import sys; sys.stdin.buffer.read(100000); '
                               'sys.stderr.write("disk full\\n"); sys.exit(3)'))]
    blamed = Pipeline(stages, {'read': 0}).run()
    assert blamed is stages[1]
    assert stages[0].returncode != 0 and stages[0].victim()
    text = blamed.describe(lambda t: t.replace('disk', '****'))
    assert text == 'sink failed (exit code 3): **** full'


def test_first_real_failure_wins():
    stages = [Stage('backup', py('import sys; sys.stderr.write("Access denied\\n"); sys.exit(1)')),
              Stage('sink', py('import sys; sys.stdin.buffer.read()'))]
    blamed = Pipeline(stages, {'read': 0}).run()
    assert blamed is stages[0] and 'Access denied' in blamed.describe(str)


def test_rate_limit_holds_the_relay_back(tmp_path):
    stages = [Stage('a', py('import sys; sys.stdout.buffer.write(b"x" * 400000)')),
              Stage('b', py('import sys; sys.stdin.buffer.read()'))]
    pipe = Pipeline(stages, {'read': 0}, rate_limits={0: 1000000})
    assert pipe.run() is None
    assert pipe.relays[0].bytes == 400000
    # 400 kB at 1 MB/s cannot pass in much less than 0.4 s: the cap is applied.
    assert pipe.seconds >= 0.35


def test_a_failing_side_stage_is_blamed_and_a_waiting_sender_stopped(monkeypatch):
    from ansible_collections.reseed.mariadb.plugins.module_utils import pipeline
    monkeypatch.setattr(pipeline, 'SIDE_GRACE', 0.3)
    # The sender waits forever for its receiver (as socat retrying to connect would).
    stages = [Stage('backup', py('import sys; sys.stdout.buffer.write(b"x" * 1000)')),
              Stage('sender', py('import time; time.sleep(60)'))]
    side = [Stage('receiver', py('import sys; sys.stderr.write("refusing\\n"); sys.exit(19)'))]
    pipe = Pipeline(stages, {'read': 0}, side=side)
    blamed = pipe.run()
    assert blamed is side[0] and blamed.describe(str) == 'receiver failed (exit code 19): refusing'
    assert stages[1].stopped and stages[1].victim()
    assert pipe.seconds < 10


def test_side_stage_is_waited_for_after_the_chain_succeeds():
    stages = [Stage('a', py('import sys; sys.stdout.buffer.write(b"x" * 1000)')),
              Stage('b', py('import sys; sys.stdin.buffer.read()'))]
    side = [Stage('late', py('import time; time.sleep(0.5)'))]
    pipe = Pipeline(stages, {'read': 0}, side=side)
    assert pipe.run() is None and side[0].returncode == 0 and pipe.seconds >= 0.5


def test_a_side_stage_outliving_a_failed_chain_is_stopped(monkeypatch):
    from ansible_collections.reseed.mariadb.plugins.module_utils import pipeline
    monkeypatch.setattr(pipeline, 'SIDE_GRACE', 0.3)
    stages = [Stage('backup', py('import sys; sys.stderr.write("Access denied\\n"); sys.exit(1)')),
              Stage('sender', py('import sys; sys.stdin.buffer.read()'))]
    side = [Stage('receiver', py('import time; time.sleep(60)'))]
    pipe = Pipeline(stages, {'read': 0}, side=side)
    blamed = pipe.run()
    assert blamed is stages[0] and side[0].stopped and pipe.seconds < 10


def test_a_stage_killed_by_a_signal_is_a_cause_even_if_it_relays_a_broken_pipe():
    # ssh returns 128 + signal when its remote command was killed, and forwards whatever
    # the remote side printed, a "Broken pipe" of the remote socat included.
    stages = [Stage('backup', py('import sys, time\nwhile True: sys.stdout.buffer.write(b"x" * 65536)')),
              Stage('ssh', py('import sys; sys.stdin.buffer.read(100000); '
                              'sys.stderr.write("socat E write(1): Broken pipe\\n"); '
                              'sys.exit(137)'))]
    blamed = Pipeline(stages, {'read': 0}).run()
    assert blamed is stages[1]
    assert blamed.describe(str).startswith('ssh failed (exit code 137, killed by signal 9)')


def test_watchdog_stops_every_stage_and_says_why():
    calls = []

    def watchdog():
        calls.append(1)
        return 'the controller is gone' if len(calls) >= 2 else None

    # An endless source: only the watchdog can end this chain.
    stages = [Stage('source', py('import sys\nwhile True: sys.stdout.buffer.write(b"x" * 65536)')),
              Stage('sink', py('import sys\nwhile sys.stdin.buffer.read(65536): pass'))]
    pipe = Pipeline(stages, {'read': 0}, progress_every=0.2, watchdog=watchdog)
    pipe.run()
    assert pipe.aborted == 'the controller is gone' and len(calls) == 2
    # The source was stopped by the runner; the sink may end on its own once it sees EOF.
    assert stages[0].stopped and all(s.proc.returncode is not None for s in stages)
    assert pipe.counts()['read'] > 0
