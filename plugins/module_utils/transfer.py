# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stream's own connection between the source and the replica.

Ansible starts both ends: backup_receive listens on the replica, backup_stream connects
from the source. That connection is the only thing that passes between the two database
hosts. Over it travel frames (a kind byte, a 4-byte length, the payload):

    source                                      replica
    HELLO {magic, token, expected_bytes} ──▶    (peer address checked, TLS peer pinned)
                                         ◀──   ACCEPT {facts} | REFUSE {reason}
    PROBE ... PROBE_END (compression=auto) ──▶
                                         ◀──   PROBE_RESULT {bytes, ns}
    START {compression}                  ──▶    staging directory made, extractor started
    DATA ... (KEEPALIVE while quiet)     ──▶
    END {ok, ...} | ABORT {reason}       ──▶
                                         ◀──   RESULT {ok, sealed, error}

Framing rather than a raw byte stream, because the receiver cannot see how mariadb-backup
ended: only the END frame, sent once every program on the source succeeded, lets it seal
the copy. KEEPALIVE frames every KEEPALIVE_EVERY seconds let either end tell a quiet source
(mariadb-backup waiting for a lock) from a cut link: nothing at all for stall_timeout
seconds is a cut link, on every transport (TCP itself would retry for about 15 minutes).

Transports: ``tls`` (each end presents a throwaway certificate made for this run and pins
the other's; TLS runs over memory BIOs, TlsSocket, so a frame goes out in one write and the
socket is read in large pieces), ``tcp`` (plain, for trusted networks), ``ssh`` (the source's ssh client opens
a tunnel, ``ssh -W``, to the receiver listening on the replica's loopback). Every transport
carries a per-run token in HELLO, so that a stray local or network client is turned away.

A receiver's onward hops (a chain or a tree of replicas) are module_utils/relay.py's.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import hmac
import json
import select
import socket
import ssl
import struct
import subprocess
import time

MAGIC = 'reseed-stream-1'
HEADER = struct.Struct('!cI')
MAX_FRAME = 16 << 20
HELLO, ACCEPT, REFUSE = b'H', b'A', b'X'
PROBE, PROBE_END, PROBE_RESULT = b'P', b'p', b'r'
START, DATA, KEEPALIVE, END, ABORT, RESULT = b'S', b'D', b'K', b'E', b'Z', b'R'
KEEPALIVE_EVERY = 10.0
HANDSHAKE_TIMEOUT = 15.0
CONNECT_ATTEMPT = 5.0  # one TCP connect; a dropped SYN waits this long
RETRY_EVERY = 0.3


def argument_spec():
    """The options both ends share (documented in doc_fragments/transfer.py)."""
    return dict(
        port=dict(type='int', default=4444),
        token=dict(type='str', no_log=True),
        preflight=dict(type='bool', default=False),
        tls_cert=dict(type='path'),
        tls_key=dict(type='path', no_log=False),
        peer_cert=dict(type='str'),
        stall_timeout=dict(type='int', default=60),
    )


# A real run needs the token; a preflight (preflight=true) does not (AnsibleModule's required_if).
REQUIRED_IF = [('preflight', False, ['token'])]


class TransferError(Exception):
    """The connection failed; the message says where and, when it can, what to do. code:
    how it failed, for a module's failure (module_utils/failure.py), else connection_lost."""
    code = 'connection_lost'

    def __init__(self, message, code=None):
        Exception.__init__(self, message)
        if code:
            self.code = code


class Stalled(TransferError):
    """Nothing moved for stall_timeout seconds."""
    code = 'stalled'


class PeerAbort(TransferError):
    """The other end said it stopped (ABORT, REFUSE, or RESULT with ok false). said: its
    frame as a dict (with the other end's C(failure) fields when it sent them)."""

    def __init__(self, message, said=None):
        TransferError.__init__(self, message)
        self.said = said or {}

    @classmethod
    def of(cls, name, payload):
        """The PeerAbort of the frame payload that `name` sent."""
        return cls(reason_of(name, payload), frame_dict(payload))


def fingerprint(pem):
    """SHA-256 of a PEM certificate's DER form, as hex pairs (what `openssl x509
    -fingerprint -sha256` prints, lower case)."""
    der = ssl.PEM_cert_to_DER_cert(pem.strip() + '\n')
    return ':'.join('%02x' % b for b in bytearray(hashlib.sha256(der).digest()))


def der_fingerprint(der):
    return ':'.join('%02x' % b for b in bytearray(hashlib.sha256(der).digest()))


def tls_context(server, cert_file, key_file, peer_pem):
    """A context that presents cert_file and trusts exactly one certificate: the peer's,
    made for this run (checked again by fingerprint after the handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.check_hostname = False  # the peer is its certificate, not a name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=peer_pem.strip() + '\n')
    # The peer's self-signed certificate is the whole chain.
    ctx.verify_flags |= getattr(ssl, 'VERIFY_X509_PARTIAL_CHAIN', 0)
    return ctx


class TlsSocket(object):
    """TLS over a connected socket through memory BIOs: the socket methods Channel uses.
    Unlike ssl.SSLSocket, which writes each 16 KB TLS record with its own system call and
    reads each with two, this encrypts a whole frame into memory and sends it in one write
    (full-size TCP segments), and reads all the socket holds at once, then decrypts the
    records from memory."""

    READ_SIZE = 1 << 20

    def __init__(self, sock, context, server_side):
        self.raw = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side)
        self.buf = bytearray(self.READ_SIZE)
        self.closed_tls = False
        try:
            while True:
                try:
                    self.obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    if not self._fill():
                        raise ssl.SSLEOFError('EOF occurred in violation of protocol')
        finally:
            self._flush_quietly()  # the last handshake message, or the alert saying why not

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def _flush_quietly(self):
        try:
            self._flush()
        except OSError:
            pass

    def _fill(self):
        """Raw bytes from the socket into the TLS object; False at the peer's close."""
        n = self.raw.recv_into(self.buf)
        if not n:
            return False
        self.incoming.write(memoryview(self.buf)[:n])
        return True

    def sendall(self, data):
        if self.closed_tls:
            return self.raw.sendall(data)
        self.obj.write(data)
        self._flush()

    def recv_into(self, view, n=0):
        if self.closed_tls:
            return self.raw.recv_into(view, n)
        n = n or len(view)
        while True:
            try:
                return self.obj.read(n, view)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    return 0
            except ssl.SSLZeroReturnError:
                return 0

    def recv(self, n):
        buf = bytearray(n)
        k = self.recv_into(buf, n)
        return bytes(buf[:k])

    def settimeout(self, timeout):
        self.raw.settimeout(timeout)

    def fileno(self):
        return self.raw.fileno()

    def getpeername(self):
        return self.raw.getpeername()

    def getpeercert(self, binary_form=False):
        return self.obj.getpeercert(binary_form)

    def shutdown(self, how):
        self.closed_tls = True  # as ssl.SSLSocket: what follows is the bare socket
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()


class Channel(object):
    """Frames over a connected socket (plain or TLS). Not for concurrent use: one thread
    writes or reads at a time (OpenSSL objects are not thread-safe)."""

    def __init__(self, sock, name, stall_timeout=60.0):
        self.sock = sock
        self.name = name  # the other end, for messages ('replica 10.0.0.12:4444')
        self.stall_timeout = stall_timeout
        self.sock.settimeout(stall_timeout)
        self.last_sent = time.time()
        self.sent_bytes = 0
        self.received_bytes = 0

    def send(self, kind, payload=b''):
        if len(payload) < 65536:
            self._sendall(HEADER.pack(kind, len(payload)) + payload, len(payload))
        else:
            self._sendall(HEADER.pack(kind, len(payload)), 0)
            self._sendall(payload, len(payload))

    def send_framed(self, kind, frame, length):
        """Send a frame built in place: frame (a writable buffer) holds the payload's
        `length` bytes after HEADER.size free bytes, where the header goes. One write, one
        TLS record run, no copy (the stream's DATA frames)."""
        HEADER.pack_into(frame, 0, kind, length)
        self._sendall(memoryview(frame)[:HEADER.size + length], length)

    def _sendall(self, data, counted):
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Stalled('%s took no bytes for %d s: the link is cut or the other end hangs'
                          % (self.name, self.stall_timeout))
        except (OSError, ssl.SSLError) as e:
            raise TransferError('sending to %s failed: %s' % (self.name, e))
        self.sent_bytes += counted
        self.last_sent = time.time()

    def send_json(self, kind, obj):
        self.send(kind, json.dumps(obj).encode('utf-8'))

    def keepalive(self):
        if time.time() - self.last_sent >= KEEPALIVE_EVERY:
            self.send(KEEPALIVE)

    def _recv_exact(self, n, into=None):
        """n bytes: a new bytearray, or a view of `into` (a buffer of at least n bytes)."""
        buf = bytearray(n) if into is None else into
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self.sock.recv_into(view[got:n], n - got)
            except socket.timeout:
                raise Stalled('nothing came from %s for %d s: the link is cut or the other '
                              'end hangs' % (self.name, self.stall_timeout))
            except (OSError, ssl.SSLError) as e:
                raise TransferError('reading from %s failed: %s' % (self.name, e))
            if k == 0:
                raise TransferError('%s closed the connection%s' % (
                    self.name, ' mid-frame' if got else ''))
            got += k
        return buf if into is None else view[:n]

    def fileno(self):
        return self.sock.fileno()

    def poll(self):
        """The frame the other end sent, if it sent one, without waiting for one (the fd was
        readable: with TLS that may be a session ticket and no frame at all); None if none."""
        self.sock.settimeout(0.0)
        try:
            first = self.sock.recv(1)
        except (ssl.SSLWantReadError, BlockingIOError, socket.timeout):
            return None
        except (OSError, ssl.SSLError) as e:
            raise TransferError('reading from %s failed: %s' % (self.name, e))
        finally:
            self.sock.settimeout(self.stall_timeout)
        if not first:
            raise TransferError('%s closed the connection' % self.name)
        return self.recv(first=bytes(first))

    def recv(self, skip_keepalive=True, first=b'', into=None):
        """The next frame as (kind, payload); first: its first bytes, already read. into: a
        buffer for payloads that fit in it (the payload is then a view of it, valid until
        the next call); others come as a new bytearray."""
        while True:
            kind, length = HEADER.unpack(first + bytes(self._recv_exact(HEADER.size - len(first))))
            first = b''
            if length > MAX_FRAME:
                raise TransferError('%s sent a frame of %d bytes: not a reseed stream'
                                    % (self.name, length))
            if not length:
                payload = bytearray()
            elif into is not None and length <= len(into):
                payload = self._recv_exact(length, into)
            else:
                payload = self._recv_exact(length)
            self.received_bytes += length
            if kind == KEEPALIVE and skip_keepalive:
                continue
            return kind, payload

    def recv_json(self, *expected):
        kind, payload = self.recv()
        if kind not in expected:
            if kind in (ABORT, REFUSE, RESULT):
                raise PeerAbort.of(self.name, payload)
            raise TransferError('%s sent an unexpected frame %r' % (self.name, kind))
        return kind, json.loads(bytes(payload).decode('utf-8') or '{}')

    def finish(self, grace=5.0):
        """Close without losing the last frame sent: a close with unread bytes pending
        sends a reset, which can destroy that frame before the other end reads it. So stop
        writing, and read (and drop) what still comes until the other end closes too."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(0.5)
            deadline = time.time() + grace
            while time.time() < deadline:
                try:
                    if not self.sock.recv(1 << 16):
                        break
                except socket.timeout:
                    continue
        except (OSError, ValueError):
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame_dict(payload):
    """A frame's JSON payload as a dict ({} when it is not one)."""
    try:
        data = json.loads(bytes(payload).decode('utf-8') or '{}')
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def reason_of(name, payload):
    try:
        data = json.loads(bytes(payload).decode('utf-8'))
        return '%s: %s' % (name, data.get('reason') or data.get('error') or data)
    except ValueError:
        return '%s stopped' % name


def token_ok(given, expected):
    return hmac.compare_digest(str(given or '').encode('utf-8'), str(expected or '').encode('utf-8'))


def resolve(host):
    """Every IP address a name (or address) stands for."""
    return sorted(set(info[4][0] for info in socket.getaddrinfo(host, None, 0,
                                                                socket.SOCK_STREAM)))


def bind(address, port):
    """A listening socket, or TransferError naming the address and the port."""
    family = socket.AF_INET6 if ':' in (address or '') else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address or '', port))
        sock.listen(8)
    except OSError as e:
        sock.close()
        raise TransferError('cannot listen on %s:%d: %s' % (address or '*', port,
                                                            e.strerror or e))
    return sock


class Listener(object):
    """The replica's end: accepts the one connection of this run and turns away any other
    (another address, a failed TLS handshake, a wrong token), each noted in ``refused``."""

    def __init__(self, sock, allowed, token, tls=None, stall_timeout=60.0):
        self.sock = sock
        self.allowed = set(allowed)
        self.token = token
        self.tls = tls
        self.stall_timeout = stall_timeout
        self.refused = []

    def accept(self, deadline, should_stop=None):
        """(Channel, hello dict) of the source's connection. TransferError when nothing
        right came before the deadline, or should_stop() said so."""
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TransferError(
                    'the source did not connect within the accept timeout%s'
                    % ('; turned away: ' + '; '.join(self.refused[-3:]) if self.refused else ''))
            if should_stop is not None:
                reason = should_stop()
                if reason:
                    raise TransferError(reason)
            ready = select.select([self.sock], [], [], min(left, 1.0))[0]
            if not ready:
                continue
            conn, peer = self.sock.accept()
            result = self._admit(conn, peer[0])
            if result is not None:
                return result

    def _admit(self, conn, ip):
        if ip not in self.allowed and not (ip.startswith('::ffff:') and ip[7:] in self.allowed):
            self.refused.append('%s: not the source\'s address' % ip)
            conn.close()
            return None
        conn.settimeout(HANDSHAKE_TIMEOUT)
        try:
            if self.tls is not None:
                conn = TlsSocket(conn, self.tls, True)
            channel = Channel(conn, 'the source %s' % ip, HANDSHAKE_TIMEOUT)
            kind, hello = channel.recv_json(HELLO)
        except (TransferError, ssl.SSLError, OSError, ValueError) as e:
            self.refused.append('%s: %s' % (ip, e))
            conn.close()
            return None
        if hello.get('magic') != MAGIC or not token_ok(hello.get('token'), self.token):
            self.refused.append('%s: not this run\'s stream (wrong token)' % ip)
            channel.close()
            return None
        channel.sock.settimeout(self.stall_timeout)
        channel.stall_timeout = self.stall_timeout
        return channel, hello

    def close(self):
        self.sock.close()


def connect(host, port, deadline, tls=None, peer_fingerprint=None,
            stall_timeout=60.0):
    """The source's end over tls or tcp: retries until the deadline (the receiver may not
    listen yet), then returns a Channel. TransferError says what stood in the way."""
    last = None
    while True:
        left = deadline - time.time()
        try:
            sock = socket.create_connection((host, port), timeout=max(0.5, min(CONNECT_ATTEMPT, left)))
        except socket.timeout:
            last = 'timed out (a firewall drops the port?)'
        except OSError as e:
            last = e.strerror or str(e)
        else:
            break
        if time.time() + RETRY_EVERY >= deadline:
            raise TransferError('cannot connect to the replica\'s receiver at %s:%d: %s' % (
                host, port, last), 'unreachable')
        time.sleep(RETRY_EVERY)
    name = 'the replica %s:%d' % (host, port)
    if tls is not None:
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            sock = TlsSocket(sock, tls, False)
        except (ssl.SSLError, OSError) as e:
            sock.close()
            raise TransferError('TLS handshake with %s failed: %s' % (name, e), 'tls_handshake')
        got = der_fingerprint(sock.getpeercert(binary_form=True))
        if peer_fingerprint and got != peer_fingerprint.lower():
            sock.close()
            raise TransferError('%s presented certificate %s, not this run\'s %s'
                                % (name, got, peer_fingerprint), 'wrong_certificate')
    return Channel(sock, name, stall_timeout)


def ssh_tunnel(ssh_argv, port, deadline, stall_timeout=60.0):
    """The source's end over ssh: ``ssh -W 127.0.0.1:port`` with its stdin and stdout on one
    end of a socket pair, so the frames travel as over tcp. ssh_argv ends with the
    destination ([user@]host). Returns (Channel, process).
    A refused forward (nothing listens yet) is retried until the deadline."""
    while True:
        mine, theirs = socket.socketpair()
        argv = ssh_argv[:-1] + ['-W', '127.0.0.1:%d' % port, ssh_argv[-1]]
        proc = subprocess.Popen(argv, stdin=theirs,
                                stdout=theirs, stderr=subprocess.PIPE, close_fds=True)
        theirs.close()
        # ssh says nothing on success; a failed login or forward ends it at once.
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return Channel(mine, 'the replica (ssh tunnel to its port %d)' % port,
                           stall_timeout), proc
        mine.close()
        err = proc.stderr.read().decode('utf-8', 'replace').strip()
        proc.stderr.close()
        if 'open failed' in err and 'Connection refused' in err and time.time() < deadline:
            time.sleep(RETRY_EVERY)
            continue
        raise TransferError('ssh to the replica failed (exit code %s): %s' % (
            proc.returncode, ' | '.join(err.splitlines()[-3:]) or 'no message'), 'ssh')
