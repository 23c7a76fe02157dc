# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the same-GTID check costs (docs/DIAGNOSIS.md): a primary with 20 binlog files.

    .venv/bin/python bench/same_gtid_cost.py --files 20 --file-mb 16 --restarts 10

A primary and a replica (log_slave_updates) on the lab. The primary writes small
transactions (one row each, the worst case for a reader of event headers) until it has
`--files` binlog files of `--file-mb` MiB (max_binlog_size), and restarts `--restarts` times
on the way, each restart opening a file the check compares. Then, timed in each host with
the code replication_info runs (module_utils/binlog.py): the primary's heads and restarts
(binlog_restarts), the replica's lookup of those GTIDs (fingerprint_gtids), and the lookup
of the primary's last GTID, which reads the whole newest file of the replica. Seconds and
bytes read, the median of 3. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'lab'))

import scenarios  # noqa: E402
from lab import Lab  # noqa: E402

PROBE = r'''
import json, os, sys, time
sys.path.insert(0, %(build)r)
from ansible_collections.reseed.mariadb.plugins.module_utils import binlog, gtid
args = json.loads(sys.argv[1])
names, directory = args['names'], args['directory']
out = []
for run in range(3):
    start = time.time()
    b = binlog.Binlog(names, directory)
    restarts = b.restarts()
    heads = time.time() - start, b.bytes_read
    start = time.time()
    b = binlog.Binlog(names, directory)
    fps = binlog.fingerprints(b, args['gtids'], gtid.state(args['state']),
                              gtid.position(args['state']))
    out.append(dict(heads_s=heads[0], heads_bytes=heads[1], restarts=len(restarts),
                    lookup_s=time.time() - start, lookup_bytes=b.bytes_read,
                    found=sum(1 for f in fps.values() if f['found'])))
print(json.dumps(out))
'''


def probe(host, gtids):
    names = [r[0] for r in host.sql('SHOW BINARY LOGS')]
    directory = os.path.dirname(host.sql_value('SELECT @@log_bin_basename'))
    state = host.sql_value('SELECT @@GLOBAL.gtid_binlog_state')
    script = PROBE % dict(build=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                             '.build'))
    args = json.dumps(dict(names=names, directory=directory, gtids=gtids, state=state))
    runs = json.loads(host.run(['python3', '-c', script, args], timeout=1800).stdout)
    total = sum(int(r[1]) for r in host.sql('SHOW BINARY LOGS'))
    return dict(files=len(names), binlog_mb=round(total / 2 ** 20, 1),
                **dict((k, statistics.median(r[k] for r in runs)) for k in runs[0]))


def fill(primary, mb, transactions_per_batch=2000):
    """Small transactions until the current binlog file rotates (max_binlog_size)."""
    first = primary.sql('SHOW BINARY LOGS')[-1][0]
    while primary.sql('SHOW BINARY LOGS')[-1][0] == first:
        primary.sql(''.join("INSERT INTO labdb.log (msg) VALUES ('%s');" % ('x' * 100)
                            for unused in range(transactions_per_batch)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--files', type=int, default=20)
    parser.add_argument('--file-mb', type=int, default=16)
    parser.add_argument('--restarts', type=int, default=10)
    parser.add_argument('--keep', action='store_true')
    args = parser.parse_args(argv)
    lab = Lab()
    names = ('sg-primary', 'sg-replica')
    primary, replica = [lab.create(n) for n in names]
    try:
        for host in (primary, replica):
            host.run("printf '[mariadb]\\nmax_binlog_size = %dM\\n' "
                     '> /etc/mysql/mariadb.conf.d/70-bench.cnf' % args.file_mb)
            host.service('restart')
        scenarios.setup_replication(primary, [replica], 'benchpass1', rows=100)
        every = max(1, args.files // max(1, args.restarts))
        for n in range(args.files - 1):
            fill(primary, args.file_mb)
            if (n + 1) % every == 0 and n // every < args.restarts:
                primary.service('restart')
        scenarios.wait_caught_up(primary, replica)
        restarts = json.loads(primary.run(['python3', '-c', (
            'import sys, json; sys.path.insert(0, %r)\n'
            'from ansible_collections.reseed.mariadb.plugins.module_utils import binlog\n'
            'print(json.dumps([r["first_gtid"] for r in binlog.Binlog(%r, %r).restarts()]))'
            % (os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '.build'),
               [r[0] for r in primary.sql('SHOW BINARY LOGS')],
               os.path.dirname(primary.sql_value('SELECT @@log_bin_basename'))))]).stdout)
        last = scenarios.gtid_binlog_pos(primary)
        rows = dict(primary_heads=probe(primary, []),
                    replica_restart_gtids=probe(replica, restarts),
                    replica_last_gtid=probe(replica, [last]))
        print(json.dumps(dict(restart_gtids=restarts, last=last, rows=rows), indent=1))
    finally:
        if not args.keep:
            for n in names:
                lab.destroy(n)


if __name__ == '__main__':
    main()
