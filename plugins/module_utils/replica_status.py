# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replica's status, normalised, and the diagnosis: healthy, lagging, stopped, broken,
diverged, not configured or down, with whether it needs a rebuild and why. Pure functions,
but status_row, which reads the status.

THE REBUILD RULE (one table; users override it with the modules' parameters)
----------------------------------------------------------------------------
Rebuild at once on these errors: the replica's data or position can no longer follow the
primary, and skipping events would only move the problem (the rule mariadb-operator's
replica recovery applies in production).
  IO thread: 1236 (position not in the primary's binlog: purged, diverged or invented),
             1945, 1947, 1951, 1955 (GTID state impossible to continue from)
  SQL thread: 1032 (row not found), 1034 (index corrupt), 1049 (unknown database),
              1062 (duplicate key), 1146 (table missing), 1950 (out-of-order GTID under
              gtid_strict_mode)
Never rebuild on these: the data is fine; fix the network or the credentials.
  2003, 2013, 2026 (cannot connect, lost, TLS), 1158 (network read), 1045 (access denied),
  1129, 1130 (host blocked or not allowed), 1040 (too many connections)
Errant GTIDs (the replica holds transactions its primary never had), and another transaction
than the primary's under the same GTID (a primary that restarted behind it reused the
numbers: module_utils/binlog.py), make `diverged` and a
rebuild, also while the IO thread shows a network error (the primary's own restart), which
alone would say "fix the network". Lagging or cleanly stopped is never a rebuild. Any other error is `broken` without
a rebuild: look at it first.
A server that does not listen (this host's own, refused with 2002/2003) is `down`, never a
rebuild by rule: a DBA decides (the role rebuilds it with replica_rebuild_force=true).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

REBUILD_IO_ERRORS = (1236, 1945, 1947, 1951, 1955)
REBUILD_SQL_ERRORS = (1032, 1034, 1049, 1062, 1146, 1950)
NEVER_REBUILD_ERRORS = (2003, 2013, 2026, 1158, 1045, 1129, 1130, 1040)
# Slave_IO_Running values of a thread that runs (still connecting included).
IO_RUNNING = ('Yes', 'Connecting', 'Preparing')


def status_row(db, name):
    """The connection's status row, or None when it does not exist. SHOW ALL SLAVES STATUS
    rather than SHOW SLAVE 'name' STATUS: only it shows the heartbeat period. Connection
    names compare without case, as the server compares them."""
    for row in db.query('SHOW ALL SLAVES STATUS'):
        if (row.get('Connection_name') or '').lower() == name.lower():
            return row
    return None


DEFAULT_LAG_SECONDS = 60

FIELDS = {  # SHOW SLAVE STATUS field -> our key, converter
    'Connection_name': ('connection_name', str),
    'Master_Host': ('primary_host', str),
    'Master_Port': ('primary_port', int),
    'Master_User': ('primary_user', str),
    'Slave_IO_Running': ('io_running', str),
    'Slave_SQL_Running': ('sql_running', str),
    'Seconds_Behind_Master': ('seconds_behind', int),
    'Last_IO_Errno': ('last_io_errno', int),
    'Last_IO_Error': ('last_io_error', str),
    'Last_SQL_Errno': ('last_sql_errno', int),
    'Last_SQL_Error': ('last_sql_error', str),
    'Using_Gtid': ('using_gtid', str),
    'Gtid_IO_Pos': ('gtid_io_pos', str),
    'Master_Log_File': ('primary_log_file', str),
    'Read_Master_Log_Pos': ('read_primary_log_pos', int),
    'Relay_Master_Log_File': ('relay_primary_log_file', str),
    'Exec_Master_Log_Pos': ('exec_primary_log_pos', int),
    'SQL_Delay': ('sql_delay', int),
    'Master_SSL_Allowed': ('ssl_allowed', str),
    'Connect_Retry': ('connect_retry', int),
    'Slave_SQL_Running_State': ('sql_state', str),
    'Master_Server_Id': ('primary_server_id', int),
}


def normalize(row):
    """One SHOW [ALL] SLAVE[S] STATUS row -> a dict with our names and types (text fields
    '' when empty; numbers None when NULL, as Seconds_Behind_Master with a thread stopped)."""
    out = {}
    for field, (key, kind) in FIELDS.items():
        value = row.get(field)
        if kind is str:
            out[key] = '' if value is None else str(value)
            continue
        try:
            out[key] = None if value in (None, '') else int(value)
        except (TypeError, ValueError):
            out[key] = None
    return out


def diagnose(status, errant=None, lag_seconds=DEFAULT_LAG_SECONDS,
             rebuild_io_errors=REBUILD_IO_ERRORS, rebuild_sql_errors=REBUILD_SQL_ERRORS,
             never_rebuild_errors=NEVER_REBUILD_ERRORS):
    """(state, needs_rebuild, reason) for one normalised connection (None: not configured).

    errant: the GTIDs the replica holds that its primary does not (a list), when known.
    """
    if status is None:
        return 'not_configured', False, 'replication is not configured'
    io_err, sql_err = status.get('last_io_errno') or 0, status.get('last_sql_errno') or 0
    errant_text = ''
    if errant:
        errant_text = 'errant GTIDs (the primary never had them): %s' % ','.join(
            '%d-%d-%d' % g for g in errant[:5])
    if sql_err and status.get('sql_running') != 'Yes':
        return _broken('SQL', sql_err, status.get('last_sql_error'), rebuild_sql_errors,
                       never_rebuild_errors, errant_text)
    if io_err and status.get('io_running') != 'Yes':
        return _broken('IO', io_err, status.get('last_io_error'), rebuild_io_errors,
                       never_rebuild_errors, errant_text)
    if errant:
        return 'diverged', True, errant_text
    if io_err and io_err in rebuild_io_errors:
        # Still "Connecting" but the primary answered with an error no retry can cure.
        return _broken('IO', io_err, status.get('last_io_error'), rebuild_io_errors,
                       never_rebuild_errors, errant_text)
    if status.get('io_running') != 'Yes' or status.get('sql_running') != 'Yes':
        if io_err:
            return _broken('IO', io_err, status.get('last_io_error'), rebuild_io_errors,
                           never_rebuild_errors, errant_text)
        return 'stopped', False, 'replication is stopped (IO %s, SQL %s), without error' % (
            status.get('io_running'), status.get('sql_running'))
    lag = status.get('seconds_behind')
    # A delayed replica (MASTER_DELAY) is behind by its delay on purpose.
    delay = status.get('sql_delay') or 0
    if lag is not None and lag > lag_seconds + delay:
        return 'lagging', False, '%d seconds behind the primary%s' % (
            lag, ' (%d more than its MASTER_DELAY)' % (lag - delay) if delay else '')
    return 'healthy', False, 'both threads run, %s seconds behind%s' % (
        lag, ' (MASTER_DELAY %d)' % delay if delay else '')


def diagnose_server(statuses, errant=None, divergence=None, **rules):
    """(state, needs_rebuild, reason, connections) for a whole server: statuses are its
    connections normalised (each gets its own state, needs_rebuild and reason), errant the
    GTIDs it holds that its primary does not (None when unknown), divergence a phrase when
    it holds another transaction than the primary under the same GTID (module_utils/
    binlog.py). The state is the default connection's (or the only one's); any connection
    that needs a rebuild makes the server need one, and the reason names it."""
    state, needs, reason, connections = _diagnose_connections(statuses, errant, **rules)
    if divergence:
        # Replicating without an error proves nothing here: the numbers match.
        reason = '%s (rebuild)%s' % (divergence, '' if state in ('healthy', 'lagging')
                                     else '; also ' + reason)
        state, needs = 'diverged', True
    return state, needs, reason, connections


def _diagnose_connections(statuses, errant=None, **rules):
    connections = []
    for status in statuses:
        status = dict(status)
        status['state'], status['needs_rebuild'], status['reason'] = diagnose(
            status, errant, **rules)
        connections.append(status)
    if not connections:
        state, needs, reason = diagnose(None, errant, **rules)
        if errant:
            state, needs = 'diverged', True
            reason = 'not replicating, and holds errant GTIDs: %s' % ','.join(
                '%d-%d-%d' % g for g in errant[:5])
        return state, needs, reason, connections
    main = next((c for c in connections if c['connection_name'] == ''), connections[0])
    state, reason = main['state'], main['reason']
    needs = any(c['needs_rebuild'] for c in connections)
    if needs and not main['needs_rebuild']:
        other = next(c for c in connections if c['needs_rebuild'])
        reason = 'connection %r: %s' % (other['connection_name'], other['reason'])
    return state, needs, reason, connections


def diagnose_down(error, pids):
    """(state, needs_rebuild, reason) for this host's server refusing connections (error:
    the connection's message) while pids (the mariadbd processes serving its datadir) run."""
    if pids:
        why = ('yet a mariadbd process runs (pid %s) and does not accept connections: it may '
               'be starting, stopping or hung; find out why before anything else'
               % ', '.join(str(p) for p in pids))
    else:
        why = 'no mariadbd process runs'
    return 'down', False, 'the server is down, %s (%s)' % (why, error)


def _broken(thread, errno, message, rebuild_errors, never_errors, errant_text):
    reason = '%s thread error %d: %s' % (thread, errno, (message or '').strip())
    if errant_text and errno in never_errors:
        # A network error is no verdict on a replica that holds GTIDs the primary does not:
        # after a primary's crash and restart its IO thread shows 2003 (refused while the
        # primary was down) and would, once it reconnects, go on past the divergence.
        return 'diverged', True, '%s; its %s (rebuild: the primary lost them or never had them)' % (
            errant_text, reason)
    if errno in rebuild_errors:
        needs, why = True, 'rebuild: the data can no longer follow the primary'
    elif errno in never_errors:
        needs, why = False, 'no rebuild: fix the network or the credentials'
    else:
        needs, why = False, 'no rebuild by rule: look at the error first'
    if errant_text:
        needs, why = True, 'rebuild: ' + errant_text
    return 'broken', needs, '%s (%s)' % (reason, why)
