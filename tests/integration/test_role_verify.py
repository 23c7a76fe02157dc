# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's verification step: a temporary account on the primary, checked, dropped."""

from __future__ import annotations

import os

from ansible_run import run_playbook
from secrets_watch import SecretsWatch

PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks',
                        'verify_only.yml')


def test_verify_step_uses_a_temporary_account_and_leaves_no_trace(replicated):
    primary, replica = replicated['primary'], replicated['replica']
    gtid_before = primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    with SecretsWatch([replicated['password']]) as watch:
        proc = run_playbook(replicated['inventory'], PLAYBOOK, {
            'replica_rebuild_replication_user': 'repl',
            'replica_rebuild_replication_password': replicated['password']}, verbosity=2)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'Compare every table with the primary at the same GTID' in proc.stdout
    assert 'tables equal at 0-%d-' % primary.server_id in proc.stdout
    # The account is gone, and it never reached the binlog (no new GTID, nothing replicated).
    assert primary.sql_value("SELECT COUNT(*) FROM mysql.user WHERE user='reseed_verify'") == '0'
    assert replica.sql_value("SELECT COUNT(*) FROM mysql.user WHERE user='reseed_verify'") == '0'
    assert primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos') == gtid_before
    assert watch.leaks == []
    assert 'changed=0' in proc.stdout.split('PLAY RECAP')[-1]


def test_verify_step_fails_on_different_data(replicated):
    replica = replicated['replica']
    replica.sql("SET SESSION sql_log_bin=0; DELETE FROM labdb.log WHERE id=3;")
    proc = run_playbook(replicated['inventory'], PLAYBOOK, {
        'replica_rebuild_replication_user': 'repl',
        'replica_rebuild_replication_password': replicated['password']})
    assert proc.returncode != 0
    assert 'labdb.log' in proc.stdout and 'differ' in proc.stdout
    assert replicated['primary'].sql_value(
        "SELECT COUNT(*) FROM mysql.user WHERE user='reseed_verify'") == '0'
