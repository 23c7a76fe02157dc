# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metadata files mariadb-backup writes into a copy, parsed. Pure functions.

MariaDB 10.6 to 11.0 write xtrabackup_*; 11.1 and later mariadb_backup_* (MDEV-18931):
both names are read, the newer first.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

PREFIXES = ('mariadb_backup_', 'xtrabackup_')
# Written into the staging directory by backup_stream once the whole stream is extracted AND
# mariadb-backup ended with "completed OK!" (the seal); a file, so MariaDB never takes it for
# a database.
RECEIVED_MARKER = 'reseed_received'
GTID_LIST = re.compile(r'^\d+-\d+-\d+(,\d+-\d+-\d+)*$')


class MetadataError(ValueError):
    """A metadata file is missing or malformed; the message names the file."""


def find(directory, suffix):
    """Path of <prefix><suffix> in directory for the first prefix that exists, or None."""
    for prefix in PREFIXES:
        path = os.path.join(directory, prefix + suffix)
        if os.path.exists(path):
            return path
    return None


def normalize_gtid(text, where):
    """'0-1-13, 5-1-1' -> '0-1-13,5-1-1'; '' stays ''. Anything else is an error."""
    gtid = ''.join((text or '').split())
    if gtid and not GTID_LIST.match(gtid):
        raise MetadataError('%s: %r is not a GTID list (domain-server-sequence, comma '
                            'separated)' % (where, text))
    return gtid


def parse_binlog_info(text, name='xtrabackup_binlog_info'):
    """'FILE<TAB>POS<TAB>GTID' -> dict(binlog_file, binlog_pos, gtid).

    The GTID may be empty (its tab kept) or absent; it may list several domains.
    """
    lines = [line for line in (text or '').splitlines() if line.strip()]
    if len(lines) != 1:
        raise MetadataError('%s: expected one line "file<TAB>position<TAB>gtid", found %d'
                            % (name, len(lines)))
    fields = lines[0].split('\t') if '\t' in lines[0] else lines[0].split()
    if len(fields) < 2 or not fields[0].strip():
        raise MetadataError('%s: expected "file<TAB>position<TAB>gtid", found %r'
                            % (name, lines[0]))
    try:
        pos = int(fields[1])
    except ValueError:
        raise MetadataError('%s: position %r is not a number' % (name, fields[1]))
    if pos < 4:
        raise MetadataError('%s: position %d is before the first event (4)' % (name, pos))
    gtid = normalize_gtid(','.join(fields[2:]), name)
    return {'binlog_file': fields[0].strip(), 'binlog_pos': pos, 'gtid': gtid}


SET_GTID = re.compile(r"SET\s+GLOBAL\s+gtid_slave_pos\s*=\s*'([^']*)'", re.I)
LOG_FILE = re.compile(r"MASTER_LOG_FILE\s*=\s*'([^']+)'", re.I)
LOG_POS = re.compile(r"MASTER_LOG_POS\s*=\s*(\d+)", re.I)
USE_GTID = re.compile(r"master_use_gtid\s*=\s*(\w+)", re.I)


def parse_slave_info(text, name='xtrabackup_slave_info'):
    """The primary's coordinates a copy taken from a replica recorded (--slave-info).

    Returns dict(gtid_slave_pos, master_log_file, master_log_pos, use_gtid); values that the
    file does not give are None. MDEV-19264: with an empty gtid_slave_pos the file gives
    file and position instead.
    """
    text = text or ''
    gtid = SET_GTID.search(text)
    log_file, log_pos, use_gtid = LOG_FILE.search(text), LOG_POS.search(text), USE_GTID.search(text)
    if not (gtid or log_file or use_gtid):
        raise MetadataError('%s: no "SET GLOBAL gtid_slave_pos" nor "CHANGE MASTER TO" '
                            'found' % name)
    if bool(log_file) != bool(log_pos):
        raise MetadataError('%s: MASTER_LOG_FILE and MASTER_LOG_POS go together' % name)
    return {
        'gtid_slave_pos': normalize_gtid(gtid.group(1), name) if gtid else None,
        'master_log_file': log_file.group(1) if log_file else None,
        'master_log_pos': int(log_pos.group(1)) if log_pos else None,
        'use_gtid': use_gtid.group(1).lower() if use_gtid else None,
    }


def parse_key_values(text, name):
    """'key = value' lines (xtrabackup_checkpoints, xtrabackup_info) -> dict."""
    out = {}
    for number, line in enumerate((text or '').splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition('=')
        if not sep or not key.strip():
            raise MetadataError('%s, line %d: expected "key = value", found %r'
                                % (name, number, line))
        out[key.strip()] = value.strip()
    return out


def parse_checkpoints(text, name='xtrabackup_checkpoints'):
    """xtrabackup_checkpoints -> dict; requires backup_type."""
    values = parse_key_values(text, name)
    if 'backup_type' not in values:
        raise MetadataError('%s: no backup_type' % name)
    return values


def is_prepared(checkpoints):
    """MariaDB writes log-applied once prepared (never Percona's full-prepared)."""
    return checkpoints.get('backup_type') in ('log-applied', 'full-prepared')


def read(directory, suffix, parser, required=True):
    """Find and parse one metadata file; None when absent and not required."""
    path = find(directory, suffix)
    if path is None:
        if required:
            raise MetadataError('%s has no %s (nor %s): not a complete mariadb-backup copy'
                                % (directory, PREFIXES[1] + suffix, PREFIXES[0] + suffix))
        return None
    with open(path) as f:
        return parser(f.read(), os.path.basename(path))


def completeness_problems(directory):
    """Why the copy in directory cannot be taken for a whole stream (empty list: it can)."""
    if not os.path.isdir(directory):
        return ['%s does not exist' % directory]
    problems = []
    if find(directory, 'checkpoints') is None:
        problems.append('no xtrabackup_checkpoints')
    # A legacy --compress copy holds xtrabackup_info.qp (decompressed before the prepare).
    if find(directory, 'info') is None and find(directory, 'info.qp') is None:
        problems.append('no xtrabackup_info (streamed last: the stream did not finish)')
    if not os.path.exists(os.path.join(directory, RECEIVED_MARKER)):
        problems.append('no %s record (the stream was not sealed: the receiving side or '
                        'mariadb-backup did not finish with success)' % RECEIVED_MARKER)
    return problems
