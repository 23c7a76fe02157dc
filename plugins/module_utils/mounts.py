# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mounts, as the kernel lists them in /proc/self/mountinfo: is a path a mount point, which
mount holds it, of which filesystem, and can a rename go from one path to another.

The one place the collection answers these (replication_info returns the datadir's facts,
the role and datadir_swap use them). Why mountinfo and not st_dev: a bind mount of a
directory of the same filesystem (Docker volumes, many hand-made layouts) has the st_dev of
its parent, yet it is a mount point: it cannot be renamed (EBUSY), and a rename from
outside it into it fails with EXDEV, although both sides are one filesystem. rename(2)
works only within one mount, so "same mount" is the question, not "same device".

parse() and mount_facts()/same_mount() are pure (unit tested on sample texts); read() and
path_facts()/paths_on_same_mount() are the thin readers a module calls.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

MOUNTINFO = '/proc/self/mountinfo'
# The fields of a mountinfo line (proc(5)): mount id, parent id, major:minor, root (the
# directory of the filesystem seen there: not '/' for a bind of a subdirectory), mount
# point, options, optional fields up to a lone '-', then fstype, source, super options.
_ESCAPE = re.compile(r'\\([0-7]{3})')


class MountinfoError(ValueError):
    """A mountinfo text that cannot be read as one."""


def unescape(field):
    """The kernel writes space, tab, newline and backslash in names as octal escapes
    (\\040, \\011, \\012, \\134)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse(text):
    """[dict(mount_id, parent_id, dev, root, target, fstype, source)] from a mountinfo text,
    in its order (the order the mounts were made)."""
    mounts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            sep = fields.index('-', 6)
            mounts.append(dict(
                mount_id=int(fields[0]), parent_id=int(fields[1]), dev=fields[2],
                root=unescape(fields[3]), target=unescape(fields[4]),
                fstype=fields[sep + 1], source=unescape(fields[sep + 2])))
        except (ValueError, IndexError):
            raise MountinfoError('line %d of mountinfo is not a mount: %r' % (number, line))
    return mounts


def _holds(target, path):
    return target == '/' or path == target or path.startswith(target.rstrip('/') + '/')


def holding(mounts, path):
    """The mount that holds the absolute, symlink-free path: the one of the longest target
    that is path or a parent of it. Of mounts stacked on one target, the top one (the one
    no other of them is mounted on), which is the one that is seen. None when no mount
    holds it (a mountinfo without '/', as in a process chrooted below every mount)."""
    path = os.path.normpath(path)
    best = [m for m in mounts if _holds(m['target'], path)]
    if not best:
        return None
    longest = max(len(m['target']) for m in best)
    stacked = [m for m in best if len(m['target']) == longest]
    parents = set(m['parent_id'] for m in stacked)
    on_top = [m for m in stacked if m['mount_id'] not in parents]
    return (on_top or stacked)[-1]


def mount_facts(mounts, path):
    """What the collection needs to know of path's mount, as data (returned by
    replication_info as datadir_mount):
    mount_point (path is the target of a mount: a bind mount of a directory counts),
    target, fstype, source, root (the directory of the filesystem mounted there; not '/' for
    a bind of a subdirectory), mount_id and dev (major:minor of the filesystem). path must be
    absolute and free of symlinks (the reader resolves them)."""
    path = os.path.normpath(path)
    m = holding(mounts, path)
    if m is None:
        return dict(path=path, mount_point=False, target=None, fstype=None, source=None,
                    root=None, mount_id=None, dev=None)
    return dict(path=path, mount_point=m['target'] == path, target=m['target'],
                fstype=m['fstype'], source=m['source'], root=m['root'],
                mount_id=m['mount_id'], dev=m['dev'])


def same_mount(mounts, path_a, path_b):
    """Whether both paths are held by one mount: the only case a rename between them can
    work (EXDEV otherwise, even when both mounts are of one filesystem)."""
    a, b = holding(mounts, path_a), holding(mounts, path_b)
    return a is not None and b is not None and a['mount_id'] == b['mount_id']


# ---- readers: the only I/O of this file -------------------------------------------------
def read(path=MOUNTINFO):
    """parse() of this process's mount table (the mount namespace the module runs in)."""
    with open(path) as f:
        return parse(f.read())


def path_facts(path, mounts=None):
    """mount_facts() for path as it is on this host (symlinks resolved)."""
    return mount_facts(read() if mounts is None else mounts, os.path.realpath(path))


def paths_on_same_mount(path_a, path_b, mounts=None):
    """same_mount() for two paths as they are on this host (symlinks resolved)."""
    return same_mount(read() if mounts is None else mounts, os.path.realpath(path_a),
                      os.path.realpath(path_b))
