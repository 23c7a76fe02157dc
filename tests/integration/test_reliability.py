# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reliability: faults injected into real rebuilds (playbooks/rebuild_replica.yml) on lab
hosts. docs/RELIABILITY.md is the table of these cases and their figures.

In every case: one line of the output names the host, the step and the cause; nothing on
the primary changes; the replica ends rebuilt, or as it was (old datadir, same server
process), or rolled back; and a re-run of the playbook then succeeds.

The data path is the role's default: Ansible starts the receiver (backup_receive) on the
replica and the sender (backup_stream) on the source, over TLS with throwaway certificates
(tasks/stream.yml). A failed stream is reported by the role on one line holding both ends'
words ("<replica>: stream from <source>: <sender>; the replica's receiver: <receiver>.
Nothing was swapped: ..."), and no database host ever logs in to another.

Cheap refusals share one set of hosts (module fixture ``shared``, tests run in file order and
end with the re-run that succeeds); faults in the middle of a stream get their own hosts
(making them costs 3 to 7 s: sharing them would tie each case to the one before).
"""

from __future__ import annotations

import os
import re
import time

import pytest

import faults
import scenarios
from ansible_run import REPO, run_playbook, write_inventory
from faults import (diff, fatal_lines, fatal_msg, logins_between, snapshot, ssh_logins,
                    transfer_leftovers)
from secrets_watch import SecretsWatch

# The slowest cases (about 2 minutes each) run with `make reliability`
# (RESEED_RELIABILITY_SLOW=1), not in make test: the stall limit of a cut link (60 s), the
# disk-full setup.
SLOW = pytest.mark.skipif(os.environ.get('RESEED_RELIABILITY_SLOW') != '1',
                          reason='slow: run by make reliability (RESEED_RELIABILITY_SLOW=1)')
PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
STAGING = '/var/lib/mysql.reseed-staging'
PORT = 4444  # the receiver's (replica_rebuild_port's default)
STALL_LIMIT = 60  # backup_stream's and backup_receive's stall_timeout default
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


def stream_failed(out, replica, source, *needles):
    """The role's one line for a failed stream (tasks/stream.yml's rescue): the replica, the
    source, the causes, and that nothing was swapped. Returns (line, msg)."""
    return one_fatal(out, '%s: stream from %s: ' % (replica.name, source.name), *needles,
                     'Nothing was swapped')


def assert_no_stream_left(source, replica):
    """Nothing of a stream stays: no certificate, transfer key or receiver run file, no
    receiver, no sender, no mariadb-backup."""
    for host in (source, replica):
        assert transfer_leftovers(host) == [], host.name
    assert faults.module_pids(replica, 'backup_receive') == []
    assert faults.module_pids(source, 'backup_stream') == []
    assert faults.pids(source, 'mariadb-backup') == []
    assert 'reseed-transfer' not in replica.run('cat /root/.ssh/authorized_keys').stdout


def assert_rebuilt(proc_rc, out, primary, replica, source=None):
    assert proc_rc == 0, out[-6000:]
    s = replica.slave_status()
    assert s['Slave_IO_Running'] == 'Yes' and s['Slave_SQL_Running'] == 'Yes', \
        scenarios.threads(s)
    scenarios.wait_caught_up(primary, replica)
    assert 'tables equal at' in out
    assert_no_stream_left(source or primary, replica)
    assert replica.run('test -e /etc/mysql/mariadb.conf.d/99-reseed-hold.cnf',
                       check=False).returncode == 1


# ---- cheap refusals, on one set of hosts ----------------------------------------------

@pytest.fixture(scope='module')
def shared(lab, tmp_path_factory):
    number = lab.next_number()
    names = dict((role, 't%d-%s' % (number, role)) for role in ('primary', 'replica'))
    password = "Rp'l\\" + os.urandom(8).hex()
    try:
        hosts = dict((role, lab.create(name, systemd=True)) for role, name in names.items())
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
    logins = dict((h.name, ssh_logins(h)) for h in (primary, replica))
    started = time.time()
    with SecretsWatch([wrong, shared['password']]) as watch:
        proc = run_playbook(shared['inventory'], PLAYBOOK, bad)
    seconds = time.time() - started
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    if which == 'replication':  # the preflight, before any stream
        line, msg = one_fatal(proc.stdout, replica.name, 'preflight', 'Access denied')
    else:  # mariadb-backup itself, once the stream has started: the receiver stopped
        line, msg = stream_failed(proc.stdout, replica, primary,
                                  'mariadb-backup on the source failed', 'Access denied',
                                  'not sealed')
    print('wrong %s password: %.1f s: %s' % (which, seconds, msg))
    assert wrong not in out and shared['password'] not in out and watch.leaks == []
    assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [{}, {}]
    assert replica.run(['test', '-e', STAGING + '/reseed_received'], check=False).returncode == 1
    assert_no_stream_left(primary, replica)
    assert logins_between((primary, replica), logins) == []


def test_mariabackup_of_another_version_or_missing(shared):
    primary, replica = shared['primary'], shared['replica']
    stub = '#!/bin/sh\necho "mariadb-backup based on MariaDB server 10.6.16-MariaDB ' \
           'debian-linux-gnu (x86_64)" >&2\nexit 0\n'
    primary.run('cat > /tmp/stub-backup && chmod 755 /tmp/stub-backup', input=stub)
    real = '/usr/bin/mariadb-backup'
    for case, source in (('another version', '/tmp/stub-backup'), ('missing', '/dev/null')):
        before = [snapshot(primary), snapshot(replica)]
        # An earlier case's partial copy (unsealed) may be there: the receiver, stopped
        # before the source said START, leaves it as it is.
        staging = replica.run(['ls', '-A', STAGING], check=False).stdout
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
        line, msg = stream_failed(proc.stdout, replica, primary, needle)
        print('mariadb-backup %s: %.1f s: %s' % (case, seconds, msg))
        assert [diff(before[0], snapshot(primary)), diff(before[1], snapshot(replica))] == [
            {}, {}]
        # The receiver started before the source's own check: stopped, its run file gone,
        # the staging directory as it was.
        assert replica.run(['ls', '-A', STAGING], check=False).stdout == staging
        assert_no_stream_left(primary, replica)
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
    logins = dict((h.name, ssh_logins(h)) for h in (primary, replica))
    started = time.time()
    proc = run_playbook(shared['inventory'], PLAYBOOK, extra(shared['password']))
    seconds = time.time() - started
    assert_rebuilt(proc.returncode, proc.stdout, primary, replica)
    print('stale staging, then the re-run: %.1f s' % seconds)
    # The receiver removed the stale directory before it extracted (after the source proved
    # itself); no database host logged in to the other.
    assert logins_between((primary, replica), logins) == []
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


def unsealed(replica, staging=STAGING):
    listing = replica.run('ls -A %s' % staging, check=False).stdout.split()
    return 'reseed_received' not in listing


def fault_mid_stream(env, inject, needles, extra_vars=None, after_failure=None):
    """Start a rebuild, strike once the copy is under way, then: the run fails with one line
    naming the replica, the source, the causes, and that nothing was swapped; the primary is
    unchanged; the replica is as it was (same server, serving its data), its partial copy
    unsealed; nothing of the stream is left, and no database host logged in to the other;
    a re-run succeeds (after after_failure(), which undoes the fault). Returns the figures."""
    primary, replica = env['primary'], env['replica']
    rows = replica.sql_value('SELECT COUNT(*) FROM labdb.t')
    before = [snapshot(primary), snapshot(replica)]
    logins = dict((h.name, ssh_logins(h)) for h in (primary, replica))
    run = faults.start_playbook(env['inventory'], PLAYBOOK, dict(
        extra(env['password'], replica_rebuild_throttle_mbps=THROTTLE), **(extra_vars or {})))
    at = faults.wait_staging_bytes(replica, STAGING, MID_STREAM, run)
    mode = replica.run(['stat', '-c', '%a %U', STAGING]).stdout.split()
    struck = time.time()
    inject()
    # The first failure reported (the sender's task, before the role's rescue runs).
    faults.wait_until(lambda: fatal_lines(run.output()), 600, 0.2, 'the stream to fail',
                      abort=lambda: run.proc.poll() is not None and not fatal_lines(run.output()))
    reported = time.time() - struck
    # While the run is still cleaning up, the replica's old server serves its data.
    serving = replica.sql_value('SELECT COUNT(*) FROM labdb.t')
    rc, out = run.wait(600)
    seconds = time.time() - struck
    assert rc != 0, out[-5000:]
    line, msg = stream_failed(out, replica, primary, *needles)
    assert serving == rows
    # The staging copy, while it arrives, is root's alone (umask 077).
    assert mode == ['700', 'root'], mode
    assert unsealed(replica)
    assert diff(before[0], snapshot(primary)) == {}
    left_as_it_was(before[1], snapshot(replica))
    assert_no_stream_left(primary, replica)
    assert logins_between((primary, replica), logins) == []
    if after_failure:
        after_failure()
    started = time.time()
    again = run_playbook(env['inventory'], PLAYBOOK, extra(env['password']))
    rerun = time.time() - started
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    assert logins_between((primary, replica), logins) == []
    figures = dict(struck_at_bytes=at, seconds_to_report=round(reported, 1),
                   seconds_to_fail=round(seconds, 1), rerun_seconds=round(rerun, 1),
                   line=line)
    print(figures)
    return figures


# mariadb-backup killed on the source mid-stream, on production-shaped hosts:
# test_fleet_faults.py, step 3 (the stream of a replica alone, as here).


@SLOW
def test_network_cut_mid_stream(broken):
    """The link cut for good mid-stream, with the defaults (tls, stall limit 60 s): every
    packet of the stream's port is dropped both ways in the replica's network namespace,
    the established connection included, until the run has ended (Ansible's ssh still gets
    through, for the role's cleanup). No TCP retries for 15 minutes: the run fails within
    the stall limit and names the hop from both ends; the old server serves on; the re-run,
    once the port is open again, heals.

    Without compression: the lab's data compress so well that the rest of a compressed
    stream fits in the connection's buffers, and the source then waits for the receiver's
    answer instead of a link that takes its bytes (bounded by the same limit)."""
    replica, primary = broken['replica'], broken['primary']
    try:
        figures = fault_mid_stream(
            broken, lambda: faults.cut_port(replica, PORT),
            ['the link to the replica %s:%d failed' % (replica.ip, PORT),
             'took no bytes for %d s' % STALL_LIMIT, 'receiver: backup_receive into',
             'nothing came from the source %s for %d s' % (primary.ip, STALL_LIMIT)],
            extra_vars={'replica_rebuild_compression': 'none'},
            after_failure=lambda: faults.restore_port(replica))
    finally:
        faults.restore_port(replica)
    assert figures['seconds_to_report'] < STALL_LIMIT + 15, figures
    assert figures['seconds_to_fail'] < STALL_LIMIT + 30, figures


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
    # The receiver's mbstream fails; the receiver tells the source, which stops at once.
    line, msg = stream_failed(out, replica, primary, 'mbstream -x on the replica failed',
                              'No space left on device', 'not sealed')
    assert unsealed(replica, staging)
    assert diff(before[0], snapshot(primary)) == {}
    assert diff(before[1], snapshot(replica)) == {}
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t') == '20000'
    assert_no_stream_left(primary, replica)
    # Room again (the partial copy is reclaimed by the next run): the re-run succeeds.
    replica.run(['rm', SMALL + '/filler'])
    started = time.time()
    again = run_playbook(broken['inventory'], PLAYBOOK, extra(broken['password']))
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    assert replica.sql_value('SELECT @@datadir') == SMALL + '/mysql/'
    print(dict(tmpfs_bytes=size, struck_at_bytes=at, seconds_to_fail=round(seconds, 1),
               rerun_seconds=round(time.time() - started, 1), line=line))


# A new datadir that does not start, rolled back through the role: test_fleet_faults.py, step 2
# (production-shaped hosts; the module alone: test_datadir_swap.py::test_corrupt_copy_rolls_back).


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
    # What the interrupted run left at once: is the stream still going on either end, are
    # this run's certificates still there?
    left = dict(
        backup_running=bool(faults.pids(primary, 'mariadb-backup')),
        sender_running=bool(faults.module_pids(primary, 'backup_stream')),
        receiver_running=bool(faults.module_pids(replica, 'backup_receive')),
        on_source=transfer_leftovers(primary), on_replica=transfer_leftovers(replica))
    print('interrupted after %.1f s at %d bytes; left: %r' % (seconds, at, left))
    # The action plugin took the signal before Ansible's worker exited and removed the
    # stream's heartbeat: the stream stops on the source within seconds, and the receiver,
    # told (or seeing the connection end without the source's END), stops too; the copy
    # stays unsealed.
    scenarios.wait_for(lambda: not faults.pids(primary, 'mariadb-backup'), 15, 0.5,
                       'the interrupted stream to stop on the source')
    stopped = time.time() - struck
    scenarios.wait_for(lambda: not faults.module_pids(replica, 'backup_receive'), 15, 0.5,
                       'the receiver to stop on the replica')
    receiver_stopped = time.time() - struck
    assert unsealed(replica)
    assert not faults.module_pids(primary, 'backup_stream')
    # Once both ends stopped, only the certificates of the interrupted run stay (the
    # controller did not get to remove them); the receiver removed its run file.
    stayed = dict(on_source=transfer_leftovers(primary), on_replica=transfer_leftovers(replica))
    for found in stayed.values():
        assert found and all(p.startswith('/tmp/reseed-cert-%s-' % replica.name)
                             for p in found), stayed
    # Else the primary and the replica are as they were (same servers, no key), but for the
    # unsealed copy.
    for host, earlier in ((primary, before[0]), (replica, before[1])):
        changed = diff(earlier, snapshot(host))
        assert set(changed) <= {'tmp'} and all(
            n.startswith('reseed-cert-') for n in set(changed['tmp'][1]) - set(
                changed['tmp'][0])), changed
    started = time.time()
    again = run_playbook(broken['inventory'], PLAYBOOK, extra(broken['password']))
    # The re-run removes them, and leaves nothing of its own (assert_rebuilt).
    assert_rebuilt(again.returncode, again.stdout, primary, replica)
    print(dict(interrupt_to_exit=round(seconds, 1), stream_stopped_after=round(stopped, 1),
               receiver_stopped_after=round(receiver_stopped, 1), left=left, stayed=stayed,
               rerun_seconds=round(time.time() - started, 1)))


# ---- writes during the whole rebuild, and the secrets -----------------------------------

def files_holding(host, secrets, paths):
    """{secret: [files]}: the files under paths (on host) that hold a secret, as bytes
    anywhere in them (one pass over the files for all the secrets)."""
    argv = ['grep', '-rlaF'] + [a for s in secrets for a in ('-e', s)] + ['--'] + paths
    candidates = host.run(argv, check=False).stdout.split()
    return dict((s, [f for f in candidates
                     if host.run(['grep', '-qaF', '--', s, f], check=False).returncode == 0])
                for s in secrets)


# Where a run could leave a file: on a plain lab host /root is the machine's own (only
# /root/.ssh is the host's), so only the parts Ansible and the role write are searched there.
SECRET_PLACES = ['/tmp', '/run', '/root/.ssh', '/root/.ansible', '/root/.ansible_async',
                 '/etc/mysql', '/var/log/mysql', '/var/lib/mysql']


def test_writes_on_the_primary_during_the_whole_rebuild_and_no_secret_anywhere(broken):
    primary, replica, password = broken['primary'], broken['replica'], broken['password']
    create_backup_user(primary)
    secrets = [password, BACKUP_PASSWORD]
    logins = dict((h.name, ssh_logins(h)) for h in (primary, replica))
    started = time.time()
    # The stream's token is drawn by the role for this run: the catcher reads it on the
    # replica as soon as the receiver's arguments are there, and the watch looks for it too.
    with SecretsWatch(secrets) as watch, faults.OptionFileWatch() as options, \
            faults.StreamTokenCatcher(replica, watch) as tokens:
        with faults.LoadGenerator(primary, rate=20, max_rows=5000, max_seconds=600) as load:
            time.sleep(1)  # writes before the run starts, and until after it ended
            run_started = time.time()
            proc = run_playbook(broken['inventory'], PLAYBOOK, extra(
                password, replica_rebuild_backup_user=BACKUP_USER,
                replica_rebuild_backup_password=BACKUP_PASSWORD), verbosity=4)
            run_ended = time.time()
            time.sleep(1)
    seconds = time.time() - started
    assert_rebuilt(proc.returncode, proc.stdout, primary, replica)
    # Rows were committed before the run and after it: writes during the whole rebuild (not
    # a rate: the watchers sampling /proc share this process's interpreter, and CI's two
    # cores let the writer go at 93 rows in one run, 1200 in another).
    assert load.errors == [] and load.spanned(run_started, run_ended), (
        load.errors[:3], load.first, run_started, run_ended, load.last, load.inserted)
    # Every numbered row is on the replica, and the tables are equal at the same GTID.
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT @@GLOBAL.gtid_slave_pos') == \
        primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    assert replica.sql('SELECT COUNT(*), MIN(id), MAX(id) FROM labdb.load') == [
        [str(load.inserted), '1', str(load.inserted)]]
    checksum = 'CHECKSUM TABLE labdb.load, labdb.t, labdb.log EXTENDED'
    assert replica.sql(checksum) == primary.sql(checksum)
    verified = re.search(r'tables equal at [^"]*', proc.stdout).group(0)

    # The default transport (tls): the stream's connection was the only thing between the
    # database hosts; neither logged in to the other (Ansible's logins come from the
    # controller).
    assert logins_between((primary, replica), logins) == []
    # One token, this run's (a 32-character random string, the receiver's argument).
    assert len(tokens.found) == 1 and re.match(r'^[A-Za-z0-9]{32}$', tokens.found[0]), \
        (tokens.found, tokens.files)
    secrets.append(tokens.found[0])
    # No secret in any process's argv or environment, on any host, during the run (the
    # token from the moment its file was there); none in the output at -vvvv (every task's
    # result included).
    out = proc.stdout + proc.stderr
    assert watch.leaks == [] and watch.samples > 50
    assert [s for s in secrets if s in out] == []
    # Every option file a program was given was root's and 0600, and none is left.
    assert options.seen and options.loose() == {}, options.seen
    for host in (primary, replica):
        assert host.run('ls -a /root /tmp | grep -E "\\.cnf$|reseed-key-|reseed-cert-"',
                        check=False).stdout == ''
    assert primary.run('find /tmp -name backup.cnf').stdout == ''
    # No file left on either host holds a secret, but MariaDB's own master.info (the
    # replication password, in the datadir the server keeps private).
    old = replica.run('ls -d /var/lib/mysql.reseed-old-*').stdout.split()
    assert len(old) == 1
    for host in (primary, replica):
        found = files_holding(host, secrets, SECRET_PLACES + old)
        assert dict((s[:4] + '...', [f for f in files if not f.endswith('/master.info')])
                    for s, files in found.items()) == dict(
                        (s[:4] + '...', []) for s in secrets), (host.name, found)
    # The moved-aside datadir and the new one are the server's alone.
    assert replica.run(['stat', '-c', '%U %a', old[0], '/var/lib/mysql']).stdout.split() == [
        'mysql', '700', 'mysql', '700']
    print(dict(seconds=round(seconds, 1), rows_inserted=load.inserted,
               rows_updated=load.updated, secrets_samples=watch.samples,
               token_read_from=tokens.files, option_files=sorted(options.seen),
               verified=verified))


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
    line, msg = stream_failed(out, replica, donor, 'mariadb-backup on the source failed',
                              'not sealed')
    # The donor replicates again: both threads, not left with its SQL thread stopped.
    status = scenarios.wait_running(donor, timeout=30)
    assert status['Slave_SQL_Running'] == 'Yes'
    assert diff(before[0], snapshot(primary)) == {}
    assert diff(before[1], snapshot(replica)) == {}
    assert_no_stream_left(donor, replica)
    again = run_playbook(inv, PLAYBOOK, vars_)
    assert_rebuilt(again.returncode, again.stdout, primary, replica, source=donor)
    scenarios.wait_caught_up(primary, donor)
    print(dict(line=line))
