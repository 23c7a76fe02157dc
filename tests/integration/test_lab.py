# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab itself: hosts are separate machines in every way our tests rely on."""

from __future__ import annotations

import os
import subprocess

import pytest

import scenarios
from lab import BRIDGE


def test_hosts_are_isolated_and_replicate(make_hosts, repl_password):
    hosts = make_hosts('a', 'b')
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


def test_create_is_idempotent_and_destroy_leaves_nothing(lab):
    name = 't%d-idem' % lab.next_number()
    host = lab.create(name)
    pid, ip, hostdir = host.init_pid, host.ip, host.dir
    again = lab.create(name)
    assert again.init_pid == pid and again.ip == ip
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


def test_datadir_as_its_own_mount_point(make_hosts):
    host = make_hosts('m', datadir_mount=('m',))['m']
    assert host.run('mountpoint -q /var/lib/mysql', check=False).returncode == 0
    assert host.sql_value('SELECT @@datadir') == '/var/lib/mysql/'
    host.sql('CREATE DATABASE mounted; CREATE TABLE mounted.t (i INT PRIMARY KEY);'
             'INSERT INTO mounted.t VALUES (1)')
    assert host.run('test -d /var/lib/mysql/mounted', check=False).returncode == 0


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
