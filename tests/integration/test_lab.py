# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab itself: hosts are separate machines in every way our tests rely on."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess

import pytest

import release
import scenarios
from lab import BRIDGE

MACHINE_ACCOUNTS = ('/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow')


def ssh(host, command, user=None, options=(), input=None):
    """ssh from the controller to a lab host with the lab key; CompletedProcess."""
    argv = host.ssh_argv(command, user=user)
    at = argv.index('%s@%s' % (user or host.login_user, host.ip))
    argv[at:at] = list(options)
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, check=False)


def tcp_connects(client, server, port):
    """Whether a TCP connect from lab host `client` to `server`:port succeeds in 3 s."""
    return client.run(['python3', '-c', 'import socket, sys; socket.create_connection('
                       '(sys.argv[1], int(sys.argv[2])), timeout=3)', server, str(port)],
                      check=False).returncode == 0


def machine_state():
    """What a lab host must never change on the machine: its accounts and its root."""
    digests = dict((f, hashlib.sha256(open(f, 'rb').read()).hexdigest())
                   for f in MACHINE_ACCOUNTS)
    return digests, sorted(os.listdir('/'))


def test_hosts_are_isolated_and_replicate(make_hosts, repl_password):
    # Hand-started hosts: sshd is their first process (a systemd host's is systemd).
    hosts = make_hosts('a', 'b', systemd=())
    a, b = hosts['a'], hosts['b']
    assert a.ip != b.ip
    # Own hostname, own pid namespace whose first process is sshd.
    assert a.run('hostname').stdout.strip() == a.name
    assert 'sshd' in a.run('cat /proc/1/cmdline').stdout
    assert 'mariadbd' in a.run('ps -eo comm').stdout
    # Files under /var/lib (the datadir's parent) and /tmp are private to each host.
    a.run('echo only-a > /var/lib/marker-a && echo tmp-a > /tmp/marker-a')
    assert b.run('test -e /var/lib/marker-a', check=False).returncode == 1
    assert b.run('test -e /tmp/marker-a', check=False).returncode == 1
    assert not os.path.exists('/var/lib/marker-a')
    # Each server has its own identity and the settings replication needs.
    rows_a = a.sql('SELECT @@server_id, @@log_bin, @@binlog_format, @@log_slave_updates, '
                   '@@gtid_strict_mode, @@hostname')[0]
    assert rows_a == [str(a.server_id), '1', 'ROW', '1', '1', a.name]
    assert b.sql_value('SELECT @@server_id') == str(b.server_id)
    # Each host names every lab host and the controller.
    hosts_file = b.run('cat /etc/hosts').stdout
    assert '%s\t%s' % (a.ip, a.name) in hosts_file and 'controller' in hosts_file
    # Hosts reach each other: replication by hand SQL, rows arrive.
    scenarios.setup_replication(a, [b], repl_password, rows=50)
    a.sql("INSERT INTO labdb.t (id, v) VALUES (5000, 'fresh')")
    scenarios.wait_caught_up(a, b)
    assert b.sql_value('SELECT v FROM labdb.t WHERE id=5000') == 'fresh'
    assert b.sql_value('SELECT COUNT(*) FROM labdb.t') == '51'
    status = b.slave_status()
    assert status['Slave_IO_Running'] == 'Yes' and status['Slave_SQL_Running'] == 'Yes'
    assert status['Using_Gtid'] == 'Slave_Pos' and status['Master_Host'] == a.ip


def test_ansible_reaches_hosts_with_system_python(make_hosts, inventory, run_module):
    hosts = make_hosts('p', 'r')
    inv = inventory(hosts['p'], [hosts['r']])
    for h in hosts.values():
        res = run_module(inv, h.name, 'ansible.builtin.setup', {'filter': 'ansible_python'})
        assert not res.failed, res.result
        assert res['ansible_facts']['ansible_python']['executable'] == '/usr/bin/python3'
        res = run_module(inv, h.name, 'ansible.builtin.command',
                         {'argv': ['/usr/bin/python3', '-c', 'import pymysql']})
        assert not res.failed, res.result


@pytest.mark.parametrize('hardened', [False, True], ids=['plain', 'hardened'])
def test_create_is_idempotent_and_destroy_leaves_nothing(lab, hardened):
    before = machine_state()
    name = 't%d-idem' % lab.next_number()
    first = lab.create(name, hardened=hardened)
    first_pid, first_ip = first.init_pid, first.ip
    again = lab.create(name, hardened=hardened)
    assert again.init_pid == first_pid and again.ip == first_ip and again.hardened == hardened
    # Other options: the host is made anew.
    other = lab.create(name, hardened=not hardened, start_server=False)
    assert other.init_pid != first_pid and other.hardened != hardened
    host = lab.create(name, hardened=hardened, start_server=False)
    pid, ip, hostdir = host.init_pid, host.ip, host.dir
    lab.destroy(name)
    lab.destroy(name)  # twice is fine
    assert not os.path.exists('/proc/%d' % pid) or open('/proc/%d/stat' % pid).read() == ''
    assert not os.path.exists(hostdir)
    assert not os.path.exists('/run/netns/rsd-' + name)
    links = subprocess.run(['ip', '-o', 'link'], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert 'rsv%s@' % ip.rsplit('.', 1)[1] not in links
    assert name not in subprocess.run(['findmnt', '-rn', '-o', 'TARGET'],
                                      stdout=subprocess.PIPE, text=True, check=True).stdout
    assert BRIDGE in links  # other hosts may still use the bridge
    # A hardened host's users, /data and the like were its own: the machine is unchanged.
    assert machine_state() == before
    with pytest.raises(KeyError):
        pwd.getpwnam('ops')


def test_datadir_as_its_own_mount_point(make_hosts):
    host = make_hosts('m', datadir_mount=('m',))['m']
    assert host.run('mountpoint -q /var/lib/mysql', check=False).returncode == 0
    assert host.sql_value('SELECT @@datadir') == '/var/lib/mysql/'
    host.sql('CREATE DATABASE mounted; CREATE TABLE mounted.t (i INT PRIMARY KEY);'
             'INSERT INTO mounted.t VALUES (1)')
    assert host.run('test -d /var/lib/mysql/mounted', check=False).returncode == 0


@pytest.mark.parametrize('hardened', [False, True], ids=['plain', 'hardened'])
def test_datadir_as_a_bind_mount_of_the_same_filesystem(lab, make_hosts, hardened):
    host = make_hosts('b', datadir_mount={'b': 'bind'},
                      hardened=('b',) if hardened else ())['b']
    datadir = host.datadir
    assert host.datadir_mount == 'bind'
    assert host.sql_value('SELECT @@datadir') == datadir + '/'
    # A mount point for findmnt, yet the same device as its parent for stat.
    assert host.run(['findmnt', '-n', '-o', 'TARGET', '--target', datadir]).stdout.strip() == datadir
    devs = host.run(['stat', '-c', '%d', datadir, os.path.dirname(datadir)]).stdout.split()
    assert devs[0] == devs[1], devs
    # A rename from beside it into it fails with EXDEV, although it is one filesystem.
    host.run(['touch', datadir + '.beside'])
    moved = host.run(['python3', '-c', 'import os, sys; os.rename(sys.argv[1], sys.argv[2])',
                      datadir + '.beside', datadir + '/beside'], check=False)
    assert 'Invalid cross-device link' in moved.stderr, moved.stderr
    # Kept when asked again with the same options, made anew with others.
    pid = host.init_pid
    again = lab.create(host.name, datadir_mount='bind', hardened=hardened)
    assert again.init_pid == pid
    other = lab.create(host.name, datadir_mount=True, hardened=hardened, start_server=False)
    assert other.init_pid != pid and other.datadir_mount is True
    lab.destroy(host.name)
    assert not os.path.exists(host.dir)
    assert host.name not in subprocess.run(['findmnt', '-rn', '-o', 'TARGET,SOURCE'],
                                           stdout=subprocess.PIPE, text=True, check=True).stdout


@pytest.mark.parametrize('kind,field,errno', [
    ('1032', 'Last_SQL_Errno', '1032'),
    ('1062', 'Last_SQL_Errno', '1062'),
    ('1236', 'Last_IO_Errno', '1236'),
])
def test_breakages_produce_their_errors(replicated, kind, field, errno):
    status = scenarios.BREAKAGES[kind](replicated['primary'], replicated['replica'])
    assert status[field] == errno
    running = 'Slave_IO_Running' if field == 'Last_IO_Errno' else 'Slave_SQL_Running'
    assert status[running] == 'No'


def test_breakage_1236_after_reset_master(replicated):
    status = scenarios.break_1236(replicated['primary'], replicated['replica'], how='reset')
    assert status['Last_IO_Errno'] == '1236'


def test_errant_transaction(replicated):
    primary, replica = replicated['primary'], replicated['replica']
    state = scenarios.break_errant(primary, replica)
    assert '0-%d-' % replica.server_id in state
    status = replica.slave_status()
    assert status['Slave_IO_Running'] == 'Yes' and status['Slave_SQL_Running'] == 'Yes'
    assert '-%d-' % replica.server_id not in primary.sql_value(
        'SELECT @@GLOBAL.gtid_binlog_state')


def test_secrets_watch_sees_argv_and_environment_inside_lab_hosts(make_hosts):
    from secrets_watch import SecretsWatch
    host = make_hosts('w')['w']
    with SecretsWatch(['Leaky-Token-1', 'Env-Token-2']) as watch:
        host.run(['sh', '-c', 'sleep 0.5; true', 'Leaky-Token-1'])
        host.run(['env', 'X=Env-Token-2', 'sleep', '0.5'])
    kinds = sorted(set(leak[1] for leak in watch.leaks))
    assert kinds == ['argv', 'environ'], watch.leaks


def test_link_shaping_is_set_and_lifted(make_hosts):
    host = make_hosts('s')['s']
    host.shape('100mbit')
    outside = subprocess.run(['tc', 'qdisc', 'show', 'dev', host.veth], stdout=subprocess.PIPE,
                             text=True, check=True).stdout
    assert 'tbf' in outside and '100Mbit' in outside
    assert '100Mbit' in host.run('tc qdisc show dev eth0').stdout
    host.shape(None)
    assert 'tbf' not in host.run('tc qdisc show dev eth0').stdout


def test_hardened_host_is_production_shaped(make_hosts, inventory, run_module, repl_password):
    hosts = make_hosts('p', 'h', hardened=('h',), systemd=())
    plain, hard = hosts['p'], hosts['h']
    # Ansible's way in: ops with the lab key, then sudo without a password; root is refused.
    login = ssh(hard, 'id -un; sudo -n id -u')
    assert login.returncode == 0 and login.stdout.split() == [b'ops', b'0'], login
    refused = ssh(hard, 'true', user='root')
    assert refused.returncode == 255 and b'Permission denied' in refused.stderr
    assert ssh(plain, 'id -u').stdout.strip() == b'0'  # plain hosts: root, as before
    # The datadir is its own mount point, as the role's preflight (findmnt) and datadir_swap
    # (another st_dev than its parent's) find it, owned by mysql, its parent writable for
    # root; /var/lib/mysql is empty, unused.
    found = hard.run(['findmnt', '-n', '-o', 'TARGET', '--target', '/data/mysql']).stdout
    assert found.strip() == '/data/mysql'
    devices = hard.run(['stat', '-c', '%d', '/data', '/data/mysql']).stdout.split()
    assert devices[0] != devices[1], devices
    assert hard.run(['stat', '-c', '%U', '/data/mysql']).stdout.strip() == 'mysql'
    hard.run('touch /data/writable && rm /data/writable')
    assert hard.run(['ls', '-A', '/var/lib/mysql']).stdout == ''
    assert hard.sql('SELECT @@datadir, @@log_bin_basename, @@relay_log_basename')[0] == [
        '/data/mysql/', '/var/log/mysql/mysql-bin', '/var/log/mysql/relay-bin']
    assert hard.datadir == '/data/mysql' and plain.datadir == '/var/lib/mysql'
    # Replication from a plain host works; the relay logs land in /var/log/mysql.
    scenarios.setup_replication(plain, [hard], repl_password, rows=20)
    plain.sql("INSERT INTO labdb.t (id, v) VALUES (5000, 'fresh')")
    scenarios.wait_caught_up(plain, hard)
    assert hard.sql_value('SELECT v FROM labdb.t WHERE id=5000') == 'fresh'
    logs = hard.run(['ls', '/var/log/mysql']).stdout.split()
    assert 'mysql-bin.000001' in logs and 'relay-bin.000001' in logs, logs
    # The inventory: ops and become for the hardened host, the plain host as it was.
    inv = inventory(plain, [hard])
    with open(inv) as f:
        data = json.load(f)
    assert data['all']['vars']['ansible_user'] == 'root'
    hostvars = data['all']['children']['mariadb_replicas']['hosts'][hard.name]
    assert hostvars['ansible_user'] == 'ops' and hostvars['ansible_become'] is True
    assert 'ansible_user' not in data['all']['children']['mariadb_primary']['hosts'][plain.name]
    for h in (plain, hard):
        res = run_module(inv, h.name, 'ansible.builtin.command', {'argv': ['id', '-u']})
        assert not res.failed and res['stdout'] == '0', res.result


def test_sudo_can_be_made_to_ask_for_a_password(make_hosts):
    hard = make_hosts('h', hardened=('h',), systemd=())['h']
    hard.set_sudo_password_required(True)
    asked = ssh(hard, 'sudo -n true')
    assert asked.returncode == 1 and b'a password is required' in asked.stderr, asked
    given = ssh(hard, 'sudo -S -p "" id -u', input=(hard.ops_password + '\n').encode())
    assert given.returncode == 0 and given.stdout.strip() == b'0', given
    hard.set_sudo_password_required(False)
    assert ssh(hard, 'sudo -n id -u').stdout.strip() == b'0'


def test_sshd_option_reloads_sshd_in_place(make_hosts):
    hard = make_hosts('h', hardened=('h',), systemd=())['h']
    pid = hard.init_pid
    forward = ('-W', '127.0.0.1:3306')
    # The stream's ssh tunnel needs forwarding: it reaches MariaDB's greeting, then not.
    assert b'MariaDB' in ssh(hard, None, options=forward, input=b'').stdout
    hard.set_sshd_option('AllowTcpForwarding', 'no')
    denied = ssh(hard, None, options=forward, input=b'')
    assert denied.returncode == 255 and b'forwarding failed' in denied.stderr, denied
    # The same sshd (pid 1, re-executed), with all of its configuration read anew.
    assert hard.running() and hard.init_pid == pid
    assert ssh(hard, 'true', user='root').returncode == 255
    assert ssh(hard, 'sudo -n id -u').stdout.strip() == b'0'
    hard.set_sshd_option('AllowTcpForwarding', 'yes')
    assert b'MariaDB' in ssh(hard, None, options=forward, input=b'').stdout


def test_block_port_drops_other_hosts_connections(make_hosts):
    hosts = make_hosts('a', 'b')
    a, b = hosts['a'], hosts['b']
    machine_rules = subprocess.run(['nft', 'list', 'ruleset'], stdout=subprocess.PIPE,
                                   text=True, check=True).stdout
    assert tcp_connects(a, b.ip, 3306)
    b.block_port(3306)
    assert not tcp_connects(a, b.ip, 3306)
    assert tcp_connects(a, b.ip, 22)  # that port only
    assert tcp_connects(b, '127.0.0.1', 3306)  # the host reaches itself
    assert subprocess.run(['nft', 'list', 'ruleset'], stdout=subprocess.PIPE, text=True,
                          check=True).stdout == machine_rules
    b.unblock_port(3306)
    assert tcp_connects(a, b.ip, 3306)
    b.unblock_port(3306)  # twice is fine


def test_release_host_runs_its_own_tree(lab, make_hosts, inventory, run_module, repl_password):
    """A host of Debian 13 (release trixie): its root is an overlay of the cached tree, the
    tree's sshd, Python 3.13 and MariaDB 11.8 run it; it replicates from a 10.11 host."""
    hosts = make_hosts('p', 'n', release={'n': 'trixie'})
    plain, new = hosts['p'], hosts['n']
    tree = release.tree_path('trixie')
    assert new.release == 'trixie' and plain.release is None
    assert new.run('cat /etc/debian_version').stdout.startswith('13.')
    assert new.run('python3 --version').stdout.startswith('Python 3.13.')
    assert 'OpenSSH_10.' in new.run('ssh -V 2>&1').stdout
    assert new.run('readlink /proc/1/exe').stdout.strip() == '/usr/sbin/sshd'
    assert new.sql_value('SELECT @@version').startswith('11.8.')
    assert plain.sql_value('SELECT @@version').startswith('10.11.')
    assert new.sql('SELECT @@server_id, @@log_bin, @@binlog_format, @@log_slave_updates, '
                   '@@gtid_strict_mode, @@hostname, @@report_host, @@bind_address, '
                   '@@log_error')[0] == [str(new.server_id), '1', 'ROW', '1', '1', new.name,
                                         new.name, '0.0.0.0', '/var/log/mysql/error.log']
    # The datadir is the tree's mysql user's (not the machine's uid), the log its own.
    assert new.run('stat -c %U:%G /var/lib/mysql').stdout.strip() == 'mysql:mysql'
    assert new.run('stat -c %u /var/lib/mysql').stdout.strip() == \
        new.run('id -u mysql').stdout.strip()
    assert 'ready for connections' in new.run('cat /var/log/mysql/error.log').stdout
    # Its own root: what it writes goes to its upper layer, neither the tree nor the machine.
    new.run('echo n > /etc/marker-n && echo n > /var/lib/marker-n')
    for path in ('/etc/marker-n', '/var/lib/marker-n'):
        assert not os.path.exists(tree + path) and not os.path.exists(path)
    assert plain.run('test -e /etc/marker-n', check=False).returncode == 1
    assert '%s\t%s' % (plain.ip, plain.name) in new.run('cat /etc/hosts').stdout
    # Ansible: root with the lab key, /usr/bin/python3 is 3.13 with PyMySQL.
    inv = inventory(plain, [new])
    res = run_module(inv, new.name, 'ansible.builtin.setup', {'filter': 'ansible_python'})
    assert not res.failed, res.result
    assert res['ansible_facts']['ansible_python']['version']['minor'] == 13
    res = run_module(inv, new.name, 'ansible.builtin.command',
                     {'argv': ['/usr/bin/python3', '-c', 'import pymysql']})
    assert not res.failed, res.result
    # An 11.8 replica of a 10.11 primary (MASTER_SSL=0: the primary has no TLS).
    scenarios.setup_replication(plain, [new], repl_password, rows=20)
    plain.sql("INSERT INTO labdb.t (id, v) VALUES (5000, 'fresh')")
    scenarios.wait_caught_up(plain, new)
    assert new.sql_value('SELECT v FROM labdb.t WHERE id=5000') == 'fresh'
    assert new.slave_status()['Master_SSL_Allowed'] == 'No'
    # Idempotent: kept with the same release, made anew without it.
    pid = new.init_pid
    assert lab.create(new.name, release='trixie').init_pid == pid
    mine = [m for m in release.mounts_using(tree) if new.dir + '/' in m]
    assert mine, 'no overlay of the tree for %s' % new.name
    lab.destroy(new.name)
    assert not os.path.exists(new.dir)
    assert [m for m in release.mounts_using(tree) if new.dir + '/' in m] == []
    assert release.stamp(tree)  # the cached tree stays
