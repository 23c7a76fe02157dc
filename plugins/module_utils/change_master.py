# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CHANGE MASTER TO, built from one table and compared with what the replica runs.

Values go to the driver as parameters (a quote in a password cannot break the statement);
only keywords from the table and the fixed MASTER_USE_GTID values are written into the SQL.
Pure functions.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# (module option, SQL keyword, SHOW ALL SLAVES STATUS field or None when unreadable, type)
# The heartbeat is only in SHOW ALL SLAVES STATUS (not SHOW SLAVE STATUS); the server keeps
# it to the millisecond, so both sides are compared rounded to 3 decimals. Lists (of ids) are
# compared sorted; the driver writes a tuple as (1,2), and an empty one clears the list.
OPTIONS = (
    ('primary_host', 'MASTER_HOST', 'Master_Host', 'str'),
    ('primary_port', 'MASTER_PORT', 'Master_Port', 'int'),
    ('primary_user', 'MASTER_USER', 'Master_User', 'str'),
    ('primary_password', 'MASTER_PASSWORD', None, 'secret'),
    ('primary_connect_retry', 'MASTER_CONNECT_RETRY', 'Connect_Retry', 'int'),
    ('primary_heartbeat_period', 'MASTER_HEARTBEAT_PERIOD', 'Slave_heartbeat_period', 'float'),
    ('primary_delay', 'MASTER_DELAY', 'SQL_Delay', 'int'),
    ('primary_ssl', 'MASTER_SSL', 'Master_SSL_Allowed', 'bool'),
    ('primary_ssl_ca', 'MASTER_SSL_CA', 'Master_SSL_CA_File', 'str'),
    ('primary_ssl_cert', 'MASTER_SSL_CERT', 'Master_SSL_Cert', 'str'),
    ('primary_ssl_key', 'MASTER_SSL_KEY', 'Master_SSL_Key', 'str'),
    ('primary_ssl_verify_server_cert', 'MASTER_SSL_VERIFY_SERVER_CERT',
     'Master_SSL_Verify_Server_Cert', 'bool'),
    ('ignore_server_ids', 'IGNORE_SERVER_IDS', 'Replicate_Ignore_Server_Ids', 'list'),
    ('do_domain_ids', 'DO_DOMAIN_IDS', 'Replicate_Do_Domain_Ids', 'list'),
    ('ignore_domain_ids', 'IGNORE_DOMAIN_IDS', 'Replicate_Ignore_Domain_Ids', 'list'),
)
USE_GTID = {'gtid': 'slave_pos', 'file_pos': 'no'}
USE_GTID_SHOWN = {'slave_pos': 'Slave_Pos', 'no': 'No', 'current_pos': 'Current_Pos'}
MASK = '********'


def current_settings(status_row):
    """What the replica runs, from its SHOW SLAVE STATUS row, in our option names."""
    out = {}
    for option, keyword, field, kind in OPTIONS:
        if field is None or field not in status_row:
            continue
        value = status_row[field]
        if kind == 'int':
            value = int(value) if value not in (None, '') else None
        elif kind == 'float':
            value = round(float(value), 3) if value not in (None, '') else None
        elif kind == 'bool':
            value = str(value) in ('Yes', '1')
        elif kind == 'list':
            value = id_list(value)
        else:
            value = value or ''
        out[option] = value
    out['use_gtid'] = {'Slave_Pos': 'slave_pos', 'Current_Pos': 'current_pos'}.get(
        status_row.get('Using_Gtid'), 'no')
    return out


def id_list(value):
    """'3, 4' (as SHOW SLAVE STATUS lists ids) or [4, 3] -> [3, 4]."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return sorted(int(x) for x in value)
    return sorted(int(x) for x in str(value).replace(',', ' ').split())


def normal(kind, value):
    """A wanted value in the form current_settings() reads it back."""
    if kind == 'float':
        return round(float(value), 3)
    if kind == 'list':
        return id_list(value)
    return value


def use_gtid_for(mode, current_use_gtid, log_file=None, gtid_pos=None):
    """MASTER_USE_GTID to ask for: the mode given; else file and position when a binlog file
    is given, GTID when a GTID position is and the connection does not use GTID yet; else
    what the connection uses already (current_pos included), and slave_pos for a new one.
    A connection only started again is never switched to another mode."""
    if mode:
        return USE_GTID[mode]
    if log_file:
        return 'no'
    if gtid_pos and current_use_gtid in (None, 'no'):
        return 'slave_pos'
    return current_use_gtid or 'slave_pos'


def wanted_settings(params, use_gtid):
    """The settings asked for (options left unset are not managed)."""
    out = dict((option, normal(kind, params[option]))
               for option, keyword, field, kind in OPTIONS
               if params.get(option) is not None and kind != 'secret')
    out['use_gtid'] = use_gtid
    return out


def differences(current, wanted):
    """{option: (current, wanted)} for the settings that differ."""
    return dict((k, (current.get(k), v)) for k, v in wanted.items() if current.get(k) != v)


def naming_heartbeat(settings, current):
    """settings, with the heartbeat period named (as it is, unless settings change it): a
    CHANGE MASTER that names none sets it back to the default, slave_net_timeout / 2."""
    out = dict(settings)
    if current.get('primary_heartbeat_period') is not None:
        out.setdefault('primary_heartbeat_period', current['primary_heartbeat_period'])
    return out


def statement(connection_name, settings, password=None, log_file=None, log_pos=None):
    """(sql, args, secret_arg_indexes) for CHANGE MASTER 'name' TO the given settings."""
    parts, args = [], [connection_name]
    keywords = dict((o, k) for o, k, f, t in OPTIONS)
    for option, keyword, field, kind in OPTIONS:
        if option not in settings or kind == 'secret':
            continue
        value = settings[option]
        parts.append('%s = %%s' % keyword)
        args.append(int(value) if kind == 'bool' else
                    tuple(id_list(value)) if kind == 'list' else value)
    secret = ()
    if password is not None:
        parts.append('%s = %%s' % keywords['primary_password'])
        args.append(password)
        secret = (len(args) - 1,)
    if log_file is not None:
        parts.append('MASTER_LOG_FILE = %s')
        args.append(log_file)
        parts.append('MASTER_LOG_POS = %s')
        args.append(int(log_pos))
    use_gtid = settings.get('use_gtid')
    if use_gtid is not None:
        if use_gtid not in USE_GTID_SHOWN:
            raise ValueError('MASTER_USE_GTID cannot be %r' % use_gtid)
        parts.append('MASTER_USE_GTID = %s' % use_gtid)  # a keyword, from the list above
    if not parts:
        raise ValueError('nothing to change')
    return 'CHANGE MASTER %s TO ' + ', '.join(parts), args, secret


def shown(settings, password_changes=False):
    """Settings for diff output and results: the password only as a mask."""
    out = dict(settings)
    if password_changes:
        out['primary_password'] = MASK
    return out
