#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: replica_local
short_description: Keep what is a MariaDB replica's own across a rebuild from a physical copy
version_added: 0.1.0
description:
  - A physical copy is the source's whole server; its accounts, its events (C(ENABLED)) and
    no replication settings at all. This module reads, before the swap, what is the
    replica's own, and puts it back after it, before replication starts.
  - C(phase=digest), on the source of the copy, returns a keyed digest of each account
    (C(SHOW CREATE USER) and C(SHOW GRANTS)), never the account's text.
  - C(phase=capture), on the replica before anything changes, lists its other replication
    connections (and with I(allow_other_connections=false) stops there, refused, writing
    nothing), reads C(event_scheduler), the replication globals, the connection's settings
    that differ from a new connection's, and the accounts the source lacks or holds
    otherwise (I(source_digests)); it writes them to I(state_file) (0600, root's), the
    accounts' C(SHOW CREATE USER) and C(SHOW GRANTS) text included. Only account names
    are returned.
  - C(phase=restore), on the new server (held by C(skip_slave_start), C(read_only) and
    C(event_scheduler=OFF)), with C(sql_log_bin=0), marks every C(ENABLED) event
    C(SLAVESIDE_DISABLED), creates the saved accounts again (the replica's version wins),
    sets the saved globals that differ, then sets C(event_scheduler) back.
  - C(phase=finish), once replication is configured, sets C(read_only) (and
    C(event_scheduler), should something have changed it since) back to what the replica
    had, and removes I(state_file) (and its directory, once empty).
  - C(phase=discard), when a run failed and the replica's own datadir is in place (nothing
    was swapped, or the swap was rolled back), removes I(state_file) (and its directory,
    once empty) without touching the server (the replica still has all it kept).
  - The connection settings are returned by C(capture) for
    M(reseed.mariadb.replication), which applies them.
options:
  phase:
    description: The step to run (see above).
    type: str
    required: true
    choices: [digest, capture, restore, finish, discard]
  digest_key:
    description:
      - The key of the account digests (C(digest), C(capture)), the same on both hosts and
        drawn anew for each run.
    type: str
  source_digests:
    description: With C(capture), the C(digests) that C(phase=digest) returned on the source.
    type: dict
  state_file:
    description: Where C(capture) keeps what it read, for C(restore) and C(finish).
    type: path
    default: /var/lib/reseed/replica_local.json
  carry_accounts:
    description:
      - C(capture) saves the replica's own accounts and C(restore) creates them again. When
        false, they are only named (the copy's accounts stay as they are).
    type: bool
    default: true
  keep_settings:
    description: C(capture) reads the connection's settings and the globals to put back.
    type: bool
    default: true
  connection_name:
    description: The connection the rebuild manages (the default connection when empty).
    type: str
    default: ''
  allow_other_connections:
    description:
      - With C(capture), go on even when the replica has other connections (a multi-source
        replica; the copy holds none of their data and none of them). Refused otherwise.
    type: bool
    default: false
  held_by:
    description:
      - With C(capture), the hold files of M(reseed.mariadb.datadir_swap). When one exists
        together with I(state_file), a run swapped the datadir and did not finish; the
        server is the copy's, and the state file that run wrote is kept as it is (and
        returned), not read again from this server.
    type: list
    elements: path
    default: [/etc/mysql/mariadb.conf.d/99-reseed-hold.cnf, /etc/my.cnf.d/99-reseed-hold.cnf]
  require_state:
    description:
      - With C(restore), fail when I(state_file) is missing. False for a replica whose old
        server was down (nothing could be captured); the copy's events are disabled all the
        same, nothing else is restored, and C(event_scheduler) stays OFF until the server's
        next start.
    type: bool
    default: true
  upgrade_timeout:
    description:
      - With C(restore) and C(finish), seconds to wait for a C(mariadb-upgrade) that the
        server's start scripts run (Debian's C(debian-start)) to end first. It sets
        C(event_scheduler) back at its end to what it read at its start (OFF, from the
        hold), and alters the C(mysql.*) tables.
    type: int
    default: 600
extends_documentation_fragment:
  - reseed.mariadb.login
notes:
  - Supports check mode (C(capture) reads and reports and writes no file; C(restore) and
    C(finish) say what they would do).
  - No account text (which holds a password hash) is returned, logged or passed in argv;
    the statements that carry one are shown in C(queries) as a label.
seealso:
  - module: reseed.mariadb.datadir_swap
  - module: reseed.mariadb.replication
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Digest the source's accounts
  reseed.mariadb.replica_local:
    phase: digest
    digest_key: "{{ run_key }}"
  delegate_to: db1
  register: source_accounts

- name: Read what the replica keeps
  reseed.mariadb.replica_local:
    phase: capture
    digest_key: "{{ run_key }}"
    source_digests: "{{ source_accounts.digests }}"
  register: kept

- name: After the swap, put it back
  reseed.mariadb.replica_local:
    phase: restore
'''

RETURN = r'''
digests:
  description: With C(digest), C(user@host) -> keyed digest of its definition.
  returned: phase digest
  type: dict
refused:
  description: With C(capture), true when other connections stopped it (nothing written).
  returned: phase capture
  type: bool
pending:
  description: With C(capture), true when the state file of an unfinished run was kept (see I(held_by)).
  returned: phase capture
  type: bool
other_connections:
  description: With C(capture), the names of the replica's other replication connections.
  returned: phase capture
  type: list
  elements: str
accounts:
  description: With C(capture), the accounts (C(user@host)) the source lacks or holds otherwise.
  returned: phase capture
  type: list
  elements: str
settings:
  description: With C(capture), the connection's settings that differ from a new connection's, as M(reseed.mariadb.replication) options.
  returned: phase capture
  type: dict
  sample: {primary_delay: 30, primary_heartbeat_period: 5.0}
globals:
  description: With C(capture), the replication globals read (C(read_only) included).
  returned: phase capture
  type: dict
event_scheduler:
  description: The server's C(event_scheduler) before the swap (C(capture)), or after the run (C(restore)).
  returned: phase capture and restore
  type: str
events_disabled:
  description: With C(restore), the events (C(schema.name)) marked C(SLAVESIDE_DISABLED).
  returned: phase restore
  type: list
  elements: str
accounts_restored:
  description: With C(restore), the accounts created again from the replica's own definition.
  returned: phase restore
  type: list
  elements: str
globals_restored:
  description: With C(restore) and C(finish), the globals set back, with their value.
  returned: phase restore and finish
  type: dict
state_file:
  description: The state file.
  returned: always
  type: str
queries:
  description: The statements run; those that carry an account's definition as a label.
  returned: always
  type: list
  elements: str
failure:
  description:
    - "What failed, in fields (C(msg) is C(replica_local <phase>: <message>); a failure of
      the state file's content, of an account or of the upgrade's wait says C(restore)
      there, whatever the phase); C(step) (the phase - C(digest), C(capture), C(restore),
      C(finish), C(discard)), C(side) (C(source), C(replica) or C(link): always C(replica)
      here, the server this module logs in to), C(code), C(changed_nothing) (no statement
      that changes the server ran, one the server refused not counted; C(capture) writes its
      file whole or not at all), C(message). Codes below."
    - C(login), C(no_pymysql), C(statement_error_<errno>) (a statement failed),
      C(state_file_error) (the state file cannot be written, read or removed).
    - C(restore) and C(finish) C(no_state_file) (run C(capture) first), C(bad_state_file)
      (not ours, also in C(capture)), C(upgrade_running) (C(mariadb-upgrade) did not end),
      C(unknown_global) (in the state file), C(account_failed) (an account's statement
      failed, by server error number only).
  returned: on failure
  type: dict
  sample: {step: restore, side: replica, code: no_state_file, changed_nothing: true,
           message: "no state file /var/lib/reseed/replica_local.json; run phase=capture before the swap ..."}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils import replica_local as rl
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    Connection, DbError, error_code, login_argument_spec)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure

NO_SUCH_ACCOUNT = (1133, 1141, 1396)  # SHOW CREATE USER / SHOW GRANTS of an absent account
UNKNOWN_VARIABLE = 1193
# Where reseed.mariadb.datadir_swap writes its hold (Debian, RHEL).
HOLD_FILES = ('/etc/mysql/mariadb.conf.d/99-reseed-hold.cnf', '/etc/my.cnf.d/99-reseed-hold.cnf')
# Statements that change nothing of the server (the others write: ALTER, DROP, CREATE, GRANT,
# SET GLOBAL, an account's definition shown as its label).
READS = ('SHOW', 'SELECT', 'SET SESSION')


class Failed(Failure):
    """A failure of what the restore reads and writes, wherever it is met (its msg says
    restore; main() sets the phase as its step)."""

    def __init__(self, code, cause, todo, changed_nothing=True):
        Failure.__init__(self, 'restore', 'replica', code, '%s; %s' % (cause, todo),
                         changed_nothing)


def first_value(row):
    return list(row.values())[0]


def read_account(db, user, host):
    """(SHOW CREATE USER text, [SHOW GRANTS lines]), or None when the account is absent.
    The text holds the password hash: it never goes into a result or a message."""
    try:
        create = first_value(db.query('SHOW CREATE USER %s@%s', [user, host])[0])
        grants = [first_value(r) for r in db.query('SHOW GRANTS FOR %s@%s', [user, host])]
    except DbError as e:
        if e.code in NO_SUCH_ACCOUNT:
            return None
        raise
    return create, grants


def accounts(db):
    """[(user, host)] of the server's accounts (roles are not accounts)."""
    return [(r['u'], r['h']) for r in db.query(
        "SELECT User AS u, Host AS h FROM mysql.user WHERE is_role = 'N' ORDER BY User, Host")]


def current_user(db):
    return db.query('SELECT CURRENT_USER() AS u')[0]['u']


def read_globals(db, names):
    out = {}
    for name in names:
        try:
            out[name] = db.variable(name)
        except DbError as e:
            if e.code != UNKNOWN_VARIABLE:  # not in this server's version
                raise
    return out


def run_secret(db, sql, args, label):
    """Run a statement that carries an account's definition: recorded as its label, and its
    error said by number only (the server's text may quote the statement)."""
    db.queries.append(label)
    cursor = db.conn.cursor()
    try:
        cursor.execute(sql, args)
    except Exception as e:
        raise Failed('account_failed', '%s failed with server error %s' % (
            label, error_code(e)), 'read the server error log; the account is as the copy '
            'had it', changed_nothing=False)
    finally:
        cursor.close()


def write_state(path, text):
    """The state file, 0600 in a 0700 directory, root's: written whole or not at all."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o700)
    os.chmod(folder, 0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.replica_local.')
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_state(path, missing_ok=False):
    if not os.path.exists(path):
        if missing_ok:
            return None
        raise Failed('no_state_file', 'no state file %s' % path,
                     'run phase=capture before the swap (the role replica_rebuild does)')
    try:
        with open(path) as f:
            return rl.load_state(f.read())
    except ValueError as e:
        raise Failed('bad_state_file', '%s: %s' % (path, e), 'remove it and rebuild again')


def digest(db, p):
    key = p['digest_key']
    out = {}
    for user, host in accounts(db):
        read = read_account(db, user, host)
        if read:
            out[rl.account_name(user, host)] = rl.account_digest(key, *read)
    return dict(changed=False, digests=out, msg='%d accounts digested' % len(out))


def capture(module, db, p):
    rows = db.query('SHOW ALL SLAVES STATUS')
    others = rl.other_connections(rows, p['connection_name'])
    result = dict(changed=False, refused=False, pending=False, other_connections=others,
                  accounts=[], settings={}, globals={})
    if others and not p['allow_other_connections']:
        result.update(refused=True, msg='other replication connections: %s' % ', '.join(others))
        return result
    held = [path for path in p['held_by'] if os.path.exists(path)]
    if held and os.path.exists(p['state_file']):
        # A run swapped the datadir and did not finish: this server is the copy's, and what
        # was the replica's own is in the file that run kept. Kept as it is.
        state = read_state(p['state_file'])
        result.update(pending=True, accounts=state.get('account_names', []),
                      settings=state.get('connection', {}),
                      globals=dict(state.get('globals', {}), **state.get('late_globals', {})),
                      event_scheduler=state.get('event_scheduler'),
                      msg='kept from the unfinished run before (%s exists)' % held[0])
        return result
    scheduler = db.variable('event_scheduler')
    state = dict(event_scheduler=scheduler, accounts=[], account_names=[],
                 carry_accounts=p['carry_accounts'], globals={}, late_globals={},
                 connection={}, other_connections=others)
    if p['keep_settings']:
        state['globals'] = read_globals(db, rl.GLOBALS)
        state['late_globals'] = read_globals(db, rl.LATE_GLOBALS)
        row = next((r for r in rows if (r.get('Connection_name') or '').lower()
                    == p['connection_name'].lower()), None)
        if row:
            state['connection'] = rl.connection_settings(row, db.variable('slave_net_timeout'))
    me = current_user(db)
    key = p['digest_key'] or ''
    mine = {}
    texts = {}
    for user, host in accounts(db):
        read = read_account(db, user, host)
        if read:
            name = rl.account_name(user, host)
            mine[name] = rl.account_digest(key, *read)
            texts[name] = (user, host, read)
    names = rl.local_accounts(mine, p['source_digests'] or {}, skip=[me])
    state['account_names'] = names
    if p['carry_accounts']:
        state['accounts'] = [dict(user=texts[n][0], host=texts[n][1], create=texts[n][2][0],
                                  grants=texts[n][2][1]) for n in names]
    if not module.check_mode:
        write_state(p['state_file'], rl.state_text(state))
    result.update(changed=not module.check_mode, accounts=names, settings=state['connection'],
                  globals=dict(state['globals'], **state['late_globals']),
                  event_scheduler=scheduler,
                  msg='kept: %d accounts, %d connection settings' % (
                      len(names), len(state['connection'])))
    return result


def set_globals(module, db, saved):
    names = sorted(saved)
    todo = rl.globals_to_restore(saved, read_globals(db, names))
    if not module.check_mode:
        for name, value in todo.items():
            if name not in rl.GLOBALS + rl.LATE_GLOBALS:
                raise Failed('unknown_global', 'unknown global %r in the state file' % name,
                             'remove the state file and rebuild again')
            db.query('SET GLOBAL %s = %%s' % name, [value])  # a name from our own list
    return todo


def upgrade_pids():
    """The pids of the server's upgrade (mariadb-upgrade) running on this host now."""
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/cmdline' % entry, 'rb') as f:
                    if rl.is_upgrade(f.read()):
                        pids.append(int(entry))
            except (IOError, OSError):
                pass  # ended meanwhile
    return pids


def wait_for_upgrade(timeout):
    """Wait until the upgrade the server's start scripts run is over: it sets
    event_scheduler back to what it read at its start, and alters mysql.* tables."""
    deadline = time.time() + timeout
    while upgrade_pids():
        if time.time() > deadline:
            raise Failed('upgrade_running', 'mariadb-upgrade (started with the server) still '
                         'runs after %ss' % timeout, 'let it end, then run again')
        time.sleep(0.5)


def restore(module, db, p):
    # Without a capture (the old server was down: nothing of it could be read), the copy's
    # events are still disabled; nothing else is known to put back.
    state = read_state(p['state_file'], missing_ok=not p['require_state']) or {}
    wait_for_upgrade(p['upgrade_timeout'])
    changed = False
    db.query('SET SESSION sql_log_bin = 0')
    events = rl.enabled_events(db.query(
        'SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER, STATUS FROM information_schema.EVENTS'))
    for schema, name, definer in events:
        if not module.check_mode:
            db.query(*rl.disable_event_sql(schema, name, definer))
        changed = True
    restored = []
    if p['carry_accounts'] and state.get('carry_accounts'):
        for account in state['accounts']:
            now = read_account(db, account['user'], account['host'])
            if now and rl.same_definition(account, *now):
                continue
            name = rl.account_name(account['user'], account['host'])
            restored.append(name)
            changed = True
            if module.check_mode:
                continue
            for sql, args in rl.restore_statements(account):
                if args is not None:
                    db.query(sql, args)
                else:
                    run_secret(db, sql, None, '(the definition of %s read before the swap)' % name)
    set_back = set_globals(module, db, state.get('globals') or {})
    changed = changed or bool(set_back)
    now = db.variable('event_scheduler')
    scheduler = rl.scheduler_to_restore(state.get('event_scheduler'), now)
    if scheduler:
        if not module.check_mode:
            db.query('SET GLOBAL event_scheduler = %s', [scheduler])
        set_back['event_scheduler'] = scheduler
        changed = True
    return dict(changed=changed, events_disabled=['%s.%s' % e[:2] for e in events],
                accounts_restored=restored, globals_restored=set_back,
                event_scheduler=scheduler or now,
                msg='%d events disabled, %d accounts restored, %d globals set back' % (
                    len(events), len(restored), len(set_back)))


def finish(module, db, p):
    state = read_state(p['state_file'], missing_ok=True)
    if state is None:
        return dict(changed=False, globals_restored={}, msg='nothing to finish')
    wait_for_upgrade(p['upgrade_timeout'])
    set_back = set_globals(module, db, state.get('late_globals') or {})
    scheduler = rl.scheduler_to_restore(state.get('event_scheduler'),
                                        db.variable('event_scheduler'))
    if scheduler:
        if not module.check_mode:
            db.query('SET GLOBAL event_scheduler = %s', [scheduler])
        set_back['event_scheduler'] = scheduler
    if not module.check_mode:
        remove_state(p['state_file'])
    return dict(changed=True, globals_restored=set_back,
                msg='%d globals set back, state file removed' % len(set_back))


def remove_state(path):
    """The state file, and its directory once empty (it was made for it)."""
    os.remove(path)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass  # not empty: something else of the host's is kept there too


def discard(module, p):
    if not os.path.exists(p['state_file']):
        return dict(changed=False, msg='no state file: nothing to discard')
    if not module.check_mode:
        remove_state(p['state_file'])
    return dict(changed=True, msg='state file removed: the replica kept its own datadir')


def as_failure(e, phase, db, state_file):
    """The one place a DbError (or an error of the state file) becomes a Failure, of the
    phase. It changed nothing when no statement that changes the server ran, the last one
    not counted when the server refused it (it refuses a statement whole; a lost
    connection, 2000 and up, may have come after it ran)."""
    queries = db.queries if db else []
    refused = isinstance(e, DbError) and failure.server_refused(e)
    if isinstance(e, DbError):
        e = Failure(phase, 'replica', failure.db_code(e, db), str(e))
    elif not isinstance(e, Failure):
        e = Failure(phase, 'replica', 'state_file_error', '%s: %s' % (state_file, e))
    e.step = phase
    e.changed_nothing = e.changed_nothing and not failure.wrote(
        queries, refused, lambda q: not q.startswith(READS))
    return e


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        phase=dict(type='str', required=True,
                   choices=['digest', 'capture', 'restore', 'finish', 'discard']),
        digest_key=dict(type='str', no_log=True),
        source_digests=dict(type='dict'),
        state_file=dict(type='path', default='/var/lib/reseed/replica_local.json'),
        carry_accounts=dict(type='bool', default=True),
        keep_settings=dict(type='bool', default=True),
        connection_name=dict(type='str', default=''),
        allow_other_connections=dict(type='bool', default=False),
        held_by=dict(type='list', elements='path', default=list(HOLD_FILES)),
        upgrade_timeout=dict(type='int', default=600),
        require_state=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('phase', 'digest', ('digest_key',)),
                                        ('phase', 'capture', ('digest_key', 'source_digests'))])
    p = module.params
    db = None
    result = dict(changed=False, queries=[], state_file=p['state_file'])
    try:
        if p['phase'] == 'discard':
            result.update(discard(module, p))
        else:
            db = Connection(p)
            phases = dict(digest=lambda: digest(db, p), capture=lambda: capture(module, db, p),
                          restore=lambda: restore(module, db, p),
                          finish=lambda: finish(module, db, p))
            result.update(phases[p['phase']]())
            result['queries'] = db.queries
    except (DbError, Failure, IOError, OSError) as e:
        said = e.step if isinstance(e, Failed) else p['phase']
        failure.fail(module, as_failure(e, p['phase'], db, p['state_file']),
                     'replica_local %s' % said, queries=db.queries if db else [],
                     state_file=p['state_file'])
    finally:
        if db:
            db.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
