# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunks of a table by its primary key, for a verification in short snapshots.

A table is cut into ranges of its primary key: the first chunk has no lower bound, the last
no upper one, and each is (after its lower bound, up to and with its upper one), so that
every row of either server falls in exactly one chunk, whatever rows one side lacks or has
more. The primary finds each upper bound (the key a chunk's number of rows further on)
inside the snapshot that checksums the chunk; the replica checksums the same ranges.
Pure functions: statements and their arguments, chunk sizes, and bounds passed through
JSON (the fleet's phases hand them over through Ansible).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import decimal
import time

from ansible_collections.reseed.mariadb.plugins.module_utils.checksum import (
    COLUMNS_SQL, checksum_sql, quote_ident, row_digests_sql, table_name)
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError

PRIMARY_KEY_SQL = ("SELECT COLUMN_NAME AS col FROM information_schema.STATISTICS "
                   "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' "
                   "ORDER BY SEQ_IN_INDEX")
MIN_ROWS = 1
FIRST_ROWS = 10000  # about 25 ms of a checksum of narrow rows on a lab host
MAX_ROWS = 1000000


def _compare(keys, values, last_op):
    """(keys) > (values) (last_op '>') or (keys) <= (values) (last_op '<='), expanded the way
    the optimizer takes as a range on the key's first column: k1 > v1 OR (k1 = v1 AND ...)."""
    first, rest = quote_ident(keys[0]), keys[1:]
    if not rest:
        return '%s %s %%s' % (first, last_op), [values[0]]
    inner, args = _compare(rest, values[1:], last_op)
    strict = '<' if last_op == '<=' else '>'
    return ('(%s %s %%s OR (%s = %%s AND %s))' % (first, strict, first, inner),
            [values[0], values[0]] + args)


def chunk_where(keys, lower, upper):
    """(sql, args) of the rows of a chunk: after lower (exclusive) and up to upper
    (inclusive); either None for an open end. 'TRUE' for the whole table."""
    parts, args = [], []
    if lower is not None:
        sql, more = _compare(keys, lower, '>')
        parts.append(sql)
        args += more
    if upper is not None:
        sql, more = _compare(keys, upper, '<=')
        parts.append(sql)
        args += more
    return (' AND '.join(parts) or 'TRUE'), args


def boundary_sql(schema, table, keys, lower, rows):
    """(sql, args): the key of the chunk's last row, `rows` rows after lower; no row when
    fewer are left (the chunk is the table's last, open-ended)."""
    where, args = chunk_where(keys, lower, None)
    columns = ', '.join(quote_ident(k) for k in keys)
    return ('SELECT %s FROM %s FORCE INDEX (PRIMARY) WHERE %s ORDER BY %s LIMIT 1 OFFSET %d'
            % (columns, table_name(schema, table), where, columns, max(int(rows), 1) - 1), args)


def next_rows(rows, seconds, target):
    """The next chunk's number of rows: as many as `target` seconds take at the rate the
    last chunk went (rows in seconds), at most double or half of it at a time."""
    if seconds <= 0:
        wanted = rows * 2
    else:
        wanted = rows * target / seconds
    wanted = min(max(wanted, rows / 2.0), rows * 2.0)
    return int(min(max(wanted, MIN_ROWS), MAX_ROWS))


def encode(values):
    """A key's values as JSON can carry them: numbers and text as they are, bytes as
    {'b64': ...}, dates, times and decimals as their text (the server reads it back)."""
    if values is None:
        return None
    out = []
    for v in values:
        if isinstance(v, (bytes, bytearray)):
            out.append({'b64': base64.b64encode(bytes(v)).decode('ascii')})
        elif isinstance(v, datetime.timedelta):  # a TIME: [-]H:MM:SS.ffffff, hours past 24
            micros = abs(v.days * 86400000000 + v.seconds * 1000000 + v.microseconds)
            out.append('%s%d:%02d:%02d.%06d' % ('-' if v < datetime.timedelta(0) else '',
                                                micros // 3600000000, micros // 60000000 % 60,
                                                micros // 1000000 % 60, micros % 1000000))
        elif isinstance(v, (datetime.date, datetime.time, decimal.Decimal)):
            out.append(str(v))
        else:
            out.append(v)
    return out


def decode(values):
    """encode()'s output back to statement arguments. Raises ValueError on anything else."""
    if values is None:
        return None
    if not isinstance(values, (list, tuple)):
        raise ValueError('a key bound is a list of values, not %r' % (values,))
    out = []
    for v in values:
        if isinstance(v, dict):
            try:
                out.append(base64.b64decode(v['b64']))
            except (KeyError, TypeError, ValueError):
                raise ValueError('not a key value: %r' % (v,))
        else:
            out.append(v)
    return out


# MariaDB's errors that a chunk meets under live DDL, or at its time bound.
STATEMENT_TIMEOUT = 1969  # max_statement_time exceeded
TABLE_DEF_CHANGED = 1412  # the table was altered after the snapshot was taken
NO_SUCH_TABLE = 1146
UNKNOWN_COLUMN = 1054
RETRIES = 3  # rounds a chunk is tried again in after DDL, before its table is skipped


def guarded(sql, seconds):
    """The statement with a time bound (SET STATEMENT max_statement_time), or as it is for
    none (seconds None)."""
    if seconds is None:
        return sql
    return 'SET STATEMENT max_statement_time = %.3f FOR %s' % (max(seconds, 0.001), sql)


def table_meta(conn, checkable):
    """{'db.tbl': {'db', 'tbl', 'columns', 'key'}} of the checkable tables (checksum's
    split_tables), their primary key's columns in `key` ([] for none)."""
    meta = {}
    for key, (db, tbl) in sorted(checkable.items()):
        meta[key] = dict(db=db, tbl=tbl, columns=[r['col'] for r in conn.query(COLUMNS_SQL, [db, tbl])],
                         key=[r['col'] for r in conn.query(PRIMARY_KEY_SQL, [db, tbl])])
    return meta


class PrimaryPass(object):
    """The primary's chunks, round by round. A round is one snapshot (opened by `open_round`,
    which returns its position) that checksums chunks until it has lasted `round_seconds`;
    no statement in it may run past `max_snapshot_seconds` from its start
    (max_statement_time), so that no read view lives longer. A chunk that would is given
    up, and tried again smaller in the next round. Each chunk aims at `chunk_seconds`.
    A table without a primary key is one chunk, in a round of its own (unchunked, with why).
    With `whole` every table is one chunk, all in one round (the single snapshot of old).
    `max_rows_per_second` (0: none) spaces the rounds out. The connection's errors are
    raised as they come (DbError), but for DDL met by a chunk, retried, then skipped."""

    def __init__(self, conn, meta, open_round, chunk_seconds=0.5, max_snapshot_seconds=5.0,
                 max_rows_per_second=0, whole=False, first_rows=FIRST_ROWS):
        self.conn, self.meta, self.open_round = conn, meta, open_round
        self.first_rows = first_rows
        self.chunk_seconds = float(chunk_seconds)
        self.round_seconds = 2 * self.chunk_seconds
        self.max_snapshot = float(max_snapshot_seconds)
        self.rate = max_rows_per_second
        self.whole = whole
        self.unchunked = {}  # 'db.tbl' -> why it was checksummed whole
        self.skipped = {}  # 'db.tbl' -> why it was not compared (dropped or altered meanwhile)
        self.longest = 0.0  # the longest snapshot, seconds
        self.rows = 0
        self.started = None

    def rounds(self):
        """Yield each round: its position (open_round's dict) with `chunks`, a list of
        (table, lower, upper, rows, checksum), and `seconds`, how long its snapshot lived."""
        todo = [dict(table=t, lower=None, rows=self.first_rows, tries=0) for t in sorted(self.meta)]
        self.started = time.time()
        first = True
        while todo or first:  # one round at least: its position is the check's, with no table
            first = False
            self.throttle()
            position = self.open_round()
            opened = time.time()
            chunks = []
            try:
                self.fill(todo, chunks, opened)
            finally:
                self.conn.query('COMMIT')
                seconds = time.time() - opened
                self.longest = max(self.longest, seconds)
            yield dict(position, chunks=chunks, seconds=round(seconds, 3))

    def throttle(self):
        if self.rate and self.rows:
            ahead = self.rows / float(self.rate) - (time.time() - self.started)
            if ahead > 0:
                time.sleep(ahead)

    def fill(self, todo, chunks, opened):
        while todo:
            item = todo[0]
            meta = self.meta[item['table']]
            elapsed = time.time() - opened
            whole = self.whole or not meta['key']
            if chunks and not self.whole and (whole or elapsed >= self.round_seconds):
                return  # a table without a key starts a round of its own
            left = None if whole or (not chunks and item['rows'] <= MIN_ROWS) else \
                self.max_snapshot - elapsed
            if left is not None and left < 0.05:
                return
            try:
                chunk, seconds = self.chunk(meta, item, whole, left)
            except DbError as e:
                if e.code == STATEMENT_TIMEOUT:
                    item['rows'] = max(MIN_ROWS, item['rows'] // 4)
                    return  # this snapshot is spent: the chunk again, smaller, in the next
                if e.code in (TABLE_DEF_CHANGED, UNKNOWN_COLUMN) and item['tries'] < RETRIES:
                    item['tries'] += 1
                    self.meta[item['table']] = self.reread(meta)
                    return
                if e.code in (NO_SUCH_TABLE, TABLE_DEF_CHANGED, UNKNOWN_COLUMN):
                    self.skipped[item['table']] = ('dropped or altered on the primary during '
                                                   'the check (error %s)' % e.code)
                    todo.pop(0)
                    continue
                raise
            chunks.append(chunk)
            self.rows += chunk[3]
            if whole:
                if not self.whole:
                    self.unchunked[item['table']] = (
                        'no primary key: checksummed whole, in one snapshot of %.1f s' % seconds)
                todo.pop(0)
                continue
            item['rows'] = next_rows(item['rows'], seconds, self.chunk_seconds)
            if chunk[2] is None:
                todo.pop(0)
            else:
                item['lower'] = chunk[2]

    def reread(self, meta):
        found = table_meta(self.conn, {'x': (meta['db'], meta['tbl'])})
        return found['x']

    def chunk(self, meta, item, whole, left):
        """((table, lower, upper, rows, checksum), seconds) of the item's next chunk."""
        started = time.time()
        db, tbl, key = meta['db'], meta['tbl'], meta['key']
        lower = upper = None
        if not whole:
            lower = item['lower']
            sql, args = boundary_sql(db, tbl, key, lower, item['rows'])
            found = self.conn.query(guarded(sql, left), args)
            upper = [found[0][k] for k in key] if found else None
            if left is not None:
                left -= time.time() - started
        sql, args = chunk_sql(db, tbl, meta['columns'], key, lower, upper)
        row = self.conn.query(guarded(sql, left), args)[0]
        return ((item['table'], lower, upper, int(row['row_count']), int(row['checksum'])),
                time.time() - started)


class ReplicaWalk(object):
    """The replica's side: for each round of the primary, `reach(round)` runs replication
    up to the round's position and stops it there; the round's chunks are checksummed on the
    replica, by the same key ranges, and compared. Replication is held from the moment it
    stopped at a round until the next round's start: `longest_hold` seconds at most.
    tables: the primary's {'db.tbl': {'db', 'tbl', 'key'}}. list_tables(), called at the
    first round's position (the primary listed its tables just before that round), gives
    the replica's own list, in `listed`."""

    def __init__(self, conn, reach, tables, list_tables=None):
        self.conn, self.reach, self.tables = conn, reach, tables
        self.list_tables = list_tables
        self.listed = None
        self.columns = {}  # 'db.tbl' -> the replica's own columns ([]: it lacks the table)
        self.primary_sums, self.replica_sums = {}, {}  # 'db.tbl' -> (rows, checksum)
        self.mismatched = []  # the chunks that differ
        self.bounds = []  # their (lower, upper), unencoded
        self.chunks = self.rounds = 0
        self.longest_hold = 0.0
        self.position = None  # the last round's

    def walk(self, rounds, held_since=None):
        """Compare every round; held_since: when replication was stopped before the first."""
        for rnd in rounds:
            if held_since is not None:
                self.longest_hold = max(self.longest_hold, time.time() - held_since)
            self.reach(rnd)
            held_since = time.time()
            if self.listed is None and self.list_tables is not None:
                self.listed = self.list_tables()
            for chunk in rnd['chunks']:
                self.compare(chunk, rnd)
            self.rounds += 1
            self.position = rnd
        if held_since is not None:
            self.longest_hold = max(self.longest_hold, time.time() - held_since)

    def compare(self, chunk, rnd):
        table, lower, upper, rows, checksum = chunk
        fold(self.primary_sums, table, rows, checksum)
        self.chunks += 1
        meta = self.tables[table]
        if table not in self.columns:
            self.columns[table] = [r['col'] for r in self.conn.query(
                COLUMNS_SQL, [meta['db'], meta['tbl']])]
        if not self.columns[table]:
            return  # missing on the replica: the comparison of the tables says so
        sql, args = chunk_sql(meta['db'], meta['tbl'], self.columns[table], meta['key'],
                              lower, upper)
        row = self.conn.query(sql, args)[0]
        got = (int(row['row_count']), int(row['checksum']))
        fold(self.replica_sums, table, *got)
        if got != (int(rows), int(checksum)):
            self.mismatched.append(dict(table=table, lower=encode(lower), upper=encode(upper),
                                        primary_rows=int(rows), replica_rows=got[0],
                                        gtid=rnd.get('gtid') or ''))
            self.bounds.append((lower, upper))  # as the statements take them, for find_rows


def chunk_sql(schema, table, columns, key, lower, upper):
    """(sql, args) of a chunk's checksum; the whole table for no bounds."""
    if lower is None and upper is None:
        return checksum_sql(schema, table, columns), None
    where, args = chunk_where(key, lower, upper)
    return checksum_sql(schema, table, columns, where), args


def fold(sums, table, rows, checksum):
    """Add a chunk to its table's (rows, checksum): counts add up, checksums XOR (a
    BIT_XOR over the chunks is the BIT_XOR over the table)."""
    had = sums.get(table, (0, 0))
    sums[table] = (had[0] + int(rows), had[1] ^ int(checksum))


def encode_round(rnd):
    """A round as JSON carries it (the primary's phase to the replicas' compare): its
    position, each chunk [table, lower, upper, rows, checksum as text (64 bits)]."""
    return dict(gtid=rnd.get('gtid') or '', binlog_file=rnd['binlog_file'],
                binlog_pos=int(rnd['binlog_pos']), seconds=rnd.get('seconds'),
                chunks=[[t, encode(lower), encode(upper), int(rows), str(checksum)]
                        for t, lower, upper, rows, checksum in rnd['chunks']])


def decode_round(rnd):
    """encode_round()'s output back. Raises ValueError on anything else."""
    try:
        out = dict(gtid=rnd.get('gtid') or '', binlog_file=rnd['binlog_file'],
                   binlog_pos=int(rnd['binlog_pos']), chunks=[])
        for chunk in rnd['chunks']:
            table, lower, upper, rows, checksum = chunk
            out['chunks'].append((str(table), decode(lower), decode(upper), int(rows),
                                  int(checksum)))
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ValueError('not a round of the primary\'s scan (%s): %.200r' % (e, rnd))
    return out


def decode_tables(tables):
    """The scan's {'db.tbl': [db, tbl, key columns]} -> the walk's tables. Raises ValueError."""
    out = {}
    for name, entry in (tables or {}).items():
        if not isinstance(entry, (list, tuple)) or len(entry) != 3 or not isinstance(entry[2], list):
            raise ValueError('not a [schema, table, key] entry: %.200r' % (entry,))
        out[name] = dict(db=entry[0], tbl=entry[1], key=list(entry[2]))
    return out


DRILLED = 5  # chunks that differ whose rows are looked for, at most
DRILL_ROWS = 200000  # no more rows in such a chunk (every row's key and digest come back)
ROWS_SHOWN = 10


def differing_keys(primary_rows, replica_rows, key):
    """The keys (tuples, sorted) of the rows that differ between two lists of a chunk's
    rows (row_digests_sql): on one side only, or with another digest."""
    def digests(rows):
        return dict((tuple(r[k] for k in key), r['digest']) for r in rows)
    p, r = digests(primary_rows), digests(replica_rows)
    return sorted(k for k in set(p) | set(r) if p.get(k) != r.get(k))


def find_rows(walk, primary, open_round, max_seconds):
    """Which rows differ, in the first chunks that did (DRILLED, of DRILL_ROWS rows at most):
    each chunk's rows' digests read again at one new position, in a snapshot of the primary
    bound by max_seconds and on the replica run up to it (walk.reach). Adds to each such
    chunk of walk.mismatched `rows` (the first ROWS_SHOWN keys, encoded) and
    `rows_differing` (how many). A chunk whose read runs out of time is left without."""
    for found, (lower, upper) in list(zip(walk.mismatched, walk.bounds))[:DRILLED]:
        meta = walk.tables[found['table']]
        columns = walk.columns.get(found['table'])
        if not meta['key'] or not columns or not meta.get('columns') or \
                found['primary_rows'] > DRILL_ROWS:
            continue
        where, args = (None, None) if lower is None and upper is None else \
            chunk_where(meta['key'], lower, upper)
        position = open_round()
        try:
            theirs = primary.query(guarded(row_digests_sql(
                meta['db'], meta['tbl'], meta['columns'], meta['key'], where), max_seconds), args)
            primary.query('COMMIT')
        except DbError as e:
            if e.code != STATEMENT_TIMEOUT:
                e.on_primary = True  # the primary's error, as the module names it
                raise
            primary.query('COMMIT')
            continue
        walk.reach(position)
        ours = walk.conn.query(row_digests_sql(meta['db'], meta['tbl'], columns, meta['key'],
                                               where), args)
        keys = differing_keys(theirs, ours, meta['key'])
        found.update(rows=[encode(k) for k in keys[:ROWS_SHOWN]], rows_differing=len(keys),
                     rows_gtid=position.get('gtid') or '')
