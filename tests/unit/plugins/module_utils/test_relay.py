# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A receiver's onward hops (module_utils/relay.py) over real sockets: every frame to each
hop, a failed hop stopping alone, the hops opened as the source opens its connection, the
END and RESULT at the end with the upstream kept told, the ABORT of a failed receiver."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import sys
import threading
import time

from ansible_collections.reseed.mariadb.plugins.module_utils import relay, transfer
from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import Pipeline, Stage

TOKEN = 'run-token-1'


def py(code):
    return [sys.executable, '-c', code]


def link():
    """Both ends of a connection: (the receiving end, the sending end)."""
    a, b = socket.socketpair()
    return transfer.Channel(a, 'the source', 5), transfer.Channel(b, 'the replica', 5)


def hops(n):
    """n hops over socket pairs: (the Fanout, the far end of each)."""
    pairs = [socket.socketpair() for i in range(n)]
    fan = relay.Fanout(relay.Forward(transfer.Channel(a, 'replica %d' % i, stall_timeout=5),
                                     'r%d' % i) for i, (a, b) in enumerate(pairs))
    return fan, [transfer.Channel(b, 'inner replica', stall_timeout=5) for a, b in pairs]


def test_a_receiving_pipeline_passes_each_data_frame_on_whole_to_every_hop(tmp_path):
    """A chain's inner replica: the frames it takes go on, from its own receive buffer (one
    write each), byte for byte and frame for frame, to both next hops."""
    upstream, channel = link()
    pairs = [socket.socketpair(), socket.socketpair()]
    writes = [[], []]
    fan = relay.Fanout([relay.Forward(transfer.Channel(Writes(a, writes[n]), 'hop %d' % n, 5),
                                      'h%d' % n) for n, (a, b) in enumerate(pairs)])
    far = [transfer.Channel(b, 'inner replica', 5) for a, b in pairs]
    got = [[], []]

    def read(n):
        while True:
            kind, payload = far[n].recv()
            got[n].append((kind, bytes(payload)))
            if kind == transfer.END:
                return

    readers = [threading.Thread(target=read, args=(n,)) for n in (0, 1)]
    for r in readers:
        r.start()
    frames = [os.urandom(1 << 20), b'', os.urandom(1000), os.urandom(300000)]
    sender = threading.Thread(target=lambda: [channel.send(transfer.DATA, f) for f in frames]
                              + [channel.send_json(transfer.END, {'ok': True})])
    sender.start()
    out = tmp_path / 'out'
    pipe = Pipeline([Stage('sink', py('import sys; open(%r, "wb").write(sys.stdin.buffer.read())'
                                      % str(out)))], {'received': 0},
                    source=(upstream, 'the stream'), forward=fan)
    assert pipe.run() is None
    sender.join(10)
    for hop in fan.hops:  # END is backup_receive's to pass on, not the pipeline's
        hop.channel.send_json(transfer.END, {'ok': True})
    for r in readers:
        r.join(10)
    assert out.read_bytes() == b''.join(frames)
    for n in (0, 1):
        assert got[n][:-1] == [(transfer.DATA, f) for f in frames]
        assert writes[n][:len(frames)] == [transfer.HEADER.size + len(f) for f in frames]


class Writes(object):
    """A socket that notes the size of each write."""

    def __init__(self, sock, sizes):
        self.sock, self.sizes = sock, sizes

    def sendall(self, data):
        self.sizes.append(len(data))
        return self.sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_a_fanout_passes_every_frame_to_each_hop_and_a_failed_hop_stops_alone():
    """A tree's inner replica: two next hops over real sockets. The first fails mid-stream
    (its RESULT says why); the other gets every frame, then END, and answers; the reports
    come in forward_to's order, the failed one with its reason."""
    pairs = [socket.socketpair(), socket.socketpair()]
    hops = [relay.Forward(transfer.Channel(a, 'replica %d' % n, stall_timeout=5), 'r%d' % n)
            for n, (a, b) in enumerate(pairs)]
    far = [transfer.Channel(b, 'inner replica', stall_timeout=5) for a, b in pairs]
    fan = relay.Fanout(hops)
    fan.frame(transfer.DATA, b'one')
    assert [c.recv() for c in far] == [(transfer.DATA, bytearray(b'one'))] * 2
    far[0].send_json(transfer.RESULT, {'ok': False, 'error': 'disk full'})
    fan.frame(transfer.DATA, b'two')
    fan.frame(transfer.DATA, b'three')
    assert not hops[0].alive and 'disk full' in hops[0].error and fan.alive
    assert [far[1].recv(), far[1].recv()] == [(transfer.DATA, bytearray(b'two')),
                                              (transfer.DATA, bytearray(b'three'))]
    # END reaches the live hop before any RESULT is awaited: it answers after reading it.
    answer = threading.Thread(target=lambda: (
        far[1].recv_json(transfer.END),
        far[1].send_json(transfer.RESULT, {'ok': True, 'sealed': True, 'bytes': 8})))
    answer.start()
    reports = fan.finish({'ok': True})
    answer.join(5)
    assert reports[1] == {'destination': 'r1', 'ok': True, 'sealed': True, 'bytes': 8}
    assert reports[0]['destination'] == 'r0' and reports[0]['ok'] is False and \
        'disk full' in reports[0]['error']
    assert fan.report() == reports
    fan.stop('late')  # hops already ended keep their own reason
    assert 'disk full' in fan.report()[0]['error']
    for c in far:
        c.sock.close()


def test_open_fanout_passes_the_hello_on_and_reports_a_hop_it_cannot_reach(free_port):
    """A next receiver that listens gets the source's HELLO as it came (its token) and
    answers ACCEPT; one where nothing listens is in the fanout, stopped, with the reason."""
    port, dead = free_port(), free_port()
    listener = transfer.Listener(transfer.bind('127.0.0.1', port), ['127.0.0.1'], TOKEN)
    accepted = {}

    def serve():
        accepted['channel'], accepted['hello'] = listener.accept(time.time() + 10)
        accepted['channel'].send_json(transfer.ACCEPT, {'staging': 'absent'})

    server = threading.Thread(target=serve)
    server.start()
    hello = {'magic': transfer.MAGIC, 'token': TOKEN, 'expected_bytes': 5}
    fan = relay.open_fanout(hello, [dict(destination='127.0.0.1', port=None, peer_cert=None),
                                    dict(destination='127.0.0.1', port=dead, peer_cert=None)],
                            port, connect_timeout=1, stall_timeout=5)
    server.join(10)
    listener.close()
    assert accepted['hello'] == hello
    assert [hop.alive for hop in fan.hops] == [True, False] and fan.alive
    report = fan.report()[1]
    assert report['destination'] == '127.0.0.1' and report['ok'] is False
    assert report['error'].startswith("cannot connect to the replica's receiver at 127.0.0.1:%d: "
                                      % dead)
    fan.stop('done')
    accepted['channel'].close()


def test_finish_keeps_the_upstream_told_while_the_hops_answer(monkeypatch):
    """END goes on; while the next hop takes its time to answer, the source (upstream)
    hears keepalives, so that it does not take the quiet for a cut link."""
    monkeypatch.setattr(transfer, 'KEEPALIVE_EVERY', 0.0)
    fan, far = hops(1)
    upstream, source = link()

    def answer():
        far[0].recv_json(transfer.END)
        time.sleep(1.5)
        far[0].send_json(transfer.RESULT, {'ok': True, 'sealed': True, 'bytes': 3})

    hop = threading.Thread(target=answer)
    hop.start()
    reports = relay.finish(fan, {'ok': True}, upstream)
    hop.join(5)
    assert reports == [{'destination': 'r0', 'ok': True, 'sealed': True, 'bytes': 3}]
    assert source.recv(skip_keepalive=False)[0] == transfer.KEEPALIVE


def test_abort_tells_every_live_hop_why_and_reports_them():
    fan, far = hops(2)
    fan.hops[1].stop('disk full')
    reports = relay.abort(fan, 'mbstream -x on the replica failed (exit code 1)')
    kind, payload = far[0].recv()
    assert kind == transfer.ABORT and json.loads(bytes(payload).decode('utf-8')) == {
        'reason': 'the previous replica stopped: mbstream -x on the replica failed (exit code 1)'}
    assert reports == [
        dict(destination='r0', ok=False, sealed=False,
             error='not sent on: mbstream -x on the replica failed (exit code 1)'),
        dict(destination='r1', ok=False, sealed=False, error='disk full')]
    assert not fan.alive
