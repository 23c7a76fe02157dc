#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: replication
short_description: Configure, start, stop or reset MariaDB replication, and wait until it is healthy
version_added: 0.1.0
description:
  - Configures a replica's connection to its primary (C(CHANGE MASTER TO)) from GTID
    (C(MASTER_USE_GTID=slave_pos)) or from a binlog file and position, starts it, and waits
    until both threads run and it has caught up. On failure it returns the replication
    error (number and text), not a timeout alone.
  - Idempotent. The current settings are read from C(SHOW SLAVE STATUS) and only what
    differs is changed; the threads are stopped only when a change needs it; C(changed) is
    true only then. Starting coordinates (I(gtid_slave_pos), I(primary_log_file) and
    I(primary_log_pos)) are applied when the connection is configured anew (it did not
    exist, or its primary changed), when I(mode) changes, or with I(force_position); a
    replica that already replicates is never rewound by a re-run.
  - The password cannot be read back from the server. It is sent when the connection is
    configured anew, when the primary's host, port or user change, or with
    I(update_password=always).
  - Every value reaches the server as a driver parameter; the password is never returned
    and is masked in C(queries) and in the diff.
options:
  state:
    description:
      - C(started) configures when needed and starts both threads (one stopped by hand is
        started again); C(present) configures only; C(stopped) stops both threads;
        C(reset) removes the connection (C(RESET SLAVE ALL)).
    type: str
    choices: [started, present, stopped, reset]
    default: started
  connection_name:
    description: The connection, for multi-source replication; the default connection when empty.
    type: str
    default: ''
  mode:
    description:
      - C(gtid) replicates from a GTID position (C(slave_pos)); C(file_pos) from a binlog
        file and position.
      - When not given, I(primary_log_file) means C(file_pos), and I(gtid_slave_pos) means
        C(gtid) for a connection not yet using GTID; otherwise an existing connection keeps
        the mode it has, C(current_pos) included (a connection only started again is never
        switched), and a new one uses C(gtid).
    type: str
    choices: [gtid, file_pos]
  gtid_slave_pos:
    description:
      - With C(mode=gtid), the position to start from (C(SET GLOBAL gtid_slave_pos)), e.g.
        the C(gtid) that M(reseed.mariadb.backup_prepare) returns. List every domain.
    type: str
  primary_log_file:
    description: With C(mode=file_pos), the primary's binlog file to start from.
    type: str
    aliases: [master_log_file]
  primary_log_pos:
    description: With C(mode=file_pos), the position in that file.
    type: int
    aliases: [master_log_pos]
  force_position:
    description: Apply the starting coordinates even to a connection that already exists.
    type: bool
    default: false
  primary_host:
    description: The primary's address as the replica reaches it.
    type: str
    aliases: [master_host]
  primary_port:
    description: The primary's port.
    type: int
    aliases: [master_port]
  primary_user:
    description: The replication account on the primary.
    type: str
    aliases: [master_user]
  primary_password:
    description: Its password.
    type: str
    aliases: [master_password]
  update_password:
    description:
      - C(on_change) sends the password only when the connection is (re)configured (see
        above); C(always) sends it on every run (and so always changes).
    type: str
    choices: [on_change, always]
    default: on_change
  primary_connect_retry:
    description: Seconds between connection attempts.
    type: int
    aliases: [master_connect_retry]
  primary_heartbeat_period:
    description: Heartbeat interval in seconds (to the millisecond).
    type: float
    aliases: [master_heartbeat_period]
  primary_delay:
    description: Delay the replica by this many seconds (C(MASTER_DELAY)).
    type: int
    aliases: [master_delay]
  primary_ssl:
    description: Replicate over TLS.
    type: bool
    aliases: [master_ssl]
  primary_ssl_ca:
    description: CA file to verify the primary's certificate.
    type: str
    aliases: [master_ssl_ca]
  primary_ssl_cert:
    description: The replica's client certificate.
    type: str
    aliases: [master_ssl_cert]
  primary_ssl_key:
    description: Its key.
    type: str
    aliases: [master_ssl_key]
  primary_ssl_verify_server_cert:
    description: Require the primary's certificate to name I(primary_host).
    type: bool
    aliases: [master_ssl_verify_server_cert]
  ignore_server_ids:
    description:
      - Events of these server ids are not applied (C(IGNORE_SERVER_IDS)); an empty list clears it.
    type: list
    elements: int
  do_domain_ids:
    description:
      - Apply only these GTID domains (C(DO_DOMAIN_IDS)); an empty list clears it. Needs GTID
        mode (the server refuses it with C(MASTER_USE_GTID=no), error 1201).
    type: list
    elements: int
  ignore_domain_ids:
    description:
      - Skip these GTID domains (C(IGNORE_DOMAIN_IDS)); an empty list clears it. Not together
        with a non-empty I(do_domain_ids).
    type: list
    elements: int
  wait:
    description:
      - With C(state=started), wait until both threads run and the replica has caught up.
      - A delayed replica (C(MASTER_DELAY), C(SQL_Delay) in its status) has caught up when it
        is behind by at most its delay plus I(max_lag), or its SQL thread waits out the delay
        of an event it has received.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 300
  max_lag:
    description: Caught up means C(Seconds_Behind_Master) at most this.
    type: int
    default: 0
  wait_gtid:
    description: Also wait until the replica has applied this GTID position (C(MASTER_GTID_WAIT)).
    type: str
  error_grace:
    description: Seconds a replication error may persist while waiting (the IO thread retries) before the module fails with it.
    type: int
    default: 10
extends_documentation_fragment:
  - reseed.mariadb.login
notes:
  - Supports check mode and diff mode.
seealso:
  - module: reseed.mariadb.replication_info
  - module: reseed.mariadb.backup_prepare
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Replicate from the copy's GTID and wait until caught up
  reseed.mariadb.replication:
    primary_host: 10.0.0.11
    primary_user: repl
    primary_password: "{{ repl_password }}"
    gtid_slave_pos: "{{ copy.gtid }}"
    wait_timeout: 3600

- name: As by hand, from file and position
  reseed.mariadb.replication:
    mode: file_pos
    primary_host: db1.example.com
    primary_user: repl
    primary_password: "{{ repl_password }}"
    primary_log_file: "{{ copy.binlog_file }}"
    primary_log_pos: "{{ copy.binlog_pos }}"

- name: Replicate over TLS, verifying the primary's certificate
  reseed.mariadb.replication:
    primary_host: 10.0.0.11
    primary_user: repl
    primary_password: "{{ repl_password }}"
    primary_ssl: true
    primary_ssl_ca: /etc/mysql/ssl/ca.pem
    primary_ssl_verify_server_cert: true

- name: Send the password again (it cannot be read back to compare)
  reseed.mariadb.replication:
    primary_host: 10.0.0.11
    primary_user: repl
    primary_password: "{{ new_repl_password }}"
    update_password: always

- name: Stop a named connection
  reseed.mariadb.replication:
    connection_name: eu
    state: stopped
'''

RETURN = r'''
settings:
  description: The connection's settings after the run (the password masked when sent).
  returned: success
  type: dict
  sample: {primary_host: 10.0.0.11, primary_port: 3306, primary_user: repl, use_gtid: slave_pos}
status:
  description: The connection's status after the run, normalised (as reseed.mariadb.replication_info returns it).
  returned: when the connection exists
  type: dict
queries:
  description: The statements run, the password masked.
  returned: always
  type: list
  elements: str
failure:
  description:
    - "What failed, in fields (C(msg) is C(replication on connection '<name>': <message>),
      C(replication: <message>) for C(options));
      C(step) (C(configure), C(start), C(wait), C(stop) or C(reset)), C(side) (C(source),
      C(replica) or C(link)), C(code), C(changed_nothing) (no statement that changes the
      server ran, one it refused not counted), C(message). Codes below."
    - C(options), C(not_configured), C(gtid_running) (another connection runs), C(login),
      C(no_pymysql), C(statement_error_<errno>) (a statement failed) - side C(replica).
    - C(io_error_<errno>) - side C(link) for 2003, 2005, 2006, 2013, 2026, 1158-1161; C(source)
      for 1040, 1044, 1045, 1129, 1130, 1236 (the primary refuses, or lacks the binlog or
      GTID); else C(replica). C(sql_error_<errno>), C(timeout) - side C(replica).
  returned: on failure
  type: dict
  sample: {step: wait, side: source, code: io_error_1045, changed_nothing: false,
           message: "replicating from 10.0.0.11:3306, IO thread error 1045: Access denied ..."}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import change_master as cm
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    Connection, DbError, login_argument_spec)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure
from ansible_collections.reseed.mariadb.plugins.module_utils.replica_status import (
    IO_RUNNING, diagnose, normalize, status_row)

SLAVE_RUNNING = 1198
# Where an IO thread error lies: the link to the primary (cannot connect, lost, TLS, network
# read), or the primary refusing (too many connections, access denied, host blocked or not
# allowed, the binlog or GTID position it lacks). Any other error is the replica's own.
LINK_ERRORS = failure.LINK_ERRORS + (1158, 1159, 1160, 1161)
SOURCE_ERRORS = (1040, 1044, 1045, 1129, 1130, 1236)
# Statements that change the server (the others read: SHOW, SELECT).
WRITES = ('STOP', 'START', 'SET', 'CHANGE', 'RESET')


class Failed(Failure):
    """A failure of this module, on the replica unless said; whether it changed nothing is
    known only in main(), from the statements that ran."""

    def __init__(self, step, code, message, side='replica'):
        Failure.__init__(self, step, side, code, message)


def thread_side(thread, errno):
    if thread == 'io' and errno in LINK_ERRORS:
        return 'link'
    return 'source' if thread == 'io' and errno in SOURCE_ERRORS else 'replica'


def running(row):
    """Either thread runs (a stop is needed before a change)."""
    return bool(row) and (row.get('Slave_IO_Running') in IO_RUNNING
                          or row.get('Slave_SQL_Running') == 'Yes')


def both_running(row):
    """Both threads run (started means that: one stopped by hand is started again)."""
    return bool(row) and (row.get('Slave_IO_Running') in IO_RUNNING
                          and row.get('Slave_SQL_Running') == 'Yes')


def within_lag(row, seconds_behind, max_lag):
    """Caught up, for a replica delayed on purpose too: Seconds_Behind_Master stays near
    its MASTER_DELAY there, and SQL_Remaining_Delay is set while the SQL thread waits out
    the delay of the next event (everything before it applied)."""
    delay = int(row.get('SQL_Delay') or 0)
    if delay and row.get('SQL_Remaining_Delay') is not None:
        return True
    return seconds_behind <= max_lag + delay


def wait_healthy(db, p):
    """Poll until both threads run and the replica has caught up; the replication error,
    not a timeout alone, when it does not."""
    name, deadline = p['connection_name'], time.time() + p['wait_timeout']
    first_error = {}
    while True:
        row = status_row(db, name) or {}
        s = normalize(row)
        now = time.time()
        for thread in ('io', 'sql'):
            errno = s['last_%s_errno' % thread]
            if errno:
                since = first_error.setdefault((thread, errno), now)
                stopped = s['%s_running' % thread] == 'No'
                if stopped or now - since >= p['error_grace']:
                    state, needs, reason = diagnose(s)
                    named, number = thread, errno
                    if state == 'broken':
                        # The error diagnose() names: a stopped SQL thread's, else the IO's.
                        sql_stopped = s['last_sql_errno'] and s['sql_running'] != 'Yes'
                        named = 'sql' if sql_stopped else 'io'
                        number = s['last_%s_errno' % named]
                    else:
                        reason = '%s thread error %d: %s' % (
                            thread.upper(), errno, s['last_%s_error' % thread])
                    raise Failed('wait', '%s_error_%d' % (named, number), 'replicating from '
                                 '%s:%s, %s' % (s['primary_host'], s['primary_port'], reason),
                                 thread_side(named, number))
        caught_up = (s['io_running'] == 'Yes' and s['sql_running'] == 'Yes'
                     and s['seconds_behind'] is not None
                     and within_lag(row, s['seconds_behind'], p['max_lag']))
        if caught_up and p['wait_gtid']:
            caught_up = db.query('SELECT MASTER_GTID_WAIT(%s, 0) AS r',
                                 [p['wait_gtid']])[0]['r'] == 0
        if caught_up:
            return s
        if now > deadline:
            raise Failed('wait', 'timeout', 'replication did not become healthy within %ss (IO '
                         '%s, SQL %s, %s seconds behind)' % (
                             p['wait_timeout'], s['io_running'], s['sql_running'],
                             s['seconds_behind']))
        time.sleep(0.5)


def configure(module, db, row):
    """Change what differs. Returns (changed, before, after) settings for the diff."""
    p = module.params
    name = p['connection_name']
    current = cm.current_settings(row) if row else {}
    use_gtid = cm.use_gtid_for(p['mode'], current.get('use_gtid'), p['primary_log_file'],
                               p['gtid_slave_pos'])
    wanted = cm.wanted_settings(p, use_gtid)
    anew = not row or any(current.get(k) != wanted.get(k) for k in
                          ('primary_host', 'primary_port') if k in wanted)
    if not row and not p['primary_host']:
        raise Failed('configure', 'not_configured',
                     'connection %r is not configured: primary_host is needed' % name)
    diffs = cm.differences(current, wanted)
    send_password = p['primary_password'] is not None and (
        anew or 'primary_user' in diffs or p['update_password'] == 'always')
    # Switching between gtid and file_pos starts from the coordinates given, if any.
    set_position = anew or p['force_position'] or 'use_gtid' in diffs
    gtid_pos = p['gtid_slave_pos'] if use_gtid != 'no' and set_position else None
    log_file = p['primary_log_file'] if use_gtid == 'no' and set_position else None
    if gtid_pos is not None and db.variable('gtid_slave_pos') == gtid_pos:
        gtid_pos = None if not anew else gtid_pos
    change = bool(diffs or send_password or gtid_pos is not None or log_file is not None)
    before = cm.shown(current)
    after = cm.shown(dict(current, **wanted) if change else current, send_password)
    if gtid_pos is not None:
        after['gtid_slave_pos'] = gtid_pos
        before['gtid_slave_pos'] = db.variable('gtid_slave_pos')
    if log_file is not None:
        after['primary_log_file'], after['primary_log_pos'] = log_file, p['primary_log_pos']
    if not change or module.check_mode:
        return change, before, after
    was_running = running(row)
    if was_running:
        db.query('STOP SLAVE %s', [name])
    if gtid_pos is not None:
        try:
            db.query('SET GLOBAL gtid_slave_pos = %s', [gtid_pos])
        except DbError as e:
            if e.code != SLAVE_RUNNING:
                raise
            # gtid_slave_pos is global: every connection must be stopped to set it.
            raise Failed('configure', 'gtid_running', 'cannot set gtid_slave_pos while another '
                         'replication connection runs (error 1198): stop every connection '
                         '(state=stopped per connection_name), then run this task again')
    settings = cm.naming_heartbeat(
        wanted if anew else dict((k, v[1]) for k, v in diffs.items()), current)
    settings.setdefault('use_gtid', wanted['use_gtid'])
    sql, args, secret = cm.statement(name, settings,
                                     p['primary_password'] if send_password else None,
                                     log_file, p['primary_log_pos'])
    db.query(sql, args, secret_args=secret)
    if was_running and p['state'] != 'started':
        db.query('START SLAVE %s', [name])
    return change, before, after


def as_failure(e, step, db):
    """The one place a DbError becomes a Failure. It changed nothing when no statement that
    changes the server ran, the last one not counted when the server refused it (it refuses
    a statement whole; a lost connection, 2000 and up, may have come after it ran)."""
    queries = db.queries if db else []
    refused = e.code == 'gtid_running' or failure.server_refused(e)
    if isinstance(e, DbError):
        e = Failure(step, 'replica', failure.db_code(e, db), str(e))
    e.changed_nothing = not failure.wrote(queries, refused, lambda q: q.startswith(WRITES))
    return e


def main():
    argument_spec = login_argument_spec()
    aliases = {}
    for option in ('primary_log_file', 'primary_log_pos', 'primary_host', 'primary_port',
                   'primary_user', 'primary_password', 'primary_connect_retry',
                   'primary_heartbeat_period', 'primary_delay', 'primary_ssl',
                   'primary_ssl_ca', 'primary_ssl_cert', 'primary_ssl_key',
                   'primary_ssl_verify_server_cert'):
        aliases[option] = [option.replace('primary_', 'master_', 1)]
    types = dict(primary_log_pos='int', primary_port='int', primary_connect_retry='int',
                 primary_delay='int', primary_heartbeat_period='float', primary_ssl='bool',
                 primary_ssl_verify_server_cert='bool')
    for option, names in aliases.items():
        argument_spec[option] = dict(type=types.get(option, 'str'), aliases=names)
    argument_spec['primary_password']['no_log'] = True
    argument_spec['primary_ssl_key']['no_log'] = False  # a path to the key, not the key
    argument_spec.update(
        state=dict(type='str', default='started', choices=['started', 'present', 'stopped', 'reset']),
        connection_name=dict(type='str', default=''),
        mode=dict(type='str', choices=['gtid', 'file_pos']),
        gtid_slave_pos=dict(type='str'),
        force_position=dict(type='bool', default=False),
        update_password=dict(type='str', default='on_change', choices=['on_change', 'always'],
                             no_log=False),  # a choice, not a secret
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=300),
        max_lag=dict(type='int', default=0),
        wait_gtid=dict(type='str'),
        error_grace=dict(type='int', default=10),
        ignore_server_ids=dict(type='list', elements='int'),
        do_domain_ids=dict(type='list', elements='int'),
        ignore_domain_ids=dict(type='list', elements='int'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True,
        required_together=[('primary_log_file', 'primary_log_pos')],
        mutually_exclusive=[('gtid_slave_pos', 'primary_log_file')])
    p = module.params
    name = p['connection_name']
    db = None
    result = dict(changed=False, queries=[])
    where, step = 'replication', {'stopped': 'stop', 'reset': 'reset'}.get(p['state'], 'configure')
    try:
        if p['mode'] == 'gtid' and p['primary_log_file']:
            raise Failed('configure', 'options', 'primary_log_file/pos go with mode=file_pos; '
                         'with mode=gtid give gtid_slave_pos')
        where = 'replication on connection %r' % name
        db = Connection(p)
        row = status_row(db, name)
        diff = None
        if p['state'] in ('started', 'present'):
            changed, before, after = configure(module, db, row)
            diff = dict(before=before, after=after)
            result['settings'] = after
            row = status_row(db, name) if not module.check_mode else row
            if p['state'] == 'started' and (changed or not both_running(row)):
                step = 'start'
                if not module.check_mode:
                    db.query('START SLAVE %s', [name])
                changed = True
            result['changed'] = changed
            if p['state'] == 'started' and p['wait'] and not module.check_mode:
                step = 'wait'
                result['status'] = wait_healthy(db, p)
        elif p['state'] == 'stopped':
            if running(row):
                if not module.check_mode:
                    db.query('STOP SLAVE %s', [name])
                result['changed'] = True
        elif p['state'] == 'reset':
            if row:
                if not module.check_mode:
                    if running(row):
                        db.query('STOP SLAVE %s', [name])
                    db.query('RESET SLAVE %s ALL', [name])
                result['changed'] = True
        if 'status' not in result:
            row = status_row(db, name)
            if row:
                result['status'] = normalize(row)
        result['queries'] = db.queries
        if module._diff and diff is not None:
            result['diff'] = diff
        result['msg'] = '%s: %s' % (p['state'], 'changed' if result['changed'] else 'as wanted')
    except (DbError, Failure) as e:
        fault = as_failure(e, step, db)
        failure.fail(module, fault, where, queries=db.queries if db else [],
                     changed=result['changed'] or not fault.changed_nothing)
    finally:
        if db:
            db.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
