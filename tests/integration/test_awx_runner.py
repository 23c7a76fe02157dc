# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rebuild as AWX runs it: ansible-runner on a private data dir shaped as AWX writes it.

AWX gives ansible-runner: the project checked out in project/, the inventory in
inventory/hosts, the machine credential's key in env/ssh_key (runner loads it into an
ssh-agent), its username and privilege escalation as ansible-playbook options in
env/cmdline, its passwords as answers to ansible-playbook's prompts (runner's `passwords`),
and one env/extravars file with the survey's answers (strings, an empty text answer as "")
merged with what custom credentials inject (awx/credential_type.yml). AWX deletes the
private data dir after the job; what must not hold a password is everything ansible-runner
writes (artifacts: stdout, job events, the command) and every argv.

The hosts are production-shaped (tests/lab/README.md, hardened): root cannot log in, the
inventory names no user, and the machine credential docs/AWX.md describes (an unprivileged
user, sudo, and sudo's password where it asks for one) is all Ansible gets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import ansible_runner
import yaml

import scenarios
from ansible_run import REPO, ansible_env
from faults import LoadGenerator
from secrets_watch import SecretsWatch


def survey_answers():
    """Each question of awx/survey.json answered with its default, as AWX sends it."""
    with open(os.path.join(REPO, 'awx', 'survey.json')) as f:
        spec = json.load(f)['spec']
    return dict((q['variable'], q['default']) for q in spec)


def credential_extra_vars(inputs):
    """What awx/credential_type.yml injects for these inputs (its Jinja is plain
    substitution with a default)."""
    with open(os.path.join(REPO, 'awx', 'credential_type.yml')) as f:
        injectors = yaml.safe_load(f)['injectors']['extra_vars']
    out = {}
    for var, template in injectors.items():
        field = template.strip('{} ').split('|')[0].strip()
        out[var] = inputs.get(field, '')
    return out


# What AWX makes of a Machine credential and the job template (awx/main/tasks/jobs.py,
# RunJob.build_args and get_password_prompts): options in env/cmdline, and each password as
# the answer to the prompt it belongs to.
BECOME_PROMPT = r'BECOME password.*:\s*?$'
CONNECTION_VARS = ('ansible_user', 'ansible_become', 'ansible_ssh_private_key_file')


def machine_credential(pdd, username, become_method, become_password=None):
    """Write env/cmdline as AWX does for this credential on a job template with "Privilege
    Escalation" on (--become); return the runner's passwords (prompt pattern: answer)."""
    args = ['-u', username, '--become', '--become-method', become_method]
    if become_password:
        args.append('--ask-become-pass')
    (pdd / 'env' / 'cmdline').write_text(' '.join(args))
    return {BECOME_PROMPT: become_password} if become_password else {}


def write_extravars(pdd, extravars):
    """env/extravars as AWX writes it for a job: the survey's answers and what credentials
    inject (a workflow node: its own template's, plus the artifacts of the nodes before)."""
    fd = os.open(str(pdd / 'env' / 'extravars'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        json.dump(extravars, f)


def private_data_dir(tmp_path, lab, primary, replicas, extravars):
    pdd = tmp_path / 'awx_job'
    (pdd / 'inventory').mkdir(parents=True)
    (pdd / 'env').mkdir()
    inventory = lab.inventory(primary.name, [r.name for r in replicas])
    # Who logs in, with which key and how it becomes root: the machine credential's, not
    # the inventory's.
    key = inventory['all']['vars']['ansible_ssh_private_key_file']
    for hostvars in [inventory['all']['vars']] + [
            h for group in inventory['all']['children'].values() for h in group['hosts'].values()]:
        for name in CONNECTION_VARS:
            hostvars.pop(name, None)
    (pdd / 'inventory' / 'hosts').write_text(json.dumps(inventory))
    shutil.copy(key, str(pdd / 'env' / 'ssh_key'))
    os.chmod(str(pdd / 'env' / 'ssh_key'), 0o600)
    write_extravars(pdd, extravars)
    # The execution environment has the collection installed: here, the checkout.
    env = ansible_env()
    (pdd / 'env' / 'envvars').write_text(json.dumps(dict(
        (k, env[k]) for k in ('ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_HOST_KEY_CHECKING',
                              'ANSIBLE_NOCOLOR', 'ANSIBLE_PIPELINING', 'ANSIBLE_SSH_ARGS'))))
    os.symlink(REPO, str(pdd / 'project'))
    return pdd


def run_job(pdd, ident, passwords, playbook='playbooks/rebuild_replica.yml'):
    return ansible_runner.run(private_data_dir=str(pdd), playbook=playbook,
                              ident=ident, passwords=passwords, quiet=True)


def artifacts(run):
    """The job's artifacts as AWX stores them: what set_stats left (the stats event's
    artifact_data), which a workflow passes to its next nodes as extra variables."""
    return next(e['event_data'].get('artifact_data', {}) for e in run.events
                if e.get('event') == 'playbook_on_stats')


def failure_messages(run):
    return [e['event_data']['res'].get('msg', '') for e in run.events
            if e.get('event') == 'runner_on_failed']


def test_the_job_template_heals_a_replica_through_ansible_runner(
        lab, make_hosts, repl_password, tmp_path, monkeypatch):
    hosts = make_hosts('primary', 'broken', 'healthy', hardened=('primary', 'broken', 'healthy'))
    primary, broken, healthy = hosts['primary'], hosts['broken'], hosts['healthy']
    scenarios.setup_replication(primary, [broken, healthy], repl_password, rows=3000)
    scenarios.break_1062(primary, broken)
    healthy_pid = healthy.run('pidof mariadbd').stdout.strip()
    broken_pid = broken.run('pidof mariadbd').stdout.strip()
    keys_before = dict((h.name, h.run('cat /home/ops/.ssh/authorized_keys').stdout)
                       for h in (primary, broken, healthy))
    broken.set_sudo_password_required(True)  # its sudo asks ops for the password

    extravars = dict(survey_answers(), **credential_extra_vars(
        {'replication_user': 'repl', 'replication_password': repl_password}))
    assert extravars['replica_rebuild_source'] == '' and extravars['replica_rebuild_force'] == 'false'
    assert extravars['replica_rebuild_transport'] == 'tls'
    assert extravars['replica_rebuild_fleet'] == 'true'
    status_vars = {'replica_status_fail_when_broken': 'true'}
    pdd = private_data_dir(tmp_path, lab, primary, [broken, healthy], status_vars)
    # ansible-runner starts ansible-playbook from the PATH, as in the execution environment.
    monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    passwords = machine_credential(pdd, 'ops', 'sudo', broken.ops_password)

    # The workflow of docs/AWX.md. Its first node, the status template: it fails because a
    # replica needs a rebuild (the on-failure path leads to the rebuild), and says which.
    run = run_job(pdd, '0', passwords, playbook='playbooks/replica_status.yml')
    assert run.status == 'failed', run.stdout.read()[-6000:]
    found = artifacts(run)['replica_status']
    assert (found[broken.name]['state'], found[broken.name]['needs_rebuild'],
            found[healthy.name]['state'], found[healthy.name]['needs_rebuild']) == (
                'broken', True, 'healthy', False), found
    assert [m for m in failure_messages(run) if m.startswith(broken.name + ': broken (')], \
        failure_messages(run)
    assert broken.run('pidof mariadbd').stdout.strip() == broken_pid
    write_extravars(pdd, extravars)

    # A machine credential without the privilege escalation password: the role's first
    # task as root says what to give; nothing changed.
    run = run_job(pdd, '1', machine_credential(pdd, 'ops', 'sudo'))
    assert run.status == 'failed', run.stdout.read()[-6000:]
    expected = ('%s: preflight: Ansible cannot act as root on this replica (Missing sudo '
                'password): give the become password (--ask-become-pass; in AWX, the machine '
                "credential's privilege escalation password)" % broken.name)
    assert [m for m in failure_messages(run) if m.startswith(expected)], failure_messages(run)
    assert broken.run('pidof mariadbd').stdout.strip() == broken_pid

    # With it, the job heals the replica: as a fleet (the survey's default answer), which
    # streams one backup through every replica that needs one: here the one. The primary
    # takes writes all through the job.
    passwords = machine_credential(pdd, 'ops', 'sudo', broken.ops_password)
    with SecretsWatch([repl_password, broken.ops_password]) as watch, \
            LoadGenerator(primary, rate=20, max_rows=10 ** 6) as writer:
        run = run_job(pdd, '2', passwords)
    stdout = run.stdout.read()
    assert run.status == 'successful' and run.rc == 0, stdout[-6000:]
    assert watch.leaks == [] and watch.samples > 5
    writer.check_arrived(broken, healthy)

    # The broken replica runs on new data and caught up; the healthy one was left alone.
    s = broken.slave_status()
    assert (s['Slave_IO_Running'], s['Slave_SQL_Running'], s['Last_SQL_Errno']) == ('Yes', 'Yes', '0')
    scenarios.wait_caught_up(primary, broken)
    assert broken.sql_value('SELECT COUNT(*) FROM labdb.t') == primary.sql_value(
        'SELECT COUNT(*) FROM labdb.t')
    assert broken.sql_value('SELECT @@datadir') == '/data/mysql/'
    assert healthy.run('pidof mariadbd').stdout.strip() == healthy_pid
    # No credential between database hosts: no key was added anywhere.
    assert dict((h.name, h.run('cat /home/ops/.ssh/authorized_keys').stdout)
                for h in (primary, broken, healthy)) == keys_before

    # AWX shows the job's events: the summary of the rebuilt replica is one of them.
    summaries = [e['event_data']['res']['replica_rebuild_result'] for e in run.events
                 if e.get('event') == 'runner_on_ok'
                 and 'replica_rebuild_result' in e.get('event_data', {}).get('res', {})]
    by_host = dict((r['host'], r) for r in summaries)
    assert by_host[broken.name]['action'] == 'rebuilt' and by_host[healthy.name]['action'] == 'none'
    assert by_host[broken.name]['diagnosis_before'] == 'broken'
    # A replica left alone names no source: nothing was copied from anywhere.
    assert by_host[broken.name]['source'] == primary.name and 'source' not in by_host[healthy.name]
    # The job's artifacts (what a workflow's next node and AWX's API see): every replica,
    # its diagnosis before and after, the bytes it received, its downtime, its verification.
    results = artifacts(run)['replica_rebuild_results']
    assert sorted(results) == sorted([broken.name, healthy.name])
    rebuilt, left = results[broken.name], results[healthy.name]
    assert (rebuilt['diagnosis_before'], rebuilt['diagnosis_after'], rebuilt['action']) == (
        'broken', 'healthy', 'rebuilt'), rebuilt
    # The copy (bytes: what mariadb-backup gave) and what the replica received: as much, or
    # less when compression=auto chose to compress.
    assert 100000 < int(rebuilt['bytes_received']) <= int(rebuilt['bytes']), rebuilt
    assert int(rebuilt['bytes']) > 1000000, rebuilt
    assert 0 < float(rebuilt['downtime_seconds']) < 60
    assert re.match(r'^\d+ tables equal at 0-\d+-\d+', rebuilt['verified']), rebuilt
    assert (left['diagnosis_before'], left['diagnosis_after'], left['action'], left['verified']) == (
        'healthy', 'healthy', 'none', 'not checked'), left
    # The job output ends with one line per replica.
    assert re.search(r'"%s: broken -> healthy: rebuilt from %s, [\d.]+ MB received, down [\d.]+ s, '
                     r'\d+ tables equal at ' % (broken.name, primary.name), stdout), stdout[-3000:]
    assert '"%s: healthy -> healthy: none"' % healthy.name in stdout

    # The status template again (the workflow's last node, or the next scheduled run): green.
    write_extravars(pdd, status_vars)
    run = run_job(pdd, '3', passwords, playbook='playbooks/replica_status.yml')
    assert run.status == 'successful', run.stdout.read()[-6000:]
    assert [r['state'] for r in artifacts(run)['replica_status'].values()] == ['healthy'] * 2

    # Nothing ansible-runner wrote holds a password (env/extravars is AWX's own input,
    # deleted by AWX with the private data dir).
    leaks = []
    for top, dirs, files in os.walk(str(pdd / 'artifacts')):
        for name in files:
            with open(os.path.join(top, name), 'rb') as f:
                data = f.read()
            leaks.extend(os.path.join(top, name) for secret in (repl_password, broken.ops_password)
                         if secret.encode() in data)
    assert leaks == []
    assert os.listdir(str(pdd / 'artifacts' / '2' / 'job_events'))
