# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a chain of programs without a shell, count the bytes between them, know who failed.

    [channel -->] stage 1 --pipe--> relay --pipe--> stage 2 --pipe--> relay --pipe--> stage 3 [--> channel]

Each stage is its own process (argv list, no shell). Between two stages a relay thread
moves the bytes with os.splice (kernel to kernel, no copy into Python), counts them, can cap
the rate, and lets the progress file be written. Pipes are enlarged (F_SETPIPE_SZ) so the
programs do not ping-pong through 64 KiB buffers. When the chain fails, the stage blamed
is the root cause: a stage that only died of a broken pipe because a later one had gone is
a victim, not the cause.

The chain may begin or end on the stream's connection (module_utils/transfer.py): a pump
thread then moves the bytes between the connection's DATA frames and the first or last
program, and a failed connection (cut link, the other end's abort) is blamed before the
programs it took down with it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time

from ansible_collections.reseed.mariadb.plugins.module_utils import transfer

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
CHUNK = 1 << 20
TAIL_BYTES = 4096
VICTIM_TEXTS = ('Broken pipe', 'EPIPE', 'errno 32', 'Errno 32', 'Connection reset by peer')
SIDE_GRACE = 5.0  # seconds a side stage may outlive a failed chain before it is stopped


class Stage(object):
    """One program of the chain: a name for messages, its argv, and what success means."""

    def __init__(self, name, argv, ok_text=None, env=None):
        self.name = name
        self.argv = argv
        self.ok_text = ok_text  # a text its stderr must contain on success
        self.env = env
        self.proc = None
        self.stderr_file = None
        self.returncode = None
        self.stderr_tail = ''
        self.stopped = False  # killed by the runner once another stage had failed
        self.tail_lock = threading.Lock()  # peek() reads the file another thread closes

    def peek(self, size=TAIL_BYTES):
        """The last `size` bytes its stderr has written so far, while it runs (b'' before it
        started or once the run has ended)."""
        with self.tail_lock:
            if self.stderr_file is None:
                return b''
            fd = self.stderr_file.fileno()
            end = os.fstat(fd).st_size
            return os.pread(fd, size, max(0, end - size))

    def failed(self):
        if self.returncode != 0:
            return True
        return bool(self.ok_text) and self.ok_text not in self.stderr_tail

    def victim(self):
        """Died of a broken pipe (a later stage went away first), or stopped by us.

        A stage killed by another signal is a cause whatever it printed: an ssh whose remote
        command was killed (exit code 128 + signal) may carry the remote side's own
        "Broken pipe" along; an ssh that lost its connection exits 255."""
        rc = self.returncode
        if self.stopped or rc in (-signal.SIGPIPE, 128 + signal.SIGPIPE):
            return True
        if rc is not None and (rc < 0 or rc > 128):
            return False
        return any(t in self.stderr_tail for t in VICTIM_TEXTS)

    def describe(self, scrub):
        rc = self.returncode
        what = ('exit code %s' % rc if rc is not None and rc >= 0 else
                'killed by signal %s' % -(rc or 0))
        if rc is not None and 128 < rc < 128 + 65:
            what += ', killed by signal %d' % (rc - 128)
        if self.returncode == 0 and self.ok_text:
            what = 'exit code 0 without "%s"' % self.ok_text
        # (mbstream rings the terminal's bell in its messages: control characters go.)
        tail = ' | '.join(''.join(c for c in line.strip() if c.isprintable())
                          for line in self.stderr_tail.strip().splitlines()[-4:])
        return '%s failed (%s)%s' % (self.name, what, ': ' + scrub(tail) if tail else '')


def make_pipe():
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:  # above /proc/sys/fs/pipe-max-size for this user: keep the default
        pass
    return r, w


class Relay(threading.Thread):
    """Moves bytes from one pipe to the next with splice, counting; optional rate cap."""

    def __init__(self, src, dst, rate_limit=0):
        super(Relay, self).__init__()
        self.daemon = True
        self.src, self.dst = src, dst
        self.bytes = 0
        self.rate_limit = rate_limit  # bytes per second, 0 for none
        self.error = None
        self.started = time.time()

    def run(self):
        try:
            while True:
                try:
                    n = os.splice(self.src, self.dst, CHUNK)
                except OSError as e:
                    if e.errno == errno.EINTR:
                        continue
                    raise
                if n == 0:
                    break
                self.counted(n)
        except OSError as e:
            self.error = e  # EPIPE: the next stage went away; the stages say why
        finally:
            os.close(self.src)
            os.close(self.dst)

    def counted(self, n):
        self.bytes += n
        if self.rate_limit:
            ahead = self.bytes / float(self.rate_limit) - (time.time() - self.started)
            if ahead > 0:
                time.sleep(ahead)


class Pump(Relay):
    """A relay with the connection at one end. src/dst: a pipe's fd, or the Channel."""

    def __init__(self, src, dst, name, rate_limit=0, forward=None):
        super(Pump, self).__init__(src, dst, rate_limit)
        self.name = name
        self.end = None  # what the END frame said (receiving side)
        self.forward = forward  # relay.Fanout: the frames go on to the next hops too

    def run(self):
        try:
            if isinstance(self.src, transfer.Channel):
                self.receive()
            else:
                self.send()
        except (OSError, transfer.TransferError) as e:
            self.error = e
        finally:
            if not isinstance(self.src, transfer.Channel):
                os.close(self.src)
            if not isinstance(self.dst, transfer.Channel):
                os.close(self.dst)

    def send(self):
        """The last program's output as DATA frames, a KEEPALIVE while it is quiet. The
        receiver says nothing until the end unless it fails: then its frame says why.
        Each frame is read and sent from one buffer, the header before the payload."""
        frame = bytearray(transfer.HEADER.size + CHUNK)
        payload = memoryview(frame)[transfer.HEADER.size:]
        while True:
            ready = select.select([self.src, self.dst], [], [], transfer.KEEPALIVE_EVERY)[0]
            if self.dst in ready:
                said = self.dst.poll()
                if said is not None:
                    raise transfer.PeerAbort.of(self.dst.name, said[1])
            if not ready:
                self.dst.keepalive()
                continue
            if self.src not in ready:
                continue
            n = os.readv(self.src, [payload])
            if not n:
                return
            self.dst.send_framed(transfer.DATA, frame, n)
            self.counted(n)

    def receive(self):
        """DATA frames into the first program, until END (or the sender's ABORT); each into
        one buffer, reused, behind room for a header: a frame passed on to the next hops
        leaves from that buffer in one write."""
        frame = bytearray(transfer.HEADER.size + CHUNK)
        buf = memoryview(frame)[transfer.HEADER.size:]
        while True:
            kind, payload = self.src.recv(into=buf)
            if kind == transfer.DATA:
                if self.forward is not None:
                    self.forward.frame(kind, payload, frame if len(payload) <= CHUNK else None)
                view = memoryview(payload)
                while view:
                    view = view[os.write(self.dst, view):]
                self.counted(len(payload))
            elif kind == transfer.END:
                self.end = json.loads(bytes(payload).decode('utf-8') or '{}')
                return
            elif kind == transfer.ABORT:
                raise transfer.PeerAbort.of(self.src.name, payload)
            else:
                raise transfer.TransferError('%s sent an unexpected frame %r mid-stream'
                                             % (self.src.name, kind))

    def failed(self):
        return self.error is not None

    def victim(self):
        # EPIPE writing into a program that had gone: that program says why.
        return not isinstance(self.error, transfer.TransferError)

    def describe(self, scrub):
        return '%s failed: %s' % (self.name, scrub(str(self.error)))


def estimate(done, expected, elapsed):
    """The progress file's share and ETA for `done` bytes of an `expected` total after
    `elapsed` seconds. The copy includes the redo written while it runs, so it can outgrow
    any estimate: then no share and no ETA (a share past 100 %, or an ETA below zero, would
    be false) but over_estimate, and the line says how much so far."""
    if not expected or not done:
        return {}
    if done >= expected:
        return {'over_estimate': True}
    return {'percent': round(min(99.9, 100.0 * done / expected), 1),
            'eta_seconds': max(0.0, round((expected - done) * elapsed / done, 0))}


def write_json_atomic(path, data):
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.rename(tmp, path)


def read_tail(f):
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - TAIL_BYTES))
    return f.read().decode('utf-8', 'replace')


class Pipeline(object):
    """Run stages chained by relays. counters: the relay positions to report, e.g.
    {'read': 0, 'sent': 1} names relay 0 (after stage 1) and relay 1.

    side: stages outside the chain that run beside it (the receiving end of a tcp stream,
    reached over ssh); started first, blamed after the chain's stages, and stopped
    SIDE_GRACE seconds after the chain has ended with a failure.

    watchdog: a function called about every progress_every seconds, returning None to go on or
    the reason to stop every stage (e.g. the controller that polls this run is gone); the reason is kept in
    ``aborted``.

    source / sink: (Channel, name) the chain begins / ends on; its pump is a relay of its
    own (counted like the others: with a source, relay 0 is the bytes received).
    forward: a relay.Fanout the source's frames go on to, as they arrive.
    progress_extra: a function returning a dict merged into each progress file (e.g. what
    the copy waits for on the source)."""

    def __init__(self, stages, counters, rate_limits=None, progress_file=None,
                 progress_every=1.0, expected_bytes=None, side=(), watchdog=None,
                 source=None, sink=None, forward=None, progress_extra=None):
        if len(stages) + bool(source) + bool(sink) < 2:
            raise ValueError('a pipeline has at least two stages')
        self.source = source
        self.sink = sink
        self.forward = forward
        self.stages = stages
        self.side = list(side)
        self.counters = counters
        self.rate_limits = rate_limits or {}
        self.progress_file = progress_file
        self.progress_every = progress_every
        self.expected_bytes = expected_bytes
        self.watchdog = watchdog
        self.progress_extra = progress_extra
        self.aborted = None
        self.relays = []
        self.seconds = None

    def counts(self):
        return dict((name, self.relays[i].bytes) for name, i in self.counters.items())

    def progress(self, start, done=False):
        if not self.progress_file:
            return
        elapsed = time.time() - start
        counts = self.counts()
        first = counts.get('read', 0)
        data = dict(counts, elapsed=round(elapsed, 1), done=done,
                    rate_mb_s=round(first / elapsed / 1e6, 1) if elapsed else 0,
                    expected_bytes=self.expected_bytes, updated=time.time())
        if not done:
            data.update(estimate(first, self.expected_bytes, elapsed))
        if self.progress_extra:
            data.update(self.progress_extra())
        write_json_atomic(self.progress_file, data)

    def run(self):
        """Run to the end. Returns the failed stage to blame, or None on success."""
        start = time.time()
        prev_read = None
        try:
            if self.source:
                prev_read, w = make_pipe()
                self.relays.append(Pump(self.source[0], w, self.source[1],
                                        forward=self.forward))
                self.relays[-1].start()
            for stage in self.side:
                stage.stderr_file = tempfile.TemporaryFile()
                stage.proc = subprocess.Popen(
                    stage.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=stage.stderr_file, env=stage.env, close_fds=True)
            for i, stage in enumerate(self.stages):
                stage.stderr_file = tempfile.TemporaryFile()
                out_r = out_w = None
                is_last = i == len(self.stages) - 1
                if not is_last or self.sink:
                    out_r, out_w = make_pipe()
                stage.proc = subprocess.Popen(
                    stage.argv, stdin=prev_read if prev_read is not None else subprocess.DEVNULL,
                    stdout=out_w if out_w is not None else subprocess.DEVNULL,
                    stderr=stage.stderr_file, env=stage.env, close_fds=True)
                if prev_read is not None:
                    os.close(prev_read)
                if out_w is not None and is_last:
                    os.close(out_w)
                    self.relays.append(Pump(out_r, self.sink[0], self.sink[1],
                                            self.rate_limits.get(len(self.relays), 0)))
                    self.relays[-1].start()
                elif out_w is not None:
                    os.close(out_w)
                    next_r, next_w = make_pipe()
                    relay = Relay(out_r, next_w, self.rate_limits.get(i, 0))
                    relay.start()
                    self.relays.append(relay)
                    prev_read = next_r
            last = 0
            chain_end = side_end = None
            while any(s.proc.poll() is None for s in self.stages + self.side):
                time.sleep(0.1)
                if time.time() - last >= self.progress_every:
                    self.progress(start)
                    last = time.time()
                    self.aborted = self.watchdog() if self.watchdog else None
                    if self.aborted:
                        break  # every stage is stopped below
                if chain_end is None and all(s.proc.poll() is not None for s in self.stages):
                    chain_end = time.time()
                if (chain_end is not None and time.time() - chain_end > SIDE_GRACE and
                        any(s.proc.returncode != 0 for s in self.stages)):
                    break  # the receiver waits for a sender that is gone: stopped below
                if side_end is None and any(s.proc.poll() not in (None, 0) for s in self.side):
                    side_end = time.time()
                if side_end is not None and time.time() - side_end > SIDE_GRACE:
                    break  # the receiver failed: a sender still retrying is stopped below
        finally:
            for stage in self.stages + self.side:
                if stage.proc is not None and stage.proc.poll() is None:
                    stage.proc.kill()  # only our own children, by their pid
                    stage.stopped = True
                    stage.proc.wait()
                if stage.proc is not None:
                    stage.returncode = stage.proc.returncode
                if stage.stderr_file is not None:
                    with stage.tail_lock:
                        stage.stderr_file.flush()
                        stage.stderr_tail = read_tail(stage.stderr_file)
                        stage.stderr_file.close()
                        stage.stderr_file = None
            for relay in self.relays:
                relay.join()  # ends once its two neighbours have gone
        self.seconds = time.time() - start
        self.progress(start, done=True)
        return self.blame()

    def blame(self):
        # The connection first: a cut link or the other end's abort takes the programs down.
        pumps = [r for r in self.relays if isinstance(r, Pump)]
        failed = [s for s in pumps + self.stages + self.side if s.failed()]
        if not failed:
            return None
        # The root cause: the first failed stage that did not merely die of a broken pipe
        # (a later stage going away kills the earlier ones that way); with only such
        # victims, the first failure.
        causes = [s for s in failed if not s.victim()]
        return causes[0] if causes else failed[0]
