# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ssh transport's temporary key: the receiving command only, from the source only."""

from __future__ import annotations

import base64
import os

from ansible_run import run_playbook

PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks', 'ssh_key.yml')
SSH = ['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
       '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5']


def test_transfer_key_is_restricted_and_removed(make_hosts, inventory, tmp_path):
    hosts = make_hosts('primary', 'replica', 'other')
    source, replica, other = hosts['primary'], hosts['replica'], hosts['other']
    inv = inventory(source, [replica], [other])
    report = str(tmp_path / 'keydir')
    common = {'replica_rebuild_replication_user': 'repl',
              'replica_rebuild_replication_password': 'unused',
              '__replica_rebuild_run_id': 'test1',
              # Several lines, as the real receiving script has.
              '__replica_rebuild_receive_command': 'true\ncat > /tmp/received',
              'key_report': report}
    proc = run_playbook(inv, PLAYBOOK, dict(common, key_action='make'))
    assert proc.returncode == 0, proc.stdout[-3000:]
    keydir = open(report).read()
    key = keydir + '/id_ed25519'
    assert source.run(['stat', '-c', '%a', keydir]).stdout.strip() == '700'
    line = replica.run('grep reseed-transfer /root/.ssh/authorized_keys').stdout
    assert line.startswith('restrict,from="%s",command="eval \\"$(echo %s | base64 -d)\\"" '
                           % (source.ip, base64.b64encode(b'true\ncat > /tmp/received').decode()))
    target = 'root@' + replica.ip

    # Whatever the source asks for, the forced command runs: the payload is received.
    sent = source.run(SSH + ['-i', key, target, 'touch /tmp/not-this'], input='payload-1\n')
    assert sent.returncode == 0
    assert replica.run('cat /tmp/received').stdout == 'payload-1\n'
    assert replica.run('test -e /tmp/not-this', check=False).returncode == 1
    # No pty, no forwarding.
    pty = source.run(SSH + ['-tt', '-i', key, target], input='', check=False)
    assert 'PTY allocation request failed' in pty.stderr
    fwd = source.run(SSH + ['-i', key, '-W', '127.0.0.1:3306', target], input='',
                     check=False)
    assert fwd.returncode != 0 and 'prohibited' in fwd.stderr
    # The same key from another address is refused.
    other.run('mkdir -p /tmp/k && cat > /tmp/k/id && chmod 600 /tmp/k/id',
              input=source.run(['cat', key]).stdout)
    elsewhere = other.run(SSH + ['-i', '/tmp/k/id', target, 'true'], input='', check=False)
    assert elsewhere.returncode == 255 and 'Permission denied' in elsewhere.stderr

    # An interrupted run's key of this replica, and another replica's key (in use).
    parent, prefix = os.path.split(keydir[:-8])  # reseed-key-<replica>-
    stale = os.path.join(parent, prefix + 'Ab3_x9Zq')
    others = os.path.join(parent, prefix[:-1] + '2-Ab3_x9Zq')
    source.run(['mkdir', '-m', '700', stale, others])
    source.run(['touch', stale + '/id_ed25519', others + '/id_ed25519'])
    proc = run_playbook(inv, PLAYBOOK, dict(common, key_action='remove',
                                            __replica_rebuild_keydir={'path': keydir}))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'reseed-transfer' not in replica.run('cat /root/.ssh/authorized_keys').stdout
    assert source.run(['test', '-e', keydir], check=False).returncode == 1
    assert source.run(['test', '-e', stale], check=False).returncode == 1
    assert source.run(['test', '-f', others + '/id_ed25519']).returncode == 0
    # A copy of the key kept on the source no longer opens anything.
    source.run('mkdir -p /tmp/k && cat > /tmp/k/id && chmod 600 /tmp/k/id',
               input=other.run(['cat', '/tmp/k/id']).stdout)
    again = source.run(SSH + ['-i', '/tmp/k/id', target, 'true'], input='', check=False)
    assert again.returncode == 255 and 'Permission denied' in again.stderr
