# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_pos: the replicas replicate by binlog file and position, at the primary's own."""

import time

import labstate

testinfra_hosts = labstate.rebuilt_names()


def test_file_and_position_follow_the_primary(host):
    (file_name, position) = labstate.sql(labstate.primary(), 'SHOW MASTER STATUS')[0][:2]
    deadline = time.time() + 60
    status = labstate.assert_replicating(host)
    while time.time() < deadline and status['Exec_Master_Log_Pos'] != position:
        time.sleep(1)
        status = labstate.slave_status(host)
    assert status['Using_Gtid'] == 'No'
    assert (status['Master_Log_File'], status['Read_Master_Log_Pos']) == (file_name, position)
    assert (status['Relay_Master_Log_File'], status['Exec_Master_Log_Pos']) == (file_name, position)
