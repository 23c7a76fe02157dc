# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open files for mariadb-backup: it opens every InnoDB tablespace at once, so a server of
4,000 tables under a soft RLIMIT_NOFILE of 1024 (a server started by hand or by an init
script, an ssh session that inherited it) fails with "Too many open files" (MDEV-19060).

The cure: raise this process's own soft limit up to its hard limit before mariadb-backup
starts (the child inherits it) and say so to mariadb-backup too (--open-files-limit). Where
the hard limit itself is below what the tablespaces need, refuse before anything starts:
only root, or the session's creator, can raise a hard limit.

Pure logic (counting names, the plan, the words) plus the two calls that read and set the
limit, kept apart so that the plan is tested without touching the process."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

# Files mariadb-backup has open besides the tablespaces: ibdata, undo tablespaces, the redo
# log, its stdin/stdout/stderr and the server connection, the files of the non-InnoDB copy,
# its threads' own. Measured on 10.11.19 with 4,007 tablespaces: under a soft limit of 1024
# it failed with "Too many open files" (it keeps what it opened open); with the limit
# raised, 2,633 descriptors were seen at once (sampled every 0.2 s: a lower bound). The
# margin covers its other files, and tables added between this check and the copy.
MARGIN = 200
# A hard limit reported as unlimited: the kernel's own ceiling (fs.nr_open's default) is the
# most a soft limit can be set to.
CEILING = 1048576
# A file per InnoDB tablespace: .ibd in the datadir, .isl for a table whose .ibd is elsewhere
# (DATA DIRECTORY). The system and undo tablespaces are in MARGIN.
TABLESPACE = re.compile(r'\.(ibd|isl)$')
# Left out of the walk: copies the collection itself keeps beside a datadir.
NOT_WALKED = re.compile(r'^#sql-reseed-')


def is_tablespace(name):
    return bool(TABLESPACE.search(name))


def count_tablespaces(datadir):
    """The tablespace files under datadir (0 when it cannot be read)."""
    count = 0
    for top, dirs, files in os.walk(datadir):
        dirs[:] = [d for d in dirs if not NOT_WALKED.match(d)]
        count += sum(1 for name in files if is_tablespace(name))
    return count


def needed(tablespaces, margin=MARGIN):
    """Descriptors mariadb-backup needs for this many tablespaces."""
    return int(tablespaces) + margin


def plan(soft, hard, tablespaces, infinity=-1, margin=MARGIN):
    """What to do with RLIMIT_NOFILE: a dict with the limits found (soft, hard; an unlimited
    one as CEILING), the need (tablespaces, needed), the soft limit to run with (limit: as
    far as the hard limit allows, never lower than it is), whether that raises it (raised)
    and enough (False: refuse, the hard limit is below the need)."""
    soft = CEILING if soft == infinity else soft
    hard = CEILING if hard == infinity else hard
    limit = max(soft, hard)
    want = needed(tablespaces, margin)
    return dict(tablespaces=int(tablespaces), needed=want, soft=soft, hard=hard,
                limit=limit, raised=limit > soft, enough=limit >= want)


def refusal(host, step, p, login=None):
    """One line for a plan that is not enough: the host, both numbers, the remedy."""
    return ('%s: %s: the hard limit of open files here is %d, and mariadb-backup needs about '
            '%d (%d tablespaces + %d for its other files): raise it to at least %d for the '
            'server (LimitNOFILE= in its systemd unit, e.g. systemctl edit mariadb, then '
            'restart it) and for the login that runs Ansible (%s hard nofile in '
            '/etc/security/limits.conf, a new session), and check with ulimit -Hn; nothing '
            'was started' % (host, step, p['hard'], p['needed'], p['tablespaces'],
                             p['needed'] - p['tablespaces'], p['needed'],
                             "'%s'" % login if login else 'its'))


def exhausted(stderr):
    """Whether mariadb-backup's error output says it ran out of descriptors."""
    text = stderr or ''
    return 'Too many open files' in text or 'errno 24' in text.lower() or \
        'error: 24' in text.lower()


def hint(p):
    """Words to add to a mariadb-backup failure that ran out of descriptors."""
    return (' (out of open files: it ran with a limit of %s for %d tablespaces; raise the hard '
            'limit, LimitNOFILE= in the server\'s unit and hard nofile in '
            '/etc/security/limits.conf for the login that runs Ansible, check with ulimit -Hn)'
            % (p.get('limit'), p.get('tablespaces', 0)))


def option(p, extra_args=()):
    """mariadb-backup's --open-files-limit for the plan; none when extra_args set their own."""
    if any(a.startswith('--open-files-limit') for a in extra_args):
        return []
    return ['--open-files-limit=%d' % p['limit']]


def apply(p):
    """Set this process's soft limit to the plan's (children inherit it). Returns the
    plan with what was set."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if p['raised'] and soft != resource.RLIM_INFINITY and soft < p['limit']:
        resource.setrlimit(resource.RLIMIT_NOFILE, (p['limit'], hard))
    return p


def login():
    """The login that runs Ansible here: sudo's caller under become, else this process's."""
    import pwd
    try:
        return os.environ.get('SUDO_USER') or pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def current(tablespaces):
    """The plan for this process's own limits."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return plan(soft, hard, tablespaces, infinity=resource.RLIM_INFINITY)
