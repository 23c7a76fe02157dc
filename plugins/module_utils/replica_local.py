# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a replica keeps across a rebuild: its own accounts, its connection settings, its
dynamic replication globals, and the copy's events kept from running on it.

A physical copy is the source's whole server (mysql.* included, events ENABLED); what is the
replica's own is read before the swap and put back after it. Pure functions, no I/O.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import hmac
import json

from ansible_collections.reseed.mariadb.plugins.module_utils import change_master as cm

STATE_VERSION = 1

# The dynamic globals of replication that a SET GLOBAL may have changed and a restart loses,
# put back (where they differ from the new server's) before replication starts: the
# replicate_* filters and the parallel settings can only change while the threads are
# stopped, which the hold (skip_slave_start) guarantees then.
GLOBALS = (
    'replicate_do_db', 'replicate_ignore_db', 'replicate_do_table', 'replicate_ignore_table',
    'replicate_wild_do_table', 'replicate_wild_ignore_table',
    'replicate_events_marked_for_skip',
    'slave_parallel_threads', 'slave_parallel_mode', 'slave_domain_parallel_threads',
    'slave_parallel_max_queued', 'slave_net_timeout', 'slave_exec_mode',
    'slave_ddl_exec_mode', 'slave_sql_verify_checksum', 'slave_transaction_retries',
    'slave_max_allowed_packet', 'slave_type_conversions',
)
# Put back only once replication is configured: the hold keeps the server read-only until
# then, and whatever the replica had (ON or OFF) comes back after.
LATE_GLOBALS = ('read_only',)

# The connection settings a replica keeps (replication module options), and the value each
# has when never set: only those a replica set otherwise are carried (and named).
CONNECTION_DEFAULTS = (
    ('primary_delay', 0),
    ('primary_connect_retry', 60),
    ('primary_heartbeat_period', None),  # default: slave_net_timeout / 2
    ('ignore_server_ids', []),
    ('do_domain_ids', []),
    ('ignore_domain_ids', []),
    ('primary_ssl', False),
    ('primary_ssl_ca', ''),
    ('primary_ssl_cert', ''),
    ('primary_ssl_key', ''),
    ('primary_ssl_verify_server_cert', False),
)

# Never carried: the server's own system accounts (the copy's are the right ones for the
# copy's tables) and the account the module logs in as (dropping it mid-session would lock
# the module out).
SYSTEM_ACCOUNTS = ('mariadb.sys@localhost',)


def account_name(user, host):
    """'user@host', as users name an account (never quoted, never with a hash)."""
    return '%s@%s' % (user, host)


def quote_ident(name):
    """A backquoted identifier (a backquote inside doubled)."""
    return '`%s`' % str(name).replace('`', '``')


def account_digest(key, create_user, grants):
    """A keyed digest of an account's definition (SHOW CREATE USER and its SHOW GRANTS, in
    any order): equal digests mean the same authentication and the same grants. Keyed with
    a key drawn per run, so that it says nothing outside that run."""
    text = '\n'.join([create_user] + sorted(grants))
    return hmac.new(key.encode('utf-8'), text.encode('utf-8'), hashlib.sha256).hexdigest()


def local_accounts(replica_digests, source_digests, skip=()):
    """The accounts the replica has that the source lacks or holds otherwise, sorted."""
    skip = set(SYSTEM_ACCOUNTS) | set(skip)
    return sorted(a for a, d in replica_digests.items()
                  if a not in skip and source_digests.get(a) != d)


def connection_settings(row, slave_net_timeout):
    """The settings a replica's connection has that differ from a new connection's, as
    reseed.mariadb.replication options, from its SHOW ALL SLAVES STATUS row."""
    current = cm.current_settings(row)
    out = {}
    for option, default in CONNECTION_DEFAULTS:
        value = current.get(option)
        if option == 'primary_heartbeat_period':
            default = round(float(slave_net_timeout) / 2, 3) if slave_net_timeout else None
        if value is None or value == default:
            continue
        out[option] = value
    return out


def other_connections(rows, managed=''):
    """The names of the connections other than the one the rebuild manages."""
    return sorted(r.get('Connection_name', '') for r in rows
                  if r.get('Connection_name', '') != managed)


def globals_to_restore(saved, current):
    """{name: value} of the saved globals whose value the server does not have now."""
    return dict((name, value) for name, value in sorted(saved.items())
                if name in current and current[name] != value)


def enabled_events(rows):
    """[(schema, name, definer)] of the events the server would run itself (ENABLED)."""
    return sorted((r['EVENT_SCHEMA'], r['EVENT_NAME'], r.get('DEFINER') or '') for r in rows
                  if r.get('STATUS') == 'ENABLED')


def disable_event_sql(schema, name, definer):
    """(sql, args): ALTER EVENT for one event, naming its definer: without it the server
    makes the account that alters it the event's definer. The definer's parts go as
    parameters; schema and name, identifiers, are quoted here."""
    target = '%s.%s' % (quote_ident(schema), quote_ident(name))
    if '@' in definer:
        user, host = definer.rsplit('@', 1)
        return 'ALTER DEFINER = %%s@%%s EVENT %s DISABLE ON SLAVE' % target, [user, host]
    if definer:  # a role
        return 'ALTER DEFINER = %%s EVENT %s DISABLE ON SLAVE' % target, [definer]
    return 'ALTER EVENT %s DISABLE ON SLAVE' % target, None


# Debian's debian-start runs mariadb-upgrade in the background at every server start; its
# SQL (mysql_system_tables_fix.sql) saves event_scheduler, sets it OFF, and sets the saved
# value back at its end: a value set meanwhile is lost (measured: 2 s after the restore).
UPGRADE_PROGRAMS = ('mariadb-upgrade', 'mysql_upgrade')


def is_upgrade(cmdline):
    """Whether a process's /proc/PID/cmdline (bytes, NUL-separated) is the server's upgrade
    (the program itself, or a shell running it)."""
    for arg in cmdline.split(b'\0')[:2]:
        name = arg.decode('utf-8', 'replace').rsplit('/', 1)[-1]
        if name in UPGRADE_PROGRAMS:
            return True
    return False


def scheduler_to_restore(before, now):
    """The event_scheduler value to set back, or None: DISABLED cannot be set at runtime
    (the server's config brings it back at its next start), nor can anything be restored
    when the server says DISABLED now."""
    before, now = str(before or '').upper(), str(now or '').upper()
    if before not in ('ON', 'OFF') or now == 'DISABLED' or before == now:
        return None
    return before


def restore_statements(account):
    """The statements that make the new server hold an account as the replica had it:
    dropped (the copy's version, if any), created and granted again from the text the
    replica's server showed before the swap."""
    user, host = account['user'], account['host']
    return ([('DROP USER IF EXISTS %s@%s', [user, host])]
            + [(account['create'], None)]
            + [(g, None) for g in account['grants']])


def same_definition(account, create_user, grants):
    """Whether the server now holds the account exactly as saved (then nothing to do)."""
    return create_user == account['create'] and sorted(grants) == sorted(account['grants'])


def state_text(state):
    """The state file's text."""
    return json.dumps(dict(state, version=STATE_VERSION), sort_keys=True)


def load_state(text):
    """The state file's content; ValueError when it is not ours."""
    state = json.loads(text)
    if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
        raise ValueError('not a reseed replica_local state file of version %d' % STATE_VERSION)
    return state
