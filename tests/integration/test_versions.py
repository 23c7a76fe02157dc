# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB 11.8 (Debian 13 lab hosts, tests/lab/release.py): a real 11.8 replica, broken by
error 1236, healed by the playbook with its defaults while the primary takes writes.
docs/VERSIONS.md records what differs from 10.11."""

from __future__ import annotations

import os
import time

import scenarios
from ansible_run import REPO, run_playbook
from faults import LoadGenerator

PLAYBOOK = os.path.join(REPO, 'playbooks', 'rebuild_replica.yml')


def test_11_8_replica_broken_by_1236_rebuilt_while_primary_writes(make_hosts, inventory,
                                                                  repl_password):
    hosts = make_hosts('primary', 'replica',
                       release={'primary': 'trixie', 'replica': 'trixie'})
    primary, replica = hosts['primary'], hosts['replica']
    for h in (primary, replica):
        assert h.sql_value('SELECT @@version').startswith('11.8.'), h.name
    scenarios.setup_replication(primary, [replica], repl_password, rows=3000)
    scenarios.break_1236(primary, replica)
    pid = replica.run('pidof mariadbd').stdout.strip()
    inv = inventory(primary, [replica])
    with LoadGenerator(primary) as load:
        time.sleep(1)  # rows before the rebuild starts
        run_started = time.time()
        proc = run_playbook(inv, PLAYBOOK, {
            'replica_rebuild_replication_user': scenarios.REPL_USER,
            'replica_rebuild_replication_password': repl_password})
        run_ended = time.time()
        time.sleep(1)  # a few rows after the rebuild too
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert load.errors == [] and load.spanned(run_started, run_ended), (
        load.inserted, load.errors[:3])
    assert 'tables equal at' in proc.stdout, proc.stdout[-4000:]
    assert replica.run('pidof mariadbd').stdout.strip() != pid  # a new server, the copy's
    s = replica.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        scenarios.threads(s)
    scenarios.wait_caught_up(primary, replica)
    for query in ('SELECT COUNT(*), SUM(n) FROM labdb.t', 'SELECT COUNT(*) FROM labdb.log',
                  'SELECT COUNT(*), SUM(id) FROM labdb.load'):
        assert replica.sql(query) == primary.sql(query), query
    assert replica.sql_value('SELECT COUNT(*) FROM labdb.load') == str(load.inserted)
    assert replica.sql_value('SELECT @@version').startswith('11.8.')


def test_mixed_versions_newer_replica_rebuilt_older_one_refused(make_hosts, inventory,
                                                                repl_password):
    """A rolling upgrade: a 10.11 primary's 11.8 replica is rebuilt (11.8's mariadb-backup
    prepares the 10.11 copy, the 11.8 server upgrades it in place); an 11.8 primary's 10.11
    replica is refused before anything changes, both versions named (MariaDB does not move
    data back to an older series)."""
    hosts = make_hosts('old', 'new', 'newp', 'oldr', release={'new': 'trixie', 'newp': 'trixie'})
    old, new, newp, oldr = hosts['old'], hosts['new'], hosts['newp'], hosts['oldr']
    extra = {'replica_rebuild_replication_user': scenarios.REPL_USER,
             'replica_rebuild_replication_password': repl_password}
    # 10.11 primary -> 11.8 replica, broken by 1236: rebuilt and verified.
    scenarios.setup_replication(old, [new], repl_password, rows=2000)
    scenarios.break_1236(old, new)
    proc = run_playbook(inventory(old, [new]), PLAYBOOK, extra)
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert 'tables equal at' in proc.stdout
    s = new.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running']) == ('Yes', 'Yes'), \
        scenarios.threads(s)
    assert new.sql_value('SELECT @@version').startswith('11.8.')
    scenarios.wait_caught_up(old, new)
    assert new.sql('SELECT COUNT(*), SUM(n) FROM labdb.t') == old.sql(
        'SELECT COUNT(*), SUM(n) FROM labdb.t')
    # 11.8 primary -> 10.11 replica: refused in the preflight, nothing changed on it.
    scenarios.setup_replication(newp, [oldr], repl_password, rows=500)
    pid = oldr.run('pidof mariadbd').stdout.strip()
    proc = run_playbook(inventory(newp, [oldr]), PLAYBOOK,
                        dict(extra, replica_rebuild_force=True))
    assert proc.returncode != 0
    fatal = [line for line in proc.stdout.splitlines() if line.startswith('fatal: [%s]'
                                                                          % oldr.name)]
    assert fatal and 'MariaDB 10.11.' in fatal[-1] and 'MariaDB 11.8.' in fatal[-1] and \
        'upgrade this replica to 11.8 first' in fatal[-1] and 'Nothing was swapped' in \
        fatal[-1], fatal
    assert oldr.run('pidof mariadbd').stdout.strip() == pid
    assert oldr.run('test -e /var/lib/mysql.reseed-staging', check=False).returncode == 1
    assert newp.run('pidof mariadb-backup', check=False).returncode == 1
