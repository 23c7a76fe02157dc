#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: replication_info
short_description: Diagnose a MariaDB replica and tell whether it needs a rebuild
version_added: 0.1.0
description:
  - Read-only. Returns C(SHOW ALL SLAVES STATUS) normalised per connection, the server's
    GTID positions and replication settings, and a diagnosis per connection C(healthy),
    C(lagging), C(stopped), C(broken), C(diverged) or C(not_configured), with
    C(needs_rebuild) and a reason a person can act on.
  - When this host's own server (a unix socket or a loopback address) refuses the connection
    because it does not listen (errors 2002, 2003), the module does not fail; it returns
    C(state=down), C(needs_rebuild=false), a reason that says whether a mariadbd process
    runs at all, and the server's paths read from its option files (C(datadir),
    C(server_paths)), since C(SELECT @@datadir) cannot be asked. A refused login (1045) or a
    remote server that cannot be reached still fails. I(fail_when_down) makes a down server
    fail too (for a host that must run, such as the primary).
  - The rebuild rule (one table in C(module_utils/replica_status.py)) rebuilds at once on IO
    errors 1236, 1945, 1947, 1951, 1955 and SQL errors 1032, 1034, 1049, 1062, 1146, 1950;
    never on network or login errors (2003, 2013, 2026, 1158, 1045, 1129, 1130, 1040), which
    need the network or the credentials fixed; errant GTIDs (the replica holds transactions
    its primary never had) make C(diverged) and a rebuild. Lagging or cleanly stopped is not
    a rebuild. The lists can be overridden.
  - Errant GTIDs are found by comparing the replica's C(gtid_binlog_state) with the
    primary's, given as I(primary_gtid_binlog_state) or read with I(primary) login options.
options:
  primary_gtid_binlog_state:
    description:
      - The primary's C(@@gtid_binlog_state), to find errant GTIDs.
      - With multi-source replication, give the states of every primary joined with commas
        (each primary writes its own domain); a GTID none of them covers is errant.
    type: str
  lag_seconds:
    description: More than this many seconds behind is C(lagging).
    type: int
    default: 60
  rebuild_io_errors:
    description: IO thread errors that call for a rebuild.
    type: list
    elements: int
    default: [1236, 1945, 1947, 1951, 1955]
  rebuild_sql_errors:
    description: SQL thread errors that call for a rebuild.
    type: list
    elements: int
    default: [1032, 1034, 1049, 1062, 1146, 1950]
  never_rebuild_errors:
    description: Errors that never call for a rebuild (network, login).
    type: list
    elements: int
    default: [2003, 2013, 2026, 1158, 1045, 1129, 1130, 1040]
  fail_when_down:
    description:
      - Fail when this host's server is down instead of returning C(state=down).
    type: bool
    default: false
  binlog_restarts:
    description:
      - Read this server's binlog files (from their directory, so the module must run on
        the server's host with the right to read them) and return C(binlog_restarts), the
        files a server start opened after earlier history, each with the fingerprint of its
        first transaction. Run on the primary, it tells where a primary that restarted
        behind its replicas (a crash with C(sync_binlog=0)) reused GTID numbers they already
        hold with other transactions, which no GTID comparison sees.
    type: bool
    default: false
  binary_logs:
    description:
      - Return C(binary_logs), the binlog files the server lists (C(SHOW BINARY LOGS)), to
        tell whether the file a copy's coordinates start from is still there before a
        replica is pointed at it in file/position mode.
    type: bool
    default: false
  fingerprint_gtids:
    description:
      - GTIDs whose transactions to find in this server's binlog files and return in
        C(fingerprints) (the original commit time, the tables and the row images or
        statements, which a replica with C(log_slave_updates) logs as its primary did).
        Compared by the C(reseed.mariadb.diagnosis) filter, what the primary and a replica
        hold under the same GTID tells whether they are the same transaction.
    type: list
    elements: str
    default: []
  service_name:
    description:
      - The server's service (a systemd unit such as C(mariadb) or C(mariadb@node2), or a
        SysV script), described in C(server_service). A stopped instance's paths are read
        with its option group suffix (C([mysqld.node2])).
    type: str
    default: mariadb
extends_documentation_fragment:
  - reseed.mariadb.login
  - reseed.mariadb.login.primary
notes:
  - Supports check mode; it changes nothing in any mode.
seealso:
  - module: reseed.mariadb.replication
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Diagnose the replica, errant GTIDs included
  reseed.mariadb.replication_info:
    primary_gtid_binlog_state: "{{ primary_info.gtid_binlog_state }}"
  register: diag

- name: Rebuild only when needed
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ diag.state }} ({{ diag.reason }})"
  when: diag.needs_rebuild

- name: Read the primary's state; a primary that is down is an error, not a diagnosis
  reseed.mariadb.replication_info:
    fail_when_down: true
  delegate_to: "{{ groups['mariadb_primary'][0] }}"
  register: primary_info
'''

RETURN = r'''
state:
  description:
    - The diagnosis of the default connection (or of the only one) - C(healthy),
      C(lagging), C(stopped), C(broken), C(diverged), C(not_configured) - or C(down) when
      this host's server does not accept connections.
  returned: always
  type: str
  sample: broken
needs_rebuild:
  description: Whether any connection needs a rebuild.
  returned: always
  type: bool
  sample: true
reason:
  description: Why, in one line.
  returned: always
  type: str
  sample: "IO thread error 1236: ... (rebuild: the data can no longer follow the primary)"
connections:
  description: Per connection, its normalised status plus state, needs_rebuild and reason (empty when C(down)).
  returned: always
  type: list
  elements: dict
datadir:
  description:
    - The server's datadir, without a trailing slash; from C(@@datadir), or when C(down)
      from its option files (null when they cannot be read, see C(reason)).
  returned: always
  type: str
  sample: /var/lib/mysql
redo:
  description:
    - The server's redo position when it was read, C(lsn) (C(Innodb_lsn_current), null
      without InnoDB), C(log_file_size) (C(innodb_log_file_size)) and C(at) (seconds since the
      epoch). It is the I(redo_sample) of M(reseed.mariadb.backup_stream), which measures the
      source's redo rate from it.
  returned: when the server is up
  type: dict
  sample: {lsn: 1538311, log_file_size: 100663296, at: 1796614683.2}
datadir_mount:
  description:
    - The mount that holds the datadir, from this host's mount table (C(/proc/self/mountinfo),
      symlinks resolved), also when C(down) (the datadir from the option files). The one
      answer the collection uses to ask whether the datadir is a mount point (the role
      stages the copy inside it then, M(reseed.mariadb.datadir_swap) reads the same table).
      A bind mount is a mount point, even one of a directory of its parent's filesystem
      (same C(st_dev)), since a rename across two mounts fails with C(EXDEV).
    - Null when the datadir is unknown or the mount table cannot be read (a warning says why).
  returned: always
  type: dict
  contains:
    mount_point:
      description: Whether the datadir is the target of a mount (its own volume, or a bind mount).
      type: bool
      sample: true
    target:
      description: Where the mount that holds the datadir is mounted (the datadir itself when I(mount_point)).
      type: str
      sample: /data/mysql
    fstype:
      description: That mount's filesystem type.
      type: str
      sample: ext4
    source:
      description: That mount's source (a device, or what the filesystem calls it).
      type: str
      sample: /dev/vdb
    root:
      description: The directory of the filesystem seen at I(target); not C(/) for a bind mount of a subdirectory.
      type: str
      sample: /
server_service:
  description:
    - This host's server unit, read once for the role and the modules (module_utils/service.py);
      null when the login options point at another host's server.
  returned: always
  type: dict
  contains:
    manager:
      description: C(systemd) when systemd runs the host, else C(service) (SysV).
      type: str
    unit:
      description: The unit's full name.
      type: str
    active_state:
      description: Its C(ActiveState) (systemd only, else null).
      type: str
    unit_file_state:
      description: Its C(UnitFileState), e.g. C(enabled) (systemd only).
      type: str
    main_pid:
      description: Its C(MainPID), null when none (systemd only).
      type: int
    timeout_start_seconds:
      description:
        - Its C(TimeoutStartSec) in seconds (null for infinity, or not systemd). C(systemctl
          start) waits that long for a start, a long crash recovery included.
      type: float
    outside_unit:
      description:
        - One line when a mariadbd serving this datadir runs outside the unit (started by
          hand while the unit is inactive, which C(systemctl stop) would not stop), else null.
      type: str
    sandbox_problem:
      description:
        - One line when the unit's sandbox (C(ProtectHome), C(ProtectSystem),
          C(ReadWritePaths)) hides or seals the datadir or a log folder, else null.
      type: str
  sample: {"manager": "systemd", "unit": "mariadb.service", "active_state": "active",
           "unit_file_state": "enabled", "main_pid": 4211, "timeout_start_seconds": 900.0,
           "outside_unit": null, "sandbox_problem": null}
server_pids:
  description:
    - When C(down), the mariadbd processes that serve this datadir (by their working
      directory) although they do not accept connections; empty when none runs.
  returned: when I(state=down)
  type: list
  elements: int
  sample: []
server_paths:
  description:
    - When C(down), the server's paths as its option files give them (C(my_print_defaults
      --mysqld); C(/var/lib/mysql) when no option names the datadir), named as its variables.
  returned: when I(state=down) and the option files could be read
  type: dict
  sample:
    datadir: /var/lib/mysql
    pid_file: /run/mysqld/mysqld.pid
    log_error: /var/log/mysql/error.log
    log_bin_basename: /var/lib/mysql/mysql-bin
    log_bin_index: /var/lib/mysql/mysql-bin.index
    relay_log_basename: /var/lib/mysql/relay-bin
    relay_log_index: /var/lib/mysql/relay-bin.index
    innodb_data_home_dir: null
    innodb_log_group_home_dir: null
    innodb_undo_directory: null
errant_gtids:
  description: GTIDs this server holds that the primary's binlog state does not.
  returned: when the primary's state is known
  type: list
  elements: str
binary_logs:
  description: With I(binary_logs), the names of the server's binlog files, oldest first.
  returned: when I(binary_logs) and the server answers (empty when it logs no binlog)
  type: list
  elements: str
  sample: [mysql-bin.000041, mysql-bin.000042]
binlog_restarts:
  description:
    - With I(binlog_restarts), the binlog files this server opened as it started after
      earlier history (their C(Gtid_list) not empty), oldest first, each with its first
      transaction's fingerprint (as in C(fingerprints)). Plain rotations and the server's
      very first file are left out.
  returned: when I(binlog_restarts) and the server answers
  type: list
  elements: dict
  sample:
    - file: mysql-bin.000003
      created_at_startup: true
      gtid_list: 0-101-7
      first_gtid: 0-101-8
      first_position: 342
      fingerprint: {gtid: 0-101-8, written: "2026-12-04 00:37:16 UTC", tables: [labdb.log]}
fingerprints:
  description:
    - With I(fingerprint_gtids), per GTID asked, C(held) (whether this server applied it,
      its C(gtid_current_pos) at or past it), C(found) and the C(fingerprint) (C(gtid),
      C(file), C(position), C(timestamp), C(written), C(tables), C(shape), C(digest)), or
      the C(reason) it is not in this server's binlog.
  returned: when I(fingerprint_gtids) and the server answers
  type: dict
binlog_bytes_read:
  description: The bytes of binlog files read for I(binlog_restarts) and I(fingerprint_gtids).
  returned: when either is asked and the server answers
  type: int
queries:
  description: The statements run (on the primary prefixed with C(primary:)); empty when C(down).
  returned: always
  type: list
  elements: str
failure:
  description:
    - "What failed, in fields (C(msg) is C(replication_info: <message>), or
      C(replication_info on <host>: <message>) for this host's server down or its binlog
      files); C(step), C(side) (C(source), C(replica) or C(link)), C(code),
      C(changed_nothing) (always true: it only reads), C(message). Codes, by step, below."
    - C(read replica) (the server of the login options, side C(replica), also when the
      module runs on the primary) C(server_down) (with I(fail_when_down)), C(login),
      C(no_pymysql), C(statement_error_<errno>).
    - C(read primary) (I(primary)) C(login), C(statement_error_<errno>) - side C(link) for
      errors 2003, 2005, 2006, 2013, 2026 (cannot connect, or the connection was lost),
      else C(source).
    - C(read binlog) C(binlog_permission) (run it with become), C(binlog_error),
      C(gtid_error) - side C(replica). C(diagnose) C(primary_gtid_state) (the primary's
      C(gtid_binlog_state) is not GTIDs) - side C(source).
  returned: on failure
  type: dict
  sample: {step: read primary, side: link, code: login, changed_nothing: true,
           message: "reading the primary's gtid_binlog_state (check the primary login options): cannot connect ..."}
gtid_current_pos:
  description: "@@gtid_current_pos"
  returned: when the server answers (I(state) is not C(down))
  type: str
gtid_slave_pos:
  description: "@@gtid_slave_pos"
  returned: when the server answers (I(state) is not C(down))
  type: str
gtid_binlog_pos:
  description: "@@gtid_binlog_pos"
  returned: when the server answers (I(state) is not C(down))
  type: str
gtid_binlog_state:
  description: "@@gtid_binlog_state"
  returned: when the server answers (I(state) is not C(down))
  type: str
gtid_strict_mode:
  description: "@@gtid_strict_mode"
  returned: when the server answers (I(state) is not C(down))
  type: bool
read_only:
  description: "@@read_only"
  returned: when the server answers (I(state) is not C(down))
  type: bool
server_id:
  description: "@@server_id"
  returned: when the server answers (I(state) is not C(down))
  type: int
log_bin:
  description: "@@log_bin"
  returned: when the server answers (I(state) is not C(down))
  type: bool
log_slave_updates:
  description: "@@log_slave_updates (whether this server logs what it applies as a replica)"
  returned: when the server answers (I(state) is not C(down))
  type: bool
version:
  description: "@@version"
  returned: when the server answers (I(state) is not C(down))
  type: str
tls:
  description:
    - Whether the server accepts TLS connections (C(@@have_ssl) is C(YES)). MariaDB 11.4 and
      later do by default, with a certificate they make themselves; Debian 12's 10.11 does
      only once it is given one.
  returned: when the server answers (I(state) is not C(down))
  type: bool
'''

import errno
import os
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import binlog as binloglib
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils import datadir as dd
from ansible_collections.reseed.mariadb.plugins.module_utils import gtid as gtidlib
from ansible_collections.reseed.mariadb.plugins.module_utils import mounts
from ansible_collections.reseed.mariadb.plugins.module_utils import replica_status as rs
from ansible_collections.reseed.mariadb.plugins.module_utils import service
from ansible_collections.reseed.mariadb.plugins.module_utils import source_watch
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    SERVER_DOWN_ERRORS, Connection, DbError, connect_kwargs, local_server, login_argument_spec)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure

VARIABLES = ('gtid_current_pos', 'gtid_slave_pos', 'gtid_binlog_pos', 'gtid_binlog_state',
             'gtid_strict_mode', 'read_only', 'server_id', 'log_bin', 'version', 'datadir',
             'have_ssl', 'log_bin_basename', 'log_slave_updates')

MOUNT_FACTS = ('mount_point', 'target', 'fstype', 'source', 'root')
# The primary cannot be reached, or the connection to it was lost: the link's, not its own.


class Failed(Failure):
    """A failure of this module (it only reads: it changed nothing); here: whether the msg
    names this host (its server down, its binlog files)."""

    def __init__(self, step, side, code, message, here=False):
        Failure.__init__(self, step, side, code, message)
        self.here = here


def as_failure(e, step, side, connected):
    """The one place a DbError becomes a Failure: a connection that could not be made
    (login, or no PyMySQL) or a statement that failed; on the primary, an error of the link
    to it when it cannot be reached or was lost."""
    if side == 'source' and e.code in failure.LINK_ERRORS:
        side = 'link'
    code = failure.db_code(e, connected)
    what = ('reading the primary\'s gtid_binlog_state (check the primary login options)'
            if step == 'read primary' else
            'reading this host\'s server status (variables, SHOW ALL SLAVES STATUS)')
    return Failed(step, side, code, '%s: %s' % (what, e))


def datadir_mount(module, datadir):
    """The datadir's mount facts (module_utils/mounts.py), or None when unknown."""
    if not datadir:
        return None
    try:
        facts = mounts.path_facts(datadir)
    except (IOError, OSError, mounts.MountinfoError) as e:
        module.warn('replication_info on %s: cannot read the mount table %s (%s): '
                    'datadir_mount is null' % (socket.gethostname(), mounts.MOUNTINFO, e))
        return None
    return dict((name, facts[name]) for name in MOUNT_FACTS)


def server_service(module, datadir, log_paths, pids=None):
    """This host's server unit (service.Service.facts) for the datadir, or None when the
    login options point at another host."""
    if not datadir or not local_server(connect_kwargs(module.params)):
        return None
    if pids is None:
        pids = service.serving(service.server_processes(), datadir)
    return service.Service(module, module.params['service_name']).facts(
        pids, dd.server_dirs(datadir, log_paths))


def down(module, error, result):
    """This host's server does not listen: say so, with its paths from the option files
    (or, with fail_when_down, a Failure; result gets what it returns then)."""
    processes = service.server_processes()
    paths, paths_error = service.option_file_paths(
        module, service.instance_of(module.params['service_name']))
    datadir = paths['datadir'] if paths else None
    pids = service.serving(processes, datadir)
    state, needs, reason = rs.diagnose_down(error, pids)
    if paths_error:
        reason += '; its paths cannot be read from its option files: ' + paths_error
    if module.params['fail_when_down']:
        result.update(state=state, server_pids=pids)
        raise Failed('read replica', 'replica', 'server_down', '%s: this server must run here; '
                     'start it, or find out why it does not' % reason, here=True)
    out = dict(state=state, needs_rebuild=needs, reason=reason, connections=[],
               datadir=datadir, server_pids=pids, datadir_mount=datadir_mount(module, datadir),
               server_service=server_service(module, datadir, paths or {}, pids))
    if paths:
        out['server_paths'] = paths
    return out


def read_binlog(module, names, basename, info):
    """binlog_restarts and fingerprints, read from this server's binlog files."""
    p = module.params
    step = 'reading the binlog files in %s' % (os.path.dirname(basename or '') or '?')
    try:
        binlog = binloglib.Binlog(names, os.path.dirname(basename)) if names else None
        out = dict(binlog_bytes_read=0)
        if p['binlog_restarts']:
            out['binlog_restarts'] = binlog.restarts() if binlog else []
        if p['fingerprint_gtids']:
            step = 'finding the transactions of %s in them' % ','.join(p['fingerprint_gtids'])
            out['fingerprints'] = binloglib.fingerprints(
                binlog, p['fingerprint_gtids'], gtidlib.state(info['gtid_binlog_state']),
                gtidlib.position(info['gtid_current_pos']), info['log_slave_updates'])
        out['binlog_bytes_read'] = binlog.bytes_read if binlog else 0
    except (IOError, OSError, binloglib.BinlogError, gtidlib.GtidError) as e:
        denied = getattr(e, 'errno', None) == errno.EACCES
        code = ('binlog_permission' if denied else
                'gtid_error' if isinstance(e, gtidlib.GtidError) else 'binlog_error')
        hint = '; the module reads them as the user it runs as: run it with become' if denied else ''
        raise Failed('read binlog', 'replica', code, '%s: %s%s' % (step, e, hint), here=True)
    return out


def read_servers(module, result):
    """This server's variables and replication rows (and binlog names), and the primary's
    gtid_binlog_state when I(primary) is given: (info, rows, binlog names, primary state),
    or the result of a server that is down."""
    p = module.params
    db = primary = None
    step, side = 'read replica', 'replica'
    try:
        try:
            db = Connection(p)
        except DbError as e:
            if e.code in SERVER_DOWN_ERRORS and local_server(connect_kwargs(p)):
                return down(module, str(e), result)
            raise
        info = dict((v, db.variable(v)) for v in VARIABLES)
        info['redo'] = source_watch.redo_sample(db)
        rows = db.query('SHOW ALL SLAVES STATUS')
        binlog_names = None
        if (p['binlog_restarts'] or p['fingerprint_gtids'] or p['binary_logs']) and \
                int(info['log_bin'] or 0):
            binlog_names = [r['Log_name'] for r in db.query('SHOW BINARY LOGS')]
        result['queries'] = db.queries
        primary_state = p['primary_gtid_binlog_state']
        if p['primary']:
            step, side = 'read primary', 'source'
            primary = Connection(p['primary'])
            primary_state = primary.variable('gtid_binlog_state') or ''
            result['queries'] = db.queries + ['primary: ' + q for q in primary.queries]
    except DbError as e:
        raise as_failure(e, step, side, connected=bool(primary if side == 'source' else db))
    finally:
        for conn in (db, primary):
            if conn:
                conn.close()
    return diagnosis(module, info, rows, binlog_names, primary_state, result['queries'])


def diagnosis(module, info, rows, binlog_names, primary_state, queries):
    """The server's result: its variables made types, the diagnosis of every connection."""
    p = module.params
    for flag in ('gtid_strict_mode', 'read_only', 'log_bin'):
        info[flag] = bool(int(info[flag] or 0))
    info['server_id'] = int(info['server_id'])
    info['datadir'] = (info['datadir'] or '').rstrip('/') or '/'
    info['tls'] = (info.pop('have_ssl') or '').upper() == 'YES'
    basename = info.pop('log_bin_basename')
    info['log_slave_updates'] = bool(int(info.pop('log_slave_updates') or 0))
    if p['binlog_restarts'] or p['fingerprint_gtids']:
        info.update(read_binlog(module, binlog_names, basename, info))
    if p['binary_logs']:
        info['binary_logs'] = binlog_names or []
    info['datadir_mount'] = datadir_mount(module, info['datadir'])
    info['server_service'] = server_service(module, info['datadir'],
                                            dict(log_bin_basename=basename))
    errant = None
    if primary_state is not None:
        try:
            errant = gtidlib.errant(info['gtid_binlog_state'], primary_state)
        except gtidlib.GtidError as e:
            raise Failed('diagnose', 'source', 'primary_gtid_state', 'the primary\'s '
                         'gtid_binlog_state cannot be read as GTIDs: %s' % e)
        info['errant_gtids'] = ['%d-%d-%d' % g for g in errant]
    rules = dict(lag_seconds=p['lag_seconds'], rebuild_io_errors=p['rebuild_io_errors'],
                 rebuild_sql_errors=p['rebuild_sql_errors'],
                 never_rebuild_errors=p['never_rebuild_errors'])
    state, needs, reason, connections = rs.diagnose_server(
        [rs.normalize(row) for row in rows], errant, **rules)
    return dict(info, state=state, needs_rebuild=needs, reason=reason, connections=connections,
                queries=queries)


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        primary_gtid_binlog_state=dict(type='str'),
        primary=dict(type='dict', options=login_argument_spec()),
        lag_seconds=dict(type='int', default=rs.DEFAULT_LAG_SECONDS),
        rebuild_io_errors=dict(type='list', elements='int', default=list(rs.REBUILD_IO_ERRORS)),
        rebuild_sql_errors=dict(type='list', elements='int',
                                default=list(rs.REBUILD_SQL_ERRORS)),
        never_rebuild_errors=dict(type='list', elements='int',
                                  default=list(rs.NEVER_REBUILD_ERRORS)),
        fail_when_down=dict(type='bool', default=False),
        binlog_restarts=dict(type='bool', default=False),
        binary_logs=dict(type='bool', default=False),
        fingerprint_gtids=dict(type='list', elements='str', default=[]),
        service_name=dict(type='str', default='mariadb'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('primary', 'primary_gtid_binlog_state')])
    result = dict(changed=False, queries=[])
    try:
        result.update(read_servers(module, result))
    except Failed as e:
        failure.fail(module, e, 'replication_info' + (' on %s' % socket.gethostname()
                                                      if e.here else ''), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
