# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failure a module returns is part of its interface (the role branches on its code):
every module that fails through module_utils/failure.py documents C(failure) in RETURN,
and every step, side and code it raises as a literal is named there."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os
import re

import pytest
import yaml

from ansible_collections.reseed.mariadb.plugins.module_utils import failure

MODULES = os.path.join(os.path.dirname(failure.__file__), '..', 'modules')
# The callables that make a failure: Failure itself, and a module's own wrappers of it.
MAKERS = re.compile(r'^(Failure|\w+Failure|Failed|failed|StepError)$')
WORD = re.compile(r'^[a-z][a-z0-9_]*$')


def failing_modules():
    for name in sorted(os.listdir(MODULES)):
        path = os.path.join(MODULES, name)
        if name.endswith('.py') and 'module_utils.failure import' in open(path).read():
            yield name[:-3], path


def called_name(node):
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')


def raised_words(tree):
    """The snake_case string literals given to a failure maker: its steps, sides and codes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and MAKERS.match(called_name(node)):
            for arg in list(node.args) + [k.value for k in node.keywords]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                        and WORD.match(arg.value):
                    yield arg.value


def test_some_modules_fail_through_failure():
    assert len(list(failing_modules())) >= 3


@pytest.mark.parametrize('name,path', list(failing_modules()))
def test_failure_is_documented_with_every_code(name, path):
    tree = ast.parse(open(path).read())
    docs = dict((t.id, n.value.value) for n in tree.body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant))
    returned = yaml.safe_load(docs['RETURN'])
    assert 'failure' in returned, '%s: RETURN does not document failure' % name
    doc = returned['failure']
    assert doc['type'] == 'dict' and doc['returned'] == 'on failure', name
    text = ' '.join(doc['description'] if isinstance(doc['description'], list)
                    else [doc['description']])
    named = set(re.findall(r'C\(([^)]*)\)', text))
    words = set(raised_words(tree))
    assert words, '%s raises no failure with a literal code' % name
    missing = sorted(w for w in words if w not in named and w not in failure.SIDES)
    assert not missing, '%s: raised but not named in RETURN failure: %s' % (name, missing)
    sample = doc.get('sample') or {}
    assert set(sample) == {'step', 'side', 'code', 'changed_nothing', 'message'}, name
    assert sample['side'] in failure.SIDES, name


def test_a_failure_names_its_side():
    pytest.raises(ValueError, failure.Failure, 'stream', 'elsewhere', 'x', 'y')
    e = failure.Failure('stream', 'link', 'stalled', 'no byte for 60 s', changed_nothing=False)
    assert e.as_dict() == dict(step='stream', side='link', code='stalled', changed_nothing=False,
                               message='no byte for 60 s')
