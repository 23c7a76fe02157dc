# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datadir swap as a plan: names, path checks and the list of moves. Pure functions.

Two layouts (see docs/DATADIR_SWAP.md):
- ``rename``: the datadir is a plain directory; the staging copy is a sibling on the same
  filesystem. The swap is two renames: datadir -> <datadir>.reseed-old-<ts>, staging ->
  datadir.
- ``entries``: the datadir is its own mount point and cannot be renamed. The staging copy
  lives inside it under a name starting with ``#sql`` (MariaDB 10.11 lists no such
  directory as a database, verified in the lab); the swap moves the old entries into
  ``#sql-reseed-old-<ts>`` and the copy's entries up, every move a rename on one filesystem.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

# MariaDB skips names starting with its temporary-file prefix when it lists databases
# (SHOW DATABASES, information_schema.SCHEMATA, hence mariadb-dump): the only directory
# names that may sit inside a live datadir. '.name' and any other '#name' are databases.
HIDDEN_PREFIX = '#sql'
OLD_TAG = 'reseed-old'
FAILED_TAG = 'reseed-failed'
EXTERNAL_DIR_PREFIX = 'reseed-old-'
SWAP_RECORD = 'reseed_swapped'
# Left alone on a mount point: the filesystem's own (ext4), not the server's.
FILESYSTEM_ENTRIES = ('lost+found',)
INNODB_PATH_VARIABLES = ('innodb_data_home_dir', 'innodb_log_group_home_dir',
                         'innodb_undo_directory')
LOG_VARIABLES = ('log_bin_basename', 'log_bin_index', 'relay_log_basename', 'relay_log_index')
# The server's paths, named as its variables: what datadir_swap reads from a running server,
# and what server_paths() finds in the option files of one that does not run.
SERVER_PATH_VARIABLES = ('datadir', 'pid_file', 'log_error') + LOG_VARIABLES + INNODB_PATH_VARIABLES
# The datadir Debian's, Ubuntu's and RHEL's packages compile in, used when no option names
# one (Debian's option files leave it commented out). Not asked from `mariadbd --verbose
# --help`: that writes in the datadir (a case-sensitivity test file, aria_log_control).
DEFAULT_DATADIR = '/var/lib/mysql'


class PlanError(ValueError):
    """A path or layout that the swap refuses; the message says why and what to do."""


def timestamp(now=None):
    """'20261124T104500Z' (UTC): sorts by time, no characters a shell or SQL cares about."""
    return time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now if now is not None else time.time()))


def normalize(path):
    return os.path.normpath(os.path.abspath(path))


def is_inside(path, directory):
    """Whether path is directory or below it (both normalized)."""
    path, directory = normalize(path), normalize(directory)
    return path == directory or path.startswith(directory.rstrip('/') + '/')


def hidden_name(name):
    return name.startswith(HIDDEN_PREFIX)


def old_path(datadir, layout, ts):
    """Where the old datadir is kept."""
    if layout == 'rename':
        return '%s.%s-%s' % (normalize(datadir), OLD_TAG, ts)
    return os.path.join(normalize(datadir), '%s-%s-%s' % (HIDDEN_PREFIX, OLD_TAG, ts))


def failed_path(datadir, layout, ts):
    """Where a copy that did not start is kept after a rollback."""
    if layout == 'rename':
        return '%s.%s-%s' % (normalize(datadir), FAILED_TAG, ts)
    return os.path.join(normalize(datadir), '%s-%s-%s' % (HIDDEN_PREFIX, FAILED_TAG, ts))


def choose_layout(datadir, staging, mount_point, same_mount, same_filesystem):
    """'rename' or 'entries' for these paths, or PlanError.

    The facts come from module_utils/mounts.py (the host's mount table, not st_dev: a bind
    mount of a directory of the same filesystem has its parent's st_dev, yet it is a mount
    point): mount_point, whether the datadir is the target of a mount; same_mount, whether
    the staging directory and the datadir are held by one mount (a rename works only then:
    EXDEV otherwise, even on one filesystem); same_filesystem, whether those mounts are of
    one filesystem (only to say which refusal it is).
    """
    datadir, staging = normalize(datadir), normalize(staging)
    if staging == datadir:
        raise PlanError('the staging directory is the datadir itself')
    if is_inside(datadir, staging):
        raise PlanError('the datadir %s is inside the staging directory %s' % (datadir, staging))
    inside = is_inside(staging, datadir)
    if inside:
        if os.path.dirname(staging) != datadir or not hidden_name(os.path.basename(staging)):
            raise PlanError(
                'a staging directory inside the datadir must be its direct child named '
                '%s... (MariaDB takes any other directory there for a database): use %s'
                % (HIDDEN_PREFIX, suggested_staging(datadir, True)))
        if not mount_point:
            raise PlanError('the datadir %s is a plain directory: stage the copy beside it '
                            '(%s), not inside it' % (datadir, suggested_staging(datadir, False)))
        if not same_mount:
            raise PlanError('the staging directory %s is a mount of its own inside the datadir '
                            '%s, so the swap would be a full copy instead of a rename: unmount '
                            'it and stream the copy into that plain directory' % (staging, datadir))
        return 'entries'
    if not same_mount and not (mount_point and same_filesystem):
        if not same_filesystem:
            raise PlanError(
                'the staging directory %s is on another filesystem than the datadir %s, so the '
                'swap would be a full copy instead of a rename: stream the copy into %s'
                % (staging, datadir, suggested_staging(datadir, mount_point)))
        raise PlanError(
            'the staging directory %s is on another mount than the datadir %s (one filesystem, '
            'but a rename between two mounts fails with EXDEV), so the swap would be a full '
            'copy instead of a rename: stream the copy into %s'
            % (staging, datadir, suggested_staging(datadir, mount_point)))
    if mount_point:
        raise PlanError('the datadir %s is a mount point: stage the copy inside it, in %s'
                        % (datadir, suggested_staging(datadir, True)))
    return 'rename'


def suggested_staging(datadir, mount_point):
    """Where the role streams the copy so that the swap is a rename."""
    datadir = normalize(datadir)
    if mount_point:
        return os.path.join(datadir, HIDDEN_PREFIX + '-reseed-staging')
    return datadir + '.reseed-staging'


def entries_to_move_aside(datadir_entries, staging_name):
    """The old datadir's top-level entries that leave it, on the 'entries' layout: all but
    the staging copy, earlier kept datadirs, other hidden (#sql...) directories and the
    filesystem's own lost+found."""
    return sorted(e for e in datadir_entries
                  if e != staging_name and not hidden_name(e) and e not in FILESYSTEM_ENTRIES)


def external_paths_problem(datadir, innodb_paths):
    """A refusal for InnoDB files configured outside the datadir, or None.

    innodb_paths: {variable: value} as the server reports them ('' or None means the
    datadir; relative values are relative to it).
    """
    outside = []
    for name in INNODB_PATH_VARIABLES:
        value = innodb_paths.get(name)
        if not value or value in ('.', './'):
            continue
        path = value if os.path.isabs(value) else os.path.join(datadir, value)
        if not is_inside(path, datadir):
            outside.append('%s=%s' % (name, value))
    if outside:
        return ('InnoDB files are configured outside the datadir (%s): the copy holds them '
                'in its own tree, so swapping it in would leave the server reading the old '
                'ones; move them into the datadir (unset these options) or restore by hand '
                'with mariadb-backup --move-back' % ', '.join(outside))
    return None


def external_log_sets(datadir, log_paths):
    """Binlog and relay-log files configured outside the datadir, as a list of
    (directory, basename prefix, index file) to move aside; log_paths holds the server's
    log_bin_basename, log_bin_index, relay_log_basename, relay_log_index (None when off)."""
    sets = []
    for base_var, index_var in (('log_bin_basename', 'log_bin_index'),
                                ('relay_log_basename', 'relay_log_index')):
        base, index = log_paths.get(base_var), log_paths.get(index_var)
        if not base:
            continue
        base = base if os.path.isabs(base) else os.path.join(datadir, base)
        if index and not os.path.isabs(index):
            index = os.path.join(datadir, index)
        if is_inside(base, datadir) and (not index or is_inside(index, datadir)):
            continue
        sets.append((os.path.dirname(normalize(base)), os.path.basename(base),
                     normalize(index) if index else None))
    return sets


def server_dirs(datadir, log_paths):
    """The folders the server writes to: its datadir and those of its binlogs and relay
    logs (log_paths as in external_log_sets), each once, datadir first."""
    dirs = [datadir]
    for var in ('log_bin_basename', 'relay_log_basename'):
        path = log_paths.get(var)
        if path:
            path = os.path.dirname(path if os.path.isabs(path) else os.path.join(datadir, path))
            if normalize(path) not in dirs:
                dirs.append(normalize(path))
    return dirs


def external_log_files(directory_entries, prefix, index_path, directory):
    """Names in directory that belong to a log set: <prefix>.<6 digits> files, the index,
    and <prefix>.state (the binlog's GTID state file)."""
    names = []
    for name in directory_entries:
        rest = name[len(prefix):] if name.startswith(prefix + '.') else None
        if rest is not None and (rest[1:].isdigit() or rest[1:] == 'state'):
            names.append(name)
        elif index_path and os.path.join(directory, name) == index_path:
            names.append(name)
    return sorted(set(names))


def parse_option_lines(lines):
    """[(name, value)] from `my_print_defaults --mysqld` output, in order: '--log_bin=x' ->
    ('log-bin', 'x'), a bare '--log-bin' -> ('log-bin', None). Names use '-' (the server
    takes '_' and '-' alike); a 'loose-' prefix is dropped; 'skip-X' and 'disable-X' stay as
    they are (server_paths reads them)."""
    options = []
    for line in lines:
        line = line.strip()
        if not line.startswith('--'):
            continue
        name, eq, value = line[2:].partition('=')
        name = name.replace('_', '-').lower()
        if name.startswith('loose-'):
            name = name[len('loose-'):]
        options.append((name, value if eq else None))
    return options


def _strip_ext(name):
    """The server drops a log name's extension (mysql-bin.log -> mysql-bin)."""
    head, tail = os.path.split(name)
    return os.path.join(head, tail.rsplit('.', 1)[0]) if '.' in tail[1:] else name


def _in_datadir(datadir, path):
    return path if os.path.isabs(path) else os.path.join(datadir, path)


def server_paths(options, hostname, default_datadir=DEFAULT_DATADIR):
    """The paths a server started with these options uses, named and shaped as its variables
    (SERVER_PATH_VARIABLES): for a server that does not run, whose variables cannot be read.

    options: parse_option_lines() of `my_print_defaults --mysqld`, in order (a later option
    wins). What MariaDB 10.11 does, measured in the lab (docs/DATADIR_SWAP.md): log names
    lose their extension and are relative to the datadir; an index takes '.index' as its
    extension; a name not given comes from the pid file's name (pid /run/mysqld/mysqld.pid,
    bare log-bin -> <datadir>/mysqld-bin); log-basename=X sets X-bin, X-bin.index,
    X-relay-bin, X-relay-bin.index and X.pid at the point where it appears. innodb_* are
    returned as given (None when not set), as external_paths_problem takes them.
    """
    state = dict(datadir=None, pid=None, log_error=None, log_bin=False, bin=None,
                 bin_index=None, relay=None, relay_index=None)
    innodb = dict((name, None) for name in INNODB_PATH_VARIABLES)
    for name, value in options:
        if name in ('skip-log-bin', 'disable-log-bin'):
            state['log_bin'] = False
        elif name in ('skip-log-error', 'disable-log-error'):
            state['log_error'] = None
        elif name == 'log-bin':
            state['log_bin'], state['bin'] = True, value or None
        elif name == 'log-basename' and value:
            state.update(bin=value + '-bin', bin_index=value + '-bin.index',
                         relay=value + '-relay-bin', relay_index=value + '-relay-bin.index',
                         pid=value + '.pid')
        elif name == 'log-error':
            state['log_error'] = value or ''
        elif name in ('datadir', 'pid-file', 'log-bin-index', 'relay-log', 'relay-log-index'):
            key = {'pid-file': 'pid', 'log-bin-index': 'bin_index', 'relay-log': 'relay',
                   'relay-log-index': 'relay_index'}.get(name, name)
            state[key] = value or None
        elif name.replace('-', '_') in innodb:
            innodb[name.replace('-', '_')] = value
    datadir = os.path.normpath(os.path.join('/', state['datadir'] or default_datadir))
    pid_file = os.path.normpath(_in_datadir(datadir, state['pid'] or hostname + '.pid'))
    stem = os.path.splitext(os.path.basename(pid_file))[0]

    def log_set(name, index, suffix):
        base = _in_datadir(datadir, _strip_ext(name or stem + suffix))
        index = _in_datadir(datadir, _strip_ext(index) + '.index') if index else base + '.index'
        return os.path.normpath(base), os.path.normpath(index)

    paths = dict(datadir=datadir, pid_file=pid_file, log_bin_basename=None, log_bin_index=None)
    if state['log_bin']:
        paths['log_bin_basename'], paths['log_bin_index'] = log_set(
            state['bin'], state['bin_index'], '-bin')
    paths['relay_log_basename'], paths['relay_log_index'] = log_set(
        state['relay'], state['relay_index'], '-relay-bin')
    error = state['log_error']
    paths['log_error'] = None if error is None else os.path.normpath(
        _in_datadir(datadir, error or hostname + '.err'))
    paths.update(innodb)
    return paths


def drop_in_text(instance=None):
    """The option file that makes the new server start with replication held: its group is
    [mariadbd], or for an instance of a template unit (mariadbd --defaults-group-suffix=.NAME)
    [mariadbd.NAME], which the host's other servers do not read."""
    # event_scheduler OFF, not DISABLED: the copy's events run at once otherwise (they come
    # ENABLED), and DISABLED could not be turned back on without another restart.
    return ('# Written by reseed.mariadb.datadir_swap: the server starts after a datadir swap\n'
            '# with replication held, read-only and its event scheduler off, until the\n'
            '# copy\'s events are disabled and replication is configured.\n'
            '# The role replica_rebuild removes this file once replication runs.\n'
            '[mariadbd%s]\n'
            'skip_slave_start\n'
            'read_only = ON\n'
            'event_scheduler = OFF\n' % ('.' + instance if instance else ''))


def strip_other_access(mode, is_dir):
    """Modes for the datadir's tree: directories 0700 (the server's user alone reaches its
    data), files keep their user and group bits and lose every bit for others."""
    if is_dir:
        return 0o700
    return mode & 0o770
