# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB GTID lists (domain-server-sequence, comma separated) and their comparison.

Two shapes of list matter:
- a position (gtid_slave_pos, gtid_binlog_pos, gtid_current_pos): one GTID per domain;
- a binlog state (gtid_binlog_state): the last GTID of every (domain, server) pair.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

GTID = re.compile(r'^(\d+)-(\d+)-(\d+)$')
MAX = {'domain': 2 ** 32 - 1, 'server': 2 ** 32 - 1, 'seq': 2 ** 64 - 1}


class GtidError(ValueError):
    pass


def parse(text):
    """'0-1-13, 5-1-1' -> [(0, 1, 13), (5, 1, 1)]; '' or None -> []."""
    out = []
    for item in (text or '').replace('\n', ',').split(','):
        item = item.strip()
        if not item:
            continue
        found = GTID.match(item)
        if not found:
            raise GtidError('%r is not a GTID (domain-server-sequence)' % item)
        gtid = tuple(int(x) for x in found.groups())
        for value, (name, limit) in zip(gtid, (('domain', MAX['domain']),
                                               ('server', MAX['server']),
                                               ('seq', MAX['seq']))):
            if value > limit:
                raise GtidError('%r: %s %d is out of range' % (item, name, value))
        out.append(gtid)
    return out


def format_list(gtids):
    """[(0, 1, 13), (5, 1, 1)] -> '0-1-13,5-1-1', sorted by domain then server."""
    return ','.join('%d-%d-%d' % g for g in sorted(gtids))


def position(text):
    """A position as {domain: (server, seq)}; two GTIDs of one domain is an error."""
    out = {}
    for domain, server, seq in parse(text):
        if domain in out:
            raise GtidError('%r lists domain %d twice: a position has one GTID per domain'
                            % (text, domain))
        out[domain] = (server, seq)
    return out


def state(text):
    """A binlog state as {(domain, server): seq}, keeping the highest sequence."""
    out = {}
    for domain, server, seq in parse(text):
        out[(domain, server)] = max(seq, out.get((domain, server), 0))
    return out


def errant(replica_state, primary_state):
    """GTIDs the replica holds that the primary's binlog state does not cover.

    Both arguments are gtid_binlog_state texts. A replica GTID D-S-N is covered when the
    primary has logged (D, S) up to at least N. What is left was written on the replica
    only, or is history the primary lost (its binlog reset, or transactions it lost in a
    crash that the replica had received).
    """
    primary = state(primary_state)
    return sorted((d, s, n) for (d, s), n in state(replica_state).items()
                  if primary.get((d, s), -1) < n)


def reached(current, target):
    """Whether position `current` is at or past `target` in every domain of target (same
    server's sequences compare; the sequence decides under gtid_strict_mode)."""
    cur, tgt = position(current), position(target)
    return all(domain in cur and cur[domain][1] >= seq for domain, (server, seq) in tgt.items())
