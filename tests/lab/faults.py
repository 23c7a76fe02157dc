# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults injected into a running rebuild, and what the reliability tests compare.

- ``start_playbook(...)``: ansible-playbook in the background (its own session), so that a
  test can act while it runs; ``.wait()`` gives (returncode, output).
- ``wait_staging_bytes(host, path, n)``: until the copy under way on the replica holds n bytes.
- ``snapshot(host)``: what must not change on a host that a failed run left alone.
- ``LoadGenerator``: numbered inserts and updates on the primary, bounded in count and time.
- ``OptionFileWatch``: every ``--defaults-file`` or ``--defaults-extra-file`` any process names, with its mode.
- ``StreamTokenCatcher``: this run's stream token, read from the receiver's module arguments
  on the replica, handed to a ``SecretsWatch`` as soon as it exists.
- ``ssh_logins(host)`` / ``logins_between(hosts, before)``: the logins each host's sshd
  accepted; those from another lab host rather than from Ansible on the controller.
- ``module_pids(host, module)``: our modules still running on a host (receiver, sender).
- ``fatal_lines(output)``: the lines of a playbook's output that report a failure.
- ``InnoDBWatch``: a server's oldest transaction and history list length, sampled.

Every loop here is bounded in count and time; processes are only ever stopped by pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import threading
import time

import ansible_run
import scenarios
from lab import CONTROLLER_IP, sh
from secrets_watch import ModuleArgCatcher, ProcWatch


class Background(object):
    """An ansible-playbook run in the background; its output goes to a file."""

    def __init__(self, argv, env, tmp):
        self.tmp = tmp
        self.out_path = os.path.join(tmp.name, 'output')
        self._out = open(self.out_path, 'w')
        self.started = time.time()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     text=True, env=env, cwd=ansible_run.REPO,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def output(self):
        with open(self.out_path) as f:
            return f.read()

    def interrupt(self):
        """SIGINT to ansible-playbook itself, by its pid (as a user's Ctrl-C reaches it)."""
        os.kill(self.pid, signal.SIGINT)

    def wait(self, timeout=900):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)  # our own session, by its id
            self.proc.wait(30)
        self.seconds = time.time() - self.started
        self._out.close()
        out = self.output()
        self.tmp.cleanup()
        return self.proc.returncode, out


def start_playbook(inventory, playbook, extra_vars=None, verbosity=0, env=None):
    tmp = tempfile.TemporaryDirectory(prefix='reseed-bg-')
    argv = [ansible_run.bin_path('ansible-playbook'), '-i', inventory, playbook]
    if extra_vars:
        varsfile = os.path.join(tmp.name, 'extra_vars.json')
        with os.fdopen(os.open(varsfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
            json.dump(extra_vars, f)
        argv += ['-e', '@' + varsfile]
    if verbosity:
        argv.append('-' + 'v' * verbosity)
    return Background(argv, ansible_run.ansible_env(env), tmp)


def wait_until(predicate, timeout, interval=0.1, what='condition', abort=None):
    """scenarios.wait_for, giving up early when abort() is true (e.g. the playbook ended)."""
    return scenarios.wait_for(predicate, timeout, interval, what, abort=abort)


def staging_bytes(host, path):
    out = host.run(['du', '-sb', path], check=False).stdout.split()
    return int(out[0]) if out else 0


def new_copy_bytes(host, path):
    """Bytes of the copy under way at path on host; 0 while a sealed copy that an earlier run
    left there (rolled back) still waits to be reclaimed."""
    if 'reseed_received' in host.run(['ls', '-A', path], check=False).stdout.split():
        return 0
    return staging_bytes(host, path)


def wait_staging_bytes(host, path, at_least, run=None, timeout=120):
    """Until the copy under way at path on host (not a sealed one an earlier run left)
    holds at_least bytes (mid-stream); returns its bytes then."""
    def reached():
        n = new_copy_bytes(host, path)
        return n >= at_least and n
    return wait_until(reached, timeout, 0.1, '%d bytes of a new copy in %s on %s'
                      % (at_least, path, host.name),
                      abort=(lambda: run.proc.poll() is not None) if run else None)


def spoil_copy_once_prepared(host, staging, run):
    """Between the prepare and the swap: once the copy at staging on host is prepared
    (its checkpoints say log-applied), it loses its system tablespace (ibdata1 emptied), so
    that the new server will not start on it. run: the playbook, in the background."""
    def prepared():
        return host.run(['grep', '-qs', 'log-applied', staging + '/xtrabackup_checkpoints',
                         staging + '/mariadb_backup_checkpoints'], check=False).returncode == 0
    wait_until(prepared, 300, 0.05, 'the copy on %s to be prepared' % host.name,
               abort=lambda: run.proc.poll() is not None)
    host.run(['truncate', '-s', '0', staging + '/ibdata1'])


def pids(host, program):
    """Pids of program inside host, as the host sees them (for kill inside the host)."""
    return host.run(['pidof', program], check=False).stdout.split()


def module_pids(host, module):
    """Pids of processes inside host that run one of our modules (Python running Ansible's
    AnsiballZ file of it), e.g. the receiver: 'backup_receive'. Not async_wrapper's watcher,
    whose argv names the file too: it looks every few seconds whether the module ended, and
    lingers that long after it."""
    return host.run(['pgrep', '-f', '^[^ ]*python[0-9.]* [^ ]*/AnsiballZ_%s[.]py' % module],
                    check=False).stdout.split()


def transfer_leftovers(host):
    """What a stream may leave on a host: this collection's certificates and transfer keys in
    /tmp, the receiver's run files in /run."""
    return host.run('ls -d /tmp/reseed-cert-* /tmp/reseed-key-* /run/reseed-receive-* '
                    '2>/dev/null', check=False).stdout.split()


def kill_in_host(host, pid_list, sig='KILL'):
    if pid_list:
        host.run(['kill', '-' + sig] + list(pid_list))


def link(host, up):
    """Take the host's link on the lab bridge down (a cut cable) or up again."""
    sh(['ip', 'link', 'set', host.veth, 'up' if up else 'down'])


CUT_TABLE = 'reseed_fault_cut'  # not the lab's own table (Host.block_port)
CUT_NFT = """\
table inet %(table)s {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname != "lo" tcp dport %(port)d drop
  }
  chain output {
    type filter hook output priority -10; policy accept;
    oifname != "lo" tcp sport %(port)d drop
  }
}
"""


def cut_port(host, port):
    """Cut a TCP port that host listens on, both ways, in its own network namespace: every
    packet to it and from it is dropped, established connections included, as on a cut
    link; everything else (Ansible's ssh) still goes through. (Host.block_port drops the
    incoming packets only: the host's answers still get out.) restore_port undoes it."""
    host.net_run(['nft', '-f', '-'], input=CUT_NFT % dict(table=CUT_TABLE, port=int(port)))


def restore_port(host):
    proc = host.net_run(['nft', 'delete', 'table', 'inet', CUT_TABLE], check=False)
    if proc.returncode and 'No such file or directory' not in proc.stderr:
        raise AssertionError('cannot restore the port on %s: %s' % (host.name, proc.stderr))


SLAVE_FIELDS = ('Master_Host', 'Slave_IO_Running', 'Slave_SQL_Running', 'Last_IO_Errno',
                'Last_SQL_Errno', 'Using_Gtid', 'Gtid_IO_Pos', 'Exec_Master_Log_Pos')


def mariadbd_pid(host):
    return host.run('pidof mariadbd', check=False).stdout.strip()


def authorized_keys(host):
    """root's authorized keys, and on a hardened host those of its login user (ops), whom
    the ssh transport's key is authorized for there."""
    paths = ['/root/.ssh/authorized_keys'] + (
        ['/home/%s/.ssh/authorized_keys' % host.login_user] if host.hardened else [])
    return dict((p, host.run(['cat', p], check=False).stdout) for p in paths)


ROOT_SUSPECTS = re.compile(r'\.cnf$|reseed|mysql|maria|backup|\.pem$|\.key$', re.I)


def snapshot(host):
    """What a run that failed must leave as it was on a host."""
    status = host.slave_status()
    datadir = host.datadir
    return {
        'pid': mariadbd_pid(host),
        # ddl.log: the server's own, written at a backup's BACKUP STAGE START. A partial
        # copy in a staging directory inside a datadir that is a mount point is allowed,
        # never sealed (the callers check).
        'datadir': sorted(n for n in host.run(['ls', '-A', datadir]).stdout.split()
                          if n not in ('ddl.log', '#sql-reseed-staging')),
        'var_lib': sorted(n for n in host.run('ls -A /var/lib').stdout.split()
                          if not n.startswith('mysql.reseed-staging')),
        'slave': dict((k, status.get(k)) for k in SLAVE_FIELDS),
        'gtid_binlog_pos': host.sql_value('SELECT @@GLOBAL.gtid_binlog_pos') or '',
        'users': host.sql("SELECT CONCAT(user, '@', host) FROM mysql.user ORDER BY 1"),
        'authorized_keys': authorized_keys(host),
        'tmp': sorted(n for n in host.run('ls -A /tmp').stdout.split()
                      if not n.startswith('reseed-stream-')),  # the progress file stays
        'run': sorted(n for n in host.run('ls -A /run').stdout.split()
                      if n.startswith('reseed')),
        'conf': sorted(host.run('ls -A /etc/mysql/mariadb.conf.d').stdout.split()),
        # A lab host's /root is the machine's own (only /root/.ssh is the host's): other
        # programs on the machine change it (.cache appeared during a run), so only the
        # names a rebuild could leave there count.
        'root': sorted(n for n in host.run('ls -A /root').stdout.split()
                       if ROOT_SUSPECTS.search(n)),
    }


def diff(before, after):
    return dict((k, (before[k], after.get(k))) for k in before if before[k] != after.get(k))


ACCEPTED = re.compile(r'^Accepted \S+ for (\S+) from (\S+) port ', re.M)


def ssh_logins(host):
    """Every ssh login the host's sshd accepted, in order, as (user, address), from its log
    (lab.Host.sshd_log). Two calls compare equal when no login came in between."""
    return ACCEPTED.findall(host.sshd_log())


def logins_between(hosts, before=None):
    """The logins hosts accepted from anywhere but the controller (Ansible's own come from
    CONTROLLER_IP, delegated tasks included), after those in before (host name ->
    ssh_logins(host)), as 'host <- user@address'."""
    found = []
    for host in hosts:
        logins = ssh_logins(host)
        # Called after a run: Ansible's own logins are there. A log without any is not the
        # sshd's, and would make the comparison vacuous.
        assert logins, 'no ssh login in the log of lab host %s: is its sshd log read?' % host.name
        seen = logins[len((before or {}).get(host.name, ())):]
        found += ['%s <- %s@%s' % (host.name, user, address) for user, address in seen
                  if address != CONTROLLER_IP]
    return found


class InnoDBWatch(threading.Thread):
    """Samples a server every `interval` seconds while it runs: the age of its oldest
    transaction (information_schema.INNODB_TRX, whose trx_started is to the second: a
    sample reads up to 1 s more) and InnoDB's history list length (issue 24's bounds)."""

    def __init__(self, host, interval=0.5):
        super().__init__(daemon=True)
        self.conn = host.connect()
        self.interval = interval
        self._done = threading.Event()
        self.ages, self.history = [], []

    def run(self):
        with self.conn.cursor() as cur:
            while not self._done.is_set():
                cur.execute('SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, trx_started, '
                            'NOW(6))), 0) / 1e6 FROM information_schema.INNODB_TRX')
                self.ages.append(float(cur.fetchone()[0]))
                cur.execute('SHOW ENGINE INNODB STATUS')
                status = cur.fetchone()[2]
                self.history.append(int(status.split('History list length', 1)[1].split()[0]))
                self._done.wait(self.interval)

    def finish(self):
        self._done.set()
        self.join(30)
        self.conn.close()
        return self


FATAL = re.compile(r'^(fatal|failed): \[[^\n]*\]: (FAILED|UNREACHABLE)! => ', re.M)


def fatal_records(output):
    """[(header, result)] of every failure a playbook's output reports, at any verbosity
    (from -vvv on, Ansible prints the result as indented JSON over several lines)."""
    records = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        m = FATAL.match(line)
        if not m:
            continue
        header, text = line[:m.end()], line[m.end():]
        if text.strip() == '{':
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == '}'), i)
            text = '\n'.join([text] + lines[i + 1:end + 1])
        try:
            result = json.loads(text)
        except ValueError:
            result = {'msg': text}
        records.append((header, result))
    return records


def fatal_lines(output):
    """Each failure as one line: the header naming the host(s), then the result's msg."""
    return ['%s%s' % (h, r.get('msg', '')) for h, r in fatal_records(output)]


def fatal_msg(line):
    return line.split('! => ', 1)[-1]


class Writer(object):
    """A writer on the primary for the length of a with-block: setup() once, then each of
    its threads (_threads) runs until stop()."""

    def __init__(self, primary, targets):
        self.primary = primary
        self.errors = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=t, args=a, daemon=True) for t, a in targets]

    def setup(self):
        pass

    def __enter__(self):
        self.setup()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)


class LoadGenerator(Writer):
    """Writes on the primary while a rebuild runs: rows numbered 1, 2, ... (after those an
    earlier writer left) inserted into labdb.load and, every time, one row of labdb.t
    updated; at most max_rows rows and max_seconds, at about rate rows a second. PyMySQL
    from the controller, lab_admin."""

    def __init__(self, primary, rate=20, max_rows=5000, max_seconds=600):
        super(LoadGenerator, self).__init__(primary, [(self._run, ())])
        self.interval = 1.0 / rate
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.inserted = 0
        self.updated = 0
        self.first = self.last = None  # time.time() of the first and the last commit
        self.worst = 0.0  # the longest a round (an insert and an update, each a commit) took

    def setup(self):
        conn = self.primary.connect()
        with conn.cursor() as c:
            c.execute('CREATE TABLE IF NOT EXISTS labdb.load (id INT PRIMARY KEY, '
                      'at DOUBLE NOT NULL, pad VARCHAR(100)) ENGINE=InnoDB')
        conn.close()

    def check_arrived(self, *replicas, timeout=60):
        """Assert the writes went without an error, and that every row the primary holds
        (this writer's and any earlier one's) reached each replica, as the primary has it."""
        assert self.errors == [] and self.inserted > 0, (self.inserted, self.errors[:3])
        query = 'SELECT COUNT(*), MAX(id), SUM(at) FROM labdb.load'
        want = self.primary.sql(query)
        for replica in replicas:
            scenarios.wait_caught_up(self.primary, replica, timeout)
            got = replica.sql(query)
            assert got == want, (replica.name, got, want)

    def spanned(self, start, end):
        """True if rows were committed before start and after end: the writes went on for
        the whole of [start, end], however slowly a loaded machine let them go."""
        return self.first is not None and self.first < start and self.last > end

    def _run(self):
        deadline = time.time() + self.max_seconds
        conn = self.primary.connect()
        try:
            with conn.cursor() as c:
                rows = int(self.primary.sql_value('SELECT COUNT(*) FROM labdb.t'))
                base = int(self.primary.sql_value('SELECT COALESCE(MAX(id), 0) FROM labdb.load'))
                started = time.time()
                while (not self._stop.is_set() and time.time() < deadline and
                       self.inserted < self.max_rows):
                    n = self.inserted + 1
                    try:
                        began = time.time()
                        c.execute('INSERT INTO labdb.load VALUES (%s, %s, REPEAT(%s, 100))',
                                  (base + n, began, chr(65 + n % 26)))
                        c.execute('UPDATE labdb.t SET n = n + 1 WHERE id = %s',
                                  (1 + n % rows,))
                        self.worst = max(self.worst, time.time() - began)
                        self.inserted = n
                        self.updated += 1
                        self.last = time.time()
                        if self.first is None:
                            self.first = self.last
                    except Exception as e:  # noqa: BLE001 - recorded, the test asserts none
                        self.errors.append(str(e))
                        if len(self.errors) > 20:
                            break
                    # Paced by the clock, not by a pause after each round: the rate holds
                    # however long a commit takes, as long as it takes less than a round.
                    self._stop.wait(max(0.0, started + n * self.interval - time.time()))
        finally:
            conn.close()


class RedoWriter(Writer):
    """Redo written fast on the primary: `sessions` sessions each rewriting one row of
    labdb.blobs with a `row_mb` MB value made on the server (REPEAT), together about
    `mb_per_s` MB a second (or as fast as they can), for at most max_seconds. They
    replicate (the check of the rebuilt replica compares every table), each update's binlog
    event its new value only (binlog_row_image=MINIMAL in these sessions).
    `rate()` is the redo the server wrote a second (Innodb_lsn_current) since it started."""

    def __init__(self, primary, sessions=2, row_mb=1, mb_per_s=8, max_seconds=300):
        super(RedoWriter, self).__init__(primary, [(self._run, (i,)) for i in range(sessions)])
        self.sessions, self.row_mb, self.max_seconds = sessions, row_mb, max_seconds
        self.interval = row_mb * sessions / float(mb_per_s)  # each session's round
        self.rounds = 0
        self.start_lsn = self.started = None

    def lsn(self):
        return int(self.primary.sql_value("SELECT VARIABLE_VALUE FROM "
                                          "information_schema.GLOBAL_STATUS WHERE "
                                          "VARIABLE_NAME = 'INNODB_LSN_CURRENT'"))

    def rate(self):
        """MB of redo a second since the writer started."""
        return (self.lsn() - self.start_lsn) / 1e6 / (time.time() - self.started)

    def setup(self):
        conn = self.primary.connect()
        with conn.cursor() as c:
            c.execute('CREATE TABLE IF NOT EXISTS labdb.blobs (id INT PRIMARY KEY, '
                      'b LONGBLOB) ENGINE=InnoDB')
            c.execute('INSERT IGNORE INTO labdb.blobs VALUES %s' % ', '.join(
                '(%d, NULL)' % i for i in range(self.sessions)))
        conn.close()
        self.start_lsn, self.started = self.lsn(), time.time()

    def _run(self, row):
        deadline = time.time() + self.max_seconds
        conn = self.primary.connect()
        try:
            with conn.cursor() as c:
                c.execute('SET SESSION binlog_row_image = MINIMAL')
                n = 0
                started = time.time()
                while not self._stop.is_set() and time.time() < deadline:
                    n += 1
                    try:
                        c.execute('UPDATE labdb.blobs SET b = REPEAT(%s, %s) WHERE id = %s',
                                  (chr(65 + n % 26), self.row_mb << 20, row))
                        self.rounds += 1
                    except Exception as e:  # noqa: BLE001 - recorded, the test asserts none
                        self.errors.append(str(e))
                        if len(self.errors) > 20:
                            break
                    self._stop.wait(max(0.0, started + n * self.interval - time.time()))
        finally:
            conn.close()


class OptionFileWatch(ProcWatch):
    """Samples every process's argv for --defaults-extra-file=PATH / --defaults-file=PATH and
    records PATH's mode and owner as that process sees it (/proc/PID/root/PATH), so that a
    test can say every option file given to a program was 0600 (or 0400) and root's."""

    OPTION = re.compile(rb'--defaults(?:-extra)?-file=([^\0]+)')
    DESCRIPTOR = re.compile(r'^/(?:dev/stdin|dev/fd/(\d+)|proc/self/fd/(\d+))$')

    def __init__(self, interval=0.02):
        super(OptionFileWatch, self).__init__(interval)
        self.seen = {}  # (path) -> set of (mode, uid)

    def sample(self, pid, argv):
        for m in self.OPTION.finditer(argv):
            path = m.group(1).decode(errors='replace')
            # /dev/stdin and the like name the process's own descriptors (a pipe): looked
            # up through /proc/PID/root they would be this process's.
            fd = self.DESCRIPTOR.match(path)
            where = '/proc/%s/fd/%s' % (pid, fd.group(1) or fd.group(2) or '0') if fd else \
                '/proc/%s/root%s' % (pid, path)
            try:
                st = os.stat(where)
            except OSError:
                continue
            self.seen.setdefault(path, set()).add((stat.S_IMODE(st.st_mode), st.st_uid))

    def loose(self):
        """Option files readable or writable by anyone but their owner, or not root's."""
        return dict((p, modes) for p, modes in self.seen.items()
                    if any(mode & 0o077 or uid != 0 for mode, uid in modes))


class StreamTokenCatcher(ModuleArgCatcher):
    """This run's stream token, caught on the replica while the run goes on.

    The role draws the token per run (``__replica_rebuild_token``, no_log), so a test cannot
    know it in advance. Ansible writes an async task's module, its arguments included, into
    the remote temporary directory and runs it from there: the receiver's process
    (AnsiballZ_backup_receive.py, whose run_file names this replica) is found among every
    process's argv, and its file read through the process's own root. Each token found is
    added to ``watch`` (a SecretsWatch) at once, so that from then on no process's argv or
    environment may hold it either; a test then looks for it in the output and in files.

        with SecretsWatch([...]) as watch, StreamTokenCatcher(replica, watch) as tokens:
            ...
        assert tokens.found  # the check was not empty
    """

    def __init__(self, replica, watch=None, interval=0.05):
        super(StreamTokenCatcher, self).__init__('backup_receive', 'token', watch, interval)
        self.mark = 'reseed-receive-%s-' % replica.name

    def wanted(self, args):
        return self.mark in str(args.get('run_file'))
