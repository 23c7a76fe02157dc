# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A primary of 4,000 InnoDB tables whose mariadbd and sshd run with a soft nofile of 1024,
as a server started by hand or by an init script (and every ssh session, Ansible's and the
mariadb-backup under it) inherits (issue 22, item 1; MDEV-19060).

mariadb-backup opens every tablespace at once: without the modules' raise of their own soft
limit it fails with "Too many open files". With it, one run of rebuild_replica.yml heals a
1062 replica under a writer and leaves the healthy replica on its server. Then, on the same
hosts, a hard limit too low for the tables (prlimit on the primary's sshd: new sessions get
it) makes the run refuse in the stream's preflight: nothing started, the broken replica's
server and datadir as they were, the failure naming both numbers and the remedy.

Production-shaped hosts: Ansible is `ops` with sudo; sudo (pam_limits with an empty
limits.conf, and sudo 1.9's own restore of the caller's limits) passes the session's limits
through unchanged, measured: soft 1024 / hard 20000 in the ssh session and under sudo."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import scenarios
from ansible_run import REPO, run_playbook
from faults import LoadGenerator, diff, mariadbd_pid, snapshot

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
TABLES = 4000
SOFT = 1024
# The server keeps fewer files open than a soft limit of 1024 allows, as mariadbd sizes its
# caches itself when it starts under such a limit (open_files_limit): a server holding its
# default innodb_open_files (2000) could not accept a connection once limited to 1024.
SMALL_CACHES = '[mysqld]\ninnodb_open_files = 300\ntable_open_cache = 400\n'

# Every failed task's result (rescued ones too), as JSON lines, for assertions on fields.
FAILED_CALLBACK = '''
from __future__ import annotations
import json, os
from ansible.plugins.callback import CallbackBase
DOCUMENTATION = """
name: reseed_failed
type: aggregate
short_description: failed task results as JSON lines, for a lab test
description: [Appends every failed result to $RESEED_FAILED_FILE.]
"""
class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'reseed_failed'
    CALLBACK_NEEDS_ENABLED = True
    def v2_runner_on_failed(self, result, ignore_errors=False):
        r = result._result
        with open(os.environ['RESEED_FAILED_FILE'], 'a') as f:
            f.write(json.dumps({'host': result._host.get_name(), 'task': result._task.get_name(),
                                'msg': r.get('msg'), 'open_files': r.get('open_files')},
                               default=str) + '\\n')
'''


def set_nofile(pid, soft, hard):
    """prlimit on a process by its pid as the machine sees it (a lab host's sshd: its first
    process; children forked after this inherit the new limits)."""
    subprocess.run(['prlimit', '--pid', str(pid), '--nofile=%d:%d' % (soft, hard)], check=True)


def nofile(pid):
    """(soft, hard) of a process, from /proc (the machine's view)."""
    with open('/proc/%s/limits' % pid) as f:
        for line in f:
            if line.startswith('Max open files'):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError('no open files line for pid %s' % pid)


class BackupWatch(threading.Thread):
    """Samples, from the machine's /proc, the mariadb-backup processes of one lab host (its
    pid namespace) while they run: their open files limits and how many descriptors they
    hold at most."""

    def __init__(self, host):
        super().__init__(daemon=True)
        self.ns = os.readlink('/proc/%d/ns/pid' % host.init_pid)
        self.limits = {}  # pid -> (soft, hard)
        self.most_fds = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/comm' % pid) as f:
                        if f.read().strip() != 'mariadb-backup':
                            continue
                    # The copy and the prepare, not the preflight's brief --version.
                    with open('/proc/%s/cmdline' % pid, 'rb') as f:
                        argv = f.read().split(b'\0')
                    if b'--backup' not in argv and b'--prepare' not in argv:
                        continue
                    if os.readlink('/proc/%s/ns/pid' % pid) != self.ns:
                        continue
                    self.limits[pid] = nofile(pid)
                    self.most_fds = max(self.most_fds, len(os.listdir('/proc/%s/fd' % pid)))
                except OSError:
                    continue
            self.done.wait(0.2)

    def stop(self):
        self.done.set()
        self.join(10)


def create_tables(primary, count, sessions=4):
    """count empty InnoDB tables in manydb (one tablespace each), from `sessions` SQL
    scripts at once, outside the binlog: replicas get them only from a copy. Returns the
    seconds it took."""
    primary.sql('CREATE DATABASE manydb')
    flush = primary.sql_value('SELECT @@innodb_flush_log_at_trx_commit')
    primary.sql('SET GLOBAL innodb_flush_log_at_trx_commit = 0')
    errors = []

    def part(k):
        try:
            primary.sql('SET SESSION sql_log_bin = 0;\n' + ''.join(
                'CREATE TABLE manydb.t%04d (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;\n' % i
                for i in range(k, count, sessions)), timeout=600)
        except Exception as e:  # noqa: BLE001 - asserted below
            errors.append(e)
    started = time.time()
    threads = [threading.Thread(target=part, args=(k,)) for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - started
    primary.sql('SET GLOBAL innodb_flush_log_at_trx_commit = %s' % flush)
    assert not errors, errors
    return seconds


def table_count(host, db='manydb'):
    return int(host.sql_value("SELECT COUNT(*) FROM information_schema.tables "
                              "WHERE table_schema = '%s'" % db))


def failures(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_many_tables_under_a_soft_nofile_of_1024(make_hosts, inventory, repl_password, tmp_path):
    names = ('primary', 'broken', 'healthy')
    # Hand-started servers: the case is a server that inherits a soft nofile of 1024 from
    # the shell or init script that started it (a systemd unit sets LimitNOFILE=32768).
    hosts = make_hosts(*names, hardened=names, systemd=())
    primary, broken, healthy = (hosts[n] for n in names)
    # The server's caches small enough for its own soft limit of 1024 (set before there is
    # any replication to disturb with the restart).
    primary.run(['sh', '-c', 'cat > /etc/mysql/mariadb.conf.d/70-open-files.cnf'],
                input=SMALL_CACHES)
    primary.service('restart')
    scenarios.setup_replication(primary, [broken, healthy], repl_password, rows=1000)
    seconds = create_tables(primary, TABLES)
    print('\ncreated %d tables in %.1f s' % (TABLES, seconds))
    scenarios.break_1062(primary, broken)

    # Soft 1024 for the primary's server and sshd (so for Ansible's sessions and the
    # mariadb-backup they start), and for the broken replica's sshd (the prepare).
    hard = nofile(primary.init_pid)[1]
    assert hard >= TABLES + 1000, 'the machine\'s hard limit %d is too low for this test' % hard
    set_nofile(primary.init_pid, SOFT, hard)
    set_nofile(broken.init_pid, SOFT, hard)
    # As mysql: root here lacks CAP_SYS_RESOURCE, which prlimit on another user's process
    # needs (the same user's is allowed).
    server = mariadbd_pid(primary)
    server_hard = primary.run("grep 'Max open files' /proc/%s/limits" % server).stdout.split()[4]
    primary.run(['runuser', '-u', 'mysql', '--', 'prlimit', '--pid', server,
                 '--nofile=%d:%s' % (SOFT, server_hard)])
    print('primary mariadbd: %s' % primary.run("grep 'Max open files' /proc/%s/limits"
                                               % server).stdout.strip())
    healthy_pid = mariadbd_pid(healthy)

    inv = inventory(primary, [broken, healthy])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password,
             # 4,000 tables' checksums are not this test's subject: rows and tables are
             # compared below.
             'replica_rebuild_verify': False}
    callbacks = tmp_path / 'callbacks'
    callbacks.mkdir()
    (callbacks / 'reseed_failed.py').write_text(FAILED_CALLBACK)
    failed_file = str(tmp_path / 'failed.jsonl')
    env = {'ANSIBLE_CALLBACKS_ENABLED': 'reseed_failed',
           'ANSIBLE_CALLBACK_PLUGINS': str(callbacks), 'RESEED_FAILED_FILE': failed_file,
           # Fresh ssh connections: a master kept from before would hold older limits.
           'ANSIBLE_SSH_CONTROL_PATH_DIR': str(tmp_path / 'cp1')}
    watch, prepare = BackupWatch(primary), BackupWatch(broken)
    watch.start()
    prepare.start()
    started = time.time()
    with LoadGenerator(primary, rate=20, max_rows=100000) as writer:
        proc = run_playbook(inv, PLAYBOOK, extra, env=env)
    run_seconds = time.time() - started
    watch.stop()
    prepare.stop()
    print('run: %.1f s; mariadb-backup --backup limits (soft, hard): %s, at most %d descriptors '
          'open; --prepare: %s, at most %d; worst commit round of the writer on the primary: '
          '%.2f s' % (run_seconds, sorted(set(watch.limits.values())), watch.most_fds,
                      sorted(set(prepare.limits.values())), prepare.most_fds, writer.worst))
    for failure in failures(failed_file):
        print('failed: %(host)s: %(task)s: %(msg)s' % failure)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert writer.errors == [] and writer.inserted > 0
    assert watch.limits, 'mariadb-backup was not seen running on the primary'
    assert all(soft > SOFT for soft, h in watch.limits.values()), watch.limits
    assert watch.most_fds > SOFT, watch.most_fds  # it did need more than 1024
    # The prepare on the replica, whose sessions are at 1024 too, ran raised as well.
    assert all(soft > SOFT for soft, h in prepare.limits.values()), prepare.limits
    s = broken.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        scenarios.threads(s)
    scenarios.wait_caught_up(primary, broken)
    assert table_count(broken) == table_count(primary) == TABLES
    for table in ('labdb.t', 'labdb.load'):
        assert broken.sql_value('SELECT COUNT(*) FROM %s' % table) == \
            primary.sql_value('SELECT COUNT(*) FROM %s' % table), table
    assert mariadbd_pid(healthy) == healthy_pid
    h = healthy.slave_status()
    assert (h['Slave_IO_Running'], h['Slave_SQL_Running']) == ('Yes', 'Yes')

    # The refusal: a hard limit below the tables' need for new sessions on the primary.
    scenarios.break_1062(primary, broken, row_id=100002)
    low = TABLES // 2
    set_nofile(primary.init_pid, SOFT, low)
    before = snapshot(broken)
    env['ANSIBLE_SSH_CONTROL_PATH_DIR'] = str(tmp_path / 'cp2')
    started = time.time()
    proc = run_playbook(inv, PLAYBOOK, extra, env=env)
    print('refusal run: %.1f s' % (time.time() - started))
    assert proc.returncode != 0, proc.stdout[-3000:]
    refused = [f for f in failures(failed_file) if f['open_files']]
    assert len(refused) == 1, failures(failed_file)
    print('refused: %s' % refused[0]['msg'])
    plan = refused[0]['open_files']
    assert plan['enough'] is False and plan['hard'] == low and plan['soft'] == SOFT
    assert plan['tablespaces'] >= TABLES and plan['needed'] > low
    for text in (str(low), str(plan['needed']), 'LimitNOFILE', 'limits.conf', 'ulimit -Hn'):
        assert text in refused[0]['msg'], (text, refused[0]['msg'])
    # The role's own failure for the replica says it too.
    said = [f for f in failures(failed_file) if f['host'] == broken.name and not f['open_files']]
    assert said and str(plan['needed']) in said[-1]['msg'], failures(failed_file)
    assert diff(before, snapshot(broken)) == {}
    assert broken.slave_status()['Last_SQL_Errno'] == '1062'
    assert mariadbd_pid(healthy) == healthy_pid
