#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: backup_prepare
short_description: Check a streamed mariadb-backup copy is whole, prepare it, return its coordinates
version_added: 0.1.0
description:
  - Runs on the host that received a copy (see M(reseed.mariadb.backup_stream)).
  - Refuses a copy that is not whole. C(mbstream -x) can exit 0 on a cut stream, so a copy
    counts as whole only with its checkpoints file, its C(xtrabackup_info) (streamed last)
    and the C(reseed_received) record that M(reseed.mariadb.backup_stream) writes once the
    extraction succeeded and mariadb-backup said C(completed OK!).
  - Prepares it (C(mariadb-backup --prepare), applying the redo log); a copy already
    prepared is left as it is (C(changed=false)).
  - Returns the coordinates the backup recorded, from C(mariadb_backup_binlog_info) or
    C(xtrabackup_binlog_info), whichever the version wrote; and, for a copy taken from a
    replica with C(--slave-info), the primary's coordinates.
  - A legacy copy made with C(--compress) (C(.qp) files) is decompressed first when
    C(qpress) is installed; without it the module fails saying so.
options:
  path:
    description: The directory holding the copy.
    type: path
    required: true
  use_memory:
    description: Memory for the prepare (C(--use-memory)), e.g. C(1G). More is faster on large redo logs.
    type: str
    default: 1G
  require_receive_record:
    description:
      - Require the record our receiving side writes after a whole extraction. Set C(false)
        only for a copy made by hand, which then is checked by its metadata files alone.
    type: bool
    default: true
  mariabackup:
    description: The mariadb-backup program; found on the path (C(mariadb-backup), then C(mariabackup)) when omitted.
    type: path
notes:
  - Supports check mode (the copy is checked and its coordinates read; nothing is prepared).
seealso:
  - module: reseed.mariadb.backup_stream
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Prepare the copy and read its coordinates
  reseed.mariadb.backup_prepare:
    path: /var/lib/mysql.reseed-staging
    use_memory: 2G
  register: copy

- name: Show where replication will start
  ansible.builtin.debug:
    msg: "{{ copy.gtid }} ({{ copy.binlog_file }}:{{ copy.binlog_pos }})"
'''

RETURN = r'''
binlog_file:
  description: The source's binlog file at the backup's consistent point.
  returned: when the source had its binlog on
  type: str
  sample: mysql-bin.000003
binlog_pos:
  description: The position in that file.
  returned: when the source had its binlog on
  type: int
  sample: 817
gtid:
  description: The source's C(gtid_current_pos) at that point; several domains are comma separated; empty without GTIDs.
  returned: when the source had its binlog on
  type: str
  sample: 0-1-100,1-2-50
slave_info:
  description: The primary's coordinates recorded by a backup taken from a replica (C(--slave-info)).
  returned: when the copy has them
  type: dict
  sample: {gtid_slave_pos: 0-1-100, master_log_file: null, master_log_pos: null, use_gtid: slave_pos}
prepared:
  description: Whether the copy is prepared now.
  returned: success
  type: bool
  sample: true
backup_type:
  description: The checkpoints' backup_type after the run (C(log-applied) once prepared).
  returned: success
  type: str
  sample: log-applied
seconds:
  description: Time the prepare took.
  returned: success
  type: float
  sample: 4.2
open_files:
  description:
    - The open files the prepare needs and gets. mariadb-backup opens the copy's tablespaces,
      so the module raises its own soft C(RLIMIT_NOFILE) to the hard limit before it starts
      mariadb-backup (which inherits it) and passes C(--open-files-limit) with that number.
    - C(tablespaces) the C(.ibd) and C(.isl) files of the copy; C(needed) those plus a
      margin for its other files; C(soft) and C(hard) the limits the module found (an
      unlimited one as 1048576); C(limit) the soft limit mariadb-backup runs with; C(raised)
      whether that is more than C(soft); C(enough) false when the hard limit is below
      C(needed), and the module then fails before the prepare starts.
  returned: once the copy was found whole
  type: dict
  sample: {tablespaces: 4012, needed: 4212, soft: 1024, hard: 524288, limit: 524288,
           raised: true, enough: true}
mariabackup_version:
  description: The version of the mariadb-backup that prepared the copy.
  returned: success
  type: str
  sample: 10.11.19-MariaDB
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import os
import re
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import backup_metadata as bm
from ansible_collections.reseed.mariadb.plugins.module_utils import open_files


def find_program(module, given, names):
    if given:
        return given
    for name in names:
        path = module.get_bin_path(name)
        if path:
            return path
    return None


def has_qp_files(path):
    for top, dirs, files in os.walk(path):
        if any(f.endswith('.qp') for f in files):
            return True
    return False


def stderr_tail(text, lines=4):
    return ' | '.join(line.strip() for line in (text or '').strip().splitlines()[-lines:])


def coordinates(path):
    out = {}
    binlog = bm.read(path, 'binlog_info', bm.parse_binlog_info, required=False)
    if binlog:
        out.update(binlog)
    slave = bm.read(path, 'slave_info', bm.parse_slave_info, required=False)
    if slave:
        out['slave_info'] = slave
    return out


def read_coordinates(module, path, fail):
    try:
        return coordinates(path)
    except (bm.MetadataError, IOError, OSError) as e:
        module.fail_json(msg=fail + str(e))


def main():
    module = AnsibleModule(argument_spec=dict(
        path=dict(type='path', required=True),
        use_memory=dict(type='str', default='1G'),
        require_receive_record=dict(type='bool', default=True),
        mariabackup=dict(type='path'),
    ), supports_check_mode=True)
    path = module.params['path']
    fail = 'backup_prepare on %s: ' % path

    problems = bm.completeness_problems(path)
    if not module.params['require_receive_record']:
        problems = [p for p in problems if bm.RECEIVED_MARKER not in p]
    if problems:
        module.fail_json(msg=fail + 'not a whole copy (%s): stream it again into an empty '
                         'directory' % '; '.join(problems))
    try:
        checkpoints = bm.read(path, 'checkpoints', bm.parse_checkpoints)
    except (bm.MetadataError, IOError, OSError) as e:
        module.fail_json(msg=fail + str(e))
    # A legacy --compress copy: every file but the checkpoints is .qp, the coordinates too.
    legacy = has_qp_files(path)
    if legacy and not module.get_bin_path('qpress'):
        module.fail_json(msg=fail + 'the copy holds .qp files (made with the deprecated '
                         '--compress) and qpress is not installed, which --decompress '
                         'needs: install qpress, or stream again without --compress '
                         '(backup_stream compresses in the pipe)')
    result = {} if legacy else read_coordinates(module, path, fail)

    mariabackup = find_program(module, module.params['mariabackup'],
                               ('mariadb-backup', 'mariabackup'))
    if not mariabackup:
        module.fail_json(msg=fail + 'mariadb-backup is not installed (Debian and RHEL: '
                         'package mariadb-backup, of the server\'s version)')
    rc, out, err = module.run_command([mariabackup, '--version'])
    version = re.search(r'(\d+\.\d+\.\d+-MariaDB)', out + err)
    result['mariabackup_version'] = version.group(1) if version else (out + err).strip()

    # The prepare opens the copy's tablespaces too: the same limit as the backup's, raised
    # before mariadb-backup starts (it inherits it), or a refusal while nothing has started.
    plan = result['open_files'] = open_files.current(open_files.count_tablespaces(path))
    if not plan['enough']:
        module.fail_json(msg=fail + open_files.refusal(socket.gethostname(), 'prepare', plan,
                                                       open_files.login()), **result)

    if bm.is_prepared(checkpoints):
        module.exit_json(changed=False, prepared=True, backup_type=checkpoints['backup_type'],
                         seconds=0.0, msg='already prepared', **result)
    if module.check_mode:
        module.exit_json(changed=True, prepared=False, backup_type=checkpoints['backup_type'],
                         seconds=0.0, msg='would prepare the copy', **result)

    try:
        open_files.apply(plan)
    except (ValueError, OSError) as e:
        module.fail_json(msg=fail + 'cannot raise the soft limit of open files from %d to %d: '
                         '%s' % (plan['soft'], plan['limit'], e), **result)
    start = time.time()
    if legacy:
        rc, out, err = module.run_command([mariabackup, '--decompress', '--remove-original',
                                           '--target-dir=' + path])
        if rc != 0:
            module.fail_json(msg=fail + 'mariadb-backup --decompress failed (exit code %d): %s'
                             % (rc, stderr_tail(err)))
        result.update(read_coordinates(module, path, fail))
    rc, out, err = module.run_command([mariabackup, '--prepare', '--target-dir=' + path,
                                       '--use-memory=' + module.params['use_memory']]
                                      + open_files.option(plan))
    if rc != 0 or 'completed OK!' not in err:
        hint = ''
        if 'redo log' in err and ('before MariaDB' in err or 'not possible' in err):
            hint = ' (the copy\'s redo log format needs a mariadb-backup of the same major ' \
                   'series as the server that made it)'
        elif open_files.exhausted(err):
            hint = open_files.hint(plan)
        module.fail_json(msg=fail + 'mariadb-backup --prepare failed (exit code %d)%s: %s'
                         % (rc, hint, stderr_tail(err)))
    checkpoints = bm.read(path, 'checkpoints', bm.parse_checkpoints)
    if not bm.is_prepared(checkpoints):
        module.fail_json(msg=fail + 'mariadb-backup --prepare said OK but the checkpoints '
                         'say %s' % checkpoints.get('backup_type'))
    seconds = round(time.time() - start, 2)
    module.exit_json(changed=True, prepared=True, backup_type=checkpoints['backup_type'],
                     seconds=seconds, msg='prepared in %.1f s' % seconds, **result)


if __name__ == '__main__':
    main()
