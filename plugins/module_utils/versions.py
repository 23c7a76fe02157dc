# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB and mariadb-backup versions, and which combinations a rebuild can take.

Measured (docs/VERSIONS.md): a 10.11 copy is prepared by 11.8's mariadb-backup and started
by an 11.8 server, which upgrades it in place; an 11.8 copy is refused by 10.11's
mariadb-backup ("cannot open ./xtrabackup_checkpoints", after it had renamed files in the
copy), and a 10.11 server "starts" it with a corrupted change buffer: MariaDB does not
support moving data to an older series. So the replica may be of the source's series or a
newer one, never an older one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

VERSION = re.compile(r'(\d+)\.(\d+)\.(\d+)-MariaDB')


def version_of(module, argv):
    """'10.11.19-MariaDB' from a program's --version (stdout or stderr), or None."""
    rc, out, err = module.run_command(argv)
    found = VERSION.search(out + err)
    return found.group(0) if found else None


def triple(version):
    return tuple(int(x) for x in re.findall(r'\d+', version)[:3])


def backup_problem(backup_version, server_version):
    """On the source: mariadb-backup must be of the server's major series and at least as
    new."""
    if not backup_version or not server_version:
        return None
    b, s = triple(backup_version), triple(server_version)
    if b[:2] != s[:2] or b < s:
        return ('mariadb-backup %s cannot back up MariaDB %s: install mariadb-backup of the '
                'server\'s version' % (backup_version, server_version))
    return None


def replica_problem(source, replica):
    """On the replica, before anything changes: source and replica are dicts of
    mariabackup_version and server_version (None when unknown). The replica must be of the
    source's series or newer, its mariadb-backup too (it prepares the copy)."""
    problems = []
    src_server, dst_server = source.get('server_version'), replica.get('server_version')
    if src_server and dst_server and triple(dst_server)[:2] < triple(src_server)[:2]:
        problems.append(
            'MariaDB %s here cannot take the data of MariaDB %s on the source (an older '
            'series: MariaDB does not support moving data back): upgrade this replica to %s '
            'first, or copy from a source of its series' % (
                dst_server, src_server, '.'.join(str(x) for x in triple(src_server)[:2])))
    src_backup, dst_backup = source.get('mariabackup_version'), replica.get('mariabackup_version')
    if src_backup and dst_backup and triple(dst_backup)[:2] < triple(src_backup)[:2]:
        problems.append(
            'mariadb-backup %s here cannot prepare a copy made by mariadb-backup %s on the '
            'source: install mariadb-backup of the %s series or newer here' % (
                dst_backup, src_backup, '.'.join(str(x) for x in triple(src_backup)[:2])))
    return '; '.join(problems) or None


# SET GLOBAL innodb_log_file_size: dynamic since 10.9 (MDEV-27812), crash safe since
# MDEV-34750 (10.11.10, 11.4.4) and with its error handling fixed by MDEV-35810 (10.11.11,
# 11.4.5). The series between are no longer maintained.
ONLINE_RESIZE = ((10, 11, 11), (11, 4, 5), (11, 8, 0))


def online_resize_problem(server_version):
    """Why this server's redo log must not be resized online (None: it may be)."""
    if not server_version:
        return 'the server\'s version is unknown'
    v = triple(server_version)
    for first in ONLINE_RESIZE:
        if v[:2] == first[:2] and v >= first or v[:2] > (11, 8):
            return None
    return ('MariaDB %s does not resize its redo log online safely (10.11.11, 11.4.5 or 11.8 '
            'and later do): raise innodb_log_file_size in its option file and restart it '
            'instead' % server_version)
