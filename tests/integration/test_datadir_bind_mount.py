# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replica whose datadir is a bind mount of a directory of its parent's filesystem (as a
Docker volume or a hand-made `mount --bind` on one disk looks): st_dev equal to its
parent's, yet a mount point that cannot be renamed, and a rename into it from beside it
fails with EXDEV. The mount table says it is a mount point (module_utils/mounts.py, through
replication_info's datadir_mount to the role, and again in datadir_swap), so the copy is
staged inside it and the swap moves entries. Once it fell between the two detections (the
role's findmnt said mount point, the module's st_dev said plain directory) and failed at
the swap's preflight.

One playbook run on production-shaped hosts (ops with sudo, /data/mysql, logs in
/var/log/mysql), under a writer on the primary, with a healthy replica in the inventory
that must be left alone."""

from __future__ import annotations

import json
import os

import scenarios
from ansible_run import REPO, run_playbook
from faults import LoadGenerator

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
DATADIR = '/data/mysql'
TABLES = ('labdb.t', 'labdb.load')


def mariadbd_pid(host):
    return host.run('pidof mariadbd').stdout.strip()


def mount_target(host, path):
    return host.run(['findmnt', '-n', '-o', 'TARGET', '--target', path]).stdout.strip()


def same_device_as_parent(host, path):
    devs = host.run(['stat', '-c', '%d', path, os.path.dirname(path)]).stdout.split()
    return devs[0] == devs[1]


def checksums(host):
    return host.sql('CHECKSUM TABLE %s' % ', '.join(TABLES))


def test_rebuild_replica_whose_datadir_is_a_bind_mount_of_the_same_filesystem(
        make_hosts, inventory, repl_password):
    names = ('primary', 'bound', 'healthy')
    hosts = make_hosts(*names, datadir_mount={'bound': 'bind'}, hardened=names)
    primary, bound, healthy = hosts['primary'], hosts['bound'], hosts['healthy']
    # The shape under test: a mount point for the mount table, the parent's device for stat.
    assert mount_target(bound, DATADIR) == DATADIR and same_device_as_parent(bound, DATADIR)
    scenarios.setup_replication(primary, [bound, healthy], repl_password, rows=2000)
    scenarios.break_1062(primary, bound)
    bound_pid, healthy_pid = mariadbd_pid(bound), mariadbd_pid(healthy)
    inv = inventory(primary, [bound, healthy])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}
    with LoadGenerator(primary, rate=20, max_rows=100000) as writer:
        proc = run_playbook(inv, PLAYBOOK, extra)
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert writer.errors == [] and writer.inserted > 0

    # Healed: a new server, replicating, with every row the primary committed.
    assert mariadbd_pid(bound) != bound_pid
    for replica in (bound, healthy):
        s = replica.slave_status()
        assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
            (replica.name, scenarios.threads(s))
        assert s['Using_Gtid'] == 'Slave_Pos' and s['Last_SQL_Errno'] == '0', replica.name
        scenarios.wait_caught_up(primary, replica)
        assert checksums(replica) == checksums(primary), replica.name
    # The row the replica had inserted on its own is gone: it holds the primary's.
    assert bound.sql_value('SELECT v FROM labdb.t WHERE id = 100001') == 'primary'

    # Still the same mount, of the same filesystem as its parent; the copy came in through
    # the staging folder inside it (the swap's record), the old datadir is kept inside it.
    assert bound.sql_value('SELECT @@datadir') == DATADIR + '/'
    assert mount_target(bound, DATADIR) == DATADIR and same_device_as_parent(bound, DATADIR)
    record = json.loads(bound.run(['cat', DATADIR + '/reseed_swapped']).stdout)
    assert record['layout'] == 'entries', record
    assert record['staging'] == DATADIR + '/#sql-reseed-staging', record
    old = bound.run('ls -d %s/#sql-reseed-old-*' % DATADIR).stdout.split()
    assert old == [record['old_datadir']], (old, record)
    assert bound.run(['test', '-f', old[0] + '/ibdata1']).returncode == 0
    assert bound.run(['test', '-f', old[0] + '/labdb/t.ibd']).returncode == 0
    assert bound.run(['test', '-e', DATADIR + '/#sql-reseed-staging'], check=False).returncode == 1
    # Nothing beside the mount: neither a staging copy nor a kept datadir.
    assert bound.run('ls -d /data/mysql.reseed-* 2>/dev/null || true').stdout == ''
    # The kept datadir and the staging name are not databases.
    assert bound.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                     "WHERE SCHEMA_NAME LIKE '#%'") == []

    # The healthy replica was left alone: the same server, nothing staged.
    assert mariadbd_pid(healthy) == healthy_pid
    assert healthy.run('ls -a %s | grep -c reseed || true' % DATADIR).stdout.strip() == '0'
    assert healthy.run('ls -d /data/mysql.reseed-* 2>/dev/null || true').stdout == ''


def test_replication_info_reports_the_datadir_mount_up_and_down(make_hosts, inventory,
                                                                run_module):
    hosts = make_hosts('bound', 'plain', datadir_mount={'bound': 'bind'}, hardened=('bound',))
    bound, plain = hosts['bound'], hosts['plain']
    inv = inventory(bound, [plain])
    up = run_module(inv, bound.name, 'replication_info', {})
    assert not up.failed, up.result
    source, root, fstype = bound.run(['findmnt', '-n', '-o', 'SOURCE,FSROOT,FSTYPE',
                                      '--target', DATADIR]).stdout.split()
    assert up['datadir_mount'] == dict(mount_point=True, target=DATADIR, fstype=fstype,
                                       source=source.split('[')[0], root=root), up.result
    # The server down: the datadir from the option files, the same mount facts.
    bound.service('stop')
    down = run_module(inv, bound.name, 'replication_info', {})
    assert not down.failed and down['state'] == 'down', down.result
    assert down['datadir'] == DATADIR and down['datadir_mount'] == up['datadir_mount']
    # A plain directory: not a mount point, held by the mount findmnt names.
    info = run_module(inv, plain.name, 'replication_info', {})
    assert not info.failed, info.result
    assert info['datadir_mount']['mount_point'] is False
    assert info['datadir_mount']['target'] == mount_target(plain, '/var/lib/mysql')
