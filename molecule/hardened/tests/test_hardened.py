# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hardened: the rebuild on production-shaped hosts, with the role's defaults (transport
tls), leaves them shaped as they were: the datadir still /data/mysql on its own mount with
the old one kept inside it, the logs still in /var/log/mysql, and no trace of the transfer:
no certificate, no key in any authorized_keys, no login from one database host to another.
The checks every rebuilt replica passes are in molecule/shared/tests/test_rebuilt.py."""

import re

import labstate

testinfra_hosts = labstate.rebuilt_names()
LOG_DIR = '/var/log/mysql'


def test_ansible_logs_in_as_ops_with_sudo():
    """The scenario is what it says: no host is reached as root."""
    for name in labstate.all_names():
        login = (labstate.var(name, 'ansible_user'), labstate.var(name, 'ansible_become'))
        assert login == ('ops', True), name
        assert labstate.get(name).check_output('id -un') == 'root'  # through sudo


def test_the_datadir_is_still_data_mysql_on_its_own_mount(host):
    assert labstate.datadir(host) == '/data/mysql'
    assert labstate.datadir_is_mount_point(host)


def test_the_old_datadir_is_kept_inside_the_mount(host):
    """A mount point cannot be renamed: the old entries went into a #sql-reseed-old-<ts>
    folder inside it (docs/DATADIR_SWAP.md), which the server does not list."""
    kept = labstate.kept_old_datadirs(host)
    assert [k.rsplit('/', 1)[0] for k in kept] == ['/data/mysql'], kept
    databases = [row[0] for row in labstate.sql(host, 'SHOW DATABASES')]
    assert not [d for d in databases if 'reseed' in d], databases


def test_binlogs_and_relay_logs_are_still_in_var_log_mysql(host):
    assert labstate.sql_value(host, 'SELECT @@log_bin_basename') == LOG_DIR + '/mysql-bin'
    assert labstate.sql_value(host, 'SELECT @@relay_log_basename') == LOG_DIR + '/relay-bin'
    binlogs = [row[0] for row in labstate.sql(host, 'SHOW BINARY LOGS')]
    assert binlogs and all(host.file('%s/%s' % (LOG_DIR, b)).is_file for b in binlogs), binlogs
    assert host.file(LOG_DIR + '/relay-bin.index').is_file
    assert labstate.leftovers(host, '/data/mysql/mysql-bin.*', '/data/mysql/relay-bin.*') == []


def test_the_old_servers_logs_are_kept_beside_them(host):
    """The old binlog index (with the old GTID history) must not be the new server's."""
    kept = labstate.leftovers(host, LOG_DIR + '/reseed-old-*')
    assert len(kept) == 1, kept
    assert host.file(kept[0] + '/mysql-bin.index').is_file


def test_the_breakages_are_undone():
    for kind in ('1236', '1062'):
        labstate.assert_breakage_undone(kind)


def test_no_receiver_left_listening(host):
    port = labstate.var(host, 'replica_rebuild_port', labstate.role_default('replica_rebuild_port'))
    assert port not in labstate.listening_ports(host)
    assert labstate.processes(host, 'backup_receive') == []


def test_no_transfer_certificate_left_on_any_host():
    for name in labstate.all_names():
        assert labstate.leftovers(labstate.get(name), '/tmp/reseed-cert-*') == [], name


def test_no_key_added_to_any_authorized_keys():
    """root's and ops's authorized_keys hold the lab's key, as the lab made them, and
    nothing else."""
    lab_key = labstate.lab_public_key()
    for name in labstate.all_names():
        for path, text in labstate.authorized_keys(labstate.get(name)).items():
            keys = [' '.join(line.split()[:2]) for line in text.splitlines() if line.strip()]
            assert keys == [lab_key], '%s:%s' % (name, path)


def test_no_database_host_logged_in_to_another():
    """Each host's sshd logged connections from the controller only (sshd -e logs every
    connection's address, accepted or not, to the lab's init.log outside the host)."""
    for name in labstate.all_names():
        own = labstate.var(name, 'ansible_host')
        log = labstate.sshd_log(name)
        assert 'Accepted publickey for ops from %s ' % labstate.CONTROLLER_IP in log, name
        net = re.escape(labstate.CONTROLLER_IP.rsplit('.', 1)[0])
        peers = set(re.findall(r'\b%s\.\d+\b' % net, log)) - {own, labstate.CONTROLLER_IP}
        assert peers == set(), '%s: sshd saw %s' % (name, sorted(peers))
