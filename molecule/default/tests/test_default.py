# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""default: what each breakage did is undone. The checks every rebuilt replica passes
(threads, data, old datadir, transfer key) are in molecule/shared/tests/test_rebuilt.py."""

import labstate


def test_the_1236_replica_has_what_the_purged_binlog_held():
    """prepare wrote these on the primary while the replica was stopped, then purged them."""
    labstate.assert_breakage_undone('1236')


def test_the_errant_write_is_gone():
    labstate.assert_breakage_undone('errant')
