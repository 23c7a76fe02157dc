# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet healed from one backup (replica_rebuild_fleet): four replicas broken four ways
(1236, 1062, 1032, errant GTID) while a writer inserts on the primary; one run of the
playbook streams one backup through all four and every replica ends healthy, with every
committed row, verified. mariadb-backup ran once on the primary, and the verification read
the primary once for the four replicas: its general log says so.

On production-shaped hosts (tests/lab/README.md, hardened): Ansible is the unprivileged
`ops` with sudo, sshd refuses root, each datadir is /data/mysql on its own mount with the
binlogs and relay logs in /var/log/mysql; r1032's /data/mysql is a bind mount of a
directory of its parent's filesystem (as Docker volumes and hand-made layouts on one disk
are: the mount table says mount point, stat says the parent's device), so its copy is staged
and its old datadir kept inside the mount. The chain's hops are the receivers' own
connections: no database host logs in to another."""

from __future__ import annotations

import collections
import json
import os
import re

import scenarios
from ansible_run import REPO, run_playbook, task_lines
from faults import LoadGenerator, logins_between

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
# Each task's start and end (bench/'s callback), to time the verification.
TIMINGS = {'ANSIBLE_CALLBACKS_ENABLED': 'bench_timings',
           'ANSIBLE_CALLBACK_PLUGINS': os.path.join(REPO, 'bench', 'callback_plugins')}
VERIFY_TASKS = ('Join the replicas checked together', 'Drop the temporary account on the primary')


def down_window(host):
    """(stopped, ready) of the server's last restart, from its error log or journal (to
    the second)."""
    stamps = {}
    for line in host.server_log().splitlines():
        for key, text in (('stopped', 'Shutdown complete'), ('ready', 'ready for connections')):
            if text in line:
                stamps[key] = line[:19]  # 'YYYY-MM-DD HH:MM:SS'
    return stamps['stopped'], stamps['ready']


def verify_seconds(timings_file):
    """Wall time of the role's verification step (tasks/verify.yml: from its first task's
    start to its last task's end)."""
    with open(timings_file) as f:
        tasks = json.load(f)['tasks']
    start = next(t['start'] for t in tasks if t['name'].endswith(VERIFY_TASKS[0]))
    end = [t['end'] for t in tasks if t['name'].endswith(VERIFY_TASKS[1])][-1]
    return end - start


def backup_uuid(host, datadir='/data/mysql'):
    """The uuid mariadb-backup gave the copy this datadir was made from."""
    info = host.run(['cat', datadir + '/xtrabackup_info']).stdout
    return next((line.split('=', 1)[1].strip() for line in info.splitlines()
                 if line.startswith('uuid')), '')


def bind_mount_kept(host, datadir='/data/mysql'):
    """The datadir is still that bind mount, of its parent's device; the copy came in through
    the staging folder inside it (the swap's record) and the old datadir is kept inside it
    (a bind mount cannot be renamed, nor renamed into from beside it: EXDEV)."""
    assert host.run(['findmnt', '-n', '-o', 'TARGET', '--target', datadir]).stdout.strip() == \
        datadir
    devs = host.run(['stat', '-c', '%d', datadir, os.path.dirname(datadir)]).stdout.split()
    assert devs[0] == devs[1], devs
    record = json.loads(host.run(['cat', datadir + '/reseed_swapped']).stdout)
    assert (record['layout'], record['staging']) == ('entries', datadir + '/#sql-reseed-staging')
    old = host.run('ls -d %s/#sql-reseed-old-*' % datadir).stdout.split()
    assert old == [record['old_datadir']], (old, record)
    assert host.run(['test', '-f', old[0] + '/labdb/t.ibd'], check=False).returncode == 0
    assert host.run('ls -d %s.reseed-* %s/#sql-reseed-staging 2>/dev/null || true'
                    % (datadir, datadir)).stdout == ''
    assert host.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE '#%'") == []


def checksum_scans(general_log):
    """{'`db`.`table`': how many times the server's general log shows it checksummed}."""
    return collections.Counter(re.findall(r'BIT_XOR\(.* FROM (`[^`]+`\.`[^`]+`)', general_log))


def test_four_replicas_broken_four_ways_healed_from_one_backup(make_hosts, inventory,
                                                               repl_password, tmp_path):
    names = ('primary', 'r1236', 'r1062', 'r1032', 'errant')
    hosts = make_hosts(*names, hardened=names, datadir_mount={'r1032': 'bind'})
    primary = hosts.pop('primary')
    replicas = [hosts[n] for n in ('r1236', 'r1062', 'r1032', 'errant')]
    scenarios.setup_replication(primary, replicas, repl_password, rows=5000)
    scenarios.break_1236(primary, replicas[0])
    scenarios.break_1062(primary, replicas[1])
    scenarios.break_1032(primary, replicas[2])
    scenarios.break_errant(primary, replicas[3])
    primary.sql("SET GLOBAL general_log_file = '/var/log/mysql/general.log'; "
                "SET GLOBAL general_log = ON")
    inv = inventory(primary, replicas)
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password,
             'replica_rebuild_fleet': True}
    timings = str(tmp_path / 'timings.json')
    with LoadGenerator(primary, rate=20, max_rows=100000) as writer:
        proc = run_playbook(inv, PLAYBOOK, extra, env=dict(TIMINGS, BENCH_TIMINGS_FILE=timings))
    primary.sql('SET GLOBAL general_log = OFF')
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert writer.errors == [] and writer.inserted > 0
    # One backup: the primary's server saw mariadb-backup's BACKUP STAGE START once.
    log = primary.run('cat /var/log/mysql/general.log').stdout
    assert len(re.findall(r'BACKUP STAGE START', log)) == 1, \
        re.findall(r'.*BACKUP STAGE.*', log)
    # and each new datadir holds the record of that same copy.
    uuids = set(backup_uuid(replica) for replica in replicas)
    assert len(uuids) == 1 and '' not in uuids, uuids
    bind_mount_kept(hosts['r1032'])
    # One scan of the primary for the four verifications: every table checksummed there
    # once (not once per replica; each is smaller than a first chunk), and every replica
    # equal to it at the same GTID.
    scans = checksum_scans(log)
    assert scans and set(scans.values()) == {1}, scans
    assert {'`labdb`.`t`', '`labdb`.`load`'} <= set(scans), scans
    lines = task_lines(proc.stdout, 'Checksum the primary once for every replica checked')
    assert len([x for x in lines if x.startswith('ok: [')]) == 1, lines
    # Each replica's result (summary.yml's report; the fleet's last lines say it again).
    verdicts = re.findall(r'"verified": "(\d+) tables equal at ([0-9,-]+)"', proc.stdout)
    assert len(verdicts) == 4 and len(set(verdicts)) == 1, verdicts
    assert int(verdicts[0][0]) == len(scans), (verdicts, scans)
    print('fleet verification of 4 replicas: %.1f s' % verify_seconds(timings))
    for replica in replicas:
        s = replica.slave_status()
        assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
            (replica.name, scenarios.threads(s))
        assert s['Using_Gtid'] == 'Slave_Pos'
        scenarios.wait_caught_up(primary, replica)
        for table in ('labdb.t', 'labdb.load'):
            assert replica.sql_value('SELECT COUNT(*) FROM %s' % table) == primary.sql_value(
                'SELECT COUNT(*) FROM %s' % table), (replica.name, table)
        # No GTID of the replica's own (the errant one) survived in its binlog state: the
        # old server's binlogs and its state file, in /var/log/mysql, were moved aside.
        own = '-%s-' % replica.sql_value('SELECT @@server_id')
        assert own not in replica.sql_value('SELECT @@gtid_binlog_state'), replica.name
        assert replica.sql_value('SELECT @@datadir') == '/data/mysql/'
        assert replica.run('findmnt -n -o TARGET --target /data/mysql').stdout.strip() == \
            '/data/mysql'
        # The old datadir kept: inside the mount (the mount point itself cannot be renamed).
        assert replica.run('ls -d /data/mysql/#sql-reseed-old-*').stdout.strip()
        assert replica.run('ls -d /tmp/reseed-cert-* 2>/dev/null || true').stdout == ''
    assert primary.run('ls -d /tmp/reseed-cert-* 2>/dev/null || true').stdout == ''
    assert logins_between([primary] + replicas) == []
    # The source streamed for the chain's head only; the others received from the replica
    # before them.
    lines = task_lines(proc.stdout, 'Stream the backup from the source into the (first) replica')
    assert len([x for x in lines if x.startswith('changed: [')]) == 1 and \
        len([x for x in lines if x.startswith('skipping: [')]) == 3, lines
    # Never more than one replica down at once (replica_rebuild_max_down: 1): each server's
    # own log says when it stopped for the swap and when the new one was ready.
    windows = sorted(down_window(replica) for replica in replicas)
    for (stop1, ready1), (stop2, ready2) in zip(windows, windows[1:]):
        assert ready1 <= stop2, windows
    # Again: nothing to do, nothing changed.
    again = run_playbook(inv, PLAYBOOK, extra)
    assert again.returncode == 0, again.stdout[-3000:]
    recap = again.stdout.split('PLAY RECAP')[-1]
    assert 'changed=0' in recap and 'changed=1' not in recap, \
        (recap, task_lines(again.stdout, 'Say what was found and what will be done'))
