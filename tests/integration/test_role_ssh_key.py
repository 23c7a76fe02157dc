# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ssh transport (replica_rebuild_transport: ssh).

Its temporary key (tasks/ssh_key.yml) opens one tunnel, ``ssh -W 127.0.0.1:PORT``, to the
receiver on the replica's loopback, from the source's address only: no command, no shell,
no pty, no other port; the removal (tasks/ssh_key_remove.yml) takes every transfer key of
the replica. On production-shaped hosts the tunnel's account is Ansible's own (ops), with
no privilege: the receiver runs through Ansible's become. An sshd that refuses forwarding
fails the run before anything changes.

The key's cases share one set of plain hosts (module fixture ``keyed``; the removal comes
last); the hardened cases another (``hardened``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest

import faults
import scenarios
from ansible_run import REPO, run_playbook, write_inventory
from faults import diff, fatal_lines, logins_between, snapshot, ssh_logins, transfer_leftovers

KEY_PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks',
                            'ssh_key.yml')
PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
PORT = 4444  # replica_rebuild_port's default
SSH = ['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
       '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5']


def keep_hosts():
    return os.environ.get('RESEED_LAB_KEEP') == '1'


# ---- the key alone, on plain hosts ------------------------------------------------------

@pytest.fixture(scope='module')
def keyed(lab, tmp_path_factory):
    """A source, a replica and another host; the transfer key made by the role's step."""
    number = lab.next_number()
    names = dict((role, 't%d-%s' % (number, role)) for role in ('source', 'replica', 'other'))
    tmp = tmp_path_factory.mktemp('keyed')
    try:
        hosts = dict((role, lab.create(name, start_server=role != 'other', systemd=True))
                     for role, name in names.items())
        source, replica, other = hosts['source'], hosts['replica'], hosts['other']
        inv = str(tmp / 'inventory.json')
        write_inventory(lab, inv, source.name, [replica.name], [other.name])
        common = {'replica_rebuild_replication_user': 'repl',
                  'replica_rebuild_replication_password': 'unused',
                  '__replica_rebuild_run_id': 'test1',
                  'key_report': str(tmp / 'keydir')}
        keys_before = replica.run('cat /root/.ssh/authorized_keys').stdout
        proc = run_playbook(inv, KEY_PLAYBOOK, dict(common, key_action='make'))
        assert proc.returncode == 0, proc.stdout[-3000:]
        keydir = open(common['key_report']).read()
        yield dict(source=source, replica=replica, other=other, inventory=inv, common=common,
                   keydir=keydir, key=keydir + '/id_ed25519', keys_before=keys_before,
                   target='root@' + replica.ip)
    finally:
        if not keep_hosts():
            for name in names.values():
                lab.destroy(name)


def tunnel(host, key, target, port, payload='', timeout=30):
    """ssh -W 127.0.0.1:port from host with key; payload goes through. CompletedProcess."""
    return host.run(SSH + ['-i', key, '-W', '127.0.0.1:%d' % port, target], input=payload,
                    check=False, timeout=timeout)


def listen_once(host, port, into):
    """A listener on host's loopback port that writes what one connection sends into a file
    (as the receiver listens with transport ssh); returns the Popen."""
    proc = host.popen(['socat', '-u', 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr' % port,
                       'CREATE:' + into], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True)
    faults.wait_until(lambda: '127.0.0.1:%d ' % port in host.run(['ss', '-Hltn']).stdout,
                      10, 0.05, 'the listener on %s' % host.name)
    return proc


def test_transfer_key_is_authorized_for_one_tunnel_from_the_source(keyed):
    source, replica = keyed['source'], keyed['replica']
    assert source.run(['stat', '-c', '%a %U', keyed['keydir']]).stdout.split() == ['700', 'root']
    public = source.run(['cat', keyed['key'] + '.pub']).stdout.strip()
    lines = [ln for ln in replica.run('cat /root/.ssh/authorized_keys').stdout.splitlines()
             if 'reseed-transfer' in ln]
    assert lines == ['restrict,port-forwarding,permitopen="127.0.0.1:%d",from="%s",'
                     'command="/bin/false" %s' % (PORT, source.ip, public)], lines
    assert public.endswith(' reseed-transfer-%s-test1' % replica.name)


def test_transfer_key_opens_the_tunnel_to_the_receivers_port_only(keyed):
    source, replica, other = keyed['source'], keyed['replica'], keyed['other']
    key, target = keyed['key'], keyed['target']
    before = ssh_logins(replica)
    # The tunnel the stream uses: what the source sends arrives at the replica's loopback
    # port, where the receiver listens with transport ssh.
    listener = listen_once(replica, PORT, '/tmp/received')
    try:
        sent = tunnel(source, key, target, PORT, 'payload-1\n')
        listener.wait(15)
    finally:
        if listener.poll() is None:
            listener.kill()  # our own process, by its pid
            listener.wait()
    assert sent.returncode == 0, sent.stderr
    assert replica.run('cat /tmp/received').stdout == 'payload-1\n'
    # Another port of the replica (its MariaDB listens on 3306, loopback included): refused.
    other_port = tunnel(source, key, target, 3306)
    assert other_port.returncode == 255 and \
        'administratively prohibited' in other_port.stderr, other_port.stderr
    # No pty.
    pty = source.run(SSH + ['-tt', '-i', key, target], input='', check=False)
    assert 'PTY allocation request failed' in pty.stderr, pty.stderr
    # The same key from another host: no login at all.
    other.run('mkdir -p -m 700 /tmp/k && cat > /tmp/k/id && chmod 600 /tmp/k/id',
              input=source.run(['cat', key]).stdout)
    elsewhere = tunnel(other, '/tmp/k/id', target, PORT, 'from-other\n')
    assert elsewhere.returncode == 255 and 'Permission denied' in elsewhere.stderr, \
        elsewhere.stderr
    logins = ssh_logins(replica)[len(before):]
    assert logins and set(logins) == {('root', source.ip)}, logins


def test_transfer_key_runs_no_command_and_no_shell(keyed):
    source, replica = keyed['source'], keyed['replica']
    key, target = keyed['key'], keyed['target']
    replica.run('rm -f /tmp/by-command /tmp/by-shell')
    command = source.run(SSH + ['-i', key, target, 'touch /tmp/by-command; id -un'],
                         input='', check=False)
    shell = source.run(SSH + ['-T', '-i', key, target], input='touch /tmp/by-shell; id -un\n',
                       check=False)
    ran = [f for f in ('/tmp/by-command', '/tmp/by-shell')
           if replica.run(['test', '-e', f], check=False).returncode == 0]
    assert ran == [] and 'root' not in command.stdout + shell.stdout, (
        ran, command.stdout, shell.stdout)


def test_removal_takes_every_transfer_key_of_the_replica(keyed):
    """Last of the key's cases: removed, with the keys of interrupted runs of this replica;
    another replica's key directory on the source and the replica's other keys stay."""
    source, replica = keyed['source'], keyed['replica']
    keydir, key, target = keyed['keydir'], keyed['key'], keyed['target']
    # An interrupted run's key of this replica, on both hosts; another replica's key
    # directory (in use) on the source; a key of the replica's own admin.
    parent, prefix = os.path.split(keydir[:-8])  # reseed-key-<replica>-
    stale = os.path.join(parent, prefix + 'Ab3_x9Zq')
    others = os.path.join(parent, prefix[:-1] + '2-Ab3_x9Zq')
    source.run(['mkdir', '-m', '700', stale, others])
    source.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C',
                'reseed-transfer-%s-20260101T000000Z' % replica.name, '-f', stale + '/id_ed25519'])
    source.run(['touch', others + '/id_ed25519'])
    stale_line = 'restrict,port-forwarding,permitopen="127.0.0.1:%d",from="%s" %s' % (
        PORT, source.ip, source.run(['cat', stale + '/id_ed25519.pub']).stdout.strip())
    copy = source.run(['cat', key]).stdout
    admin_line = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake' \
        'FakeFake admin@laptop'
    replica.run('cat >> /root/.ssh/authorized_keys', input=stale_line + '\n' + admin_line + '\n')
    proc = run_playbook(keyed['inventory'], KEY_PLAYBOOK, dict(
        keyed['common'], key_action='remove', __replica_rebuild_keydir={'path': keydir}))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert replica.run('cat /root/.ssh/authorized_keys').stdout == \
        keyed['keys_before'] + admin_line + '\n'
    assert source.run(['test', '-e', keydir], check=False).returncode == 1
    assert source.run(['test', '-e', stale], check=False).returncode == 1
    assert source.run(['test', '-f', others + '/id_ed25519']).returncode == 0
    # A copy of the key kept on the source no longer opens anything.
    source.run('mkdir -p -m 700 /tmp/k && cat > /tmp/k/id && chmod 600 /tmp/k/id',
               input=copy)
    again = tunnel(source, '/tmp/k/id', target, PORT)
    assert again.returncode == 255 and 'Permission denied' in again.stderr, again.stderr


# ---- the ssh transport on production-shaped hosts ----------------------------------------

@pytest.fixture(scope='module')
def hardened(lab, tmp_path_factory, repl_password_module):
    """A hardened primary and replica (Ansible logs in as ops with sudo, sshd refuses root),
    the replica broken by 1236."""
    number = lab.next_number()
    names = dict((role, 't%d-%s' % (number, role)) for role in ('primary', 'replica'))
    try:
        hosts = dict((role, lab.create(name, hardened=True, systemd=True))
                     for role, name in names.items())
        primary, replica = hosts['primary'], hosts['replica']
        scenarios.setup_replication(primary, [replica], repl_password_module, rows=3000)
        scenarios.break_1236(primary, replica)
        inv = write_inventory(lab, str(tmp_path_factory.mktemp('hard') / 'inventory.json'),
                              primary.name, [replica.name])
        yield dict(primary=primary, replica=replica, inventory=inv, runs={},
                   vars={'replica_rebuild_replication_user': 'repl',
                         'replica_rebuild_replication_password': repl_password_module,
                         'replica_rebuild_transport': 'ssh'})
    finally:
        if not keep_hosts():
            for name in names.values():
                lab.destroy(name)


@pytest.fixture(scope='module')
def repl_password_module():
    return "Rp'l\\" + secrets.token_hex(8)


def fatal(out, *needles):
    """The one failure line holding every needle."""
    lines = fatal_lines(out)
    line = next((ln for ln in lines if all(n in ln for n in needles)), None)
    assert line and '\n' not in line, (needles, lines or out[-3000:])
    return line


def test_ssh_transport_as_ops_rebuilds_a_replica_on_hardened_hosts(hardened):
    """transport ssh, ssh_user left to its default: Ansible's user on the replica, ops. The
    key is authorized for ops (no privilege; root may not log in), the receiver runs as root
    through become, the copy lands in /data/mysql."""
    primary, replica = hardened['primary'], hardened['replica']
    keys = faults.authorized_keys(replica)
    logins = dict((h.name, ssh_logins(h)) for h in (primary, replica))
    started = time.time()
    with faults.LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        proc = run_playbook(hardened['inventory'], PLAYBOOK, hardened['vars'])
    seconds = time.time() - started
    assert proc.returncode == 0, proc.stdout[-6000:]
    writer.check_arrived(replica)
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        scenarios.threads(s)
    assert 'tables equal at' in proc.stdout
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT @@datadir') == '/data/mysql/'
    # The only logins between the hosts: the tunnel's, as ops, from the source (one per
    # attempt: the source retries while the receiver is not listening yet).
    between = logins_between((primary, replica), logins)
    assert between and set(between) == {'%s <- ops@%s' % (replica.name, primary.ip)}, between
    # The key is gone from ops's authorized keys, its directory from the source.
    assert faults.authorized_keys(replica) == keys
    for host in (primary, replica):
        assert transfer_leftovers(host) == [], host.name
    assert faults.module_pids(replica, 'backup_receive') == []
    print(dict(seconds=round(seconds, 1), tunnel_logins=len(between)))


def forwarding_refused(hardened):
    """The replica's sshd refuses forwarding; a forced rebuild then. Run once, shared by the
    cases below: (output, seconds, snapshots before and after, staging listing)."""
    if 'refused' not in hardened['runs']:
        primary, replica = hardened['primary'], hardened['replica']
        replica.set_sshd_option('AllowTcpForwarding', 'no')
        try:
            before = [snapshot(primary), snapshot(replica)]
            started = time.time()
            proc = run_playbook(hardened['inventory'], PLAYBOOK, dict(
                hardened['vars'], replica_rebuild_force=True))
            seconds = time.time() - started
            after = [snapshot(primary), snapshot(replica)]
            staging = replica.run(['ls', '-A', replica.datadir]).stdout.split()
        finally:
            replica.set_sshd_option('AllowTcpForwarding', 'yes')
        hardened['runs']['refused'] = (proc, seconds, before, after, staging)
    return hardened['runs']['refused']


def test_ssh_forwarding_refused_fails_before_anything_changes(hardened):
    primary, replica = hardened['primary'], hardened['replica']
    proc, seconds, before, after, staging = forwarding_refused(hardened)
    assert proc.returncode != 0, proc.stdout[-3000:]
    line = fatal(proc.stdout, '%s: stream from %s: ' % (replica.name, primary.name),
                 'backup_stream to %s:%d (ssh): nothing changed' % (replica.ip, PORT),
                 'administratively prohibited', 'Nothing was swapped')
    print('forwarding refused: %.1f s: %s' % (seconds, line))
    assert [diff(before[0], after[0]), diff(before[1], after[1])] == [{}, {}]
    assert '#sql-reseed-staging' not in staging
    for host in (primary, replica):
        assert transfer_leftovers(host) == [], host.name
    assert faults.module_pids(replica, 'backup_receive') == []


def test_ssh_forwarding_refused_says_what_to_do(hardened):
    proc = forwarding_refused(hardened)[0]
    line = fatal(proc.stdout, 'administratively prohibited')
    assert "the replica's sshd refuses the tunnel" in line and 'AllowTcpForwarding' in line \
        and 'or use transport tls' in line, line
