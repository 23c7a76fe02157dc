# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_receive's main() with the listener faked (the source's connection handed in: a
fake channel, or a real loopback connection whose other end plays the source) and mbstream
a script: preflight without a token, each failure's step, side, code and changed_nothing in
C(failure) with the msg it always had, and the same fields sent to the source."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import threading

import pytest

from ansible.module_utils import basic

from ansible_collections.reseed.mariadb.plugins.module_utils import transfer
from ansible_collections.reseed.mariadb.plugins.modules import backup_receive as mod

# mbstream -x -p N -C DIR: takes the stream, leaves the copy's last files (or not).
MBSTREAM = '#!/bin/sh\ncat > "$5/stream.bin"\n%s'
WHOLE = 'touch "$5/xtrabackup_checkpoints" "$5/xtrabackup_info"\n'
TOKEN = 'run-token-0123456789'  # no_log: a short one would be masked in every text
HELLO = {'magic': transfer.MAGIC, 'token': TOKEN, 'expected_bytes': 1000}


class FakeChannel(object):
    """The source's connection as the receiver sees it: the frames it will read, the frames
    it was sent, how often it was finished."""

    class Sock(object):
        def getpeername(self):
            return ('10.0.0.11', 40000)

    name = 'the source 10.0.0.11'

    def __init__(self, frames=()):
        self.frames = list(frames)
        self.sent = []
        self.finished = 0
        self.sock = self.Sock()

    def recv(self):
        kind, payload = self.frames.pop(0)
        return kind, bytearray(json.dumps(payload).encode('utf-8'))

    def send_json(self, kind, obj):
        self.sent.append((kind, obj))

    def keepalive(self):
        pass

    def finish(self):
        self.finished += 1


class FakeListener(object):
    """transfer.Listener's stand-in: hands over the channel (the source connected)."""

    channel = None
    hello = HELLO

    def __init__(self, sock, allowed, token, tls, stall_timeout):
        self.token, self.refused = token, []

    def accept(self, deadline, should_stop=None):
        return self.channel, dict(self.hello)

    def close(self):
        pass


@pytest.fixture
def run(monkeypatch, module_main, free_port):
    """A function (tmp_path, channel=None, ..., **args) -> main()'s result (tcp from 127.0.0.1)."""
    def run_it(tmp_path, channel=None, hello=None, mbstream=WHOLE, tools=('mbstream', 'zstd'),
               **args):
        monkeypatch.setattr(mod.st, 'LOCK_DIR', str(tmp_path / 'lock'))
        script = tmp_path / 'mbstream'
        script.write_text(MBSTREAM % mbstream)
        script.chmod(0o755)
        found = dict((t, p) for t, p in (('mbstream', str(script)), ('zstd', '/usr/bin/zstd'))
                     if t in tools)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda m, name, *a, **k: found.get(name))
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda m, argv, **k: (0, '', ''))
        if channel is not None:
            monkeypatch.setattr(FakeListener, 'channel', channel)
            monkeypatch.setattr(FakeListener, 'hello', hello or HELLO)
            monkeypatch.setattr(mod.transfer, 'Listener', FakeListener)
        return module_main(mod, dict(dict(transport='tcp', source_address='127.0.0.1',
                                          port=free_port()), **args))
    return run_it


def test_preflight_needs_no_token_and_changes_nothing(tmp_path, run):
    staging = str(tmp_path / 'data' / 'staging')
    res = run(tmp_path, staging_dir=staging, port=4555, preflight=True,
              transport='tls', source_address=None)
    assert 'failed' not in res and 'failure' not in res
    assert res['changed'] is False and res['sealed'] is False
    assert res['msg'] == 'ready to receive a copy into %s on port 4555' % staging
    assert res['facts']['staging'] == 'absent' and res['facts']['free_bytes'] > 0
    assert res['facts']['lock'] == str(tmp_path / 'lock' / (
        'reseed%s.lock' % staging.replace('/', '_')))
    assert not os.path.exists(staging)
    # Check mode without preflight still says a real run would change the host.
    res = run(tmp_path, staging_dir=staging, token=TOKEN,
              _ansible_check_mode=True)
    assert res['changed'] is True and res['msg'].startswith('would receive a copy into ')


def test_a_real_run_needs_the_token(tmp_path, run):
    res = run(tmp_path, staging_dir=str(tmp_path / 'staging'))
    assert res['failed'] is True
    assert res['msg'] == 'preflight is False but all of the following are missing: token'


def test_a_port_in_use_fails_the_preflight(tmp_path, run):
    taken = socket.socket()
    taken.bind(('', 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        res = run(tmp_path, staging_dir=str(tmp_path / 'staging'),
                  port=port, preflight=True)
    finally:
        taken.close()
    assert res['failure']['step'] == 'preflight' and res['failure']['code'] == 'cannot_listen'
    assert res['changed'] is False and res['msg'].endswith(
        ': stop what uses the port, or choose another (replica_rebuild_port)')


def test_a_staging_path_problem_is_the_replicas_and_changes_nothing(tmp_path, run):
    res = run(tmp_path, staging_dir='/staging', port=4444, token=TOKEN)
    assert res['failed'] is True and res['changed'] is False
    assert res['failure'] == dict(
        step='preflight', side='replica', code='staging_path', changed_nothing=True,
        message="staging_dir must be an absolute path at least two levels deep, got '/staging'")
    assert res['msg'] == ("backup_receive into /staging on port 4444: staging_dir must be an "
                          "absolute path at least two levels deep, got '/staging'")


def test_several_preflight_problems_are_said_together_with_the_first_ones_code(tmp_path, run):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'somebody-elses').write_text('x')
    res = run(tmp_path, staging_dir=str(foreign), token=TOKEN, preflight=True,
              tools=('mbstream',))
    assert res['failure']['code'] == 'staging_foreign' and res['failure']['side'] == 'replica'
    assert res['failure']['message'] == (
        'the staging directory exists and is not a reseed staging directory (nor empty): '
        'choose another or empty it; missing on this host: zstd (package mariadb-backup of the '
        'server\'s version, zstd)')
    assert res['facts']['staging'] == 'foreign' and 'free_bytes' not in res['facts']
    res = run(tmp_path, staging_dir=str(tmp_path / 'new'), token=TOKEN,
              tools=())
    assert res['failure']['code'] == 'missing_tools' and res['failure']['step'] == 'preflight'


def test_missing_options_of_a_real_run_are_named(tmp_path, run):
    res = run(tmp_path, staging_dir=str(tmp_path / 'staging'), token=TOKEN,
              transport='tls', source_address=None)
    assert res['failure']['step'] == 'options' and res['failure']['code'] == 'missing_options'
    assert res['msg'].endswith(': transport=tls needs tls_cert, tls_key, peer_cert, '
                               'source_address')


def test_a_hello_the_replica_cannot_take_is_refused_with_the_failure(tmp_path, run):
    channel = FakeChannel()
    staging = str(tmp_path / 'staging')
    res = run(tmp_path, channel=channel, staging_dir=staging, token=TOKEN,
              hello=dict(HELLO, expected_bytes=10 ** 18))
    assert (res['failure']['step'], res['failure']['side'], res['failure']['code']) == (
        'check', 'replica', 'no_space')
    assert res['failure']['changed_nothing'] is True and res['changed'] is False
    assert res['msg'].startswith('backup_receive into %s on port ' % staging)
    assert ': nothing changed: ' in res['msg'] and 'GB needed' in res['msg']
    [(kind, refusal)] = channel.sent
    assert kind == transfer.REFUSE and refusal['failure'] == res['failure']
    assert refusal['reason'] == 'replica: ' + res['failure']['message'][len('nothing changed: '):]
    assert channel.finished == 1 and res['peer'] == '10.0.0.11'
    assert not os.path.exists(staging)


def test_the_sources_abort_after_the_accept_is_answered_with_the_failure(tmp_path, run):
    channel = FakeChannel([(transfer.ABORT, {'reason': 'mariadb-backup failed (exit code 1)'})])
    staging = str(tmp_path / 'staging')
    res = run(tmp_path, channel=channel, staging_dir=staging, token=TOKEN,
              port=4444)
    cause = 'nothing changed: the source 10.0.0.11: mariadb-backup failed (exit code 1)'
    assert res['msg'] == 'backup_receive into %s on port 4444: %s' % (staging, cause)
    assert res['failure'] == dict(step='start', side='source', code='source_abort',
                                  changed_nothing=True, message=cause)
    assert [kind for kind, obj in channel.sent] == [transfer.ACCEPT, transfer.RESULT]
    assert channel.sent[1][1] == {'ok': False, 'error': cause, 'failure': res['failure']}
    assert channel.finished == 1 and res['changed'] is False and not os.path.exists(staging)


def source_end(frames):
    """A real loopback connection: (the receiver's Channel, a thread that plays the source:
    sends frames, then reads the receiver's answer into .answer)."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)
    far = socket.create_connection(server.getsockname())
    near = server.accept()[0]
    server.close()
    source = transfer.Channel(far, 'the replica', 10)

    def play():
        for kind, obj in frames:
            source.send(kind, obj if isinstance(obj, bytes) else json.dumps(obj).encode('utf-8'))
        source.recv_json(transfer.ACCEPT)
        play.answer = source.recv_json(transfer.RESULT)[1]
        source.close()

    play.answer = None
    thread = threading.Thread(target=play)
    thread.start()
    return transfer.Channel(near, 'the source 127.0.0.1', 10), thread, play


def test_a_source_that_does_not_say_it_succeeded_leaves_the_copy_unsealed_and_changed(
        tmp_path, run):
    channel, thread, play = source_end([(transfer.START, {'compression': 'none'}),
                                        (transfer.DATA, b'x' * 1000),
                                        (transfer.END, {'ok': False})])
    staging = tmp_path / 'staging'
    res = run(tmp_path, channel=channel, staging_dir=str(staging),
              token=TOKEN, port=4444)
    thread.join(10)
    cause = 'the source ended without saying its side succeeded; the copy is not sealed'
    assert res['msg'] == 'backup_receive into %s on port 4444: %s' % (staging, cause)
    assert res['failure'] == dict(step='receive', side='source', code='source_not_ok',
                                  changed_nothing=False, message=cause)
    assert res['changed'] is True and res['sealed'] is False and res['bytes_received'] == 1000
    assert play.answer == {'ok': False, 'error': cause, 'failure': res['failure']}
    assert (staging / 'reseed_receiving').exists() and not (staging / 'reseed_received').exists()


def test_a_whole_stream_is_sealed_and_the_source_told(tmp_path, run):
    channel, thread, play = source_end([(transfer.START, {'compression': 'none'}),
                                        (transfer.DATA, b'y' * 5000),
                                        (transfer.END, {'ok': True})])
    staging = tmp_path / 'staging'
    res = run(tmp_path, channel=channel, staging_dir=str(staging),
              token=TOKEN)
    thread.join(10)
    assert 'failure' not in res and res['changed'] is True and res['sealed'] is True
    assert res['msg'] == 'received 0.00 GB into %s, sealed' % staging
    assert play.answer == {'ok': True, 'sealed': True, 'bytes': 5000}
    assert (staging / 'reseed_received').exists() and (staging / 'stream.bin').stat().st_size == 5000


def test_a_copy_without_its_last_files_fails_at_the_seal(tmp_path, run):
    channel, thread, play = source_end([(transfer.START, {'compression': 'none'}),
                                        (transfer.END, {'ok': True})])
    res = run(tmp_path, channel=channel, staging_dir=str(tmp_path / 's'),
              token=TOKEN, mbstream='')
    thread.join(10)
    assert (res['failure']['step'], res['failure']['side'], res['failure']['code']) == (
        'seal', 'replica', 'incomplete')
    assert res['failure']['changed_nothing'] is False
    assert play.answer['failure'] == res['failure']
    assert res['msg'].endswith(': the stream ended but the copy is incomplete (no '
                               'xtrabackup_checkpoints, no xtrabackup_info (streamed last: the '
                               'stream did not finish)); it is not sealed')
