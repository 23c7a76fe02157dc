# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.reseed.mariadb.plugins.module_utils import mounts

# A production host whose datadir /data/mysql is a bind mount of /srv/volumes/mysql, a
# directory of the root filesystem: the same device (254:0) as its parent /data.
BIND_SAME_FS = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334076k,mode=755
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
90 27 254:0 /srv/volumes/mysql /data/mysql rw,relatime shared:1 - ext4 /dev/vda rw,discard
"""

# The datadir on a volume of its own (another device), as most hardened hosts have it.
OWN_DEVICE = """\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
31 27 254:16 / /data/mysql rw,noatime shared:12 - xfs /dev/vdb rw,attr2,inode64
"""

# Nested: /var on its own device, /var/lib/mysql a volume below it, and a tmpfs mounted
# inside that datadir (e.g. by hand, for a scratch folder).
NESTED = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 254:1 / /var rw,relatime - ext4 /dev/vdc rw
41 40 254:2 / /var/lib/mysql rw,relatime - ext4 /dev/vdd rw
42 41 0:50 / /var/lib/mysql/scratch rw,relatime - tmpfs tmpfs rw,size=1024k
"""

# Names with a space, a tab, a newline and a backslash, as the kernel escapes them.
ESCAPED = r"""27 1 254:0 / / rw - ext4 /dev/vda rw
50 27 254:3 / /mnt/my\040data rw - ext4 /dev/disk/by-label/my\040disk rw
51 27 254:4 /a\011b /mnt/tab\011and\012newline\134x rw - ext4 /dev/vde rw
"""

# Two mounts on one target: the later one (mounted on the first) is the one seen.
STACKED = """\
27 1 254:0 / / rw - ext4 /dev/vda rw
60 27 0:60 / /data rw - tmpfs tmpfs rw
61 60 254:5 / /data rw - xfs /dev/vdf rw
"""


def test_parse_fields():
    ms = mounts.parse(BIND_SAME_FS)
    assert [m['target'] for m in ms] == ['/proc', '/dev', '/', '/data/mysql']
    bind = ms[-1]
    assert bind == dict(mount_id=90, parent_id=27, dev='254:0', root='/srv/volumes/mysql',
                        target='/data/mysql', fstype='ext4', source='/dev/vda')


def test_parse_refuses_garbage():
    with pytest.raises(mounts.MountinfoError, match='line 2'):
        mounts.parse('27 1 254:0 / / rw - ext4 /dev/vda rw\nnot a mount line\n')


def test_bind_mount_of_the_same_filesystem_is_a_mount_point():
    ms = mounts.parse(BIND_SAME_FS)
    facts = mounts.mount_facts(ms, '/data/mysql')
    assert facts['mount_point'] is True
    assert facts['target'] == '/data/mysql' and facts['fstype'] == 'ext4'
    assert facts['source'] == '/dev/vda' and facts['root'] == '/srv/volumes/mysql'
    # Same filesystem as its parent, yet another mount: a rename between them is EXDEV.
    parent = mounts.mount_facts(ms, '/data')
    assert parent['dev'] == facts['dev'] and parent['mount_id'] != facts['mount_id']
    assert parent['mount_point'] is False and parent['target'] == '/'
    assert not mounts.same_mount(ms, '/data/mysql.reseed-staging', '/data/mysql')
    assert mounts.same_mount(ms, '/data/mysql/#sql-reseed-staging', '/data/mysql')


def test_datadir_on_its_own_device():
    ms = mounts.parse(OWN_DEVICE)
    facts = mounts.mount_facts(ms, '/data/mysql/')
    assert facts['mount_point'] is True and facts['path'] == '/data/mysql'
    assert (facts['fstype'], facts['source'], facts['dev']) == ('xfs', '/dev/vdb', '254:16')
    inside = mounts.mount_facts(ms, '/data/mysql/#sql-reseed-staging')
    assert inside['mount_point'] is False and inside['mount_id'] == facts['mount_id']


def test_plain_directory():
    ms = mounts.parse(BIND_SAME_FS)
    facts = mounts.mount_facts(ms, '/var/lib/mysql')
    assert facts['mount_point'] is False
    assert (facts['target'], facts['fstype'], facts['source']) == ('/', 'ext4', '/dev/vda')
    assert mounts.same_mount(ms, '/var/lib/mysql', '/var/lib/mysql.reseed-staging')


def test_prefix_is_by_path_components_not_characters():
    ms = mounts.parse(OWN_DEVICE)
    # /data/mysql2 and /data/mysql.reseed-staging are not inside the mount /data/mysql.
    assert mounts.mount_facts(ms, '/data/mysql2')['target'] == '/'
    assert mounts.mount_facts(ms, '/data/mysql.reseed-staging')['target'] == '/'


def test_nested_mounts_longest_target_wins():
    ms = mounts.parse(NESTED)
    assert mounts.mount_facts(ms, '/var/lib/mysql')['mount_point'] is True
    assert mounts.mount_facts(ms, '/var/lib/mysql')['source'] == '/dev/vdd'
    assert mounts.mount_facts(ms, '/var/lib')['target'] == '/var'
    assert mounts.mount_facts(ms, '/var/lib/mysql/scratch/x')['fstype'] == 'tmpfs'
    assert mounts.mount_facts(ms, '/var/lib/mysql/ibdata1')['target'] == '/var/lib/mysql'
    assert not mounts.same_mount(ms, '/var/lib/mysql/scratch/copy', '/var/lib/mysql')
    assert mounts.mount_facts(ms, '/etc')['target'] == '/'


def test_escaped_names():
    ms = mounts.parse(ESCAPED)
    facts = mounts.mount_facts(ms, '/mnt/my data/mysql')
    assert facts['target'] == '/mnt/my data' and facts['source'] == '/dev/disk/by-label/my disk'
    assert mounts.mount_facts(ms, '/mnt/my data')['mount_point'] is True
    odd = mounts.mount_facts(ms, '/mnt/tab\tand\nnewline\\x')
    assert odd['mount_point'] is True and odd['root'] == '/a\tb'
    assert mounts.mount_facts(ms, '/mnt/my\\040data')['target'] == '/'


def test_stacked_mounts_the_top_one_is_seen():
    ms = mounts.parse(STACKED)
    assert mounts.mount_facts(ms, '/data/mysql')['fstype'] == 'xfs'
    # Listed in another order, still the one mounted on the other.
    assert mounts.mount_facts(list(reversed(ms)), '/data/mysql')['fstype'] == 'xfs'


def test_no_mount_holds_the_path():
    facts = mounts.mount_facts(mounts.parse('40 27 254:1 / /var rw - ext4 /dev/vdc rw\n'),
                               '/etc/mysql')
    assert facts['mount_point'] is False and facts['target'] is None
    assert not mounts.same_mount([], '/a', '/a')


def test_readers_on_this_machine(tmp_path):
    # The real table of the process running the tests: '/' is a mount point, a fresh
    # directory is not, and a symlink is resolved before the look-up.
    real = mounts.read()
    assert mounts.path_facts('/', real)['mount_point'] is True
    d = tmp_path / 'plain'
    d.mkdir()
    link = tmp_path / 'link'
    os.symlink(str(d), str(link))
    assert mounts.path_facts(str(d))['mount_point'] is False
    assert mounts.path_facts(str(link))['path'] == os.path.realpath(str(d))
    assert mounts.paths_on_same_mount(str(d), str(link))


def test_reader_of_a_sample_file(tmp_path):
    path = tmp_path / 'mountinfo'
    path.write_text(BIND_SAME_FS)
    ms = mounts.read(str(path))
    assert mounts.mount_facts(ms, '/data/mysql')['mount_point'] is True
