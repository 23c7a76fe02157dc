# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run our modules and playbooks on lab hosts through real Ansible, from tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The collection as Ansible finds it: .build/ansible_collections/reseed/mariadb -> the repo.
COLLECTIONS_PATH = os.path.join(REPO, '.build')


def ensure_collection_link():
    link = os.path.join(COLLECTIONS_PATH, 'ansible_collections', 'reseed', 'mariadb')
    if os.path.realpath(link) != REPO:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(REPO, link)
    return link


def ansible_env(extra=None):
    ensure_collection_link()
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_PATH,
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_PIPELINING': 'True',
        'ANSIBLE_SSH_ARGS': '-o ControlMaster=auto -o ControlPersist=60s',
        'ANSIBLE_LOCAL_TEMP': os.path.join(tempfile.gettempdir(), 'reseed-ansible-local'),
        'ANSIBLE_DEPRECATION_WARNINGS': 'False',
    })
    env.update(extra or {})
    return env


def bin_path(name):
    """A console script of the Python running the tests (the project's venv)."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


class ModuleRun(object):
    """What one module run gave: the result dict and everything Ansible printed."""

    def __init__(self, result, stdout, stderr, returncode):
        self.result = result
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    @property
    def failed(self):
        return bool(self.result.get('failed')) or self.result.get('unreachable', False)

    @property
    def changed(self):
        return bool(self.result.get('changed'))

    def __repr__(self):
        return 'ModuleRun(%r)' % (self.result,)


def write_inventory(lab, path, primary, replicas=(), others=()):
    with open(path, 'w') as f:
        json.dump(lab.inventory(primary, list(replicas), list(others)), f, indent=2)
    return path


PLAY = """- name: Run one module
  hosts: "{host}"
  gather_facts: false
  tasks:
    - name: Run {module}
      {module}:
      args: "{{{{ __reseed_test_args }}}}"
"""


def write_module_play(tmp, host, module, args):
    """A one-task playbook running `module` (short names get the reseed.mariadb. prefix) on
    one host, and its arguments in a 0600 file, never on a command line: tests watch every
    argv for secrets, ours included. Returns (playbook, ansible-playbook arguments, tree
    directory where the tree callback writes the host's result)."""
    if '.' not in module:
        module = 'reseed.mariadb.' + module
    playbook = os.path.join(tmp, 'play.yml')
    with open(playbook, 'w') as f:
        f.write(PLAY.format(host=host, module=module))
    varsfile = os.path.join(tmp, 'args.json')
    with os.fdopen(os.open(varsfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
        json.dump({'__reseed_test_args': args or {}}, f)
    return playbook, ['-e', '@' + varsfile], os.path.join(tmp, 'tree')


def tree_env(tree, env=None):
    # The tree callback writes each host's last result as JSON: exact, whatever the module.
    return dict(env or {}, ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.tree',
                ANSIBLE_CALLBACK_TREE_DIR=tree)


def run_module(inventory, host, module, args=None, check=False, diff=False, verbosity=0,
               env=None, timeout=900):
    """Run one of our modules on one inventory host; returns a ModuleRun."""
    with tempfile.TemporaryDirectory(prefix='reseed-run-') as tmp:
        playbook, extra, tree = write_module_play(tmp, host, module, args)
        proc = playbook_process(inventory, playbook, extra, check, diff, verbosity,
                                tree_env(tree, env), timeout)
        path = os.path.join(tree, host)
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
        else:
            result = {'msg': 'no result for %s: %s %s' % (
                host, proc.stdout[-2000:], proc.stderr[-2000:])}
    # The verdict is not in the tree's result: take it from the recap line.
    recap = next((line for line in proc.stdout.splitlines()
                  if line.startswith(host + ' ') and 'ok=' in line), '')
    if 'unreachable=1' in recap:
        result.setdefault('unreachable', True)
    if 'failed=1' in recap or 'unreachable=1' in recap or proc.returncode:
        result.setdefault('failed', True)
    return ModuleRun(result, proc.stdout, proc.stderr, proc.returncode)


def start_module(tmp, inventory, host, module, args=None):
    """Start one module run in the background, in a session of its own (so that a test can
    interrupt it as a terminal's Ctrl-C would: the whole process group). Returns the Popen;
    its output goes to tmp/stdout."""
    playbook, extra, tree = write_module_play(tmp, host, module, args)
    out = open(os.path.join(tmp, 'stdout'), 'w')
    return subprocess.Popen([bin_path('ansible-playbook'), '-i', inventory, playbook] + extra,
                            stdout=out, stderr=subprocess.STDOUT, text=True,
                            env=ansible_env(tree_env(tree)), cwd=REPO,
                            start_new_session=True)


def playbook_process(inventory, playbook, extra_args, check, diff, verbosity, env, timeout):
    argv = [bin_path('ansible-playbook'), '-i', inventory, playbook] + list(extra_args)
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    if verbosity:
        argv.append('-' + 'v' * verbosity)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=ansible_env(env), timeout=timeout, cwd=REPO, check=False)


def run_playbook(inventory, playbook, extra_vars=None, check=False, diff=False,
                 verbosity=0, env=None, timeout=3600, tags=None, limit=None):
    """Run a playbook; returns CompletedProcess (stdout and stderr as text). Extra vars go
    through a 0600 file, never the command line."""
    args = []
    if tags:
        args += ['--tags', tags]
    if limit:
        args += ['--limit', limit]
    with tempfile.TemporaryDirectory(prefix='reseed-run-') as tmp:
        if extra_vars:
            varsfile = os.path.join(tmp, 'extra_vars.json')
            with os.fdopen(os.open(varsfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
                json.dump(extra_vars, f)
            args += ['-e', '@' + varsfile]
        return playbook_process(inventory, playbook, args, check, diff, verbosity, env,
                                timeout)


RESULTS_CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'callback_plugins')


def run_playbook_results(inventory, playbook, extra_vars=None, env=None, **kw):
    """run_playbook, and what the run left with set_stats (callback_plugins/reseed_results):
    (CompletedProcess, dict), e.g. results['replica_rebuild_results'][host]['action']."""
    env = dict(env or {})
    enabled = [c for c in env.get('ANSIBLE_CALLBACKS_ENABLED', '').split(',') if c]
    paths = [p for p in env.get('ANSIBLE_CALLBACK_PLUGINS', '').split(':') if p]
    with tempfile.TemporaryDirectory(prefix='reseed-results-') as tmp:
        path = os.path.join(tmp, 'results.json')
        env.update(ANSIBLE_CALLBACKS_ENABLED=','.join(enabled + ['reseed_results']),
                   ANSIBLE_CALLBACK_PLUGINS=':'.join(paths + [RESULTS_CALLBACKS]),
                   RESEED_RESULTS_FILE=path)
        proc = run_playbook(inventory, playbook, extra_vars, env=env, **kw)
        results = {}
        if os.path.exists(path):
            with open(path) as f:
                results = json.load(f)
    return proc, results


def task_lines(stdout, name):
    """The host lines ('ok: [h]', 'skipping: [h]', ...) the default callback printed under
    every task whose name ends with `name`."""
    lines = []
    for block in stdout.split('\nTASK [')[1:]:
        head, body = block.partition('\n')[::2]
        if head.split(']')[0].endswith(name):
            lines += [line for line in body.splitlines() if ': [' in line]
    return lines
