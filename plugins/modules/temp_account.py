#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: temp_account
short_description: Make or drop a temporary SELECT-only MariaDB account, outside the binlog
version_added: 0.1.0
description:
  - Creates an account that may only read (C(GRANT SELECT ON *.*)) with the password given,
    or drops it, on the server this module logs in to; for a check that needs to read a
    server for a while, such as the role's verification reading the primary.
  - Every statement runs with C(SET SESSION sql_log_bin = 0), so the account never reaches
    the binlog - no replica ever sees it, and the server gets no GTID of its own for it.
  - The password reaches the server as a driver parameter, never on a command line; it is
    never returned and is masked in C(queries).
  - Idempotent. With C(state=present), an account that already exists with this password
    (compared by its C(mysql_native_password) hash, computed here), with C(SELECT) on
    C(*.*) as its only grant and no other option (TLS requirement, limits, lock, expiry) is
    left alone; any other account of that name and host is replaced
    (C(CREATE OR REPLACE USER)). With C(state=absent), an account that does not exist is
    left alone. C(changed) is true only when the account was created, replaced or dropped.
options:
  name:
    description: The account's user name.
    type: str
    required: true
    aliases: [user]
  host:
    description: The account's host part; C(%) lets it log in from anywhere.
    type: str
    default: '%'
  password:
    description:
      - Its password, required with C(state=present). Never logged nor returned.
    type: str
  state:
    description:
      - C(present) makes sure the account exists as described above; C(absent) drops it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - reseed.mariadb.login
notes:
  - Supports check mode - what would change is read and reported, nothing is written.
  - The login account needs C(CREATE USER), C(SELECT) with C(GRANT OPTION) (to grant it), and
    C(BINLOG ADMIN) (or C(SUPER)) for C(sql_log_bin); root over the unix socket has them.
seealso:
  - module: reseed.mariadb.checksum
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Make a temporary read-only account on the primary
  reseed.mariadb.temp_account:
    name: reseed_verify
    password: "{{ verify_secret }}"
  delegate_to: db1.example.com

- name: Drop it again
  reseed.mariadb.temp_account:
    name: reseed_verify
    state: absent
  delegate_to: db1.example.com
'''

RETURN = r'''
account:
  description: The account, as C(user@host).
  returned: always
  type: str
  sample: reseed_verify@%
action:
  description:
    - What was done (or, in check mode, would be) - C(created), C(replaced) (it existed
      otherwise), C(dropped), or C(none).
  returned: always
  type: str
  sample: created
queries:
  description: The statements run, the password masked.
  returned: always
  type: list
  elements: str
  sample:
    - SET SESSION sql_log_bin = 0
    - CREATE OR REPLACE USER 'reseed_verify'@'%' IDENTIFIED BY '********'
    - GRANT SELECT ON *.* TO 'reseed_verify'@'%'
failure:
  description:
    - "What failed, in fields (C(msg) is C(temp_account: cannot <verb> <account>: <message>));
      C(step) (C(create) for I(state=present), C(drop) for I(state=absent)), C(side)
      (C(source), C(replica) or C(link): always C(source) here, the server it logs in to,
      the primary a check reads), C(code), C(changed_nothing) (no C(CREATE), C(GRANT) or
      C(DROP) ran, one the server refused not counted), C(message)."
    - Codes C(empty_password) (refused before connecting), C(login), C(no_pymysql),
      C(privileges) (errors 1044, 1142, 1227 - the login account lacks a privilege, the
      message says which it needs), C(statement_error_<errno>).
  returned: on failure
  type: dict
  sample: {step: create, side: source, code: privileges, changed_nothing: true,
           message: "CREATE OR REPLACE USER ... failed on root@socket ...: (1227) Access denied; ..."}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import hashlib

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    Connection, DbError, login_argument_spec)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure

# It runs on the server it changes, the primary a check reads.
SIDE = 'source'
# Statements that change the server (the others read, or set the session: SELECT, SHOW, SET).
WRITES = ('CREATE', 'GRANT', 'DROP')


def native_hash(password):
    """The mysql_native_password hash the server keeps for this password (as PASSWORD()
    returns it), so that an existing account's password can be compared without sending it."""
    inner = hashlib.sha1(password.encode('utf-8')).digest()
    return '*' + hashlib.sha1(inner).hexdigest().upper()


def quote_name(value):
    """A name as SHOW CREATE USER and SHOW GRANTS print it: in backticks, doubled inside."""
    return '`%s`' % value.replace('`', '``')


def wanted_texts(name, host, password):
    """What SHOW CREATE USER and SHOW GRANTS print for the account as this module makes it:
    the CREATE USER text, and the grant lines accepted (with or without the password's
    hash, as servers print it)."""
    account = '%s@%s' % (quote_name(name), quote_name(host))
    auth = " IDENTIFIED BY PASSWORD '%s'" % native_hash(password)
    grant = 'GRANT SELECT ON *.* TO %s' % account
    return 'CREATE USER %s%s' % (account, auth), ([grant + auth], [grant])


def plan(state, current, name, host, password):
    """The action for the account: 'created', 'replaced', 'dropped' or 'none'.

    current: None when the account does not exist, else (create_text, grant_lines) as the
    server prints them."""
    if state == 'absent':
        return 'dropped' if current is not None else 'none'
    if current is None:
        return 'created'
    create, grants = current
    wanted_create, wanted_grants = wanted_texts(name, host, password)
    if create == wanted_create and list(grants) in wanted_grants:
        return 'none'
    return 'replaced'


def read_account(db, name, host):
    """(create_text, grant_lines) of the account, or None when it does not exist. The texts
    hold its password's hash: compared here, never returned."""
    rows = db.query('SELECT COUNT(*) AS n FROM mysql.user WHERE User = %s AND Host = %s',
                    [name, host])
    if not rows or not int(rows[0]['n']):
        return None
    create = db.query('SHOW CREATE USER %s@%s', [name, host])
    grants = db.query('SHOW GRANTS FOR %s@%s', [name, host])
    return (list(create[0].values())[0] if create else '',
            [list(row.values())[0] for row in grants])


def apply(db, action, name, host, password):
    """Run the statements of the action, outside the binlog."""
    db.query('SET SESSION sql_log_bin = 0')
    if action == 'dropped':
        # IF EXISTS: a run dropping it at the same time is no failure.
        db.query('DROP USER IF EXISTS %s@%s', [name, host])
        return
    db.query('CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s', [name, host, password],
             secret_args=[2])
    db.query('GRANT SELECT ON *.* TO %s@%s', [name, host])


VERBS = dict(none='read', created='create', replaced='replace', dropped='drop')
# What the login account needs, said when the server refuses a statement (1227: "you need
# (at least one of) the ... privilege(s)", 1044/1142: access denied).
PRIVILEGE_ERRORS = (1044, 1142, 1227)
PRIVILEGE_HINT = ('log in as an account with CREATE USER, SELECT WITH GRANT OPTION and '
                  'BINLOG ADMIN (root over the unix socket has them)')


def as_failure(e, step, verb, account, db):
    """The one place a DbError becomes a Failure (its message 'cannot <verb> <account>: ...',
    with what the login needs when the server refused a privilege). It changed nothing when
    no statement that changes the server ran, the last one not counted when the server
    refused it (it refuses a statement whole; a lost connection, 2000 and up, may have come
    after it ran)."""
    queries = db.queries if db else []
    hint = ('; ' + PRIVILEGE_HINT) if e.code in PRIVILEGE_ERRORS else ''
    code = 'privileges' if db and hint else failure.db_code(e, db)
    wrote = failure.wrote(queries, failure.server_refused(e), lambda q: q.startswith(WRITES))
    return Failure(step, SIDE, code, 'cannot %s %s: %s%s' % (verb, account, e, hint),
                   changed_nothing=not wrote)


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True, aliases=['user']),
        host=dict(type='str', default='%'),
        password=dict(type='str', no_log=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ('password',))])
    p = module.params
    name, host = p['name'], p['host']
    account = '%s@%s' % (name, host)
    step = 'create' if p['state'] == 'present' else 'drop'
    db = None
    result = dict(changed=False, account=account, action='none', queries=[])
    try:
        if p['state'] == 'present' and not p['password']:
            raise Failure(step, SIDE, 'empty_password', 'cannot %s %s: an empty password is '
                          'refused: give the account a password' % (VERBS['none'], account))
        db = Connection(p)
        result['action'] = plan(p['state'], read_account(db, name, host), name, host,
                                p['password'])
        if result['action'] != 'none':
            result['changed'] = True
            if not module.check_mode:
                apply(db, result['action'], name, host, p['password'])
        result['queries'] = db.queries
        result['msg'] = '%s %s%s' % (
            account, 'as wanted' if result['action'] == 'none' else result['action'],
            ' (check mode)' if module.check_mode and result['changed'] else '')
    except (DbError, Failure) as e:
        fault = e if isinstance(e, Failure) else as_failure(
            e, step, VERBS[result['action']], account, db)
        failure.fail(module, fault, 'temp_account', queries=db.queries if db else [],
                     account=account, action=result['action'])
    finally:
        if db:
            db.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
