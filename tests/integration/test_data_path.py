# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_stream and backup_prepare on real hosts: stream, prepare, prove the copy."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

import scenarios
from ansible_run import start_module
from secrets_watch import SecretsWatch

STAGING = '/var/lib/mysql.reseed-staging'
BACKUP_USER, BACKUP_PASSWORD = 'backup', "B@ck'up\\pw\"#1 x"


@pytest.fixture
def pair(make_hosts, inventory):
    hosts = make_hosts('src', 'dst')
    src, dst = hosts['src'], hosts['dst']
    scenarios.load_data(src, rows=20000)
    src.sql("CREATE USER {u}@'localhost' IDENTIFIED BY {p};"
            "GRANT RELOAD, PROCESS, BINLOG MONITOR ON *.* TO {u}@'localhost';".format(
                u=scenarios.q(BACKUP_USER), p=scenarios.q(BACKUP_PASSWORD)))
    # The source may reach the destination over ssh with its own key (the role uses a
    # temporary restricted one; tested with the role).
    dst.run('cat >> /root/.ssh/authorized_keys', input=src.run('cat /root/.ssh/id_ed25519.pub').stdout)
    return dict(src=src, dst=dst, inventory=inventory(src, [dst]))


def descendants(pid):
    """Every process below pid (a run's workers, in sessions of their own, and their ssh)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stream_args(pair, **kw):
    args = dict(destination=pair['dst'].ip, staging_dir=STAGING, login_user=BACKUP_USER,
                login_password=BACKUP_PASSWORD)
    args.update(kw)
    return args


def table_checksums(host, socket=None):
    sock = ['--socket=' + socket] if socket else []
    out = host.run(['mariadb', '--batch', '--skip-column-names'] + sock,
                   input='CHECKSUM TABLE labdb.t, labdb.log, mysql.user EXTENDED;').stdout
    return dict(line.split('\t') for line in out.strip().splitlines())


def checksums_of_copy(dst):
    """Start a throwaway server on the prepared copy (other socket, no network), read the
    checksums, shut it down."""
    dst.popen(['mariadbd', '--no-defaults', '--datadir=' + STAGING, '--socket=/tmp/copy.sock',
               '--skip-networking', '--user=root', '--innodb-buffer-pool-size=64M',
               '--pid-file=/tmp/copy.pid', '--log-error=/tmp/copy.err'])
    try:
        scenarios.wait_for(lambda: dst.run(['mariadb-admin', '--socket=/tmp/copy.sock', 'ping'],
                                           check=False).returncode == 0, 60,
                           what='the throwaway server on the copy')
        return table_checksums(dst, '/tmp/copy.sock')
    finally:
        dst.run(['mariadb-admin', '--socket=/tmp/copy.sock', 'shutdown'], check=False)
        scenarios.wait_for(lambda: dst.run('test -e /tmp/copy.pid', check=False).returncode, 60,
                           what='the throwaway server to stop')


@pytest.mark.parametrize('transport', ['ssh', 'tcp'])
@pytest.mark.parametrize('compression', ['zstd', 'none', 'auto'])
def test_stream_prepare_and_the_copy_equals_the_source(pair, run_module, compression,
                                                       transport):
    src, dst = pair['src'], pair['dst']
    with SecretsWatch([BACKUP_PASSWORD]) as watch:
        res = run_module(pair['inventory'], src.name, 'backup_stream',
                         stream_args(pair, compression=compression, transport=transport))
    assert not res.failed, res.result
    assert watch.leaks == [] and watch.samples > 5
    assert res['bytes_read'] > 20000 * 200 and res['bytes_sent'] > 0
    chosen = compression
    if compression == 'auto':
        auto = res['auto_compression']  # the link measured through the transport itself
        assert auto['link'] == 'measured' and auto['link_mb_s'] > 20, auto
        chosen = auto['chosen']
    if chosen == 'none':
        assert res['bytes_sent'] == res['bytes_read']
    else:
        assert res['ratio'] > 1.5
    assert BACKUP_PASSWORD not in res.stdout + str(res.result)
    assert dst.run('ls %s' % STAGING).stdout.split().count('reseed_received') == 1
    assert BACKUP_PASSWORD not in dst.run('cat %s/xtrabackup_info' % STAGING).stdout
    # The live datadir was not touched and the server kept running.
    assert dst.sql_value('SELECT COUNT(*) FROM information_schema.SCHEMATA '
                         "WHERE SCHEMA_NAME='labdb'") == '0'

    prep = run_module(pair['inventory'], dst.name, 'backup_prepare', {'path': STAGING})
    assert not prep.failed, prep.result
    assert prep['changed'] and prep['prepared'] and prep['backup_type'] == 'log-applied'
    # No writes since: the copy's coordinates are the source's current position.
    assert prep['gtid'] == src.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    assert (prep['binlog_file'], str(prep['binlog_pos'])) == tuple(
        src.sql('SHOW MASTER STATUS')[0][:2])
    again = run_module(pair['inventory'], dst.name, 'backup_prepare', {'path': STAGING})
    assert not again.failed and again['changed'] is False and again['gtid'] == prep['gtid']
    assert checksums_of_copy(dst) == table_checksums(src)


@pytest.mark.parametrize('transport', ['ssh', 'tcp'])
def test_receiver_killed_mid_stream_is_named_and_the_copy_refused(pair, run_module, transport):
    src, dst = pair['src'], pair['dst']
    src.sql('CREATE TABLE labdb.big ENGINE=InnoDB SELECT seq, REPEAT(MD5(seq), 20) AS pad '
            'FROM labdb.seq_1_to_150000')

    def kill_receiver():
        pids = dst.run('pidof mbstream', check=False).stdout.split()
        if pids:  # the mbstream our stream started, in the destination host
            dst.run(['kill', '-9'] + pids)
            return True
        return False

    import threading
    killer = threading.Thread(target=lambda: scenarios.wait_for(kill_receiver, 60, 0.05,
                                                                'mbstream to start'))
    killer.start()
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, compression='none', throttle_mbps=20,
                                 transport=transport))
    killer.join()
    assert res.failed
    blamed = 'ssh to %s (receiving' if transport == 'ssh' else 'receiver on %s (socat'
    assert res['msg'].startswith('backup_stream to %s:%s: ' % (dst.ip, STAGING) +
                                 blamed % dst.ip), res['msg']
    assert 'killed by signal 9' in res['msg'] or 'exit code 137' in res['msg'], res['msg']
    assert 'not sealed (no reseed_received)' in res['msg']
    listing = dst.run('ls %s' % STAGING).stdout.split()
    assert 'reseed_receiving' in listing and 'reseed_received' not in listing
    prep = run_module(pair['inventory'], dst.name, 'backup_prepare', {'path': STAGING})
    assert prep.failed and 'not a whole copy' in prep['msg']
    assert dst.run('test -e %s/xtrabackup_checkpoints' % STAGING, check=False).returncode == 0 \
        or 'no xtrabackup_checkpoints' in prep['msg']
    # The next run starts clean over the stale partial copy.
    res = run_module(pair['inventory'], src.name, 'backup_stream', stream_args(pair))
    assert not res.failed, res.result
    assert 'reseed_received' in dst.run('ls %s' % STAGING).stdout.split()


def test_wrong_backup_password_is_clear_and_never_shown(pair, run_module):
    src = pair['src']
    wrong = 'Wr0ng-' + BACKUP_PASSWORD
    with SecretsWatch([wrong, BACKUP_PASSWORD]) as watch:
        res = run_module(pair['inventory'], src.name, 'backup_stream',
                         stream_args(pair, login_password=wrong), verbosity=4)
    assert res.failed
    assert 'mariadb-backup on the source failed' in res['msg']
    assert 'Access denied' in res['msg'] and '\n' not in res['msg']
    assert wrong not in res.stdout + res.stderr + str(res.result)
    assert watch.leaks == []
    assert not src.run('ls /tmp').stdout.count('reseed-stream-') > 1  # option file dir gone
    assert src.run("find /tmp -name backup.cnf").stdout == ''


@pytest.mark.parametrize('transport', ['ssh', 'tcp'])
def test_auto_measures_a_slow_link_and_compresses(pair, run_module, transport):
    src, dst = pair['src'], pair['dst']
    dst.shape('100mbit')
    try:
        res = run_module(pair['inventory'], src.name, 'backup_stream',
                         stream_args(pair, transport=transport))
    finally:
        dst.shape(None)
    assert not res.failed, res.result
    auto = res['auto_compression']
    assert auto['link'] == 'measured' and 6 < auto['link_mb_s'] < 13.5, auto
    assert auto['chosen'] == 'zstd' and res['bytes_sent'] * 1.5 < res['bytes_read'], auto
    assert dst.run('ls %s' % STAGING).stdout.split().count('reseed_received') == 1
    # Told the link is fast, it trusts that and measures nothing.
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, transport=transport, link_mbps=100000))
    assert not res.failed, res.result
    assert res['auto_compression']['link'] == 'given (link_mbps)'
    assert 'probe_seconds' not in res['auto_compression']


def test_check_mode_and_refusals(pair, run_module):
    src, dst = pair['src'], pair['dst']
    for transport in ('ssh', 'tcp'):
        res = run_module(pair['inventory'], src.name, 'backup_stream',
                         stream_args(pair, transport=transport), check=True)
        assert not res.failed, res.result
        assert res['changed'] and 'would stream' in res['msg']
        assert res['mariabackup_version'] == res['server_version'] == '10.11.19-MariaDB'
        assert res['destination_facts']['staging'] == 'absent' and res['expected_bytes'] > 0
        # compression=auto measures the link only when it streams.
        assert res['auto_compression']['chosen'] is None, res['auto_compression']
        assert dst.run('test -e %s' % STAGING, check=False).returncode == 1
        assert 'socat' not in dst.run('ps -eo comm').stdout
    # Not enough room on the destination for the source's data (a sparse 8 TB file).
    src.run('mkdir -p /tmp/bigdata && truncate -s 8T /tmp/bigdata/ibdata1')
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, source_datadir='/tmp/bigdata'), check=True)
    assert res.failed and 'GB free for the copy' in res['msg'], res['msg']
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, source_datadir='/tmp/bigdata'))
    assert res.failed and 'GB free for the copy' in res['msg'], res['msg']
    assert dst.run('test -e %s' % STAGING, check=False).returncode == 1
    # A directory that is not ours is refused, whatever it holds; the datadir too.
    dst.run('mkdir -p /var/lib/precious && echo keep > /var/lib/precious/file')
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, staging_dir='/var/lib/precious'))
    assert res.failed and 'not a reseed staging directory' in res['msg']
    assert dst.run('cat /var/lib/precious/file').stdout == 'keep\n'
    for path in ('/var/lib/mysql', '/var/lib'):
        res = run_module(pair['inventory'], src.name, 'backup_stream',
                         stream_args(pair, staging_dir=path))
        assert res.failed and 'datadir of a running server' in res['msg'], res['msg']
    assert dst.sql_value('SELECT 1') == '1'
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, staging_dir='/tmp'))
    assert res.failed and 'two levels deep' in res['msg']


def test_progress_is_shown_while_streaming(pair, run_module):
    src, dst = pair['src'], pair['dst']
    src.sql('CREATE TABLE labdb.big ENGINE=InnoDB SELECT seq, REPEAT(MD5(seq), 20) AS pad '
            'FROM labdb.seq_1_to_150000')
    started = int(time.time())
    res = run_module(pair['inventory'], src.name, 'backup_stream',
                     stream_args(pair, progress_file='/tmp/progress.json', throttle_mbps=10))
    assert not res.failed, res.result
    final = json.loads(src.run('cat /tmp/progress.json').stdout)
    assert final['done'] is True and final['read'] == res['bytes_read']
    assert final['expected_bytes'] > 0
    # The action plugin printed progress lines while the module ran in the background,
    # and returned the module's own result (no async bookkeeping), heartbeat file removed.
    lines = re.findall(r'^%s -> %s: [\d.]+ [MG]B of ~[\d.]+ [MG]B \([\d.]+%%\), [\d.]+ MB/s, '
                       r'(?:[\d.]+ [MG]B sent, )?ETA \w+, \w+ elapsed$' % (src.name, dst.ip),
                       res.stdout, re.M)
    assert res['seconds'] > 8 and lines, res.stdout
    assert 'ansible_job_id' not in res.result and res['bytes_read'] > 10 ** 8
    # This run's heartbeat file and async job file are gone (/root/.ansible_async holds
    # other runs' files too: lab hosts share the machine's /root, all but /root/.ssh).
    assert src.run('ls /root/.ansible_async/ | grep -F "reseed-stream-%s-" || true'
                   % src.name).stdout.strip() == ''
    assert src.run('find /root/.ansible_async -name "j*" -newermt @%d | xargs -r grep -lF "%s" '
                   '|| true' % (started, dst.ip)).stdout.strip() == ''
    assert 'reseed_received' in dst.run('ls %s' % STAGING).stdout.split()


@pytest.mark.parametrize('how', ['ctrl-c', 'main-killed', 'controller-gone'])
def test_a_stream_stops_when_its_controller_is_gone(pair, how, tmp_path):
    """ctrl-c: SIGINT to ansible-playbook's process group, as a terminal sends it; Ansible
    forwards it to its workers, whose action plugin removes the heartbeat: the stream stops
    at once. main-killed: SIGKILL to ansible-playbook alone (the OOM killer); its worker lives
    on in a session of its own, sees its parent gone and does the same. controller-gone:
    SIGKILL to every process of the run, workers and ssh included (the controller vanished):
    the heartbeat goes stale and the stream stops after heartbeat_timeout."""
    src, dst = pair['src'], pair['dst']
    src.sql('CREATE TABLE labdb.big ENGINE=InnoDB SELECT seq, REPEAT(MD5(seq), 20) AS pad '
            'FROM labdb.seq_1_to_150000')
    timeout = 8 if how == 'controller-gone' else 60
    proc = start_module(str(tmp_path), pair['inventory'], src.name, 'backup_stream',
                        stream_args(pair, compression='none', throttle_mbps=2,
                                    heartbeat_timeout=timeout))
    try:
        scenarios.wait_for(lambda: dst.run('pidof mbstream', check=False).returncode == 0,
                           120, 0.2, 'mbstream to start')
        time.sleep(3)
        ours = descendants(proc.pid)  # our own processes only, by pid
        if how == 'ctrl-c':
            os.killpg(proc.pid, signal.SIGINT)
        elif how == 'main-killed':
            os.kill(proc.pid, signal.SIGKILL)
        else:
            for pid in [proc.pid] + ours:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        stopped_at = time.time()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # our own process group only
            proc.wait()
    scenarios.wait_for(lambda: src.run('pidof mariadb-backup', check=False).returncode == 1,
                       timeout + 30, 0.5, 'the orphaned stream to stop')
    took = time.time() - stopped_at
    assert took < (timeout + 15 if how == 'controller-gone' else 20), took
    scenarios.wait_for(lambda: dst.run('pidof mbstream', check=False).returncode == 1, 30)
    listing = dst.run('ls %s' % STAGING).stdout.split()
    assert 'reseed_received' not in listing and 'reseed_extracted' not in listing, listing
    # The module's own verdict, left in Ansible's async job file on the source.
    jobs = src.run('cat /root/.ansible_async/j* 2>/dev/null || true').stdout
    assert 'the controller is gone' in jobs, jobs


def test_from_a_replica_the_copy_records_the_primarys_coordinates(
        replicated, make_hosts, inventory, run_module):
    primary, source = replicated['primary'], replicated['replica']
    dst = make_hosts('dst')['dst']
    scenarios.load_data(primary, rows=2000)
    scenarios.wait_caught_up(primary, source)
    dst.run('cat >> /root/.ssh/authorized_keys',
            input=source.run('cat /root/.ssh/id_ed25519.pub').stdout)
    inv = inventory(primary, [source], [dst])
    # root over the unix socket: the backup account Debian sets up (all privileges).
    res = run_module(inv, source.name, 'backup_stream', {
        'destination': dst.ip, 'staging_dir': STAGING, 'slave_info': True,
        'safe_slave_backup': True})
    assert not res.failed, res.result
    assert '--slave-info --safe-slave-backup' in res['commands'][0]
    prep = run_module(inv, dst.name, 'backup_prepare', {'path': STAGING})
    assert not prep.failed, prep.result
    primary_pos = primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    assert prep['slave_info']['gtid_slave_pos'] == primary_pos
    assert prep['slave_info']['use_gtid'] == 'slave_pos'
    # The replica's own binlog coordinates, with the replicated transactions' GTIDs.
    assert prep['gtid'] == primary_pos
    assert prep['binlog_file'] == source.sql('SHOW MASTER STATUS')[0][0]
    # The source replica replicates again after --safe-slave-backup.
    status = source.slave_status()
    assert status['Slave_IO_Running'] == 'Yes' and status['Slave_SQL_Running'] == 'Yes'


def test_a_legacy_compressed_copy_is_refused_without_qpress(make_hosts, run_module, inventory):
    """A copy made by hand with the deprecated --compress (QuickLZ .qp files, built into
    mariadb-backup 10.11): --decompress needs qpress, which Debian does not package."""
    host = make_hosts('legacy')['legacy']
    scenarios.load_data(host, rows=2000)
    host.run(['mariadb-backup', '--backup', '--compress', '--target-dir=/var/lib/legacy'])
    before = host.run('find /var/lib/legacy -type f | sort; cat /var/lib/legacy/xtrabackup_checkpoints').stdout
    assert '.qp\n' in before and 'backup_type = full-backuped' in before
    inv = inventory(host)
    for check in (True, False):
        res = run_module(inv, host.name, 'backup_prepare',
                         {'path': '/var/lib/legacy', 'require_receive_record': False},
                         check=check)
        assert res.failed and 'qpress is not installed' in res['msg'], res.result
        assert res['msg'].startswith('backup_prepare on /var/lib/legacy: the copy holds .qp')
    # The copy is left as it was: still compressed, not prepared.
    assert host.run('find /var/lib/legacy -type f | sort; '
                    'cat /var/lib/legacy/xtrabackup_checkpoints').stdout == before


def test_a_second_stream_into_a_busy_staging_directory_is_refused(pair, run_module, tmp_path):
    """A stream still running (e.g. left by a controller that vanished) holds the staging
    directory's lock on the destination: a new stream is refused by its preflight, touches
    nothing, and the first one ends whole and sealed."""
    src, dst = pair['src'], pair['dst']
    first = start_module(str(tmp_path), pair['inventory'], src.name, 'backup_stream',
                         stream_args(pair, compression='none', throttle_mbps=2))
    try:
        scenarios.wait_for(lambda: dst.run('pidof mbstream', check=False).returncode == 0,
                           120, 0.2, 'mbstream to start')
        second = run_module(pair['inventory'], src.name, 'backup_stream', stream_args(pair))
        assert second.failed and 'another stream into the staging directory is still running' \
            in second['msg'], second.result
        assert second['destination_facts']['lock'].startswith('/run/lock/reseed')
        assert first.wait(300) == 0, open(str(tmp_path / 'stdout')).read()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # our own process group only
            first.wait()
    assert 'reseed_received' in dst.run('ls %s' % STAGING).stdout.split()
