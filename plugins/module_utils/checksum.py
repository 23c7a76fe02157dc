# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Table checksums that compare a primary and a replica at the same position.

Pure functions: which tables, the checksum statement of a table, the comparison, and what
the phases of a fleet's check (pause, primary, compare, resume) pass to one another. The
module (plugins/modules/checksum.py) runs them inside a consistent snapshot on the primary
and on a replica stopped exactly at the snapshot's position.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.reseed.mariadb.plugins.module_utils.replica_status import IO_RUNNING

SYSTEM_SCHEMAS = ('mysql', 'information_schema', 'performance_schema', 'sys')
# Engines whose reads a consistent snapshot covers; others can change under the check.
TRANSACTIONAL_ENGINES = ('InnoDB',)


def quote_ident(name):
    """A backquoted identifier, backquotes doubled: safe for any table or column name."""
    return '`%s`' % name.replace('`', '``')


def table_name(schema, table):
    return '%s.%s' % (quote_ident(schema), quote_ident(table))


def row_md5(columns):
    """A row's MD5: its columns' values as binary strings (no collation can clash), with a
    NULL-map so that NULL and '' differ."""
    if not columns:
        raise ValueError('no columns')
    values = ', '.join('CAST(%s AS BINARY)' % quote_ident(c) for c in columns)
    nulls = ', '.join('ISNULL(%s)' % quote_ident(c) for c in columns)
    return "MD5(CONCAT_WS('#', %s, CONCAT(%s)))" % (values, nulls)


def _rows_of(schema, table, where):
    return '%s%s' % (table_name(schema, table),
                     ' FORCE INDEX (PRIMARY) WHERE %s' % where if where else '')


def checksum_sql(schema, table, columns, where=None):
    """One statement giving (rows, checksum) for a table (or the rows of `where`, a chunk of
    its primary key: module_utils/chunks.py), independent of row order.

    Each row's MD5 (row_md5) is folded with BIT_XOR of its first 64 bits: the approach of
    pt-table-checksum, in one scan.
    """
    if not columns:
        raise ValueError('table %s.%s has no columns' % (schema, table))
    return ("SELECT COUNT(*) AS row_count, COALESCE(BIT_XOR(CAST(CONV(LEFT(%s, 16), 16, 10) "
            "AS UNSIGNED)), 0) AS checksum FROM %s" % (row_md5(columns),
                                                       _rows_of(schema, table, where)))


def row_digests_sql(schema, table, columns, key, where=None):
    """Every row's key and MD5 (as `digest`), for finding which rows of a chunk differ."""
    if not columns or not key:
        raise ValueError('table %s.%s has no columns or no key' % (schema, table))
    return 'SELECT %s, %s AS digest FROM %s' % (
        ', '.join(quote_ident(k) for k in key), row_md5(columns), _rows_of(schema, table, where))


def tables_sql(databases=None, exclude=SYSTEM_SCHEMAS):
    """(statement, args) listing base tables with their engine, system schemas excluded."""
    sql = ("SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, ENGINE AS engine "
           "FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'")
    args = []
    if databases:
        sql += ' AND TABLE_SCHEMA IN (%s)' % ', '.join(['%s'] * len(databases))
        args += list(databases)
    if exclude:
        sql += ' AND TABLE_SCHEMA NOT IN (%s)' % ', '.join(['%s'] * len(exclude))
        args += list(exclude)
    return sql + ' ORDER BY TABLE_SCHEMA, TABLE_NAME', args


COLUMNS_SQL = ("SELECT COLUMN_NAME AS col FROM information_schema.COLUMNS "
               "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION")


def split_tables(rows):
    """Table rows from tables_sql -> ({'db.tbl': (db, tbl)} checkable, {'db.tbl': reason})."""
    checkable, skipped = {}, {}
    for row in rows:
        key = '%s.%s' % (row['db'], row['tbl'])
        if row.get('engine') in TRANSACTIONAL_ENGINES:
            checkable[key] = (row['db'], row['tbl'])
        else:
            skipped[key] = ('engine %s is not transactional: a consistent snapshot cannot '
                            'cover it while the primary takes writes' % row.get('engine'))
    return checkable, skipped


def position_reached(current_file, current_pos, file, pos):
    """Whether binlog coordinates (current_file, current_pos) are at or past (file, pos).

    Binlog files share a base name and differ by a numeric extension (mysql-bin.000012).
    """
    if not current_file:
        return False

    def key(name, position):
        base, number = name.rpartition('.')[::2]
        return (base, int(number) if number.isdigit() else -1, int(position or 0))
    return key(current_file, current_pos) >= key(file, pos)


def compare(primary, replica):
    """Compare {'db.tbl': (rows, checksum)} of both sides.

    Returns a dict: tables (number compared), mismatches (list of dicts), only_on_primary,
    only_on_replica (sorted lists), equal (bool).
    """
    mismatches = []
    for key in sorted(set(primary) & set(replica)):
        p, r = primary[key], replica[key]
        if tuple(map(int, p)) != tuple(map(int, r)):
            mismatches.append({'table': key, 'primary_rows': int(p[0]),
                               'replica_rows': int(r[0]), 'primary_checksum': str(p[1]),
                               'replica_checksum': str(r[1])})
    only_primary = sorted(set(primary) - set(replica))
    only_replica = sorted(set(replica) - set(primary))
    return {'tables': len(set(primary) & set(replica)), 'mismatches': mismatches,
            'only_on_primary': only_primary, 'only_on_replica': only_replica,
            'equal': not (mismatches or only_primary or only_replica)}


def describe(result):
    """A one-line verdict for a compare() result."""
    if result['equal']:
        return '%d tables equal' % result['tables']
    parts = []
    if result['mismatches']:
        names = [m['table'] for m in result['mismatches']]
        parts.append('%d of %d tables differ (%s%s)' % (
            len(names), result['tables'], ', '.join(names[:5]),
            ', ...' if len(names) > 5 else ''))
    if result['only_on_primary']:
        parts.append('missing on the replica: %s' % ', '.join(result['only_on_primary'][:5]))
    if result['only_on_replica']:
        parts.append('only on the replica: %s' % ', '.join(result['only_on_replica'][:5]))
    return '; '.join(parts)


def refusal(status, name):
    """Why a replica cannot be checked (its connection's status row, None when missing), or
    None when it can."""
    if not status:
        return ('the replica has no replication connection %r: configure replication first'
                % name)
    if status.get('Slave_SQL_Running') != 'Yes' and status.get('Last_SQL_Errno') not in (0, '0'):
        return ('replication is broken on the replica (SQL error %s: %s): heal it before '
                'checking the data' % (status.get('Last_SQL_Errno'), status.get('Last_SQL_Error')))
    return None


def running_threads(status):
    """The threads to start again after the check, as they were found: an IO thread still
    connecting (Connecting, Preparing) runs too. IO_THREAD first."""
    return [t for t, field, values in (('IO_THREAD', 'Slave_IO_Running', IO_RUNNING),
                                       ('SQL_THREAD', 'Slave_SQL_Running', ('Yes',)))
            if status.get(field) in values]


def scan_list(sums):
    """{'db.tbl': (rows, checksum)} -> [['db.tbl', rows, 'checksum'], ...] sorted: what the
    primary's phase returns (JSON, the checksum as a string: 64 bits)."""
    return [[key, int(rows), str(checksum)] for key, (rows, checksum) in sorted(sums.items())]


def scan_sums(entries):
    """scan_list()'s output, as given back to the compare phase -> {'db.tbl': (rows, checksum)}.
    Raises ValueError on anything else."""
    sums = {}
    for entry in entries or []:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ValueError('not a [table, rows, checksum] entry: %r' % (entry,))
        key, rows, checksum = entry
        try:
            sums[str(key)] = (int(rows), int(checksum))
        except (TypeError, ValueError):
            raise ValueError('not a [table, rows, checksum] entry: %r' % (entry,))
    return sums


def where(snap):
    """The position a check stands at, as said to users: the GTID, else file:position."""
    return snap.get('gtid') or '%s:%s' % (snap.get('binlog_file'), snap.get('binlog_pos'))


def verdict(snap, primary_sums, primary_skipped, replica_sums, replica_skipped):
    """The check's result (the module's return values but times): both sides' checksums
    compared at snap's position (gtid, binlog_file, binlog_pos)."""
    result = compare(primary_sums, replica_sums)
    skipped = dict(primary_skipped)
    skipped.update(replica_skipped)
    return dict(
        equal=result['equal'], tables=result['tables'], mismatches=result['mismatches'],
        only_on_primary=result['only_on_primary'], only_on_replica=result['only_on_replica'],
        skipped_tables=skipped, gtid=snap.get('gtid') or '', binlog_file=snap['binlog_file'],
        binlog_pos=int(snap['binlog_pos']),
        checksums=dict((k, {'rows': int(v[0]), 'checksum': str(v[1])})
                       for k, v in primary_sums.items()),
        msg='%s at %s' % (describe(result), where(snap)))
