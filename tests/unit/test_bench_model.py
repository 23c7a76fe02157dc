# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/model.py (docs/PERFORMANCE.md, "A terabyte on paper") reproduces the measured 1 GB
and 8 GB runs it is checked against, within the tolerances the doc states."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import os

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP = os.path.dirname(TOP)
# Loaded from its path: bench/ is not a package, and its other modules (core, fleet, report)
# must not shadow anything on sys.path.
_SPEC = importlib.util.spec_from_file_location('bench_model', os.path.join(TOP, 'bench', 'model.py'))
model = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(model)

# The play's totals and the streams' seconds: within 15 %. The CPU seconds of the streams and
# the 1 GB verification: within 25 % (the sum of the stages alone is above the stream's CPU,
# and the check's fixed cost, about 2.4 s at 1 GB, is not modelled).
TOLERANCE = {'seconds': 0.15, 'cpu': 0.25, 'verification, 1 GB': 0.25}
CHECKED = dict((row[0], row) for row in model.checks())


@pytest.mark.parametrize('name', sorted(CHECKED))
def test_the_model_reproduces_the_measured_run(name):
    dummy, measured, modelled, error, cpu, modelled_cpu, cpu_error, dummy = CHECKED[name]
    tolerance = TOLERANCE.get(name, TOLERANCE['seconds'])
    assert abs(error) <= tolerance, '%s: measured %.2f s, model %.2f s' % (
        name, measured, modelled)
    if cpu is not None:
        assert abs(cpu_error) <= TOLERANCE['cpu'], '%s: measured %.2f CPU s, model %.2f' % (
            name, cpu, modelled_cpu)


def test_every_size_is_checked():
    """The whole run, at both sizes, is among the checks."""
    assert {'whole run, 1 GB', 'whole run, 8 GB', 'stream tls, 1 GB',
            'stream tls, 8 GB'} <= set(CHECKED)


def test_the_fleet_ratio_at_8_gb_and_what_it_leaves_out_at_1_gb():
    """8 GB: within 15 %. 1 GB: the model is under the measured ratio, because it leaves out
    what grows with the hosts and not with the bytes (Ansible's tasks for five hosts on the
    lab's two cores); the doc says so."""
    rows = dict((row[0], row) for row in model.fleet_checks())
    dummy, measured, modelled, error, dummy = rows['fleet of 4 / one replica, 8 GB']
    assert abs(error) <= 0.15, (measured, modelled)
    dummy, measured, modelled, dummy, dummy = rows['fleet of 4 / one replica, 1 GB']
    assert modelled < measured


def test_the_projection_names_its_limits():
    rows = dict(((gb, label), r) for gb, label, r in model.projection())
    one = rows[(1000, 'one replica, tls')]
    # 10 Gbit/s is 0.8 s per GB; one TLS end in one thread (socat's, measured) is slower.
    assert one['stream_limit'] == 'source relay (1 thread)'
    assert one['stream'] == pytest.approx(1000 * model.per_gb('tls')[0] / 2)
    assert rows[(1000, 'one replica, tcp')]['stream_limit'] == 'link'
    # A middle replica of the chain receives and forwards in one thread.
    assert rows[(1000, 'fleet of 10, chain, tls')]['stream_limit'] == 'replica relay (1 thread)'
    # Every whole run is bound by the verification's one thread per side.
    assert all(r['limit'] == 'verify' for r in rows.values())
    serial = rows[(1000, '10 one at a time, tls')]
    assert serial['whole'] == pytest.approx(10 * one['whole'])


def test_linear_in_bytes():
    """CPU seconds scale linearly with the copy's size (the model's first assumption)."""
    assert model.stream(1000)['cpu'] == pytest.approx(10 * model.stream(100)['cpu'])


def test_inputs_name_their_source():
    for name, (dummy, where) in model.INPUTS.items():
        assert where, name
