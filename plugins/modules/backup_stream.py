#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: backup_stream
short_description: Stream a hot mariadb-backup of this host straight into the replica's receiver
version_added: 0.1.0
description:
  - Runs on the source (the primary, or a healthy replica). Takes a hot physical backup with
    C(mariadb-backup --backup --stream=xbstream), compresses it in the pipe, and sends it to
    M(reseed.mariadb.backup_receive), which Ansible has started on the replica and which
    extracts it with C(mbstream -x). Nothing is written on the source; every byte crosses
    the wire once and is decompressed on arrival (no C(.qp) files).
  - The stream's own connection is the only thing that passes between the two hosts.
    C(transport=tls) (the default) connects over TLS, presenting this run's certificate
    I(tls_cert) and accepting only the replica's, I(peer_cert). C(tcp) sends in the clear,
    for trusted networks. C(ssh) goes through an ssh tunnel (C(ssh -W)) to the receiver
    listening on the replica's loopback; the account I(ssh_user) needs no privilege and no
    shell, only a login that may open that one tunnel.
  - Nothing changes on the replica until the source has connected and proved who it is
    (certificate, address, this run's I(token)) and the replica said the copy fits (free
    space). Only when every program here succeeded and mariadb-backup said C(completed
    OK!) does the source tell the receiver so (the receiver cannot see it), and only then
    does the receiver seal the copy; M(reseed.mariadb.backup_prepare) refuses a copy
    without that seal. When a program fails, the module names it, with its exit code and
    the last lines of its error output (passwords masked), and tells the receiver to stop.
  - A link that takes no bytes for I(stall_timeout) seconds fails the stream and names the
    hop; a keepalive goes every 10 seconds while mariadb-backup is quiet, so that a waiting
    backup is not taken for a cut link.
  - The backup account's login reaches mariadb-backup through a temporary option file
    (mode 0600, removed on every exit path), never through its command line. It holds the
    login options resolved as for the module's own connection to the server (the preflight's
    look at the processlist, the watch of the backup locks), the same way as in the
    collection's other modules. mariadb-backup reads that file alone (C(--defaults-file)),
    which includes (C(!include)) the server's option files (C(/etc/my.cnf), C(/etc/mysql/my.cnf),
    those that exist), then an existing I(config_file), and what the driver would take from
    that file is left to it; the login options come last, in the C([mariadb-backup]) group,
    so that they win over both (mariadb-backup takes its own groups over C([client]), and
    with C(--defaults-extra-file) it would read C(~/.my.cnf) after them).
  - Run from a playbook, the collection's action plugin of the same name runs the module in
    the background and prints a progress line every 10 seconds (bytes, percent of the
    estimated size, MB/s, ETA); an interrupted controller (Ctrl-C, a killed
    C(ansible-playbook)) stops the stream (see I(heartbeat_file)). Check mode, and a task
    with its own C(async), run the module as usual.
options:
  destination:
    description: The replica's address (or name), where its receiver listens.
    type: str
    required: true
  transport:
    description:
      - C(tls) connects over TLS with I(tls_cert), I(tls_key) and I(peer_cert); C(tcp) in
        the clear; C(ssh) through an ssh tunnel to the replica (I(ssh_user), I(ssh_key)).
    type: str
    choices: [tls, tcp, ssh]
    default: tls
  connect_timeout:
    description:
      - Seconds to keep trying to reach the receiver (it may not listen yet), and to wait for
        the connection to this host's server (the login options).
    type: int
    default: 30
  compression:
    description:
      - C(zstd) compresses at level I(compression_level) with all cores; C(none) sends the
        stream as it is.
      - C(auto) measures first how fast and how much C(zstd -1) with all cores compresses a
        sample of the largest data files (up to 64 MiB), and how fast the connection to the
        receiver carries bytes (32 MiB of the sample sent through it, the last 24 MiB timed
        on the replica, written nowhere), unless I(link_mbps) gives the link's speed. It
        compresses when min(0.7 x compression rate, link rate x ratio) beats the link rate
        by 10% (in the stream, zstd shares the source's cores with mariadb-backup and the
        transport, it ran at 0.6 to 0.7 x its rate alone on a 2-core host), and sends the
        bytes as they are otherwise. (C(zstd --adapt) was measured to raise its level on a
        busy 2-core source, taking CPU from the transport and mariadb-backup, 30 s instead
        of 11 s.)
    type: str
    choices: [auto, zstd, none]
    default: auto
  link_mbps:
    description:
      - The link's speed to the destination in Mbit/s, for C(compression=auto); C(0)
        measures it before the stream (not in check mode, where the choice is left open).
    type: int
    default: 0
  compression_level:
    description: zstd level for C(compression=zstd).
    type: int
    default: 1
  parallel:
    description: Copy threads of mariadb-backup.
    type: int
    default: 2
  throttle_mbps:
    description: Cap the read from mariadb-backup at this many MB/s (0 for no cap), to spare a busy source.
    type: int
    default: 0
  slave_info:
    description: The source is a replica; record its primary's coordinates (C(--slave-info)).
    type: bool
    default: false
  safe_slave_backup:
    description:
      - With I(slave_info), stop the source replica's SQL thread while the backup copies
        non-InnoDB tables (C(--safe-slave-backup)); it is started again afterwards.
    type: bool
    default: false
  extra_args:
    description: More mariadb-backup options, e.g. C(--tmpdir=/srv/tmp).
    type: list
    elements: str
    default: []
  ssh_user:
    description: With C(transport=ssh), the account on the replica (no privilege needed).
    type: str
    default: root
  ssh_port:
    description: With C(transport=ssh), the replica's sshd port.
    type: int
    default: 22
  ssh_key:
    description: With C(transport=ssh), the private key on this host; the ssh client's default when omitted.
    type: path
  ssh_options:
    description: With C(transport=ssh), more ssh client options, each C(-o) value as C(Name=value).
    type: list
    elements: str
    default: []
  progress_file:
    description: Where to write the progress (JSON, rewritten every second). A file in the temporary directory when omitted.
    type: path
  source_datadir:
    description: The source's datadir, to estimate the stream's size (percent and ETA in the progress, the replica's free space check).
    type: path
    default: /var/lib/mysql
  heartbeat_file:
    description:
      - A file whose modification time the controller refreshes while it waits for the
        stream (the collection's action plugin does this when it runs the module in the
        background to show progress). When the file is older than I(heartbeat_timeout)
        seconds, or gone, the controller is taken to be gone (interrupted, killed, its
        connection lost) and the stream is stopped, the copy left unsealed, instead of
        running on unattended.
      - Not set when the module runs in the foreground; no need to set it by hand.
    type: path
  heartbeat_timeout:
    description: Seconds without a refreshed I(heartbeat_file) after which the stream is stopped.
    type: int
    default: 120
  lock_wait_timeout:
    description:
      - Seconds the copy may wait for one of the source's backup locks (C(BACKUP STAGE
        START) behind another backup, C(BLOCK_DDL) behind DDL, C(BLOCK_COMMIT) behind
        C(FLUSH TABLES WITH READ LOCK)) before it is stopped, the copy left unsealed.
        Statements the wait blocks queue behind it on the source meanwhile (DDL, and at
        C(BLOCK_COMMIT) commits).
      - While it waits, the progress names the stage, for how long, and what it probably
        waits for (other backups, DDL, with how long each has run), read from the source's
        C(information_schema.PROCESSLIST) every 2 seconds (with PyMySQL and the login
        options; without them the wait is neither shown nor bounded, said in C(lock_watch)).
      - The same watch compares the server's redo position with the one mariadb-backup has
        read; when the log wraps ahead of the copy, the copy is stopped at once, naming
        C(innodb_log_file_size) (see C(redo_ahead_peak)).
    type: int
    default: 60
  redo_check:
    description:
      - Whether the source's redo log (C(innodb_log_file_size)) holds the redo the copy will
        need. mariadb-backup copies the redo the server writes while it copies, through the
        same stream; when it falls behind by more than the log holds, the log wraps ahead of
        it and the copy is lost (see I(lock_wait_timeout) for the watch that stops it then).
      - The redo rate is measured from I(redo_sample) to the preflight (or over 2 seconds when
        the copy's rate is known and nothing else tells the redo's), and while the copy runs
        from the copy's start. The copy's rate is I(throttle_mbps) or I(link_mbps) before it
        starts, and once it has run 6 seconds its own. When the redo the rest of the copy
        will need is more than the log holds, that is a risk; the text gives the rate, how
        many seconds of writes the log holds, how long the copy needs, and the size to raise
        the log to (twice that redo, as a power of two).
      - C(warn) says it as a warning and in the progress; C(refuse) fails the preflight then
        (nothing started), or stops the copy (the replica's old data untouched); C(off) does
        not look.
    type: str
    choices: [warn, refuse, 'off']
    default: warn
  redo_sample:
    description:
      - An earlier sample of the source's redo position, C(lsn), C(log_file_size) and C(at)
        (seconds since the epoch, by this host's clock), as M(reseed.mariadb.replication_info)
        returns it in C(redo); the redo rate of I(redo_check) is measured from it, without a
        wait. Ignored when it is less than a second old or its LSN is ahead of the server's
        (another server, or one restarted since).
    type: dict
  redo_log_file_size:
    description:
      - Raise the source's C(innodb_log_file_size) to this size (C(2G), C(512M), bytes) for
        the copy, and set it back once the copy has ended, well or not. Only when it is
        smaller; only on servers that resize it online safely (10.11.11, 11.4.5, 11.8 and
        later; the preflight refuses others). The raise is done once the receiver has
        accepted the copy and before mariadb-backup starts; each resize waits at most 60 s
        (the server switches to the new file as it writes) and is stopped past that, the
        server keeping its size. A restore that fails leaves a warning with the statement to
        run. A raise at least the size I(redo_check) suggests silences its risk.
    type: str
extends_documentation_fragment:
  - reseed.mariadb.transfer
  - reseed.mariadb.login
notes:
  - Every run starts with a preflight; check mode, and O(preflight=true), run only the
    preflight and report what would run (O(preflight=true) as not changed). It checks that mariadb-backup is installed and of the server's series and at
    least as new, that the programs the transport needs are here, and that the hard limit of
    open files allows one for every tablespace (see RV(open_files)). The receiver's
    checks (staging directory, free space, lock) happen on the replica, before anything
    there changes.
seealso:
  - module: reseed.mariadb.backup_receive
  - module: reseed.mariadb.transfer_cert
  - module: reseed.mariadb.backup_prepare
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Stream the primary's backup to the replica's receiver (started before, with async)
  reseed.mariadb.backup_stream:
    destination: 10.0.0.12
    token: "{{ stream_token }}"
    tls_cert: "{{ source_cert.cert_file }}"
    tls_key: "{{ source_cert.key_file }}"
    peer_cert: "{{ replica_cert.cert }}"
  delegate_to: db1.example.com
  register: stream

- name: From a replica, at most 200 MB/s, without compression, through an ssh tunnel
  reseed.mariadb.backup_stream:
    destination: db3.example.com
    transport: ssh
    ssh_user: ops
    ssh_key: /tmp/reseed-key/id_ed25519
    token: "{{ stream_token }}"
    slave_info: true
    safe_slave_backup: true
    compression: none
    throttle_mbps: 200

- name: Check that the source can stream (mariadb-backup, programs, open files), nothing started
  reseed.mariadb.backup_stream:
    destination: 10.0.0.12
    preflight: true
  delegate_to: db1.example.com
  register: stream_preflight
'''

RETURN = r'''
bytes_read:
  description: Bytes mariadb-backup produced (the stream before compression).
  returned: success
  type: int
  sample: 1170000000
bytes_sent:
  description: Bytes that went to the transport (after compression).
  returned: success
  type: int
  sample: 410000000
ratio:
  description: bytes_read / bytes_sent.
  returned: success
  type: float
  sample: 2.85
seconds:
  description: Wall time of the stream.
  returned: success
  type: float
  sample: 6.1
rate_mb_s:
  description: bytes_read per second, in MB/s.
  returned: success
  type: float
  sample: 191.8
mariabackup_version:
  description: The version of mariadb-backup.
  returned: always
  type: str
  sample: 10.11.19-MariaDB
server_version:
  description: The version of the server on this host.
  returned: always
  type: str
  sample: 10.11.19-MariaDB
destination_facts:
  description: What the receiver found before it accepted the stream (staging state, free bytes, lock).
  returned: when the receiver answered
  type: dict
  sample: {staging: absent, free_bytes: 52000000000}
receiver:
  description: What the receiver said at the end (C(ok), C(sealed), C(bytes)), or why it stopped.
  returned: when the receiver answered
  type: dict
  sample: {ok: true, sealed: true, bytes: 410000000}
expected_bytes:
  description: The estimated size of the stream (the source's data files), for the free space check and the progress.
  returned: always
  type: int
  sample: 1200000000
auto_compression:
  description:
    - With C(compression=auto), what was measured and the choice made (C(zstd) or C(none);
      C(null) in check mode unless I(link_mbps) is given).
    - C(link) says where C(link_mb_s) came from, C(measured), C(given (link_mbps)) or why it
      could not be measured (the stream is then sent uncompressed).
  returned: with compression=auto
  type: dict
  sample: {sample_bytes: 67108864, ratio: 2.7, zstd_mb_s: 610.2, link_mb_s: 117.3, link: measured,
           probe_seconds: 0.6, chosen: zstd}
commands:
  description: The programs of the pipeline, in order.
  returned: always
  type: list
  elements: str
progress_file:
  description: The progress file.
  returned: always
  type: str
blockers:
  description:
    - What the preflight found on the source that would make the copy wait for its backup
      locks, other backups (sessions in C(BACKUP STAGE) or C(FLUSH TABLES WITH READ LOCK),
      mariadb-backup processes) and DDL running 10 seconds or more, each with how long it
      has run. Also said as a warning.
  returned: always
  type: list
  elements: str
  sample: ['another backup: mariadb-backup (pid 4242 on the source), running 312 s']
lock_watch:
  description: How the backup locks and the redo were watched (C(watched), or why they could not be).
  returned: always
  type: str
backup_lock_wait_seconds:
  description: The longest the copy waited for one of the source's backup locks, in seconds.
  returned: when the stream ran, watched
  type: int
redo_ahead_peak:
  description:
    - The largest share of the source's redo log (C(innodb_log_file_size)) that the server
      had written ahead of what mariadb-backup had read, seen while the copy ran. At 1.0 the
      log wrapped ahead of the copy, which is then stopped at once (it could not be
      prepared); from 0.5 the progress line says how full it is.
  returned: when the stream ran, watched
  type: float
redo_outlook:
  description:
    - What I(redo_check) found (null when the redo rate could not be told, or with
      I(redo_check=off)). C(rate_mb_s) the source's redo rate, C(log_file_size) its
      C(innodb_log_file_size), C(holds_seconds) how many seconds of writes that holds,
      C(copy_seconds) how long the copy (or its rest) needs, C(rate_from) how the copy's rate
      is known, C(risk) whether the copy's redo does not fit in the log, C(suggested) the size
      to raise it to (bytes). Measured while the copy ran when it found a risk then; from the
      preflight otherwise.
  returned: once the preflight got that far
  type: dict
  sample: {rate_mb_s: 12.1, log_file_size: 100663296, holds_seconds: 8.3, copy_seconds: 80.0,
           rate_from: at replica_rebuild_throttle_mbps 100, risk: true, suggested: 2147483648}
redo_log:
  description:
    - With I(redo_log_file_size), the source's C(innodb_log_file_size) C(before) the copy and
      C(during) it (bytes), whether it was C(raised), and whether it was C(restored) after.
  returned: with redo_log_file_size, once the raise was tried
  type: dict
  sample: {before: 4194304, during: 2147483648, raised: true, restored: true}
open_files:
  description:
    - The open files mariadb-backup needs and gets. It opens every InnoDB tablespace at
      once, so the module raises its own soft C(RLIMIT_NOFILE) to the hard limit before it
      starts mariadb-backup (which inherits it) and passes C(--open-files-limit) with that
      number (not when I(extra_args) set their own).
    - C(tablespaces) the C(.ibd) and C(.isl) files of I(source_datadir); C(needed) those
      plus a margin for its other files; C(soft) and C(hard) the limits the module found
      (an unlimited one as 1048576); C(limit) the soft limit mariadb-backup runs with;
      C(raised) whether that is more than C(soft); C(enough) false when the hard limit is
      below C(needed), and the module then fails in its preflight, before anything starts.
  returned: once the preflight got that far
  type: dict
  sample: {tablespaces: 4012, needed: 4212, soft: 1024, hard: 524288, limit: 524288,
           raised: true, enough: true}
failure:
  description:
    - "What failed, in fields (C(msg) is C(backup_stream to <destination>:<port> (<transport>):
      <message>)): C(step), C(side) (C(source), C(replica) or C(link)), C(code),
      C(changed_nothing) (the source's server is never changed; false once the receiver may
      have written into the replica's staging directory, unless the receiver said otherwise),
      C(message). Codes by step below, side C(source) unless said."
    - C(preflight) C(no_mariadb_backup), C(missing_programs), C(tls_options),
      C(backup_version), C(open_files_limit), C(open_files_raise), C(redo_log_size) (not a
      size), C(redo_log_too_small) (I(redo_check=refuse)), C(redo_log_resize) (the server's
      version, or the raise did not end).
    - C(connect) C(tls_files) (this end's certificate, key or I(peer_cert)); C(unreachable),
      C(tls_handshake), C(wrong_certificate), C(ssh), C(stalled), C(connection_lost) - side
      C(link).
    - C(handshake) C(refused) (the receiver's REFUSE, see RV(receiver_failure)) - side
      C(replica); C(stalled), C(connection_lost) - side C(link).
    - "C(stream) C(mariadb_backup_failed), C(redo_wrapped), C(redo_log_too_small),
      C(open_files_exhausted),
      C(zstd_failed), C(backup_lock_timeout), C(controller_gone) (the heartbeat stopped),
      C(os_error); C(receiver_failed) - side C(replica); C(stalled), C(connection_lost) - side
      C(link). The action plugin adds C(not_started) (the background job did not start) and
      C(no_result) (the job ended without a failure of the module's own, because it crashed,
      was killed, its options were refused, or the source could not be polled)."
    - C(result) C(receiver_failed), C(not_sealed) - side C(replica); C(no_confirmation) -
      side C(link).
  returned: on failure
  type: dict
  sample: {step: handshake, side: replica, code: refused, changed_nothing: true,
           message: "the replica refused the stream, nothing changed: the replica 10.0.0.12:4444:
             replica: needs 52.0 GB in /var/lib, has 20.1 GB free"}
receiver_failure:
  description:
    - The receiver's own C(failure) (M(reseed.mariadb.backup_receive)'s fields, sides and
      codes), as it sent it in its REFUSE or RESULT frame, when it sent one.
  returned: on failure, when the receiver said why
  type: dict
  sample: {step: check, side: replica, code: no_space, changed_nothing: true,
           message: "needs 52.0 GB in /var/lib, has 20.1 GB free"}
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils import (
    connection, failure, open_files, redo_log, source_watch, transfer, versions)
from ansible_collections.reseed.mariadb.plugins.module_utils.compression import (
    PROBE_BYTES, choose_zstd, measure_zstd, probe_link, read_sample)
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import (
    Connection, DbError, login_argument_spec, scrub)
from ansible_collections.reseed.mariadb.plugins.module_utils.failure import Failure
from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import Pipeline, Pump, Stage
from ansible_collections.reseed.mariadb.plugins.module_utils.backup_metadata import (
    RECEIVED_MARKER)

NOT_COUNTED = re.compile(r'(-bin\.\d+|-bin\.index|relay-bin.*|\.pid|\.sock)$')
RESULT_WAIT = 600  # seconds for the receiver to finish extracting after the last byte


def option_value(value):
    """A value for a MariaDB option file, double-quoted and escaped."""
    return '"%s"' % (str(value).replace('\\', '\\\\').replace('"', '\\"')
                     .replace('\n', '\\n'))


# The server's own option files, as mariadb-backup reads them without --defaults-file.
SERVER_OPTION_FILES = ('/etc/my.cnf', '/etc/mysql/my.cnf')


def write_option_file(directory, params, default_sockets=connection.DEFAULT_SOCKETS,
                      server_files=SERVER_OPTION_FILES):
    """mariadb-backup's only option file (--defaults-file): the server's option files, then
    the login's config_file, then what connection.connect_kwargs() makes of the login
    options (connection.client_options()) in mariadb-backup's own group, which therefore
    win (measured on 10.11: its groups over [client] in any order, the last file's within
    them); the password in this file only."""
    include, pairs = connection.client_options(params, default_sockets)
    files = [f for f in server_files if os.path.isfile(f)] + ([include] if include else [])
    lines = ['!include ' + f for f in files if '\n' not in f]
    lines.append('[mariadb-backup]')
    lines += ['%s=%s' % (key, option_value(value)) for key, value in pairs]
    path = os.path.join(directory, 'backup.cnf')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def estimate_bytes(datadir):
    total = 0
    for top, dirs, files in os.walk(datadir):
        for name in files:
            if NOT_COUNTED.search(name):
                continue
            try:
                total += os.path.getsize(os.path.join(top, name))
            except OSError:
                pass
    return total or None


def heartbeat_watchdog(path, timeout, now=time.time):
    """The pipeline's watchdog for a heartbeat file (None: no watchdog)."""
    if not path:
        return None
    # Counted from this module's start at the earliest: launching it in the background may
    # take a while on a loaded host, and the controller refreshes the file only once it can.
    started = now()

    def check():
        try:
            age = now() - max(os.path.getmtime(path), started)
        except OSError:
            return 'the controller is gone (its heartbeat file %s was removed): stream stopped' % path
        if age > timeout:
            return ('the controller is gone (no heartbeat for %d s, limit %d s: interrupted, '
                    'or its connection lost): stream stopped' % (age, timeout))
        return None
    return check


def choose_compression(module, datadir, link_mbps, channel):
    """compression=auto: zstd or none, from a sample of the data compressed with zstd -1 and
    the link's rate (link_mbps when given, else measured by sending part of the sample
    through the stream's connection; channel None in check mode)."""
    data = read_sample(datadir)
    sample = measure_zstd(module, data)
    auto = dict(sample or {})
    if not sample:
        auto.update(chosen='none', link='not measured: no data files to sample')
        return auto
    if link_mbps:
        auto.update(link_mb_s=round(link_mbps / 8.0, 1), link='given (link_mbps)')
    elif channel is None:
        auto.update(chosen=None, link='measured when the stream runs (not in check mode)')
        return auto
    else:
        started = time.time()
        rate, problem = probe_link(channel, data[:PROBE_BYTES])
        auto.update(link_mb_s=rate, link='measured' if rate else 'not measured: %s' % problem,
                    probe_seconds=round(time.time() - started, 2))
    auto['chosen'] = 'zstd' if choose_zstd(sample, auto['link_mb_s']) else 'none'
    return auto


def ssh_argv(p):
    argv = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new',
            '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3',
            '-o', 'ExitOnForwardFailure=yes', '-p', str(p['ssh_port'])]
    if p['ssh_key']:
        argv += ['-i', p['ssh_key'], '-o', 'IdentitiesOnly=yes']
    for option in p['ssh_options']:
        argv += ['-o', option]
    return argv + ['%s@%s' % (p['ssh_user'], p['destination'])]


# ssh's own words -> what to do; the first that ssh's error output holds wins (the tunnel's
# failures first: their "Connection refused" is the receiver's port, not sshd's).
SSH_FIXES = (
    ('administratively prohibited', 'the replica\'s sshd refuses the tunnel: allow TCP '
     'forwarding to 127.0.0.1 for %(user)s there (AllowTcpForwarding, PermitOpen), or use '
     'transport tls'),
    ('open failed: connect failed', 'ssh logged in, but nothing listens on the receiver\'s '
     'port on the replica\'s loopback: the receiver did not start or has ended (its own '
     'message says why)'),
    # What is left of either of the above when the ssh options quieten ssh (LogLevel).
    ('stdio forwarding failed', 'the tunnel to the receiver could not be opened: the '
     'replica\'s sshd refuses forwarding for %(user)s (AllowTcpForwarding, PermitOpen), or '
     'the receiver does not listen; or use transport tls'),
    ('Permission denied', '%(user)s cannot log in to the replica with this run\'s key: check '
     'that sshd lets %(user)s in (AllowUsers, PermitRootLogin for root), or use transport tls'),
    ('Connection refused', 'nothing answers on the replica\'s ssh port'),
    ('Connection timed out', 'the replica\'s ssh port does not answer (a firewall drops it?): '
     'open it to the source, or use transport tls'),
)


def link_code(e, default='connection_lost'):
    """The code of a failure of the connection to the receiver: transfer's exception says."""
    return e.code if isinstance(e, transfer.TransferError) else default


class Sender(object):

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.secrets = [self.p['login_password'], self.p['token']]
        self.where = 'backup_stream to %s:%d (%s)' % (self.p['destination'], self.p['port'],
                                                      self.p['transport'])
        # preflight=true runs what check mode runs, and changes nothing either.
        self.dry_run = module.check_mode or self.p['preflight']
        self.result = {}
        self.channel = self.ssh = None
        self.warning = None  # what the preflight found that may make the copy wait
        self.stop_code = None  # which watchdog stopped the stream
        self.redo_first = None  # the earliest redo sample of the source (see check_redo)
        self.redo_raise = None  # bytes to raise innodb_log_file_size to for the copy

    def receiver_failure(self, said):
        """Keep the receiver's failure fields (from its frame `said`, a dict); whether the
        replica is as it was, by its word (None when it did not say)."""
        fields = (said or {}).get('failure')
        if isinstance(fields, dict):
            self.result['receiver_failure'] = fields
            return fields.get('changed_nothing')
        return None

    def failed(self, step, side, code, cause, changed_nothing=True, said=None):
        """The Failure to raise; `said` the receiver's frame, whose changed_nothing wins."""
        told = self.receiver_failure(said)
        return Failure(step, side, code, cause, changed_nothing if told is None else told)

    def close(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.ssh is not None:
            if self.ssh.poll() is None:
                try:
                    self.ssh.wait(timeout=5)  # ends once its socket is closed
                except Exception:
                    self.ssh.kill()  # our own child, by its pid
                    self.ssh.wait()
            self.ssh.stderr.close()
            self.ssh = None

    def preflight(self):
        p = self.p
        mariabackup = self.module.get_bin_path('mariadb-backup') or \
            self.module.get_bin_path('mariabackup')
        if not mariabackup:
            raise Failure('preflight', 'source', 'no_mariadb_backup',
                          'mariadb-backup is not installed on the source (package '
                          'mariadb-backup, of the server\'s version)')
        needed = (['zstd'] if p['compression'] != 'none' else []) + \
            (['ssh'] if p['transport'] == 'ssh' else [])
        missing = [n for n in needed if not self.module.get_bin_path(n)]
        if missing:
            raise Failure('preflight', 'source', 'missing_programs',
                          'missing on the source: %s' % ', '.join(missing))
        if p['transport'] == 'tls' and not self.dry_run:
            missing = [o for o in ('tls_cert', 'tls_key', 'peer_cert') if not p[o]]
            if missing:
                raise Failure('preflight', 'source', 'tls_options',
                              'transport=tls needs %s' % ', '.join(missing))
        backup_version = versions.version_of(self.module, [mariabackup, '--version'])
        server_bin = self.module.get_bin_path('mariadbd') or self.module.get_bin_path('mysqld')
        server_version = versions.version_of(self.module, [server_bin, '--version']) \
            if server_bin else None
        self.result.update(mariabackup_version=backup_version, server_version=server_version)
        problem = versions.backup_problem(backup_version, server_version)
        if problem:
            raise Failure('preflight', 'source', 'backup_version', problem)
        self.result['expected_bytes'] = estimate_bytes(p['source_datadir'])
        self.check_open_files()
        self.check_blockers()
        self.check_redo()
        return mariabackup

    def connect_server(self):
        """A connection to the source's server, for its processlist; `user` its login name."""
        db = Connection(self.p)
        db.user = db.query("SELECT SUBSTRING_INDEX(USER(), '@', 1) AS u")[0]['u']
        return db

    def check_blockers(self):
        """Say, before anything starts, what would make the copy wait for its backup locks."""
        self.result.update(blockers=[], lock_watch='watched')
        try:
            db = self.connect_server()
            try:
                rows = db.query(source_watch.QUERY)
                self.redo_first = source_watch.redo_sample(db)
            finally:
                db.close()
        except DbError as e:
            self.result['lock_watch'] = 'not watched: %s' % scrub(str(e), self.secrets)
            return
        found = source_watch.preflight_blockers(rows)
        self.result['blockers'] = found
        if found:
            self.warn('%s: the copy may wait for its backup locks (at most %d s, '
                      'replica_rebuild_backup_lock_timeout): %s' % (
                          socket.gethostname(), self.p['lock_wait_timeout'],
                          '; '.join(found[:3])))

    def copy_rate(self):
        """(bytes a second, how it is known) of the copy, when known before it starts."""
        p = self.p
        if p['throttle_mbps']:
            return (p['throttle_mbps'] * 1e6,
                    'at replica_rebuild_throttle_mbps %d' % p['throttle_mbps'])
        if p['link_mbps']:
            return p['link_mbps'] * 1e6 / 8, 'at the link\'s %d Mbit/s' % p['link_mbps']
        return None, None

    def check_redo(self):
        """Before the copy: does the source's redo log hold the redo the copy will need? The
        redo rate is measured from I(redo_sample) (taken seconds before by the role's read of
        the source) to now, or over REDO_SAMPLE_SECONDS more when the copy's rate is known
        (throttle, link) and nothing else tells it; the copy's own rate is measured while it
        runs (the watch)."""
        p = self.p
        self.result['redo_outlook'] = None
        if p['redo_log_file_size']:
            try:
                self.redo_raise = redo_log.parse_size(p['redo_log_file_size'])
            except ValueError as e:
                raise Failure('preflight', 'source', 'redo_log_size', 'redo_log_file_size: %s' % e)
            problem = versions.online_resize_problem(self.result['server_version'])
            if problem:
                raise Failure('preflight', 'source', 'redo_log_resize', '%s: preflight of the '
                              'source: cannot raise innodb_log_file_size for the copy: %s' % (
                                  socket.gethostname(), problem))
        last = self.redo_first
        if last is None or p['redo_check'] == 'off':
            return
        given = p['redo_sample']
        if source_watch.redo_rate(given, last) is not None:
            self.redo_first = given
        copy_rate, how = self.copy_rate()
        if copy_rate and source_watch.redo_rate(self.redo_first, last) is None:
            time.sleep(source_watch.REDO_SAMPLE_SECONDS * 2)
            try:
                db = self.connect_server()
                try:
                    last = source_watch.redo_sample(db)
                finally:
                    db.close()
            except DbError:
                pass  # the outlook from what was read, or none (the watch still looks)
        rate = source_watch.redo_rate(self.redo_first, last)
        outlook = source_watch.redo_outlook(rate, last['log_file_size'],
                                            self.result['expected_bytes'], copy_rate, how)
        self.result['redo_outlook'] = outlook
        if not outlook or not outlook['risk'] or (self.redo_raise or 0) >= outlook['suggested']:
            return
        text = '%s: preflight of the source: %s' % (
            socket.gethostname(), source_watch.redo_risk_text(outlook))
        if p['redo_check'] == 'refuse':
            raise Failure('preflight', 'source', 'redo_log_too_small', text +
                          ' (replica_rebuild_redo_check: refuse; nothing changed)')
        self.warn(text)

    def warn(self, text):
        """A warning of the task, and in the progress file, which the action plugin shows
        while the stream runs (a background job's warnings reach the controller only at its
        end)."""
        self.warning = '; '.join(w for w in (self.warning, text) if w)
        self.module.warn(text)

    def raise_redo_log(self):
        """Before mariadb-backup starts: raise the source's innodb_log_file_size to
        I(redo_log_file_size) for the copy (restore_redo_log sets it back)."""
        if not self.redo_raise:
            return
        try:
            size = redo_log.current_size(self.connect_server)
            self.result['redo_log'] = dict(before=size, during=max(size, self.redo_raise),
                                           raised=size < self.redo_raise, restored=None)
            problem = redo_log.resize(self.connect_server, self.redo_raise) \
                if size < self.redo_raise else None
        except DbError as e:
            size, problem = self.result.get('redo_log', {}).get('before', 0), str(e)
        if problem:
            # A raise that failed keeps the old size; one cut off may not have: set it back.
            self.restore_redo_log()
            raise Failure('preflight', 'source', 'redo_log_resize', '%s: could not raise '
                          'innodb_log_file_size from %s to %s for the copy, nothing changed: %s' % (
                              socket.gethostname(), source_watch.option_size(size),
                              source_watch.option_size(self.redo_raise), problem))

    def restore_redo_log(self):
        """Set the source's innodb_log_file_size back to what it was, once the copy has
        ended (well or not); a warning naming the statement when it cannot."""
        done = self.result.get('redo_log')
        if not done or not done['raised'] or done['restored'] is not None:
            return
        try:
            problem = None if redo_log.current_size(self.connect_server) == done['before'] \
                else redo_log.resize(self.connect_server, done['before'])
        except DbError as e:
            problem = scrub(str(e), self.secrets)
        done['restored'] = problem is None
        if problem:
            self.warn('%s: innodb_log_file_size stays at %s after the copy (%s): set it back '
                      'with SET GLOBAL innodb_log_file_size = %d' % (
                          socket.gethostname(), source_watch.option_size(done['during']),
                          problem, done['before']))

    def check_open_files(self):
        """mariadb-backup opens every tablespace at once: run it with the soft limit of open
        files raised to the hard one (it inherits ours), or refuse while nothing has started
        when even the hard limit is too low for them."""
        plan = open_files.current(open_files.count_tablespaces(self.p['source_datadir']))
        self.result['open_files'] = plan
        if not plan['enough']:
            raise Failure('preflight', 'source', 'open_files_limit', open_files.refusal(
                socket.gethostname(), 'preflight of the source', plan, open_files.login()))
        if not self.dry_run:
            try:
                open_files.apply(plan)
            except (ValueError, OSError) as e:
                raise Failure('preflight', 'source', 'open_files_raise',
                              '%s: preflight of the source: cannot raise the soft limit of '
                              'open files from %d to %d: %s' % (
                                  socket.gethostname(), plan['soft'], plan['limit'], e))

    def open(self):
        """Connect, prove who we are, and hear the receiver accept (or refuse) the copy."""
        p = self.p
        deadline = time.time() + p['connect_timeout']
        step, side, code = 'connect', 'link', None
        try:
            if p['transport'] == 'ssh':
                self.channel, self.ssh = transfer.ssh_tunnel(ssh_argv(p), p['port'], deadline,
                                                             p['stall_timeout'])
            else:
                tls = peer = None
                if p['transport'] == 'tls':
                    side, code = 'source', 'tls_files'  # this end's files, or peer_cert
                    tls = transfer.tls_context(False, p['tls_cert'], p['tls_key'], p['peer_cert'])
                    peer = transfer.fingerprint(p['peer_cert'])
                    side, code = 'link', None
                self.channel = transfer.connect(p['destination'], p['port'], deadline, tls, peer,
                                                p['stall_timeout'])
            step = 'handshake'
            self.channel.send_json(transfer.HELLO, {
                'magic': transfer.MAGIC, 'token': p['token'],
                'expected_bytes': self.result['expected_bytes'],
                'mariabackup_version': self.result['mariabackup_version'],
                'server_version': self.result['server_version']})
            facts = self.answer(transfer.ACCEPT)
        except transfer.PeerAbort as e:
            raise self.failed('handshake', 'replica', 'refused', 'the replica refused the '
                              'stream, nothing changed: %s' % e, said=e.said)
        except (transfer.TransferError, OSError, ValueError) as e:
            raise Failure(step, side, code or link_code(e),
                          'nothing changed: %s%s' % (e, self.hint(str(e))))
        self.result['destination_facts'] = facts

    def answer(self, *expected):
        """The receiver's next frame, one of expected, as a dict (a REFUSE, ABORT or RESULT
        in its place raises PeerAbort with the frame)."""
        return self.channel.recv_json(*expected)[1]

    def hint(self, error):
        """What to do, from ssh's own words (in the error, or from a tunnel that ended
        later) or the transport's usual causes."""
        p = self.p
        if p['transport'] == 'ssh':
            said = error
            if self.ssh is not None and self.ssh.poll() is not None:
                err = self.ssh.stderr.read().decode('utf-8', 'replace').strip()
                said += ' ' + err
                error = ' (ssh: %s)' % ' | '.join(err.splitlines()[-2:])
            else:
                error = ''
            fix = next((fix for text, fix in SSH_FIXES if text in said), None)
            return error + (': ' + fix % {'user': p['ssh_user']} if fix else '')
        return ('; check that the receiver runs on the replica and that the replica\'s port '
                '%d is open to this host (firewall), or choose another port '
                '(replica_rebuild_port)' % p['port'])

    def run(self):
        """The stream, or (check mode, preflight=true) its preflight; the success message."""
        p = self.p
        mariabackup = self.preflight()
        backup_argv = [mariabackup, None, '--backup', '--stream=xbstream',
                       '--parallel=%d' % p['parallel']]
        if p['slave_info']:
            backup_argv.append('--slave-info')
            if p['safe_slave_backup']:
                backup_argv.append('--safe-slave-backup')
        backup_argv += open_files.option(self.result['open_files'], p['extra_args'])
        backup_argv += p['extra_args']
        digest = hashlib.sha1(('%s:%d' % (p['destination'], p['port'])).encode()).hexdigest()
        progress_file = p['progress_file'] or os.path.join(
            tempfile.gettempdir(), 'reseed-stream-%s.json' % digest[:12])
        self.result['progress_file'] = progress_file
        if self.dry_run:
            if p['compression'] == 'auto':
                self.result['auto_compression'] = choose_compression(
                    self.module, p['source_datadir'], p['link_mbps'], None)
            self.result['commands'] = [' '.join(a for a in backup_argv if a)]
            self.result['changed'] = not p['preflight']
            return '%s a backup (about %.2f GB) to %s:%d over %s' % (
                'the preflight passed: can stream' if p['preflight'] else 'would stream',
                (self.result['expected_bytes'] or 0) / 1e9, p['destination'], p['port'],
                p['transport'])
        self.open()
        zstd_argv = ['zstd', '-q', '-c', '-T0']
        compress_argv = None
        if p['compression'] == 'zstd':
            compress_argv = zstd_argv + ['-%d' % p['compression_level']]
        elif p['compression'] == 'auto':
            self.result['auto_compression'] = auto = choose_compression(
                self.module, p['source_datadir'], p['link_mbps'], self.channel)
            if auto['chosen'] == 'zstd':
                compress_argv = zstd_argv + ['-1']  # the level the sample was measured at
        self.result['commands'] = [c for c in (' '.join(a for a in backup_argv if a),
                                               ' '.join(compress_argv or [])) if c]
        self.raise_redo_log()
        try:
            self.channel.send_json(transfer.START,
                                   {'compression': 'zstd' if compress_argv else 'none'})
        except transfer.TransferError as e:
            self.restore_redo_log()
            raise Failure('handshake', 'link', link_code(e), 'nothing changed: %s' % e)
        # From START on, the receiver may write into the replica's staging directory.
        workdir = tempfile.mkdtemp(prefix='reseed-stream-')
        try:
            option_file = write_option_file(workdir, p)
            backup_argv[1] = '--defaults-file=' + option_file
            backup_argv.append('--target-dir=' + os.path.join(workdir, 'target'))
            stages = [Stage('mariadb-backup on the source', backup_argv, ok_text='completed OK!')]
            if compress_argv:
                stages.append(Stage('zstd on the source', compress_argv))
            counters = {'read': 0, 'sent': 1 if compress_argv else 0}
            watch = self.start_watch(stages[0])
            pipeline = Pipeline(stages, counters,
                                rate_limits={0: p['throttle_mbps'] * 1000000},
                                progress_file=progress_file,
                                expected_bytes=self.result['expected_bytes'],
                                watchdog=self.watchdog(watch),
                                progress_extra=lambda: self.progress_extra(watch),
                                sink=(self.channel, 'the link to %s' % self.channel.name))
            if watch:
                watch.copied = lambda: (pipeline.counts()['read'], self.result['expected_bytes'],
                                        time.time() - watch.started)
            try:
                blamed = pipeline.run()
            finally:
                if watch:
                    watch.stop()
                    self.result.update(backup_lock_wait_seconds=watch.longest,
                                       redo_ahead_peak=round(watch.redo_peak, 3))
                    if watch.outlook:  # measured at the copy's own rate: it wins
                        self.result['redo_outlook'] = watch.outlook
                        if self.p['redo_check'] == 'warn':
                            self.warn('%s: while the copy ran: %s' % (
                                socket.gethostname(), source_watch.redo_risk_text(
                                    watch.outlook, ' more')))
        except (OSError, IOError) as e:
            raise Failure('stream', 'source', 'os_error', str(e), changed_nothing=False)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self.restore_redo_log()
        return self.finish(pipeline, blamed, stages[0])

    def progress_extra(self, watch):
        extra = {'warning': self.warning} if self.warning else {}
        if watch and watch.note:
            extra['waiting'] = watch.note
        return extra

    def start_watch(self, backup):
        """The watch of the copy's backup locks and redo (module_utils/source_watch.py),
        started; None when it cannot log in."""
        if not self.result['lock_watch'].startswith('watched'):
            return None
        watch = source_watch.SourceWatch(self.connect_server, self.p['lock_wait_timeout'],
                                         stderr_peek=backup.peek, redo_check=self.p['redo_check'],
                                         first_redo=self.redo_first)
        watch.start()
        return watch

    def watchdog(self, watch):
        """Stop the stream when the controller is gone or a backup lock waited too long (or
        the redo wrapped); stop_code says which."""
        heartbeat = heartbeat_watchdog(self.p['heartbeat_file'], self.p['heartbeat_timeout'])
        if watch is None and heartbeat is None:
            return None

        def check():
            said = heartbeat() if heartbeat else None
            if said:
                self.stop_code = 'controller_gone'
                return said
            if watch is not None and watch.abort:
                self.stop_code = watch.abort_code
            return watch.abort if watch is not None else None
        return check

    def blame(self, pipeline, blamed, backup):
        """(side, code, the receiver's frame) of a stream that stopped."""
        if pipeline.aborted:
            return 'source', self.stop_code, None
        if isinstance(blamed, Pump):
            if isinstance(blamed.error, transfer.PeerAbort):
                return 'replica', 'receiver_failed', blamed.error.said
            return 'link', link_code(blamed.error), None
        if blamed is not backup:
            return 'source', 'zstd_failed', None
        tail = getattr(blamed, 'stderr_tail', '')
        if 'Was only able to copy log' in tail:
            return 'source', 'redo_wrapped', None
        if open_files.exhausted(tail):
            return 'source', 'open_files_exhausted', None
        return 'source', 'mariadb_backup_failed', None

    def finish(self, pipeline, blamed, backup):
        counts = pipeline.counts()
        seconds = round(pipeline.seconds, 2)
        self.result.update(
            bytes_read=counts['read'], bytes_sent=counts['sent'], seconds=seconds,
            ratio=round(counts['read'] / float(counts['sent']), 2) if counts['sent'] else None,
            rate_mb_s=round(counts['read'] / pipeline.seconds / 1e6, 1) if seconds else None)
        unsealed = '; the copy is not sealed (no %s) and will not be prepared' % RECEIVED_MARKER
        if pipeline.aborted or blamed is not None:
            side, code, said = self.blame(pipeline, blamed, backup)
            text = pipeline.aborted or blamed.describe(lambda t: scrub(t, self.secrets))
            if blamed is not None and 'Was only able to copy log' in getattr(blamed, 'stderr_tail', ''):
                text += ' (the redo log wrapped during the backup: raise innodb_log_file_size)'
            if blamed is not None and open_files.exhausted(getattr(blamed, 'stderr_tail', '')):
                text += open_files.hint(self.result['open_files'])
            if not isinstance(blamed, Pump):  # the link itself works: tell the receiver
                words, said = self.receiver_said(text)
                text += words
            # The receiver's own words may already say so, more briefly: said once.
            raise self.failed('stream', side, code, text.replace('; the copy is not sealed', '')
                              + unsealed, changed_nothing=False, said=said)
        try:
            self.channel.send_json(transfer.END, {'ok': True, 'bytes': counts['sent']})
            self.channel.stall_timeout = self.p['stall_timeout']
            answer = self.answer(transfer.RESULT)
        except transfer.TransferError as e:
            said = getattr(e, 'said', None)
            raise self.failed('result', 'replica' if said is not None else 'link',
                              'receiver_failed' if said is not None else 'no_confirmation',
                              'the stream was sent whole but the receiver did not confirm it: '
                              '%s%s' % (e, unsealed), changed_nothing=False, said=said)
        self.result['receiver'] = answer
        if not answer.get('ok') or not answer.get('sealed'):
            raise self.failed('result', 'replica', 'not_sealed' if answer.get('ok') else
                              'receiver_failed', 'the receiver on the replica failed: %s%s' % (
                                  answer.get('error'), unsealed), changed_nothing=False,
                              said=answer)
        self.close()
        self.result['changed'] = True
        return 'streamed %.2f GB (%.2f GB sent) in %.1f s to %s, sealed' % (
            counts['read'] / 1e9, counts['sent'] / 1e9, seconds, self.p['destination'])

    def receiver_said(self, text):
        """Tell the receiver why the source stopped; (what it answers, briefly: the copy is
        lost either way; its frame, for its failure fields)."""
        self.channel.sock.settimeout(5)
        self.channel.stall_timeout = 5
        try:
            self.channel.send_json(transfer.ABORT, {'reason': 'the source stopped: ' + text})
            kind, payload = self.channel.recv()
        except (transfer.TransferError, OSError, ValueError):
            return '', None
        if kind != transfer.RESULT:
            return '', None
        said = transfer.reason_of('the replica', payload)
        words = '' if not said or 'the source stopped' in said else '; ' + said
        return words, transfer.frame_dict(payload)


def main():
    spec = login_argument_spec()
    spec.update(transfer.argument_spec())
    spec.update(
        destination=dict(type='str', required=True),
        transport=dict(type='str', default='tls', choices=['tls', 'tcp', 'ssh']),
        # Also the login's connect_timeout (same default): the wait for this host's server.
        connect_timeout=dict(type='int', default=30),
        compression=dict(type='str', default='auto', choices=['auto', 'zstd', 'none']),
        compression_level=dict(type='int', default=1),
        link_mbps=dict(type='int', default=0),
        parallel=dict(type='int', default=2),
        throttle_mbps=dict(type='int', default=0),
        slave_info=dict(type='bool', default=False),
        safe_slave_backup=dict(type='bool', default=False),
        extra_args=dict(type='list', elements='str', default=[]),
        ssh_user=dict(type='str', default='root'),
        ssh_port=dict(type='int', default=22),
        ssh_key=dict(type='path'),
        ssh_options=dict(type='list', elements='str', default=[]),
        progress_file=dict(type='path'),
        heartbeat_file=dict(type='path'),
        heartbeat_timeout=dict(type='int', default=120),
        lock_wait_timeout=dict(type='int', default=60),
        source_datadir=dict(type='path', default='/var/lib/mysql'),
        redo_check=dict(type='str', default='warn', choices=['warn', 'refuse', 'off']),
        redo_sample=dict(type='dict'),
        redo_log_file_size=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=transfer.REQUIRED_IF)
    sender = Sender(module)

    def closed(e):
        sender.close()
        return Failure(e.step, e.side, e.code, scrub(e.message, sender.secrets), e.changed_nothing)

    failure.run(module, sender.run, sender.where, sender.result, closed)


if __name__ == '__main__':
    main()
