# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A receiver's onward hops: one backup for several replicas (a chain: issue 13, or a tree).

    source ──▶ replica 1 ──▶ replica 2 ──▶ ...            (chain, fan-out 1)
                         └─▶ replica 3                     (tree, fan-out 2)

A receiver that is told (backup_receive's forward_to) passes every frame it takes, as it
came, to the receiver of each next replica, while it extracts its own copy: it connects to
each as the source connected to it (its own certificate, the same HELLO and token), before
anything changes on it. The next hops are best effort: one that cannot be reached or fails
stops alone, and this copy and the other hops go on; its report says why (that replica keeps
its old server, it can be streamed again).

No Ansible here: the functions take the values they need (the frames and connections are
module_utils/transfer.py's; the pump that feeds frames to a Fanout is module_utils/pipeline.py's).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import select
import threading
import time

from ansible_collections.reseed.mariadb.plugins.module_utils import transfer


class Forward(object):
    """One onward hop: every frame of the stream that this receiver takes goes on, as it
    came, to the next replica's receiver. When it fails, this receiver's own copy goes on,
    and the failure is reported. Only the pump thread uses the channel, so no frame is sent
    and read at once."""

    def __init__(self, channel, destination):
        self.channel = channel
        self.destination = destination
        self.error = None
        self.result = None

    @property
    def alive(self):
        return self.channel is not None and self.error is None

    def stop(self, reason):
        self.error = reason
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def frame(self, kind, payload=b'', framed=None):
        """Pass one frame on; a RESULT the next hop sent meanwhile (it failed) stops it.
        framed: the buffer that holds the payload after HEADER.size free bytes (the
        receiver's), so that the frame goes on in one write (Channel.send_framed)."""
        if not self.alive:
            return
        try:
            if select.select([self.channel], [], [], 0)[0]:
                said = self.channel.poll()
                if said is not None:
                    return self.stop(transfer.reason_of(self.channel.name, said[1]))
            if framed is None:
                self.channel.send(kind, payload)
            else:
                self.channel.send_framed(kind, framed, len(payload))
        except transfer.TransferError as e:
            self.stop(str(e))

    def finish(self, end):
        """Pass END on and wait for the next hop's RESULT; the hop's result (a dict)."""
        self.send_end(end)
        return self.await_result()

    def send_end(self, end):
        self.frame(transfer.END, json.dumps(end).encode('utf-8'))

    def await_result(self):
        if self.alive:
            try:
                kind, self.result = self.channel.recv_json(transfer.RESULT)
            except transfer.TransferError as e:
                self.stop(str(e))
            else:
                self.channel.finish(grace=1.0)
                self.channel = None
        return self.report()

    def report(self):
        report = dict(destination=self.destination, ok=False, sealed=False)
        if self.result is not None:
            report.update(self.result)
        if self.error:
            report.update(ok=False, error=self.error)
        return report


class Fanout(object):
    """The onward hops (a tree: each receiver passes the stream on to up to fan-out next
    ones; a chain is a tree of fan-out 1): a Forward each, every frame to each hop still
    alive, in turn (one thread); a hop that fails stops alone. END goes to every hop before
    any RESULT is awaited, so the hops finish together."""

    def __init__(self, hops):
        self.hops = list(hops)

    @property
    def alive(self):
        return any(hop.alive for hop in self.hops)

    def stop(self, reason):
        for hop in self.hops:
            if hop.alive:
                hop.stop(reason)

    def frame(self, kind, payload=b'', framed=None):
        for hop in self.hops:
            hop.frame(kind, payload, framed)

    def finish(self, end):
        """END to every hop, then each one's RESULT; the hops' results (a list)."""
        for hop in self.hops:
            hop.send_end(end)
        return [hop.await_result() for hop in self.hops]

    def report(self):
        return [hop.report() for hop in self.hops]


def open_hop(hello, hop, port, connect_timeout, stall_timeout, tls_files=None):
    """A Forward to one next receiver: connected, HELLO sent (the source's, as it came) and
    its ACCEPT read; or stopped with the reason it could not be. hop: a forward_to entry
    (destination, port, peer_cert); port: the one to use when the hop names none;
    tls_files: (cert_file, key_file) of this host with transport tls, None with tcp."""
    forward = Forward(None, hop['destination'])
    try:
        tls = None
        if tls_files is not None:
            tls = transfer.tls_context(False, tls_files[0], tls_files[1], hop['peer_cert'])
        forward.channel = transfer.connect(
            hop['destination'], hop.get('port') or port, time.time() + connect_timeout,
            tls, transfer.fingerprint(hop['peer_cert']) if tls else None, stall_timeout)
        forward.channel.send_json(transfer.HELLO, dict(hello))
        forward.channel.recv_json(transfer.ACCEPT)
    except (transfer.TransferError, OSError, ValueError) as e:
        forward.stop(str(e))
    return forward


def open_fanout(hello, hops, port, connect_timeout, stall_timeout, tls_files=None):
    """A Fanout to every next receiver in hops (forward_to's order), each opened by
    open_hop; a hop that cannot be reached is in it, stopped, for its report."""
    return Fanout(open_hop(hello, hop, port, connect_timeout, stall_timeout, tls_files)
                  for hop in hops)


def finish(fanout, end, upstream):
    """END to the next hops and their RESULTs (a list, in forward_to's order); upstream (the
    channel from the source or the previous replica, which waits for this receiver's RESULT)
    hears a keepalive meanwhile."""
    done = {}
    waiter = threading.Thread(target=lambda: done.update(report=fanout.finish(end)))
    waiter.start()
    while waiter.is_alive():
        waiter.join(1.0)
        try:
            upstream.keepalive()
        except transfer.TransferError:
            pass
    return done['report']


def abort(fanout, cause):
    """This receiver failed: the next hops' copies cannot be whole either. Tell them why, as
    the source would (ABORT), close them, and return their reports."""
    fanout.frame(transfer.ABORT, json.dumps(
        {'reason': 'the previous replica stopped: ' + cause}).encode('utf-8'))
    fanout.stop('not sent on: ' + cause)
    return fanout.report()
