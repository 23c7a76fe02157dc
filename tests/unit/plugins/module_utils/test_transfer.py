# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stream's connection on loopback: real sockets, real TLS with real openssl
certificates, the peer checks, the frames, stall detection, and the pipeline's pumps."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import transfer
from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import Pipeline, Stage

pytestmark = pytest.mark.skipif(not shutil.which('openssl'), reason='openssl is not installed')
TOKEN = 'run-token-1'


def make_cert(directory, name):
    key, cert = str(directory / (name + '.key')), str(directory / (name + '.pem'))
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj',
                    '/CN=' + name, '-keyout', key, '-out', cert], check=True,
                   capture_output=True)
    with open(cert) as f:
        return dict(key=key, cert=cert, pem=f.read())


@pytest.fixture(scope='module')
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp('certs')
    return dict((n, make_cert(d, n)) for n in ('source', 'replica', 'intruder'))


class Server(threading.Thread):
    """A listener in a thread; .channel, .hello, .error once it accepted or gave up."""

    def __init__(self, port, allowed=('127.0.0.1',), tls=None, timeout=10, stall=60.0):
        super(Server, self).__init__()
        self.daemon = True
        self.listener = transfer.Listener(transfer.bind('127.0.0.1', port), allowed, TOKEN,
                                          tls, stall)
        self.timeout = timeout
        self.channel = self.hello = self.error = None

    def run(self):
        try:
            self.channel, self.hello = self.listener.accept(time.time() + self.timeout)
            self.channel.send_json(transfer.ACCEPT, {'staging': 'absent'})
        except transfer.TransferError as e:
            self.error = e
        finally:
            self.listener.close()


def connected(port, **kw):
    """A plain connection on port, accepted: (Server, the source's Channel)."""
    server = Server(port, **kw)
    server.start()
    channel = transfer.connect('127.0.0.1', port, time.time() + 5)
    hello(channel)
    server.join(5)
    return server, channel


def hello(channel, token=TOKEN):
    channel.send_json(transfer.HELLO, {'magic': transfer.MAGIC, 'token': token,
                                       'expected_bytes': 5})
    return channel.recv_json(transfer.ACCEPT)[1]


def tls_pair(certs, client='source'):
    server = transfer.tls_context(True, certs['replica']['cert'], certs['replica']['key'],
                                  certs['source']['pem'])
    client_ctx = transfer.tls_context(False, certs[client]['cert'], certs[client]['key'],
                                      certs['replica']['pem'])
    return server, client_ctx


def test_tls_both_ends_pinned_and_frames_arrive(certs, free_port):
    port = free_port()
    server_ctx, client_ctx = tls_pair(certs)
    server = Server(port, tls=server_ctx)
    server.start()
    channel = transfer.connect('127.0.0.1', port, time.time() + 10, client_ctx,
                               transfer.fingerprint(certs['replica']['pem']))
    assert hello(channel) == {'staging': 'absent'}
    server.join(5)
    assert server.hello['expected_bytes'] == 5 and server.listener.refused == []
    payload = os.urandom(3 << 20)
    frames = []
    reader = threading.Thread(target=lambda: frames.extend(
        [server.channel.recv(), server.channel.recv_json(transfer.END)]))
    reader.start()
    channel.send(transfer.DATA, payload)
    channel.send(transfer.KEEPALIVE)
    channel.send_json(transfer.END, {'ok': True})
    reader.join(10)
    assert frames[0][0] == transfer.DATA and bytes(frames[0][1]) == payload
    assert frames[1][1] == {'ok': True}  # the keepalive skipped
    channel.close()
    server.channel.close()


def test_a_peer_with_another_certificate_is_turned_away_and_the_source_still_gets_in(
        certs, free_port):
    port = free_port()
    server_ctx, client_ctx = tls_pair(certs)
    server = Server(port, tls=server_ctx)
    server.start()
    intruder_ctx = tls_pair(certs, client='intruder')[1]
    with pytest.raises(transfer.TransferError):
        bad = transfer.connect('127.0.0.1', port, time.time() + 10, intruder_ctx)
        hello(bad)  # TLS 1.3: the server's verdict on the client certificate comes later
    channel = transfer.connect('127.0.0.1', port, time.time() + 10, client_ctx,
                               transfer.fingerprint(certs['replica']['pem']))
    assert hello(channel) == {'staging': 'absent'}
    server.join(5)
    assert len(server.listener.refused) == 1 and 'certificate' in server.listener.refused[0]
    channel.close()


def test_the_source_refuses_a_replica_with_another_certificate(certs, free_port):
    port = free_port()
    impostor = transfer.tls_context(True, certs['intruder']['cert'], certs['intruder']['key'],
                                    certs['source']['pem'])
    server = Server(port, tls=impostor, timeout=3)
    server.start()
    client_ctx = tls_pair(certs)[1]
    with pytest.raises(transfer.TransferError, match='TLS handshake with the replica') as e:
        transfer.connect('127.0.0.1', port, time.time() + 5, client_ctx,
                         transfer.fingerprint(certs['replica']['pem']))
    server.join(5)
    assert e.value.code == 'tls_handshake'


def test_wrong_token_and_wrong_address_are_turned_away(free_port):
    port = free_port()
    server = Server(port, allowed=('127.0.0.1',), timeout=3)
    server.start()
    channel = transfer.connect('127.0.0.1', port, time.time() + 5)
    with pytest.raises(transfer.TransferError, match='closed the connection'):
        hello(channel, token='guess')
    server.join(5)
    assert 'wrong token' in server.listener.refused[0]
    assert 'did not connect' in str(server.error)

    other = Server(free_port(), allowed=('10.213.47.99',), timeout=2)
    other.start()
    with pytest.raises(transfer.TransferError):
        hello(transfer.connect('127.0.0.1', other.listener.sock.getsockname()[1],
                               time.time() + 5))
    other.join(5)
    assert "not the source's address" in other.listener.refused[0]


def test_nothing_listening_is_said_with_the_port(free_port):
    port = free_port()
    started = time.time()
    with pytest.raises(transfer.TransferError, match=r'127.0.0.1:%d: Connection refused' % port) as e:
        transfer.connect('127.0.0.1', port, time.time() + 1.0)
    assert time.time() - started < 3
    assert e.value.code == 'unreachable'


def test_a_port_in_use_cannot_be_bound():
    sock = transfer.bind('127.0.0.1', 0)
    with pytest.raises(transfer.TransferError, match='cannot listen on 127.0.0.1:%d'
                       % sock.getsockname()[1]):
        transfer.bind('127.0.0.1', sock.getsockname()[1])
    sock.close()


def test_a_silent_peer_is_a_stall_not_a_hang(free_port):
    server, channel = connected(free_port(), stall=1.0)
    started = time.time()
    with pytest.raises(transfer.Stalled, match='nothing came from the source'):
        server.channel.recv()
    assert 0.9 < time.time() - started < 5
    channel.close()


def py(code):
    return [sys.executable, '-c', code]


def test_pipeline_ends_on_the_connection_and_the_receiving_pipeline_begins_on_it(
        tmp_path, free_port):
    server, channel = connected(free_port())
    out = tmp_path / 'out'
    results = {}

    def receive():
        pipe = Pipeline([Stage('sink', py('import sys; open(%r, "wb").write(sys.stdin.buffer.read())'
                                          % str(out)))], {'received': 0},
                        source=(server.channel, 'the stream'))
        results['blamed'] = pipe.run()
        results['counts'] = pipe.counts()
        results['end'] = pipe.relays[0].end

    receiver = threading.Thread(target=receive)
    receiver.start()
    send = Pipeline([Stage('source', py('import sys; sys.stdout.buffer.write(b"x" * 5000000)'))],
                    {'read': 0, 'sent': 0}, sink=(channel, 'the link'))
    assert send.run() is None
    channel.send_json(transfer.END, {'ok': True})
    receiver.join(10)
    assert results['blamed'] is None and results['end'] == {'ok': True}
    assert send.counts() == {'read': 5000000, 'sent': 5000000}
    assert results['counts'] == {'received': 5000000} and out.stat().st_size == 5000000


def test_the_senders_abort_is_blamed_on_the_receiving_side(free_port):
    server, channel = connected(free_port())
    channel.send(transfer.DATA, b'abc')
    channel.send_json(transfer.ABORT, {'reason': 'mariadb-backup failed (exit code 1)'})
    pipe = Pipeline([Stage('sink', py('import sys; sys.stdin.buffer.read()'))], {'received': 0},
                    source=(server.channel, 'the stream from the source'))
    blamed = pipe.run()
    assert 'mariadb-backup failed (exit code 1)' in blamed.describe(lambda t: t)
