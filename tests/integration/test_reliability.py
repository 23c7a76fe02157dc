# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reliability: faults injected into real rebuilds (playbooks/rebuild_replica.yml) on lab
hosts. docs/RELIABILITY.md is the table of these cases and their figures.

In every case: one line of the output names the host, the step and the cause; nothing on
the primary changes; the replica ends rebuilt, or as it was (old datadir, same server
process), or rolled back; and a re-run of the playbook then succeeds.

Cheap refusals share one set of hosts (module fixture ``shared``, tests run in file order and
end with the re-run that succeeds); faults in the middle of a stream get their own hosts.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import pytest

import faults
import scenarios
from ansible_run import REPO, run_playbook, write_inventory
from faults import diff, fatal_lines, fatal_msg, snapshot, ssh_logins
from secrets_watch import SecretsWatch

# The slowest cases (2 minutes each) run with `make reliability` (RESEED_RELIABILITY_SLOW=1),
# not in make test: the keepalive timeout of a cut link, the disk-full setup.
SLOW = pytest.mark.skipif(os.environ.get('RESEED_RELIABILITY_SLOW') != '1',
                          reason='slow: run by make reliability (RESEED_RELIABILITY_SLOW=1)')
PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
STAGING = '/var/lib/mysql.reseed-staging'
BACKUP_USER, BACKUP_PASSWORD = 'rsbackup', "Bk'p\\w\"#" + os.urandom(4).hex()
# A fresh ssh login for every connection: a refused run must show no login at all.
NO_REUSE = {'ANSIBLE_SSH_ARGS': '-o ControlMaster=no -o ControlPath=none'}


def extra(password, **kw):
    v = {'replica_rebuild_replication_user': 'repl',
         'replica_rebuild_replication_password': password,
         'replica_rebuild_force': True}
    v.update(kw)
    return v


def create_backup_user(primary):
    primary.sql("CREATE USER {u}@'localhost' IDENTIFIED BY {p};"
                "GRANT RELOAD, PROCESS, BINLOG MONITOR ON *.* TO {u}@'localhost';".format(
                    u=scenarios.q(BACKUP_USER), p=scenarios.q(BACKUP_PASSWORD)))


def one_fatal(out, *needles, **kw):
    """The failure is reported on one line that holds every needle; returns (line, msg).
    (Ansible's own argument-spec message has a newline after its first words:
    single=False.)"""
    lines = fatal_lines(out)
    assert lines, out[-4000:]
    line = next((ln for ln in lines if all(n in ln for n in needles)), None)
    assert line, 'no single line holds %r:\n%s' % (needles, '\n'.join(lines))
    assert 'Traceback' not in line
    if kw.get('single', True):
        assert '\n' not in line, line
    return line, fatal_msg(line)


def assert_rebuilt(proc_rc, out, primary, replica):
    assert proc_rc == 0, out[-6000:]
    s = replica.slave_status()
    assert s['Slave_IO_Running'] == 'Yes' and s['Slave_SQL_Running'] == 'Yes', \
        scenarios.threads(s)
    scenarios.wait_caught_up(primary, replica)
    assert 'tables equal at' in out
    assert 'reseed-transfer' not in replica.run('cat /root/.ssh/authorized_keys').stdout
    assert replica.run('test -e /etc/mysql/mariadb.conf.d/99-reseed-hold.cnf',
                       check=False).returncode == 1


# ---- cheap refusals, on one set of hosts ----------------------------------------------

@pytest.fixture(scope='module')
def shared(lab, tmp_path_factory):
    number = lab.next_number()
    names = dict((role, 't%d-%s' % (number, role)) for role in ('primary', 'replica'))
    password = "Rp'l\\" + os.urandom(8).hex()
    try:
        hosts = dict((role, lab.create(name)) for role, name in names.items())
        primary, replica = hosts['primary'], hosts['replica']
        scenarios.setup_replication(primary, [replica], password, rows=2000)
        scenarios.break_1236(primary, replica)
        create_backup_user(primary)
        inv = write_inventory(lab, str(tmp_path_factory.mktemp('inv') / 'inventory.json'),
                              primary.name, [replica.name])
        yield dict(primary=primary, replica=replica, password=password, inventory=inv)
    finally:
        if os.environ.get('RESEED_LAB_KEEP') != '1':
            for name in names.values():
                lab.destroy(name)


def refused(shared, extra_vars, inventory=None, env=None):
    """Run the playbook; it fails, and no host saw any login nor any change."""
    env = NO_REUSE if env is None else env
    primary, replica = shared['primary'], shared['replica']
    logins = [ssh_logins(primary), ssh_logins(replica)]
    before = [snapshot(primary), snapshot(replica)]
    started = time.time()
    proc = run_playbook(inventory or shared['inventory'], PLAYBOOK, extra_vars, env=env)
    seconds = time.time() - started
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert [ssh_logins(primary), ssh_logins(replica)] == logins, 'a host was reached'
    assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [{}, {}]
    return proc.stdout, seconds


@pytest.mark.parametrize('case, bad, needles', [
    ('unknown transport', {'replica_rebuild_transport': 'ftp'},
     ['replica_rebuild_transport must be one of', 'got: ftp']),
    ('unknown compression', {'replica_rebuild_compression': 'lz4'},
     ['replica_rebuild_compression must be one of', 'got: lz4']),
    ('source not in the inventory', {'replica_rebuild_source': 'db9.example.com'},
     ['the source (db9.example.com)', 'must be inventory hosts']),
    ('empty password', {'replica_rebuild_replication_password': ''},
     ['replica_rebuild_replication_password must not be empty']),
    ('a replica that is the primary', {'replica_rebuild_primary': '{replica}'},
     ['the primary ({replica})', 'other than this replica']),
])
def test_bad_input_is_refused_before_anything_runs(shared, case, bad, needles):
    name = shared['replica'].name
    bad = dict((k, v.format(replica=name)) for k, v in bad.items())
    out, seconds = refused(shared, dict(extra(shared['password']), **bad))
    line, msg = one_fatal(out, name, *[n.format(replica=name) for n in needles],
                          single='must be one of' not in needles[0])
    print('%s: refused in %.1f s: %s' % (case, seconds, line[:300]))


def test_the_primary_listed_as_a_replica_is_refused(shared, tmp_path, lab):
    primary = shared['primary']
    inv = write_inventory(lab, str(tmp_path / 'inv.json'), primary.name, [primary.name])
    out, seconds = refused(shared, extra(shared['password']), inventory=inv)
    one_fatal(out, primary.name, 'other than this replica')


def test_check_mode_changes_nothing_on_any_host(shared):
    primary, replica = shared['primary'], shared['replica']
    before = [snapshot(primary), snapshot(replica)]
    proc = run_playbook(shared['inventory'], PLAYBOOK, extra(shared['password']), check=True)
    print('check mode: rc %d; %s' % (proc.returncode, fatal_lines(proc.stdout)))
    assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [{}, {}]
    assert replica.run(['test', '-e', STAGING], check=False).returncode == 1
    assert proc.returncode == 0, proc.stdout[-5000:]


def test_primary_stopped_before_the_run(shared):
    primary, replica = shared['primary'], shared['replica']
    before = snapshot(replica)
    primary.service('stop')
    try:
        started = time.time()
        proc = run_playbook(shared['inventory'], PLAYBOOK, extra(shared['password']))
        seconds = time.time() - started
    finally:
        primary.service('start')
    assert proc.returncode != 0
    line, msg = one_fatal(proc.stdout, replica.name, primary.name)
    print('primary stopped: %.1f s: %s' % (seconds, line[:400]))
    assert diff(before, snapshot(replica)) == {}


def test_primary_unreachable(shared):
    primary, replica = shared['primary'], shared['replica']
    before = [snapshot(primary), snapshot(replica)]
    faults.link(primary, up=False)
    try:
        started = time.time()
        proc = run_playbook(shared['inventory'], PLAYBOOK, extra(shared['password']),
                            env=NO_REUSE, timeout=300)
        seconds = time.time() - started
    finally:
        faults.link(primary, up=True)
    assert proc.returncode != 0
    line, msg = one_fatal(proc.stdout, replica.name, primary.name)
    print('primary unreachable: %.1f s: %s' % (seconds, line[:400]))
    assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [{}, {}]


@pytest.mark.parametrize('which', ['replication', 'backup'])
def test_wrong_credentials(shared, which):
    primary, replica = shared['primary'], shared['replica']
    wrong = 'Wr0ng-' + os.urandom(6).hex()
    if which == 'replication':
        bad = extra(wrong)
    else:
        bad = extra(shared['password'], replica_rebuild_backup_user=BACKUP_USER,
                    replica_rebuild_backup_password=wrong)
    before = [snapshot(primary), snapshot(replica)]
    started = time.time()
    with SecretsWatch([wrong, shared['password']]) as watch:
        proc = run_playbook(shared['inventory'], PLAYBOOK, bad)
    seconds = time.time() - started
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    line, msg = one_fatal(proc.stdout, replica.name, 'Access denied')
    print('wrong %s password: %.1f s: %s' % (which, seconds, msg))
    assert wrong not in out and shared['password'] not in out and watch.leaks == []
    assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [{}, {}]


def test_mariabackup_of_another_version_or_missing(shared):
    primary, replica = shared['primary'], shared['replica']
    stub = '#!/bin/sh\necho "mariadb-backup based on MariaDB server 10.6.16-MariaDB ' \
           'debian-linux-gnu (x86_64)" >&2\nexit 0\n'
    primary.run('cat > /tmp/stub-backup && chmod 755 /tmp/stub-backup', input=stub)
    real = '/usr/bin/mariadb-backup'
    for case, source in (('another version', '/tmp/stub-backup'), ('missing', '/dev/null')):
        before = [snapshot(primary), snapshot(replica)]
        # Only in the primary's own mount namespace (private propagation): the machine's
        # program is untouched.
        primary.run(['mount', '--bind', source, real])
        try:
            started = time.time()
            proc = run_playbook(shared['inventory'], PLAYBOOK, extra(shared['password']))
            seconds = time.time() - started
        finally:
            primary.run(['umount', real])
        assert proc.returncode != 0
        needle = 'cannot back up MariaDB 10.11' if case == 'another version' else \
            'mariadb-backup is not installed on the source'
        line, msg = one_fatal(proc.stdout, replica.name, primary.name, needle)
        print('mariadb-backup %s: %.1f s: %s' % (case, seconds, msg))
        assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [
            {}, {}]
    # The machine's own program was never touched.
    assert 'server 10.11.' in faults.sh([real, '--version']).stderr


def test_stale_staging_is_never_taken_and_the_rerun_succeeds(shared):
    """The last of the shared cases: after every refusal above, the run that succeeds."""
    primary, replica = shared['primary'], shared['replica']
    # A staging directory an earlier run left: an older backup of the replica's own data,
    # prepared, and even marked received: it looks whole, and must never be swapped in.
    replica.run(['mariadb-backup', '--backup', '--target-dir=' + STAGING])
    replica.run(['mariadb-backup', '--prepare', '--target-dir=' + STAGING])
    replica.run('touch %s/reseed_received %s/stale-marker' % (STAGING, STAGING))
    primary.sql("CREATE TABLE labdb.fresh (id INT PRIMARY KEY) ENGINE=InnoDB;"
                "INSERT INTO labdb.fresh VALUES (1), (2), (3);")
    primary_before = snapshot(primary)
    started = time.time()
    proc = run_playbook(shared['inventory'], PLAYBOOK, extra(shared['password']))
    seconds = time.time() - started
    assert_rebuilt(proc.returncode, proc.stdout, primary, replica)
    print('stale staging, then the re-run: %.1f s' % seconds)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.fresh') == '3'
    assert replica.run('test -e /var/lib/mysql/stale-marker', check=False).returncode == 1
    assert replica.run(['test', '-e', STAGING], check=False).returncode == 1
    after = snapshot(primary)
    assert diff(primary_before, after) == {}


# ---- faults in the middle of a stream, each on its own hosts ---------------------------

THROTTLE = 4  # MB/s: the stream lasts several seconds, time to strike halfway
MID_STREAM = 8 << 20  # bytes in the replica's staging copy: the stream is under way


@pytest.fixture
def broken(make_hosts, inventory, repl_password):
    """A primary with some data and a replica broken by 1236, which the playbook rebuilds."""
    hosts = make_hosts('primary', 'replica')
    primary, replica = hosts['primary'], hosts['replica']
    scenarios.setup_replication(primary, [replica], repl_password, rows=20000)
    scenarios.break_1236(primary, replica)
    return dict(primary=primary, replica=replica, password=repl_password,
                inventory=inventory(primary, [replica]))


def left_as_it_was(before, after):
    """The replica after a failed stream: as it was, but for the unsealed staging copy."""
    assert diff(before, after) == {}


def unsealed(replica):
    listing = replica.run('ls -A %s' % STAGING, check=False).stdout.split()
    return 'reseed_received' not in listing


def fault_mid_stream(env, inject, needles, recover=None, extra_vars=None):
    """Start a rebuild, strike once the copy is under way, then: the run fails with one line
    naming the host, the step and the cause; the primary is unchanged; the replica is as it
    was, its partial copy unsealed; a re-run succeeds. Returns the figures."""
    primary, replica = env['primary'], env['replica']
    before = [snapshot(primary), snapshot(replica)]
    run = faults.start_playbook(env['inventory'], PLAYBOOK, dict(
        extra(env['password'], replica_rebuild_throttle_mbps=THROTTLE), **(extra_vars or {})))
    at = faults.wait_staging_bytes(replica, STAGING, MID_STREAM, run)
    mode = replica.run(['stat', '-c', '%a %U', STAGING]).stdout.split()
    struck = time.time()
    inject()
    if recover:
        recover(run)
    rc, out = run.wait(600)
    seconds = time.time() - struck
    assert rc != 0, out[-5000:]
    line, msg = one_fatal(out, replica.name, *needles)
    # The staging copy, while it arrives, is root's alone (umask 077).
    assert mode == ['700', 'root'], mode
    assert unsealed(replica)
    assert diff(before[0], snapshot(primary)) == {}
    left_as_it_was(before[1], snapshot(replica))
    assert 'reseed-transfer' not in replica.run('cat /root/.ssh/authorized_keys').stdout
    started = time.time()
    again = run_playbook(env['inventory'], PLAYBOOK, extra(env['password']))
    rerun = time.time() - started
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    figures = dict(struck_at_bytes=at, seconds_to_fail=round(seconds, 1),
                   rerun_seconds=round(rerun, 1), line=line)
    print(figures)
    return figures


def test_mariabackup_killed_on_the_source_mid_stream(broken):
    primary = broken['primary']
    fault_mid_stream(broken, lambda: faults.kill_in_host(
        primary, faults.pids(primary, 'mariadb-backup')),
        ['mariadb-backup on the source failed', 'killed by signal 9', 'not sealed'])


@SLOW
def test_network_cut_mid_stream(broken):
    replica = broken['replica']

    def restore_once_failed(run):
        # The link stays down until the stream's failure is reported (ssh's keepalive on
        # the source gives up after 3 x 10 s), then comes back for the cleanup and re-run.
        try:
            faults.wait_until(lambda: fatal_lines(run.output()), 180, 0.5,
                              'the stream to fail', abort=lambda: run.proc.poll() is not None)
        finally:
            faults.link(replica, up=True)

    fault_mid_stream(broken, lambda: faults.link(replica, up=False),
                     ['ssh to %s (receiving' % replica.ip, 'not sealed'],
                     recover=restore_once_failed)


SMALL = '/var/lib/small'  # the replica's own (overlay /var/lib), never the machine's


def datadir_on_a_small_filesystem(replica, source):
    """Move the replica's datadir onto a tmpfs made for the test, just large enough for the
    preflight's free-space rule (the source's data + 10% + 256 MB): the staging copy goes
    beside the datadir, on that filesystem. Returns its size in bytes."""
    def du(host, path):
        return int(host.run(['du', '-sb', '--exclude=*-bin.*', path]).stdout.split()[0])
    size = du(replica, '/var/lib/mysql') + int(du(source, '/var/lib/mysql') * 1.1) + \
        (256 + 64) * 1000000
    replica.service('stop')
    replica.run(['mkdir', '-p', SMALL])
    replica.run(['mount', '-t', 'tmpfs', '-o', 'size=%d,mode=0755' % size, 'tmpfs', SMALL])
    replica.run(['cp', '-a', '/var/lib/mysql', SMALL + '/mysql'])
    replica.run('cat > /etc/mysql/mariadb.conf.d/70-small.cnf',
                input='[mariadbd]\ndatadir = %s/mysql\n' % SMALL)
    replica.service('start')
    assert replica.sql_value('SELECT @@datadir') == SMALL + '/mysql/'
    return size


@SLOW
def test_destination_disk_full_mid_stream(broken):
    primary, replica = broken['primary'], broken['replica']
    size = datadir_on_a_small_filesystem(replica, primary)
    staging = SMALL + '/mysql.reseed-staging'
    before = [snapshot(primary), snapshot(replica)]
    run = faults.start_playbook(broken['inventory'], PLAYBOOK, extra(
        broken['password'], replica_rebuild_throttle_mbps=THROTTLE))
    at = faults.wait_staging_bytes(replica, staging, MID_STREAM, run)
    # Something else fills the filesystem: 1 MB stays free.
    avail = int(replica.run(['df', '-B1', '--output=avail', SMALL]).stdout.split()[-1])
    replica.run(['fallocate', '-l', str(avail - (1 << 20)), SMALL + '/filler'])
    struck = time.time()
    rc, out = run.wait(600)
    seconds = time.time() - struck
    assert rc != 0, out[-5000:]
    line, msg = one_fatal(out, replica.name, 'ssh to %s (receiving' % replica.ip,
                          'No space left on device', 'not sealed')
    assert 'reseed_received' not in replica.run(['ls', staging]).stdout.split()
    assert diff(before[0], snapshot(primary)) == {}
    assert diff(before[1], snapshot(replica)) == {}
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '20000'
    # Room again (the partial copy is reclaimed by the next run): the re-run succeeds.
    replica.run(['rm', SMALL + '/filler'])
    started = time.time()
    again = run_playbook(broken['inventory'], PLAYBOOK, extra(broken['password']))
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    assert replica.sql_value('SELECT @@datadir') == SMALL + '/mysql/'
    print(dict(tmpfs_bytes=size, struck_at_bytes=at, seconds_to_fail=round(seconds, 1),
               rerun_seconds=round(time.time() - started, 1), line=line))


def test_new_datadir_that_does_not_start_is_rolled_back(broken):
    primary, replica = broken['primary'], broken['replica']
    before = [snapshot(primary), snapshot(replica)]
    run = faults.start_playbook(broken['inventory'], PLAYBOOK, extra(broken['password']))

    def prepared():
        return replica.run(['grep', '-qs', 'log-applied', STAGING + '/xtrabackup_checkpoints'],
                           check=False).returncode == 0
    # Between the prepare and the swap: the prepared copy loses its system tablespace.
    faults.wait_until(prepared, 300, 0.05, 'the copy to be prepared',
                      abort=lambda: run.proc.poll() is not None)
    replica.run(['truncate', '-s', '0', STAGING + '/ibdata1'])
    rc, out = run.wait(600)
    assert rc != 0, out[-5000:]
    line, msg = one_fatal(out, replica.name, 'step start the new server', 'rolled back')
    # The old server runs on the old datadir (restarted: a new pid, a new binlog and relay
    # log, ibtmp1; Debian's init script leaves its mktemp files in /tmp after the failed
    # start), replicating as before.
    after = snapshot(replica)
    changed = diff(before[1], after)
    assert set(changed) <= {'pid', 'slave', 'datadir', 'tmp'}, changed
    assert set(before[1]['datadir']) <= set(after['datadir'])
    assert all(n.startswith('tmp.') for n in set(after['tmp']) - set(before[1]['tmp']))
    scenarios.wait_error(replica, 'Last_IO_Errno', 1236)
    assert after['slave']['Gtid_IO_Pos'] == before[1]['slave']['Gtid_IO_Pos']
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '20000'
    assert diff(before[0], snapshot(primary)) == {}
    started = time.time()
    again = run_playbook(broken['inventory'], PLAYBOOK, extra(broken['password']))
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    print(dict(rerun_seconds=round(time.time() - started, 1), line=line))


def test_controller_interrupted_mid_stream(broken):
    primary, replica = broken['primary'], broken['replica']
    before = [snapshot(primary), snapshot(replica)]
    run = faults.start_playbook(broken['inventory'], PLAYBOOK, extra(
        broken['password'], replica_rebuild_throttle_mbps=THROTTLE))
    at = faults.wait_staging_bytes(replica, STAGING, MID_STREAM, run)
    struck = time.time()
    run.interrupt()
    rc, out = run.wait(120)
    seconds = time.time() - struck
    assert rc != 0
    # What the interrupted run left: is the stream still going on the source, is the
    # transfer key still authorised?
    left = dict(
        backup_running=bool(faults.pids(primary, 'mariadb-backup')),
        key_on_replica='reseed-transfer' in replica.run(
            'cat /root/.ssh/authorized_keys').stdout,
        keydirs_on_source=primary.run('ls -d /tmp/reseed-key-* 2>/dev/null',
                                      check=False).stdout.split())
    print('interrupted after %.1f s at %d bytes; left: %r' % (seconds, at, left))
    # The action plugin took the signal before Ansible's worker exited and removed the
    # stream's heartbeat: the stream stops on the source within seconds, the copy unsealed.
    scenarios.wait_for(lambda: not faults.pids(primary, 'mariadb-backup'), 15, 0.5,
                       'the interrupted stream to stop on the source')
    stopped = time.time() - struck
    assert unsealed(replica)
    started = time.time()
    again = run_playbook(broken['inventory'], PLAYBOOK, extra(broken['password']))
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    # The re-run leaves no transfer key, of its own run or of the interrupted one.
    assert replica.run('grep -c reseed-transfer /root/.ssh/authorized_keys',
                       check=False).stdout.strip() == '0'
    assert primary.run('ls -d /tmp/reseed-key-* 2>/dev/null', check=False).stdout == ''
    assert not faults.pids(primary, 'mariadb-backup')
    print(dict(interrupt_to_exit=round(seconds, 1), stream_stopped_after=round(stopped, 1),
               left=left, rerun_seconds=round(time.time() - started, 1)))


# ---- writes during the whole rebuild, and the secrets -----------------------------------

def files_holding(host, secret, paths):
    """Files under paths (on host) that hold secret, as bytes anywhere in them."""
    out = host.run(['grep', '-rlaF', '--', secret] + paths, check=False).stdout
    return sorted(out.split())


def test_writes_on_the_primary_during_the_whole_rebuild_and_no_secret_anywhere(broken):
    primary, replica, password = broken['primary'], broken['replica'], broken['password']
    create_backup_user(primary)
    secrets = [password, BACKUP_PASSWORD]
    started = time.time()
    with SecretsWatch(secrets) as watch, faults.OptionFileWatch() as options:
        with faults.LoadGenerator(primary, rate=20, max_rows=5000, max_seconds=600) as load:
            time.sleep(1)  # writes before the run starts, and until after it ended
            proc = run_playbook(broken['inventory'], PLAYBOOK, extra(
                password, replica_rebuild_backup_user=BACKUP_USER,
                replica_rebuild_backup_password=BACKUP_PASSWORD), verbosity=4)
            time.sleep(1)
    seconds = time.time() - started
    assert load.errors == [] and load.inserted > 100, load.errors[:3]
    assert_rebuilt(proc.returncode, proc.stdout, primary, replica)
    # Every numbered row is on the replica, and the tables are equal at the same GTID.
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT @@GLOBAL.gtid_slave_pos') == \
        primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    assert replica.sql('SELECT COUNT(*), MIN(id), MAX(id) FROM labdb.load') == [
        [str(load.inserted), '1', str(load.inserted)]]
    checksum = 'CHECKSUM TABLE labdb.load, labdb.t, labdb.log EXTENDED'
    assert replica.sql(checksum) == primary.sql(checksum)
    verified = re.search(r'tables equal at [^"]*', proc.stdout).group(0)

    # No secret in any process's argv or environment, on any host, during the run; none in
    # the output at -vvvv (every task's result included).
    out = proc.stdout + proc.stderr
    assert watch.leaks == [] and watch.samples > 50
    assert [s for s in secrets if s in out] == []
    # Every option file a program was given was root's and 0600, and none is left.
    assert options.seen and options.loose() == {}, options.seen
    for host in (primary, replica):
        assert host.run('ls -a /root /tmp | grep -E "\\.cnf$|reseed-key-"',
                        check=False).stdout == ''
    assert primary.run('find /tmp -name backup.cnf').stdout == ''
    # No file left on either host holds a secret, but MariaDB's own master.info (the
    # replication password, in the datadir the server keeps private).
    old = replica.run('ls -d /var/lib/mysql.reseed-old-*').stdout.split()
    assert len(old) == 1
    places = ['/tmp', '/root', '/etc/mysql', '/var/log/mysql', '/var/lib/mysql', old[0]]
    for host in (primary, replica):
        for secret in secrets:
            found = files_holding(host, secret, places)
            assert [f for f in found if not f.endswith('/master.info')] == [], (host, found)
    # The moved-aside datadir and the new one are the server's alone.
    assert replica.run(['stat', '-c', '%U %a', old[0], '/var/lib/mysql']).stdout.split() == [
        'mysql', '700', 'mysql', '700']
    print(dict(seconds=round(seconds, 1), rows_inserted=load.inserted,
               rows_updated=load.updated, secrets_samples=watch.samples,
               option_files=sorted(options.seen), verified=verified))


# ---- a copy from a healthy replica, failing midway -------------------------------------

def test_copy_from_a_replica_killed_midway_leaves_its_sql_thread_running(
        make_hosts, inventory, repl_password):
    hosts = make_hosts('primary', 'donor', 'replica')
    primary, donor, replica = hosts['primary'], hosts['donor'], hosts['replica']
    scenarios.setup_replication(primary, [donor, replica], repl_password, rows=5000)
    # Non-InnoDB data: --safe-slave-backup stops the donor's SQL thread while it is copied.
    primary.sql('CREATE TABLE labdb.aria ENGINE=Aria SELECT seq, REPEAT(MD5(seq), 8) AS pad '
                'FROM seq_1_to_50000', database='labdb')
    scenarios.wait_caught_up(primary, donor)
    scenarios.break_1236(primary, replica)
    inv = inventory(primary, [replica], [donor])
    vars_ = extra(repl_password, replica_rebuild_force=False,
                  replica_rebuild_source=donor.name)
    before = [snapshot(primary), snapshot(replica)]
    run = faults.start_playbook(inv, PLAYBOOK, dict(vars_, replica_rebuild_throttle_mbps=2))

    def sql_thread_stopped():
        return faults.pids(donor, 'mariadb-backup') and \
            donor.slave_status().get('Slave_SQL_Running') == 'No'
    faults.wait_until(sql_thread_stopped, 300, 0.1, 'the donor to stop its SQL thread',
                      abort=lambda: run.proc.poll() is not None)
    faults.kill_in_host(donor, faults.pids(donor, 'mariadb-backup'))
    rc, out = run.wait(600)
    assert rc != 0, out[-5000:]
    line, msg = one_fatal(out, replica.name, donor.name, 'mariadb-backup on the source failed')
    # The donor replicates again: both threads, not left with its SQL thread stopped.
    status = scenarios.wait_running(donor, timeout=30)
    assert status['Slave_SQL_Running'] == 'Yes'
    assert diff(before[0], snapshot(primary)) == {}
    assert diff(before[1], snapshot(replica)) == {}
    again = run_playbook(inv, PLAYBOOK, vars_)
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    scenarios.wait_caught_up(primary, donor)
    print(dict(line=line))


def test_tcp_listener_refuses_another_host_that_connects_before_the_source(make_hosts):
    """The listener (backup_stream's receive command for tcp, run on the replica as the
    module runs it): another lab host that connects first is turned away, and the listener
    still takes the source's stream after it, whole."""
    from ansible_collections.reseed.mariadb.plugins.modules.backup_stream import (
        EXTRACTED_MARKER, receive_command)
    hosts = make_hosts('src', 'dst', 'other')
    src, dst, other = hosts['src'], hosts['dst'], hosts['other']
    scenarios.load_data(src, rows=2000)
    receiver = dst.popen(receive_command(STAGING, 'none', 2, (dst.ip, 4444, src.ip)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        faults.wait_until(lambda: ':4444 ' in dst.run(['ss', '-Hltn']).stdout, 30, 0.1,
                          'the listener on %s' % dst.name)
        other.run(['socat', '-u', 'OPEN:/etc/hostname',
                   'TCP4:%s:4444,connect-timeout=5' % dst.ip], check=False)
        time.sleep(0.5)
        assert receiver.poll() is None, receiver.communicate()
        src.run('mariadb-backup --backup --stream=xbstream --target-dir=/tmp/tcp-first '
                '2>/dev/null | socat -u STDIN TCP4:%s:4444' % dst.ip)
        out, err = receiver.communicate(timeout=120)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    assert receiver.returncode == 0, err
    listing = dst.run(['ls', '-A', STAGING]).stdout.split()
    assert EXTRACTED_MARKER in listing and 'xtrabackup_info' in listing, ' '.join(listing)
    assert dst.run(['grep', '-r', '-l', other.name, STAGING], check=False).stdout == ''


def test_tcp_listener_takes_one_connection_from_the_source_only(make_hosts, inventory,
                                                                run_module):
    """The tcp transport's listener on the replica: while the copy streams, another lab host
    that connects to its port is refused, and the copy arrives whole and sealed."""
    hosts = make_hosts('src', 'dst', 'other')
    src, dst, other = hosts['src'], hosts['dst'], hosts['other']
    scenarios.load_data(src, rows=20000)
    dst.run('cat >> /root/.ssh/authorized_keys',
            input=src.run('cat /root/.ssh/id_ed25519.pub').stdout)
    inv = inventory(src, [dst], [other])
    result = {}
    stream = threading.Thread(target=lambda: result.update(res=run_module(
        inv, src.name, 'backup_stream', {'destination': dst.ip, 'staging_dir': STAGING,
                                         'transport': 'tcp', 'throttle_mbps': THROTTLE})))
    stream.start()
    try:
        faults.wait_staging_bytes(dst, STAGING, MID_STREAM, timeout=120)
        intruder = other.run(['socat', '-u', 'OPEN:/etc/hostname',
                              'TCP4:%s:4444,connect-timeout=5' % dst.ip], check=False)
    finally:
        stream.join(300)
    res = result['res']
    assert not res.failed, res.result
    assert intruder.returncode != 0 and 'Connection refused' in intruder.stderr, intruder
    assert 'reseed_received' in dst.run(['ls', STAGING]).stdout.split()
    assert dst.run(['grep', '-r', '-l', other.name, STAGING], check=False).stdout == ''
    assert 'socat' not in dst.run('ps -eo comm').stdout
