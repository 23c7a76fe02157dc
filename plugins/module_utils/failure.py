# -*- coding: utf-8 -*-
# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a module of this collection fails: one typed exception inside the module, one exit in
main(), and a result whose C(failure) says what failed in fields (step, side, code,
changed_nothing, message), so that the role formats from the fields and never parses C(msg).

    try:
        ...
        raise Failure('preflight', 'replica', 'no_space', 'needs 2.1 GB, has 1.0 GB')
    except Failure as e:
        fail(module, e, 'backup_receive into /x', **result)

C(msg) stays the one line a user reads: '<where>: <message>'.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Where the cause lies: the host the backup is read from, the host that receives (and is
# rebuilt), or the connection between them.
SIDES = ('source', 'replica', 'link')


class Failure(Exception):
    """A step failed. `step` is the module's step (preflight, stream, receive, prepare, swap,
    ...), `side` one of SIDES, `code` a short keyword that stays the same from one release to
    the next (what a rescue or a test branches on), `changed_nothing` whether the host is as
    it was before the module ran, `message` the words for a user (safe to show: no secret)."""

    def __init__(self, step, side, code, message, changed_nothing=True):
        if side not in SIDES:
            raise ValueError('failure side %r is not one of %s' % (side, ', '.join(SIDES)))
        Exception.__init__(self, message)
        self.step = step
        self.side = side
        self.code = code
        self.message = message
        self.changed_nothing = bool(changed_nothing)

    def as_dict(self):
        return dict(step=self.step, side=self.side, code=self.code,
                    changed_nothing=self.changed_nothing, message=self.message)


def fail(module, failure, where, **result):
    """Exit the module as failed: msg '<where>: <message>' and the fields as C(failure)."""
    result['failure'] = failure.as_dict()
    result.setdefault('changed', not failure.changed_nothing)
    module.fail_json(msg='%s: %s' % (where, failure.message) if where else failure.message,
                     **result)
