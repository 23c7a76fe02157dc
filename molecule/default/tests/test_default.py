# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""default: what each breakage did is undone. The checks every rebuilt replica passes
(threads, data, old datadir, transfer key) are in molecule/shared/tests/test_rebuilt.py."""

import labstate


def count(host, where):
    return labstate.sql_value(host, 'SELECT COUNT(*) FROM labdb.log WHERE ' + where)


def test_the_1236_replica_has_what_the_purged_binlog_held():
    """prepare wrote these on the primary while the replica was stopped, then purged them."""
    (name,) = labstate.RUNNER.get_hosts('broken_1236')
    host = labstate.get(name)
    labstate.wait_caught_up(host)
    assert count(host, "msg IN ('after replica stopped', 'in the new binlog')") == '2'


def test_the_errant_write_is_gone():
    (name,) = labstate.RUNNER.get_hosts('broken_errant')
    host = labstate.get(name)
    assert count(host, "msg = 'errant write on the replica'") == '0'
    assert count(labstate.primary(), "msg = 'errant write on the replica'") == '0'
