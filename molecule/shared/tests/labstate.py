# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the scenarios' verify steps share: the scenario's hosts, by the groups molecule.yml
gives them (see molecule/shared/prepare.yml), and their MariaDB state read on the hosts."""

import os
import subprocess
import time

import testinfra
import testinfra.utils.ansible_runner
import yaml

INVENTORY = os.environ['MOLECULE_INVENTORY_FILE']
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
LAB_ROOT = os.environ.get('RESEED_LAB_ROOT', '/srv/reseed-lab')
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
CONTROLLER_IP = '10.213.47.1'  # tests/lab/lab.py: where Ansible and these tests run
# Databases of the server itself, left out of the data comparison.
SYSTEM_SCHEMAS = ('mysql', 'information_schema', 'performance_schema', 'sys')


def all_names():
    """Every lab host of the scenario: the primary and the replicas."""
    return sorted(set(RUNNER.get_hosts('mariadb_primary'))
                  | set(RUNNER.get_hosts('mariadb_replicas')))


def rebuilt_names():
    """The replicas prepare broke (or left unseeded): the ones converge had to rebuild."""
    return sorted(set(RUNNER.get_hosts('broken_*')) | set(RUNNER.get_hosts('unseeded')))


def healthy_names():
    """The replicas prepare left healthy: converge must leave them running."""
    return sorted(set(RUNNER.get_hosts('mariadb_replicas')) - set(rebuilt_names()))


def name_of(host):
    return host.backend.get_hostname()


def var(host, name, default=None):
    """One inventory variable of a host (a Host or its name). Only the value: a failed
    assert shows it, where the whole set would show the replication password."""
    return RUNNER.get_variables(host if isinstance(host, str) else name_of(host)).get(name, default)


def get(name):
    """The host as Ansible reaches it: as root, or as the login user with sudo where the
    inventory says ansible_become (testinfra reads it), so every command runs as root."""
    return testinfra.get_host('ansible://%s?ansible_inventory=%s' % (name, INVENTORY))


def role_default(name):
    """A variable's default in the role (roles/replica_rebuild/defaults/main.yml)."""
    with open(os.path.join(REPO, 'roles', 'replica_rebuild', 'defaults', 'main.yml')) as f:
        return yaml.safe_load(f)[name]


def primary():
    return get(RUNNER.get_hosts('mariadb_primary')[0])


def source_of(host):
    """The host the replica was copied from (replica_rebuild_source, else the primary)."""
    return get(var(host, 'replica_rebuild_source') or RUNNER.get_hosts('mariadb_primary')[0])


def sql(host, query):
    """Rows of the last result set, each a list of strings ('NULL' for NULL)."""
    out = host.check_output('mariadb --batch --skip-column-names --raw -e %s', query)
    return [line.split('\t') for line in out.splitlines()]


def sql_value(host, query):
    rows = sql(host, query)
    return rows[0][0] if rows else None


def slave_status(host):
    """SHOW SLAVE STATUS as a dict; empty when replication is not configured."""
    out = host.check_output('mariadb --batch --raw -e %s', 'SHOW SLAVE STATUS').splitlines()
    return dict(zip(out[0].split('\t'), out[1].split('\t'))) if len(out) == 2 else {}


def wait_replicating(host, timeout=60):
    """SHOW SLAVE STATUS once both threads run (or at the timeout)."""
    deadline = time.time() + timeout
    status = slave_status(host)
    while time.time() < deadline and not (status.get('Slave_IO_Running') == 'Yes'
                                          and status.get('Slave_SQL_Running') == 'Yes'):
        time.sleep(1)
        status = slave_status(host)
    return status


def assert_replicating(host):
    status = wait_replicating(host)
    assert status.get('Slave_IO_Running') == 'Yes', status.get('Last_IO_Error')
    assert status.get('Slave_SQL_Running') == 'Yes', status.get('Last_SQL_Error')
    assert status.get('Last_IO_Errno') == '0' and status.get('Last_SQL_Errno') == '0', status
    return status


def wait_caught_up(host, timeout=60):
    """Wait until the replica has applied everything the primary has binlogged."""
    pos = sql_value(primary(), 'SELECT @@GLOBAL.gtid_binlog_pos')
    got = sql_value(host, 'SELECT MASTER_GTID_WAIT(%s, %d)' % (quote(pos), timeout))
    assert got == '0', '%s did not reach the primary at %s within %ss: %s' % (
        name_of(host), pos, timeout, slave_status(host))


def quote(value):
    return "'" + value.replace('\\', '\\\\').replace("'", "\\'") + "'"


def user_tables(host):
    return [schema + '.' + table for schema, table in sql(
        host, "SELECT table_schema, table_name FROM information_schema.tables "
              "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN (%s) "
              "ORDER BY 1, 2" % ', '.join(quote(s) for s in SYSTEM_SCHEMAS))]


def table_state(host, tables):
    """{table: (row count, CHECKSUM TABLE)}."""
    checksums = dict((t, c) for t, c in sql(host, 'CHECKSUM TABLE ' + ', '.join(tables)))
    return dict((t, (sql_value(host, 'SELECT COUNT(*) FROM ' + t), checksums[t]))
                for t in tables)


def assert_same_data_as_primary(host):
    wait_caught_up(host)
    tables = user_tables(primary())
    assert tables, 'the primary has no user table: prepare loaded no data'
    assert user_tables(host) == tables
    assert table_state(host, tables) == table_state(primary(), tables)


def datadir(host):
    """The server's datadir, as it says (/var/lib/mysql on plain lab hosts, /data/mysql on
    hardened ones), without the trailing slash."""
    return sql_value(host, 'SELECT @@datadir').rstrip('/')


def datadir_is_mount_point(host):
    return host.run('findmnt --noheadings --mountpoint %s', datadir(host)).rc == 0


def kept_old_datadirs(host):
    """The old datadirs datadir_swap kept: beside the datadir, or inside it on a mount point."""
    path = datadir(host)
    pattern = (path + '/#sql-reseed-old-*') if datadir_is_mount_point(host) \
        else (path + '.reseed-old-*')
    return leftovers(host, pattern)


def lab_public_key():
    """The lab key Ansible logs in with (its type and key, without the comment)."""
    with open(os.path.join(LAB_ROOT, 'ssh', 'id_ed25519.pub')) as f:
        return ' '.join(f.read().split()[:2])


def login_user(host):
    """The account Ansible logs in as on this host (root, or ops on a hardened host)."""
    return var(host, 'ansible_user') or 'root'


def login_authorized_keys(host):
    """The authorized_keys file of the account Ansible logs in as."""
    return host.user(login_user(host)).home.rstrip('/') + '/.ssh/authorized_keys'


def authorized_keys(host):
    """{path: content} of root's authorized_keys and the login user's (one file when Ansible
    logs in as root); a missing file reads as empty."""
    paths = {'/root/.ssh/authorized_keys', login_authorized_keys(host)}
    return dict((p, host.file(p).content_string if host.file(p).exists else '') for p in paths)


def leftovers(host, *patterns):
    """The paths on the host that match these shell patterns (e.g. /tmp/reseed-cert-*)."""
    return host.run('ls -d %s' % ' '.join(patterns)).stdout.split()


def listening_ports(host):
    """The TCP ports something listens on, on any address (ss -ltnH)."""
    return sorted(set(int(line.split()[3].rsplit(':', 1)[1])
                      for line in host.check_output('ss -ltnH').splitlines()))


def processes(host, word):
    """'pid command line' of each process whose command line holds word (e.g. an Ansible
    module's name: AnsiballZ_backup_receive.py)."""
    # [x]yz matches the process, never the shell that runs pgrep with that pattern.
    out = host.run('pgrep -a -f %s', '[%s]%s' % (word[0], word[1:])).stdout
    return out.splitlines()


def sshd_log(name):
    """What the lab host's sshd logged: on a hand-started host it runs as the host's first
    process and logs to the host folder's init.log, on the controller (outside the host,
    where no run of the role could change it); on a host that boots systemd, to the
    journal of its ssh.service, read through the lab (nsenter), not through Ansible: the
    messages of sshd itself (_COMM=sshd), not those of the sessions' programs, which
    journald files under the same unit (Ansible's modules log their arguments there,
    no_log ones masked: checked)."""
    folder = os.path.join(LAB_ROOT, 'hosts', name)
    if os.path.exists(os.path.join(folder, 'systemd')):
        return subprocess.run(
            ['python3', LAB_PY, 'exec', name, '--', 'journalctl', '--no-pager', '-q', '-o',
             'cat', '-u', 'ssh', '_COMM=sshd'], stdout=subprocess.PIPE, text=True,
            check=True).stdout
    with open(os.path.join(folder, 'init.log')) as f:
        return f.read()


def assert_breakage_undone(kind):
    """What prepare's breakage of that kind (broken_<kind>: scenarios.BREAKAGES) did to the
    replicas of its group is undone on them, each caught up with the primary first."""
    for name in RUNNER.get_hosts('broken_' + kind):
        host = get(name)
        wait_caught_up(host)
        if kind == '1236':
            # Written on the primary while the replica was stopped, then purged.
            assert sql_value(host, "SELECT COUNT(*) FROM labdb.log WHERE msg IN "
                                   "('after replica stopped', 'in the new binlog')") == '2', name
        elif kind == '1062':
            # Row 100001, written on the replica outside the binlog, then on the primary.
            assert sql(host, 'SELECT v FROM labdb.t WHERE id = 100001') == [['primary']], name
        elif kind == '1032':
            # Row 7, deleted on the replica outside the binlog, then updated on the primary.
            assert sql(host, 'SELECT n FROM labdb.t WHERE id = 7') == sql(
                primary(), 'SELECT n FROM labdb.t WHERE id = 7') != [], name
        elif kind == 'errant':
            # The transaction the primary never had.
            for side in (host, primary()):
                assert sql_value(side, "SELECT COUNT(*) FROM labdb.log "
                                       "WHERE msg = 'errant write on the replica'") == '0', name
        else:
            raise ValueError('no check for breakage %r' % kind)
