# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.reseed.mariadb.plugins.module_utils import gtid

GTIDS = st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                           st.integers(0, 2**64 - 1)), max_size=6)


@given(GTIDS)
def test_format_parse_round_trip(items):
    text = gtid.format_list(items)
    assert sorted(gtid.parse(text)) == sorted(items)
    assert gtid.format_list(gtid.parse(text)) == text


@given(st.dictionaries(st.integers(0, 1000), st.tuples(st.integers(1, 9), st.integers(1, 10**9)),
                       max_size=5))
def test_position_round_trip(pos):
    text = gtid.format_list((d, s, n) for d, (s, n) in pos.items())
    assert gtid.position(text) == pos
    assert gtid.reached(text, text)


@pytest.mark.parametrize('text', ['0-1', 'a-b-c', '0-1-2-3', '-1-2', '0-1-99999999999999999999',
                                  '4294967296-1-1'])
def test_malformed(text):
    with pytest.raises(gtid.GtidError):
        gtid.parse(text)


def test_position_rejects_two_gtids_of_one_domain():
    with pytest.raises(gtid.GtidError, match='domain 0 twice'):
        gtid.position('0-1-5,0-2-7')
    assert gtid.state('0-1-5,0-2-7,0-1-3') == {(0, 1): 5, (0, 2): 7}


def test_errant():
    primary = '0-1-100,1-3-7'
    assert gtid.errant('0-1-90', primary) == []                       # behind: fine
    assert gtid.errant('0-1-100,1-3-7', primary) == []
    assert gtid.errant('0-1-90,0-2-91', primary) == [(0, 2, 91)]      # written on the replica
    assert gtid.errant('0-1-120', primary) == [(0, 1, 120)]           # primary lost history
    assert gtid.errant('5-2-1', primary) == [(5, 2, 1)]               # a domain it never had
    assert gtid.errant('', primary) == []


def test_reached_multi_domain():
    assert gtid.reached('0-1-10,1-2-5', '0-1-10')
    assert not gtid.reached('0-1-9,1-2-5', '0-1-10,1-2-5')
    assert not gtid.reached('0-1-10', '0-1-10,1-2-1')


STATES = st.dictionaries(st.tuples(st.integers(0, 5), st.integers(1, 5)), st.integers(1, 10**6),
                         max_size=6)


def as_text(state):
    return gtid.format_list((d, s, n) for (d, s), n in state.items())


@given(STATES, STATES)
def test_errant_is_exactly_what_the_primary_does_not_cover(replica, primary):
    found = gtid.errant(as_text(replica), as_text(primary))
    assert gtid.errant(as_text(replica), as_text(replica)) == []
    assert found == sorted((d, s, n) for (d, s), n in replica.items()
                           if primary.get((d, s), 0) < n)
    # A primary that has moved on (higher sequences, more pairs) still covers the replica.
    ahead = dict(primary)
    for key, seq in replica.items():
        ahead[key] = max(seq, ahead.get(key, 0)) + 1
    assert gtid.errant(as_text(replica), as_text(ahead)) == []
