# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""make demo: a lab with one primary and three replicas, data, the replicas broken three
ways, healed in one run of the playbook from ONE backup of the primary (the fleet mode: the
backup streams through the three replicas in a chain), each replica then verified.

Always starts from fresh lab hosts (demo-primary, demo-replica1..3) and leaves them running
for you to look at: `python3 tests/lab/lab.py exec demo-replica1 -- bash`, `make lab-down`
to remove them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'tests', 'lab'))

import ansible_run  # noqa: E402
import scenarios  # noqa: E402
from lab import Lab  # noqa: E402

PRIMARY, REPLICAS = 'demo-primary', ('demo-replica1', 'demo-replica2', 'demo-replica3')
GENERAL_LOG = '/var/log/mysql/general.log'
FIELDS = ('Slave_IO_Running', 'Slave_SQL_Running', 'Last_IO_Errno', 'Last_SQL_Errno')


def status_table(lab, title):
    print('\n%s' % title)
    print('%-14s %-4s %-4s %-8s %-8s %-22s %s' % (
        'replica', 'IO', 'SQL', 'IO err', 'SQL err', 'gtid_current_pos', 'last error'))
    for name in REPLICAS:
        h = lab.host(name)
        s = h.slave_status()
        err = s.get('Last_IO_Error') or s.get('Last_SQL_Error') or ''
        print('%-14s %-4s %-4s %-8s %-8s %-22s %s' % (
            name, s.get('Slave_IO_Running'), s.get('Slave_SQL_Running'), s.get('Last_IO_Errno'),
            s.get('Last_SQL_Errno'), h.sql_value('SELECT @@GLOBAL.gtid_current_pos'),
            err[:90]))
    p = lab.host(PRIMARY)
    print('%-14s gtid_binlog_pos %s, %s rows in labdb.t' % (
        PRIMARY, p.sql_value('SELECT @@GLOBAL.gtid_binlog_pos'),
        p.sql_value('SELECT COUNT(*) FROM labdb.t')))


def main():
    lab = Lab()
    started = time.time()
    print('Building the lab: %s and %s (fresh hosts that boot systemd; MariaDB runs as '
          'Debian\'s mariadb.service)' % (PRIMARY, ', '.join(REPLICAS)))
    for name in (PRIMARY,) + REPLICAS:
        lab.destroy(name)
    primary = lab.create(PRIMARY, systemd=True)
    replicas = [lab.create(n, systemd=True) for n in REPLICAS]
    for h in [primary] + replicas:
        print('  %-14s %s  server_id=%s' % (h.name, h.ip, h.server_id))
    password = os.urandom(9).hex()
    print('Loading data on the primary and starting GTID replication')
    scenarios.setup_replication(primary, replicas, password, rows=20000)
    status_table(lab, 'Healthy:')
    print('\nBreaking the replicas the ways production does:')
    print('  %s: the primary purged the binlogs it still needed (IO error 1236)' % REPLICAS[0])
    scenarios.break_1236(primary, replicas[0], how='purge')
    print('  %s: a row written on the replica by hand, then on the primary (SQL error 1062)'
          % REPLICAS[1])
    scenarios.break_1062(primary, replicas[1])
    print('  %s: a transaction written on the replica: an errant GTID the primary never had'
          % REPLICAS[2])
    scenarios.break_errant(primary, replicas[2])
    status_table(lab, 'Broken:')
    # The primary's own record of the backups taken (mariadb-backup's BACKUP STAGE START).
    primary.sql("SET GLOBAL general_log_file = '%s'; SET GLOBAL general_log = ON" % GENERAL_LOG)
    print('\nHealing them from one backup (the default): ansible-playbook '
          'playbooks/rebuild_replica.yml\n', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        inventory = ansible_run.write_inventory(lab, os.path.join(tmp, 'inventory.json'),
                                                PRIMARY, REPLICAS)
        secrets = os.path.join(tmp, 'secrets.json')
        with os.fdopen(os.open(secrets, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
            json.dump({'replica_rebuild_replication_user': scenarios.REPL_USER,
                       'replica_rebuild_replication_password': password}, f)
        rc = subprocess.call([ansible_run.bin_path('ansible-playbook'), '-i', inventory,
                              os.path.join(ansible_run.REPO, 'playbooks', 'rebuild_replica.yml'),
                              '-e', '@' + secrets], env=ansible_run.ansible_env(),
                             cwd=ansible_run.REPO)
    primary.sql('SET GLOBAL general_log = OFF')
    backups = primary.run(['grep', '-c', 'BACKUP STAGE START', GENERAL_LOG], check=False)
    if rc != 0:
        raise SystemExit('the rebuild playbook failed (exit code %d)' % rc)
    for name in REPLICAS:
        scenarios.wait_caught_up(primary, lab.host(name))
    status_table(lab, 'Healed:')
    print('Backups the primary took for the %d replicas (its general log): %s'
          % (len(REPLICAS), backups.stdout.strip()))
    print('\nLook around: python3 tests/lab/lab.py exec %s -- bash; remove the lab: make '
          'lab-down.\n(%.0f s)' % (REPLICAS[0], time.time() - started))


if __name__ == '__main__':
    main()
