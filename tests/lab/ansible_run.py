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


def run_module(inventory, host, module, args=None, check=False, diff=False, verbosity=0,
               env=None, timeout=900):
    """Run `module` (short names get the reseed.mariadb. prefix) on one inventory host."""
    if '.' not in module:
        module = 'reseed.mariadb.' + module
    argv = [bin_path('ansible'), host, '-i', inventory, '-m', module, '-o']
    if args:
        argv += ['-a', json.dumps(args)]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    if verbosity:
        argv.append('-' + 'v' * verbosity)
    with tempfile.TemporaryDirectory(prefix='reseed-tree-') as tree:
        # The tree callback writes each host's result as JSON: exact, whatever the module.
        env = dict(env or {}, ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
                   ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.tree',
                   ANSIBLE_CALLBACK_TREE_DIR=tree)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=ansible_env(env), timeout=timeout, cwd=REPO, check=False)
        path = os.path.join(tree, host)
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
        else:
            result = {'failed': True, 'msg': 'no result for %s: %s %s' % (
                host, proc.stdout[-2000:], proc.stderr[-2000:])}
    # The tree callback leaves the verdict out of the result: take it from the status line.
    status = next((line.split(' | ')[1].split()[0] for line in proc.stdout.splitlines()
                   if line.startswith(host + ' | ')), '')
    if status.startswith('UNREACHABLE'):
        result.setdefault('unreachable', True)
    if status.startswith(('FAILED', 'UNREACHABLE')) or (not status and proc.returncode):
        result.setdefault('failed', True)
    return ModuleRun(result, proc.stdout, proc.stderr, proc.returncode)


def run_playbook(inventory, playbook, extra_vars=None, check=False, diff=False,
                 verbosity=0, env=None, timeout=3600, tags=None, limit=None):
    """Run a playbook; returns CompletedProcess (stdout and stderr as text)."""
    argv = [bin_path('ansible-playbook'), '-i', inventory, playbook]
    if extra_vars:
        argv += ['-e', json.dumps(extra_vars)]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    if tags:
        argv += ['--tags', tags]
    if limit:
        argv += ['--limit', limit]
    if verbosity:
        argv.append('-' + 'v' * verbosity)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=ansible_env(env), timeout=timeout, cwd=REPO, check=False)
