# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's verification step: a temporary account on the primary, checked, dropped."""

from __future__ import annotations

import os

from ansible_run import run_playbook
from secrets_watch import ModuleArgCatcher, ProcWatch, SecretsWatch

PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks',
                        'verify_only.yml')


class EveryArgv(ProcWatch):
    """Every distinct argv seen while the with-block runs, to look for a secret afterwards:
    also in processes that ran before the secret was known."""

    def __init__(self, interval=0.01):
        super(EveryArgv, self).__init__(interval)
        self.seen = set()

    def sample(self, pid, argv):
        self.seen.add(argv)


def test_verify_step_uses_a_temporary_account_and_leaves_no_trace(replicated):
    primary, replica = replicated['primary'], replicated['replica']
    gtid_before = primary.sql_value('SELECT @@GLOBAL.gtid_binlog_pos')
    # The temporary account's password is drawn by the run (no_log): caught from the
    # arguments of reseed.mariadb.temp_account on the primary while it runs. With Ansible's
    # own default, no pipelining (the lab's runs pipeline), a module and its arguments are a
    # file in the remote temporary directory, which the catcher reads.
    with SecretsWatch([replicated['password']]) as watch, EveryArgv() as argv_log, \
            ModuleArgCatcher('temp_account', 'password', watch, hosts=(primary,)) as caught:
        proc = run_playbook(replicated['inventory'], PLAYBOOK, {
            'replica_rebuild_replication_user': 'repl',
            'replica_rebuild_replication_password': replicated['password']}, verbosity=3,
            env={'ANSIBLE_PIPELINING': 'False'})
    assert proc.returncode == 0, proc.stdout[-3000:]
    # One account for the run, made by the module (not by a client's command line), and its
    # password in no process's argv or environment on any host, nor in the -vvv output.
    assert len(caught.found) == 1, caught.found
    secret = caught.found[0]
    assert len(secret) == 32
    assert argv_log.samples > 10 and len(argv_log.seen) > 10
    assert [a[:200] for a in argv_log.seen if secret.encode() in a] == []
    assert secret not in proc.stdout and secret not in proc.stderr
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
