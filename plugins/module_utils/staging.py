# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staging directory on the replica: what it holds, its lock, its free space, its seal.

A staging directory is only ever made new: mbstream -x into a directory that is not empty
prints "File exists" and still exits 0 (MARIABACKUP.md). So the receiver extracts only into
a directory it has just made, marks it while receiving, and seals it (the RECEIVED_MARKER
that backup_prepare requires) only when the whole stream arrived, mariadb-backup said it
ended well (the END frame), and the copy's last files are there.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import shutil

from ansible_collections.reseed.mariadb.plugins.module_utils import backup_metadata as bm
from ansible_collections.reseed.mariadb.plugins.module_utils.service import server_processes

RECEIVING_MARKER = 'reseed_receiving'
MARKERS = (bm.RECEIVED_MARKER, RECEIVING_MARKER, 'reseed_extracted')  # the last: before 0.2
LOCK_DIR = '/run/lock'
SPACE_FACTOR = 1.1
SPACE_MARGIN = 256 * 1000000


class Busy(Exception):
    """Another stream into the same staging directory runs."""


def path_problem(staging):
    parts = [p for p in staging.split('/') if p]
    if not staging.startswith('/') or len(parts) < 2 or '..' in parts:
        return 'staging_dir must be an absolute path at least two levels deep, got %r' % staging
    return None


def state(staging, datadirs=None):
    """absent, empty, reseed (a staging directory of ours), datadir (holds a running
    server's datadir), or foreign (anything else: never touched). A staging directory
    inside a datadir is fine: on a datadir that is its own mount point, that is where it
    goes (MariaDB ignores a '#sql' directory)."""
    real = os.path.realpath(staging)
    if datadirs is None:
        datadirs = [cwd for pid, cwd in server_processes() if cwd]
    for datadir in datadirs:
        if datadir == real or datadir.startswith(real.rstrip('/') + '/'):
            return 'datadir'
    if not os.path.lexists(staging):
        return 'absent'
    if not os.path.isdir(staging) or os.path.islink(staging):
        return 'foreign'
    if any(os.path.exists(os.path.join(staging, m)) for m in MARKERS):
        return 'reseed'
    return 'foreign' if os.listdir(staging) else 'empty'


def problem_of_state(current):
    if current == 'datadir':
        return 'the staging directory holds (or is inside) the datadir of a running server'
    if current == 'foreign':
        return ('the staging directory exists and is not a reseed staging directory (nor '
                'empty): choose another or empty it')
    return None


def lock_path(staging):
    # Never beside or in the datadir (on a mount point the staging is inside it).
    return os.path.join(LOCK_DIR, 'reseed%s.lock' % os.path.realpath(staging).replace('/', '_'))


def take_lock(staging):
    """An open file holding the staging directory's lock; Busy when another stream has it."""
    path = lock_path(staging)
    if not os.path.isdir(LOCK_DIR):
        os.makedirs(LOCK_DIR)
    f = open(path, 'a')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError) as e:
        f.close()
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise Busy('another stream into %s is still running (it holds %s): let it end, '
                       'or stop it, then run again' % (staging, path))
        raise
    return f


def is_locked(staging):
    try:
        take_lock(staging).close()
    except Busy:
        return True
    return False


def du(path):
    total = 0
    for top, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total


def free_bytes(staging, current):
    """Bytes free where the copy goes, counting what removing an old copy frees."""
    existing = staging
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    st = os.statvfs(existing)
    return st.f_bavail * st.f_frsize + (du(staging) if current == 'reseed' else 0)


def space_problem(free, needed):
    if needed and free < needed * SPACE_FACTOR + SPACE_MARGIN:
        return ('%.1f GB free for the copy, %.1f GB needed (the data plus %d%% and %d MB): '
                'free space on the replica\'s datadir volume' % (
                    free / 1e9, (needed * SPACE_FACTOR + SPACE_MARGIN) / 1e9,
                    round(SPACE_FACTOR * 100 - 100), SPACE_MARGIN // 1000000))
    return None


def make_new(staging, current):
    """Remove an old reseed (or empty) staging directory and make it anew, private, marked
    as receiving."""
    if current in ('reseed', 'empty'):
        shutil.rmtree(staging)
    old = os.umask(0o077)
    try:
        os.makedirs(staging)
        open(os.path.join(staging, RECEIVING_MARKER), 'w').close()
    finally:
        os.umask(old)


def seal(staging):
    """Mark a whole copy as received (what backup_prepare requires); a list of problems
    instead when it is not whole."""
    missing = []
    if bm.find(staging, 'checkpoints') is None:
        missing.append('no xtrabackup_checkpoints')
    if bm.find(staging, 'info') is None and bm.find(staging, 'info.qp') is None:
        missing.append('no xtrabackup_info (streamed last: the stream did not finish)')
    if missing:
        return missing
    with open(os.path.join(staging, bm.RECEIVED_MARKER), 'w') as f:
        f.write('mariadb-backup completed OK!\n')
    os.remove(os.path.join(staging, RECEIVING_MARKER))
    return []
