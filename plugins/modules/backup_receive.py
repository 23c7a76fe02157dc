#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: backup_receive
short_description: Receive a streamed mariadb-backup into a new staging directory on this host
version_added: 0.1.0
description:
  - The receiving end of the stream, on the replica. Listens on I(port), accepts one
    connection from I(source_address) only, and extracts what
    M(reseed.mariadb.backup_stream) sends from the source into I(staging_dir) with
    C(mbstream -x) (decompressing with C(zstd -d) on the way when the source compresses).
    Any other peer (another address, a failed TLS handshake, a wrong token) is turned away
    and the listener waits on for the source; what was turned away is returned.
  - Ansible starts both ends (this module in the background with C(async), then
    M(reseed.mariadb.backup_stream) on the source); the stream's own connection is the only
    thing that passes between the database hosts. No ssh login, no key, no
    C(authorized_keys) change with C(transport=tls) or C(tcp).
  - Nothing on this host changes before the source has connected, proved who it is and
    said the copy fits (the free space, and the versions - this host's MariaDB and
    mariadb-backup must be of the source's series or newer, MariaDB does not move data back
    to an older series). Then an old reseed staging directory is removed, the directory is
    made anew (C(mbstream -x) into a non-empty directory can exit 0 on a broken extraction)
    and marked C(reseed_receiving). It is sealed (C(reseed_received), which
    M(reseed.mariadb.backup_prepare) requires) only when the source said every program of
    its side succeeded and mariadb-backup said C(completed OK!), every program here
    succeeded, and the copy's last files are there.
  - One stream at a time into a staging directory; the module holds a lock in C(/run/lock)
    until it ends.
  - A connection that carries nothing for I(stall_timeout) seconds (the source sends a
    keepalive every 10 seconds while mariadb-backup is quiet) is taken for a cut link; the
    extraction is stopped and the copy left unsealed.
options:
  staging_dir:
    description:
      - Directory that receives the copy. Must not exist, be empty, or be a staging
        directory of an earlier run; beside the datadir, on its filesystem, so that the swap
        is a rename (inside the datadir when the datadir is a mount point).
    type: path
    required: true
  transport:
    description:
      - C(tls) (default) listens on I(listen_address) and requires TLS with the certificate
        I(peer_cert) (made for this run on the source) and presents I(tls_cert).
      - C(tcp) listens the same way without TLS, for trusted networks only.
      - C(ssh) listens on 127.0.0.1 only; the source reaches it through an ssh tunnel
        (C(ssh -W)) to this host.
    type: str
    choices: [tls, tcp, ssh]
    default: tls
  listen_address:
    description: The address to listen on (all of this host's when omitted); C(127.0.0.1) with C(transport=ssh).
    type: str
  source_address:
    description:
      - The source's address (or a name, resolved here), the only peer accepted. Required
        with C(tls) and C(tcp); with C(ssh) the peer is the tunnel's end on this host.
    type: str
  parallel:
    description: Extract threads of C(mbstream).
    type: int
    default: 2
  accept_timeout:
    description: Seconds to wait for the source to connect.
    type: int
    default: 120
  run_file:
    description:
      - A file this module creates when it starts and watches; removing it stops the
        receiver within a second (the role does when the sending side fails, so that the
        receiver does not wait out I(accept_timeout)).
    type: path
  progress_file:
    description: Where to write the bytes received (JSON, every second).
    type: path
  forward_to:
    description:
      - A chain or a tree of replicas (one backup for several); every frame this receiver
        takes goes on, as it came, to the receiver of each next replica listed (one for a
        chain, up to the fan-out for a tree), while this one extracts its own copy. This
        host connects to each as the source connected here (with C(transport=tls),
        presenting I(tls_cert); a next receiver's I(peer_cert) is this host's certificate
        and its I(source_address) this host's address).
      - Best effort; when a next hop cannot be reached or fails, this copy and the other
        hops go on, and C(forward) says why (that replica keeps its old server).
      - Not with C(transport=ssh).
    type: list
    elements: dict
    suboptions:
      destination:
        description: The next replica's address.
        type: str
        required: true
      port:
        description: Its receiver's port; I(port) when omitted.
        type: int
      peer_cert:
        description: Its certificate for this run (PEM text), with C(transport=tls).
        type: str
  connect_timeout:
    description: With I(forward_to), seconds to keep trying to reach each next receiver.
    type: int
    default: 30
extends_documentation_fragment:
  - reseed.mariadb.transfer
notes:
  - Check mode checks what it can without the source - the staging directory's state, its
    lock, the programs, the free space, that the port can be bound - and returns.
  - Needs C(mbstream) (package mariadb-backup) and C(zstd).
seealso:
  - module: reseed.mariadb.backup_stream
  - module: reseed.mariadb.transfer_cert
  - module: reseed.mariadb.backup_prepare
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Start the receiver on the replica (in the background)
  reseed.mariadb.backup_receive:
    staging_dir: /var/lib/mysql.reseed-staging
    source_address: 10.0.0.11
    token: "{{ stream_token }}"
    tls_cert: "{{ replica_cert.cert_file }}"
    tls_key: "{{ replica_cert.key_file }}"
    peer_cert: "{{ source_cert.cert }}"
  async: 86400
  poll: 0
  register: receiver
'''

RETURN = r'''
bytes_received:
  description: Bytes of the stream received (as sent, compressed or not).
  returned: once the source connected
  type: int
  sample: 410000000
seconds:
  description: Time from the source's connection to the seal.
  returned: once the source connected
  type: float
  sample: 6.3
compression:
  description: What the source sent, C(zstd) or C(none).
  returned: once the stream started
  type: str
  sample: zstd
peer:
  description: The address the stream came from.
  returned: once the source connected
  type: str
  sample: 10.0.0.11
refused:
  description: Peers turned away before the source's connection, each with the reason.
  returned: always
  type: list
  elements: str
  sample: ['10.0.0.99: not the source''s address']
sealed:
  description: Whether the copy was sealed (C(reseed_received) written).
  returned: always
  type: bool
forward:
  description:
    - With I(forward_to), how each next hop ended (C(destination), C(ok), C(sealed),
      C(bytes), C(error)) and, in its own C(forward), the hops after it; in the order of
      I(forward_to).
  returned: with forward_to, once the source connected
  type: list
  elements: dict
  sample: [{destination: 10.0.0.13, ok: true, sealed: true, bytes: 410000000}]
facts:
  description: What the preflight found (staging state, free bytes, lock, programs).
  returned: always
  type: dict
  sample: {staging: absent, free_bytes: 52000000000, lock: /run/lock/reseed_var_lib_mysql.reseed-staging.lock}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import json
import os
import socket
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import staging as st
from ansible_collections.reseed.mariadb.plugins.module_utils import transfer, versions
from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import Pipeline, Stage


class Receiver(object):

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.result = dict(changed=False, sealed=False, refused=[], facts={})
        self.where = 'backup_receive into %s on port %d' % (self.p['staging_dir'], self.p['port'])
        self.channel = None
        self.forward = None

    def fail(self, cause, **extra):
        self.result.update(extra)
        if self.forward is not None:
            # The next hop's copy cannot be whole either: tell it why, as the source would.
            self.forward.frame(transfer.ABORT, json.dumps(
                {'reason': 'the previous replica stopped: ' + cause}).encode('utf-8'))
            self.forward.stop('not sent on: ' + cause)
            self.result['forward'] = self.forward.report()
        if self.channel is not None:
            try:
                self.channel.send_json(transfer.RESULT, {'ok': False, 'error': cause})
            except transfer.TransferError:
                pass
            self.channel.finish()
        self.module.fail_json(msg='%s: %s' % (self.where, cause), **self.result)

    def preflight(self):
        p = self.p
        problem = st.path_problem(p['staging_dir'])
        if problem:
            self.fail(problem)
        current = st.state(p['staging_dir'])
        facts = self.result['facts']
        facts.update(staging=current, lock=st.lock_path(p['staging_dir']))
        problems = [st.problem_of_state(current)]
        if current in ('absent', 'empty', 'reseed'):
            facts['free_bytes'] = st.free_bytes(p['staging_dir'], current)
        tools = dict((t, self.module.get_bin_path(t)) for t in ('mbstream', 'zstd'))
        problems.append(('missing on this host: %s (package mariadb-backup of the server\'s '
                         'version, zstd)' % ', '.join(t for t, v in tools.items() if not v))
                        if not all(tools.values()) else None)
        self.tools = tools
        if st.is_locked(p['staging_dir']):
            problems.append('another stream into %s is still running (it holds %s): let it '
                            'end, or stop it, then run again' % (p['staging_dir'], facts['lock']))
        problems = [x for x in problems if x]
        if problems:
            self.fail('; '.join(problems))
        return current

    def versions(self):
        """This host's mariadb-backup and server versions (what the copy will meet)."""
        found = {'mariabackup_version': versions.version_of(
            self.module, [self.module.get_bin_path('mariadb-backup')
                          or self.module.get_bin_path('mariabackup'), '--version'])}
        server = self.module.get_bin_path('mariadbd') or self.module.get_bin_path('mysqld')
        found['server_version'] = versions.version_of(self.module, [server, '--version']) \
            if server else None
        self.result['facts'].update(found)
        return found

    def address(self):
        return '127.0.0.1' if self.p['transport'] == 'ssh' else (self.p['listen_address'] or '')

    def allowed(self):
        if self.p['transport'] == 'ssh':
            return ['127.0.0.1', '::1']
        try:
            return transfer.resolve(self.p['source_address'])
        except (OSError, socket.error) as e:
            self.fail('cannot resolve the source address %r: %s' % (self.p['source_address'], e))

    def should_stop(self):
        if self.p['run_file'] and not os.path.exists(self.p['run_file']):
            return 'stopped: its run file %s was removed (the sending side failed or the ' \
                   'run was interrupted)' % self.p['run_file']
        return None

    def run(self):
        p = self.p
        current = self.preflight()
        if self.module.check_mode:
            try:
                transfer.bind(self.address(), p['port']).close()
            except transfer.TransferError as e:
                self.fail('%s: stop what uses the port, or choose another (replica_rebuild_port)' % e)
            self.result['changed'] = True
            self.module.exit_json(msg='would receive a copy into %s on port %d'
                                  % (p['staging_dir'], p['port']), **self.result)
        missing = []
        if p['transport'] == 'tls':
            missing = [o for o in ('tls_cert', 'tls_key', 'peer_cert') if not p[o]]
        if p['transport'] != 'ssh' and not p['source_address']:
            missing.append('source_address')
        if p['forward_to'] and p['transport'] == 'ssh':
            self.fail('forward_to needs transport tls or tcp')
        if p['forward_to'] and p['transport'] == 'tls' and not all(
                hop['peer_cert'] for hop in p['forward_to']):
            missing.append('forward_to.peer_cert')
        if missing:
            self.fail('transport=%s needs %s' % (p['transport'], ', '.join(missing)))
        try:
            lock = st.take_lock(p['staging_dir'])
        except st.Busy as e:
            self.fail(str(e))
        try:
            self.receive(current)
        finally:
            lock.close()
            if p['run_file']:
                try:
                    os.remove(p['run_file'])
                except OSError:
                    pass

    def listener(self):
        p = self.p
        allowed = self.allowed()
        tls = None
        if p['transport'] == 'tls':
            try:
                tls = transfer.tls_context(True, p['tls_cert'], p['tls_key'], p['peer_cert'])
            except (OSError, ValueError) as e:
                self.fail('cannot load this run\'s certificates: %s' % e)
        try:
            sock = transfer.bind(self.address(), p['port'])
        except transfer.TransferError as e:
            self.fail('%s: stop what uses the port, or choose another (replica_rebuild_port)' % e)
        return transfer.Listener(sock, allowed, p['token'], tls, p['stall_timeout'])

    def receive(self, current):
        p = self.p
        if p['run_file']:
            open(p['run_file'], 'a').close()
        listener = self.listener()
        try:
            self.channel, hello = listener.accept(time.time() + p['accept_timeout'],
                                                  self.should_stop)
        except transfer.TransferError as e:
            self.result['refused'] = listener.refused
            self.fail('nothing changed: %s' % e)
        finally:
            self.result['refused'] = listener.refused
            listener.close()
        started = time.time()
        self.result['peer'] = self.channel.sock.getpeername()[0]
        problem = st.space_problem(self.result['facts']['free_bytes'], hello.get('expected_bytes'))
        problem = '; '.join(x for x in (versions.replica_problem(hello, self.versions()), problem)
                            if x)
        if problem:
            self.channel.send_json(transfer.REFUSE, {'reason': 'replica: ' + problem})
            self.channel.finish()
            self.channel = None
            self.fail('nothing changed: ' + problem)
        if p['forward_to']:
            self.forward = self.open_forward(hello)
        self.channel.send_json(transfer.ACCEPT, self.result['facts'])
        try:
            compression = self.before_start()
        except transfer.TransferError as e:
            self.fail('nothing changed: %s' % e)
        self.result['compression'] = compression
        try:
            st.make_new(p['staging_dir'], current)
        except OSError as e:
            self.fail('cannot make the staging directory: %s' % e)
        self.result['changed'] = True
        stages = []
        if compression == 'zstd':
            stages.append(Stage('zstd -d on the replica', [self.tools['zstd'], '-d', '-q', '-c']))
        stages.append(Stage('mbstream -x on the replica', [
            self.tools['mbstream'], '-x', '-p', str(p['parallel']), '-C', p['staging_dir']]))
        pipeline = Pipeline(stages, {'received': 0}, progress_file=p['progress_file'],
                            watchdog=self.watchdog, forward=self.forward,
                            source=(self.channel, 'the stream from the source %s'
                                    % self.result['peer']))
        self.pipeline = pipeline
        blamed = pipeline.run()
        self.result.update(bytes_received=pipeline.counts()['received'],
                           seconds=round(time.time() - started, 2))
        if pipeline.aborted:
            self.fail(pipeline.aborted + '; the copy is not sealed')
        if blamed is not None:
            self.fail(blamed.describe(lambda t: t) + '; the copy is not sealed')
        end = pipeline.relays[0].end or {}
        if not end.get('ok'):
            self.fail('the source ended without saying its side succeeded; the copy is not '
                      'sealed')
        missing = st.seal(p['staging_dir'])
        if missing:
            self.fail('the stream ended but the copy is incomplete (%s); it is not sealed'
                      % ', '.join(missing))
        self.result['sealed'] = True
        answer = {'ok': True, 'sealed': True, 'bytes': self.result['bytes_received']}
        if self.forward is not None:
            answer['forward'] = self.result['forward'] = self.finish_forward(end)
            self.forward = None
        try:
            self.channel.send_json(transfer.RESULT, answer)
        except transfer.TransferError:
            pass  # sealed all the same; the source's module learns it from this one's result
        self.channel.finish()
        self.module.exit_json(msg='received %.2f GB into %s, sealed' % (
            self.result['bytes_received'] / 1e9, p['staging_dir']), **self.result)

    def open_forward(self, hello):
        """The next hops of a chain or tree: connect to each one's receiver, as the source
        connected here (this host's certificate, the same token), before anything changes
        here. A hop that cannot be reached is reported; this copy and the others go on."""
        return transfer.Fanout(self.open_hop(hello, nxt) for nxt in self.p['forward_to'])

    def open_hop(self, hello, nxt):
        p = self.p
        forward = transfer.Forward(None, nxt['destination'])
        try:
            tls = None
            if p['transport'] == 'tls':
                tls = transfer.tls_context(False, p['tls_cert'], p['tls_key'], nxt['peer_cert'])
            forward.channel = transfer.connect(
                nxt['destination'], nxt['port'] or p['port'], time.time() + p['connect_timeout'],
                tls, transfer.fingerprint(nxt['peer_cert']) if tls else None, p['stall_timeout'])
            forward.channel.send_json(transfer.HELLO, dict(hello))
            forward.channel.recv_json(transfer.ACCEPT)
        except (transfer.TransferError, OSError, ValueError) as e:
            forward.stop(str(e))
        return forward

    def finish_forward(self, end):
        """END to the next hop, and its RESULT; the source hears a keepalive meanwhile."""
        done = {}
        waiter = threading.Thread(target=lambda: done.update(report=self.forward.finish(end)))
        waiter.start()
        while waiter.is_alive():
            waiter.join(1.0)
            try:
                self.channel.keepalive()
            except transfer.TransferError:
                pass
        return done['report']

    def before_start(self):
        """Answer the link probe (compression=auto) until START; returns its compression."""
        probe_started = probe_bytes = None
        while True:
            kind, payload = self.channel.recv()
            if kind == transfer.PROBE:
                # The first frames warm the connection up (TCP slow start): the source marks
                # the timed part by a zero-length frame.
                if not payload:
                    probe_started, probe_bytes = time.time(), 0
                elif probe_started is not None:
                    probe_bytes += len(payload)
            elif kind == transfer.PROBE_END:
                ns = int((time.time() - (probe_started or time.time())) * 1e9)
                self.channel.send_json(transfer.PROBE_RESULT, {'bytes': probe_bytes or 0,
                                                               'ns': ns})
            elif kind == transfer.START:
                if self.forward is not None:
                    self.forward.frame(kind, bytes(payload))
                return json.loads(bytes(payload).decode('utf-8')).get('compression')
            elif kind == transfer.ABORT:
                raise transfer.PeerAbort(transfer.reason_of(self.channel.name, payload))
            else:
                raise transfer.TransferError('unexpected frame %r before the stream' % kind)

    def watchdog(self):
        reason = self.should_stop()
        if reason:
            return reason
        if self.pipeline.relays and self.pipeline.relays[0].end is not None:
            # The source waits for RESULT while the extraction finishes: keep it told.
            try:
                self.channel.keepalive()
            except transfer.TransferError:
                pass
        return None


def main():
    spec = transfer.argument_spec()
    spec.update(
        staging_dir=dict(type='path', required=True),
        transport=dict(type='str', default='tls', choices=['tls', 'tcp', 'ssh']),
        listen_address=dict(type='str'),
        source_address=dict(type='str'),
        parallel=dict(type='int', default=2),
        accept_timeout=dict(type='int', default=120),
        run_file=dict(type='path'),
        progress_file=dict(type='path'),
        forward_to=dict(type='list', elements='dict', options=dict(
            destination=dict(type='str', required=True),
            port=dict(type='int'),
            peer_cert=dict(type='str'),
        )),
        connect_timeout=dict(type='int', default=30),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    Receiver(module).run()


if __name__ == '__main__':
    main()
