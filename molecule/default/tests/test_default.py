# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""After converge: both replication threads run on every replica and new rows arrive."""

import os
import time
import uuid

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ['MOLECULE_INVENTORY_FILE']
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = RUNNER.get_hosts('mariadb_replicas')


def sql(host, query):
    return host.check_output('mariadb -N -B -e "%s"' % query)


def slave_status(host):
    out = host.check_output('mariadb -B -e "SHOW SLAVE STATUS"').splitlines()
    return dict(zip(out[0].split('\t'), out[1].split('\t'))) if len(out) == 2 else {}


def test_replication_threads_run(host):
    deadline = time.time() + 60
    status = slave_status(host)
    while time.time() < deadline and not (status.get('Slave_IO_Running') == 'Yes'
                                          and status.get('Slave_SQL_Running') == 'Yes'):
        time.sleep(1)
        status = slave_status(host)
    assert status.get('Slave_IO_Running') == 'Yes', status.get('Last_IO_Error')
    assert status.get('Slave_SQL_Running') == 'Yes', status.get('Last_SQL_Error')
    assert status.get('Using_Gtid') == 'Slave_Pos'


def test_row_written_on_primary_arrives(host):
    primary = testinfra.get_host('ansible://%s?ansible_inventory=%s'
                                 % (RUNNER.get_hosts('mariadb_primary')[0], INVENTORY))
    marker = uuid.uuid4().hex[:16]
    sql(primary, "CREATE TABLE IF NOT EXISTS moldb.markers (m VARCHAR(32) PRIMARY KEY);"
                 "INSERT INTO moldb.markers VALUES ('%s')" % marker)
    pos = sql(primary, 'SELECT @@GLOBAL.gtid_binlog_pos')
    assert sql(host, "SELECT MASTER_GTID_WAIT('%s', 30)" % pos) == '0'
    assert sql(host, "SELECT COUNT(*) FROM moldb.markers WHERE m='%s'" % marker) == '1'
    assert sql(host, 'SELECT COUNT(*) FROM moldb.t') == '100'
