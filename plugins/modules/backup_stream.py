#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: backup_stream
short_description: Stream a hot mariadb-backup of this host straight into another host's staging directory
version_added: 0.1.0
description:
  - Runs on the source (the primary, or a healthy replica). Takes a hot physical backup with
    C(mariadb-backup --backup --stream=xbstream) and streams it, compressed in the pipe, over
    ssh (or plain TCP) into C(mbstream -x) on the destination. Nothing is written on the source; every
    byte crosses the wire once and is decompressed on arrival (no C(.qp) files).
  - Each program runs as its own process without a shell; the bytes between them are moved
    by the kernel (C(splice)) and counted. When a program fails, the module names it, with
    its exit code and the last lines of its error output (passwords masked).
  - The receiving side extracts only into a new or a reseed staging directory, which holds
    C(reseed_receiving) while the stream runs and C(reseed_extracted) once mbstream has
    extracted it up to C(xtrabackup_info) (streamed last). Only when every program of the
    pipeline succeeded and mariadb-backup said C(completed OK!) does the source seal the
    copy over ssh, writing C(reseed_received) (C(mbstream) can exit 0 on a broken
    extraction, and the receiver cannot see how mariadb-backup ended).
    M(reseed.mariadb.backup_prepare) refuses a copy without that record. A staging directory left by an earlier run is removed first, never reused; a
    directory that is not a reseed staging directory, or that holds a running server's
    datadir, is refused. One stream at a time into a staging directory; the receiving side
    holds a lock in C(/run/lock) until every program it started has ended, and a second
    stream (say, one left running by a controller that vanished) is refused by the preflight.
  - The backup account's credentials reach mariadb-backup through a temporary option file
    (mode 0600, removed on every exit path), never through its command line.
  - Run from a playbook, the collection's action plugin of the same name runs the module in
    the background and prints a progress line every 10 seconds (bytes, percent of the
    estimated size, MB/s, ETA); an interrupted controller (Ctrl-C, a killed
    C(ansible-playbook)) stops the stream (see I(heartbeat_file)). Check mode, and a task
    with its own C(async), run the module as usual.
options:
  destination:
    description: The destination host, as this host reaches it over ssh.
    type: str
    required: true
  staging_dir:
    description:
      - Directory on the destination that receives the copy. Must not exist, be empty, or
        be a staging directory of an earlier run. Beside the datadir, on its filesystem, so
        that the swap is a rename.
    type: path
    required: true
  transport:
    description:
      - How the bytes travel. C(ssh) pipes them through ssh into the receiving side
        (encrypted; ssh's cipher is often the bottleneck on fast links).
      - C(tcp) sends them in the clear over a plain TCP connection, for fast trusted networks;
        the receiving side, still started over ssh, runs C(socat) listening on
        I(tcp_listen_address):I(tcp_port) that accepts one connection from
        I(tcp_source_address) only and gives up when nothing connects within 60 seconds;
        the source connects to it with C(socat). Needs socat on both hosts.
    type: str
    choices: [ssh, tcp]
    default: ssh
  tcp_port:
    description: With C(transport=tcp), the port the destination listens on.
    type: int
    default: 4444
  tcp_listen_address:
    description: With C(transport=tcp), the destination's address to listen on and connect to; I(destination) resolved when omitted.
    type: str
  tcp_source_address:
    description: With C(transport=tcp), the only address the listener accepts; the address this host uses to reach the destination when omitted.
    type: str
  compression:
    description:
      - C(zstd) compresses at level I(compression_level) with all cores; C(none) sends the
        stream as it is.
      - C(auto) measures first how fast and how much C(zstd -1) with all cores compresses a
        sample of the largest data files (up to 64 MiB), and how fast the transport carries
        bytes to the destination (32 MiB of the sample sent through it, the last 24 MiB
        timed on the destination, written nowhere), unless I(link_mbps) gives the link's speed. It
        compresses when min(0.7 x compression rate, link rate x ratio) beats the link rate
        by 10% (in the stream, zstd shares the source's cores with mariadb-backup and the
        transport, it ran at 0.6 to 0.7 x its rate alone on a 2-core host), and sends the bytes as they are
        otherwise. The receiving side decompresses with C(zstd -d --pass-through) either
        way, so that its command does not depend on the choice. (C(zstd --adapt) was
        measured to raise its level on a busy 2-core source, taking CPU from ssh and
        mariadb-backup, 30 s instead of 11 s.)
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
    description: Copy threads of mariadb-backup and extract threads of mbstream.
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
    description: The account on the destination.
    type: str
    default: root
  ssh_port:
    description: The destination's sshd port.
    type: int
    default: 22
  ssh_key:
    description: Private key on this host for the destination; the ssh client's default when omitted.
    type: path
  ssh_options:
    description: More ssh client options, each C(-o) value as C(Name=value).
    type: list
    elements: str
    default: []
  login_user:
    description: The backup account; root (over the unix socket, as Debian sets it up) when omitted.
    type: str
  login_password:
    description: Its password. Written only to a temporary 0600 option file.
    type: str
  login_unix_socket:
    description: The server's socket.
    type: path
  login_host:
    description: The server's host, for a backup account that logs in over TCP.
    type: str
  login_port:
    description: The server's port with I(login_host).
    type: int
  progress_file:
    description: Where to write the progress (JSON, rewritten every second). A file in the temporary directory when omitted.
    type: path
  source_datadir:
    description: The source's datadir, to estimate the stream's size (percent and ETA in the progress).
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
notes:
  - Every run starts with a preflight; check mode runs only the preflight and reports what
    would run. It checks that mariadb-backup is installed and of the server's series and at
    least as new, that the destination answers over ssh, that the staging directory is
    absent, empty or an earlier reseed staging directory (and no running server's datadir),
    that the destination has mbstream (and zstd, socat when needed), and that its free space
    (plus what an old staging directory frees) is at least the source's data size plus 10%
    and 256 MB.
  - The preflight is the receiving command itself in a read-only mode, so an ssh key limited
    to I(receive_command) (C(command=...) in C(authorized_keys)) serves both.
  - The receiving side needs C(mbstream) (package mariadb-backup), C(zstd) unless
    I(compression=none), C(socat) with I(transport=tcp), and bash.
seealso:
  - module: reseed.mariadb.backup_prepare
author:
  - reseed.mariadb developers (@reseed)
'''

EXAMPLES = r'''
- name: Stream the primary's backup into the replica's staging directory
  reseed.mariadb.backup_stream:
    destination: 10.0.0.12
    staging_dir: /var/lib/mysql.reseed-staging
    ssh_key: /root/.ssh/reseed_transfer
  delegate_to: db1.example.com
  register: stream

- name: From a replica, at most 200 MB/s, without compression
  reseed.mariadb.backup_stream:
    destination: db3.example.com
    staging_dir: /var/lib/mysql.reseed-staging
    slave_info: true
    safe_slave_backup: true
    compression: none
    throttle_mbps: 200
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
receive_command:
  description: The command the destination runs to receive (for a forced-command ssh key).
  returned: always
  type: str
destination_facts:
  description: What the destination's preflight found (staging state, free bytes, programs present).
  returned: when the destination answered
  type: dict
  sample: {staging: absent, avail: '52000000000', have_mbstream: '1', have_zstd: '1'}
expected_bytes:
  description: The estimated size of the stream (the source's data files), for the free space check and the progress.
  returned: when the destination answered
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
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

import os
import re
import shlex
import shutil
import socket
import tempfile
import hashlib
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reseed.mariadb.plugins.module_utils.compression import (
    PROBE_BYTES, choose_zstd, measure_zstd, probe_link, read_sample)
from ansible_collections.reseed.mariadb.plugins.module_utils.connection import scrub
from ansible_collections.reseed.mariadb.plugins.module_utils.pipeline import (
    Pipeline, Stage, parse_facts)
from ansible_collections.reseed.mariadb.plugins.module_utils.backup_metadata import (
    RECEIVED_MARKER)

RECEIVING_MARKER = 'reseed_receiving'
EXTRACTED_MARKER = 'reseed_extracted'
SOCAT_BUFFER = 1 << 20
ACCEPT_TIMEOUT = 60
SPACE_FACTOR = 1.1
SPACE_MARGIN = 256 * 1000000
NOT_COUNTED = re.compile(r'(-bin\.\d+|-bin\.index|relay-bin.*|\.pid|\.sock)$')

# The receiving side, run by bash on the destination over ssh (the only remote command, so
# that a key restricted to it with command="..." serves both the preflight and the
# stream). Mode: $1 when run directly; under a forced command, what the client asked for.
RECEIVER = r'''set -o pipefail
d={staging}
mode=${{1:-receive}}
case "${{SSH_ORIGINAL_COMMAND:-}}" in
  *" reseed-receive preflight") mode=preflight;;
  *" reseed-receive seal") mode=seal;;
  *" reseed-receive probe") mode=probe;;
esac
if [ "$mode" = probe ]; then
  # compression=auto: how fast the transport carries bytes, timed here (no clock is shared
  # with the source); nothing is written. The first quarter warms the connection up (TCP
  # slow start) and is not counted: the rest is timed from its first byte to the end.
  {listen}{{ head -c {warmup} >/dev/null; s=$(date +%s%N); n=$(wc -c); e=$(date +%s%N)
    echo "probe_bytes=$n"; echo "probe_ns=$((e - s))"; }}
  exit $?
fi
real=$(readlink -m -- "$d")
state=absent
for p in $(pidof mariadbd mysqld 2>/dev/null); do
  case "$(readlink -f /proc/$p/cwd)/" in "$real/"*) state=datadir;; esac
done
if [ "$state" = datadir ]; then :
elif [ -e "$d" ] && [ ! -d "$d" ]; then state=foreign
elif [ -e "$d/{received}" ] || [ -e "$d/{receiving}" ] || [ -e "$d/{extracted}" ]; then
  state=reseed
elif [ -d "$d" ] && [ -z "$(ls -A -- "$d")" ]; then state=empty
elif [ -e "$d" ]; then state=foreign
fi
# Never beside or in the datadir (on a mount point the staging is inside it): in /run/lock.
lock="/run/lock/reseed${{real//\//_}}.lock"
if [ "$mode" = preflight ]; then
  a=$d; while [ ! -e "$a" ]; do a=$(dirname -- "$a"); done
  echo "staging=$state"
  echo "lock=$lock"
  [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null && echo "busy=1"
  echo "avail=$(df -P -B1 -- "$a" | tail -n 1 | tr -s ' ' | cut -d ' ' -f 4)"
  [ "$state" = reseed ] && echo "reclaim=$(du -sb -- "$d" | cut -f 1)"
  for t in mbstream zstd socat; do command -v "$t" >/dev/null && echo "have_$t=1"; done
  exit 0
fi
# One stream at a time into a staging directory: the receiver holds the lock until every
# program it started has ended (they inherit fd 9), and the seal takes it too, so a stream
# left running by a vanished controller never mixes with a new run's.
if [ "$mode" != preflight ]; then
  mkdir -p /run/lock && exec 9>>"$lock" || exit 24
  if ! flock -n 9; then
    echo "reseed $mode: another stream into $d is still running (it holds $lock): let it end, or stop it, then run again" >&2
    exit 23
  fi
fi
if [ "$mode" = seal ]; then
  if [ "$state" != reseed ] || [ ! -e "$d/{extracted}" ]; then
    echo "reseed seal: $d holds no extracted copy to seal" >&2; exit 22
  fi
  echo "mariadb-backup completed OK!" > "$d/{received}" && rm -f -- "$d/{extracted}"
  exit $?
fi
if [ "$state" = datadir ]; then
  echo "reseed receive: $d holds the datadir of a running server: refusing" >&2; exit 17
fi
if [ -e "$d" ]; then
  if [ "$state" = reseed ] || [ "$state" = empty ]; then
    rm -rf -- "$d" || exit 18
  else
    echo "reseed receive: $d exists and is not a reseed staging directory: refusing" >&2; exit 19
  fi
fi
umask 077
mkdir -p -- "$d" && : > "$d/{receiving}" || exit 20
{listen}{extract} || exit $?
if [ ! -e "$d/xtrabackup_info" ] && [ ! -e "$d/mariadb_backup_info" ]; then
  echo "reseed receive: the stream ended before xtrabackup_info: incomplete copy" >&2; exit 21
fi
rm -f -- "$d/{receiving}" && : > "$d/{extracted}"
'''


def receive_command(staging, compression, parallel, listen=None, mode='receive'):
    """The destination's side. listen: (bind address, port, source address) for tcp: a
    socat listener bound to that address that accepts the source's address only, once, and
    gives up when nothing connects within ACCEPT_TIMEOUT seconds."""
    extract = 'mbstream -x -p %d -C "$d"' % parallel
    if compression == 'auto':
        extract = 'zstd -d -q -c --pass-through | ' + extract
    elif compression != 'none':
        extract = 'zstd -d -q -c | ' + extract
    tcp = ''
    if listen:
        bind, port, source = listen
        tcp = ('socat -u -b %d TCP4-LISTEN:%d,bind=%s,range=%s/32,reuseaddr,accept-timeout=%d '
               'STDOUT | ' % (SOCAT_BUFFER, port, bind, source, ACCEPT_TIMEOUT))
    script = RECEIVER.format(staging=shlex.quote(staging), received=RECEIVED_MARKER,
                             receiving=RECEIVING_MARKER, extracted=EXTRACTED_MARKER,
                             listen=tcp, extract=extract, warmup=PROBE_BYTES // 4)
    return 'bash -c %s reseed-receive %s' % (shlex.quote(script), mode)


def preflight_problems(facts, needed_bytes, compression, transport):
    """What the destination's preflight answers (key=value lines, parsed) forbid."""
    problems = []
    state = facts.get('staging')
    if state == 'datadir':
        problems.append('the staging directory holds the datadir of a running server')
    elif state == 'foreign':
        problems.append('the staging directory exists and is not a reseed staging directory '
                        '(nor empty): choose another or empty it')
    elif state not in ('absent', 'empty', 'reseed'):
        problems.append('the destination\'s preflight gave no answer (%r)' % (facts,))
        return problems
    if facts.get('busy'):
        problems.append('another stream into the staging directory is still running on the '
                        'destination (it holds %s): let it end, or stop it, then run again'
                        % facts.get('lock'))
    tools = ['mbstream'] + (['zstd'] if compression != 'none' else []) + \
        (['socat'] if transport == 'tcp' else [])
    missing = [t for t in tools if not facts.get('have_' + t)]
    if missing:
        problems.append('missing on the destination: %s' % ', '.join(missing))
    try:
        free = int(facts.get('avail', '')) + int(facts.get('reclaim', 0) or 0)
    except ValueError:
        free = None
    if needed_bytes and free is not None and free < needed_bytes * SPACE_FACTOR + SPACE_MARGIN:
        problems.append('%.1f GB free for the copy, %.1f GB needed (the data plus %d%% and '
                        '%d MB)' % (free / 1e9, (needed_bytes * SPACE_FACTOR + SPACE_MARGIN) / 1e9,
                                    round(SPACE_FACTOR * 100 - 100), SPACE_MARGIN // 1000000))
    return problems


def route_source_address(destination):
    """The address this host uses to reach destination (no packet is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((destination, 9))
        return s.getsockname()[0]
    finally:
        s.close()


def option_value(value):
    """A value for a MariaDB option file, double-quoted and escaped."""
    return '"%s"' % (str(value).replace('\\', '\\\\').replace('"', '\\"')
                     .replace('\n', '\\n'))


def write_option_file(directory, params):
    lines = ['[client]']
    for option, key in (('login_user', 'user'), ('login_password', 'password'),
                        ('login_unix_socket', 'socket'), ('login_host', 'host'),
                        ('login_port', 'port')):
        if params.get(option) not in (None, ''):
            lines.append('%s=%s' % (key, option_value(params[option])))
    path = os.path.join(directory, 'backup.cnf')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def version_of(module, argv):
    rc, out, err = module.run_command(argv)
    found = re.search(r'(\d+)\.(\d+)\.(\d+)-MariaDB', out + err)
    return found.group(0) if found else None


def version_problem(backup_version, server_version):
    """mariadb-backup must be of the server's major series and at least as new."""
    if not backup_version or not server_version:
        return None
    b = tuple(int(x) for x in re.findall(r'\d+', backup_version)[:3])
    s = tuple(int(x) for x in re.findall(r'\d+', server_version)[:3])
    if b[:2] != s[:2] or b < s:
        return ('mariadb-backup %s cannot back up MariaDB %s: install mariadb-backup of the '
                'server\'s version' % (backup_version, server_version))
    return None


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


def choose_compression(module, datadir, link_mbps, probe):
    """compression=auto: zstd or none, from a sample of the data compressed with zstd -1 and
    the link's rate (link_mbps when given, else measured by sending part of the sample
    through the transport; probe: (probe argv, tcp sender argv), None in check mode)."""
    data = read_sample(datadir)
    sample = measure_zstd(module, data)
    auto = dict(sample or {})
    if not sample:
        auto.update(chosen='none', link='not measured: no data files to sample')
        return auto
    if link_mbps:
        auto.update(link_mb_s=round(link_mbps / 8.0, 1), link='given (link_mbps)')
    elif probe is None:
        auto.update(chosen=None, link='measured when the stream runs (not in check mode)')
        return auto
    else:
        started = time.time()
        rate, problem = probe_link(probe[0], probe[1], data[:PROBE_BYTES])
        auto.update(link_mb_s=rate, link='measured' if rate else 'not measured: %s' % problem,
                    probe_seconds=round(time.time() - started, 2))
    auto['chosen'] = 'zstd' if choose_zstd(sample, auto['link_mb_s']) else 'none'
    return auto


def staging_problem(staging):
    parts = [p for p in staging.split('/') if p]
    if not staging.startswith('/') or len(parts) < 2 or '..' in parts:
        return 'staging_dir must be an absolute path at least two levels deep, got %r' % staging
    return None


def main():
    module = AnsibleModule(argument_spec=dict(
        destination=dict(type='str', required=True),
        staging_dir=dict(type='path', required=True),
        transport=dict(type='str', default='ssh', choices=['ssh', 'tcp']),
        tcp_port=dict(type='int', default=4444),
        tcp_listen_address=dict(type='str'),
        tcp_source_address=dict(type='str'),
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
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_unix_socket=dict(type='path'),
        login_host=dict(type='str'),
        login_port=dict(type='int'),
        progress_file=dict(type='path'),
        heartbeat_file=dict(type='path'),
        heartbeat_timeout=dict(type='int', default=120),
        source_datadir=dict(type='path', default='/var/lib/mysql'),
    ), supports_check_mode=True)
    p = module.params
    secrets = [p['login_password']]
    fail = 'backup_stream to %s:%s: ' % (p['destination'], p['staging_dir'])

    problem = staging_problem(p['staging_dir'])
    if problem:
        module.fail_json(msg=fail + problem)
    mariabackup = module.get_bin_path('mariadb-backup') or module.get_bin_path('mariabackup')
    if not mariabackup:
        module.fail_json(msg=fail + 'mariadb-backup is not installed on the source (package '
                         'mariadb-backup, of the server\'s version)')
    needed = ['ssh'] + (['zstd'] if p['compression'] != 'none' else []) + \
        (['socat'] if p['transport'] == 'tcp' else [])
    missing = [n for n in needed if not module.get_bin_path(n)]
    if missing:
        module.fail_json(msg=fail + 'missing on the source: %s' % ', '.join(missing))
    backup_version = version_of(module, [mariabackup, '--version'])
    server_bin = module.get_bin_path('mariadbd') or module.get_bin_path('mysqld')
    server_version = version_of(module, [server_bin, '--version']) if server_bin else None
    problem = version_problem(backup_version, server_version)
    if problem:
        module.fail_json(msg=fail + problem)

    listen = None
    if p['transport'] == 'tcp':
        try:
            bind = p['tcp_listen_address'] or socket.gethostbyname(p['destination'])
            source = p['tcp_source_address'] or route_source_address(bind)
        except (OSError, socket.error) as e:
            module.fail_json(msg=fail + 'cannot resolve or route to the destination: %s' % e)
        listen = (bind, p['tcp_port'], source)
    receive = receive_command(p['staging_dir'], p['compression'], p['parallel'], listen)
    backup_argv = [mariabackup, None, '--backup', '--stream=xbstream',
                   '--parallel=%d' % p['parallel']]
    if p['slave_info']:
        backup_argv.append('--slave-info')
        if p['safe_slave_backup']:
            backup_argv.append('--safe-slave-backup')
    backup_argv += p['extra_args']
    ssh_argv = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new',
                '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3',
                '-p', str(p['ssh_port'])]
    if p['ssh_key']:
        ssh_argv += ['-i', p['ssh_key'], '-o', 'IdentitiesOnly=yes']
    for option in p['ssh_options']:
        ssh_argv += ['-o', option]
    ssh_argv += ['%s@%s' % (p['ssh_user'], p['destination']), receive]
    send_argv = None
    if listen:
        send_argv = ['socat', '-u', '-b', str(SOCAT_BUFFER), 'STDIN',
                     'TCP4:%s:%d,retry=%d,interval=0.2' % (listen[0], listen[1],
                                                           ACCEPT_TIMEOUT * 5)]
    digest = hashlib.sha1(('%s:%s' % (p['destination'], p['staging_dir'])).encode()).hexdigest()
    progress_file = p['progress_file'] or os.path.join(
        tempfile.gettempdir(), 'reseed-stream-%s.json' % digest[:12])
    common = dict(mariabackup_version=backup_version, server_version=server_version,
                  receive_command=receive, progress_file=progress_file)

    # Preflight, in check mode and before every stream: a full disk found after an hour of
    # streaming is an hour lost.
    expected = estimate_bytes(p['source_datadir'])
    preflight = ssh_argv[:-1] + ['-o', 'ConnectTimeout=10',
                                 receive_command(p['staging_dir'], p['compression'],
                                                 p['parallel'], listen, mode='preflight')]
    rc, out, err = module.run_command(preflight)
    if rc != 0:
        module.fail_json(msg=fail + 'the destination does not answer over ssh (exit code %d): %s'
                         % (rc, ' | '.join(err.strip().splitlines()[-3:])), **common)
    facts = parse_facts(out)
    common['destination_facts'] = facts
    common['expected_bytes'] = expected
    problems = preflight_problems(facts, expected, p['compression'], p['transport'])
    if problems:
        module.fail_json(msg=fail + '; '.join(problems), **common)

    zstd_argv = ['zstd', '-q', '-c', '-T0']
    compress_argv = None
    if p['compression'] == 'zstd':
        compress_argv = zstd_argv + ['-%d' % p['compression_level']]
    elif p['compression'] == 'auto':
        probe = None if module.check_mode else (
            ssh_argv[:-1] + [receive_command(p['staging_dir'], p['compression'], p['parallel'],
                                             listen, mode='probe')], send_argv)
        common['auto_compression'] = auto = choose_compression(
            module, p['source_datadir'], p['link_mbps'], probe)
        if auto['chosen'] == 'zstd':
            compress_argv = zstd_argv + ['-1']  # the level the sample was measured at
    commands = [' '.join(a for a in backup_argv if a), ' '.join(compress_argv or []),
                ' '.join(send_argv or ssh_argv[:-1] + ['<receive_command>'])]
    if listen:
        commands.append(' '.join(ssh_argv[:-1]) + ' <receive_command> (beside the stream)')
    common['commands'] = [c for c in commands if c]
    if module.check_mode:
        module.exit_json(changed=True, msg='would stream a backup (about %.2f GB) to %s:%s'
                         % ((expected or 0) / 1e9, p['destination'], p['staging_dir']),
                         **common)

    workdir = tempfile.mkdtemp(prefix='reseed-stream-')
    try:
        option_file = write_option_file(workdir, p)
        backup_argv[1] = '--defaults-extra-file=' + option_file
        backup_argv.append('--target-dir=' + os.path.join(workdir, 'target'))
        stages = [Stage('mariadb-backup on the source', backup_argv, ok_text='completed OK!')]
        if compress_argv:
            stages.append(Stage('zstd on the source', compress_argv))
        side = []
        if listen:
            stages.append(Stage('socat sending to %s:%d' % listen[:2], send_argv))
            side.append(Stage('receiver on %s (socat listening on %s:%d | mbstream -x into %s, '
                              'over ssh)' % (p['destination'], listen[0], listen[1],
                                             p['staging_dir']), ssh_argv))
        else:
            stages.append(Stage('ssh to %s (receiving: mbstream -x into %s)'
                                % (p['destination'], p['staging_dir']), ssh_argv))
        counters = {'read': 0, 'sent': 1 if compress_argv else 0}
        pipeline = Pipeline(stages, counters,
                            rate_limits={0: p['throttle_mbps'] * 1000000},
                            progress_file=progress_file, expected_bytes=expected, side=side,
                            watchdog=heartbeat_watchdog(p['heartbeat_file'],
                                                        p['heartbeat_timeout']))
        blamed = pipeline.run()
    except (OSError, IOError) as e:
        module.fail_json(msg=fail + scrub(str(e), secrets), **common)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    counts = pipeline.counts()
    seconds = round(pipeline.seconds, 2)
    result = dict(common, bytes_read=counts['read'], bytes_sent=counts['sent'],
                  seconds=seconds,
                  ratio=round(counts['read'] / float(counts['sent']), 2) if counts['sent'] else None,
                  rate_mb_s=round(counts['read'] / pipeline.seconds / 1e6, 1) if seconds else None)
    if pipeline.aborted:
        module.fail_json(msg=fail + pipeline.aborted + '; the copy is not sealed (no %s) and '
                         'will not be prepared' % RECEIVED_MARKER, **result)
    if blamed is not None:
        text = blamed.describe(lambda t: scrub(t, secrets))
        if 'Was only able to copy log' in blamed.stderr_tail:
            text += ' (the redo log wrapped during the backup: raise innodb_log_file_size)'
        module.fail_json(msg=fail + text + '; the copy is not sealed (no %s) and will not be '
                         'prepared' % RECEIVED_MARKER, **result)
    seal = ssh_argv[:-1] + [receive_command(p['staging_dir'], p['compression'], p['parallel'],
                                            listen, mode='seal')]
    rc, out, err = module.run_command(seal)
    if rc != 0:
        module.fail_json(msg=fail + 'the stream succeeded but sealing the copy (writing %s) '
                         'failed (exit code %d): %s' % (RECEIVED_MARKER, rc, ' | '.join(
                             err.strip().splitlines()[-3:])), **result)
    module.exit_json(changed=True, msg='streamed %.2f GB (%.2f GB sent) in %.1f s'
                     % (counts['read'] / 1e9, counts['sent'] / 1e9, seconds), **result)


if __name__ == '__main__':
    main()
