# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/report.py's fleet table and targets: on shaped links (bench.py --fleet-rate) the
targets are issue 24's (a chain of 4 within 1.3x one replica, 3x faster than one at a time),
on the lab's open links issue 13's (1.5x, 2.5x); each host's CPU seconds are in the table."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import os

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Loaded from its path: bench/ is not a package (see test_bench_model.py).
_SPEC = importlib.util.spec_from_file_location('bench_report', os.path.join(TOP, 'bench', 'report.py'))
report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(report)


def row(mode, seconds, link, sent=1.2e9):
    return dict(kind='fleet', part='wall', fleet=mode, seconds=seconds, link=link,
                cpu_s=seconds, cpu_floor_s=seconds / 2, copy=1.18e9, read=1.2e9,
                read_disk=0, sent=sent, backups=1, compression='none',
                downtime={'r1': 1.5}, host_cpu={'src': 20.0, 'r1': 6.5})


def verdicts(rows):
    return dict((text, verdict) for text, dummy, verdict in report.fleet_targets(rows))


def test_shaped_links_take_issue_24s_targets():
    # 1.4x one replica and 2.9x faster than one at a time: issue 13's 1.5x and 2.5x would
    # be met; issue 24's 1.3x and 3x are not.
    rows = [row('single', 100, '200mbit'), row('fleet', 140, '200mbit'),
            row('serial', 406, '200mbit', sent=4.8e9)]
    got = verdicts(rows)
    assert got['fleet of 4 <= 1.3x a single replica (end to end, verified) on links of 200mbit'] == 'NOT MET'
    assert got['fleet >= 3x faster than one at a time on links of 200mbit'] == 'NOT MET'
    rows[1]['seconds'] = 120
    got = verdicts(rows)
    assert got['fleet of 4 <= 1.3x a single replica (end to end, verified) on links of 200mbit'] == 'met'
    assert got['fleet >= 3x faster than one at a time on links of 200mbit'] == 'met'


def test_open_links_keep_issue_13s_targets():
    rows = [row('single', 100, None), row('fleet', 140, None), row('serial', 360, None)]
    got = verdicts(rows)
    assert got['fleet of 4 <= 1.5x a single replica (end to end, verified)'] == 'met'
    assert got['fleet >= 2.5x faster than one at a time'] == 'met'


def test_the_shaped_sections_targets_leave_the_fleets_rows_alone():
    # A fleet row has a link but no transport: the data path's shaped targets skip it.
    rows = [row('single', 100, '200mbit'), row('fleet', 120, '200mbit')]
    texts = [text for text, dummy, dummy in report.targets(rows)]
    assert 'fleet of 4 <= 1.3x a single replica (end to end, verified) on links of 200mbit' in texts


def test_the_table_names_the_link_and_each_hosts_cpu():
    text = '\n'.join(report.fleet_table([row('single', 100, '200mbit'), row('fleet', 120, '200mbit')]))
    assert 'every host shaped to 200mbit both ways' in text
    assert 'CPU s by host' in text and '| r1 6.5, src 20.0 |' in text
