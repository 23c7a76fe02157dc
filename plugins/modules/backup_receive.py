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
    lock, the programs, the free space, that the port can be bound - and returns
    C(changed=true) (a real run would change the host). O(preflight=true) makes the same
    checks, in check mode or not, and returns C(changed=false); neither needs O(token) nor
    I(source_address).
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

- name: Check the replica can receive a copy (nothing changes, no token needed)
  reseed.mariadb.backup_receive:
    staging_dir: /var/lib/mysql.reseed-staging
    preflight: true
  register: receive_check

- name: Wait for the receiver (once the source's backup_stream ended)
  ansible.builtin.async_status:
    jid: "{{ receiver.ansible_job_id }}"
  register: receiver_job
  until: receiver_job.finished
  retries: 360
  delay: 10
  failed_when: false

- name: Say where the receive failed, from its fields (not from its message)
  ansible.builtin.debug:
    msg: "{{ receiver_job.failure.side }} side, step {{ receiver_job.failure.step }}: {{ receiver_job.failure.code }}"
  when: receiver_job.failure is defined
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
failure:
  description:
    - "What failed, in fields (C(msg) is C(backup_receive into <dir> on port <n>: <message>));
      the source hears the same fields in its RESULT frame (C(failure)), or REFUSE for
      C(check). C(step), C(side) (C(source), C(replica) or C(link)), C(code),
      C(changed_nothing) (false once the staging directory was touched), C(message).
      Codes by step below, side C(replica) unless said."
    - C(preflight) C(staging_path), C(staging_datadir), C(staging_foreign), C(missing_tools),
      C(locked), C(cannot_listen) (the first found when several).
      C(options) C(missing_options), C(forward_over_ssh).
      C(listen) C(resolve_source), C(certificates), C(cannot_listen).
    - C(accept) C(accept_timeout), C(peer_refused) (peers came and were turned away, see
      C(refused)) - side C(link); C(stopped) (the run file was removed, as the role does when
      the sending side failed) - side C(source).
    - C(check) (the source's HELLO) C(versions), C(no_space).
    - C(start) (until the source's START) and C(receive) C(source_abort) (the source's ABORT)
      - side C(source); C(stalled), C(connection_lost) - side C(link). C(start) also
      C(protocol) - side C(source).
    - C(receive) also C(make_staging), C(decompress_failed), C(extract_failed); C(stopped),
      C(source_not_ok) (the source ended without saying its side succeeded) - side C(source).
      C(seal) C(incomplete) (the copy lacks its last files).
  returned: on failure
  type: dict
  sample: {step: check, side: replica, code: no_space, changed_nothing: true,
           message: "nothing changed: 1.0 GB free for the copy, 2.5 GB needed ..."}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import failure, relay
from ansible_collections.reseed.mariadb.plugins.module_utils import staging as st
from ansible_collections.reseed.mariadb.plugins.module_utils import transfer, versions
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure
from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import Pipeline, Pump, Stage

PORT_HINT = 'stop what uses the port, or choose another (replica_rebuild_port)'
NOT_SEALED = '; the copy is not sealed'


def link_failure(step, error, cause, changed_nothing=True):
    """A failed connection to the source: its ABORT is the source's doing; a stall, a cut or
    a reset is the link's."""
    if isinstance(error, transfer.PeerAbort):
        return Failure(step, 'source', 'source_abort', cause, changed_nothing)
    code = error.code if isinstance(error, transfer.TransferError) else 'connection_lost'
    return Failure(step, 'link', code, cause, changed_nothing)


class Receiver(object):

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.result = dict(changed=False, sealed=False, refused=[], facts={})
        self.where = 'backup_receive into %s on port %d' % (self.p['staging_dir'], self.p['port'])
        self.channel = None
        self.forward = None
        self.stopped = None
        self.tools = {}
        self.pipeline = None

    def preflight(self):
        p = self.p
        problem = st.path_problem(p['staging_dir'])
        if problem:
            raise Failure('preflight', 'replica', 'staging_path', problem)
        current = st.state(p['staging_dir'])
        facts = self.result['facts']
        facts.update(staging=current, lock=st.lock_path(p['staging_dir']))
        problems = [('staging_' + current, st.problem_of_state(current))]
        if current in ('absent', 'empty', 'reseed'):
            facts['free_bytes'] = st.free_bytes(p['staging_dir'], current)
        self.tools = dict((t, self.module.get_bin_path(t)) for t in ('mbstream', 'zstd'))
        if not all(self.tools.values()):
            problems.append(('missing_tools', 'missing on this host: %s (package mariadb-backup '
                             'of the server\'s version, zstd)'
                             % ', '.join(t for t, v in self.tools.items() if not v)))
        if st.is_locked(p['staging_dir']):
            problems.append(('locked', 'another stream into %s is still running (it holds %s): '
                             'let it end, or stop it, then run again'
                             % (p['staging_dir'], facts['lock'])))
        problems = [(code, text) for code, text in problems if text]
        if problems:
            # The first problem's code; the message says them all.
            raise Failure('preflight', 'replica', problems[0][0],
                          '; '.join(text for code, text in problems))
        return current

    def check_options(self):
        """What a real run needs beside the preflight's options (check mode and preflight
        need none of it)."""
        p = self.p
        missing = []
        if p['transport'] == 'tls':
            missing = [o for o in ('tls_cert', 'tls_key', 'peer_cert') if not p[o]]
        if p['transport'] != 'ssh' and not p['source_address']:
            missing.append('source_address')
        if p['forward_to'] and p['transport'] == 'ssh':
            raise Failure('options', 'replica', 'forward_over_ssh',
                          'forward_to needs transport tls or tcp')
        if p['forward_to'] and p['transport'] == 'tls' and not all(
                hop['peer_cert'] for hop in p['forward_to']):
            missing.append('forward_to.peer_cert')
        if missing:
            raise Failure('options', 'replica', 'missing_options', 'transport=%s needs %s'
                          % (p['transport'], ', '.join(missing)))

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

    def bind(self, step):
        try:
            return transfer.bind(self.address(), self.p['port'])
        except transfer.TransferError as e:
            raise Failure(step, 'replica', 'cannot_listen', '%s: %s' % (e, PORT_HINT))

    def allowed(self):
        if self.p['transport'] == 'ssh':
            return ['127.0.0.1', '::1']
        try:
            return transfer.resolve(self.p['source_address'])
        except (OSError, socket.error) as e:
            raise Failure('listen', 'replica', 'resolve_source', 'cannot resolve the source '
                          'address %r: %s' % (self.p['source_address'], e))

    def should_stop(self):
        if self.p['run_file'] and not os.path.exists(self.p['run_file']):
            self.stopped = 'stopped: its run file %s was removed (the sending side failed or ' \
                           'the run was interrupted)' % self.p['run_file']
        return self.stopped

    def run(self):
        """The whole run; its msg. A Failure once the source connected has been told to the
        source and the next hops (tell_peers) when it leaves here."""
        p = self.p
        current = self.preflight()
        if p['preflight'] or self.module.check_mode:
            self.bind('preflight').close()
            if p['preflight']:  # a read-only check, check mode or not: nothing would change
                return 'ready to receive a copy into %s on port %d' % (p['staging_dir'], p['port'])
            self.result['changed'] = True
            return 'would receive a copy into %s on port %d' % (p['staging_dir'], p['port'])
        self.check_options()
        try:
            lock = st.take_lock(p['staging_dir'])
        except st.Busy as e:
            raise Failure('preflight', 'replica', 'locked', str(e))
        try:
            return self.receive(current)
        except Failure as e:
            self.tell_peers(e)
            raise
        finally:
            lock.close()
            if p['run_file']:
                try:
                    os.remove(p['run_file'])
                except OSError:
                    pass

    def tell_peers(self, error):
        """The one cleanup of every failure: the next hops' copies cannot be whole either
        (ABORT, as the source would say it), and the source hears why in RESULT, the failure's
        fields with it, so that its own module can report them."""
        if self.result['changed']:
            error.changed_nothing = False
        if self.forward is not None:
            self.result['forward'] = relay.abort(self.forward, error.message)
            self.forward = None
        if self.channel is not None:
            try:
                self.channel.send_json(transfer.RESULT, {'ok': False, 'error': error.message,
                                                         'failure': error.as_dict()})
            except transfer.TransferError:
                pass
            self.channel.finish()
            self.channel = None

    def listener(self):
        p = self.p
        allowed = self.allowed()
        tls = None
        if p['transport'] == 'tls':
            try:
                tls = transfer.tls_context(True, p['tls_cert'], p['tls_key'], p['peer_cert'])
            except (OSError, ValueError) as e:
                raise Failure('listen', 'replica', 'certificates',
                              'cannot load this run\'s certificates: %s' % e)
        return transfer.Listener(self.bind('listen'), allowed, p['token'], tls,
                                 p['stall_timeout'])

    def accept(self):
        """The source's connection and its HELLO; a Failure when it did not come."""
        listener = self.listener()
        try:
            return listener.accept(time.time() + self.p['accept_timeout'], self.should_stop)
        except transfer.TransferError as e:
            cause = 'nothing changed: %s' % e
            if self.stopped:
                raise Failure('accept', 'source', 'stopped', cause)
            # Peers turned away (wrong address, TLS, token) point at the link's set-up.
            raise Failure('accept', 'link', 'peer_refused' if listener.refused
                          else 'accept_timeout', cause)
        finally:
            self.result['refused'] = listener.refused
            listener.close()

    def check(self, hello):
        """The source's HELLO against this host (versions, room): REFUSE, with the failure's
        fields, while nothing changed here."""
        problems = [(code, text) for code, text in (
            ('versions', versions.replica_problem(hello, self.versions())),
            ('no_space', st.space_problem(self.result['facts']['free_bytes'],
                                          hello.get('expected_bytes')))) if text]
        if not problems:
            return
        problem = '; '.join(text for code, text in problems)
        error = Failure('check', 'replica', problems[0][0], 'nothing changed: ' + problem)
        try:
            self.channel.send_json(transfer.REFUSE, {'reason': 'replica: ' + problem,
                                                     'failure': error.as_dict()})
        except transfer.TransferError:
            pass
        self.channel.finish()
        self.channel = None
        raise error

    def receive(self, current):
        p = self.p
        if p['run_file']:
            open(p['run_file'], 'a').close()
        self.channel, hello = self.accept()
        started = time.time()
        self.result['peer'] = self.channel.sock.getpeername()[0]
        self.check(hello)
        if p['forward_to']:
            # Before anything changes here: a hop that cannot be reached is reported.
            self.forward = relay.open_fanout(
                hello, p['forward_to'], p['port'], p['connect_timeout'], p['stall_timeout'],
                (p['tls_cert'], p['tls_key']) if p['transport'] == 'tls' else None)
        try:
            self.channel.send_json(transfer.ACCEPT, self.result['facts'])
            compression = self.before_start()
        except transfer.TransferError as e:
            raise link_failure('start', e, 'nothing changed: %s' % e)
        self.result['compression'] = compression
        try:
            st.make_new(p['staging_dir'], current)
        except OSError as e:
            # An old staging directory (or an empty one) was removed first.
            raise Failure('receive', 'replica', 'make_staging', 'cannot make the staging '
                          'directory: %s' % e, changed_nothing=current == 'absent')
        self.result['changed'] = True
        stages = []
        if compression == 'zstd':
            stages.append(Stage('zstd -d on the replica', [self.tools['zstd'], '-d', '-q', '-c']))
        stages.append(Stage('mbstream -x on the replica', [
            self.tools['mbstream'], '-x', '-p', str(p['parallel']), '-C', p['staging_dir']]))
        self.pipeline = Pipeline(stages, {'received': 0}, progress_file=p['progress_file'],
                                 watchdog=self.watchdog, forward=self.forward,
                                 source=(self.channel, 'the stream from the source %s'
                                         % self.result['peer']))
        blamed = self.pipeline.run()
        self.result.update(bytes_received=self.pipeline.counts()['received'],
                           seconds=round(time.time() - started, 2))
        if self.pipeline.aborted:
            raise Failure('receive', 'source', 'stopped', self.pipeline.aborted + NOT_SEALED,
                          False)
        if blamed is not None:
            cause = blamed.describe(lambda t: t) + NOT_SEALED
            if isinstance(blamed, Pump) and isinstance(blamed.error, transfer.TransferError):
                raise link_failure('receive', blamed.error, cause, False)
            raise Failure('receive', 'replica', 'decompress_failed' if len(stages) > 1 and
                          blamed is stages[0] else 'extract_failed', cause, False)
        end = self.pipeline.relays[0].end or {}
        if not end.get('ok'):
            raise Failure('receive', 'source', 'source_not_ok', 'the source ended without '
                          'saying its side succeeded' + NOT_SEALED, False)
        missing = st.seal(p['staging_dir'])
        if missing:
            raise Failure('seal', 'replica', 'incomplete', 'the stream ended but the copy is '
                          'incomplete (%s); it is not sealed' % ', '.join(missing), False)
        self.result['sealed'] = True
        answer = {'ok': True, 'sealed': True, 'bytes': self.result['bytes_received']}
        if self.forward is not None:
            answer['forward'] = self.result['forward'] = relay.finish(self.forward, end,
                                                                      self.channel)
            self.forward = None
        try:
            self.channel.send_json(transfer.RESULT, answer)
        except transfer.TransferError:
            pass  # sealed all the same; the source's module learns it from this one's result
        self.channel.finish()
        self.channel = None
        return 'received %.2f GB into %s, sealed' % (self.result['bytes_received'] / 1e9,
                                                     p['staging_dir'])

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
                raise transfer.PeerAbort.of(self.channel.name, payload)
            else:
                raise Failure('start', 'source', 'protocol', 'nothing changed: unexpected '
                              'frame %r before the stream' % kind)

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
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=transfer.REQUIRED_IF)
    receiver = Receiver(module)
    failure.run(module, receiver.run, receiver.where, receiver.result)


if __name__ == '__main__':
    main()
