# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Same GTID, same transaction? A MariaDB binlog read from its files, and a fingerprint of a
transaction that does not depend on the server that logged it.

A primary that crashes with sync_binlog=0 comes back without its binlog tail and reuses the
GTID numbers of the transactions it lost, which a replica may already hold: equal numbers,
other transactions, and no GTID check sees it. Such a divergence starts where the primary
started: every server start opens a new binlog file (its Format_description event says
"created at startup") whose Gtid_list event holds the state the server started with, and the
first transaction after it is the first one that may differ. A plain rotation (FLUSH BINARY
LOGS, max_binlog_size) cannot start one.

The fingerprint of a transaction is what a replica logs of it with log_slave_updates just as
the primary did: the original commit time (the event header's timestamp, which the replica
keeps), the tables it changed, and the row images (or the statement text), never positions,
table ids, Xids or execution times. When the two servers log in other shapes (one ROW, the
other STATEMENT, or another binlog_row_image) only the time and the tables compare.

Format: MariaDB's binlog v4 (sql/log_event.h): a 4-byte magic, then events of a 19-byte
header (timestamp, type, server_id, size, end position, flags), each followed by a CRC32
when the file's Format_description event says so."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import struct
import time

MAGIC = b'\xfebin'
HEADER = struct.Struct('<IBIIIH')
QUERY, STOP, ROTATE, FORMAT_DESCRIPTION, XID, TABLE_MAP = 2, 3, 4, 15, 16, 19
ROWS_V1 = {23: 'write', 24: 'update', 25: 'delete'}
ROWS_V2 = {30: 'write', 31: 'update', 32: 'delete'}
ANNOTATE_ROWS, BINLOG_CHECKPOINT, GTID, GTID_LIST, START_ENCRYPTION = 160, 161, 162, 163, 164
# Compressed events (log_bin_compress): compared as their bytes.
COMPRESSED = {165: 'query', 166: 'write', 167: 'update', 168: 'delete', 169: 'write',
              170: 'update', 171: 'delete'}
FL_STANDALONE, FL_GROUP_COMMIT_ID = 1, 2
CHECKSUM_CRC32 = 1
ENDS = (b'COMMIT', b'ROLLBACK')


class BinlogError(Exception):
    """A binlog file that cannot be read (not a binlog, encrypted, cut short)."""


def gtid_text(gtid):
    return '%d-%d-%d' % tuple(gtid)


class BinlogFile(object):
    """One binlog file, read forwards: its head (created at startup or by a rotation, the
    Gtid_list it starts with) and its events."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.checksum = 0
        self.post_header = {}
        self.created = 0
        self.gtid_list = []
        self.bytes_read = 0

    def events(self, start=4, bodies=None):
        """(position, type, timestamp, server_id, flags, body or None) for each complete
        event from `start` (an event's position; the head is always read first). Bodies
        are read for the types in `bodies` (None: all), the others are skipped over."""
        with open(self.path, 'rb') as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(4) != MAGIC:
                raise BinlogError('%s is not a binlog file' % self.path)
            pos = 4
            self.bytes_read += 4
            while pos + HEADER.size <= size:
                header = f.read(HEADER.size)
                when, kind, server_id, length, unused, flags = HEADER.unpack(header)
                if length < HEADER.size or pos + length > size:
                    return  # the event being written, or a file cut short
                want = pos >= start and (bodies is None or kind in bodies)
                head = pos == 4 or kind in (FORMAT_DESCRIPTION, GTID_LIST, START_ENCRYPTION)
                if want or head:
                    body = f.read(length - HEADER.size)
                    self.bytes_read += length
                    if kind == FORMAT_DESCRIPTION:
                        self._format_description(body)
                    if self.checksum == CHECKSUM_CRC32 and kind != FORMAT_DESCRIPTION:
                        body = body[:-4]
                    if kind == START_ENCRYPTION:
                        raise BinlogError('%s is encrypted (encrypt_binlog): its transactions '
                                          'cannot be read here' % self.path)
                    if kind == GTID_LIST and not self.gtid_list and pos < 1024:
                        self.gtid_list = parse_gtid_list(body)
                else:
                    f.seek(length - HEADER.size, 1)
                    self.bytes_read += HEADER.size
                    body = None
                if pos >= start:
                    yield pos, kind, when, server_id, flags, body if want else None
                pos += length

    def _format_description(self, body):
        # binlog_version 2, server_version 50, created 4, header length 1, then one
        # post-header length per event type, the checksum algorithm and its CRC32.
        self.created = struct.unpack_from('<I', body, 52)[0]
        lengths = body[57:-5]
        self.post_header = dict((i + 1, n) for i, n in enumerate(bytearray(lengths)))
        self.checksum = bytearray(body[-5:-4])[0]
        if body[-5:-4] and self.checksum not in (0, CHECKSUM_CRC32):
            self.checksum = 0

    def head(self):
        """{file, created_at_startup, gtid_list, first_gtid, first_position}: how the file
        starts and its first transaction (None when it holds none)."""
        first = None
        for pos, kind, when, server_id, flags, body in self.events(bodies=(GTID,)):
            if kind == GTID:
                first = (pos, parse_gtid(body, server_id)[0])
                break
        return dict(file=self.name, created_at_startup=bool(self.created),
                    gtid_list=','.join(gtid_text(g) for g in self.gtid_list),
                    first_gtid=gtid_text(first[1]) if first else None,
                    first_position=first[0] if first else None)

    def find(self, gtid):
        """The position of the GTID event of `gtid` (domain, server, seq), or None."""
        for pos, kind, when, server_id, flags, body in self.events(bodies=(GTID,)):
            if kind == GTID and parse_gtid(body, server_id)[0] == tuple(gtid):
                return pos
        return None

    def fingerprint(self, position):
        """The fingerprint of the transaction whose GTID event is at `position`."""
        fp = None
        tables = {}
        for pos, kind, when, server_id, flags, body in self.events(start=position):
            if fp is None:
                if kind != GTID:
                    raise BinlogError('%s: no GTID event at position %d' % (self.path, pos))
                gtid, gflags = parse_gtid(body, server_id)
                fp = Fingerprint(gtid, when, self.name, pos)
                continue
            if kind in (GTID, ROTATE, STOP, XID):
                break
            if kind == TABLE_MAP:
                table_id, name = self._table_map(kind, body)
                tables[table_id] = name
            elif kind in ROWS_V1 or kind in ROWS_V2:
                self._rows(fp, kind, body, tables)
            elif kind == QUERY:
                text, database = self._query(kind, body)
                if text.strip().upper() in ENDS:
                    break
                if text.strip().upper() != b'BEGIN':
                    fp.add('query', database or '-', None, text)
                if gflags & FL_STANDALONE:
                    break
            elif kind in COMPRESSED:
                fp.add('compressed', '', COMPRESSED[kind], body[self.post_header.get(kind, 0):])
        if fp is None:
            raise BinlogError('%s: nothing at position %d' % (self.path, position))
        return fp.result()

    def _table_map(self, kind, body):
        n = self.post_header.get(kind, 8)
        table_id = _table_id(body, n)
        offset = n
        db_len = bytearray(body[offset:offset + 1])[0]
        database = body[offset + 1:offset + 1 + db_len]
        offset += 1 + db_len + 1
        table_len = bytearray(body[offset:offset + 1])[0]
        table = body[offset + 1:offset + 1 + table_len]
        return table_id, (database + b'.' + table).decode('utf-8', 'replace')

    def _rows(self, fp, kind, body, tables):
        n = self.post_header.get(kind, 8)
        table = tables.get(_table_id(body, n), '?')
        offset = n
        if kind in ROWS_V2:  # MySQL's v2 row events: extra data after the post-header
            offset += struct.unpack_from('<H', body, n - 2)[0] - 2
        width, offset = _packed_int(body, offset)
        maps = 2 if kind in (24, 31) else 1
        bitmaps = body[offset:offset + maps * ((width + 7) // 8)]
        offset += len(bitmaps)
        verb = ROWS_V1.get(kind) or ROWS_V2[kind]
        fp.add('rows', table, '%s %d %s' % (verb, width, _hex(bitmaps)), body[offset:])

    def _query(self, kind, body):
        n = self.post_header.get(kind, 13)
        db_len = bytearray(body[8:9])[0]
        status_len = struct.unpack_from('<H', body, 11)[0]
        offset = n + status_len
        database = body[offset:offset + db_len].decode('utf-8', 'replace')
        return body[offset + db_len + 1:], database


class Fingerprint(object):
    """What a transaction did, in the terms two servers share."""

    def __init__(self, gtid, when, name, position):
        self.gtid, self.when, self.file, self.position = gtid, when, name, position
        self.parts = []  # [kind, table, shape, bytes], consecutive row events merged

    def add(self, kind, table, shape, data):
        if kind == 'rows' and self.parts and self.parts[-1][:3] == [kind, table, shape]:
            self.parts[-1][3] += data  # one statement split over several row events
            return
        self.parts.append([kind, table, shape, data])

    def result(self):
        content, shape = hashlib.sha256(), hashlib.sha256()
        tables = []
        for kind, table, part_shape, data in self.parts:
            line = ('%s %s %s\n' % (kind, table, part_shape)).encode('utf-8')
            shape.update(line)
            content.update(line + struct.pack('<Q', len(data)) + data)
            if table not in tables:
                tables.append(table)
        when = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self.when))
        return dict(gtid=gtid_text(self.gtid), file=self.file, position=self.position,
                    timestamp=self.when, written=when, tables=tables,
                    shape=shape.hexdigest()[:16], digest=content.hexdigest())


def parse_gtid(body, server_id):
    """A GTID event's ((domain, server, seq), flags)."""
    seq, domain, flags = struct.unpack_from('<QIB', body, 0)
    return (domain, server_id, seq), flags


def parse_gtid_list(body):
    count = struct.unpack_from('<I', body, 0)[0] & 0x0fffffff
    return [tuple(struct.unpack_from('<IIQ', body, 4 + 16 * i)) for i in range(count)]


def _table_id(body, post_header):
    return _little(body[:4] if post_header == 6 else body[:6])


def _little(raw):
    return sum(b << (8 * i) for i, b in enumerate(bytearray(raw)))


def _packed_int(body, offset):
    first = bytearray(body[offset:offset + 1])[0]
    if first < 251:
        return first, offset + 1
    size = {252: 2, 253: 3, 254: 8}.get(first)
    if size is None:
        raise BinlogError('a row event with a malformed column count')
    return _little(body[offset + 1:offset + 1 + size]), offset + 1 + size


def _hex(data):
    return ''.join('%02x' % b for b in bytearray(data))


def compare(primary, replica):
    """None when the two fingerprints are of the same transaction, else why not (a phrase)."""
    if primary['timestamp'] != replica['timestamp']:
        return 'the primary\'s was written at %s, this replica\'s at %s' % (
            primary['written'], replica['written'])
    if primary['tables'] != replica['tables']:
        return 'the primary\'s changed %s, this replica\'s %s' % (
            ', '.join(primary['tables']) or 'nothing', ', '.join(replica['tables']) or 'nothing')
    if primary['shape'] == replica['shape'] and primary['digest'] != replica['digest']:
        return 'both were written at %s in %s, with other rows' % (
            primary['written'], ', '.join(primary['tables']))
    return None


def _domain_seq(gtid_list, domain):
    return max([n for d, s, n in gtid_list if d == domain] or [-1])


class Binlog(object):
    """A server's binlog files (SHOW BINARY LOGS, in the directory of log_bin_basename),
    their heads read once."""

    def __init__(self, names, directory):
        self.files = [BinlogFile(os.path.join(directory, name)) for name in names]
        self.heads = [f.head() for f in self.files]

    @property
    def bytes_read(self):
        return sum(f.bytes_read for f in self.files)

    def restarts(self):
        """The heads of the files a server start opened after earlier history (a non-empty
        Gtid_list), each with the fingerprint of its first transaction: where a divergence
        can start. The server's very first file and plain rotations are left out."""
        out = []
        for f, head in zip(self.files, self.heads):
            if head['created_at_startup'] and head['gtid_list'] and head['first_gtid']:
                out.append(dict(head, fingerprint=f.fingerprint(head['first_position'])))
        return out

    def locate(self, gtid):
        """(file index, position) of `gtid`, or (index, None) when the file that would hold
        it does not; index -1 when it is older than the oldest file (purged)."""
        domain, server, seq = gtid
        index = -1
        for i, f in enumerate(self.files):
            if _domain_seq(f.gtid_list, domain) < seq:
                index = i
        if index < 0:
            return -1, None
        return index, self.files[index].find(gtid)

    def fingerprint(self, gtid):
        index, position = self.locate(gtid)
        if position is None:
            return None, index
        return self.files[index].fingerprint(position), index


def fingerprints(binlog, gtids, binlog_state, current_pos, log_slave_updates=True):
    """{gtid text: {found, held, fingerprint or reason}} for the GTIDs asked, on a server
    whose binlog is `binlog` (None: log_bin is OFF), binlog_state and current_pos its
    gtid_binlog_state and gtid_current_pos as {(domain, server): seq} and {domain: (server,
    seq)}. held: the server applied the transaction (its position is at or past it)."""
    out = {}
    for text in gtids:
        domain, server, seq = gtid = parse_text(text)
        held = current_pos.get(domain, (None, -1))[1] >= seq
        entry = dict(gtid=text, held=held, found=False)
        out[text] = entry
        if binlog is None:
            entry['reason'] = 'this server has no binlog (log_bin is OFF)'
        elif binlog_state.get((domain, server), -1) < seq:
            entry['reason'] = ('not in this server\'s binlog' + (
                ' (log_slave_updates is OFF: what it applies is not logged)'
                if held and not log_slave_updates else ''))
        else:
            fp, index = binlog.fingerprint(gtid)
            if fp:
                entry.update(found=True, fingerprint=fp)
            elif index < 0:
                entry['reason'] = ('older than this server\'s oldest binlog file %s (purged, '
                                   'or the server was made from a copy)' % binlog.heads[0]['file']
                                   if binlog.heads else 'this server has no binlog file')
            else:
                entry['reason'] = 'not found in %s' % binlog.heads[index]['file']
    return out


def parse_text(text):
    parts = str(text).strip().split('-')
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise BinlogError('%r is not a GTID (domain-server-sequence)' % text)
    return tuple(int(p) for p in parts)


def same_gtid(primary_restarts, primary_fingerprints, replica_fingerprints,
              log_slave_updates=True):
    """Compare what the primary and the replica hold under the same GTIDs.

    primary_restarts: the primary's Binlog.restarts(); primary_fingerprints and
    replica_fingerprints: fingerprints() results. Returns {diverged: the first GTID (by
    sequence) whose transactions differ, or None; reason: one phrase for it; checked: the
    GTIDs compared; unchecked: [phrase] for GTIDs the replica applied but whose transaction
    cannot be compared (its own binlog does not hold them)}."""
    primary = dict((r['first_gtid'], dict(r['fingerprint'], restart=r)) for r in
                   primary_restarts or [])
    for text, entry in (primary_fingerprints or {}).items():
        if entry.get('found') and text not in primary:
            primary[text] = entry['fingerprint']
    checked, unchecked, differences = [], [], []
    for text, entry in sorted((replica_fingerprints or {}).items(),
                              key=lambda item: parse_text(item[0])[2]):
        if text not in primary or not entry.get('held'):
            continue
        if not entry.get('found'):
            if not log_slave_updates or 'log_bin' in entry.get('reason', ''):
                unchecked.append('%s: %s' % (text, entry.get('reason')))
            continue
        checked.append(text)
        why = compare(primary[text], entry['fingerprint'])
        if why:
            differences.append((text, why, primary[text].get('restart')))
    out = dict(diverged=None, reason=None, checked=checked, unchecked=unchecked)
    if differences:
        text, why, restart = differences[0]
        where = (' (the primary restarted at %s, binlog %s, behind this replica, and reused '
                 'the numbers)' % (restart['gtid_list'], restart['file']) if restart else '')
        out.update(diverged=text, reason='same GTID, other transaction: %s on the primary is '
                   'not %s here: %s%s' % (text, text, why, where))
    return out
