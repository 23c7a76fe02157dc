# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One backup, two replicas (the data path of issue 13's fleet): the source streams once to
the first replica's receiver, which extracts its copy and passes every frame on to the
second's. Real hosts, real TLS between each pair, both copies prepared and compared."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading

import scenarios
from ansible_run import run_module, start_module
from streaming import STAGING

PORT = 4444


def certs(inventory, hosts):
    out = {}
    for host in hosts:
        res = run_module(inventory, host.name, 'transfer_cert', {'prefix': 'chain'})
        assert not res.failed, res.result
        out[host.name] = res.result
    return out


def receive_args(host, previous, cert, token, **kw):
    args = dict(staging_dir=STAGING, port=PORT, source_address=previous.ip, token=token,
                tls_cert=cert[host.name]['cert_file'], tls_key=cert[host.name]['key_file'],
                peer_cert=cert[previous.name]['cert'], accept_timeout=60,
                run_file='/tmp/chain-%s.run' % token[:8])
    args.update(kw)
    return args


def result_of(proc, tmp, host):
    """The receiver's result (the tree callback's), failed as its run ended."""
    proc.wait(300)
    with open(os.path.join(tmp, 'tree', host.name)) as f:
        result = json.load(f)
    result['failed'] = proc.returncode != 0
    return result


def start(tmp_path, inventory, host, args):
    tmp = tempfile.mkdtemp(prefix=host.name + '-', dir=str(tmp_path))
    return start_module(tmp, inventory, host.name, 'backup_receive', args), tmp


def checksums(host, socket=None):
    sock = ['--socket=' + socket] if socket else []
    return host.run(['mariadb', '--batch', '--skip-column-names'] + sock,
                    input='CHECKSUM TABLE labdb.t, labdb.log EXTENDED;').stdout


def test_one_backup_two_replicas_and_a_hop_that_dies(make_hosts, inventory, tmp_path):
    hosts = make_hosts('src', 'first', 'second')
    src, first, second = hosts['src'], hosts['first'], hosts['second']
    scenarios.load_data(src, rows=20000)
    inv = inventory(src, [first, second])
    cert = certs(inv, [src, first, second])
    token = secrets.token_hex(16)
    # The second listens for the first; the first for the source, and passes it on.
    last = start(tmp_path, inv, second, receive_args(second, first, cert, token))
    head = start(tmp_path, inv, first, receive_args(
        first, src, cert, token,
        forward_to=[{'destination': second.ip, 'peer_cert': cert[second.name]['cert']}]))
    sent = run_module(inv, src.name, 'backup_stream', dict(
        destination=first.ip, port=PORT, token=token, tls_cert=cert[src.name]['cert_file'],
        tls_key=cert[src.name]['key_file'], peer_cert=cert[first.name]['cert'],
        compression='zstd'))
    assert not sent.failed, sent.result
    got_first, got_second = result_of(*head, first), result_of(*last, second)
    assert not got_first['failed'] and not got_second['failed'], (got_first, got_second)
    assert got_first['sealed'] and got_second['sealed'], (got_first, got_second)
    # Every byte crossed the source's link once; the same bytes reached both.
    assert got_first['bytes_received'] == got_second['bytes_received'] == sent['bytes_sent']
    assert got_second['peer'] == first.ip
    assert got_first['forward'] == [{'destination': second.ip, 'ok': True, 'sealed': True,
                                     'bytes': sent['bytes_sent']}]
    assert sent['receiver']['forward'][0]['sealed'] is True
    expected = checksums(src)
    for host in (first, second):
        prep = run_module(inv, host.name, 'backup_prepare', {'path': STAGING})
        assert not prep.failed, prep.result
        assert prep['gtid'] == src.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
        host.popen(['mariadbd', '--no-defaults', '--datadir=' + STAGING, '--socket=/tmp/c.sock',
                    '--skip-networking', '--user=root', '--pid-file=/tmp/c.pid',
                    '--log-error=/tmp/c.err'])
        try:
            scenarios.wait_for(lambda: host.run(['mariadb-admin', '--socket=/tmp/c.sock',
                                                 'ping'], check=False).returncode == 0, 60)
            assert checksums(host, '/tmp/c.sock') == expected
        finally:
            host.run(['mariadb-admin', '--socket=/tmp/c.sock', 'shutdown'], check=False)
            scenarios.wait_for(lambda: host.run('test -e /tmp/c.pid', check=False).returncode,
                               60)

    # The second hop dies mid-stream: the first still gets its copy whole and sealed, and
    # says why the second did not; the second's copy stays unsealed.
    src.sql('CREATE TABLE labdb.big ENGINE=InnoDB SELECT seq, REPEAT(MD5(seq), 20) AS pad '
            'FROM labdb.seq_1_to_150000')
    token = secrets.token_hex(16)
    last = start(tmp_path, inv, second, receive_args(second, first, cert, token))
    head = start(tmp_path, inv, first, receive_args(
        first, src, cert, token,
        forward_to=[{'destination': second.ip, 'peer_cert': cert[second.name]['cert']}]))

    def kill_second():
        pids = second.run('pidof mbstream', check=False).stdout.split()
        if pids:
            second.run(['kill', '-9'] + pids)  # the mbstream our stream started there
            return True
        return False

    killer = threading.Thread(target=lambda: scenarios.wait_for(kill_second, 60, 0.05))
    killer.start()
    sent = run_module(inv, src.name, 'backup_stream', dict(
        destination=first.ip, port=PORT, token=token, tls_cert=cert[src.name]['cert_file'],
        tls_key=cert[src.name]['key_file'], peer_cert=cert[first.name]['cert'],
        compression='none', throttle_mbps=40))
    killer.join()
    assert not sent.failed, sent.result
    got_first, got_second = result_of(*head, first), result_of(*last, second)
    assert not got_first['failed'] and got_first['sealed'] is True
    assert got_first['forward'][0]['ok'] is False and \
        'mbstream -x on the replica failed' in got_first['forward'][0]['error'], got_first
    assert got_second['failed'] and not got_second['sealed']
    assert 'reseed_received' in first.run('ls %s' % STAGING).stdout.split()
    assert 'reseed_received' not in second.run('ls %s' % STAGING).stdout.split()
    assert second.sql_value('SELECT 1') == '1'  # its old server serves on
