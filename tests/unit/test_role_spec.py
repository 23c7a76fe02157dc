# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/argument_specs.yml is the single source of the role's variables: every public
variable the role, the playbooks and the AWX files name is in it, with the default
defaults/main.yml gives, and in the README's table."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(TOP, 'roles', 'replica_rebuild')
# Where the variables are read (the spec itself, meta/, is what they are checked against).
READERS = [os.path.join(ROLE, d) for d in ('tasks', 'vars', 'defaults', 'templates')] + [
    os.path.join(TOP, 'playbooks'), os.path.join(TOP, 'awx')]
# A public name (internal ones, __replica_rebuild_*, are the role's own business).
NAME = re.compile(r'(?<![A-Za-z0-9_])replica_rebuild_[a-z0-9_]+')
# Outputs, not inputs: set by the role (summary.yml's set_fact and set_stats) for the
# playbooks, AWX and tests to read; nobody sets them for the role, so the spec has no place
# for them. The README documents them with the result.
OUTPUTS = {
    'replica_rebuild_result',   # one replica's result (summary.yml, set_fact)
    'replica_rebuild_results',  # every replica's, by host (summary.yml, set_stats)
}


def spec_options():
    with open(os.path.join(ROLE, 'meta', 'argument_specs.yml')) as f:
        return yaml.safe_load(f)['argument_specs']['main']['options']


def role_defaults():
    with open(os.path.join(ROLE, 'defaults', 'main.yml')) as f:
        return yaml.safe_load(f) or {}


def names_read():
    """{name: [files]} of every public role variable named where variables are read."""
    found = {}
    for top in READERS:
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                with open(path, errors='replace') as f:
                    text = f.read()
                for m in NAME.finditer(text):
                    found.setdefault(m.group(0), set()).add(os.path.relpath(path, TOP))
    return found


def defined(name, options):
    # A name ending in '_' is a prefix the tasks complete (lookup('vars', '..._ssl_' ~ option)).
    if name.endswith('_'):
        return any(option.startswith(name) for option in options)
    return name in options or name in OUTPUTS


def test_every_variable_read_is_in_the_argument_spec():
    options = spec_options()
    missing = dict((name, sorted(files)) for name, files in names_read().items()
                   if not defined(name, options))
    listed = '; '.join('%s (%s)' % (name, ', '.join(files))
                       for name, files in sorted(missing.items()))
    assert missing == {}, (
        'variables named but not in roles/replica_rebuild/meta/argument_specs.yml '
        '(add them there, to defaults/main.yml when they have a default, and to the '
        'README table): %s' % listed)


def test_the_walk_sees_the_files_it_should():
    # A walk that found nothing would pass the test above for nothing.
    found = names_read()
    assert 'roles/replica_rebuild/tasks/verify.yml' in found['replica_rebuild_verify_user']
    assert 'playbooks/rebuild_replica.yml' in found['replica_rebuild_serial']
    assert 'awx/survey.json' in found['replica_rebuild_force']
    assert not [n for n in found if n.startswith('__')]


def test_defaults_and_the_spec_agree():
    """defaults/main.yml sets what the spec says: the same value, or for a default computed
    from other variables (a template), no default in the spec (its description says it);
    and every default the spec states is set by defaults/main.yml."""
    options, defaults = spec_options(), role_defaults()
    wrong = []
    for name, value in sorted(defaults.items()):
        if name not in options:
            wrong.append('%s: in defaults/main.yml, not in the spec' % name)
        elif isinstance(value, str) and '{{' in value:
            if 'default' in options[name]:
                wrong.append('%s: computed in defaults/main.yml, yet the spec states %r'
                             % (name, options[name]['default']))
        elif options[name].get('default', '<none>') != value:
            wrong.append('%s: defaults/main.yml %r, spec %r' % (
                name, value, options[name].get('default', '<none>')))
    for name, option in sorted(options.items()):
        if 'default' in option and name not in defaults:
            wrong.append('%s: the spec states default %r, defaults/main.yml sets none'
                         % (name, option['default']))
        if option.get('required') and name in defaults:
            wrong.append('%s: required, yet defaults/main.yml sets it' % name)
    assert wrong == [], '; '.join(wrong)


def test_passwords_are_no_log_in_the_spec():
    options = spec_options()
    loose = [name for name, option in options.items()
             if re.search(r'password|secret|token', name) and option.get('no_log') is not True]
    assert loose == []


def readme_names():
    """The variables of the README's table, 'replica_rebuild_x_user` / `_password'
    shorthand expanded."""
    with open(os.path.join(ROLE, 'README.md')) as f:
        text = f.read()
    table = text.split('## Variables', 1)[1].split('\n## ', 1)[0]
    names = set()
    for line in table.splitlines():
        if not line.startswith('| `'):
            continue
        cell = line.split('|')[1]
        first = None
        for word in re.findall(r'`([a-z0-9_]+)`', cell):
            if word.startswith('replica_rebuild_'):
                first = word
                names.add(word)
            elif word.startswith('_') and first:
                names.add(first.rsplit('_', 1)[0] + word)
    return names


def test_the_readme_table_lists_every_variable_of_the_spec():
    options, documented = spec_options(), readme_names()
    assert sorted(set(options) - documented) == [], 'in the spec, not in the README table'
    assert sorted(documented - set(options)) == [], 'in the README table, not in the spec'


def development_walk():
    """docs/DEVELOPMENT.md's table of the data through the role: its rows' cells."""
    with open(os.path.join(TOP, 'docs', 'DEVELOPMENT.md')) as f:
        text = f.read()
    section = text.split('## The data through the role', 1)[1].split('\n## ', 1)[0]
    return [[c.strip() for c in line.strip('|').split('|')]
            for line in section.splitlines() if line.startswith('| `')]


def test_the_development_walk_names_every_task_file_and_only_real_names():
    rows = development_walk()
    files = set(re.findall(r'`([a-z_]+\.yml)`', ' '.join(row[0] for row in rows)))
    tasks = set(f for f in os.listdir(os.path.join(ROLE, 'tasks')) if f.endswith('.yml'))
    # main.yml is the table of contents the walk follows; the small helpers of a step
    # (certificates and keys removed, the source's threads restarted) are its own.
    helpers = {'main.yml', 'transfer_cert_remove.yml', 'ssh_key_remove.yml', 'source_restart.yml',
               'keep_read.yml'}
    assert tasks - helpers <= files, sorted(tasks - helpers - files)
    assert files <= tasks, sorted(files - tasks)
    role_text = ''
    for root, dirs, names in os.walk(ROLE):
        for name in names:
            with open(os.path.join(root, name)) as f:
                role_text += f.read()
    named = set(re.findall(r'__replica_rebuild_[a-z0-9_]+', ' '.join(' '.join(r) for r in rows)))
    assert len(named) > 20
    missing = sorted(n for n in named if not re.search(re.escape(n) + r'(?![a-z0-9_])', role_text))
    assert not missing, 'named in docs/DEVELOPMENT.md but not in the role: %s' % missing
    modules = set(re.findall(r'`([a-z_]+)`', ' '.join(row[1] for row in rows)))
    shipped = set(f[:-3] for f in os.listdir(os.path.join(TOP, 'plugins', 'modules')))
    assert shipped <= modules | {'__init__'}, sorted(shipped - modules)
