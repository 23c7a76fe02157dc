# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication and breakage for a molecule scenario, by the lab's own code (prepare.yml).

Reads its plan as JSON on stdin, never argv (it carries the replication password):
{"lab": "<repo>/tests/lab", "primary": NAME, "password": "...", "rows": N,
 "replicas": {NAME: "healthy" | "unseeded" | a key of scenarios.BREAKAGES ("1236", "1062",
               "errant", ...)}}
"""

from __future__ import annotations

import json
import sys


def main():
    plan = json.load(sys.stdin)
    sys.path.insert(0, plan['lab'])
    import scenarios  # pylint: disable=import-outside-toplevel,import-error
    from lab import Lab  # pylint: disable=import-outside-toplevel,import-error

    lab = Lab()
    primary = lab.host(plan['primary'])
    replicas = [(lab.host(name), how) for name, how in sorted(plan['replicas'].items())]
    unknown = [how for how in plan['replicas'].values()
               if how not in ('healthy', 'unseeded') and how not in scenarios.BREAKAGES]
    if unknown:
        sys.exit('unknown replica states %s: use healthy, unseeded or broken_<%s>'
                 % (unknown, '|'.join(sorted(scenarios.BREAKAGES))))
    scenarios.create_replication_user(primary, plan['password'])
    scenarios.load_data(primary, int(plan['rows']))
    replicating = [r for r, how in replicas if how != 'unseeded']
    for replica in replicating:
        scenarios.start_replication(primary, replica, plan['password'])
    for replica in replicating:
        scenarios.wait_caught_up(primary, replica)
    for replica, how in replicas:
        if how in scenarios.BREAKAGES:
            scenarios.BREAKAGES[how](primary, replica)
        print('%s: %s' % (replica.name, how))
    print('%s: primary at %s' % (primary.name, scenarios.gtid_binlog_pos(primary)))


if __name__ == '__main__':
    main()
