# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab: MariaDB hosts on one machine, each in its own namespaces, reached over ssh.

A lab host is
- a network namespace ``rsd-<name>`` on the bridge ``rsdlab0`` with its own address in
  10.213.47.0/24 (the controller is 10.213.47.1);
- its own mount, pid and hostname (uts) namespaces: ``/var/lib`` is an overlay whose upper
  layer is the host's own (so the datadir and its parent, where staging copies go, are
  private), and ``/etc/mysql``, ``/etc/ssh``, ``/var/log/mysql``, ``/root/.ssh``, ``/tmp``,
  ``/run``, ``/etc/hosts`` and ``/etc/hostname`` are the host's own; the lab's own folder
  is hidden;
- sshd as the pid namespace's first process: killing it (by pid) ends every process of the
  host, MariaDB included;
- MariaDB 10.11 from Debian's packages, started with ``service mariadb start``, configured
  with its own server_id, binlog, ROW format, log_slave_updates and gtid_strict_mode.

Everything the lab makes lives under ``$RESEED_LAB_ROOT`` (default ``/srv/reseed-lab``).
Creating and destroying are idempotent; destroying stops a host by its first process's pid
and removes its namespace, veth, mounts (they die with the namespace) and files.

Use it from Python (``Lab().create('primary')``) or the command line (``lab.py --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

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
    ('etc-ssh', '/etc/ssh'),
    ('log-mysql', '/var/log/mysql'),
    ('root-ssh', '/root/.ssh'),
    ('tmp', '/tmp'),
)

SERVER_CNF = """\
# Written by the reseed.mariadb lab for host {name}.
[mariadbd]
server_id                = {server_id}
bind_address             = 0.0.0.0
report_host              = {name}
log_bin                  = mysql-bin
relay_log                = relay-bin
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
PermitRootLogin prohibit-password
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

# The host's first process: private mounts, then sshd in the foreground as pid 1.
INIT_SH = """\
#!/bin/sh
# The first process of lab host {name}; becomes sshd.
set -eu
H={hostdir}
hostname {name}
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=$H/varlib/upper,workdir=$H/varlib/work /var/lib
{datadir_mount}
{private_mounts}
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


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
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

    def __init__(self, lab, name):
        self.lab = lab
        self.name = name
        self.dir = os.path.join(lab.root, 'hosts', name)
        self.netns = NETNS_PREFIX + name

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
        return os.path.exists(os.path.join(self.dir, 'datadir-mount'))

    def running(self):
        return self.init_pid is not None

    # ---- running things inside the host -------------------------------------------------
    def command(self, argv):
        """argv that runs argv inside the host's namespaces with a clean system environment."""
        pid = self.init_pid
        if pid is None:
            raise LabError('lab host %s is not running' % self.name)
        return ['nsenter', '--target', str(pid), '--mount', '--uts', '--net', '--pid',
                '--wd=/', '--', 'env', '-i', 'PATH=' + SYSTEM_PATH, 'HOME=/root',
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
        argv = ['mariadb', '--batch', '--skip-column-names', '--raw']
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
        argv = ['mariadb', '--batch', '--raw', '-e',
                "SHOW SLAVE '%s' STATUS" % connection.replace("'", "''")]
        out = self.run(argv).stdout.splitlines()
        if len(out) < 2:
            return {}
        keys = out[0].split('\t')
        values = [None if v == 'NULL' else v for v in out[1].split('\t')]
        return dict(zip(keys, values))

    def service(self, action, check=True):
        return self.run(['service', 'mariadb', action], check=check, timeout=180)

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

    def connect(self, **kw):
        """A PyMySQL connection from the controller over TCP as the lab's admin account."""
        import pymysql
        return pymysql.connect(host=self.ip, port=3306, user=ADMIN_USER,
                               password=self.lab.admin_password, autocommit=True,
                               connect_timeout=10, **kw)

    def ssh_argv(self, command=None):
        argv = ['ssh', '-i', self.lab.key, '-o', 'StrictHostKeyChecking=no', '-o',
                'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o',
                'BatchMode=yes', 'root@' + self.ip]
        if command:
            argv.append(command)
        return argv


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
    def create(self, name, datadir_mount=False, start_server=True):
        """Create (or keep, when it runs) the lab host `name`; return its Host."""
        if not name.replace('-', '').isalnum() or len(name) > 20:
            raise LabError('lab host names are letters, digits and dashes, at most 20: %r'
                           % name)
        with self.lock():
            self.ensure_common()
            host = Host(self, name)
            if host.running() and host.datadir_mount == datadir_mount:
                started = False
            else:
                self._destroy(host)
                self._build(host, datadir_mount)
                self.write_hosts_files()
                started = True
        self.wait_ssh(host)
        if started and start_server:
            self.start_server(host)
        return host

    def _build(self, host, datadir_mount):
        octet = self.free_octet()
        d = host.dir
        os.makedirs(d)
        write(os.path.join(d, 'ip'), '%s.%d\n' % (NET, octet))
        write(os.path.join(d, 'hostname'), host.name + '\n')
        write(os.path.join(d, 'hosts'), '')
        # /var/lib overlay: the datadir is an opaque directory of the host's own upper layer,
        # so the machine's /var/lib/mysql never shows through and renames stay cheap.
        upper = os.path.join(d, 'varlib', 'upper')
        os.makedirs(os.path.join(d, 'varlib', 'work'))
        os.makedirs(upper)
        datadir = os.path.join(d, 'datadir') if datadir_mount else os.path.join(upper, 'mysql')
        sh(['cp', '-a', self.template, datadir])
        if not datadir_mount:
            os.setxattr(datadir, 'trusted.overlay.opaque', b'y')
        else:
            write(os.path.join(d, 'datadir-mount'), 'yes\n')
        shutil.copytree('/etc/mysql', os.path.join(d, 'etc-mysql'), symlinks=True)
        write(os.path.join(d, 'etc-mysql', 'mariadb.conf.d', '60-lab.cnf'),
              SERVER_CNF.format(name=host.name, server_id=octet))
        shutil.copytree('/etc/ssh', os.path.join(d, 'etc-ssh'), symlinks=True,
                        ignore=shutil.ignore_patterns('ssh_host_*'))
        sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lab-' + host.name,
            '-f', os.path.join(d, 'etc-ssh', 'lab_host_ed25519_key')])
        write(os.path.join(d, 'etc-ssh', 'sshd_config'),
              SSHD_CONFIG.format(name=host.name, ip='%s.%d' % (NET, octet)))
        os.makedirs(os.path.join(d, 'log-mysql'))
        shutil.chown(os.path.join(d, 'log-mysql'), 'mysql', 'adm')
        rootssh = os.path.join(d, 'root-ssh')
        os.makedirs(rootssh, mode=0o700)
        shutil.copy(self.key + '.pub', os.path.join(rootssh, 'authorized_keys'))
        sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@' + host.name,
            '-f', os.path.join(rootssh, 'id_ed25519')])
        os.makedirs(os.path.join(d, 'tmp'))
        os.chmod(os.path.join(d, 'tmp'), 0o1777)
        # Targets missing on the machine (e.g. /var/log/mysql) are created empty first.
        mounts = '\n'.join('mkdir -p %s && mount --bind $H/%s %s' % (m[1], m[0], m[1])
                           for m in PRIVATE_MOUNTS)
        write(os.path.join(d, 'init.sh'), INIT_SH.format(
            name=host.name, hostdir=d, lab_root=self.root, private_mounts=mounts,
            datadir_mount='mount --bind $H/datadir /var/lib/mysql' if datadir_mount else ''),
            0o755)
        # Network: namespace, veth pair with one end on the bridge.
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

    # ---- inventory ----------------------------------------------------------------------
    def inventory(self, primary, replicas, others=()):
        """An Ansible inventory (dict) for the lab hosts."""
        def hostvars(h):
            return {'ansible_host': h.ip, 'lab_server_id': h.server_id}
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
            for name in args.names:
                h = lab.create(name, datadir_mount=name in args.datadir_mount)
                print('%s\t%s\tup' % (h.name, h.ip))
        elif args.cmd == 'down':
            if args.all:
                lab.destroy_all()
            for name in args.names:
                lab.destroy(name)
        elif args.cmd == 'ls':
            for h in lab.hosts():
                print('%s\t%s\t%s' % (h.name, h.ip, 'running' if h.running() else 'stopped'))
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
