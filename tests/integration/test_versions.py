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
        proc = run_playbook(inv, PLAYBOOK, {
            'replica_rebuild_replication_user': scenarios.REPL_USER,
            'replica_rebuild_replication_password': repl_password})
        time.sleep(1)  # a few rows after the rebuild too
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert load.errors == [] and load.inserted > 20, (load.inserted, load.errors[:3])
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
