# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole rebuild through playbooks/rebuild_replica.yml, on real lab hosts."""

from __future__ import annotations

import os

import scenarios
from ansible_run import REPO, run_playbook, task_lines
from secrets_watch import SecretsWatch

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')
STATUS = os.path.join(REPO, 'playbooks', 'replica_status.yml')


def mariadbd_pid(host):
    return host.run('pidof mariadbd').stdout.strip()


def test_rebuild_heals_the_broken_replica_and_leaves_the_healthy_one(
        make_hosts, inventory, repl_password):
    hosts = make_hosts('primary', 'broken', 'healthy')
    primary, broken, healthy = hosts['primary'], hosts['broken'], hosts['healthy']
    scenarios.setup_replication(primary, [broken, healthy], repl_password, rows=5000)
    scenarios.break_1236(primary, broken)
    inv = inventory(primary, [broken, healthy])
    healthy_pid = mariadbd_pid(healthy)
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password}

    status = run_playbook(inv, STATUS)
    assert status.returncode == 0, status.stdout[-3000:]
    assert 'broken; needs_rebuild=True' in status.stdout
    assert 'healthy; needs_rebuild=False' in status.stdout

    # replica_rebuild_source: auto takes a healthy replica as the donor, else the primary.
    # A replica whose replication is stopped is not healthy: the primary (check mode, which
    # chooses and changes nothing).
    healthy.sql('STOP SLAVE')
    check = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_source='auto'), check=True)
    assert check.returncode == 0, check.stdout[-6000:]
    assert 'source auto: the primary %s (no healthy replica)' % primary.name in check.stdout, \
        check.stdout[-6000:]
    assert mariadbd_pid(broken) != '' and broken.slave_status()['Last_IO_Errno'] == '1236'
    healthy.sql('START SLAVE')
    scenarios.wait_caught_up(primary, healthy)

    with SecretsWatch([repl_password]) as watch:
        proc = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_source='auto'), verbosity=1)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert watch.leaks == [] and repl_password not in proc.stdout + proc.stderr
    # The copy came from the healthy replica (its --slave-info coordinates, the primary's).
    assert 'source auto: the healthy replica %s (the highest GTID' % healthy.name in proc.stdout
    assert '"source": "%s"' % healthy.name in proc.stdout, proc.stdout[-6000:]
    # The summary has the stream's figures (a one-at-a-time run: stream.yml's results).
    for field in ('bytes', 'bytes_received', 'stream_seconds', 'downtime_seconds'):
        assert '"%s": ' % field in proc.stdout, field
    # The broken replica runs on new data, caught up, verified; its old datadir is kept.
    s = broken.slave_status()
    assert s['Slave_IO_Running'] == 'Yes' and s['Slave_SQL_Running'] == 'Yes', \
        scenarios.threads(s)
    assert s['Using_Gtid'] == 'Slave_Pos' and s['Last_IO_Errno'] == '0'
    scenarios.wait_caught_up(primary, broken)
    assert broken.sql_value('SELECT COUNT(*) FROM labdb.t') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.t')
    assert 'tables equal at' in proc.stdout
    assert broken.run('ls -d /var/lib/mysql.reseed-old-*').stdout.strip()
    assert broken.run('test -e /etc/mysql/mariadb.conf.d/99-reseed-hold.cnf',
                      check=False).returncode == 1
    assert 'reseed-transfer' not in broken.run('cat /root/.ssh/authorized_keys').stdout
    # The lab hosts have every package: dpkg said so, the package manager was not called.
    for side in ('replica', 'source'):
        lines = task_lines(proc.stdout, 'Install mariadb-backup, zstd and PyMySQL on the ' + side)
        assert lines and all(line.startswith('skipping: [') for line in lines), (side, lines)
    # The healthy replica was left alone: same server process.
    assert mariadbd_pid(healthy) == healthy_pid

    # Again: nothing to do, nothing changed, nothing restarted.
    pid = mariadbd_pid(broken)
    again = run_playbook(inv, PLAYBOOK, extra)
    assert again.returncode == 0, again.stdout[-3000:]
    recap = again.stdout.split('PLAY RECAP')[-1]
    assert 'changed=0' in recap and 'changed=1' not in recap, recap
    assert mariadbd_pid(broken) == pid and mariadbd_pid(healthy) == healthy_pid


def test_rebuild_replicates_over_tls_when_asked(make_hosts, inventory, repl_password, tmp_path):
    """The copy carries no replication settings: TLS comes from the role's variables, or, with
    their defaults, from what the replica had before the rebuild (replica_rebuild_keep_settings;
    else from the primary, which accepts TLS here). The replication account requires SSL, so
    the preflight's login check and the replication itself must both use it."""
    hosts = make_hosts('primary', 'replica')
    primary, replica = hosts['primary'], hosts['replica']
    scenarios.enable_tls(primary, [replica], str(tmp_path))
    scenarios.create_replication_user(primary, repl_password)
    primary.sql("ALTER USER 'repl'@'%' REQUIRE SSL")
    scenarios.load_data(primary, rows=300)
    inv = inventory(primary, [replica])
    extra = {'replica_rebuild_replication_user': 'repl',
             'replica_rebuild_replication_password': repl_password,
             'replica_rebuild_primary_ssl': True,
             'replica_rebuild_primary_ssl_ca': '/etc/mysql/ssl/ca.pem',
             'replica_rebuild_primary_ssl_verify_server_cert': True}
    proc = run_playbook(inv, PLAYBOOK, extra)
    assert proc.returncode == 0, proc.stdout[-6000:]
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), s
    assert s['Master_SSL_Allowed'] == 'Yes' and s['Master_SSL_Verify_Server_Cert'] == 'Yes'
    assert s['Master_SSL_CA_File'] == '/etc/mysql/ssl/ca.pem'
    primary.sql('INSERT INTO labdb.t (id) VALUES (900001)')
    scenarios.wait_caught_up(primary, replica)
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.t WHERE id = 900001') == '1'
    # Without TLS, the same account is refused at the preflight, before anything changes.
    pid = mariadbd_pid(replica)
    plain = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_primary_ssl=False,
                                             replica_rebuild_force=True))
    assert plain.returncode != 0 and 'cannot log in to the primary' in plain.stdout, \
        plain.stdout[-5000:]
    assert mariadbd_pid(replica) == pid
    # A wrong password: refused at the preflight too, the reason given, no password shown.
    wrong = 'Wrong' + repl_password[::-1]
    with SecretsWatch([wrong]) as watch:
        bad = run_playbook(inv, PLAYBOOK, dict(extra, replica_rebuild_force=True,
                                               replica_rebuild_replication_password=wrong),
                           verbosity=3)
    assert bad.returncode != 0 and 'cannot log in to the primary' in bad.stdout, \
        bad.stdout[-5000:]
    assert 'Access denied' in bad.stdout, bad.stdout[-5000:]
    assert watch.leaks == [] and wrong not in bad.stdout + bad.stderr
    assert mariadbd_pid(replica) == pid
    # With the defaults (replica_rebuild_primary_ssl: auto, no CA, verify auto): the replica
    # keeps its own TLS settings, those the first run gave it (CA, certificate check).
    auto = run_playbook(inv, PLAYBOOK, {
        'replica_rebuild_replication_user': 'repl', 'replica_rebuild_force': True,
        'replica_rebuild_replication_password': repl_password})
    assert auto.returncode == 0, auto.stdout[-6000:]
    assert mariadbd_pid(replica) != pid
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running'], s['Master_SSL_Allowed'],
            s['Master_SSL_Verify_Server_Cert'], s['Master_SSL_CA_File']) == (
                'Yes', 'Yes', 'Yes', 'Yes', '/etc/mysql/ssl/ca.pem'), s
