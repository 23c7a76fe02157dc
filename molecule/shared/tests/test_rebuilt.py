# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every scenario checks on every replica converge rebuilt (molecule's verify runs this
file beside the scenario's own tests/, see .config/molecule/config.yml)."""

import uuid

import labstate

testinfra_hosts = labstate.rebuilt_names()


def test_both_threads_run_in_the_mode_asked(host):
    status = labstate.assert_replicating(host)
    mode = labstate.var(host, 'replica_rebuild_mode', 'gtid')
    assert status['Using_Gtid'] == ('No' if mode == 'file_pos' else 'Slave_Pos'), status
    assert status['Master_Host'] == labstate.var(labstate.primary(), 'ansible_host')


def test_no_errant_gtid_left(host):
    """The new data came from the primary: no transaction of this server's own."""
    server_id = labstate.sql_value(host, 'SELECT @@server_id')
    state = labstate.sql_value(host, 'SELECT @@GLOBAL.gtid_binlog_state') or ''
    assert '-%s-' % server_id not in state, state


def test_every_table_equals_the_primarys(host):
    labstate.assert_same_data_as_primary(host)


def test_old_datadir_kept(host):
    kept = labstate.kept_old_datadirs(host)
    assert len(kept) == 1, kept
    assert host.file(kept[0] + '/ibdata1').is_file
    assert host.file(kept[0]).mode == 0o700


def test_no_transfer_key_or_certificate_left_on_either_end(host):
    """Whatever the transport: no transfer key authorized on the replica or left on the
    source (ssh), no certificate left on either end (tls)."""
    keys = labstate.authorized_keys(host)
    assert [path for path, text in keys.items() if 'reseed-transfer' in text] == []
    # The lab's own key is still there for the account Ansible logs in as.
    assert labstate.lab_public_key() in keys[labstate.login_authorized_keys(host)]
    source = labstate.source_of(host)
    assert labstate.leftovers(source, '/tmp/reseed-key-*', '/tmp/reseed-cert-*') == []
    assert labstate.leftovers(host, '/tmp/reseed-key-*', '/tmp/reseed-cert-*') == []


def test_staging_gone_and_replication_no_longer_held(host):
    datadir = labstate.datadir(host)
    assert not host.file(datadir + '.reseed-staging').exists
    assert not host.file(datadir + '/#sql-reseed-staging').exists
    assert not host.file('/etc/mysql/mariadb.conf.d/99-reseed-hold.cnf').exists


def test_a_row_written_on_the_primary_arrives(host):
    marker = uuid.uuid4().hex
    labstate.sql(labstate.primary(), "CREATE TABLE IF NOT EXISTS labdb.markers "
                                     "(m VARCHAR(32) PRIMARY KEY); "
                                     "INSERT INTO labdb.markers VALUES ('%s')" % marker)
    labstate.wait_caught_up(host)
    assert labstate.sql_value(host, "SELECT COUNT(*) FROM labdb.markers WHERE m = '%s'"
                              % marker) == '1'
