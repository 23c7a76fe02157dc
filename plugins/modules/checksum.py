#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: checksum
short_description: Prove a replica holds the same data as its primary, while the primary takes writes
version_added: 0.1.0
description:
  - Compares every table of a primary and one of its replicas at the same replication
    position, without stopping writes on the primary.
  - Compares in chunks (I(chunked), the default), ranges of each table's primary key, in
    rounds. A round is one short consistent snapshot on the primary and the binlog position
    it corresponds to (C(binlog_snapshot_file), C(binlog_snapshot_position), and through
    C(BINLOG_GTID_POS()) the GTID), in which the primary checksums chunks for about
    2 x I(chunk_seconds); no statement in it runs past I(max_snapshot_seconds) from its
    start (C(max_statement_time)), so that no read view on the primary lives longer and
    InnoDB's purge is never held back for long.
  - On the replica, stops replication, lets it run exactly up to each round's position in
    turn (C(START SLAVE UNTIL master_gtid_pos), or file and position when the replica does
    not use GTID), checksums the round's chunks by the same key ranges, then resumes
    replication as it was. The primary's next rounds are checksummed meanwhile, at most two
    ahead, so that replication is held for about one round at a time
    (C(replica_hold_seconds)).
  - A table without a primary key is checksummed whole, in a round of its own (named in
    C(unchunked_tables), with how long its snapshot lived). With I(chunked=false), every
    table is checksummed in one snapshot, as this module did before.
  - A table's checksum is its row count and the BIT_XOR of the MD5 of each row's values
    (as binary strings, with a NULL map), as pt-table-checksum computes it; a chunk's is the
    same over its rows, and a table's the BIT_XOR of its chunks'.
  - Cost on the primary is one read of every table, in snapshots of at most
    I(max_snapshot_seconds) each (C(primary_snapshot_seconds), the longest); no lock is
    taken.
  - The module connects to the replica with the usual login options (by default root over
    the local unix socket, so run it on the replica) and to the primary with I(primary).
  - Changes nothing that stays; replication is resumed in the state it was found in, also
    when the check fails. In check mode it runs the same way, since its net effect is none.
  - Several replicas of one primary can be checked against one scan of the primary (a
    fleet), in phases (I(phase)) - C(pause) on every replica, then C(primary) once, then
    C(compare) on every replica with the result of C(primary) - and the primary is read
    once instead of once per replica. Every replica is paused before the primary's first
    snapshot is taken, so each is behind every round's position and can run up to it; a
    paused replica does not replicate until its compare has walked every round.
options:
  phase:
    description:
      - C(all) does the whole check of this replica against the primary.
      - C(pause) stops replication on the replica (after the same refusals as C(all), no
        connection or a replication error) and returns how it ran, in C(paused).
      - C(primary) connects to the primary only (I(primary)), checksums every table round
        by round (each round a short snapshot) and returns each round's position and
        chunks, in C(scan). It runs once for all the replicas; on any host that reaches the
        primary.
      - C(compare) runs the replica paused by C(pause) up to the position of each round of
        I(primary_scan) in turn, checksums the round's chunks, compares them with
        I(primary_scan), and resumes replication as I(paused) says it ran, also when
        anything fails. Returns what C(all) returns. It does not connect to the primary.
      - C(resume) resumes replication as I(paused) says it ran, for a replica whose
        C(compare) did not run or did not resume it (C(resumed) is not in its result).
      - Until C(compare) or C(resume) has run, a paused replica does not replicate.
    type: str
    choices: [all, pause, primary, compare, resume]
    default: all
  paused:
    description:
      - For phases C(compare) and C(resume), required there - the C(paused) result of this
        replica's phase C(pause).
    type: dict
    suboptions:
      threads:
        description:
          - The replication threads that ran when the replica was paused, started again.
        type: list
        elements: str
        choices: [IO_THREAD, SQL_THREAD]
        required: true
      since:
        description:
          - When the replica was paused (epoch seconds, this host's clock), for
            C(replica_paused_seconds).
        type: float
  primary_scan:
    description:
      - For phase C(compare), required there - the C(scan) result of phase C(primary), as it
        was returned.
    type: dict
    suboptions:
      rounds:
        description:
          - Each round's position (C(gtid), C(binlog_file), C(binlog_pos)) and C(chunks),
            C([schema.table, lower, upper, rows, checksum]) each.
        type: list
        elements: dict
        default: []
      tables:
        description:
          - "The tables checksummed, C({schema.table: [schema, table, primary key columns]})."
        type: dict
        default: {}
      unchunked_tables:
        description:
          - Tables checksummed whole (no primary key), with why.
        type: dict
        default: {}
      gtid:
        description:
          - The GTID position of the primary's last snapshot (empty in file/position mode).
        type: str
        default: ''
      binlog_file:
        description:
          - The primary's binlog file of the last snapshot.
        type: str
      binlog_pos:
        description:
          - The primary's binlog position of the last snapshot.
        type: int
      checksums:
        description:
          - Every table's C([schema.table, rows, checksum]).
        type: list
        elements: raw
        default: []
      skipped_tables:
        description:
          - Tables the primary's scan left out, with the reason.
        type: dict
        default: {}
      snapshot_seconds:
        description:
          - How long the longest snapshot stayed open on the primary.
        type: float
  chunked:
    description:
      - Compare in chunks of each table's primary key, each round in a short snapshot of the
        primary. With C(false), every table in one snapshot, which holds one read view on
        the primary for the whole scan (purge waits for it).
    type: bool
    default: true
  chunk_seconds:
    description:
      - The time a chunk's checksum aims at on the primary; the number of rows of each
        table's next chunk follows from the last one's rate. A round checksums chunks for
        about twice this.
    type: float
    default: 0.5
  max_snapshot_seconds:
    description:
      - No statement of a round runs past this many seconds from the round's snapshot
        (by C(max_statement_time)); a chunk that would is given up and tried again smaller
        in the next round. A table without a primary key is not bound by it.
    type: float
    default: 5.0
  max_rows_per_second:
    description:
      - Rows checksummed on the primary per second, at most, on average (the rounds are
        spaced out); C(0) for no limit.
    type: int
    default: 0
  connection_name:
    description:
      - The replica's connection to this primary (multi-source); the default connection
        when empty.
    type: str
    default: ''
  databases:
    description:
      - Check only these databases. Default all but I(exclude_databases).
    type: list
    elements: str
  exclude_databases:
    description:
      - Databases never checked. The system schemas hold per-server state (for example
        C(mysql.gtid_slave_pos)) that differs by design.
    type: list
    elements: str
    default: [mysql, information_schema, performance_schema, sys]
  catch_up_timeout:
    description:
      - Seconds the replica may take to reach the primary's snapshot position.
    type: int
    default: 600
  fail_on_mismatch:
    description:
      - Fail when any table differs. With C(false), the result reports the differences and
        the play goes on.
    type: bool
    default: true
extends_documentation_fragment:
  - reseed.mariadb.login
  - reseed.mariadb.login.primary
notes:
  - Tables of non-transactional engines (MyISAM, Aria) cannot be read consistently while
    the primary writes; they are listed in C(skipped_tables), not compared.
  - Supports check mode.
seealso:
  - module: reseed.mariadb.replication_info
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Compare every table with the primary
  reseed.mariadb.checksum:
    primary:
      login_host: "{{ hostvars[groups['mariadb_primary'][0]].ansible_host }}"
      login_user: checksum
      login_password: "{{ checksum_password }}"
  register: verify

- name: A fleet - stop every replica, so that the primary's snapshot is ahead of them all
  reseed.mariadb.checksum:
    phase: pause
  register: paused

- name: Checksum the primary once
  reseed.mariadb.checksum:
    phase: primary
    primary:
      login_host: db1.example.com
      login_user: checksum
      login_password: "{{ checksum_password }}"
  register: primary_scan
  run_once: true

- name: Compare every replica with that scan, at its position; replication resumed
  reseed.mariadb.checksum:
    phase: compare
    paused: "{{ paused.paused }}"
    primary_scan: "{{ primary_scan.scan }}"

- name: Report without failing
  reseed.mariadb.checksum:
    primary:
      login_host: db1.example.com
      login_user: checksum
      login_password: "{{ checksum_password }}"
    databases: [shop]
    fail_on_mismatch: false
'''

RETURN = r'''
equal:
  description: Whether every compared table is equal and both sides have the same tables.
  returned: success (phases all and compare)
  type: bool
  sample: true
gtid:
  description: The GTID position of the last round, at which both sides were compared last
    (empty in file/position mode).
  returned: success (phases all, primary and compare)
  type: str
  sample: 0-1-1042
binlog_file:
  description: The primary's binlog file of the snapshot.
  returned: success (phases all, primary and compare)
  type: str
  sample: mysql-bin.000003
binlog_pos:
  description: The primary's binlog position of the snapshot.
  returned: success (phases all, primary and compare)
  type: int
  sample: 40213
chunks:
  description: Number of chunks compared (phase primary - checksummed on the primary).
  returned: success (phases all, primary and compare)
  type: int
  sample: 240
rounds:
  description: Number of rounds (snapshots of the primary).
  returned: success (phases all, primary and compare)
  type: int
  sample: 60
mismatched_chunks:
  description:
    - The first chunks that differ (20 at most), each with its table, its key range
      (C(lower) exclusive, C(upper) inclusive; null for an open end), the rows on each side
      and the GTID both were compared at.
    - Phase C(all) looks for the rows that differ in the first 5 of them (of 200,000 rows at
      most), every row's digest read again on both sides at one new position
      (C(rows_gtid)), in a snapshot of the primary bound by I(max_snapshot_seconds) -
      C(rows), the keys of the first 10 rows that differ (on one side only, or other
      values), and C(rows_differing), how many. A chunk whose read runs out of time has
      neither.
  returned: success (phases all and compare)
  type: list
  elements: dict
  sample: [{table: shop.orders, lower: [1000], upper: [2000], primary_rows: 1000, replica_rows: 1000,
            gtid: 0-1-1042, rows: [[1042]], rows_differing: 1, rows_gtid: 0-1-1050}]
unchunked_tables:
  description: Tables checksummed whole, each in a snapshot of its own (no primary key), with why.
  returned: success (phases all, primary and compare)
  type: dict
  sample: {shop.log: 'no primary key: checksummed whole, in one snapshot of 0.2 s'}
replica_hold_seconds:
  description: The longest time replication was held on the replica at once (stopped at a
    round's position until the next round's start).
  returned: success (phases all and compare)
  type: float
  sample: 1.1
tables:
  description: Number of tables compared (phase primary - checksummed on the primary).
  returned: success (phases all, primary and compare)
  type: int
  sample: 12
mismatches:
  description: The tables that differ, with rows and checksums of both sides.
  returned: success (phases all and compare)
  type: list
  elements: dict
  sample: [{table: shop.orders, primary_rows: 100, replica_rows: 99, primary_checksum: '123', replica_checksum: '456'}]
only_on_primary:
  description: Tables the replica lacks.
  returned: success (phases all and compare)
  type: list
  elements: str
  sample: []
only_on_replica:
  description: Tables the primary lacks.
  returned: success (phases all and compare)
  type: list
  elements: str
  sample: []
skipped_tables:
  description: Tables not compared, with the reason.
  returned: success (phases all, primary and compare)
  type: dict
  sample: {shop.legacy: 'engine MyISAM is not transactional: ...'}
checksums:
  description: Rows and checksum of every compared table on the primary.
  returned: success (phases all and compare)
  type: dict
  sample: {shop.orders: {rows: 100, checksum: '123'}}
seconds:
  description: Wall time of the whole check (of this phase).
  returned: success (phases all, primary and compare)
  type: float
  sample: 3.2
primary_snapshot_seconds:
  description: How long the longest snapshot stayed open on the primary.
  returned: success (phases all, primary and compare)
  type: float
  sample: 1.4
replica_paused_seconds:
  description: From the replica's pause to its resume (phases compare and resume - since its
    phase pause). A chunked check of phase C(all) lets it replicate between rounds (each held
    at most C(replica_hold_seconds)); one of phase C(compare) does not until the end.
  returned: success (phases all, compare and resume); also on failure once replication is resumed
  type: float
  sample: 2.9
paused:
  description: How replication ran before the pause, for phases compare and resume (their
    I(paused)).
  returned: success (phase pause)
  type: dict
  sample: {threads: [IO_THREAD, SQL_THREAD], since: 1795660000.123}
scan:
  description: The primary's rounds (each one's position and chunks) and every table's
    checksum, for phase compare (its I(primary_scan)); the last round's position; one
    C([schema.table, rows, checksum]) per table in C(checksums).
  returned: success (phase primary)
  type: dict
  sample: {gtid: 0-1-1042, binlog_file: mysql-bin.000003, binlog_pos: 40213,
           checksums: [[shop.orders, 100, '123']], skipped_tables: {}, snapshot_seconds: 1.4,
           rounds: [{gtid: 0-1-1042, binlog_file: mysql-bin.000003, binlog_pos: 40213,
                     seconds: 0.2, chunks: [[shop.orders, null, null, 100, '123']]}],
           tables: {shop.orders: [shop, orders, [id]]}, unchunked_tables: {}}
resumed:
  description: Replication was started again as the pause found it (phases compare and
    resume); absent when it was not, and phase resume should run.
  returned: phases compare and resume, also on failure
  type: bool
  sample: true
failure:
  description:
    - "What failed, in fields (C(msg) is C(checksum: <message>), or the verdict for a
      mismatch); C(step) (the phase - C(all), C(pause), C(primary), C(compare), C(resume)),
      C(side) (C(source), C(replica) or C(link)), C(code), C(changed_nothing) (false only
      when the check stopped replication and could not start it again), C(message). Codes
      below."
    - Side C(source) (I(primary), and I(primary_scan)) C(options) (no C(primary.login_host)),
      C(login), C(statement_error_<errno>), C(no_binlog) (C(log_bin) off), C(no_scan),
      C(bad_scan); C(login) and C(statement_error_<errno>) are side C(link) instead for
      errors 2003, 2005, 2006, 2013, 2026 (cannot connect, or the connection was lost).
    - Side C(replica) C(login), C(no_pymysql), C(statement_error_<errno>), C(no_connection),
      C(replication_broken), C(catch_up_error) (an SQL error running up to the primary's
      position), C(catch_up_timeout), C(resume_failed) (replication not started again,
      C(resumed) absent), C(mismatch) (with I(fail_on_mismatch)).
  returned: on failure
  type: dict
  sample: {step: all, side: replica, code: replication_broken, changed_nothing: true,
           message: "replication is broken on the replica (SQL error 1062: ...): heal it before checking the data"}
msg:
  description: The verdict in one line.
  returned: always
  type: str
  sample: 12 tables equal at 0-1-1042
queries:
  description: The statements run, on the primary then the replica; of a check of more than
    200, the first and the last 100, and how many in between.
  returned: always
  type: list
  elements: str
'''

import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves import queue
from ansible_collections.reseed.mariadb.plugins.module_utils import change_master as cm
from ansible_collections.reseed.mariadb.plugins.module_utils import chunks
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils.checksum import (
    SYSTEM_SCHEMAS, position_reached, refusal, running_threads, scan_list, split_tables,
    tables_sql, verdict, where)
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    Connection, DbError, login_argument_spec)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure
from ansible_collections.reseed.mariadb.plugins.module_utils.replica_status import status_row

PHASES = ('all', 'pause', 'primary', 'compare', 'resume')
MISMATCHED_SHOWN = 20  # the chunks that differ, in the result, at most
QUERIES_SHOWN = 100  # the first and the last statements of a long check, in its queries
# The primary cannot be reached, or the connection to it was lost: the link's, not its own.


class Failed(Failure):
    """A failure of the check, on the replica unless said; main() sets the phase as its
    step."""

    def __init__(self, code, message, side='replica', changed_nothing=True):
        Failure.__init__(self, None, side, code, message, changed_nothing)


def on_primary(e):
    """Mark a DbError as met on the primary (as_failure then names its side)."""
    e.on_primary = True
    return e


def as_failure(e, connected, changed_nothing=True):
    """The one place a DbError becomes a Failure: a connection that could not be made
    (connected false) or a statement that failed; on the primary the source's, or the
    link's when the primary cannot be reached or the connection was lost."""
    if isinstance(e, Failure):
        return e
    side = 'replica'
    if getattr(e, 'on_primary', False):
        side = 'link' if e.code in failure.LINK_ERRORS else 'source'
    return Failed(failure.db_code(e, connected), str(e), side, changed_nothing)


def listed(conn, databases, exclude):
    """({'db.tbl': (db, tbl)} checkable, {'db.tbl': reason} skipped) of a server."""
    sql, args = tables_sql(databases, exclude)
    return split_tables(conn.query(sql, args))


def open_snapshot(primary):
    """A consistent snapshot on the primary and the binlog position it stands for."""
    try:
        return snapshot_position(primary)
    except DbError as e:
        raise on_primary(e)


def snapshot_position(primary):
    primary.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ')
    primary.query('START TRANSACTION WITH CONSISTENT SNAPSHOT')
    status = dict((r['Variable_name'], r['Value']) for r in primary.query(
        "SHOW STATUS LIKE 'binlog_snapshot_%'"))
    binlog_file = status.get('Binlog_snapshot_file')
    binlog_pos = int(status.get('Binlog_snapshot_position') or 0)
    if not binlog_file:
        primary.query('COMMIT')
        raise Failed('no_binlog', 'the primary has no binary log (log_bin is off): there '
                     'is no position to compare the replica at', 'source')
    gtid = primary.query('SELECT BINLOG_GTID_POS(%s, %s) AS gtid',
                         [binlog_file, binlog_pos])[0]['gtid'] or ''
    return dict(binlog_file=binlog_file, binlog_pos=binlog_pos, gtid=gtid)


def primary_pass(module, primary):
    """The primary's tables and the pass that checksums them round by round
    (module_utils/chunks.py): (PrimaryPass, {'db.tbl': reason} skipped)."""
    p = module.params
    try:
        checkable, skipped = listed(primary, p['databases'], p['exclude_databases'])
        meta = chunks.table_meta(primary, checkable)
    except DbError as e:
        raise on_primary(e)
    return chunks.PrimaryPass(
        primary, meta, lambda: open_snapshot(primary), chunk_seconds=p['chunk_seconds'],
        max_snapshot_seconds=p['max_snapshot_seconds'],
        max_rows_per_second=p['max_rows_per_second'], whole=not p['chunked']), skipped


class Feed(threading.Thread):
    """The primary's rounds, made in a thread while the replica compares those before them
    (phase all): at most AHEAD rounds ahead, so that the replica is never far behind."""
    AHEAD = 2
    END = object()

    def __init__(self, rounds):
        super(Feed, self).__init__()
        self.daemon = True
        self.rounds = rounds
        self.queue = queue.Queue(maxsize=self.AHEAD)
        self.stopped = threading.Event()
        self.error = None

    def put(self, item):
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self):
        try:
            for rnd in self.rounds:
                if not self.put(rnd):
                    return
        except Exception as e:  # re-raised in the module's thread by the walk
            self.error = on_primary(e) if isinstance(e, DbError) else e
        finally:
            self.put(self.END)

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is self.END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def stop(self):
        self.stopped.set()
        self.join()


def replica_walk(module, replica, status, tables):
    """The replica's walk (module_utils/chunks.py): replication run up to each round's
    position and stopped there; its tables listed at the first."""
    p = module.params
    return chunks.ReplicaWalk(
        replica, lambda rnd: run_replica_until(replica, p['connection_name'], rnd,
                                               using_gtid(status), p['catch_up_timeout']),
        tables, lambda: listed(replica, p['databases'], p['exclude_databases']))


def walk_result(walk, skipped):
    """The verdict of a walk, at its last position. The replica's tables were listed at the
    first round's, as the primary's just before it: a table made or dropped during the
    check is on neither list, or on both. skipped: the tables the primary left out (not
    transactional there, dropped or altered during the check)."""
    checkable, replica_skipped = walk.listed
    replica_skipped = dict((k, v) for k, v in replica_skipped.items() if k not in skipped)
    replica_sums = dict(walk.replica_sums)
    for table in checkable:  # a table the primary lacks: only on the replica
        if table not in walk.tables and table not in skipped:
            replica_sums[table] = (0, 0)
    out = verdict(walk.position, walk.primary_sums, skipped, replica_sums, replica_skipped)
    out.update(chunks=walk.chunks, rounds=walk.rounds,
               mismatched_chunks=walk.mismatched[:MISMATCHED_SHOWN],
               replica_hold_seconds=round(walk.longest_hold, 3))
    return out


def run_replica_until(replica, name, snap, use_gtid, timeout):
    """Let replication run up to the snapshot's position and wait until it stops there."""
    if use_gtid:
        # MariaDB takes a GTID UNTIL only with both threads stopped; both stop there.
        replica.query('START SLAVE %s UNTIL master_gtid_pos = %s', [name, snap['gtid']])
    else:
        replica.query('START SLAVE %s UNTIL MASTER_LOG_FILE = %s, MASTER_LOG_POS = %s',
                      [name, snap['binlog_file'], snap['binlog_pos']])
    deadline = time.time() + timeout
    while True:
        status = status_row(replica, name) or {}
        if str(status.get('Last_SQL_Errno') or 0) != '0':
            raise Failed('catch_up_error', 'replication failed while catching up to the '
                         'primary\'s position: SQL error %s: %s' % (
                             status.get('Last_SQL_Errno'), status.get('Last_SQL_Error')))
        if use_gtid:
            reached = replica.query('SELECT MASTER_GTID_WAIT(%s, 0) AS r',
                                    [snap['gtid']])[0]['r'] == 0
        else:
            reached = position_reached(status.get('Relay_Master_Log_File'),
                                       status.get('Exec_Master_Log_Pos'),
                                       snap['binlog_file'], snap['binlog_pos'])
        # UNTIL stops the SQL thread once there: wait for that too, so no event follows.
        if reached and status.get('Slave_SQL_Running') != 'Yes':
            return
        if time.time() > deadline:
            raise Failed(
                'catch_up_timeout', 'the replica did not reach the primary\'s position %s within %ss (IO: %s %s)'
                % (where(snap), timeout, status.get('Slave_IO_Running'),
                   status.get('Last_IO_Error')))
        time.sleep(0.1)


def resume(replica, name, running, status):
    """Start again the threads that ran before the check, and no UNTIL left behind.

    Only a start of the SQL thread clears an UNTIL; a GTID one is also sent by the IO thread
    to the primary when it connects (@slave_until_gtid), which then sends nothing past it: an
    IO thread started alone stops at once. Both threads therefore start in one statement
    (the UNTIL is cleared before either runs), and when the SQL thread stays stopped a
    CHANGE MASTER that changes nothing clears it first. status: the connection's row of
    SHOW ALL SLAVES STATUS (its use_gtid and heartbeat period, which a check leaves as they
    were)."""
    # An UNTIL start may leave the IO thread running (file/position): stop, then resume.
    replica.query('STOP SLAVE %s', [name])
    current = cm.current_settings(status)
    if 'SQL_THREAD' not in running and current['use_gtid'] != 'no':
        sql, args, secret = cm.statement(name, cm.naming_heartbeat(
            {'use_gtid': current['use_gtid']}, current))
        replica.query(sql, args, secret_args=secret)
    if len(running) == 2:
        replica.query('START SLAVE %s', [name])
    elif running:
        replica.query('START SLAVE %%s %s' % running[0], [name])


def resume_or_fail(replica, name, running, status, changed_nothing):
    """resume(), its failure a resume_failed (changed_nothing: whether replication was
    stopped when the module began, so that stopped is as it was)."""
    try:
        resume(replica, name, running, status)
    except DbError as e:
        raise Failed('resume_failed', str(e), changed_nothing=changed_nothing)


def checkable_status(replica, name):
    status = status_row(replica, name)
    reason = refusal(status, name)
    if reason:
        raise Failed('no_connection' if not status else 'replication_broken', reason)
    return status


def using_gtid(status):
    return (status.get('Using_Gtid') or 'No') != 'No'


def verify(module, primary, replica, out):
    """Phase all: the whole check of one replica against the primary, round by round: the
    primary's next rounds are checksummed while the replica compares those before."""
    name = module.params['connection_name']
    status = checkable_status(replica, name)
    running = running_threads(status)
    started = time.time()
    replica.query('STOP SLAVE %s', [name])
    paused = time.time()
    feed = None
    try:
        pass_, primary_skipped = primary_pass(module, primary)
        feed = Feed(pass_.rounds())
        feed.start()
        walk = replica_walk(module, replica, status, pass_.meta)
        walk.walk(feed, held_since=paused)
        chunks.find_rows(walk, primary, lambda: open_snapshot(primary),
                         module.params['max_snapshot_seconds'])
        result = walk_result(walk, dict(primary_skipped, **pass_.skipped))
    finally:
        if feed is not None:
            feed.stop()
        resume_or_fail(replica, name, running, status, changed_nothing=not running)
    resumed = time.time()
    out.update(result, unchunked_tables=pass_.unchunked, seconds=round(resumed - started, 3),
               primary_snapshot_seconds=round(pass_.longest, 3),
               replica_paused_seconds=round(resumed - paused, 3))


def pause(module, replica, out):
    """Phase pause: replication stopped, and how it ran, for compare or resume."""
    name = module.params['connection_name']
    running = running_threads(checkable_status(replica, name))
    replica.query('STOP SLAVE %s', [name])
    out.update(paused={'threads': running, 'since': round(time.time(), 3)},
               msg='replication paused (it ran: %s)' % (', '.join(running) or 'nothing'))


def scan_primary(module, primary, out):
    """Phase primary: every table checksummed round by round, each round in a short
    snapshot of the primary; the rounds returned for the replicas' compare."""
    started = time.time()
    pass_, skipped = primary_pass(module, primary)
    rounds = list(pass_.rounds())
    sums = {}
    for rnd in rounds:
        for chunk in rnd['chunks']:
            chunks.fold(sums, chunk[0], chunk[3], chunk[4])
    last = dict((k, rounds[-1][k]) for k in ('gtid', 'binlog_file', 'binlog_pos'))
    skipped.update(pass_.skipped)
    longest = round(pass_.longest, 3)
    out.update(last, tables=len(sums), skipped_tables=skipped, unchunked_tables=pass_.unchunked,
               seconds=round(time.time() - started, 3), primary_snapshot_seconds=longest,
               chunks=sum(len(r['chunks']) for r in rounds), rounds=len(rounds),
               scan=dict(last, checksums=scan_list(sums), skipped_tables=skipped,
                         snapshot_seconds=longest, rounds=[chunks.encode_round(r) for r in rounds],
                         tables=dict((k, [m['db'], m['tbl'], m['key']])
                                     for k, m in pass_.meta.items() if k not in pass_.skipped)),
               msg='%d tables checksummed on the primary, in %d snapshots up to %s' % (
                   len(sums), len(rounds), where(last)))


def resumed_as_paused(module, replica, out, work=None):
    """Run work(status) on the paused replica, then resume replication as the pause found
    it, also when work fails (phases compare and resume)."""
    p = module.params
    name, threads = p['connection_name'], p['paused']['threads']
    status = status_row(replica, name)
    if not status:
        raise Failed('no_connection', 'the replica has no replication connection %r' % name)
    try:
        if work:
            work(status)
    finally:
        # Paused before this phase, and left paused when the resume fails: as it was.
        resume_or_fail(replica, name, threads, status, changed_nothing=True)
        out['resumed'] = True
        since = p['paused'].get('since')
        if since:
            out['replica_paused_seconds'] = round(time.time() - since, 3)


def compare_with_primary(module, replica, out):
    """Phase compare: the paused replica run up to each round of the primary's scan in turn,
    its chunks checksummed and compared, then resumed."""
    p = module.params
    started = time.time()
    scan = p['primary_scan'] or {}
    found = {}

    def work(status):
        if not scan.get('binlog_file') or not scan.get('rounds'):
            raise Failed('no_scan', 'no scan of the primary to compare with (its phase '
                         'primary failed or did not run)', 'source')
        try:
            rounds = [chunks.decode_round(r) for r in scan['rounds']]
            tables = chunks.decode_tables(scan.get('tables'))
        except ValueError as e:
            raise Failed('bad_scan', 'primary_scan: %s' % e, 'source')
        walk = replica_walk(module, replica, status, tables)
        walk.walk(rounds)
        found['result'] = walk_result(walk, scan.get('skipped_tables') or {})

    resumed_as_paused(module, replica, out, work)
    out.update(found['result'], unchunked_tables=scan.get('unchunked_tables') or {},
               seconds=round(time.time() - started, 3))
    if scan.get('snapshot_seconds') is not None:
        out['primary_snapshot_seconds'] = scan['snapshot_seconds']


def resume_paused(module, replica, out):
    """Phase resume: replication started again as the pause found it (a fleet's check that
    failed between its pause and its compare)."""
    resumed_as_paused(module, replica, out)
    out['msg'] = 'replication resumed (%s)' % (
        ', '.join(module.params['paused']['threads']) or 'nothing ran')


def shown_queries(queries, keep=QUERIES_SHOWN):
    """The statements run, but for a long check's chunks: the first and the last `keep`, and
    how many in between (every chunk's is of the same form as those shown)."""
    if len(queries) <= 2 * keep:
        return queries
    return queries[:keep] + ['-- %d statements more, of the forms above and below --'
                             % (len(queries) - 2 * keep)] + queries[-keep:]


def check(module, phase, out):
    """Run the phase, its result into out (the queries too, also on failure)."""
    replica = primary = None
    try:
        if phase != 'primary':
            replica = Connection(module.params)
        if phase in ('all', 'primary'):
            primary_params = module.params['primary'] or {}
            if not primary_params.get('login_host') and not primary_params.get('login_unix_socket'):
                raise Failed('options', 'primary.login_host is required (the primary as '
                             'this host reaches it)', 'source')
            try:
                primary = Connection(primary_params)
            except DbError as e:
                raise on_primary(e)
        if phase == 'all':
            verify(module, primary, replica, out)
        elif phase == 'pause':
            pause(module, replica, out)
        elif phase == 'primary':
            scan_primary(module, primary, out)
        elif phase == 'compare':
            compare_with_primary(module, replica, out)
        else:
            resume_paused(module, replica, out)
    except DbError as e:
        connected = primary if getattr(e, 'on_primary', False) else replica
        raise as_failure(e, connected is not None)
    finally:
        out['queries'] = shown_queries((primary.queries if primary else []) +
                                       (replica.queries if replica else []))
        for conn in (primary, replica):
            if conn:
                conn.close()
    if 'equal' in out and not out['equal'] and module.params['fail_on_mismatch']:
        raise Failed('mismatch', out.pop('msg'))


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        primary=dict(type='dict', options=login_argument_spec()),
        connection_name=dict(type='str', default=''),
        databases=dict(type='list', elements='str'),
        exclude_databases=dict(type='list', elements='str', default=list(SYSTEM_SCHEMAS)),
        catch_up_timeout=dict(type='int', default=600),
        fail_on_mismatch=dict(type='bool', default=True),
        phase=dict(type='str', default='all', choices=list(PHASES)),
        paused=dict(type='dict', options=dict(
            threads=dict(type='list', elements='str', required=True,
                         choices=['IO_THREAD', 'SQL_THREAD']),
            since=dict(type='float'))),
        primary_scan=dict(type='dict', options=dict(
            gtid=dict(type='str', default=''),
            binlog_file=dict(type='str'),
            binlog_pos=dict(type='int'),
            checksums=dict(type='list', elements='raw', default=[]),
            skipped_tables=dict(type='dict', default={}),
            snapshot_seconds=dict(type='float'),
            rounds=dict(type='list', elements='dict', default=[]),
            tables=dict(type='dict', default={}),
            unchunked_tables=dict(type='dict', default={}))),
        chunked=dict(type='bool', default=True),
        chunk_seconds=dict(type='float', default=0.5),
        max_snapshot_seconds=dict(type='float', default=5.0),
        max_rows_per_second=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('phase', 'compare', ['paused', 'primary_scan']),
                                        ('phase', 'resume', ['paused'])])
    phase = module.params['phase']
    out = {}
    try:
        check(module, phase, out)
    except Failure as e:
        e.step = phase
        queries = out.pop('queries', [])
        if e.code == 'mismatch':  # the verdict, as on success
            where, kept = None, dict(out, changed=False)
        else:
            where = 'checksum'
            kept = dict((k, out[k]) for k in ('resumed', 'replica_paused_seconds') if k in out)
        failure.fail(module, e, where, queries=queries, **kept)
    module.exit_json(changed=False, **out)


if __name__ == '__main__':
    main()
