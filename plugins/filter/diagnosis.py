# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reseed.mariadb.diagnosis: a replica's diagnosis against a primary state read after it.

Errant GTIDs are those the replica holds and the primary does not. That comparison is only
sound when the primary's state was read after the replica's: a primary read first misses
every transaction it committed between the two reads, and the replica (which received
them) looks ahead of it. replication_info runs on one host, so it cannot read the two in
that order by itself; the role reads the replica, then the primary, and this filter, on the
controller, diagnoses from both. The rule is the one replication_info applies
(module_utils/replica_status.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.reseed.mariadb.plugins.module_utils import binlog
from ansible_collections.reseed.mariadb.plugins.module_utils import gtid as gtidlib
from ansible_collections.reseed.mariadb.plugins.module_utils import replica_status as rs


def diagnosis(replica, primary_gtid_binlog_state, fingerprints=None, **rules):
    """The replica's replication_info result, its diagnosis made again against the primary
    read after it (with errant_gtids); a server that is down as it was.

    primary_gtid_binlog_state: the primary's replication_info result (or only its
    gtid_binlog_state). With its
    binlog_restarts (and fingerprints of the replica's last GTIDs), and fingerprints, the
    replica's replication_info result for the same GTIDs, the transactions both hold under
    the same GTID are compared too (same_gtid in the result): another transaction under the
    same number is `diverged`."""
    if not isinstance(replica, dict):
        raise AnsibleFilterError('diagnosis: expects the result of reseed.mariadb.replication_info')
    out = dict(replica)
    if replica.get('state') == 'down' or 'gtid_binlog_state' not in replica:
        return out
    primary = primary_gtid_binlog_state
    primary_info = primary if isinstance(primary, dict) else {}
    primary_state = primary_info.get('gtid_binlog_state') if primary_info else primary
    try:
        errant = gtidlib.errant(replica['gtid_binlog_state'], primary_state or '')
    except gtidlib.GtidError as e:
        raise AnsibleFilterError('diagnosis: the primary\'s gtid_binlog_state cannot be read as '
                                 'GTIDs: %s' % e)
    divergence = None
    if isinstance(fingerprints, dict) and 'fingerprints' in fingerprints:
        compared = binlog.same_gtid(primary_info.get('binlog_restarts'),
                                    primary_info.get('fingerprints'),
                                    fingerprints['fingerprints'],
                                    fingerprints.get('log_slave_updates', True))
        out['same_gtid'] = compared
        divergence = compared['reason']
    state, needs, reason, connections = rs.diagnose_server(
        replica.get('connections') or [], errant, divergence=divergence, **rules)
    if out.get('same_gtid', {}).get('unchecked') and not divergence:
        reason += ('; the same-GTID check could not be made (%s): turn on log_slave_updates '
                   'on the replica, or compare the data (playbooks/replica_status.yml with '
                   'replica_status_checksum=true, docs/VERIFY.md)'
                   % out['same_gtid']['unchecked'][0])
    out.update(state=state, needs_rebuild=needs, reason=reason, connections=connections,
               errant_gtids=['%d-%d-%d' % g for g in errant])
    return out


class FilterModule(object):

    def filters(self):
        return {'diagnosis': diagnosis}
