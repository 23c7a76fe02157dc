# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database connection every module uses: PyMySQL, community.mysql's option names."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import configparser
import getpass
import os
import re

try:
    import pymysql
    import pymysql.cursors
    HAS_PYMYSQL = True
except ImportError:  # pragma: no cover - depends on the host
    pymysql = None
    HAS_PYMYSQL = False

MASK = '********'
# Where Debian, Ubuntu and RHEL put the server's socket; the first that exists is used.
DEFAULT_SOCKETS = ('/run/mysqld/mysqld.sock', '/var/run/mysqld/mysqld.sock',
                   '/var/lib/mysql/mysql.sock', '/tmp/mysql.sock')
# A connection to this host's own server refused this way means the server does not listen:
# 2002 (no socket, the C client's number), 2003 (refused, or no socket file: PyMySQL's).
SERVER_DOWN_ERRORS = (2002, 2003)
LOOPBACK_HOSTS = ('localhost', '127.0.0.1', '::1')
PYMYSQL_MISSING = ('PyMySQL is not installed for the Python that runs this module '
                   '(install python3-pymysql on Debian/Ubuntu, python3-PyMySQL on RHEL)')


def login_argument_spec():
    """The login options, as documented in the reseed.mariadb.login doc fragment."""
    return dict(
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_host=dict(type='str', default='localhost'),
        login_port=dict(type='int', default=3306),
        login_unix_socket=dict(type='str'),
        config_file=dict(type='path', default='~/.my.cnf'),
        connect_timeout=dict(type='int', default=30),
        ca_cert=dict(type='path', aliases=['ssl_ca']),
        client_cert=dict(type='path', aliases=['ssl_cert']),
        client_key=dict(type='path', aliases=['ssl_key']),
        check_hostname=dict(type='bool'),
    )


class DbError(Exception):
    """A connection or query failed; the message is safe to show (no password). `code` is
    the server's error number when there is one."""

    def __init__(self, message, code=None):
        super(DbError, self).__init__(message)
        self.code = code


def scrub(text, secrets):
    """Replace every non-empty secret in text by the mask."""
    text = '' if text is None else str(text)
    for secret in secrets or ():
        if secret:
            text = text.replace(secret, MASK)
    return text


def connect_kwargs(params, default_sockets=DEFAULT_SOCKETS):
    """PyMySQL keyword arguments for the login options in params (a dict)."""
    kwargs = dict(connect_timeout=params.get('connect_timeout') or 30, autocommit=True,
                  charset='utf8mb4', cursorclass=pymysql.cursors.DictCursor if pymysql else None)
    file_keys = set()
    config_file = params.get('config_file')
    if config_file:
        config_file = os.path.expanduser(config_file)
        if os.path.isfile(config_file):
            kwargs['read_default_file'] = config_file
            file_keys = client_section(config_file)
    file_names_server = bool(set(file_keys) & set(['host', 'socket']))
    socket = params.get('login_unix_socket')
    host = params.get('login_host') or 'localhost'
    if not socket and host == 'localhost' and not file_names_server:
        socket = next((s for s in default_sockets if os.path.exists(s)), None)
    if socket:
        kwargs['unix_socket'] = socket
    elif file_names_server and host == 'localhost':
        # Left to the option file, which names the server (PyMySQL reads it).
        kwargs['host'] = file_keys.get('host')
        kwargs['port'] = int(file_keys.get('port') or params.get('login_port') or 3306)
        if 'socket' in file_keys:
            kwargs['unix_socket'] = file_keys['socket']
    else:
        kwargs['host'] = host
        kwargs['port'] = params.get('login_port') or 3306
    if params.get('login_user') is not None:
        kwargs['user'] = params['login_user']
    elif 'user' not in file_keys:
        # What the mariadb client does too: the operating system user (root under become).
        kwargs['user'] = getpass.getuser()
    if params.get('login_password') is not None:
        kwargs['password'] = params['login_password']
    ssl = {}
    for option, key in (('ca_cert', 'ca'), ('client_cert', 'cert'), ('client_key', 'key')):
        if params.get(option):
            ssl[key] = params[option]
    if params.get('check_hostname') is not None:
        ssl['check_hostname'] = params['check_hostname']
    if ssl:
        kwargs['ssl'] = ssl
    return kwargs


def client_options(params, default_sockets=DEFAULT_SOCKETS):
    """The login connect_kwargs() resolves, for a program that reads an option file instead
    of PyMySQL's arguments (mariadb-backup): (include, pairs), pairs the (name, value) of its
    C([client]) section. What connect_kwargs() leaves to config_file is left to that file,
    which the program reads itself: include is its path (None without one), and none of its
    values is repeated. login_unix_socket, else the default socket for localhost, takes
    precedence over login_host, as for the driver."""
    kwargs = connect_kwargs(params, default_sockets)
    include = kwargs.get('read_default_file')
    file_keys = client_section(include) if include else {}
    # connect_kwargs() takes the server from the file when it names one and the options do not.
    server_in_file = bool(set(file_keys) & set(['host', 'socket'])) and \
        not params.get('login_unix_socket') and (params.get('login_host') or 'localhost') == 'localhost'
    pairs = []
    if 'user' in kwargs:
        pairs.append(('user', kwargs['user']))
    if kwargs.get('password'):
        pairs.append(('password', kwargs['password']))
    if not server_in_file:
        if 'unix_socket' in kwargs:
            pairs.append(('socket', kwargs['unix_socket']))
        else:
            pairs += [('host', kwargs['host']), ('port', kwargs['port'])]
    ssl = kwargs.get('ssl') or {}
    for key, name in (('ca', 'ssl-ca'), ('cert', 'ssl-cert'), ('key', 'ssl-key')):
        if ssl.get(key):
            pairs.append((name, ssl[key]))
    if ssl.get('check_hostname') is not None:
        pairs.append(('ssl-verify-server-cert', 1 if ssl['check_hostname'] else 0))
    return include, pairs


def client_section(path):
    """An option file's [client] section as a dict (empty when unreadable)."""
    parser = configparser.RawConfigParser(allow_no_value=True, strict=False)
    try:
        parser.read(path)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return {}
    return dict(parser.items('client')) if parser.has_section('client') else {}


def local_server(kwargs):
    """Whether connect_kwargs() reach this host's own server (a unix socket or a loopback
    address), the one whose being down this host can tell."""
    return 'unix_socket' in kwargs or kwargs.get('host') in LOOPBACK_HOSTS or (
        kwargs.get('host') or '').startswith('127.')


def describe_target(kwargs):
    """'root@socket /run/mysqld/mysqld.sock' or 'repl@10.0.0.1:3306', for error messages."""
    user = kwargs.get('user', 'the user of %s' % kwargs.get('read_default_file'))
    if 'unix_socket' in kwargs:
        return '%s@socket %s' % (user, kwargs['unix_socket'])
    return '%s@%s:%s' % (user, kwargs.get('host'), kwargs.get('port'))


class Connection(object):
    """A PyMySQL connection that records every statement it runs, secrets masked."""

    def __init__(self, params, default_sockets=DEFAULT_SOCKETS):
        if not HAS_PYMYSQL:
            raise DbError(PYMYSQL_MISSING)
        self.secrets = [params.get('login_password')]
        self.queries = []
        kwargs = connect_kwargs(params, default_sockets)
        self.target = describe_target(kwargs)
        try:
            self.conn = pymysql.connect(**kwargs)
        except Exception as e:  # PyMySQL raises several families; all mean "cannot log in"
            raise DbError('cannot connect to MariaDB as %s: %s' % (
                self.target, self.error_text(e)), error_code(e))

    def error_text(self, exc):
        return scrub(format_error(exc), self.secrets)

    def query(self, sql, args=None, secret_args=()):
        """Run one statement; return its rows as dicts. secret_args: indexes (or keys) of
        args to mask in the recorded statement."""
        cursor = self.conn.cursor()
        try:
            self.queries.append(self.mogrify_masked(cursor, sql, args, secret_args))
            cursor.execute(sql, args)
            return list(cursor.fetchall()) if cursor.description else []
        except Exception as e:
            raise DbError('%s failed on %s: %s' % (
                self.queries[-1], self.target, self.error_text(e)), error_code(e))
        finally:
            cursor.close()

    def mogrify_masked(self, cursor, sql, args, secret_args):
        if args is None:
            return sql
        if isinstance(args, dict):
            shown = dict((k, MASK if k in secret_args else v) for k, v in args.items())
            for k in secret_args:
                if args.get(k):
                    self.secrets.append(args[k])
        else:
            shown = [MASK if i in secret_args else v for i, v in enumerate(args)]
            for i in secret_args:
                if args[i]:
                    self.secrets.append(args[i])
        return cursor.mogrify(sql, shown)

    def variable(self, name):
        """A global server variable, e.g. variable('gtid_binlog_pos'); None when unknown."""
        if not re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', name):
            raise ValueError('not a variable name: %r' % name)
        rows = self.query('SELECT @@GLOBAL.%s AS value' % name)
        return rows[0]['value'] if rows else None

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def format_error(exc):
    """'(1045) Access denied ...' from a PyMySQL error, or the exception text."""
    args = getattr(exc, 'args', ())
    if len(args) >= 2 and isinstance(args[0], int):
        return '(%d) %s' % (args[0], args[1])
    return str(exc) or exc.__class__.__name__


def error_code(exc):
    """The server's error number carried by a PyMySQL exception, or None."""
    args = getattr(exc, 'args', ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def connect_or_fail(module, params=None):
    """Connect with the module's login options or fail_json with a one-line reason."""
    try:
        return Connection(params if params is not None else module.params)
    except DbError as e:
        module.fail_json(msg=str(e))
