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

(or run(module, step, where, result), which is that and the exit_json). C(msg) stays the
one line a user reads: '<where>: <message>'. db_code(), server_refused() and wrote() are
how a DbError becomes one, in every module alike.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.reseed.mariadb.plugins.module_utils import connection

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
    result['changed'] = bool(result.get('changed')) or not failure.changed_nothing
    module.fail_json(msg='%s: %s' % (where, failure.message) if where else failure.message,
                     **result)


def run(module, step, where, result, cleanup=None):
    """The one exit of a module: step() returns its message, and the module exits with it
    and result; or step() raises a Failure, which cleanup(failure) (when given) may replace,
    and the module fails with it and result."""
    try:
        msg = step()
    except Failure as e:
        fail(module, (cleanup(e) if cleanup else None) or e, where, **result)
    module.exit_json(msg=msg, **result)


# Client errors that mean the link to a server, not the server: cannot connect (2003, 2005),
# gone or lost (2006, 2013), TLS handshake (2026).
LINK_ERRORS = (2003, 2005, 2006, 2013, 2026)


def db_code(error, connected):
    """The code of a DbError: no connection made (login, or no PyMySQL to make one), or the
    statement that failed, by the server's error number."""
    if not connected:
        return 'login' if connection.HAS_PYMYSQL else 'no_pymysql'
    return 'statement_error' + ('_%d' % error.code if getattr(error, 'code', None) else '')


def server_refused(error):
    """Whether the server refused the statement (it refuses one whole, so it did not run);
    a client error (2000 and up, a lost connection) may have come after it ran."""
    code = getattr(error, 'code', None)
    return isinstance(code, int) and code < 2000


def wrote(queries, last_refused, changes):
    """Whether a statement that changes the server ran: changes(statement) for each of
    queries, the last one not counted when the server refused it."""
    return any(changes(q) for q in queries[:-1 if last_refused and queries else None])
