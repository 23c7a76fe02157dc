# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source's redo log raised for one copy, and set back after it.

mariadb-backup needs every redo record written while it copies; a redo log too small for
the writes of the copy's duration wraps ahead of it (source_watch.py). Since 10.9,
`SET GLOBAL innodb_log_file_size` resizes the log online (crash safe from 10.11.11, see
versions.online_resize_problem). The statement returns once the server has switched to the
new file, which it does as it writes: on a quiet server it may wait. Each resize here is
bounded; one that does not end in time is killed (KILL QUERY: the server then drops its new
file and keeps the old size).

Only before the copy starts and after it ends: mariadb-backup reads ib_logfile0 as it was
when it opened it, and a resize replaces that file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import threading

RESIZE_TIMEOUT = 60
UNITS = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}


def parse_size(text):
    """Bytes from a size as option files write it (2G, 512M, 1073741824); ValueError else."""
    found = re.match(r'^\s*(\d+)\s*([KMGT]?)B?\s*$', str(text), re.I)
    if not found:
        raise ValueError('not a size: %r (write it as 512M or 2G)' % (text,))
    return int(found.group(1)) * UNITS[found.group(2).upper()]


def resize(connect, size, timeout=RESIZE_TIMEOUT):
    """SET GLOBAL innodb_log_file_size = size on a connection of connect(), waited for at
    most `timeout` seconds. Returns None when done, else why not (the statement is killed
    past the timeout, so the server keeps the size it had)."""
    db = connect()
    errors = []

    def run():
        try:
            db.query('SET GLOBAL innodb_log_file_size = %s', (int(size),))
        except Exception as e:  # DbError, or the connection lost: said below
            errors.append(str(e))

    try:
        session = db.query('SELECT CONNECTION_ID() AS id')[0]['id']
        worker = threading.Thread(target=run)
        worker.daemon = True
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            killer = connect()
            try:
                killer.query('KILL QUERY %d' % int(session))
            finally:
                killer.close()
            worker.join(10)
            return ('SET GLOBAL innodb_log_file_size = %d did not end within %d s (the server '
                    'resizes as it writes) and was stopped' % (int(size), timeout))
        return errors[0] if errors else None
    finally:
        db.close()


def current_size(connect):
    db = connect()
    try:
        return int(db.variable('innodb_log_file_size'))
    finally:
        db.close()
