# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Both ends of a stream between two lab hosts, through real Ansible, as the role runs them:
the receiver (backup_receive) started in the background on the destination, then the sender
(backup_stream, through its action plugin) on the source.

    s = Streamer(inventory, src, dst, str(tmp_path), transport='tls')
    sent, received = s.stream(send={'compression': 'zstd'})

`sent` is the sender's ModuleRun; `received` the receiver's result (a dict). The
certificates (transfer_cert) are made once per Streamer on each host.
"""

from __future__ import annotations

import json
import os
import secrets
import time

from ansible_run import run_module, start_module

STAGING = '/var/lib/mysql.reseed-staging'


class Streamer(object):

    def __init__(self, inventory, src, dst, tmp, transport='tls', staging=STAGING, port=4444,
                 ssh_key=None, ssh_user='root'):
        self.inventory, self.src, self.dst, self.tmp = inventory, src, dst, tmp
        self.transport, self.staging, self.port = transport, staging, port
        self.ssh_key, self.ssh_user = ssh_key, ssh_user
        self.token = secrets.token_hex(16)
        self.runs = 0
        self.certs = {}
        if transport == 'tls':
            for host in (src, dst):
                res = run_module(inventory, host.name, 'transfer_cert', {'prefix': 'test'})
                assert not res.failed, res.result
                self.certs[host.name] = res.result

    def receive_args(self, **kw):
        args = dict(staging_dir=self.staging, transport=self.transport, port=self.port,
                    source_address=self.src.ip, token=self.token, accept_timeout=60)
        if self.transport == 'tls':
            args.update(tls_cert=self.certs[self.dst.name]['cert_file'],
                        tls_key=self.certs[self.dst.name]['key_file'],
                        peer_cert=self.certs[self.src.name]['cert'])
        args.update(kw)
        return args

    def send_args(self, **kw):
        args = dict(destination=self.dst.ip, transport=self.transport, port=self.port,
                    token=self.token, connect_timeout=20)
        if self.transport == 'tls':
            args.update(tls_cert=self.certs[self.src.name]['cert_file'],
                        tls_key=self.certs[self.src.name]['key_file'],
                        peer_cert=self.certs[self.dst.name]['cert'])
        if self.transport == 'ssh':
            args.update(ssh_user=self.ssh_user, ssh_key=self.ssh_key)
        args.update(kw)
        return args

    def start_receiver(self, **kw):
        """The receiver in the background (its own ansible-playbook); returns a handle for
        receiver_result."""
        self.runs += 1
        tmp = os.path.join(self.tmp, 'receiver-%d' % self.runs)
        os.makedirs(tmp)
        proc = start_module(tmp, self.inventory, self.dst.name, 'backup_receive',
                            self.receive_args(**kw))
        return proc, tmp

    def wait_listening(self, timeout=30):
        """Until the destination listens on the port (the receiver's module has started)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ':%d ' % self.port in self.dst.run('ss -ltnH', check=False).stdout:
                return
            time.sleep(0.1)
        raise AssertionError('the receiver on %s did not listen within %d s'
                             % (self.dst.name, timeout))

    def receiver_result(self, handle, timeout=300):
        proc, tmp = handle
        proc.wait(timeout)
        path = os.path.join(tmp, 'tree', self.dst.name)
        if not os.path.exists(path):
            with open(os.path.join(tmp, 'stdout')) as f:
                return {'failed': True, 'msg': 'no result: ' + f.read()[-3000:]}
        with open(path) as f:
            result = json.load(f)
        if proc.returncode:
            result.setdefault('failed', True)
        return result

    def stream(self, send=None, receive=None, check=False, verbosity=0):
        """Both ends; returns (sender's ModuleRun, receiver's result dict)."""
        if check:
            received = run_module(self.inventory, self.dst.name, 'backup_receive',
                                  self.receive_args(**(receive or {})), check=True).result
            sent = run_module(self.inventory, self.src.name, 'backup_stream',
                              self.send_args(**(send or {})), check=True)
            return sent, received
        run_file = '/tmp/reseed-test-receiver-%s-%d.run' % (self.token[:8], self.runs + 1)
        handle = self.start_receiver(**dict(dict(run_file=run_file), **(receive or {})))
        sent = run_module(self.inventory, self.src.name, 'backup_stream',
                          self.send_args(**(send or {})), verbosity=verbosity)
        if sent.failed:  # as the role does: the receiver need not wait for its timeout
            self.dst.run(['rm', '-f', run_file])
        return sent, self.receiver_result(handle)
