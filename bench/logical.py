# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Section `logical`: the logical copies users fall back to, source -> destination.

- `mariadb-dump --single-transaction --quick sbtest | mariadb -h <destination> sbtest_copy`,
  run on the source;
- mydumper (2 threads) into a folder on the source, then myloader (2 threads) from there
  into the destination: dump, load, and both as one figure.

Both load into an emptied sbtest_copy on the destination without binary logging (as a
replica is seeded), through an account made for the run. Its password is in a 0600 option
file on the source, never on a command line.
"""

from __future__ import annotations

import secrets

from core import Measure
from scenarios import q

USER = 'bench_logical'
OPTIONS = '/tmp/bench-logical.cnf'
DUMP_DIR = '/tmp/bench-mydumper'
OPTION_FILE = """\
[client]
host={host}
user={user}
password={password}

[mysql]
init-command=SET SESSION sql_log_bin=0
"""


def grant(src, dst):
    """The loading account on the destination, and its option file on the source."""
    password = secrets.token_hex(16)
    dst.sql("SET SESSION sql_log_bin=0; CREATE USER IF NOT EXISTS {u}@{h} IDENTIFIED BY {p};"
            "ALTER USER {u}@{h} IDENTIFIED BY {p};"
            "GRANT ALL ON sbtest_copy.* TO {u}@{h}; GRANT BINLOG ADMIN ON *.* TO {u}@{h};"
            .format(u=q(USER), h=q(src.ip), p=q(password)))
    src.run(['sh', '-c', 'umask 077 && cat > ' + OPTIONS],
            input=OPTION_FILE.format(host=dst.ip, user=USER, password=password))


def empty_copy(dst):
    dst.sql('SET SESSION sql_log_bin=0; DROP DATABASE IF EXISTS sbtest_copy;'
            'CREATE DATABASE sbtest_copy;')


def mydumper_once(bench):
    """mydumper, then myloader: one Measure of both, each part in extra."""
    src, dst = bench.src, bench.dst
    empty_copy(dst)
    dump = bench.shell(src, 'mydumper -u root -S /run/mysqld/mysqld.sock -B sbtest -t 2 '
                       '-o %s' % DUMP_DIR, before='rm -rf ' + DUMP_DIR)
    load = bench.shell(src, 'myloader --defaults-file=%s -d %s -s sbtest -B sbtest_copy '
                       '-t 2 -o' % (OPTIONS, DUMP_DIR))
    return Measure(dump.seconds + load.seconds, (dump.window[0], load.window[1]),
                   dump=dump, load=load)


def rows_of(host, db):
    return host.sql_value('SELECT COUNT(*) FROM %s.sbtest1' % db)


def logical(bench):
    src, dst = bench.src, bench.dst
    nbytes = bench.facts.get('stream_bytes')
    grant(src, dst)
    try:
        m = bench.timed(src, 'mariadb-dump --single-transaction --quick sbtest | '
                        'mariadb --defaults-file=%s sbtest_copy' % OPTIONS,
                        before=lambda: empty_copy(dst))
        if rows_of(dst, 'sbtest_copy') != rows_of(src, 'sbtest'):
            raise RuntimeError('mariadb-dump | mariadb: sbtest_copy.sbtest1 differs')
        bench.add('mariadb-dump --single-transaction --quick | mariadb', 'logical', m, nbytes)
        m = bench.repeated(lambda: mydumper_once(bench))
        if rows_of(dst, 'sbtest_copy') != rows_of(src, 'sbtest'):
            raise RuntimeError('mydumper + myloader: sbtest_copy.sbtest1 differs')
        bench.add('mydumper -t 2 (to a folder on the source)', 'logical', m.extra['dump'],
                  nbytes)
        bench.add('myloader -t 2 (from there into the destination)', 'logical',
                  m.extra['load'], nbytes)
        bench.add('mydumper + myloader', 'logical', m, nbytes)
    finally:
        src.run('rm -rf %s %s' % (OPTIONS, DUMP_DIR))
        dst.sql('SET SESSION sql_log_bin=0; DROP DATABASE IF EXISTS sbtest_copy; '
                'DROP USER IF EXISTS %s@%s;' % (q(USER), q(src.ip)))
