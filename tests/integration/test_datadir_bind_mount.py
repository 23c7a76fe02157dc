# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replica whose datadir is a bind mount of a directory of its parent's filesystem (as a
Docker volume or a hand-made `mount --bind` on one disk looks): st_dev equal to its
parent's, yet a mount point that cannot be renamed, and a rename into it from beside it
fails with EXDEV. The mount table says it is a mount point (module_utils/mounts.py, through
replication_info's datadir_mount to the role, and again in datadir_swap), so the copy is
staged inside it and the swap moves entries. Once it fell between the two detections (the
role's findmnt said mount point, the module's st_dev said plain directory) and failed at
the swap's preflight.

Here: replication_info's datadir_mount against findmnt, the server up and down. The rebuild
of such a replica, under a writer on the primary with healthy replicas left alone, is
tests/integration/test_busy_diagnosis.py's first run (its r4), which shares its hosts."""

from __future__ import annotations

DATADIR = '/data/mysql'


def mount_target(host, path):
    return host.run(['findmnt', '-n', '-o', 'TARGET', '--target', path]).stdout.strip()


def test_replication_info_reports_the_datadir_mount_up_and_down(make_hosts, inventory,
                                                                run_module):
    hosts = make_hosts('bound', 'plain', datadir_mount={'bound': 'bind'}, hardened=('bound',))
    bound, plain = hosts['bound'], hosts['plain']
    inv = inventory(bound, [plain])
    up = run_module(inv, bound.name, 'replication_info', {})
    assert not up.failed, up.result
    source, root, fstype = bound.run(['findmnt', '-n', '-o', 'SOURCE,FSROOT,FSTYPE',
                                      '--target', DATADIR]).stdout.split()
    assert up['datadir_mount'] == dict(mount_point=True, target=DATADIR, fstype=fstype,
                                       source=source.split('[')[0], root=root), up.result
    # The server down: the datadir from the option files, the same mount facts.
    bound.service('stop')
    down = run_module(inv, bound.name, 'replication_info', {})
    assert not down.failed and down['state'] == 'down', down.result
    assert down['datadir'] == DATADIR and down['datadir_mount'] == up['datadir_mount']
    # A plain directory: not a mount point, held by the mount findmnt names.
    info = run_module(inv, plain.name, 'replication_info', {})
    assert not info.failed, info.result
    assert info['datadir_mount']['mount_point'] is False
    assert info['datadir_mount']['target'] == mount_target(plain, '/var/lib/mysql')
