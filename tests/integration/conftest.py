# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for tests against the lab: real hosts, real MariaDB, real ssh, real Ansible.

- ``make_hosts('primary', 'replica', datadir_mount=('replica',))``: fresh lab hosts named
  uniquely for this test (e.g. ``t12-primary``), a dict role -> lab.Host; removed after the
  test (kept when RESEED_LAB_KEEP=1, to look at a failure). ``datadir_mount`` is a tuple of
  roles (datadir its own mount point) or a dict role -> ``True`` / ``'bind'`` (a bind mount
  of a directory of its parent's filesystem, see tests/lab/README.md). ``hardened=('replica',)`` makes
  those roles production-shaped (Ansible logs in as ``ops`` with sudo, datadir
  ``/data/mysql`` on its own mount, logs in ``/var/log/mysql``; see tests/lab/README.md).
  ``release={'replica': 'trixie'}`` gives those roles a root of that Debian release
  (trixie: MariaDB 11.8, Python 3.13); its cached tree is built first when missing, once
  per machine (35-80 s, under a lock: tests/lab/release.py). ``systemd=('replica',)``:
  those roles boot systemd (systemd-nspawn; MariaDB is Debian's ``mariadb.service``; see
  tests/lab/lab.py). By default every role does (the production shape: a server run by
  its unit), but those with a bind-mounted datadir or a ``release`` of their own (given
  ``systemd`` too, those boot their release's systemd tree); ``systemd=()`` keeps them
  hand-started, for a test that needs a server with no unit.
- ``inventory(primary, replicas=(), others=())``: writes an inventory for those hosts and
  returns its path (groups mariadb_primary and mariadb_replicas).
- ``run_module(inventory, host_name, 'replication_info', {...}, check=False, diff=False)``:
  runs one of our modules on a host through ``ansible``; returns an ansible_run.ModuleRun.
- ``hardened_trio``: a production-shaped primary and two replicas, replicating.
- ``repl_password``: a fresh replication password; ``replicated``: a primary and one
  replica with data, replicating (GTID slave_pos), as a dict with 'primary', 'replica',
  'password', 'inventory'.
"""

from __future__ import annotations

import os
import secrets
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'lab'))

import ansible_run  # noqa: E402
import scenarios  # noqa: E402
from lab import Lab  # noqa: E402


# make test runs the lab tests two at a time (scripts/test.sh: pytest-xdist, a file on one
# worker, so that a file's shared hosts are made once), then the cases marked ``alone`` by
# themselves: those whose assertion bounds a latency (a failure seen within so many
# seconds), which a second lab beside them would stretch. Files start longest first, so
# that no long one is left for the end while the other worker idles: about the seconds each
# took in CI (523a46f, two at a time: 1066 s for all but the four alone, 157 s those). They
# order the files, nothing else; a file not listed starts after them.
FILE_SECONDS = {
    'test_reliability.py': 330, 'test_data_path.py': 230, 'test_versions.py': 200,
    'test_fleet_faults.py': 165, 'test_datadir_swap.py': 150, 'test_lab.py': 140,
    'test_replication.py': 110, 'test_systemd.py': 105, 'test_checksum.py': 90,
    'test_busy_diagnosis.py': 82, 'test_role_ssh_key.py': 80, 'test_replica_keeps.py': 78,
    'test_rebuild.py': 77, 'test_fleet.py': 76, 'test_many_tables.py': 71,
    'test_dead_replica.py': 66, 'test_hardened.py': 59, 'test_awx_runner.py': 41,
    'test_chain.py': 36, 'test_db_login.py': 20, 'test_role_verify.py': 20,
    'test_datadir_bind_mount.py': 20,
}


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'alone: bounds a latency; make test runs it after the others, by itself')


def pytest_collection_modifyitems(items):
    # sorted() is stable: a file's tests keep their order.
    items[:] = sorted(items, key=lambda item: -FILE_SECONDS.get(item.path.name, 0))


@pytest.fixture(scope='session')
def lab():
    if os.geteuid() != 0:
        pytest.fail('the lab tests need root (namespaces, mounts, a bridge): run make test as root')
    return Lab()


@pytest.fixture
def make_hosts(lab):
    made = []

    def make(*roles, datadir_mount=(), hardened=(), release=None, systemd=None):
        hosts = {}
        release = dict(release or {})
        if systemd is None:
            systemd = [r for r in roles if r not in release and not (
                isinstance(datadir_mount, dict) and datadir_mount.get(r) == 'bind')]
        unknown = sorted(set(release) - set(roles))
        assert not unknown, 'release given for roles not made: %s' % unknown
        number = lab.next_number()
        for role in roles:
            name = 't%d-%s' % (number, role)
            made.append(name)  # before create: a host that fails to start is removed too
            mount = (datadir_mount.get(role, False) if isinstance(datadir_mount, dict)
                     else role in datadir_mount)
            hosts[role] = lab.create(name, datadir_mount=mount,
                                     hardened=role in hardened, release=release.get(role),
                                     systemd=role in systemd)
        return hosts

    yield make
    if os.environ.get('RESEED_LAB_KEEP') != '1':
        errors = []
        for name in made:  # every host, even when removing one of them fails
            try:
                lab.destroy(name)
            except Exception as e:  # reported after all are tried
                errors.append('%s: %s' % (name, e))
        assert not errors, 'lab hosts not removed: %s' % '; '.join(errors)


@pytest.fixture
def inventory(lab, tmp_path):
    def write(primary, replicas=(), others=()):
        def name(host):
            return host if isinstance(host, str) else host.name
        path = str(tmp_path / 'inventory.json')
        return ansible_run.write_inventory(lab, path, name(primary),
                                           [name(r) for r in replicas],
                                           [name(o) for o in others])
    return write


@pytest.fixture
def run_module():
    return ansible_run.run_module


@pytest.fixture
def repl_password():
    # Quotes and a backslash on purpose: SQL built by string formatting would break on them.
    return "Rp'l\\" + secrets.token_hex(8)


@pytest.fixture
def hardened_trio(make_hosts, repl_password):
    """A production-shaped primary and two replicas (hardened, tests/lab/README.md)
    replicating 2000 rows: (primary, r1, r2)."""
    names = ('primary', 'r1', 'r2')
    hosts = make_hosts(*names, hardened=names)
    primary, r1, r2 = (hosts[n] for n in names)
    scenarios.setup_replication(primary, [r1, r2], repl_password, rows=2000)
    return primary, r1, r2


@pytest.fixture
def replicated(make_hosts, inventory, repl_password):
    hosts = make_hosts('primary', 'replica')
    scenarios.setup_replication(hosts['primary'], [hosts['replica']], repl_password)
    return dict(primary=hosts['primary'], replica=hosts['replica'], password=repl_password,
                inventory=inventory(hosts['primary'], [hosts['replica']]))
