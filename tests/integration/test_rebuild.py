# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole rebuild through playbooks/rebuild_replica.yml, on real lab hosts."""

from __future__ import annotations

import os

import scenarios
from ansible_run import REPO, run_playbook
from faults import LoadGenerator
from secrets_watch import SecretsWatch

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')


def mariadbd_pid(host):
    return host.run('pidof mariadbd').stdout.strip()


# The broken replica healed from the healthy one (source auto), the status playbook, check
# mode and an idempotent rerun, while the primary takes writes, on production-shaped hosts:
# test_hardened.py::test_source_auto_on_production_shaped_hosts.


def test_rebuild_replicates_over_tls_when_asked(make_hosts, inventory, repl_password, tmp_path):
    """The copy carries no replication settings: TLS comes from the role's variables, or, with
    their defaults, from what the replica had before the rebuild (replica_rebuild_keep_settings;
    else from the primary, which accepts TLS here). The replication account requires SSL, so
    the preflight's login check and the replication itself must both use it. Both rebuilds
    run while the primary takes writes, every row of which reaches the replica."""
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
    with LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        proc = run_playbook(inv, PLAYBOOK, extra)
    assert proc.returncode == 0, proc.stdout[-6000:]
    writer.check_arrived(replica)
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
    with LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        auto = run_playbook(inv, PLAYBOOK, {
            'replica_rebuild_replication_user': 'repl', 'replica_rebuild_force': True,
            'replica_rebuild_replication_password': repl_password})
    assert auto.returncode == 0, auto.stdout[-6000:]
    writer.check_arrived(replica)
    assert mariadbd_pid(replica) != pid
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running'], s['Master_SSL_Allowed'],
            s['Master_SSL_Verify_Server_Cert'], s['Master_SSL_CA_File']) == (
                'Yes', 'Yes', 'Yes', 'Yes', '/etc/mysql/ssl/ca.pem'), s
