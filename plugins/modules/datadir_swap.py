#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: datadir_swap
short_description: Swap a prepared mariadb-backup copy in as the server's datadir, with rollback
version_added: 0.1.0
description:
  - Runs on the replica. Reads the running server's paths, stops it through the host's service
    manager (C(systemctl) when systemd runs, else C(service)), moves the old datadir aside
    (kept, named with a UTC timestamp), moves the prepared copy in its place, gives it to the
    server's user (directories C(0700)), starts the server and waits until it accepts
    connections.
  - Under systemd, the socket units that would start the service on the next connection
    (C(mariadb.socket), its C(TriggeredBy)) are stopped with it, so that nothing starts the
    old server in the middle of the swap, and those that listened are started again before
    the new server; a start refused by the unit's start rate limit is retried once after
    C(systemctl reset-failed); a datadir or log folder the unit's sandbox hides
    (C(ProtectHome)) or seals (C(ProtectSystem), C(ReadWritePaths)) is refused in the
    preflight, and a server that does not start is named with the last error of its
    C(log_error), else of the unit's journal. A server that runs outside its unit (started
    by hand while the unit is inactive, which C(systemctl stop) would not stop) is refused
    in the preflight. C(systemctl start) and C(stop) wait for the unit as long as its own
    C(TimeoutStartSec) and C(TimeoutStopSec) allow (a long crash recovery is a normal
    start); I(start_timeout) counts from when they return.
  - An instance of a template unit (I(service_name) C(mariadb@node2)) is handled the same
    way; a stopped instance's paths are read from its option files with its group suffix
    (C([mysqld.node2]) after C([mysqld])). Point the login options at its socket or port.
  - Every move is a rename within one mount, never a copy. When the datadir is a plain
    directory, the copy must be its sibling (e.g. C(/var/lib/mysql.reseed-staging)) and the
    old datadir is kept as C(<datadir>.reseed-old-<timestamp>). When the datadir is its own
    mount point (read from C(/proc/self/mountinfo); a bind mount counts, even one of a
    directory of its parent's filesystem, since a rename across two mounts fails with
    C(EXDEV)), it cannot be renamed, so the copy must be inside it, named C(#sql-reseed-staging),
    and the old entries are kept in C(<datadir>/#sql-reseed-old-<timestamp>). MariaDB lists no
    directory whose name starts with C(#sql) as a database (checked with 10.11, see
    docs/DATADIR_SWAP.md); any other directory inside a datadir becomes a database.
  - Binlogs and relay logs configured outside the datadir are moved aside too, into a
    C(reseed-old-<timestamp>) folder beside them, so the new server starts without them.
    InnoDB files configured outside the datadir are refused.
  - The new server starts with replication held and read-only, through an option file the
    module writes (I(hold_config)); remove it once replication is configured (the role
    C(replica_rebuild) does).
  - When the new server does not start, the module stops what it started, moves the copy back
    to I(staging), puts the old datadir and logs back, starts the old server and fails saying so.
  - Running it again once the copy is in place (I(staging) gone, the datadir recording that
    it came from I(staging)) changes nothing.
  - A server that does not run (this host's server refuses the connection with 2002 or 2003
    and no mariadbd process serves its datadir) is swapped too, e.g. one whose datadir no
    longer starts. Its paths come from its option files (C(my_print_defaults --mysqld);
    C(/var/lib/mysql) when no option names the datadir), there is nothing to stop, and a rollback leaves the
    server stopped, as it was. A mariadbd process that serves the datadir but does not accept
    connections is refused; the module does not stop a server it cannot talk to.
options:
  staging:
    description:
      - The prepared copy (see M(reseed.mariadb.backup_prepare)); its C(xtrabackup_checkpoints)
        must say C(backup_type = log-applied).
    type: path
    required: true
  keep_old:
    description:
      - Keep the old datadir (and external logs) where they were moved. With C(false) they are
        deleted, only after the new server accepts connections.
    type: bool
    default: true
  hold_replication:
    description:
      - Write I(hold_config) so the new server starts with C(skip_slave_start) and
        C(read_only=ON).
    type: bool
    default: true
  hold_config:
    description:
      - The option file written when I(hold_replication). Default
        C(/etc/mysql/mariadb.conf.d/99-reseed-hold.cnf) (Debian), or
        C(/etc/my.cnf.d/99-reseed-hold.cnf) when only that folder exists (RHEL). For an
        instance of a template unit (C(mariadb@node2)) the file is C(99-reseed-hold-node2.cnf)
        and its group C([mariadbd.node2]), which the host's other servers do not read.
    type: path
  service_name:
    description:
      - The server's service (a systemd unit such as C(mariadb) or C(mariadb@node2), or a
        SysV script).
    type: str
    default: mariadb
  start_timeout:
    description:
      - Seconds to wait for the new server to accept connections (and for a stop). Under
        systemd this counts from when C(systemctl start) (or C(stop)) returns, which waits
        for the unit itself, bounded by the unit's C(TimeoutStartSec).
    type: int
    default: 300
  require_receive_record:
    description:
      - Require the record the receiving side of M(reseed.mariadb.backup_stream) writes after
        a whole extraction. Set C(false) for a copy made by hand.
    type: bool
    default: true
extends_documentation_fragment:
  - reseed.mariadb.login
notes:
  - Supports check mode. The preflight runs (paths, same mount, prepared copy, service
    manager, server paths) and the result says what would happen; nothing changes.
  - A running server's paths are read from it; a stopped one's from its option files (options
    given on the server's command line, such as a systemd unit's C(MYSQLD_OPTS), are not seen).
seealso:
  - module: reseed.mariadb.backup_prepare
  - module: reseed.mariadb.replication
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Swap the prepared copy in
  reseed.mariadb.datadir_swap:
    staging: /var/lib/mysql.reseed-staging
  register: swap

- name: Say where the old datadir is
  ansible.builtin.debug:
    msg: "old datadir kept at {{ swap.old_datadir }}, {{ swap.downtime_seconds }} s down"

- name: On a host whose datadir is its own mount point
  reseed.mariadb.datadir_swap:
    staging: "/var/lib/mysql/#sql-reseed-staging"
'''

RETURN = r'''
datadir:
  description: The server's datadir.
  returned: always
  type: str
  sample: /var/lib/mysql
layout:
  description: C(rename) (plain directory, two renames) or C(entries) (mount point, its entries moved).
  returned: always
  type: str
  sample: rename
old_datadir:
  description: Where the old datadir is kept (deleted when I(keep_old=false), see C(old_deleted)).
  returned: always
  type: str
  sample: /var/lib/mysql.reseed-old-20261124T104500Z
old_deleted:
  description: Whether the old datadir was deleted (I(keep_old=false)).
  returned: success
  type: bool
external_logs:
  description: Log files outside the datadir moved aside, each with where it went.
  returned: always
  type: list
  elements: dict
  sample: [{from: /var/log/mysql/mysql-bin.000001, to: /var/log/mysql/reseed-old-20261124T104500Z/mysql-bin.000001}]
hold_config:
  description: The option file holding replication and setting read_only; remove it after replication is configured.
  returned: when I(hold_replication)
  type: str
  sample: /etc/mysql/mariadb.conf.d/99-reseed-hold.cnf
downtime_seconds:
  description:
    - From the stop command to the new server accepting connections; when the server was
      down already, from the first move.
  returned: when the swap ran
  type: float
  sample: 7.4
service_manager:
  description: C(systemd) or C(service).
  returned: always
  type: str
service:
  description:
    - The server's unit as the preflight read it (the same facts as
      M(reseed.mariadb.replication_info)'s C(server_service)). Set once the preflight got that far.
  returned: when the preflight read it
  type: dict
  sample: {"manager": "systemd", "unit": "mariadb.service", "active_state": "active", "main_pid": 4211}
server_was_running:
  description: Whether the old server ran (false - its paths read from its option files, nothing stopped).
  returned: always
  type: bool
datadir_untouched:
  description:
    - On failure, true when the datadir is the server's own as it was (nothing was moved,
      or every move was undone by the rollback); false when moves are left to repair by hand.
  returned: failure
  type: bool
failure:
  description:
    - "What failed, in fields (C(msg) is C(datadir_swap on <host>, step <step>: <message>));
      C(step), C(side) (C(source), C(replica) or C(link): always C(replica) here), C(code),
      C(changed_nothing) (the host is as it was: C(datadir_untouched), and after a failed stop
      the old server runs), C(message). Codes, by step, below."
    - C(read the server) C(login), C(read_server), C(option_files), C(not_answering).
    - C(preflight) C(no_staging), C(plan), C(mountinfo), C(unreadable), C(not_whole_copy),
      C(checkpoints), C(not_prepared), C(external_paths), C(no_service_manager),
      C(outside_unit), C(sandbox), C(old_exists), C(hold_dir).
    - C(write hold_config) C(hold_write). C(stop the old server) C(still_runs),
      C(stop_failed), C(still_accepts). C(swap the files) (a server that was down)
      C(started_again), C(not_answering).
    - C(swap the files) (a move failed, C(move_failed) inside) or C(start the new server)
      (C(start_failed) inside) C(rolled_back) (changed_nothing true, the old datadir and its
      logs back, its server as it was, the copy in I(staging), what the new server wrote kept
      in C(reseed-failed-<timestamp>)), C(rollback_failed).
  returned: on failure
  type: dict
  sample: {step: start the new server, side: replica, code: rolled_back, changed_nothing: true,
           message: "... rolled back: the old datadir is back at /var/lib/mysql and its server runs again; ..."}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import json
import os
import shutil
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import backup_metadata as bm
from ansible_collections.reseed.mariadb.plugins.module_utils import datadir as dd
from ansible_collections.reseed.mariadb.plugins.module_utils import failure, mounts
from ansible_collections.reseed.mariadb.plugins.module_utils import service as svc
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    SERVER_DOWN_ERRORS, Connection, DbError, connect_kwargs, local_server, login_argument_spec)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure
from ansible_collections.reseed.mariadb.plugins.module_utils.service import Service, last_error

HOLD_DIRS = ('/etc/mysql/mariadb.conf.d', '/etc/my.cnf.d')
HOLD_NAME = '99-reseed-hold%s.cnf'
# A refused login still means the server accepts connections.
ACCESS_DENIED = ('(1044)', '(1045)', '(1698)')


class StepError(Exception):
    """A step of the swap failed, before it becomes a Failure (after a rollback, or as is)."""

    def __init__(self, step, code, cause):
        Exception.__init__(self, '%s: %s' % (step, cause))
        self.step = step
        self.code = code
        self.cause = cause


class Swap(object):

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.host = socket.gethostname()
        self.staging = dd.normalize(self.p['staging'])
        self.ts = dd.timestamp()
        self.moves = []          # (src, dst) done, undone in reverse on failure
        self.result = dict(changed=False, external_logs=[])
        self.service = Service(module, self.p['service_name'])
        self.result['service_manager'] = self.service.manager

    def failed(self, step, code, cause, todo='', changed_nothing=None):
        """The Failure to raise: msg 'datadir_swap on <host>, step <step>: <cause>: <todo>'
        (main() adds the first part); it changed nothing while nothing was moved."""
        if changed_nothing is None:
            changed_nothing = not self.moves
        return Failure(step, 'replica', code, cause + (': ' + todo if todo else ''),
                       changed_nothing)

    # ---- reading the running server ---------------------------------------------------
    def read_server(self):
        self.running = True
        try:
            conn = Connection(self.p)
        except DbError as e:
            if e.code in SERVER_DOWN_ERRORS and local_server(connect_kwargs(self.p)):
                return self.read_stopped_server(str(e))
            raise self.failed('read the server', 'login', str(e), 'datadir_swap reads the '
                              'datadir and log paths from the running server: check the login '
                              'options')
        try:
            self.vars = dict((n, conn.variable(n)) for n in dd.SERVER_PATH_VARIABLES)
        except DbError as e:
            raise self.failed('read the server', 'read_server', str(e), 'check the login account')
        finally:
            conn.close()
        self.datadir = dd.normalize(self.vars['datadir'])
        self.result.update(datadir=self.datadir, server_was_running=True)

    def read_stopped_server(self, error):
        """The server does not listen: its paths from its option files, if no process of it
        runs (one that runs and does not answer is not stopped behind its back)."""
        paths, why = svc.option_file_paths(self.module, self.service.instance)
        if not paths:
            raise self.failed('read the server', 'option_files', 'the server does not accept '
                              'connections (%s) and its paths cannot be read from its option '
                              'files: %s' % (error, why), 'nothing was changed')
        self.vars = paths
        self.datadir = dd.normalize(paths['datadir'])
        self.result.update(datadir=self.datadir, server_was_running=False)
        self.refuse_live_process('read the server', error)
        self.running = False

    def refuse_live_process(self, step, error):
        pids = svc.serving(svc.server_processes(), self.datadir)
        if pids:
            raise self.failed(step, 'not_answering', 'a mariadbd process (pid %s) serves %s but '
                              'does not accept connections (%s)' % (
                                  ', '.join(str(p) for p in pids), self.datadir, error),
                              'nothing was moved: find out why (starting, stopping, hung?) and '
                              'stop it or let it start; datadir_swap does not stop a server it '
                              'cannot talk to')

    # ---- idempotence ------------------------------------------------------------------
    def already_swapped(self):
        path = os.path.join(self.datadir, dd.SWAP_RECORD)
        try:
            with open(path) as f:
                record = json.load(f)
        except (IOError, OSError, ValueError):
            return None
        return record if record.get('staging') == self.staging else None

    # ---- preflight --------------------------------------------------------------------
    def preflight(self):
        """Everything checked before anything changes; the message of a swap done already
        (nothing to do), else None."""
        if not os.path.isdir(self.staging):
            record = self.already_swapped()
            if record:
                self.result.update(layout=record.get('layout'), old_datadir=record.get('old_datadir'),
                                   external_logs=record.get('external_logs', []))
                return 'already swapped in: the datadir holds the copy from %s since %s' % (
                    self.staging, record.get('time'))
            raise self.failed('preflight', 'no_staging', 'the staging copy %s does not exist'
                              % self.staging, 'stream and prepare a copy there first')
        try:
            self.datadir_stat = os.stat(self.datadir)
            # Mount facts from the mount table (module_utils/mounts.py, as replication_info
            # reports them to the role), not st_dev: a bind mount of the same filesystem
            # has its parent's st_dev and still cannot be renamed.
            table = mounts.read()
            datadir_mount = mounts.path_facts(self.datadir, table)
            staging_mount = mounts.path_facts(self.staging, table)
            self.layout = dd.choose_layout(
                self.datadir, self.staging, datadir_mount['mount_point'],
                mounts.paths_on_same_mount(self.datadir, self.staging, table),
                datadir_mount['dev'] is not None and datadir_mount['dev'] == staging_mount['dev'])
        except dd.PlanError as e:
            raise self.failed('preflight', 'plan', str(e))
        except mounts.MountinfoError as e:
            raise self.failed('preflight', 'mountinfo', 'cannot read the mount table %s: %s'
                              % (mounts.MOUNTINFO, e))
        except (IOError, OSError) as e:
            raise self.failed('preflight', 'unreadable', 'cannot read %s: %s'
                              % (e.filename, e.strerror))
        problems = bm.completeness_problems(self.staging)
        if not self.p['require_receive_record']:
            problems = [p for p in problems if bm.RECEIVED_MARKER not in p]
        if problems:
            raise self.failed('preflight', 'not_whole_copy', '%s is not a whole copy (%s)' % (
                self.staging, '; '.join(problems)), 'stream it again into an empty directory')
        try:
            checkpoints = bm.read(self.staging, 'checkpoints', bm.parse_checkpoints)
        except (bm.MetadataError, IOError, OSError) as e:
            raise self.failed('preflight', 'checkpoints', str(e), 'stream the copy again')
        if checkpoints.get('backup_type') != 'log-applied':
            raise self.failed('preflight', 'not_prepared', '%s is not prepared (backup_type = '
                              '%s, not log-applied)' % (self.staging, checkpoints.get('backup_type')),
                              'run reseed.mariadb.backup_prepare on it first')
        problem = dd.external_paths_problem(self.datadir, self.vars)
        if problem:
            raise self.failed('preflight', 'external_paths', problem)
        missing = self.service.missing()
        if missing:
            raise self.failed('preflight', 'no_service_manager', missing,
                              'set service_name, or install the service manager')
        unit = self.service.facts(svc.serving(svc.server_processes(), self.datadir),
                                  dd.server_dirs(self.datadir, self.vars))
        self.result['service'] = unit
        for key, code in (('outside_unit', 'outside_unit'), ('sandbox_problem', 'sandbox')):
            if unit[key]:
                raise self.failed('preflight', code, unit[key], 'nothing changed')
        self.old = dd.old_path(self.datadir, self.layout, self.ts)
        if os.path.lexists(self.old):
            raise self.failed('preflight', 'old_exists', '%s already exists' % self.old,
                              'wait a second and run again')
        self.result.update(layout=self.layout, old_datadir=self.old)
        self.plan_external_logs()
        self.hold = None
        if self.p['hold_replication']:
            name = HOLD_NAME % ('-' + self.service.instance if self.service.instance else '')
            self.hold = self.p['hold_config'] or os.path.join(
                next((d for d in HOLD_DIRS if os.path.isdir(d)), HOLD_DIRS[0]), name)
            if not os.path.isdir(os.path.dirname(self.hold)):
                raise self.failed('preflight', 'hold_dir', 'the folder of hold_config %s does '
                                  'not exist' % self.hold, 'set hold_config to a file in a '
                                  'folder the server reads (!includedir)')
            self.result['hold_config'] = self.hold
        return None

    def plan_external_logs(self):
        self.external_plan = []
        for directory, prefix, index in dd.external_log_sets(self.datadir, self.vars):
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            if dd.is_inside(directory, self.datadir):
                # The files go with the datadir; only the index lives outside.
                directory, names = os.path.dirname(index), [os.path.basename(index)]
            aside = os.path.join(directory, dd.EXTERNAL_DIR_PREFIX + self.ts)
            for name in dd.external_log_files(names, prefix, index, directory):
                self.external_plan.append((os.path.join(directory, name), os.path.join(aside, name)))
        self.result['external_logs'] = [{'from': s, 'to': d} for s, d in self.external_plan]

    # ---- doing it ---------------------------------------------------------------------
    def move(self, src, dst):
        os.rename(src, dst)
        self.moves.append((src, dst))

    def mkdir_private(self, path):
        os.mkdir(path, 0o700)
        os.chown(path, self.datadir_stat.st_uid, self.datadir_stat.st_gid)
        self.moves.append((None, path))

    def swap_files(self):
        # Listed again now that the old server is down: at its shutdown it wrote its binlog
        # state (<log_bin>.state), which a new server would load and so keep the old
        # server's GTIDs, errant ones included, in its own binlog state.
        self.plan_external_logs()
        if self.layout == 'rename':
            self.move(self.datadir, self.old)
            self.move(self.staging, self.datadir)
        else:
            staging_name = os.path.basename(self.staging)
            self.mkdir_private(self.old)
            for name in dd.entries_to_move_aside(os.listdir(self.datadir), staging_name):
                self.move(os.path.join(self.datadir, name), os.path.join(self.old, name))
            for name in sorted(os.listdir(self.staging)):
                self.move(os.path.join(self.staging, name), os.path.join(self.datadir, name))
            os.rmdir(self.staging)
            self.moves.append((self.staging, None))
        for src, dst in self.external_plan:
            if not os.path.isdir(os.path.dirname(dst)):
                self.mkdir_private(os.path.dirname(dst))
            self.move(src, dst)

    def fix_ownership(self, top, uid, gid):
        os.chown(top, uid, gid)
        os.chmod(top, 0o700)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                path = os.path.join(root, name)
                st = os.lstat(path)
                os.lchown(path, uid, gid)
                if not os.path.islink(path):
                    os.chmod(path, dd.strip_other_access(st.st_mode & 0o7777, os.path.isdir(path)))

    def write_record(self):
        record = dict(staging=self.staging, layout=self.layout, old_datadir=self.old,
                      external_logs=self.result['external_logs'], time=self.ts)
        with open(os.path.join(self.datadir, dd.SWAP_RECORD), 'w') as f:
            json.dump(record, f)

    def write_hold(self):
        tmp = self.hold + '.tmp'
        with open(tmp, 'w') as f:
            f.write(dd.drop_in_text(self.service.instance))
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.hold)

    def server_pid(self):
        try:
            with open(self.vars['pid_file']) as f:
                return int(f.read().strip())
        except (IOError, OSError, ValueError, TypeError):
            return None

    def stop(self, step):
        pid = self.server_pid()
        ok, why = self.service.run('stop')
        deadline = time.time() + self.p['start_timeout']
        while pid and os.path.exists('/proc/%d' % pid) and time.time() < deadline:
            time.sleep(0.2)
        if pid and os.path.exists('/proc/%d' % pid):
            raise StepError(step, 'still_runs', 'the server (pid %d) still runs after %s s%s'
                            % (pid, self.p['start_timeout'], ' (%s)' % why if why else ''))
        if not ok and not pid:
            raise StepError(step, 'stop_failed', why)
        if not pid and self.accepts_connections():
            raise StepError(step, 'still_accepts', 'the server still accepts connections after '
                            '%s stop (its pid file %s was unreadable), the server still runs'
                            % (self.service.manager, self.vars['pid_file']))

    def accepts_connections(self):
        """True once the server answers: a login, or a refused login (the copy brings the
        source's accounts, which may not know the login options)."""
        try:
            Connection(self.p).close()
            return True
        except DbError as e:
            self.last_error = str(e)
            return any(code in self.last_error for code in ACCESS_DENIED)

    def start(self, step):
        ok, why = self.service.run('start')
        deadline = time.time() + self.p['start_timeout']
        self.last_error = why
        while not self.accepts_connections():
            if not ok or time.time() > deadline:
                cause = '%s%s' % (why or self.last_error, self.error_log_hint())
                raise StepError(step, 'start_failed', cause)
            time.sleep(0.5)

    def error_log_hint(self):
        """The server's last error: from its log_error, else (a systemd host, where Debian
        leaves log_error unset) from the unit's journal."""
        path = self.vars.get('log_error')
        error = ''
        if path:
            path = path if os.path.isabs(path) else os.path.join(self.datadir, path)
            try:
                with open(path, 'rb') as f:
                    f.seek(0, 2)
                    f.seek(max(0, f.tell() - 20000))
                    lines = f.read().decode('utf-8', 'replace').splitlines()
                error = last_error(lines)
            except (IOError, OSError):
                pass
        if error:
            return ' (error log %s: %s)' % (path, error)
        journal = self.service.journal_errors()
        return ' (journalctl -u %s: %s)' % (self.service.unit, journal) if journal else ''

    def rollback(self):
        """Undo the moves in reverse. What the new server wrote first goes with the copy that
        did not start: logs where the old ones were to reseed-failed-<ts> beside them, and on
        the entries layout the datadir's new top-level entries back into the staging copy."""
        for src, dst in self.external_plan:
            if os.path.lexists(src) and (src, dst) in self.moves:
                failed = os.path.join(os.path.dirname(src), 'reseed-failed-' + self.ts)
                if not os.path.isdir(failed):
                    os.mkdir(failed, 0o700)
                os.rename(src, os.path.join(failed, os.path.basename(src)))
        if (self.staging, None) in self.moves:
            os.mkdir(self.staging, 0o700)
            self.moves.remove((self.staging, None))
            moved_in = set(d for s, d in self.moves if s and s.startswith(self.staging + '/'))
            for name in dd.entries_to_move_aside(os.listdir(self.datadir),
                                                 os.path.basename(self.staging)):
                path = os.path.join(self.datadir, name)
                if path not in moved_in:
                    os.rename(path, os.path.join(self.staging, name))
        record = os.path.join(self.datadir, dd.SWAP_RECORD)
        for src, dst in reversed(self.moves):
            if src is None:
                os.rmdir(dst)
            elif dst is None:
                pass
            else:
                os.rename(dst, src)
        self.moves = []
        # The swap made the old datadir private (0700) to keep it aside: back in place, it
        # has its own mode again.
        os.chmod(self.datadir, self.datadir_stat.st_mode & 0o7777)
        if os.path.exists(os.path.join(self.staging, dd.SWAP_RECORD)):
            os.remove(os.path.join(self.staging, dd.SWAP_RECORD))
        elif os.path.exists(record):
            os.remove(record)

    def run(self):
        """The swap; its message. A failure raises Failure, the swap rolled back if it started."""
        self.read_server()
        done = self.preflight()
        if done:
            return done
        what = 'stop %s, move %s to %s, move %s in, start' % (
            self.p['service_name'], self.datadir, self.old, self.staging)
        if not self.running:
            what = 'move %s to %s, move %s in, start %s (the server is down: nothing to stop)' % (
                self.datadir, self.old, self.staging, self.p['service_name'])
        if self.module.check_mode:
            self.result['changed'] = True
            return 'would ' + what
        if not self.running:
            self.still_down()
        uid, gid = self.datadir_stat.st_uid, self.datadir_stat.st_gid
        if self.hold:
            try:
                self.write_hold()
            except (IOError, OSError) as e:
                raise self.failed('write hold_config', 'hold_write', '%s: %s' % (self.hold, e),
                                  'nothing changed')
        started = time.time()
        if self.running:
            try:
                self.stop('stop the old server')
            except StepError as e:
                self.remove_hold()
                # A half-done stop: the old server, as it was (the host as it was if it runs).
                as_it_was = self.accepts_connections() or self.service.run('start')[0]
                raise self.failed(e.step, e.code, e.cause, 'nothing was moved; check the service',
                                  as_it_was)
        self.result['changed'] = True
        try:
            try:
                self.swap_files()
                self.write_record()
                self.fix_ownership(self.datadir, uid, gid)
                os.chmod(self.old, 0o700)
            except (IOError, OSError) as e:
                raise StepError('swap the files', 'move_failed',
                                '%s: %s' % (getattr(e, 'filename', ''), e))
            self.start('start the new server')
        except StepError as e:
            raise self.recover(e)
        self.result['downtime_seconds'] = round(time.time() - started, 2)
        self.result['old_deleted'] = False
        if not self.p['keep_old']:
            try:
                shutil.rmtree(self.old)
                for aside in set(os.path.dirname(d) for s, d in self.external_plan):
                    shutil.rmtree(aside)
                self.result['old_deleted'] = True
            except OSError as e:
                self.module.warn('the new server runs, but deleting the old datadir failed '
                                 '(%s): delete %s by hand' % (e, self.old))
        return 'swapped in %s; old datadir %s %s; %s %.1f s' % (
            self.staging, self.old, 'deleted' if self.result['old_deleted'] else 'kept',
            'down' if self.running else 'the server was down, and accepts connections after',
            self.result['downtime_seconds'])

    def still_down(self):
        """Nothing to stop; make sure nothing starts the old server during the swap."""
        if self.service.systemd:
            # A unit that failed to start may be waiting to restart (Restart=on-failure):
            # cancel that. (Not the SysV script: its stop may kill any mariadbd of the host.)
            self.service.run('stop')
        if self.accepts_connections():
            raise self.failed('swap the files', 'started_again', 'the server accepts connections '
                              'again (it started after it was read)', 'nothing was moved; run again')
        self.refuse_live_process('swap the files', 'it started after it was read')

    def remove_hold(self):
        if self.hold and os.path.exists(self.hold):
            os.remove(self.hold)

    def recover(self, error):
        """Roll the swap back after error (a StepError); the Failure to raise: rolled_back
        (the host as it was: the old datadir, its logs and its server back, the copy in
        staging), or rollback_failed (moves left to repair by hand)."""
        try:
            try:
                self.stop('rollback: stop the new server')
            except StepError as e:
                if e.code == 'still_runs':
                    raise
            self.rollback()
            self.remove_hold()
            if self.running:
                self.start('rollback: start the old server')
        except (StepError, IOError, OSError) as e:
            self.result['datadir_untouched'] = False
            return self.failed(error.step, 'rollback_failed', '%s; the rollback failed too (%s)'
                               % (error.cause, e), 'moves done and not undone: %s; repair by '
                               'hand' % (', '.join('%s -> %s' % m for m in self.moves) or 'none'),
                               changed_nothing=False)
        self.result['downtime_seconds'] = None
        self.result['datadir_untouched'] = True
        return self.failed(error.step, 'rolled_back', error.cause, 'rolled back: the old datadir '
                           'is back at %s and its server %s; the copy that did not start is kept '
                           'at %s' % (self.datadir, 'runs again' if self.running else
                                      'is left stopped, as it was', self.staging), True)


def main():
    spec = login_argument_spec()
    spec.update(
        staging=dict(type='path', required=True),
        keep_old=dict(type='bool', default=True),
        hold_replication=dict(type='bool', default=True),
        hold_config=dict(type='path'),
        service_name=dict(type='str', default='mariadb'),
        start_timeout=dict(type='int', default=300),
        require_receive_record=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    swap = Swap(module)
    try:
        msg = swap.run()
    except Failure as e:
        swap.result.setdefault('datadir_untouched', not swap.moves)
        failure.fail(module, e, 'datadir_swap on %s, step %s' % (swap.host, e.step), **swap.result)
    else:
        module.exit_json(msg=msg, **swap.result)


if __name__ == '__main__':
    main()
