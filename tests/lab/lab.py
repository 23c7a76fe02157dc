# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab: MariaDB hosts on one machine, each in its own namespaces, reached over ssh.

A lab host is
- a network namespace ``rsd-<name>`` on the bridge ``rsdlab0`` with its own address in
  10.213.47.0/24 (the controller is 10.213.47.1);
- its own mount, pid and hostname (uts) namespaces: ``/var/lib`` is an overlay whose upper
  layer is the host's own (so the datadir and its parent, where staging copies go, are
  private), and ``/etc/mysql``, ``/etc/ssh``, ``/var/log/mysql``, ``/root/.ssh``, ``/tmp``,
  ``/run``, ``/etc/default`` (its ``mariadb`` sets the init script's start timeout to 15 s),
  ``/etc/hosts`` and ``/etc/hostname`` are the host's own; the lab's own folder
  is hidden;
- sshd as the pid namespace's first process: killing it (by pid) ends every process of the
  host, MariaDB included;
- MariaDB 10.11 from Debian's packages, started with ``service mariadb start``, configured
  with its own server_id, binlog, ROW format, log_slave_updates and gtid_strict_mode.

A hardened (production-shaped) host also has a root of its own (a tmpfs of binds of the
machine's top-level entries, so that ``/data`` exists in it alone), private account files
with an unprivileged ``ops`` user that Ansible logs in as and that becomes root with sudo,
an sshd that refuses root, its datadir on its own mount at ``/data/mysql`` and its binlogs
and relay logs in ``/var/log/mysql``.

A host of another Debian release (``release='trixie'``: MariaDB 11.8, Python 3.13) has a
root of its own: an overlay of that release's cached tree (tests/lab/release.py, built when
missing) with the host's own upper layer, the same private mounts, and the tree's sshd and
MariaDB; a template datadir per release is made by the tree's own mariadb-install-db.

A systemd host (``systemd=True``, combinable with ``hardened=True``) boots systemd as a
production host does: its root is an overlay of a cached tree with systemd
(``release.py build bookworm --flavour systemd``) with the host's own upper layer, booted by
``systemd-nspawn -b`` in the host's network namespace, in cgroups of its own; sshd and MariaDB
are Debian's own ``ssh.service`` and ``mariadb.service`` (units as packaged, sandbox kept),
the host's private files bound in by nspawn. Its first process (``init.pid``) is the
container's systemd; it is stopped with SIGRTMIN+4 (a clean poweroff), nspawn killed if it
has not ended in POWEROFF_TIMEOUT seconds. No machined or systemd on the machine is needed.

Everything the lab makes lives under ``$RESEED_LAB_ROOT`` (default ``/srv/reseed-lab``).
Creating and destroying are idempotent; destroying stops a host by its first process's pid
and removes its namespace, veth, mounts (they die with the namespace) and files.

Use it from Python (``Lab().create('primary')``) or the command line (``lab.py --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import grp
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

import release as releases

LAB_ROOT = os.environ.get('RESEED_LAB_ROOT', '/srv/reseed-lab')
BRIDGE = 'rsdlab0'
NET = '10.213.47'
CONTROLLER_IP = NET + '.1'
PREFIX = 24
FIRST_HOST_OCTET = 10
NETNS_PREFIX = 'rsd-'
ADMIN_USER = 'lab_admin'
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
PRIVATE_MOUNTS = (  # (host dir entry, path inside the host)
    ('etc-mysql', '/etc/mysql'),
    ('etc-default', '/etc/default'),
    ('etc-ssh', '/etc/ssh'),
    ('log-mysql', '/var/log/mysql'),
    ('root-ssh', '/root/.ssh'),
    ('tmp', '/tmp'),
)
# A hardened host's own users (copies of the machine's account files with OPS_USER added),
# its sudo rules and homes.
ACCOUNT_FILES = ('passwd', 'group', 'shadow', 'gshadow')
HARDENED_MOUNTS = tuple(('etc-' + f, '/etc/' + f) for f in ACCOUNT_FILES) + (
    ('etc-sudoers.d', '/etc/sudoers.d'),
    ('home', '/home'),
)
# Seconds Debian's init script waits for a starting server (its default is 30).
STARTUP_TIMEOUT = 15
OPS_USER = 'ops'
FIRST_OPS_ID = 2001  # the first uid/gid tried for OPS_USER: one the machine does not use
# Where MariaDB keeps its files: plain hosts as Debian installs it, hardened hosts as many
# production hosts do (the datadir on a volume of its own, the logs with the other logs).
LAYOUTS = {
    False: dict(datadir='/var/lib/mysql', log_bin='mysql-bin', relay_log='relay-bin'),
    True: dict(datadir='/data/mysql', log_bin='/var/log/mysql/mysql-bin',
               relay_log='/var/log/mysql/relay-bin'),
}

# datadir_mount='bind': the datadir a bind mount of a directory of the same filesystem as
# its parent (st_dev equal to its parent's, yet a mount point: it cannot be renamed, and a
# rename into it from beside it fails with EXDEV), as a Docker volume or a hand-made
# `mount --bind /srv/mysql /data/mysql` on one disk. Plain and release hosts: the volume
# /var/lib/mysql-volume of the /var/lib overlay (the host's upper layer) bound onto
# /var/lib/mysql. Hardened hosts: /data a bind of the host folder's `data` (the lab's
# filesystem; a hardened root is a small tmpfs) and /data/mysql a bind of its
# volumes/mysql. `source`: where the datadir's files are made (hardened: in the host folder;
# else in the overlay's upper layer); `sh`: the host's first process mounts it ({at}: a
# release host's new root).
DATADIR_BIND = {
    False: dict(source='/var/lib/mysql-volume',
                sh='mkdir -p {at}/var/lib/mysql && '
                   'mount --bind {at}/var/lib/mysql-volume {at}/var/lib/mysql'),
    True: dict(source='data/volumes/mysql',
               sh='mkdir -p /data && mount --bind $H/data /data && mkdir -p /data/mysql && '
                  'mount --bind /data/volumes/mysql /data/mysql'),
}

SERVER_CNF = """\
# Written by the reseed.mariadb lab for host {name}.
[mariadbd]
server_id                = {server_id}
bind_address             = 0.0.0.0
report_host              = {name}
datadir                  = {datadir}
log_bin                  = {log_bin}
relay_log                = {relay_log}
binlog_format            = ROW
log_slave_updates        = ON
gtid_strict_mode         = ON
log_error                = /var/log/mysql/error.log
innodb_buffer_pool_size  = 128M
max_connections          = 200

[mysqld_safe]
# Debian sends the error log to syslog, which a lab host has not: keep it in a file.
skip_syslog
log_error                = /var/log/mysql/error.log
"""

SSHD_CONFIG = """\
# Written by the reseed.mariadb lab for host {name}.
ListenAddress {ip}
Port 22
HostKey /etc/ssh/lab_host_ed25519_key
PermitRootLogin {permit_root_login}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
AcceptEnv LANG LC_*
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
Subsystem sftp /usr/lib/openssh/sftp-server
"""

# A hardened host's root: the machine's tree shares its root directory, so a directory made
# at / (such as /data) would appear on the machine. A tmpfs holding binds of the machine's
# top-level entries becomes the host's root instead (pivot_root: nsenter lands in it too).
# /data is a directory of it, and the datadir /data/mysql a mount of another filesystem, as
# a volume mounted on a production host (stat sees another device, findmnt a mount point).
NEW_ROOT_SH = """\
R=$H/root
mount -t tmpfs -o mode=0755,size=64m tmpfs $R
for e in /* /.[!.]*; do
  if [ -L "$e" ]; then cp -P "$e" "$R$e"
  elif [ -d "$e" ]; then mkdir "$R$e" && mount --rbind "$e" "$R$e"
  elif [ -e "$e" ]; then touch "$R$e" && mount --bind "$e" "$R$e"
  fi
done
# The bind of the machine's tree caught the new root too: drop that copy.
umount -l "$R$R"
mkdir $R/.old-root
cd $R
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root
cd /
"""

# The host's first process: private mounts, then sshd in the foreground as pid 1.
INIT_SH = """\
#!/bin/sh
# The first process of lab host {name}; becomes sshd.
set -eu
H={hostdir}
hostname {name}
{new_root}
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=$H/varlib/upper,workdir=$H/varlib/work /var/lib
{private_mounts}
{datadir_mount}
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
install -d -m 0755 /run/sshd
install -d -m 0755 -o mysql -g root /run/mysqld
mount --bind $H/hosts /etc/hosts
mount --bind $H/hostname /etc/hostname
mount -t tmpfs -o mode=0700,size=1m tmpfs {lab_root}
ip link set lo up
echo ready > /run/lab-ready
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
"""

# The first process of a lab host of another Debian release: its root is an overlay of the
# release's cached tree (tests/lab/release.py) with the host's own upper layer. The kernel's
# file systems and the host's private mounts are put into that root, which then becomes the
# host's root (pivot_root: nsenter lands in it too); sshd, Python and MariaDB are the tree's.
RELEASE_INIT_SH = """\
#!/bin/sh
# The first process of lab host {name} (Debian {release}); becomes the tree's sshd.
set -eu
H={hostdir}
R=$H/root
hostname {name}
mount -t overlay overlay -o lowerdir={tree},upperdir=$H/rootfs/upper,workdir=$H/rootfs/work $R
mount -t proc proc $R/proc
mount --rbind /dev $R/dev
mount --rbind /sys $R/sys
{private_mounts}
{datadir_mount}
mount -t tmpfs -o mode=0755,size=64m tmpfs $R/run
install -d -m 0755 $R/run/sshd
install -d -m 0755 -o {mysql_uid} -g 0 $R/run/mysqld
mount --bind $H/hosts $R/etc/hosts
mount --bind $H/hostname $R/etc/hostname
ip link set lo up
echo ready > $R/run/lab-ready
mkdir -p $R/.old-root
cd $R
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root
cd /
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
"""

# Firewall of a lab host, in its own network namespace: incoming packets to the ports in the
# sets are dropped, unless they come over loopback (as a firewalled machine reaches itself).
FIREWALL_TABLE = ('inet', 'reseed_lab')
FIREWALL_NFT = """\
table inet reseed_lab {
  set tcp_blocked { type inet_service; }
  set udp_blocked { type inet_service; }
  chain input {
    type filter hook input priority 0; policy accept;
    iifname != "lo" tcp dport @tcp_blocked drop
    iifname != "lo" udp dport @udp_blocked drop
  }
}
"""

SSHD_LISTENING = 'Server listening on'  # what sshd -e logs once it listens (again)

# systemd hosts. The flavour of release.py's tree that boots; the cgroup hierarchies each
# nspawn is placed in first (this machine's pid 1 is no systemd that would give it a scope:
# a cgroup v1 "hybrid" layout, name=systemd plus the unified v2 tree when mounted); the
# seconds a boot (to mariadb.service active) and a poweroff may take.
SYSTEMD_FLAVOUR = 'systemd'
CGROUP_ROOT = '/sys/fs/cgroup'
CGROUP_HIERARCHIES = ('systemd', 'unified')
BOOT_TIMEOUT = 90
POWEROFF_TIMEOUT = 20
# A systemd host's first process: a private mount namespace (unshare) holds the overlay of
# the tree, so that it goes away with nspawn; the process moves itself into its cgroups,
# then becomes systemd-nspawn, which boots the tree's systemd in the host's network
# namespace. nspawn's own defaults that would copy the machine's files in are off
# (resolv.conf, timezone, journal link).
NSPAWN_SH = """\
#!/bin/sh
# The first process of lab host {name} (systemd); becomes systemd-nspawn.
set -eu
H={hostdir}
for c in {cgroups}; do echo $$ > "$c/cgroup.procs"; done
mount -t overlay overlay -o lowerdir={tree},upperdir=$H/rootfs/upper,workdir=$H/rootfs/work $H/root
exec systemd-nspawn --quiet --boot --directory=$H/root --machine={name} --register=no \\
  --keep-unit --network-namespace-path={netns_path} --console=read-only \\
  --link-journal=no --resolv-conf=off --timezone=off \\
{binds}
"""


class LabError(Exception):
    pass


def sh(cmd, check=True, **kw):
    """Run a command of the controller (argv list), return CompletedProcess."""
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.PIPE)
    kw.setdefault('text', True)
    proc = subprocess.run(cmd, check=False, **kw)
    if check and proc.returncode != 0:
        raise LabError('%s exited %d: %s' % (
            ' '.join(cmd), proc.returncode, (proc.stderr or '').strip()[-2000:]))
    return proc


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_namespace(pid):
    """The pid namespace of a process of the controller's /proc (a lab host's processes are
    in their host's), or None once it has ended."""
    try:
        return os.readlink('/proc/%s/ns/pid' % pid)
    except OSError:
        return None


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        # A /proc file whose process ended between the open and the read: gone as well.
        return default


def write(path, text, mode=None):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_in_place(path, text):
    """Rewrite a file keeping its inode: it is bind-mounted into running hosts."""
    with open(path, 'r+' if os.path.exists(path) else 'w') as f:
        f.seek(0)
        f.write(text)
        f.truncate()


class Host(object):
    """One lab host, seen from the controller."""

    # The server sql() and slave_status() talk to: the host's default one, or (at_socket)
    # another server on the same host, e.g. an instance mariadb@NAME.
    socket = None

    def __init__(self, lab, name):
        self.lab = lab
        self.name = name
        self.dir = os.path.join(lab.root, 'hosts', name)
        self.netns = NETNS_PREFIX + name

    def at_socket(self, socket):
        """This host, its sql() and slave_status() on the server listening at `socket`."""
        other = Host(self.lab, self.name)
        other.socket = socket
        return other

    def _client(self, *args):
        return ['mariadb'] + (['-S', self.socket] if self.socket else []) + list(args)

    def __repr__(self):
        return 'Host(%s, %s)' % (self.name, self.ip)

    @property
    def ip(self):
        return read(os.path.join(self.dir, 'ip'))

    @property
    def octet(self):
        return int(self.ip.rsplit('.', 1)[1])

    @property
    def server_id(self):
        return self.octet

    @property
    def veth(self):
        return 'rsv%d' % self.octet

    @property
    def init_pid(self):
        """Pid (in the controller's pid namespace) of the host's first process, or None."""
        pid = read(os.path.join(self.dir, 'init.pid'))
        if not pid:
            return None
        pid = int(pid)
        # The pid must still be this host's init: same start time as when we recorded it.
        if pid_alive(pid) and read(os.path.join(self.dir, 'init.start')) == proc_start_time(pid):
            return pid
        return None

    @property
    def datadir_mount(self):
        """False (a plain directory), True (its own mount, another filesystem than its
        parent's) or 'bind' (a bind mount of a directory of its parent's filesystem)."""
        mode = read(os.path.join(self.dir, 'datadir-mount'))
        return False if mode is None else ('bind' if mode.strip() == 'bind' else True)

    @property
    def hardened(self):
        return os.path.exists(os.path.join(self.dir, 'hardened'))

    @property
    def release(self):
        """The Debian release of the host's own root (e.g. 'trixie'), or None: the machine's."""
        return read(os.path.join(self.dir, 'release')) or None

    @property
    def systemd(self):
        """True for a host that boots systemd (systemd-nspawn): its services are units."""
        return os.path.exists(os.path.join(self.dir, 'systemd'))

    @property
    def nspawn_pid(self):
        """Pid of a systemd host's systemd-nspawn (still the one recorded), or None."""
        pid = read(os.path.join(self.dir, 'nspawn.pid'))
        if pid and pid_alive(int(pid)) and \
                read(os.path.join(self.dir, 'nspawn.start')) == proc_start_time(int(pid)):
            return int(pid)
        return None

    @property
    def cgroups(self):
        """The cgroup directories of a systemd host's nspawn (one per hierarchy the machine
        has mounted)."""
        return [os.path.join(CGROUP_ROOT, h, self.netns) for h in CGROUP_HIERARCHIES
                if os.path.exists(os.path.join(CGROUP_ROOT, h, 'cgroup.procs'))]

    @property
    def datadir(self):
        return LAYOUTS[self.hardened]['datadir']

    @property
    def login_user(self):
        """The user Ansible and ssh_argv log in as: OPS_USER (with sudo) on hardened hosts."""
        return OPS_USER if self.hardened else 'root'

    @property
    def ops_password(self):
        """OPS_USER's password (hardened hosts): what sudo asks for once it must."""
        return read(os.path.join(self.dir, 'ops-password'))

    def running(self):
        return self.init_pid is not None

    # ---- running things inside the host -------------------------------------------------
    def command(self, argv):
        """argv that runs argv inside the host's namespaces with a clean system environment."""
        pid = self.init_pid
        if pid is None:
            raise LabError('lab host %s is not running' % self.name)
        # The working directory is set by env, inside: nsenter opens its --wd before entering,
        # which would be the machine's root, not a hardened host's own. A systemd host's
        # container has an IPC namespace of its own too (nspawn makes one).
        ipc = ['--ipc'] if self.systemd else []
        enter = ['nsenter', '--target', str(pid), '--mount', '--uts', '--net', '--pid'] + ipc
        return enter + ['--', 'env', '-i', '--chdir=/', 'PATH=' + SYSTEM_PATH, 'HOME=/root',
                        'LANG=C.UTF-8', 'USER=root', 'LOGNAME=root'] + list(argv)

    def run(self, cmd, check=True, input=None, timeout=300, **kw):
        """Run cmd in the host (a string goes to /bin/sh -c). Returns CompletedProcess."""
        argv = ['/bin/sh', '-c', cmd] if isinstance(cmd, str) else list(cmd)
        proc = subprocess.run(self.command(argv), input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              check=False, **kw)
        if check and proc.returncode != 0:
            raise LabError('on lab host %s, %r exited %d: %s' % (
                self.name, cmd, proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))
        return proc

    def popen(self, cmd, **kw):
        argv = ['/bin/sh', '-c', cmd] if isinstance(cmd, str) else list(cmd)
        return subprocess.Popen(self.command(argv), **kw)

    def sql(self, query, database=None, check=True, timeout=120):
        """Run SQL as root over the host's unix socket; return rows as lists of strings
        (None for NULL). Several statements may be given; rows of the last one with a
        result set are returned."""
        argv = self._client('--batch', '--skip-column-names', '--raw')
        if database:
            argv.append(database)
        proc = self.run(argv, input=query, check=check, timeout=timeout)
        if proc.returncode != 0:
            return proc
        rows = []
        for line in proc.stdout.splitlines():
            rows.append([None if v == 'NULL' else v for v in line.split('\t')])
        return rows

    def sql_value(self, query, database=None):
        rows = self.sql(query, database)
        return rows[0][0] if rows else None

    def slave_status(self, connection=''):
        """SHOW SLAVE STATUS as a dict (empty when not configured)."""
        argv = self._client('--batch', '--raw', '-e',
                            "SHOW SLAVE '%s' STATUS" % connection.replace("'", "''"))
        out = self.run(argv).stdout.splitlines()
        if len(out) < 2:
            return {}
        keys = out[0].split('\t')
        values = [None if v == 'NULL' else v for v in out[1].split('\t')]
        return dict(zip(keys, values))

    def service(self, action, check=True):
        """`service mariadb ACTION`, or on a systemd host `systemctl ACTION mariadb`."""
        if self.systemd:
            return self.run(['systemctl', action, 'mariadb'], check=check, timeout=180)
        return self.run(['service', 'mariadb', action], check=check, timeout=180)

    UNIT_PROPERTIES = ('ActiveState', 'SubState', 'MainPID', 'NRestarts', 'UnitFileState')

    def unit_state(self, unit='mariadb', properties=UNIT_PROPERTIES):
        """A systemd host's `systemctl show UNIT -p ...` as a dict."""
        out = self.run(['systemctl', 'show', unit, '-p', ','.join(properties)]).stdout
        return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)

    def server_log(self):
        """The server's error log: its log_error file, or on a systemd host (no log_error,
        as Debian sets a server up under systemd) the messages of its unit's journal."""
        if self.systemd:
            return self.run(['journalctl', '--no-pager', '-q', '-o', 'cat', '-u', 'mariadb'],
                            check=False).stdout
        return self.run(['cat', '/var/log/mysql/error.log'], check=False).stdout

    def sshd_log(self):
        """What the host's sshd logged, its logins among it: the output of the host's first
        process (init.log: a hand-started host's sshd logs to it), or on a systemd host the
        journal's messages of ssh.service's sshd itself (its console, init.log, has none of
        them; the sessions' programs log under the same unit): as molecule's labstate reads
        it."""
        if self.systemd:
            return self.run(['journalctl', '--no-pager', '-q', '-o', 'cat', '-u', 'ssh',
                             '_COMM=sshd'], check=False).stdout
        return read(os.path.join(self.dir, 'init.log'), '')

    def journal(self, unit='mariadb', lines=50):
        """The last lines of a systemd host's journal of UNIT (what a failure leaves)."""
        return self.run(['journalctl', '--no-pager', '-q', '-u', unit, '-n', str(lines)],
                        check=False).stdout

    # What Debian's /etc/mysql/debian-start runs in the background after each start of the
    # server by its init script (it re-creates the sys schema's views, writes
    # mysql_upgrade_info): a look at the datadir during it races with those files.
    START_SCRIPTS = 'debian-start|mariadb-upgrade|mysql_upgrade|mariadb-check|mysqlcheck'

    def wait_start_scripts(self, timeout=120):
        """Wait until the server's start scripts of this host have ended."""
        deadline = time.time() + timeout
        while self.run(['pgrep', '-f', self.START_SCRIPTS], check=False).returncode == 0:
            if time.time() > deadline:
                raise LabError('on lab host %s, the start scripts (%s) still run after %ss'
                               % (self.name, self.START_SCRIPTS, timeout))
            time.sleep(0.3)

    def shape(self, rate=None):
        """Limit the host's link to `rate` (tc syntax: '1gbit', '100mbit') both ways, or
        lift the limit with None. Token bucket on each end of the host's veth."""
        for argv in ([['tc', 'qdisc', 'del', 'dev', self.veth, 'root']],
                     [self.command(['tc', 'qdisc', 'del', 'dev', 'eth0', 'root'])]):
            subprocess.run(argv[0], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        if rate is None:
            return
        tbf = ['qdisc', 'replace', 'dev', '{dev}', 'root', 'tbf', 'rate', rate,
               'burst', '1mb', 'latency', '50ms']
        sh(['tc'] + [a.format(dev=self.veth) for a in tbf])
        sh(self.command(['tc'] + [a.format(dev='eth0') for a in tbf]))

    def net_run(self, argv, check=True, input=None):
        """Run the machine's argv in this host's network namespace only: the firewall is the
        namespace's, and a host's own root (a systemd host's tree) need not have nft."""
        proc = subprocess.run(['nsenter', '--target', str(self.init_pid), '--net', '--'] + argv,
                              input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, check=False)
        if check and proc.returncode != 0:
            raise LabError('on lab host %s, %r exited %d: %s' % (
                self.name, argv, proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))
        return proc

    def block_port(self, port, proto='tcp'):
        """Drop packets coming to `port` from other hosts, in this host's own network
        namespace (the machine's rules are never touched)."""
        if self.net_run(['nft', 'list', 'table'] + list(FIREWALL_TABLE), check=False).returncode:
            self.net_run(['nft', '-f', '-'], input=FIREWALL_NFT)
        self.net_run(self._firewall_element('add', port, proto))

    def unblock_port(self, port, proto='tcp'):
        """Let `port` through again (nothing to do when it was not blocked)."""
        proc = self.net_run(self._firewall_element('delete', port, proto), check=False)
        # "No such file or directory": no such table, set element, or both.
        if proc.returncode and 'No such file or directory' not in proc.stderr:
            raise LabError('on lab host %s, cannot unblock %s/%s: %s' % (
                self.name, port, proto, proc.stderr.strip()))

    @staticmethod
    def _firewall_element(action, port, proto):
        if proto not in ('tcp', 'udp'):
            raise LabError('block_port: proto is tcp or udp, not %r' % (proto,))
        return (['nft', action, 'element'] + list(FIREWALL_TABLE)
                + ['%s_blocked' % proto, '{ %d }' % int(port)])

    def set_sudo_password_required(self, required):
        """Hardened hosts: sudo asks OPS_USER for its password (`ops_password`), or not."""
        if not self.hardened:
            raise LabError('lab host %s is not hardened: root needs no sudo' % self.name)
        write_sudoers(self.dir, required)
        # A ticket of an earlier authentication would let `sudo -n` through without asking.
        self.run(['rm', '-rf', '/run/sudo/ts/' + OPS_USER])

    def set_sshd_option(self, option, value):
        """Set one sshd_config option (e.g. AllowTcpForwarding no) and reload sshd."""
        path = os.path.join(self.dir, 'etc-ssh', 'sshd_config')
        lines = read(path).splitlines()
        # sshd takes the first value it reads: replace the option where it is.
        at = [i for i, line in enumerate(lines)
              if line.lower().split()[:1] == [option.lower()]]
        for i in at:
            lines[i] = '%s %s' % (option, value)
        if not at:
            lines.append('%s %s' % (option, value))
        write(path + '.next', '\n'.join(lines) + '\n')
        # sshd re-reads its configuration when it re-executes itself on SIGHUP, and exits on
        # one it refuses, which would end the host: check the new one first.
        check = self.run(['sshd', '-t', '-f', '/etc/ssh/sshd_config.next'], check=False)
        if check.returncode:
            os.unlink(path + '.next')
            raise LabError('sshd of lab host %s refuses %s %s: %s' % (
                self.name, option, value, check.stderr.strip()))
        os.replace(path + '.next', path)
        self.reload_sshd()

    def reload_sshd(self, timeout=30):
        """SIGHUP to sshd, the host's first process: it re-executes itself (same pid, so
        the host lives on) and listens again with its configuration read anew."""
        if self.systemd:  # ssh.service checks the configuration, then sends sshd SIGHUP
            self.run(['systemctl', 'reload', 'ssh'])
            time.sleep(0.2)
            self.lab.wait_ssh(self)
            return
        log = os.path.join(self.dir, 'init.log')
        before = read(log, '').count(SSHD_LISTENING)
        os.kill(self.init_pid, signal.SIGHUP)
        deadline = time.time() + timeout
        while read(log, '').count(SSHD_LISTENING) <= before:
            if time.time() > deadline or not self.running():
                raise LabError('sshd of lab host %s did not come back after SIGHUP: %s' % (
                    self.name, read(log, '')[-2000:]))
            time.sleep(0.05)
        self.lab.wait_ssh(self)

    def connect(self, **kw):
        """A PyMySQL connection from the controller over TCP as the lab's admin account."""
        import pymysql
        return pymysql.connect(host=self.ip, port=3306, user=ADMIN_USER,
                               password=self.lab.admin_password, autocommit=True,
                               connect_timeout=10, **kw)

    def ssh_argv(self, command=None, user=None):
        """ssh to the host with the lab key, as `user` (default: login_user)."""
        argv = ['ssh', '-i', self.lab.key, '-o', 'StrictHostKeyChecking=no', '-o',
                'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o',
                'BatchMode=yes', '%s@%s' % (user or self.login_user, self.ip)]
        if command:
            argv.append(command)
        return argv


def write_sudoers(hostdir, password_required):
    rule = 'ALL' if password_required else 'NOPASSWD: ALL'
    # sudo skips files with a dot in their name (write's temporary file) and wants 0440.
    write(os.path.join(hostdir, 'etc-sudoers.d', 'lab-' + OPS_USER),
          '# Written by the reseed.mariadb lab.\n%s ALL=(ALL:ALL) %s\n' % (OPS_USER, rule),
          0o440)


def free_ops_id():
    """A uid and gid (the same number) that the machine's users and groups do not use."""
    used = set(u.pw_uid for u in pwd.getpwall()) | set(g.gr_gid for g in grp.getgrall())
    return next(n for n in itertools.count(FIRST_OPS_ID) if n not in used)


def tree_ids(tree):
    """(uid of mysql, gid of mysql, gid of adm) in a release tree's own account files: they
    differ from the machine's (trixie: 100/101, this Debian 12: 102/105)."""
    def field(path, name, index):
        with open(os.path.join(tree, path)) as f:
            for line in f:
                parts = line.split(':')
                if parts[0] == name:
                    return int(parts[index])
        raise LabError('no %s in %s/%s' % (name, tree, path))
    return (field('etc/passwd', 'mysql', 2), field('etc/group', 'mysql', 2),
            field('etc/group', 'adm', 2))


def pid_running(pid):
    """The pid is a process that has not ended (a zombie, not yet reaped, has)."""
    stat = read('/proc/%d/stat' % pid)
    return bool(stat) and stat.rsplit(')', 1)[1].split()[0] != 'Z'


def container_init(cgroups):
    """Pid of a container's pid 1 (its NSpid ends in 1) among the processes of a cgroup
    tree (the first hierarchy of `cgroups`), or None."""
    for top in cgroups[:1]:
        for path, _dirs, files in os.walk(top):
            if 'cgroup.procs' not in files:
                continue
            for pid in read(os.path.join(path, 'cgroup.procs'), '').split():
                for line in (read('/proc/%s/status' % pid, '') or '').splitlines():
                    if line.startswith('NSpid:') and len(line.split()) > 2 \
                            and line.split()[-1] == '1':
                        return int(pid)
    return None


def remove_cgroup(top, timeout=10):
    """Remove a cgroup directory and its children, deepest first, once their processes are
    gone (rmdir fails with EBUSY while one is left)."""
    deadline = time.time() + timeout
    while os.path.isdir(top):
        try:
            for path, _dirs, _files in os.walk(top, topdown=False):
                os.rmdir(path)
        except OSError as e:
            if time.time() > deadline:
                raise LabError('cannot remove the cgroup %s: %s' % (top, e))
            time.sleep(0.1)


def proc_start_time(pid):
    stat = read('/proc/%d/stat' % pid)
    if not stat:
        return None
    return stat.rsplit(')', 1)[1].split()[19]


class Lab(object):

    def __init__(self, root=LAB_ROOT):
        self.root = root
        self.key = os.path.join(root, 'ssh', 'id_ed25519')
        self.template = os.path.join(root, 'template', 'datadir')

    def template_of(self, release=None):
        """The template datadir of hosts of `release` (None: the machine's MariaDB)."""
        return self.template if release is None else self.template + '-' + release

    @property
    def admin_password(self):
        return read(os.path.join(self.root, 'admin-password'))

    @contextlib.contextmanager
    def lock(self):
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, 'lock'), 'w') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def host(self, name):
        return Host(self, name)

    def next_number(self):
        """A number no other caller gets: names hosts of concurrent test runs apart."""
        with self.lock():
            path = os.path.join(self.root, 'counter')
            number = int(read(path, '0')) + 1
            write(path, '%d\n' % number)
        return number

    def hosts(self):
        base = os.path.join(self.root, 'hosts')
        names = sorted(os.listdir(base)) if os.path.isdir(base) else []
        return [Host(self, n) for n in names if os.path.exists(os.path.join(base, n, 'ip'))]

    # ---- shared pieces ------------------------------------------------------------------
    def ensure_common(self):
        """Bridge, controller key, admin password and the template datadir (once)."""
        os.makedirs(os.path.join(self.root, 'hosts'), exist_ok=True)
        os.chmod(self.root, 0o711)  # mysql must reach the template datadir
        if sh(['ip', 'link', 'show', BRIDGE], check=False).returncode != 0:
            sh(['ip', 'link', 'add', BRIDGE, 'type', 'bridge'])
        addrs = sh(['ip', '-4', '-o', 'addr', 'show', 'dev', BRIDGE]).stdout
        if CONTROLLER_IP + '/' not in addrs:
            sh(['ip', 'addr', 'add', '%s/%d' % (CONTROLLER_IP, PREFIX), 'dev', BRIDGE])
        sh(['ip', 'link', 'set', BRIDGE, 'up'])
        if not os.path.exists(self.key):
            os.makedirs(os.path.dirname(self.key), exist_ok=True)
            sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'reseed-lab-controller',
                '-f', self.key])
        if not self.admin_password:
            write(os.path.join(self.root, 'admin-password'), os.urandom(12).hex(), 0o600)
        if not os.path.exists(os.path.join(self.template, 'mysql', 'global_priv.frm')):
            tmp = self.template + '.tmp'
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            shutil.chown(tmp, 'mysql', 'mysql')
            sh(['mariadb-install-db', '--no-defaults', '--user=mysql', '--datadir=' + tmp,
                '--auth-root-authentication-method=socket', '--skip-test-db'])
            shutil.rmtree(self.template, ignore_errors=True)
            os.rename(tmp, self.template)

    def ensure_release_template(self, release, tree):
        """The template datadir of `release`, made by the tree's own mariadb-install-db and
        owned by the tree's mysql user; made again when the tree was rebuilt."""
        path = self.template_of(release)
        built = (releases.stamp(tree) or {}).get('built', '?')
        if (os.path.exists(os.path.join(path, 'mysql', 'global_priv.frm'))
                and read(path + '.built') == built):
            return path
        uid, gid = tree_ids(tree)[:2]
        tmp = path + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        os.chown(tmp, uid, gid)
        # In a private mount and pid namespace: /proc (mariadb tools need it) and the
        # template directory are mounted into the tree for this command only.
        sh(releases.isolated([
            '/bin/sh', '-ec', 'mount -t proc proc "$0/proc"; mount --bind "$1" "$0/mnt"; '
            'exec chroot "$0" mariadb-install-db --no-defaults --user=mysql --datadir=/mnt '
            '--auth-root-authentication-method=socket --skip-test-db', tree, tmp]),
            env={'PATH': SYSTEM_PATH, 'LANG': 'C.UTF-8'})
        shutil.rmtree(path, ignore_errors=True)
        os.rename(tmp, path)
        write(path + '.built', built + '\n')
        return path

    def free_octet(self):
        used = set(h.octet for h in self.hosts())
        for octet in range(FIRST_HOST_OCTET, 250):
            if octet not in used:
                return octet
        raise LabError('no free address left in %s.0/24' % NET)

    def write_hosts_files(self):
        lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback',
                 '%s\tcontroller' % CONTROLLER_IP]
        hosts = self.hosts()
        lines += ['%s\t%s' % (h.ip, h.name) for h in hosts]
        text = '\n'.join(lines) + '\n'
        for h in hosts:
            write_in_place(os.path.join(h.dir, 'hosts'), text)

    # ---- create / destroy ---------------------------------------------------------------
    def create(self, name, datadir_mount=False, start_server=True, hardened=False,
               release=None, systemd=False):
        """Create (or keep, when it runs with the same options) the lab host `name`;
        return its Host. `datadir_mount`: False (a plain directory), True (its own mount
        point, a bind of the host folder's `datadir`: another filesystem than its parent's)
        or 'bind' (a bind mount of a directory of the same filesystem as its parent: the
        same st_dev, yet a mount, as Docker volumes and many hand-made layouts are; see
        DATADIR_BIND). A hardened host is production-shaped (see the module's docstring);
        its datadir is always a mount point, /data/mysql. `release` (a Debian codename, e.g.
        'trixie') gives the host a root of its own: an overlay of that release's cached
        tree (built first when missing, outside the lab's lock: 35-80 s), with the tree's
        sshd, Python and MariaDB. `systemd`: the host boots systemd (see the module's
        docstring) on the machine's release (or `release`), hardened or not; its datadir is
        a plain directory or (datadir_mount=True) its own mount. The server is Debian's
        mariadb.service, started at boot (start_server=False: stopped once booted)."""
        if not name.replace('-', '').isalnum() or len(name) > 20:
            raise LabError('lab host names are letters, digits and dashes, at most 20: %r'
                           % name)
        if release is not None and (not str(release).isalnum() or (hardened and not systemd)):
            raise LabError('release is a Debian codename, and not for hardened hosts '
                           '(but systemd ones): %r' % (release,))
        if datadir_mount not in (False, True, None, 'bind'):
            raise LabError("datadir_mount is False, True or 'bind': %r" % (datadir_mount,))
        if systemd and datadir_mount == 'bind':
            raise LabError("datadir_mount='bind' is not made for systemd hosts: %r" % name)
        datadir_mount = 'bind' if datadir_mount == 'bind' else bool(datadir_mount or hardened)
        systemd = bool(systemd)
        tree = None
        if release is not None or systemd:
            flavour = SYSTEMD_FLAVOUR if systemd else None
            codename = release or releases.machine_codename()
            try:  # its own lock; may take a minute
                tree = releases.ensure(codename, flavour=flavour)
            except releases.ReleaseError as e:
                raise LabError('no tree of Debian %s for lab host %s: %s' % (
                    releases.tree_name(codename, flavour), name, e))
        with self.lock():
            self.ensure_common()
            if tree is not None:
                self.ensure_release_template(os.path.basename(tree), tree)
            host = Host(self, name)
            if (host.running() and host.datadir_mount == datadir_mount
                    and host.hardened == bool(hardened) and host.release == release
                    and host.systemd == systemd):
                started = False
            else:
                self._destroy(host)
                self._build(host, datadir_mount, hardened, release, tree, systemd)
                self.write_hosts_files()
                started = True
        if systemd:
            if started:
                self.wait_booted(host)
            self.wait_ssh(host)
            if started and not start_server:
                host.service('stop')
            elif started:
                self.start_server(host)
            return host
        self.wait_ssh(host)
        if started and start_server:
            self.start_server(host)
        return host

    def _build(self, host, datadir_mount, hardened, release=None, tree=None, systemd=False):
        octet = self.free_octet()
        layout = LAYOUTS[bool(hardened)]
        d = host.dir
        os.makedirs(d)
        write(os.path.join(d, 'ip'), '%s.%d\n' % (NET, octet))
        write(os.path.join(d, 'hostname'), host.name + '\n')
        write(os.path.join(d, 'hosts'), '')
        if tree is None:
            # /var/lib overlay: the datadir is an opaque directory of the host's own upper
            # layer, so the machine's /var/lib/mysql never shows through and renames stay
            # cheap.
            upper = os.path.join(d, 'varlib', 'upper')
            os.makedirs(os.path.join(d, 'varlib', 'work'))
            os.makedirs(upper)
            varlib = upper
            base = '/'
            mysql_uid, adm_gid = pwd.getpwnam('mysql').pw_uid, grp.getgrnam('adm').gr_gid
        else:
            # The whole root is an overlay of the tree: the host's upper layer takes every
            # change (the datadir, an opaque directory of it, hides the tree's own).
            if release is not None:
                write(os.path.join(d, 'release'), release + '\n')
            if systemd:
                write(os.path.join(d, 'systemd'), 'yes\n')
            upper = os.path.join(d, 'rootfs', 'upper')
            os.makedirs(os.path.join(d, 'rootfs', 'work'))
            os.makedirs(os.path.join(d, 'root'))
            varlib = os.path.join(upper, 'var', 'lib')
            os.makedirs(varlib)
            base = tree
            mysql_uid, adm_gid = tree_ids(tree)[0::2]
        bind = DATADIR_BIND[bool(hardened)] if datadir_mount == 'bind' else None
        if bind:
            datadir = os.path.join(d, bind['source']) if hardened else \
                os.path.join(varlib, os.path.basename(bind['source']))
            os.makedirs(os.path.dirname(datadir), exist_ok=True)
        elif datadir_mount:
            datadir = os.path.join(d, 'datadir')
        else:
            datadir = os.path.join(varlib, 'mysql')
        sh(['cp', '-a', self.template_of(tree and os.path.basename(tree)), datadir])
        if not datadir_mount:
            os.setxattr(datadir, 'trusted.overlay.opaque', b'y')
        else:
            write(os.path.join(d, 'datadir-mount'), '%s\n' % ('bind' if bind else 'yes'))
        if bind and not hardened:
            # In the /var/lib overlay: the volume and the (empty, opaque) mount point, so the
            # machine's own /var/lib/mysql never shows through either.
            os.setxattr(datadir, 'trusted.overlay.opaque', b'y')
            os.makedirs(os.path.join(varlib, 'mysql'))
            os.setxattr(os.path.join(varlib, 'mysql'), 'trusted.overlay.opaque', b'y')
        if hardened:
            write(os.path.join(d, 'hardened'), 'yes\n')
            self._build_hardened(d, varlib, base, mysql_uid)
        shutil.copytree(os.path.join(base, 'etc/mysql'), os.path.join(d, 'etc-mysql'),
                        symlinks=True)
        server_cnf = SERVER_CNF.format(name=host.name, server_id=octet, **layout)
        if systemd:
            # As Debian sets a server up under systemd: no log_error, its errors go to the
            # journal (journalctl -u mariadb), where a failure must be read from.
            server_cnf = ''.join(line for line in server_cnf.splitlines(True)
                                 if not line.startswith('log_error'))
        write(os.path.join(d, 'etc-mysql', 'mariadb.conf.d', '60-lab.cnf'), server_cnf)
        # Debian's init script waits MYSQLD_STARTUP_TIMEOUT seconds (30 unless set) for a
        # server that will never answer before it says the start failed; systemd's
        # Type=notify unit fails as soon as mariadbd exits. A lab server starts in 1-3 s.
        shutil.copytree(os.path.join(base, 'etc/default'), os.path.join(d, 'etc-default'),
                        symlinks=True)
        write(os.path.join(d, 'etc-default', 'mariadb'),
              read(os.path.join(base, 'etc/default/mariadb'), '') +
              '# The reseed.mariadb lab: a start that fails is said after this long.\n'
              'MYSQLD_STARTUP_TIMEOUT=%d\n' % STARTUP_TIMEOUT)
        shutil.copytree(os.path.join(base, 'etc/ssh'), os.path.join(d, 'etc-ssh'),
                        symlinks=True, ignore=shutil.ignore_patterns('ssh_host_*'))
        sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lab-' + host.name,
            '-f', os.path.join(d, 'etc-ssh', 'lab_host_ed25519_key')])
        write(os.path.join(d, 'etc-ssh', 'sshd_config'),
              SSHD_CONFIG.format(name=host.name, ip='%s.%d' % (NET, octet),
                                 permit_root_login='no' if hardened else 'prohibit-password'))
        os.makedirs(os.path.join(d, 'log-mysql'))
        os.chown(os.path.join(d, 'log-mysql'), mysql_uid, adm_gid)
        rootssh = os.path.join(d, 'root-ssh')
        os.makedirs(rootssh, mode=0o700)
        shutil.copy(self.key + '.pub', os.path.join(rootssh, 'authorized_keys'))
        sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@' + host.name,
            '-f', os.path.join(rootssh, 'id_ed25519')])
        os.makedirs(os.path.join(d, 'tmp'))
        os.chmod(os.path.join(d, 'tmp'), 0o1777)
        if systemd:
            self._make_netns(host, octet)
            self._boot_systemd(host, tree, self._nspawn_binds(host, hardened, datadir_mount))
            return
        # Directories missing on the machine (e.g. /var/log/mysql) are created empty first
        # (a hardened host's top-level ones, such as /data, in its own root).
        # A release host's mounts go into its root ($R) before it becomes the root.
        at = '' if release is None else '$R'
        mounts = '\n'.join(
            ('mount --bind $H/{0} {2}{1}' if os.path.isfile(os.path.join(d, src)) else
             'mkdir -p {2}{1} && mount --bind $H/{0} {2}{1}').format(src, target, at)
            for src, target in PRIVATE_MOUNTS + (HARDENED_MOUNTS if hardened else ()))
        if bind:
            datadir_line = bind['sh'].format(at=at)
        elif datadir_mount:
            datadir_line = 'mkdir -p {1}{0} && mount --bind $H/datadir {1}{0}'.format(
                layout['datadir'], at)
        else:
            datadir_line = ''
        if release is None:
            init = INIT_SH.format(
                name=host.name, hostdir=d, lab_root=self.root, private_mounts=mounts,
                new_root=NEW_ROOT_SH if hardened else '', datadir_mount=datadir_line)
        else:
            init = RELEASE_INIT_SH.format(
                name=host.name, release=release, hostdir=d, tree=tree, private_mounts=mounts,
                datadir_mount=datadir_line, mysql_uid=mysql_uid)
        write(os.path.join(d, 'init.sh'), init, 0o755)
        self._make_netns(host, octet)
        self._start_init(host)

    def _start_init(self, host):
        """The host's first process (init.sh) in its network namespace."""
        d = host.dir
        ns = ['ip', 'netns', 'exec', host.netns]
        # The host's first process. unshare forks it as pid 1 of the new pid namespace.
        log = open(os.path.join(d, 'init.log'), 'w')
        proc = subprocess.Popen(
            ns + ['unshare', '--mount', '--uts', '--pid', '--fork', '--mount-proc',
                  '--propagation', 'private', '--kill-child', '/bin/sh', os.path.join(d, 'init.sh')],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={'PATH': SYSTEM_PATH, 'LANG': 'C.UTF-8'})
        write(os.path.join(d, 'unshare.pid'), '%d\n' % proc.pid)
        init_pid = None
        deadline = time.time() + 20
        while time.time() < deadline and init_pid is None:
            children = read('/proc/%d/task/%d/children' % (proc.pid, proc.pid), '')
            if children:
                init_pid = int(children.split()[0])
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if init_pid is None:
            raise LabError('lab host %s did not start: %s' % (
                host.name, read(os.path.join(d, 'init.log'), '')))
        write(os.path.join(d, 'init.pid'), '%d\n' % init_pid)
        write(os.path.join(d, 'init.start'), proc_start_time(init_pid) + '\n')

    @staticmethod
    def _make_netns(host, octet):
        """The host's network namespace, with a veth pair whose other end is on the bridge."""
        sh(['ip', 'netns', 'add', host.netns])
        peer = 'rsp%d' % octet
        sh(['ip', 'link', 'add', host.veth, 'type', 'veth', 'peer', 'name', peer])
        sh(['ip', 'link', 'set', host.veth, 'master', BRIDGE, 'up'])
        sh(['ip', 'link', 'set', peer, 'netns', host.netns])
        ns = ['ip', 'netns', 'exec', host.netns]
        # A fixed MAC per address: a host re-made at a reused address is reachable at once,
        # whatever the neighbours' ARP caches still hold.
        sh(ns + ['ip', 'link', 'set', peer, 'name', 'eth0', 'address',
                 '02:72:73:64:00:%02x' % octet])
        sh(ns + ['ip', 'addr', 'add', '%s.%d/%d' % (NET, octet, PREFIX), 'dev', 'eth0'])
        sh(ns + ['ip', 'link', 'set', 'eth0', 'up'])

    @staticmethod
    def _nspawn_binds(host, hardened, datadir_mount):
        """nspawn's --bind options: the host's private files and directories (as the other
        hosts' init.sh mounts them), and a datadir that is its own mount."""
        d = host.dir
        pairs = list(PRIVATE_MOUNTS + (HARDENED_MOUNTS if hardened else ()))
        pairs += [('hosts', '/etc/hosts'), ('hostname', '/etc/hostname')]
        if datadir_mount:
            pairs.append(('datadir', LAYOUTS[bool(hardened)]['datadir']))
        return ['--bind=%s:%s' % (os.path.join(d, src), target) for src, target in pairs]

    def _boot_systemd(self, host, tree, binds):
        """Boot the host's systemd: NSPAWN_SH in its cgroups, then wait for the container's
        pid 1 (init.pid). nspawn's pid is recorded too: it is what ends the host."""
        d = host.dir
        os.makedirs(os.path.join(d, 'root'), exist_ok=True)
        for cgroup in host.cgroups:
            os.makedirs(cgroup, exist_ok=True)
        write(os.path.join(d, 'nspawn.sh'), NSPAWN_SH.format(
            name=host.name, hostdir=d, tree=tree, cgroups=' '.join(host.cgroups),
            netns_path=os.path.join('/run/netns', host.netns),
            binds=' \\\n'.join('  ' + b for b in binds)), 0o755)
        # The netns' loopback, as the other hosts' init.sh sets it up (systemd would too).
        sh(['ip', 'netns', 'exec', host.netns, 'ip', 'link', 'set', 'lo', 'up'])
        write(os.path.join(d, 'boot.began'), '%f\n' % time.time())
        log = open(os.path.join(d, 'init.log'), 'w')
        proc = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', '/bin/sh',
             os.path.join(d, 'nspawn.sh')],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={'PATH': SYSTEM_PATH, 'LANG': 'C.UTF-8'})
        write(os.path.join(d, 'nspawn.pid'), '%d\n' % proc.pid)
        write(os.path.join(d, 'nspawn.start'), proc_start_time(proc.pid) + '\n')
        init_pid = None
        deadline = time.time() + 20
        while time.time() < deadline and init_pid is None and proc.poll() is None:
            init_pid = container_init(host.cgroups)
            if init_pid is None:
                time.sleep(0.02)
        if init_pid is None:
            raise LabError('lab host %s did not boot: %s' % (
                host.name, read(os.path.join(d, 'init.log'), '')[-3000:]))
        write(os.path.join(d, 'init.pid'), '%d\n' % init_pid)
        write(os.path.join(d, 'init.start'), proc_start_time(init_pid) + '\n')

    def wait_booted(self, host, timeout=BOOT_TIMEOUT):
        """Wait until a systemd host's mariadb.service is active (it starts at boot, as it
        is enabled); the seconds from nspawn's start go to the host's boot.seconds."""
        deadline = time.time() + timeout
        state = None
        while time.time() < deadline:
            if not host.running():
                raise LabError('lab host %s died while booting: %s' % (
                    host.name, read(os.path.join(host.dir, 'init.log'), '')[-3000:]))
            # Before the container's systemd listens, systemctl fails: asked again.
            state = host.run(['systemctl', 'is-active', 'mariadb'], check=False).stdout.strip()
            if state == 'active':
                began = float(read(os.path.join(host.dir, 'boot.began')))
                write(os.path.join(host.dir, 'boot.seconds'), '%.2f\n' % (time.time() - began))
                return
            if state == 'failed':
                break
            time.sleep(0.05)
        raise LabError('mariadb.service of lab host %s is %s, not active: %s' % (
            host.name, state, host.journal()))

    def _build_hardened(self, d, varlib_upper, base='/', mysql_uid=None):
        """The hardened host's own files: OPS_USER in copies of the account files of its
        root (the machine's, or a tree's: `base`), with a password (sudo asks for it once
        set_sudo_password_required), its sudo rule, its home with the lab key authorised."""
        uid = free_ops_id()
        password = os.urandom(12).hex()
        write(os.path.join(d, 'ops-password'), password + '\n', 0o600)
        hashed = sh(['openssl', 'passwd', '-6', '-stdin'], input=password).stdout.strip()
        home = '/home/' + OPS_USER
        # A real hash and a last change of today: sshd without PAM refuses a locked account
        # ('!') and makes one whose password is "changed on day 0" change it first.
        entries = {
            'passwd': '%s:x:%d:%d:reseed lab operator:%s:/bin/bash' % (OPS_USER, uid, uid, home),
            'group': '%s:x:%d:' % (OPS_USER, uid),
            'shadow': '%s:%s:%d:0:99999:7:::' % (OPS_USER, hashed, time.time() // 86400),
            'gshadow': '%s:!::' % OPS_USER,
        }
        for name in ACCOUNT_FILES:
            src, dst = os.path.join(base, 'etc', name), os.path.join(d, 'etc-' + name)
            st = os.stat(src)
            write(dst, read(src) + '\n' + entries[name] + '\n', st.st_mode & 0o7777)
            os.chown(dst, st.st_uid, st.st_gid)
        shutil.copytree(os.path.join(base, 'etc/sudoers.d'), os.path.join(d, 'etc-sudoers.d'))
        write_sudoers(d, password_required=False)
        # sshd's StrictModes: home and .ssh the user's own, closed to others.
        ops_home = os.path.join(d, 'home', OPS_USER)
        os.makedirs(os.path.dirname(ops_home))
        shutil.copytree(os.path.join(base, 'etc/skel'), ops_home)
        os.makedirs(os.path.join(ops_home, '.ssh'), mode=0o700)
        shutil.copy(self.key + '.pub', os.path.join(ops_home, '.ssh', 'authorized_keys'))
        os.chmod(os.path.join(ops_home, '.ssh', 'authorized_keys'), 0o600)
        os.chmod(ops_home, 0o700)
        sh(['chown', '-R', '%d:%d' % (uid, uid), ops_home])
        # Where NEW_ROOT_SH (or a systemd host's overlay) mounts the host's root.
        os.makedirs(os.path.join(d, 'root'), exist_ok=True)
        # /var/lib/mysql is not the datadir here: empty, and the machine's (or the tree's)
        # never shows through.
        unused = os.path.join(varlib_upper, 'mysql')
        os.makedirs(unused)
        if base == '/':
            shutil.chown(unused, 'mysql', 'mysql')
        else:
            os.chown(unused, *tree_ids(base)[:2])
        os.setxattr(unused, 'trusted.overlay.opaque', b'y')

    def wait_ssh(self, host, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not host.running():
                raise LabError('lab host %s died while starting: %s' % (
                    host.name, read(os.path.join(host.dir, 'init.log'), '')))
            try:
                with socket.create_connection((host.ip, 22), timeout=1) as s:
                    if s.recv(4).startswith(b'SSH'):
                        return
            except OSError:
                time.sleep(0.1)
        raise LabError('sshd of lab host %s did not answer on %s:22' % (host.name, host.ip))

    def start_server(self, host):
        proc = host.service('start', check=False)
        if proc.returncode != 0:
            log = host.run('tail -n 30 /var/log/mysql/error.log', check=False).stdout
            if host.systemd:
                log += host.journal()
            raise LabError('MariaDB did not start on lab host %s: %s\n%s' % (
                host.name, proc.stdout + proc.stderr, log))
        # Outside the binlog: a fresh lab host has no GTID of its own, like a fresh install.
        host.sql("SET SESSION sql_log_bin=0;"
                 "CREATE USER IF NOT EXISTS '{u}'@'{c}' IDENTIFIED BY '{p}';"
                 "GRANT ALL ON *.* TO '{u}'@'{c}' WITH GRANT OPTION;".format(
                     u=ADMIN_USER, c=CONTROLLER_IP, p=self.admin_password))

    def destroy(self, name):
        with self.lock():
            self._destroy(Host(self, name))
            self.write_hosts_files()

    def destroy_all(self):
        with self.lock():
            for h in self.hosts():
                self._destroy(h)
            base = os.path.join(self.root, 'hosts')
            for name in (os.listdir(base) if os.path.isdir(base) else []):
                self._destroy(Host(self, name))
            if sh(['ip', 'link', 'show', BRIDGE], check=False).returncode == 0:
                sh(['ip', 'link', 'del', BRIDGE])

    def _destroy(self, host):
        """Stop the host by its first process's pid and remove everything it had."""
        if host.systemd:
            self._poweroff(host)
        pid = host.init_pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)  # pid 1 of its namespace: the kernel ends the rest
            deadline = time.time() + 10
            while pid_alive(pid) and time.time() < deadline:
                time.sleep(0.05)
        upid = read(os.path.join(host.dir, 'unshare.pid'))
        if upid and pid_alive(int(upid)):
            # Our own unshare parent; it exits with its child. Reap or wait briefly.
            deadline = time.time() + 5
            while pid_alive(int(upid)) and time.time() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(upid), os.WNOHANG)
                time.sleep(0.05)
        if os.path.exists(os.path.join('/run/netns', host.netns)):
            sh(['ip', 'netns', 'del', host.netns])
        # The veth usually goes with its namespace, sometimes a moment later: delete it if
        # it is still there, and take "Cannot find device" (or, when it vanishes between
        # the lookup and the delete, "No such device") for done.
        if host.ip:
            gone = sh(['ip', 'link', 'del', host.veth], check=False)
            if gone.returncode != 0 and not any(
                    t in gone.stderr for t in ('Cannot find device', 'No such device')):
                raise LabError('cannot remove the link %s of lab host %s: %s' % (
                    host.veth, host.name, gone.stderr.strip()))
        if os.path.isdir(host.dir):
            shutil.rmtree(host.dir)

    @staticmethod
    def _poweroff(host):
        """Stop a systemd host: SIGRTMIN+4 to its systemd (a clean poweroff, nspawn exits
        with it), SIGKILL to nspawn and the container's pid 1 after POWEROFF_TIMEOUT, then
        remove its cgroups. Every pid is the one recorded with its start time."""
        pid, npid = host.init_pid, host.nspawn_pid
        if pid is None:
            # A boot that failed before its init pid was recorded: its init is found in the
            # host's own cgroup tree (only this lab host's processes are there).
            pid = container_init(host.cgroups)
        if pid is not None:
            os.kill(pid, signal.SIGRTMIN + 4)
        for sig, timeout in ((None, POWEROFF_TIMEOUT), (signal.SIGKILL, 10)):
            if sig is not None:
                for p in (npid, pid):
                    if p is not None and pid_running(p):
                        os.kill(p, sig)
            deadline = time.time() + timeout
            while time.time() < deadline and any(
                    p is not None and pid_running(p) for p in (npid, pid)):
                if npid is not None:  # our own child when this process booted it
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(npid, os.WNOHANG)
                time.sleep(0.05)
        for cgroup in host.cgroups:
            remove_cgroup(cgroup)

    # ---- inventory ----------------------------------------------------------------------
    def inventory(self, primary, replicas, others=()):
        """An Ansible inventory (dict) for the lab hosts."""
        def hostvars(h):
            hv = {'ansible_host': h.ip, 'lab_server_id': h.server_id}
            if h.hardened:  # root cannot log in: the unprivileged user, and sudo
                hv.update(ansible_user=h.login_user, ansible_become=True)
            return hv
        inv = {'all': {
            'vars': {
                'ansible_user': 'root',
                'ansible_ssh_private_key_file': self.key,
                'ansible_ssh_common_args': '-o StrictHostKeyChecking=no '
                                           '-o UserKnownHostsFile=/dev/null',
                'ansible_python_interpreter': '/usr/bin/python3',
            },
            'children': {
                'mariadb_primary': {'hosts': {primary: hostvars(self.host(primary))}},
                'mariadb_replicas': {'hosts': dict(
                    (r, hostvars(self.host(r))) for r in replicas)},
            }}}
        if others:
            inv['all']['hosts'] = dict((o, hostvars(self.host(o))) for o in others)
        return inv


def main(argv=None):
    parser = argparse.ArgumentParser(description='Create and remove reseed.mariadb lab hosts.')
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('up', help='create lab hosts (idempotent)')
    p.add_argument('names', nargs='+')
    p.add_argument('--datadir-mount', action='append', default=[], metavar='NAME',
                   help='give NAME a datadir that is its own mount point')
    p.add_argument('--datadir-bind', action='append', default=[], metavar='NAME',
                   help="give NAME a datadir that is a bind mount of a directory of its "
                        "parent's filesystem (same st_dev as its parent, yet a mount point)")
    p.add_argument('--hardened', action='append', default=[], metavar='NAME',
                   help='make NAME production-shaped: login as ops with sudo, no root '
                        'login, datadir /data/mysql on its own mount, logs in /var/log/mysql')
    p.add_argument('--release', nargs=2, action='append', default=[],
                   metavar=('RELEASE', 'NAME'),
                   help="give NAME a root of Debian RELEASE (e.g. trixie: MariaDB 11.8), an "
                        "overlay of the tree tests/lab/release.py builds (first: 35-80 s)")
    p.add_argument('--systemd', action='append', nargs='?', const='*', default=[],
                   metavar='NAME',
                   help='the hosts (or, as --systemd=NAME, that one) boot systemd '
                        '(systemd-nspawn on the tree release.py builds with --flavour systemd, '
                        'first: 40-65 s); MariaDB is mariadb.service')
    p = sub.add_parser('down', help='remove lab hosts (idempotent)')
    p.add_argument('names', nargs='*')
    p.add_argument('--all', action='store_true')
    sub.add_parser('ls', help='list lab hosts')
    p = sub.add_parser('inventory', help='print an inventory (JSON, valid YAML)')
    p.add_argument('--primary', required=True)
    p.add_argument('--replicas', default='')
    p = sub.add_parser('shape', help="limit a host's link, e.g. shape NAME 100mbit (or off)")
    p.add_argument('name')
    p.add_argument('rate')
    p = sub.add_parser('exec', help='run a command inside a lab host')
    p.add_argument('name')
    p.add_argument('command', nargs=argparse.REMAINDER)
    p = sub.add_parser('sql', help='run SQL as root inside a lab host')
    p.add_argument('name')
    p.add_argument('query')
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error('the lab needs root (namespaces, mounts, bridge)')
    lab = Lab()
    try:
        if args.cmd == 'up':
            release_of = dict((name, rel) for rel, name in args.release)
            unknown = sorted(set(release_of) - set(args.names))
            if unknown:
                parser.error('--release names hosts not to bring up: %s' % ', '.join(unknown))
            for name in args.names:
                mount = 'bind' if name in args.datadir_bind else name in args.datadir_mount
                h = lab.create(name, datadir_mount=mount, hardened=name in args.hardened,
                               release=release_of.get(name),
                               systemd='*' in args.systemd or name in args.systemd)
                print('%s\t%s\tup' % (h.name, h.ip))
        elif args.cmd == 'down':
            if args.all:
                lab.destroy_all()
            for name in args.names:
                lab.destroy(name)
        elif args.cmd == 'ls':
            for h in lab.hosts():
                print('%s\t%s\t%s\t%s' % (h.name, h.ip,
                                          'running' if h.running() else 'stopped',
                                          (h.release or 'machine')
                                          + (' systemd' if h.systemd else '')))
        elif args.cmd == 'inventory':
            replicas = [r for r in args.replicas.split(',') if r]
            print(json.dumps(lab.inventory(args.primary, replicas), indent=2))
        elif args.cmd == 'shape':
            lab.host(args.name).shape(None if args.rate == 'off' else args.rate)
        elif args.cmd == 'exec':
            cmd = args.command[1:] if args.command[:1] == ['--'] else args.command
            return subprocess.call(lab.host(args.name).command(cmd or ['/bin/bash']))
        elif args.cmd == 'sql':
            for row in lab.host(args.name).sql(args.query):
                print('\t'.join('NULL' if v is None else v for v in row))
    except LabError as e:
        print('lab: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
