# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication set up by hand SQL, test data, and the ways replicas break in production.

Every break_* function returns only once the replica shows the breakage it was asked for
(the error number in SHOW SLAVE STATUS, or the errant GTID in its binlog state), so a test
that calls it starts from a verified broken replica.
"""

from __future__ import annotations

import os
import subprocess
import time

from lab import LabError

REPL_USER = 'repl'
DB = 'labdb'


def q(value):
    """A SQL string literal (these helpers build SQL for the mariadb client)."""
    return "'" + str(value).replace('\\', '\\\\').replace("'", "\\'") + "'"


def wait_for(predicate, timeout=60, interval=0.2, what='condition', abort=None):
    """predicate() until true, at most timeout seconds; abort() true stops early."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        if abort is not None and abort():
            raise LabError('gave up waiting for %s: the run ended first' % what)
        time.sleep(interval)
    raise LabError('timed out after %ss waiting for %s (last: %r)' % (timeout, what, last))


def create_replication_user(primary, password, user=REPL_USER):
    primary.sql("CREATE USER IF NOT EXISTS {u}@'%' IDENTIFIED BY {p};"
                "ALTER USER {u}@'%' IDENTIFIED BY {p};"
                "GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN ON *.* TO {u}@'%';".format(
                    u=q(user), p=q(password)))


def major(host):
    """(major, minor) of the host's server, e.g. (11, 8)."""
    return tuple(int(n) for n in host.sql_value('SELECT @@version').split('.')[:2])


def master_ssl(primary, replica):
    """', MASTER_SSL=0' when the replica would ask for TLS a primary has not: from 11.4 on a
    replica's CHANGE MASTER defaults to MASTER_SSL=1 (verified), and a 10.11 primary of
    Debian's has none (docs/VERSIONS.md, f1: IO error 2026). Otherwise nothing."""
    if major(replica) >= (11, 4) and primary.sql_value('SELECT @@have_ssl') != 'YES':
        return ', MASTER_SSL=0'
    return ''


def start_replication(primary, replica, password, user=REPL_USER, wait=True):
    """Point replica at primary with GTID slave_pos from the replica's current position."""
    replica.sql("STOP SLAVE; RESET SLAVE ALL;"
                "CHANGE MASTER TO MASTER_HOST={h}, MASTER_PORT=3306, MASTER_USER={u}, "
                "MASTER_PASSWORD={p}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1{s};"
                "START SLAVE;".format(h=q(primary.ip), u=q(user), p=q(password),
                                      s=master_ssl(primary, replica)))
    if wait:
        wait_running(replica)


def threads(status):
    """The fields of SHOW SLAVE STATUS that say why a thread is not running (assert messages:
    pytest cuts a whole status short)."""
    return dict((k, status.get(k)) for k in (
        'Slave_IO_Running', 'Slave_SQL_Running', 'Last_IO_Error', 'Last_SQL_Error',
        'Until_Condition', 'Using_Gtid'))


def wait_running(replica, timeout=60):
    seen = {}

    def running():
        seen.update(replica.slave_status())
        return seen if seen.get('Slave_IO_Running') == 'Yes' and \
            seen.get('Slave_SQL_Running') == 'Yes' else None
    try:
        return wait_for(running, timeout, what='both replication threads on %s' % replica.name)
    except LabError:
        raise LabError('replication on %s did not run: IO %s %s, SQL %s %s' % (
            replica.name, seen.get('Slave_IO_Running'), seen.get('Last_IO_Error'),
            seen.get('Slave_SQL_Running'), seen.get('Last_SQL_Error')))


def setup_replication(primary, replicas, password, rows=100):
    """A fresh primary with data, and replicas in sync with it."""
    create_replication_user(primary, password)
    load_data(primary, rows)
    for r in replicas:
        start_replication(primary, r, password)
    for r in replicas:
        wait_caught_up(primary, r)


def load_data(primary, rows=100, db=DB):
    primary.sql(
        "CREATE DATABASE IF NOT EXISTS {db}; USE {db};"
        "CREATE TABLE IF NOT EXISTS {db}.t (id INT PRIMARY KEY, v VARCHAR(64), "
        "  n INT NOT NULL DEFAULT 0) ENGINE=InnoDB;"
        "CREATE TABLE IF NOT EXISTS {db}.log (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "  msg TEXT) ENGINE=InnoDB;"
        "INSERT INTO {db}.t (id, v) SELECT seq, CONCAT('row-', seq) FROM seq_1_to_{rows} "
        "  ON DUPLICATE KEY UPDATE v=VALUES(v);"
        "INSERT INTO {db}.log (msg) SELECT REPEAT(CHAR(65 + seq % 26), 200) "
        "  FROM seq_1_to_{rows};".format(db=db, rows=int(rows)))


def gtid_binlog_pos(host):
    return host.sql_value('SELECT @@GLOBAL.gtid_binlog_pos') or ''


def wait_caught_up(primary, replica, timeout=60):
    pos = gtid_binlog_pos(primary)
    got = replica.sql_value("SELECT MASTER_GTID_WAIT(%s, %d)" % (q(pos), timeout))
    if got != '0':
        raise LabError('%s did not reach %s within %ss: %s' % (
            replica.name, pos, timeout, replica.slave_status().get('Last_Error')))


def wait_error(replica, field, errno, timeout=60):
    """Wait until SHOW SLAVE STATUS has `field` (Last_SQL_Errno, Last_IO_Errno) == errno."""
    def has_error():
        status = replica.slave_status()
        return status if status.get(field) == str(errno) else None
    return wait_for(has_error, timeout, what='%s=%s on %s' % (field, errno, replica.name))


def break_1032(primary, replica, row_id=7):
    """A row deleted on the replica (outside the binlog), then updated on the primary."""
    replica.sql('SET SESSION sql_log_bin=0; DELETE FROM %s.t WHERE id=%d;' % (DB, row_id))
    primary.sql('UPDATE %s.t SET n=n+1 WHERE id=%d;' % (DB, row_id))
    return wait_error(replica, 'Last_SQL_Errno', 1032)


def break_1062(primary, replica, row_id=100001):
    """The same new row inserted on the replica (outside the binlog), then on the primary."""
    replica.sql("SET SESSION sql_log_bin=0; INSERT INTO %s.t (id, v) VALUES (%d, 'replica');"
                % (DB, row_id))
    primary.sql("INSERT INTO %s.t (id, v) VALUES (%d, 'primary');" % (DB, row_id))
    return wait_error(replica, 'Last_SQL_Errno', 1062)


def purge_to_current(primary, replica, timeout=30):
    """Purge every binlog but the current one. The primary keeps a binlog that a dump thread
    still reads, and the dump thread of a replica just stopped may linger: that one is
    ended (the stopped replica's only), and the purge tried again until it took."""
    def purged():
        current = primary.sql('SHOW MASTER STATUS')[0][0]
        primary.sql('PURGE BINARY LOGS TO %s;' % q(current))
        if [r[0] for r in primary.sql('SHOW BINARY LOGS')] == [current]:
            return current
        for row in primary.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE "
                               "COMMAND = 'Binlog Dump' AND (HOST LIKE %s OR HOST LIKE %s)"
                               % (q(replica.name + ':%'), q(replica.ip + ':%'))):
            primary.sql('KILL %s' % row[0], check=False)  # gone already: fine
        return None
    return wait_for(purged, timeout, interval=0.5, what='binlogs purged on %s' % primary.name)


def break_1236(primary, replica, how='purge'):
    """The primary no longer has the binlog the replica needs.

    how='purge': the replica is stopped, the primary writes on and purges its binlogs past
    the replica's position. how='reset': RESET MASTER on the primary (as after a crash
    recovery by hand), then new writes; the replica asks for a GTID the primary never had.
    """
    replica.sql('STOP SLAVE;')
    if how == 'purge':
        primary.sql("INSERT INTO %s.log (msg) VALUES ('after replica stopped');"
                    "FLUSH BINARY LOGS;"
                    "INSERT INTO %s.log (msg) VALUES ('in the new binlog');" % (DB, DB))
        purge_to_current(primary, replica)
    elif how == 'reset':
        primary.sql("RESET MASTER; INSERT INTO %s.log (msg) VALUES ('after reset');" % DB)
    else:
        raise ValueError(how)
    replica.sql('START SLAVE;')
    return wait_error(replica, 'Last_IO_Errno', 1236)


def break_errant(primary, replica):
    """A transaction written on the replica with its binlog on: a GTID the primary never
    had. Replication keeps running; the replica has diverged."""
    replica.sql("INSERT INTO %s.log (msg) VALUES ('errant write on the replica');" % DB)
    sid = replica.sql_value('SELECT @@server_id')
    state = replica.sql_value('SELECT @@GLOBAL.gtid_binlog_state')
    if '-%s-' % sid not in state:
        raise LabError('no errant GTID on %s: %s' % (replica.name, state))
    primary_state = primary.sql_value('SELECT @@GLOBAL.gtid_binlog_state')
    if '-%s-' % sid in primary_state:
        raise LabError('the primary %s has GTIDs of server %s' % (primary.name, sid))
    return state


def lose_binlog_tail(primary, ahead, others=(), tail=300, partial=(), retrying=()):
    """The primary crashes and comes back without the tail of its binlog (sync_binlog=0):
    `ahead` received `tail` transactions that the restarted primary no longer has, while
    `others` (their IO thread stopped meanwhile) did not and are consistent with it.
    partial: (replica, n) pairs that received the first n of the tail only (their IO thread
    stopped then, and started again after the restart: refused with 1236 while the primary
    is behind them, see overtake).
    retrying: of `ahead` and the partial ones, those whose IO thread tries to reach the
    primary while it is down, and then waits an hour (MASTER_CONNECT_RETRY) before it tries
    again: they show the error of the primary's restart (2003, connection refused) for the
    rest of the test, as a replica does for a minute after a real crash.

    A cold copy of the primary (datadir and binlogs, server stopped) is taken, the tail is
    written and replicated to `ahead`, then the primary is stopped and put back to the cold
    copy and started. Returns (the primary's gtid_binlog_pos now, ahead's). The primary is
    then behind `ahead` in its own server_id until it writes `tail` more transactions."""
    for r in others:
        r.sql('STOP SLAVE IO_THREAD;')
    datadir = primary.sql_value('SELECT @@datadir').rstrip('/')
    logs = primary.sql_value('SELECT @@log_bin_basename')
    cold = '/tmp/reseed-cold-copy'
    primary.service('stop')
    primary.run('rm -rf {c} && mkdir -p {c}/logs && cp -a {d} {c}/datadir && '
                'cp -a {l}.* {c}/logs/'.format(c=cold, d=datadir, l=logs))
    primary.service('start')
    # After the cold copy's restart, which they reconnect from within a second.
    for r in retrying:
        wait_running(r)
        r.sql('STOP SLAVE; CHANGE MASTER TO MASTER_CONNECT_RETRY = 3600; START SLAVE;')
        wait_running(r)
    written = 0
    for replica, n in sorted(partial, key=lambda pair: pair[1]) + [(ahead, int(tail))]:
        primary.sql(''.join("INSERT INTO %s.log (msg) VALUES ('tail %d, lost by the crash');"
                            % (DB, i) for i in range(written, n)))
        written = n
        wait_caught_up(primary, replica)
        if replica is not ahead:
            replica.sql('STOP SLAVE IO_THREAD;')
    primary.service('stop')
    for r in retrying:
        if r is not ahead:
            r.sql('START SLAVE IO_THREAD;')
    for r in retrying:
        wait_error(r, 'Last_IO_Errno', 2003)
    # Contents, not the directory: the datadir may be a mount point.
    primary.run('find {d} -mindepth 1 -delete && rm -f {l}.* && cp -a {c}/datadir/. {d}/ && '
                'cp -a {c}/logs/* {ld}/ && rm -rf {c}'
                .format(c=cold, d=datadir, l=logs, ld=os.path.dirname(logs)))
    primary.service('start')
    for r in list(others) + [replica for replica, n in partial if replica not in retrying]:
        r.sql('START SLAVE IO_THREAD;')
    for r in others:
        wait_caught_up(primary, r)
    return gtid_binlog_pos(primary), ahead.sql_value('SELECT @@GLOBAL.gtid_slave_pos')


def overtake(primary, ahead, writes):
    """After lose_binlog_tail: the primary writes `writes` transactions (more than the tail
    it lost), reusing the GTID numbers `ahead` holds with other transactions, and `ahead`
    (its IO thread refused with 1236 while the primary was behind it) starts again and
    replicates from its own position without any error: diverged silently. Returns
    ahead's gtid_slave_pos."""
    primary.sql(''.join("INSERT INTO %s.log (msg) VALUES ('after the restart %d');" % (DB, n)
                        for n in range(int(writes))))
    ahead.sql('STOP SLAVE; START SLAVE;')
    wait_running(ahead)
    wait_caught_up(primary, ahead)
    return ahead.sql_value('SELECT @@GLOBAL.gtid_slave_pos')


BREAKAGES = {
    '1032': break_1032,
    '1062': break_1062,
    '1236': break_1236,
    'errant': break_errant,
}


def make_certificates(workdir, primary_ip):
    """A CA and a server certificate naming the primary's address, made with openssl."""
    def openssl(*argv):
        subprocess.run(['openssl'] + list(argv), cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
            '-subj', '/CN=reseed lab CA', '-keyout', 'ca-key.pem', '-out', 'ca.pem')
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=%s' % primary_ip,
            '-keyout', 'server-key.pem', '-out', 'server.csr')
    with open(os.path.join(workdir, 'san.ext'), 'w') as f:
        f.write('subjectAltName = IP:%s\n' % primary_ip)
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem',
            '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem')
    out = {}
    for name in ('ca.pem', 'server.pem', 'server-key.pem'):
        with open(os.path.join(workdir, name)) as f:
            out[name] = f.read()
    return out


def enable_tls(primary, clients, workdir):
    """TLS on the primary (restarted) with a certificate for its address; its CA in
    /etc/mysql/ssl/ca.pem on the primary and every client host."""
    files = make_certificates(workdir, primary.ip)
    for host, names in [(primary, files)] + [(c, {'ca.pem': files['ca.pem']}) for c in clients]:
        host.run('mkdir -p /etc/mysql/ssl')
        for name, text in names.items():
            host.run(['sh', '-c', 'cat > /etc/mysql/ssl/%s' % name], input=text)
        host.run('chown -R mysql:mysql /etc/mysql/ssl && chmod 0600 /etc/mysql/ssl/*')
    primary.run(['sh', '-c', 'cat > /etc/mysql/mariadb.conf.d/70-tls.cnf'], input=(
        '[mariadb]\nssl_ca = /etc/mysql/ssl/ca.pem\nssl_cert = /etc/mysql/ssl/server.pem\n'
        'ssl_key = /etc/mysql/ssl/server-key.pem\n'))
    primary.service('restart')
    if primary.sql_value('SELECT @@have_ssl') != 'YES':
        raise LabError('TLS did not come up on %s' % primary.name)
