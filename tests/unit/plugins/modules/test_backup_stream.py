# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_stream's pure parts, and its receiving script run for real with bash."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shlex
import shutil
import stat
import subprocess
import time

import pytest

from ansible_collections.reseed.mariadb.plugins.modules import backup_stream as bs

GB = 10 ** 9


def run_receiver(command, stdin=b'', env=None):
    """Run the receive command as sshd would: through a shell, as the account's login."""
    return subprocess.run(['bash', '-c', command], input=stdin, capture_output=True,
                          check=False, env=dict(os.environ, **(env or {})))


def facts_of(staging, env=None, mode='preflight'):
    proc = run_receiver(bs.receive_command(str(staging), 'zstd', 2, mode=mode), env=env)
    assert proc.returncode == 0, proc.stderr
    return bs.parse_facts(proc.stdout.decode())


def test_preflight_states(tmp_path):
    staging = tmp_path / 'staging'
    facts = facts_of(staging)
    assert facts['staging'] == 'absent' and int(facts['avail']) > 0
    assert not staging.exists()  # the preflight changes nothing
    staging.mkdir()
    assert facts_of(staging)['staging'] == 'empty'
    (staging / 'reseed_receiving').write_text('')
    facts = facts_of(staging)
    assert facts['staging'] == 'reseed' and 'reclaim' in facts
    (staging / 'reseed_receiving').unlink()
    (staging / 'ibdata1').write_text('precious')
    assert facts_of(staging)['staging'] == 'foreign'


def test_a_forced_command_runs_the_preflight_only_when_asked(tmp_path):
    staging = tmp_path / 'staging'
    staging.mkdir()
    (staging / 'reseed_received').write_text('')
    receive = bs.receive_command(str(staging), 'none', 1)
    # sshd runs the forced command (receive) and passes what the client asked for in
    # SSH_ORIGINAL_COMMAND: the preflight must not receive (nor remove the old copy).
    asked = bs.receive_command(str(staging), 'none', 1, mode='preflight')
    proc = run_receiver(receive, env={'SSH_ORIGINAL_COMMAND': asked})
    assert proc.returncode == 0 and b'staging=reseed' in proc.stdout
    assert (staging / 'reseed_received').exists()


@pytest.mark.skipif(not shutil.which('mbstream'), reason='mbstream not installed')
def test_a_stream_without_xtrabackup_info_stays_marked_incomplete(tmp_path):
    staging = tmp_path / 'staging'
    proc = run_receiver(bs.receive_command(str(staging), 'none', 1), stdin=b'')
    assert proc.returncode == 21 and b'incomplete copy' in proc.stderr
    assert sorted(os.listdir(str(staging))) == ['reseed_receiving']


def test_receiver_refuses_a_directory_that_is_not_ours(tmp_path):
    staging = tmp_path / 'staging'
    staging.mkdir()
    (staging / 'keep').write_text('keep')
    proc = run_receiver(bs.receive_command(str(staging), 'none', 1))
    assert proc.returncode == 19 and b'not a reseed staging directory' in proc.stderr
    assert (staging / 'keep').read_text() == 'keep'


def test_tcp_receiver_listens_on_one_address_for_one_source():
    command = bs.receive_command('/var/lib/mysql.stage', 'zstd', 2,
                                 listen=('10.0.0.12', 4444, '10.0.0.11'))
    script = shlex.split(command)[2]
    assert 'TCP4-LISTEN:4444,bind=10.0.0.12,range=10.0.0.11/32' in script
    assert 'accept-timeout=60' in script and 'zstd -d' in script
    assert command.endswith(' reseed-receive receive')


@pytest.mark.parametrize('facts,needed,problem', [
    ({'staging': 'absent', 'avail': str(100 * GB), 'have_mbstream': '1', 'have_zstd': '1'},
     50 * GB, None),
    ({'staging': 'absent', 'avail': str(50 * GB), 'have_mbstream': '1', 'have_zstd': '1'},
     50 * GB, '50.0 GB free for the copy, 55.3 GB needed'),
    ({'staging': 'reseed', 'avail': str(10 * GB), 'reclaim': str(50 * GB),
      'have_mbstream': '1', 'have_zstd': '1'}, 50 * GB, None),
    ({'staging': 'foreign', 'avail': '1', 'have_mbstream': '1', 'have_zstd': '1'}, 0,
     'not a reseed staging directory'),
    ({'staging': 'datadir', 'avail': '1', 'have_mbstream': '1', 'have_zstd': '1'}, 0,
     'datadir of a running server'),
    ({'staging': 'empty', 'avail': str(GB), 'have_mbstream': '1'}, 0,
     'missing on the destination: zstd'),
    ({}, 0, 'gave no answer'),
])
def test_preflight_problems(facts, needed, problem):
    problems = bs.preflight_problems(facts, needed, 'zstd', 'ssh')
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_tcp_needs_socat_on_the_destination():
    facts = {'staging': 'absent', 'avail': str(GB), 'have_mbstream': '1'}
    assert bs.preflight_problems(facts, 0, 'none', 'tcp') == [
        'missing on the destination: socat']


@pytest.mark.parametrize('backup,server,ok', [
    ('10.11.19-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.20-MariaDB', '10.11.19-MariaDB', True),
    ('10.11.8-MariaDB', '10.11.19-MariaDB', False),
    ('10.6.19-MariaDB', '10.11.19-MariaDB', False),
    ('11.4.2-MariaDB', '10.11.19-MariaDB', False),
])
def test_version_problem(backup, server, ok):
    assert (bs.version_problem(backup, server) is None) == ok


def test_option_file_is_private_and_escaped(tmp_path):
    password = 'a"b\\c\'d #e'
    path = bs.write_option_file(str(tmp_path), {'login_user': 'backup',
                                                'login_password': password})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = open(path).read()
    assert text == '[client]\nuser="backup"\npassword="a\\"b\\\\c\'d #e"\n'


def test_seal_only_an_extracted_copy(tmp_path):
    staging = tmp_path / 'staging'
    staging.mkdir()
    (staging / 'reseed_receiving').write_text('')
    seal = bs.receive_command(str(staging), 'none', 1, mode='seal')
    proc = run_receiver(seal)
    assert proc.returncode == 22 and b'no extracted copy' in proc.stderr
    assert sorted(os.listdir(str(staging))) == ['reseed_receiving']
    (staging / 'reseed_receiving').unlink()
    (staging / 'reseed_extracted').write_text('')
    # Through a forced command too: the client asks for the seal, sshd runs the receiver.
    proc = run_receiver(bs.receive_command(str(staging), 'none', 1),
                        env={'SSH_ORIGINAL_COMMAND': seal})
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(str(staging))) == ['reseed_received']
    assert (staging / 'reseed_received').read_text() == 'mariadb-backup completed OK!\n'


def test_auto_receiver_takes_both_raw_and_zstd():
    command = bs.receive_command('/var/lib/s', 'auto', 2)
    assert 'zstd -d -q -c --pass-through | mbstream' in command


@pytest.mark.skipif(not shutil.which('flock'), reason='flock (util-linux) not installed')
def test_one_stream_at_a_time_into_a_staging_directory(tmp_path):
    """A stream still running (a vanished controller's) holds the staging's lock: the preflight
    says so, a second receiver and a seal are refused and touch nothing."""
    staging = tmp_path / 'staging'
    staging.mkdir()
    (staging / 'reseed_extracted').write_text('')
    lock = facts_of(staging)['lock']  # in /run/lock, never beside or in a datadir
    assert lock.startswith('/run/lock/reseed') and lock.endswith('_staging.lock')
    holder = subprocess.Popen(['flock', '-o', lock, 'sleep', '30'])  # -o: flock alone holds it
    try:
        wait_for_lock(lock)
        facts = facts_of(staging)
        assert facts.get('busy') == '1'
        assert any('still running' in p for p in bs.preflight_problems(facts, 0, 'none', 'ssh'))
        for mode in ('receive', 'seal'):
            proc = run_receiver(bs.receive_command(str(staging), 'none', 1, mode=mode))
            assert proc.returncode == 23 and b'still running' in proc.stderr, proc.stderr
        assert sorted(os.listdir(str(staging))) == ['reseed_extracted']
    finally:
        holder.kill()
        holder.wait()
    assert 'busy' not in facts_of(staging)
    proc = run_receiver(bs.receive_command(str(staging), 'none', 1, mode='seal'))
    assert proc.returncode == 0 and (staging / 'reseed_received').exists()


def wait_for_lock(lock, timeout=10.0):
    deadline = time.time() + timeout
    while subprocess.run(['flock', '-n', lock, 'true'], check=False).returncode == 0:
        assert time.time() < deadline, 'the lock holder did not start'
        time.sleep(0.05)


def test_the_link_probe_times_what_arrives_and_writes_nothing(tmp_path):
    """compression=auto's probe, with the real receiver script read by a local bash (as a
    forced command would run it): it counts the bytes after the warm-up quarter and times
    them, and leaves the staging directory alone."""
    staging = tmp_path / 'staging'
    staging.mkdir()
    (staging / 'reseed_received').write_text('')
    receive = bs.receive_command(str(staging), 'auto', 2)
    asked = bs.receive_command(str(staging), 'auto', 2, mode='probe')
    rate, problem = bs.probe_link(['env', 'SSH_ORIGINAL_COMMAND=' + asked, 'bash', '-c', receive],
                                  None, os.urandom(bs.PROBE_BYTES))
    assert problem is None and rate > 1, problem
    assert sorted(p.name for p in staging.iterdir()) == ['reseed_received']
    rate, problem = bs.probe_link(['bash', '-c', 'cat >/dev/null; exit 3'], None, b'x' * 1000)
    assert rate is None and problem.startswith('exit code 3')
