# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's DOCUMENTATION, EXAMPLES and RETURN is YAML that parses: a stray ': ' in
a description breaks ansible-doc, the docs site and sanity, and this says so in seconds."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import glob
import os

import pytest
import yaml

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))
MODULES = sorted(glob.glob(os.path.join(TOP, 'plugins', 'modules', '*.py')))
BLOCKS = ('DOCUMENTATION', 'EXAMPLES', 'RETURN')


def blocks(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in BLOCKS:
            found[node.targets[0].id] = node.value.value
    return found


@pytest.mark.parametrize('path', MODULES, ids=[os.path.basename(p) for p in MODULES])
def test_doc_blocks_are_yaml(path):
    found = blocks(path)
    assert sorted(found) == sorted(BLOCKS)
    for name, text in found.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as e:
            pytest.fail('%s %s: %s' % (os.path.basename(path), name, e))
    doc = yaml.safe_load(found['DOCUMENTATION'])
    assert doc['module'] == os.path.basename(path)[:-3]
