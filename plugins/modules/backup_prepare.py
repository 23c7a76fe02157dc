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
  - It writes into the copy only (the staging directory, not yet a datadir); the server's
    live datadir is never touched (M(reseed.mariadb.datadir_swap) swaps the copy in).
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
failure:
  description:
    - "What failed, in fields (C(msg) is C(backup_prepare on <path>: <message>)); C(step),
      C(side) (C(source), C(replica) or C(link): always C(replica) here), C(code),
      C(changed_nothing) (false once mariadb-backup wrote into the copy; the live datadir is
      never touched), C(message). Codes, by step, below."
    - C(check) C(not_whole_copy), C(checkpoints) (unreadable), C(qp_files) (no qpress),
      C(metadata) (coordinates unreadable), C(not_installed), C(open_files) (hard limit too low).
    - C(prepare) C(rlimit) (cannot raise the soft limit), C(redo_format) (another major
      series), C(open_files) (too many open files), C(prepare_failed).
    - C(decompress) C(decompress_failed), C(metadata). C(verify) C(checkpoints), C(not_prepared).
  returned: on failure
  type: dict
  sample: {step: check, side: replica, code: not_whole_copy, changed_nothing: true,
           message: "not a whole copy (no xtrabackup_info): stream it again into an empty directory"}
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
from ansible_collections.reseed.mariadb.plugins.module_utils import failure
from ansible_collections.reseed.mariadb.plugins.module_utils import open_files
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure

# It runs on the replica, on the copy: every failure is the replica's.
SIDE = 'replica'


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


def checkpoints_of(path):
    return bm.read(path, 'checkpoints', bm.parse_checkpoints)


def read_metadata(read, path, step, code, changed_nothing=True):
    """read(path), a metadata file of the copy; a Failure when it is missing or unreadable."""
    try:
        return read(path)
    except (bm.MetadataError, IOError, OSError) as e:
        raise Failure(step, SIDE, code, str(e), changed_nothing)


def prepare_failure(rc, err, plan):
    """The prepare's failure: the redo log of another major series, too few open files, or
    another error (the copy was written into: not as it was)."""
    code, hint = 'prepare_failed', ''
    if 'redo log' in err and ('before MariaDB' in err or 'not possible' in err):
        code, hint = 'redo_format', (' (the copy\'s redo log format needs a mariadb-backup of '
                                     'the same major series as the server that made it)')
    elif open_files.exhausted(err):
        code, hint = 'open_files', open_files.hint(plan)
    return Failure('prepare', SIDE, code, 'mariadb-backup --prepare failed (exit code %d)%s: %s'
                   % (rc, hint, stderr_tail(err)), changed_nothing=False)


def prepare(module, path, result):
    """Check, decompress, prepare and verify the copy. Fills result as it goes (coordinates,
    version, open files: a failure returns them too); returns what the run did."""
    problems = bm.completeness_problems(path)
    if not module.params['require_receive_record']:
        problems = [p for p in problems if bm.RECEIVED_MARKER not in p]
    if problems:
        raise Failure('check', SIDE, 'not_whole_copy', 'not a whole copy (%s): stream it again '
                      'into an empty directory' % '; '.join(problems))
    checkpoints = read_metadata(checkpoints_of, path, 'check', 'checkpoints')
    # A legacy --compress copy: every file but the checkpoints is .qp, the coordinates too.
    legacy = has_qp_files(path)
    if legacy and not module.get_bin_path('qpress'):
        raise Failure('check', SIDE, 'qp_files', 'the copy holds .qp files (made with the '
                      'deprecated --compress) and qpress is not installed, which --decompress '
                      'needs: install qpress, or stream again without --compress '
                      '(backup_stream compresses in the pipe)')
    if not legacy:
        result.update(read_metadata(coordinates, path, 'check', 'metadata'))

    mariabackup = find_program(module, module.params['mariabackup'],
                               ('mariadb-backup', 'mariabackup'))
    if not mariabackup:
        raise Failure('check', SIDE, 'not_installed', 'mariadb-backup is not installed (Debian '
                      'and RHEL: package mariadb-backup, of the server\'s version)')
    rc, out, err = module.run_command([mariabackup, '--version'])
    version = re.search(r'(\d+\.\d+\.\d+-MariaDB)', out + err)
    result['mariabackup_version'] = version.group(1) if version else (out + err).strip()

    # The prepare opens the copy's tablespaces too: the same limit as the backup's, raised
    # before mariadb-backup starts (it inherits it), or a refusal while nothing has started.
    plan = result['open_files'] = open_files.current(open_files.count_tablespaces(path))
    if not plan['enough']:
        raise Failure('check', SIDE, 'open_files', open_files.refusal(
            socket.gethostname(), 'prepare', plan, open_files.login()))

    done = dict(prepared=True, backup_type=checkpoints['backup_type'], seconds=0.0)
    if bm.is_prepared(checkpoints):
        return dict(done, changed=False, msg='already prepared')
    if module.check_mode:
        return dict(done, changed=True, prepared=False, msg='would prepare the copy')

    try:
        open_files.apply(plan)
    except (ValueError, OSError) as e:
        raise Failure('prepare', SIDE, 'rlimit', 'cannot raise the soft limit of open files '
                      'from %d to %d: %s' % (plan['soft'], plan['limit'], e))
    start = time.time()
    # From here on mariadb-backup writes into the copy: a failure leaves it changed.
    if legacy:
        rc, out, err = module.run_command([mariabackup, '--decompress', '--remove-original',
                                           '--target-dir=' + path])
        if rc != 0:
            raise Failure('decompress', SIDE, 'decompress_failed', 'mariadb-backup --decompress '
                          'failed (exit code %d): %s' % (rc, stderr_tail(err)), False)
        result.update(read_metadata(coordinates, path, 'decompress', 'metadata', False))
    rc, out, err = module.run_command([mariabackup, '--prepare', '--target-dir=' + path,
                                       '--use-memory=' + module.params['use_memory']]
                                      + open_files.option(plan))
    if rc != 0 or 'completed OK!' not in err:
        raise prepare_failure(rc, err, plan)
    checkpoints = read_metadata(checkpoints_of, path, 'verify', 'checkpoints', False)
    if not bm.is_prepared(checkpoints):
        raise Failure('verify', SIDE, 'not_prepared', 'mariadb-backup --prepare said OK but '
                      'the checkpoints say %s' % checkpoints.get('backup_type'), False)
    seconds = round(time.time() - start, 2)
    return dict(done, changed=True, backup_type=checkpoints['backup_type'], seconds=seconds,
                msg='prepared in %.1f s' % seconds)


def main():
    module = AnsibleModule(argument_spec=dict(
        path=dict(type='path', required=True),
        use_memory=dict(type='str', default='1G'),
        require_receive_record=dict(type='bool', default=True),
        mariabackup=dict(type='path'),
    ), supports_check_mode=True)
    path = module.params['path']
    result = {}
    try:
        result.update(prepare(module, path, result))
    except Failure as e:
        failure.fail(module, e, 'backup_prepare on %s' % path, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
