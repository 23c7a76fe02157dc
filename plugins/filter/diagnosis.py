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
from ansible_collections.reseed.mariadb.plugins.module_utils import gtid as gtidlib
from ansible_collections.reseed.mariadb.plugins.module_utils import replica_status as rs


def diagnosis(replica, primary_gtid_binlog_state, **rules):
    """The replica's replication_info result, its diagnosis made again against
    primary_gtid_binlog_state (with errant_gtids); a server that is down as it was."""
    if not isinstance(replica, dict):
        raise AnsibleFilterError('diagnosis: expects the result of reseed.mariadb.replication_info')
    out = dict(replica)
    if replica.get('state') == 'down' or 'gtid_binlog_state' not in replica:
        return out
    try:
        errant = gtidlib.errant(replica['gtid_binlog_state'], primary_gtid_binlog_state or '')
    except gtidlib.GtidError as e:
        raise AnsibleFilterError('diagnosis: the primary\'s gtid_binlog_state cannot be read as '
                                 'GTIDs: %s' % e)
    state, needs, reason, connections = rs.diagnose_server(
        replica.get('connections') or [], errant, **rules)
    out.update(state=state, needs_rebuild=needs, reason=reason, connections=connections,
               errant_gtids=['%d-%d-%d' % g for g in errant])
    return out


class FilterModule(object):

    def filters(self):
        return {'diagnosis': diagnosis}
