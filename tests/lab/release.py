# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cached root trees of other Debian releases, for lab hosts of another MariaDB series.

``release.py build trixie`` makes ``/var/cache/reseed-lab/rootfs/trixie`` (or under
``$RESEED_LAB_CACHE``): ``debootstrap --variant=minbase`` from the mirror this machine's apt
already uses, then, inside the tree (chroot, in a private mount and pid namespace, with a
``policy-rc.d`` that lets no service start), ``apt-get install`` of what a lab host needs
(PACKAGES). It prints the MariaDB and Python versions found in the tree, the time the build
took and the tree's size.

- Idempotent: a tree whose stamp (``.reseed-release.json`` at its root) lists the same
  packages is kept; a tree of another package list is rebuilt.
- Under a lock (``<cache>/.<release>.lock``): two builds of one release never run at once.
- Built in ``<cache>/.<release>.build-<pid>`` and renamed into place, the stamp written
  last: a half-built tree is never at the final path. Leftovers of a killed build are
  removed by the next build (under the lock, so no build is using them).
- Every build step runs inside ``unshare --mount --pid --fork --kill-child``: the mounts
  debootstrap and apt need (/proc) and every process they start go away with the step,
  even when it is killed.
- ``remove`` deletes the tree, refusing while a mount (an overlay of a lab host) uses it.
- A flavour (``build bookworm --flavour systemd``) is a tree of the release with more
  packages (FLAVOURS), under its own name (``bookworm-systemd``) with its own lock and
  stamp. A systemd tree boots (``systemd-nspawn -b``, tests/lab/lab.py): after the install
  its ``policy-rc.d`` is removed and its ``/etc/machine-id`` emptied, as on a machine image,
  so the units the packages enabled (mariadb, ssh) start when a host boots it.

No network but the apt mirror is used; nothing in the tree is started but apt's
maintainer scripts (no service: ``policy-rc.d`` exits 101).

Python: ``ensure('trixie')`` → path of the tree (builds it when missing), ``stamp(path)``,
``remove('trixie')``, ``versions(path)``; ``ensure('bookworm', flavour='systemd')``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

CACHE = os.environ.get('RESEED_LAB_CACHE', '/var/cache/reseed-lab/rootfs')
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
STAMP = '.reseed-release.json'
KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'
# What a lab host needs inside the tree: the server and tools the collection drives, the
# managed node's Python with PyMySQL, sshd, and the pipe's tools.
PACKAGES = ('mariadb-server', 'mariadb-backup', 'mariadb-client', 'python3',
            'python3-pymysql', 'openssh-server', 'zstd', 'socat', 'sudo', 'openssl',
            'iproute2', 'procps')
# Recorded in the stamp with their installed versions.
REPORTED = ('mariadb-server', 'mariadb-backup', 'mariadb-client', 'python3',
            'python3-pymysql', 'openssh-server', 'zstd', 'socat')
# Flavour → packages added to PACKAGES: systemd as pid 1 (systemd-sysv) with its bus, so
# that the tree boots and MariaDB runs as Debian's own mariadb.service.
FLAVOURS = {
    'systemd': ('systemd', 'systemd-sysv', 'dbus'),
}
POLICY_RC_D = '#!/bin/sh\n# reseed lab: no service starts inside a cached release tree.\nexit 101\n'


class ReleaseError(Exception):
    pass


def log(msg):
    print('release: %s' % msg, file=sys.stderr, flush=True)


def run(argv, check=True, capture=True, env=None, timeout=None):
    proc = subprocess.run(argv, stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, text=True,
                          check=False, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise ReleaseError('%s exited %d: %s' % (
            ' '.join(argv), proc.returncode,
            ((proc.stderr or '') + (proc.stdout or '')).strip()[-3000:]))
    return proc


def clean_env(**extra):
    env = {'PATH': SYSTEM_PATH, 'LANG': 'C.UTF-8', 'HOME': '/root',
           'DEBIAN_FRONTEND': 'noninteractive'}
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'no_proxy'):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.update(extra)
    return env


# ---- the machine's apt sources ----------------------------------------------------------
def machine_sources():
    """The machine's active apt sources: list of dicts (types, uris, suites, components).

    Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.list (one-line format) and
    *.sources (deb822), as apt does; files of other names are not read by apt either."""
    entries = []
    files = ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list'))
    for path in files:
        try:
            lines = open(path).read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            words = line.split()
            kind = words.pop(0)
            if words and words[0].startswith('['):  # [signed-by=... arch=...]
                while words and not words[0].endswith(']'):
                    words.pop(0)
                words.pop(0)
            if len(words) >= 2:
                entries.append({'types': [kind], 'uris': [words[0]], 'suites': [words[1]],
                                'components': words[2:], 'file': path})
    for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
        stanza = {}
        key = None
        for line in open(path).read().splitlines() + ['']:
            if line.startswith('#'):
                continue
            if not line.strip():
                if stanza and stanza.get('enabled', 'yes').lower() != 'no':
                    entries.append({'types': stanza.get('types', '').split(),
                                    'uris': stanza.get('uris', '').split(),
                                    'suites': stanza.get('suites', '').split(),
                                    'components': stanza.get('components', '').split(),
                                    'file': path})
                stanza, key = {}, None
            elif line[0] in ' \t' and key:
                stanza[key] += ' ' + line.strip()
            elif ':' in line:
                key, value = line.split(':', 1)
                key = key.strip().lower()
                stanza[key] = value.strip()
    return [e for e in entries if 'deb' in e['types']]


def machine_codename():
    for line in open('/etc/os-release'):
        if line.startswith('VERSION_CODENAME='):
            return line.split('=', 1)[1].strip().strip('"')
    raise ReleaseError('no VERSION_CODENAME in /etc/os-release')


def mirrors(release):
    """(archive URI, sources for the tree) from the machine's own apt configuration.

    The archive is the URI that serves the machine's own codename (bookworm), not its
    -security or -updates suite; the tree's sources are the machine's Debian entries with
    the codename replaced (bookworm-security → trixie-security), so the tree gets the same
    point release and security updates as a Debian 13 machine of this mirror would."""
    own = machine_codename()
    archive = None
    tree = []
    for e in machine_sources():
        suites = [s for s in e['suites'] if s == own or s.startswith(own + '-')]
        if not suites or 'main' not in e['components']:
            continue
        if archive is None and own in suites:
            archive = e['uris'][0]
        tree.append({'uris': e['uris'],
                     'suites': [release + s[len(own):] for s in suites],
                     'components': ['main']})
    if archive is None:
        raise ReleaseError('no apt source of this machine serves %s main: cannot tell which '
                           'mirror debootstrap should use' % own)
    return archive, tree


def sources_text(tree_sources):
    out = ['# Written by tests/lab/release.py from the machine\'s own apt sources.']
    for e in tree_sources:
        out += ['', 'Types: deb', 'URIs: ' + ' '.join(e['uris']),
                'Suites: ' + ' '.join(e['suites']), 'Components: main',
                'Signed-By: ' + KEYRING]
    return '\n'.join(out) + '\n'


# ---- the tree ---------------------------------------------------------------------------
def tree_name(release, flavour=None):
    """The tree's name in the cache: the release, or '<release>-<flavour>'."""
    if flavour is not None and flavour not in FLAVOURS:
        raise ReleaseError('no flavour %r of a tree (known: %s)' % (
            flavour, ', '.join(sorted(FLAVOURS))))
    return release if flavour is None else '%s-%s' % (release, flavour)


def tree_path(release, flavour=None):
    return os.path.join(CACHE, tree_name(release, flavour))


def packages_of(flavour=None):
    return PACKAGES + (FLAVOURS[flavour] if flavour else ())


def stamp(path):
    try:
        with open(os.path.join(path, STAMP)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


@contextlib.contextmanager
def locked(release):
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, '.%s.lock' % release), 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def isolated(argv):
    """argv run in a private mount and pid namespace: its mounts and processes end with it."""
    return ['unshare', '--mount', '--propagation', 'private', '--pid', '--fork',
            '--kill-child'] + list(argv)


def in_chroot(root, script):
    """A shell script run as root inside the tree, /proc mounted privately."""
    return isolated(['/bin/sh', '-ec',
                     'mount -t proc proc "$0/proc"; exec chroot "$0" /bin/sh -ec "$1"',
                     root, script])


def mounts_using(path):
    """Mount lines, of any process's mount namespace, that name path or a path under it
    (an overlay whose lowerdir is the tree, a bind mount of it, a mount inside it)."""
    path = os.path.realpath(path)
    # path followed by the end of a name: '/', ',' or ':' (overlay options), a space, or
    # the end of the line; '.../trixie-old' is another path.
    pattern = re.compile(re.escape(path) + r'(?=[/,: ]|$)')
    found = set()
    for info in glob.glob('/proc/[0-9]*/mountinfo'):
        try:
            with open(info) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if pattern.search(line):
                found.add(line)
    return sorted(found)


def versions(root):
    """Versions found in the tree: the programs' own answers (stdout or stderr).

    Run with /proc mounted: mariadb-backup 11.8.9 dies of SIGSEGV (exit 139) on
    ``--version`` in a chroot without /proc."""
    probes = (('mariadbd', '/usr/sbin/mariadbd --version'),
              ('mariadb-backup', 'mariadb-backup --version'),
              ('mariadb', 'mariadb --version'),
              ('python3', 'python3 --version'),
              ('pymysql', 'python3 -c "import pymysql; print(pymysql.VERSION_STRING)"'))
    script = ''.join('echo "@@%s"; %s 2>&1 || echo "@@failed $?"\n' % p for p in probes)
    proc = run(in_chroot(root, 'set +e\n' + script), check=False, env=clean_env())
    found = {}
    key = None
    for line in proc.stdout.splitlines():
        if line.startswith('@@failed'):
            found[key] = None
        elif line.startswith('@@'):
            key = line[2:]
        elif key and line.strip() and found.get(key) is None and key not in found:
            found[key] = line.strip()
    debian = os.path.join(root, 'etc/debian_version')
    found['debian'] = open(debian).read().strip() if os.path.exists(debian) else None
    return found


def du_bytes(path):
    proc = run(['du', '-sx', '--block-size=1', path])
    return int(proc.stdout.split()[0])


def make_bootable(tmp):
    """A systemd tree as a machine image is: services may start (no policy-rc.d, which only
    kept apt's maintainer scripts from starting them during the build), the machine-id is
    empty (dbus's a link to it), so that each host booting it gets its own, and /etc/hosts names localhost
    (debootstrap writes none; mariadb-install-db refuses a host it cannot resolve)."""
    os.unlink(os.path.join(tmp, 'usr/sbin/policy-rc.d'))
    with open(os.path.join(tmp, 'etc/machine-id'), 'w'):
        pass
    # dbus's postinst wrote an id of its own there, which systemd would copy into every
    # host's /etc/machine-id at boot: a link to /etc/machine-id, as on installed Debian.
    dbus_id = os.path.join(tmp, 'var/lib/dbus/machine-id')
    if os.path.lexists(dbus_id):
        os.unlink(dbus_id)
        os.symlink('/etc/machine-id', dbus_id)
    with open(os.path.join(tmp, 'etc/hosts'), 'w') as f:
        f.write('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n')
    with open(os.path.join(tmp, 'etc/hostname'), 'w') as f:
        f.write('localhost\n')


def build(release, packages=None, force=False, flavour=None):
    """Make the tree of `release` (and `flavour`) unless a complete one with these packages
    is there."""
    name = tree_name(release, flavour)
    packages = packages_of(flavour) if packages is None else packages
    final = tree_path(release, flavour)
    if not os.path.exists('/usr/share/debootstrap/scripts/' + release):
        raise ReleaseError('debootstrap knows no release %r (install or upgrade debootstrap)'
                           % release)
    with locked(name):
        st = stamp(final)
        if st and not force and sorted(st.get('packages', [])) == sorted(packages):
            log('%s is there (built %s); kept' % (final, st.get('built')))
            return final, False
        for stale in glob.glob(os.path.join(CACHE, '.%s.build-*' % name)) + \
                glob.glob(os.path.join(CACHE, '.%s.old-*' % name)):
            log('removing leftover %s' % stale)
            shutil.rmtree(stale)
        if os.path.exists(final) and not st:
            # No stamp: not ours, or never finished (cannot be: the rename comes last).
            raise ReleaseError('%s exists without its stamp %s: remove it by hand' % (
                final, STAMP))
        users = mounts_using(final) if os.path.exists(final) else []
        if users:  # checked again before the rename: a mount may come during the build
            raise ReleaseError('%s is in use by %d mount(s) (lab hosts?), not rebuilt:\n%s'
                               % (final, len(users), '\n'.join(users[:5])))
        archive, tree_sources = mirrors(release)
        tmp = os.path.join(CACHE, '.%s.build-%d' % (name, os.getpid()))
        try:
            started = time.time()
            log('debootstrap --variant=minbase %s from %s' % (release, archive))
            run(isolated(['debootstrap', '--variant=minbase', '--keyring=' + KEYRING,
                          release, tmp, archive]), env=clean_env(), timeout=1800)
            t_debootstrap = time.time() - started
            with open(os.path.join(tmp, 'usr/sbin/policy-rc.d'), 'w') as f:
                f.write(POLICY_RC_D)
            os.chmod(os.path.join(tmp, 'usr/sbin/policy-rc.d'), 0o755)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(tmp, 'etc/apt/sources.list'))
            with open(os.path.join(tmp, 'etc/apt/sources.list.d/debian.sources'), 'w') as f:
                f.write(sources_text(tree_sources))
            log('apt-get install %s' % ' '.join(packages))
            run(in_chroot(tmp, 'apt-get update -q\n'
                               'apt-get install -y -q --no-install-recommends %s\n'
                               'apt-get clean' % ' '.join(packages)),
                env=clean_env(), timeout=1800)
            # The package lists are for this build only: a lab host installs nothing.
            for lists in glob.glob(os.path.join(tmp, 'var/lib/apt/lists/*')):
                if os.path.isfile(lists):
                    os.unlink(lists)
            if flavour == 'systemd':
                make_bootable(tmp)
            installed = run(['chroot', tmp, 'dpkg-query', '-W', '-f', '${Package}\t${Version}\n']
                            + list(REPORTED), env=clean_env()).stdout
            elapsed = time.time() - started
            info = {
                'release': release,
                'flavour': flavour,
                'built': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                'archive': archive,
                'sources': tree_sources,
                'packages': sorted(packages),
                'installed': dict(line.split('\t', 1) for line in installed.splitlines() if line),
                'versions': versions(tmp),
                'seconds': {'debootstrap': round(t_debootstrap, 1), 'total': round(elapsed, 1)},
                'bytes': du_bytes(tmp),
            }
            with open(os.path.join(tmp, STAMP + '.tmp'), 'w') as f:
                json.dump(info, f, indent=2, sort_keys=True)
                f.write('\n')
            os.rename(os.path.join(tmp, STAMP + '.tmp'), os.path.join(tmp, STAMP))
        except BaseException:
            # Every step ran in its own mount namespace: nothing is mounted under tmp.
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.sync()
        if os.path.exists(final):
            users = mounts_using(final)
            if users:
                shutil.rmtree(tmp)
                raise ReleaseError('%s is in use by %d mount(s) (lab hosts?), not replaced:\n%s'
                                   % (final, len(users), '\n'.join(users[:5])))
            old = os.path.join(CACHE, '.%s.old-%d' % (name, os.getpid()))
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
        return final, True


def ensure(release, flavour=None):
    """Path of the tree of `release` (and `flavour`), built first when missing."""
    return build(release, flavour=flavour)[0]


def remove(release, force=False, flavour=None):
    name = tree_name(release, flavour)
    final = tree_path(release, flavour)
    with locked(name):
        if not os.path.exists(final):
            return False
        users = mounts_using(final)
        if users and not force:
            raise ReleaseError('%s is in use by %d mount(s) (lab hosts?): destroy them first:'
                               '\n%s' % (final, len(users), '\n'.join(users[:5])))
        old = os.path.join(CACHE, '.%s.old-%d' % (name, os.getpid()))
        os.rename(final, old)
        shutil.rmtree(old)
        return True


def describe(path):
    st = stamp(path) or {}
    v = st.get('versions') or versions(path)
    lines = ['tree      %s' % path]
    for key in ('debian', 'mariadbd', 'mariadb-backup', 'mariadb', 'python3', 'pymysql'):
        lines.append('%-9s %s' % (key, v.get(key)))
    if st:
        lines.append('built     %s in %s s (debootstrap %s s), %.0f MB' % (
            st['built'], st['seconds']['total'], st['seconds']['debootstrap'],
            st['bytes'] / 1e6))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Cached Debian release trees for lab hosts.')
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('build', help='build the tree of RELEASE unless it is there')
    p.add_argument('release')
    p.add_argument('--force', action='store_true', help='rebuild even when it is there')
    p = sub.add_parser('remove', help='delete the tree of RELEASE')
    p.add_argument('release')
    p.add_argument('--force', action='store_true', help='even while a mount uses it')
    p = sub.add_parser('info', help='versions, time and size of the tree of RELEASE')
    p.add_argument('release')
    p = sub.add_parser('path', help='print the path of the tree of RELEASE (built or not)')
    p.add_argument('release')
    for p in sub.choices.values():
        p.add_argument('--flavour', choices=sorted(FLAVOURS),
                       help='a tree of RELEASE with more packages (systemd: it boots)')
    args = parser.parse_args(argv)
    if args.cmd != 'path' and os.geteuid() != 0:
        parser.error('needs root (debootstrap, chroot, namespaces)')
    if not args.release.isalnum():
        parser.error('a release is a Debian codename: %r' % args.release)
    try:
        if args.cmd == 'build':
            path, built = build(args.release, force=args.force, flavour=args.flavour)
            print(describe(path))
        elif args.cmd == 'remove':
            removed = remove(args.release, args.force, args.flavour)
            print('%s\t%s' % (tree_path(args.release, args.flavour),
                              'removed' if removed else 'absent'))
        elif args.cmd == 'info':
            path = tree_path(args.release, args.flavour)
            if not stamp(path):
                print('%s: not built' % path)
                return 1
            print(describe(path))
        elif args.cmd == 'path':
            print(tree_path(args.release, args.flavour))
    except ReleaseError as e:
        print('release: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
