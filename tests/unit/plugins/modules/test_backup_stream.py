# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_stream's pure parts: versions, the option file, the ssh tunnel's command."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat
import tempfile
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.reseed.mariadb.plugins.module_utils import source_watch, versions
from ansible_collections.reseed.mariadb.plugins.modules import backup_stream as bs


@pytest.mark.parametrize('backup,server,ok', [
    ('10.11.19-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.20-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.8-MariaDB', '10.11.19-MariaDB', False),
    ('10.6.19-MariaDB', '10.11.19-MariaDB', False),
    ('11.4.2-MariaDB', '10.11.19-MariaDB', False),
])
def test_version_problem(backup, server, ok):
    assert (versions.backup_problem(backup, server) is None) == ok


@pytest.mark.parametrize('source,replica,problem', [
    (('10.11.19-MariaDB', '10.11.19-MariaDB'), ('10.11.19-MariaDB', '10.11.19-MariaDB'), None),
    # Measured: a 10.11 copy is prepared by 11.8's tool and upgraded by an 11.8 server.
    (('10.11.19-MariaDB', '10.11.19-MariaDB'), ('11.8.9-MariaDB', '11.8.9-MariaDB'), None),
    (('11.8.9-MariaDB', '11.8.9-MariaDB'), ('10.11.19-MariaDB', '10.11.19-MariaDB'),
     'MariaDB 10.11.19-MariaDB here cannot take the data of MariaDB 11.8.9-MariaDB on the '
     'source (an older series: MariaDB does not support moving data back): upgrade this '
     'replica to 11.8 first, or copy from a source of its series; mariadb-backup '
     '10.11.19-MariaDB here cannot prepare a copy made by mariadb-backup 11.8.9-MariaDB on the '
     'source: install mariadb-backup of the 11.8 series or newer here'),
    (('10.11.19-MariaDB', '10.11.19-MariaDB'), (None, None), None),
])
def test_replica_of_the_sources_series_or_newer(source, replica, problem):
    keys = ('mariabackup_version', 'server_version')
    assert versions.replica_problem(dict(zip(keys, source)), dict(zip(keys, replica))) == problem


def option_file(tmp_path, sockets=(), server_files=(), **params):
    """The option file write_option_file() makes of these login options (with no
    config_file unless given, and none of the server's), its mode, its text."""
    params.setdefault('config_file', None)
    path = bs.write_option_file(tempfile.mkdtemp(dir=str(tmp_path)), params,
                                default_sockets=sockets, server_files=server_files)
    return stat.S_IMODE(os.stat(path).st_mode), open(path).read()


def test_option_file_is_private_and_escaped(tmp_path):
    password = 'a"b\\c\'d #e'
    mode, text = option_file(tmp_path, login_user='backup', login_password=password,
                             login_unix_socket='/run/mysqld/mysqld.sock')
    assert mode == 0o600
    assert text == ('[mariadb-backup]\nuser="backup"\npassword="a\\"b\\\\c\'d #e"\n'
                    'socket="/run/mysqld/mysqld.sock"\n')


def test_option_file_uses_the_default_socket_for_localhost(tmp_path):
    # The login options' defaults (login_host localhost, port 3306): the first default
    # socket that exists, as for the module's own connection; no password, none written.
    sock = tmp_path / 'mysqld.sock'
    sock.write_text('')
    mode, text = option_file(tmp_path, sockets=(str(tmp_path / 'none.sock'), str(sock)),
                             login_user='root', login_host='localhost', login_port=3306)
    assert text == '[mariadb-backup]\nuser="root"\nsocket="%s"\n' % sock
    # No default socket here: localhost over TCP, as the driver would.
    mode, text = option_file(tmp_path, login_user='root', login_host='localhost',
                             login_port=3306)
    assert text == '[mariadb-backup]\nuser="root"\nhost="localhost"\nport="3306"\n'


def test_option_file_over_tcp_with_tls_files_password_only_in_the_file(tmp_path):
    mode, text = option_file(tmp_path, login_user='backup', login_password='s3cret',
                             login_host='10.0.0.11', login_port=3307, ca_cert='/etc/ca.pem',
                             client_cert='/etc/c.pem', client_key='/etc/c.key',
                             check_hostname=True)
    assert mode == 0o600
    assert text == ('[mariadb-backup]\nuser="backup"\npassword="s3cret"\nhost="10.0.0.11"\n'
                    'port="3307"\nssl-ca="/etc/ca.pem"\nssl-cert="/etc/c.pem"\n'
                    'ssl-key="/etc/c.key"\nssl-verify-server-cert="1"\n')


def test_option_file_includes_config_file_and_leaves_its_values_to_it(tmp_path):
    cnf = tmp_path / 'backup.cnf'
    cnf.write_text('[client]\nuser=backup\npassword=fromfile\nhost=10.0.0.11\n')
    # Its user, password and server are the file's: included, none repeated.
    mode, text = option_file(tmp_path, config_file=str(cnf), login_host='localhost',
                             login_port=3306)
    assert text == '!include %s\n[mariadb-backup]\n' % cnf
    # Options given win over the file's (written after it), as with the driver.
    mode, text = option_file(tmp_path, config_file=str(cnf), login_user='other',
                             login_unix_socket='/tmp/s.sock')
    assert text == '!include %s\n[mariadb-backup]\nuser="other"\nsocket="/tmp/s.sock"\n' % cnf


def test_option_file_reads_the_servers_files_first_and_the_login_given_last(tmp_path):
    # mariadb-backup reads this file alone (--defaults-file): the server's option files that
    # exist, then config_file, then the options given, in its own group, which win over
    # both (a ~/.my.cnf read after them, as with --defaults-extra-file, or its
    # [mariadb-backup] over our [client], would win instead).
    server = tmp_path / 'my.cnf'
    server.write_text('[mariadb]\ndatadir=/data/mysql\n')
    cnf = tmp_path / 'root.cnf'
    cnf.write_text('[mariadb-backup]\nuser=decoy\npassword=nope\n')
    mode, text = option_file(tmp_path, server_files=(str(tmp_path / 'none.cnf'), str(server)),
                             config_file=str(cnf), login_user='backup', login_password='pw',
                             login_unix_socket='/tmp/s.sock')
    assert text == ('!include %s\n!include %s\n[mariadb-backup]\nuser="backup"\npassword="pw"\n'
                    'socket="/tmp/s.sock"\n' % (server, cnf))


def test_ssh_tunnel_command_ends_with_the_destination_and_never_asks():
    argv = bs.ssh_argv({'ssh_port': 2222, 'ssh_key': '/tmp/k/id', 'ssh_options': ['Cipher=x'],
                        'ssh_user': 'ops', 'destination': '10.0.0.12'})
    assert argv[0] == 'ssh' and argv[-1] == 'ops@10.0.0.12'
    assert 'BatchMode=yes' in argv and 'ExitOnForwardFailure=yes' in argv
    assert argv[argv.index('-i') + 1] == '/tmp/k/id' and argv[argv.index('-p') + 1] == '2222'


# main() with mariadb-backup, the server and the receiver faked: what reaches the task.

VERSION = 'mariadb-backup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)'


class Db(object):
    """Connection's stand-in: an empty processlist (nothing the copy would wait for)."""

    def __init__(self, params):
        self.params = params

    lsn = 10 ** 9  # a quiet source: its redo does not move

    def query(self, sql, args=None):
        if sql == source_watch.REDO_QUERY:
            return [{'lsn': str(self.lsn)}]
        if 'innodb_log_file_size' in sql:
            return [{'size': 96 << 20}]
        return [{'u': 'root'}] if 'USER()' in sql else []

    def close(self):
        pass


class Channel(object):
    """The connection to the receiver: the frames it answers, in order; what was sent."""

    name = 'the replica 10.0.0.12:4444'

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []
        self.stall_timeout = 60
        self.sock = self

    def settimeout(self, timeout):
        pass

    def send_json(self, kind, obj):
        self.sent.append((kind, obj))

    def recv(self):
        kind, obj = self.answers.pop(0)
        return kind, bytearray(json.dumps(obj).encode('utf-8'))

    # The real reading of an expected frame (a REFUSE, ABORT or RESULT raises PeerAbort).
    recv_json = bs.transfer.Channel.recv_json

    def poll(self):
        return None

    def close(self):
        pass


class Pipeline(object):
    """The pipeline's stand-in: every program succeeded, 1000 bytes read and sent."""

    aborted = None
    seconds = 1.0

    def __init__(self, stages, counters, **kwargs):
        self.stages = stages

    def run(self):
        return None

    def counts(self):
        return {'read': 1000, 'sent': 1000}


@pytest.fixture
def run(monkeypatch, module_main):
    """A function (tmp_path, programs=..., **args) -> main()'s result (tcp, no compression)."""
    def run_it(tmp_path, programs=('mariadb-backup', 'mariadbd'), plan=None, channel=None,
               connect=None, pipeline=Pipeline, **args):
        found = dict((name, '/usr/bin/' + name) for name in programs)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda m, name, *a, **k: found.get(name))
        monkeypatch.setattr(basic.AnsibleModule, 'run_command',
                            lambda m, argv, **k: (0, VERSION, ''))
        monkeypatch.setattr(bs, 'Connection', Db)
        # This host's own backups (a lab's, while these tests run) are not the fake source's.
        monkeypatch.setattr(bs.source_watch, 'backup_processes', lambda parent=None: [])
        monkeypatch.setattr(bs.open_files, 'current',
                            lambda n: plan or bs.open_files.plan(1024, 4096, n))
        monkeypatch.setattr(bs.open_files, 'apply', lambda p: p)
        monkeypatch.setattr(bs.transfer, 'connect', connect or (lambda *a, **k: channel))
        monkeypatch.setattr(bs, 'Pipeline', pipeline)
        datadir = tmp_path / 'datadir'
        datadir.mkdir(exist_ok=True)
        (datadir / 'ibdata1').write_text('x' * 1000)
        return module_main(bs, dict(dict(destination='10.0.0.12', transport='tcp',
                                         compression='none', source_datadir=str(datadir),
                                         progress_file=str(tmp_path / 'progress'),
                                         config_file=str(tmp_path / 'none.cnf')), **args))
    return run_it


def test_preflight_needs_no_token_and_changes_nothing(tmp_path, run):
    res = run(tmp_path, preflight=True, transport='tls')
    assert not res.get('failed') and res['changed'] is False
    assert res['msg'] == 'the preflight passed: can stream a backup (about 0.00 GB) to ' \
        '10.0.0.12:4444 over tls'
    assert res['mariabackup_version'] == '10.11.19-MariaDB' and res['expected_bytes'] == 1000
    assert res['lock_watch'] == 'watched' and res['blockers'] == []
    assert res['open_files']['enough'] and res['commands'][0].startswith(
        '/usr/bin/mariadb-backup --backup --stream=xbstream')


def test_a_stream_still_needs_its_token(tmp_path, run):
    res = run(tmp_path)
    assert res['failed'] and 'token' in res['msg'] and 'failure' not in res


@pytest.mark.parametrize('programs,plan,code,message', [
    (('mariadbd',), None, 'no_mariadb_backup', 'mariadb-backup is not installed on the source '
     '(package mariadb-backup, of the server\'s version)'),
    (('mariadb-backup', 'mariadbd'), (1024, 2048, 5000), 'open_files_limit', None),
])
def test_a_preflight_failure_says_step_side_and_code(tmp_path, programs, plan, code, message, run):
    res = run(tmp_path, programs=programs, preflight=True,
              plan=bs.open_files.plan(*plan) if plan else None)
    assert res['failed'] and res['changed'] is False
    assert res['failure'] == dict(step='preflight', side='source', code=code,
                                  changed_nothing=True, message=message or res['failure']['message'])
    assert res['msg'] == 'backup_stream to 10.0.0.12:4444 (tcp): ' + res['failure']['message']
    if plan:
        assert 'the hard limit of open files here is 2048' in res['msg']


RECEIVER_FAILURE = dict(step='receive', side='replica', code='extract_failed',
                        changed_nothing=False, message='mbstream failed (exit code 1)')


def test_the_receivers_failure_from_its_result_frame_reaches_the_task(tmp_path, run):
    channel = Channel((bs.transfer.ACCEPT, {'staging': 'absent'}),
                      (bs.transfer.RESULT, {'ok': False, 'error': 'mbstream failed (exit code 1)',
                                            'failure': RECEIVER_FAILURE}))
    res = run(tmp_path, channel=channel, token='t0ken', login_password='pw')
    assert res['failed'] and res['changed'] is True
    assert res['receiver_failure'] == RECEIVER_FAILURE
    assert res['failure'] == dict(
        step='result', side='replica', code='receiver_failed', changed_nothing=False,
        message='the receiver on the replica failed: mbstream failed (exit code 1); the copy '
                'is not sealed (no reseed_received) and will not be prepared')
    assert res['msg'] == 'backup_stream to 10.0.0.12:4444 (tcp): ' + res['failure']['message']
    sent = [kind for kind, obj in channel.sent]
    assert sent == [bs.transfer.HELLO, bs.transfer.START, bs.transfer.END]


def test_a_refusal_is_the_replicas_and_changed_nothing(tmp_path, run):
    refusal = dict(step='check', side='replica', code='no_space', changed_nothing=True,
                   message='needs 5 GB, has 1 GB')
    channel = Channel((bs.transfer.REFUSE, {'reason': 'replica: needs 5 GB, has 1 GB',
                                            'failure': refusal}))
    res = run(tmp_path, channel=channel, token='t0ken')
    assert res['failed'] and res['changed'] is False and res['receiver_failure'] == refusal
    assert res['failure']['step'] == 'handshake' and res['failure']['side'] == 'replica'
    assert res['failure']['code'] == 'refused' and res['failure']['changed_nothing'] is True
    assert res['msg'] == ('backup_stream to 10.0.0.12:4444 (tcp): the replica refused the '
                          'stream, nothing changed: the replica 10.0.0.12:4444: replica: needs '
                          '5 GB, has 1 GB')


def test_a_sealed_stream(tmp_path, run):
    channel = Channel((bs.transfer.ACCEPT, {'staging': 'absent'}),
                      (bs.transfer.RESULT, {'ok': True, 'sealed': True, 'bytes': 1000}))
    res = run(tmp_path, channel=channel, token='t0ken')
    assert not res.get('failed') and res['changed'] is True and 'failure' not in res
    assert res['msg'] == 'streamed 0.00 GB (0.00 GB sent) in 1.0 s to 10.0.0.12, sealed'


def test_the_link_is_blamed_when_the_receiver_cannot_be_reached(tmp_path, run):
    def refused(*args, **kwargs):
        raise bs.transfer.TransferError('cannot connect to the replica\'s receiver at '
                                        '10.0.0.12:4444: Connection refused', 'unreachable')
    res = run(tmp_path, token='t0ken', connect=refused)
    assert res['failure']['step'] == 'connect' and res['failure']['side'] == 'link'
    assert res['failure']['code'] == 'unreachable' and res['failure']['changed_nothing']
    assert res['msg'].startswith('backup_stream to 10.0.0.12:4444 (tcp): nothing changed: '
                                 'cannot connect')


class ReceiverStops(Pipeline):
    """The receiver fails mid-stream: its RESULT frame comes while the pump sends, which
    raises PeerAbort with the frame (pipeline.Pump.send)."""

    def __init__(self, stages, counters, sink=None, **kwargs):
        Pipeline.__init__(self, stages, counters)
        self.sink = sink

    def run(self):
        channel, name = self.sink
        kind, payload = channel.poll()
        pump = bs.Pump(0, channel, name)
        pump.error = bs.transfer.PeerAbort.of(channel.name, payload)
        return pump


def test_the_receivers_failure_mid_stream_reaches_the_task(tmp_path, run):
    channel = Channel((bs.transfer.ACCEPT, {'staging': 'absent'}))
    frame = {'ok': False, 'error': 'mbstream failed (exit code 1)', 'failure': RECEIVER_FAILURE}
    channel.poll = lambda: (bs.transfer.RESULT, bytearray(json.dumps(frame).encode('utf-8')))
    res = run(tmp_path, channel=channel, token='t0ken', pipeline=ReceiverStops)
    assert res['receiver_failure'] == RECEIVER_FAILURE
    assert (res['failure']['step'], res['failure']['side'], res['failure']['code']) == (
        'stream', 'replica', 'receiver_failed')
    assert res['msg'] == ('backup_stream to 10.0.0.12:4444 (tcp): the link to the replica '
                          '10.0.0.12:4444 failed: the replica 10.0.0.12:4444: mbstream failed '
                          '(exit code 1); the copy is not sealed (no reseed_received) and will '
                          'not be prepared')


def busy_source(monkeypatch, redo_mb_s):
    """A source of 8 GB that wrote redo_mb_s MB/s of redo for the 10 s since the role read it:
    the redo_sample to pass."""
    monkeypatch.setattr(bs, 'estimate_bytes', lambda datadir: 8 * 10 ** 9)
    return dict(lsn=Db.lsn - redo_mb_s * 10 ** 7, log_file_size=96 << 20, at=time.time() - 10)


@pytest.mark.parametrize('check', ['warn', 'refuse'])
def test_a_redo_log_too_small_for_the_copy_is_said_before_it_starts(tmp_path, run, monkeypatch,
                                                                    check):
    given = busy_source(monkeypatch, 12)
    warned = []  # what reaches the task's warnings (their form differs between ansible-cores)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda m, text: warned.append(text))
    res = run(tmp_path, preflight=True, throttle_mbps=100, redo_sample=given, redo_check=check)
    outlook = res['redo_outlook']
    assert outlook['risk'] and round(outlook['rate_mb_s']) == 12 and outlook['copy_seconds'] == 80
    assert outlook['suggested'] == 2 << 30
    said = ("preflight of the source: at 12.0 MB/s of redo the source's 96M redo log "
            "(innodb_log_file_size) holds 8.4 s of writes, and the copy needs ~80 s (at "
            "replica_rebuild_throttle_mbps 100)")
    if check == 'refuse':
        assert res['failed'] and res['failure']['code'] == 'redo_log_too_small'
        assert said in res['msg'] and res['msg'].endswith(
            '(replica_rebuild_redo_check: refuse; nothing changed)')
    else:
        assert not res.get('failed') and len(warned) == 1 and said in warned[0]
    # A copy whose speed is unknown before it starts: the watch tells, from its own rate.
    quiet = run(tmp_path, preflight=True, redo_sample=given, redo_check='refuse')
    assert not quiet.get('failed') and quiet['redo_outlook']['copy_seconds'] is None


def test_the_redo_log_is_raised_for_the_copy_and_set_back_after(tmp_path, run, monkeypatch):
    sizes = [4 << 20]  # the server's innodb_log_file_size, then each resize asked for
    monkeypatch.setattr(bs.redo_log, 'current_size', lambda connect: sizes[-1])
    monkeypatch.setattr(bs.redo_log, 'resize', lambda connect, size: sizes.append(size))
    given = busy_source(monkeypatch, 12)
    channel = Channel((bs.transfer.ACCEPT, {'staging': 'absent'}),
                      (bs.transfer.RESULT, {'ok': True, 'sealed': True, 'bytes': 1000}))
    res = run(tmp_path, channel=channel, token='t0ken', throttle_mbps=100, redo_sample=given,
              redo_check='refuse', redo_log_file_size='2G')
    assert not res.get('failed') and sizes == [4 << 20, 2 << 30, 4 << 20]
    assert res['redo_log'] == dict(before=4 << 20, during=2 << 30, raised=True, restored=True)
    # Too small a raise for the outlook: refused all the same; and a size that is not one.
    res = run(tmp_path, preflight=True, throttle_mbps=100, redo_sample=given,
              redo_check='refuse', redo_log_file_size='1G')
    assert res['failure']['code'] == 'redo_log_too_small'
    res = run(tmp_path, preflight=True, redo_log_file_size='lots')
    assert res['failure']['code'] == 'redo_log_size' and '512M or 2G' in res['msg']


def test_a_raise_that_does_not_end_is_a_failure_before_the_copy(tmp_path, run, monkeypatch):
    monkeypatch.setattr(bs.redo_log, 'current_size', lambda connect: 96 << 20)
    monkeypatch.setattr(bs.redo_log, 'resize', lambda connect, size: 'did not end within 60 s')
    channel = Channel((bs.transfer.ACCEPT, {'staging': 'absent'}))
    res = run(tmp_path, channel=channel, token='t0ken', redo_log_file_size='1G')
    assert res['failed'] and res['failure']['code'] == 'redo_log_resize'
    assert res['failure']['changed_nothing'] is True and 'from 96M to 1024M' in res['msg']
    assert [kind for kind, obj in channel.sent] == [bs.transfer.HELLO]  # never started


@pytest.mark.parametrize('version,ok', [('10.11.19-MariaDB', True), ('10.11.6-MariaDB', False),
                                        ('11.4.5-MariaDB', True), ('11.2.1-MariaDB', False),
                                        ('11.8.3-MariaDB', True), (None, False)])
def test_the_redo_log_is_resized_online_only_where_that_is_safe(version, ok):
    assert (versions.online_resize_problem(version) is None) == ok
