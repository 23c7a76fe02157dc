# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunks of a table by its primary key: the statements, the sizes, the bounds through JSON,
and the primary's rounds and the replica's walk against a fake server that holds a table."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import decimal
import json

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import chunks
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import DbError


def test_a_chunk_is_after_its_lower_bound_and_up_to_its_upper_one():
    assert chunks.chunk_where(['id'], None, None) == ('TRUE', [])
    assert chunks.chunk_where(['id'], [10], None) == ('`id` > %s', [10])
    assert chunks.chunk_where(['id'], [10], [20]) == ('`id` > %s AND `id` <= %s', [10, 20])
    # A composite key, expanded so that the optimizer takes a range on its first column.
    sql, args = chunks.chunk_where(['a', 'b`c'], [1, 'x'], [2, 'y'])
    assert sql == ('(`a` > %s OR (`a` = %s AND `b``c` > %s)) AND '
                   '(`a` < %s OR (`a` = %s AND `b``c` <= %s))')
    assert args == [1, 1, 'x', 2, 2, 'y']


def test_the_boundary_is_the_key_a_chunk_further_on():
    sql, args = chunks.boundary_sql('shop', 'orders', ['id'], [10], 500)
    assert sql == ('SELECT `id` FROM `shop`.`orders` FORCE INDEX (PRIMARY) WHERE `id` > %s '
                   'ORDER BY `id` LIMIT 1 OFFSET 499')
    assert args == [10]
    assert chunks.boundary_sql('s', 't', ['id'], None, 1)[0].endswith('WHERE TRUE ORDER BY `id` LIMIT 1 OFFSET 0')


@pytest.mark.parametrize('rows, seconds, target, want', [
    (1000, 0.25, 0.5, 2000),   # twice as fast as wanted: double, no more
    (1000, 0.1, 0.5, 2000),
    (1000, 1.0, 0.5, 500),     # twice as slow: half
    (1000, 4.0, 0.5, 500),     # at most half at a time
    (1000, 0.0, 0.5, 2000),
    (1, 9.0, 0.5, 1),          # never below one row
    (900000, 0.1, 0.5, chunks.MAX_ROWS),
])
def test_the_next_chunk_aims_at_the_time_wanted(rows, seconds, target, want):
    assert chunks.next_rows(rows, seconds, target) == want


def test_bounds_go_through_json_and_back():
    values = [7, 'abc', b'\x00\xff', decimal.Decimal('12.50'), datetime.datetime(2026, 1, 2, 3, 4, 5, 6),
              datetime.date(2026, 1, 2), datetime.timedelta(hours=-27, minutes=-3, microseconds=-5)]
    encoded = json.loads(json.dumps(chunks.encode(values)))
    assert encoded[3:] == ['12.50', '2026-01-02 03:04:05.000006', '2026-01-02', '-27:03:00.000005']
    assert chunks.decode(encoded)[:3] == [7, 'abc', b'\x00\xff']
    assert chunks.encode(None) is None and chunks.decode(None) is None
    with pytest.raises(ValueError):
        chunks.decode('7')
    with pytest.raises(ValueError):
        chunks.decode([{'nope': 1}])


def test_a_round_goes_through_json_and_back():
    rnd = dict(gtid='0-1-5', binlog_file='b.000001', binlog_pos=400, seconds=0.1,
               chunks=[('s.t', None, [b'k'], 3, 2 ** 63 + 5)])
    back = chunks.decode_round(json.loads(json.dumps(chunks.encode_round(rnd))))
    assert back['chunks'] == [('s.t', None, [b'k'], 3, 2 ** 63 + 5)]
    with pytest.raises(ValueError, match='not a round'):
        chunks.decode_round({'binlog_file': 'b', 'binlog_pos': 4, 'chunks': [['s.t', None]]})
    assert chunks.decode_tables({'s.t': ['s', 't', ['id']]}) == {
        's.t': dict(db='s', tbl='t', key=['id'])}
    with pytest.raises(ValueError):
        chunks.decode_tables({'s.t': ['s', 't']})


def test_a_table_checksum_is_the_fold_of_its_chunks():
    sums = {}
    for rows, checksum in ((3, 0b1100), (2, 0b1010), (0, 0)):
        chunks.fold(sums, 's.t', rows, checksum)
    assert sums == {'s.t': (5, 0b0110)}


class Table(object):
    """A fake server holding one table shop.t of integer ids: answers the pass's and the
    walk's statements from its rows (a row's 'checksum' is its id)."""

    def __init__(self, ids, key=('id',), slow=None):
        self.ids, self.key, self.slow = sorted(ids), list(key), slow or {}
        self.queries = []
        self.snapshots = 0

    def rows_of(self, sql, args):
        ids = self.ids
        args = list(args or [])
        if '`id` > %s' in sql:
            low = args.pop(0)
            ids = [i for i in ids if i > low]
        if '`id` <= %s' in sql:
            high = args.pop(0)
            ids = [i for i in ids if i <= high]
        return ids

    def query(self, sql, args=None, secret_args=()):
        self.queries.append(sql)
        for needle, error in list(self.slow.items()):
            if needle in sql and 'max_statement_time' in sql:
                del self.slow[needle]
                raise error
        if 'information_schema.COLUMNS' in sql:
            return [{'col': 'id'}]
        if 'information_schema.STATISTICS' in sql:
            return [{'col': k} for k in self.key]
        if 'LIMIT 1 OFFSET' in sql:
            ids = self.rows_of(sql, args)
            n = int(sql.rsplit(' ', 1)[1])
            return [{'id': ids[n]}] if n < len(ids) else []
        if 'AS digest' in sql:
            return [{'id': i, 'digest': 'd%d' % i} for i in self.rows_of(sql, args)]
        if 'BIT_XOR' in sql:
            ids = self.rows_of(sql, args)
            x = 0
            for i in ids:
                x ^= i
            return [{'row_count': len(ids), 'checksum': x}]
        return []


def a_pass(db, **kw):
    meta = chunks.table_meta(db, {'shop.t': ('shop', 't')})

    def open_round():
        db.snapshots += 1
        return dict(gtid='0-1-%d' % db.snapshots, binlog_file='b.000001', binlog_pos=db.snapshots)
    kw.setdefault('first_rows', 1000)
    return chunks.PrimaryPass(db, meta, open_round, **kw)


def test_the_primary_walks_a_table_in_chunks_that_cover_every_row_once():
    db = Table(range(1, 5001))
    primary = a_pass(db, chunk_seconds=0.01)
    rounds = list(primary.rounds())
    spans = [(c[1], c[2], c[3]) for r in rounds for c in r['chunks']]
    assert spans[0][0] is None and spans[-1][1] is None  # open at both ends
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # each starts where one ended
    assert sum(s[2] for s in spans) == 5000 and len(spans) > 1
    assert len(rounds) == db.snapshots and db.queries.count('COMMIT') == len(rounds)
    assert all('max_statement_time' in q for q in db.queries if 'BIT_XOR' in q)


def test_a_chunk_that_runs_out_of_time_is_tried_again_smaller_in_a_new_snapshot():
    db = Table(range(1, 101), slow={'BIT_XOR': DbError('timeout', chunks.STATEMENT_TIMEOUT)})
    rounds = list(a_pass(db).rounds())
    assert rounds[0]['chunks'] == [] and len(rounds) >= 2
    assert sum(c[3] for r in rounds for c in r['chunks']) == 100


def test_a_table_dropped_during_the_pass_is_skipped_and_said():
    db = Table(range(1, 10), slow={'BIT_XOR': DbError('gone', chunks.NO_SUCH_TABLE)})
    primary = a_pass(db)
    rounds = list(primary.rounds())
    assert primary.skipped == {'shop.t': 'dropped or altered on the primary during the check '
                                         '(error 1146)'}
    assert len(rounds) == 1 and rounds[0]['chunks'] == []


def test_a_table_without_a_primary_key_is_one_chunk_said_so():
    db = Table(range(1, 10), key=())
    primary = a_pass(db)
    rounds = list(primary.rounds())
    assert [c[1:4] for c in rounds[0]['chunks']] == [(None, None, 9)]
    assert primary.unchunked['shop.t'].startswith('no primary key: checksummed whole')
    assert not any('max_statement_time' in q for q in db.queries)


def test_the_replica_walk_finds_the_chunk_that_differs_and_holds_replication_per_round():
    primary = Table(range(1, 3001))
    rounds = list(a_pass(primary, chunk_seconds=0.001).rounds())
    replica = Table([i for i in range(1, 3001) if i != 1500] + [1500 + 100000])
    reached = []
    walk = chunks.ReplicaWalk(replica, reached.append, {'shop.t': dict(db='shop', tbl='t', key=['id'])})
    walk.walk(rounds, held_since=0.0 + __import__('time').time())
    assert reached == rounds and walk.rounds == len(rounds)
    assert walk.primary_sums['shop.t'][0] == 3000 and walk.replica_sums['shop.t'][0] == 3000
    # 1500 missing from its chunk, 101500 in the last (open-ended) one.
    bad = [(m['lower'], m['upper']) for m in walk.mismatched]
    assert len(bad) == 2 and bad[-1][1] is None, bad
    low, high = bad[0]
    assert (low is None or low[0] < 1500) and high[0] >= 1500
    assert walk.longest_hold >= 0.0


def test_the_rows_that_differ_in_a_chunk_are_found_at_a_new_position():
    primary = Table(range(1, 3001))
    primary_pass = a_pass(primary, chunk_seconds=0.001)
    rounds = list(primary_pass.rounds())
    replica = Table([i for i in range(1, 3001) if i != 1500] + [101500])
    reached = []
    walk = chunks.ReplicaWalk(replica, reached.append, primary_pass.meta)
    walk.walk(rounds)
    before = primary.snapshots
    chunks.find_rows(walk, primary, lambda: {'gtid': '0-1-99', 'binlog_file': 'b', 'binlog_pos': 9}, 5.0)
    assert [(m.get('rows'), m.get('rows_differing')) for m in walk.mismatched] == [
        ([[1500]], 1), ([[101500]], 1)]
    assert reached[-1]['gtid'] == '0-1-99' and walk.mismatched[0]['rows_gtid'] == '0-1-99'
    assert primary.queries.count('COMMIT') == len(rounds) + 2 and primary.snapshots == before
    assert chunks.differing_keys([{'id': 1, 'digest': 'a'}, {'id': 2, 'digest': 'b'}],
                                 [{'id': 2, 'digest': 'c'}, {'id': 3, 'digest': 'd'}],
                                 ['id']) == [(1,), (2,), (3,)]
