# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch every process's argv and environment for secrets while something runs.

Lab hosts' pid namespaces are children of the controller's, so the controller's /proc shows
every process of every lab host: one watcher covers them all.
"""

from __future__ import annotations

import ast
import json
import os
import re
import threading

from lab import pid_namespace


class ProcWatch(object):
    """A background thread that looks at every process's argv every `interval` seconds while
    the with-block runs; subclasses say what to look for in sample(pid, argv)."""

    def __init__(self, interval):
        self.interval = interval
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = os.getpid()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        return False

    @staticmethod
    def read(path):
        try:
            with open(path, 'rb') as f:
                return f.read()
        except OSError:
            return b''

    def sample(self, pid, argv):
        raise NotImplementedError

    def _run(self):
        while not self._stop.is_set():
            for entry in os.listdir('/proc'):
                if not entry.isdigit() or int(entry) == self._me:
                    continue
                argv = self.read('/proc/%s/cmdline' % entry)
                if argv:
                    self.sample(entry, argv)
            self.samples += 1
            self._stop.wait(self.interval)


class SecretsWatch(ProcWatch):
    """with SecretsWatch(['pw1', 'pw2']) as watch: ...; then watch.leaks is a list of
    (pid, 'argv'|'environ', command) where a secret was seen; watch.samples counts passes."""

    def __init__(self, secrets, interval=0.01, environ=True):
        super(SecretsWatch, self).__init__(interval)
        self.secrets = [s.encode() for s in secrets if s]
        self.environ = environ
        self.leaks = []
        self.processes_seen = set()

    def sample(self, pid, argv):
        self.processes_seen.add((pid, argv[:60]))
        where = [('argv', argv)]
        if self.environ:
            where.append(('environ', self.read('/proc/%s/environ' % pid)))
        for kind, blob in where:
            if any(s in blob for s in self.secrets):
                self.leaks.append((int(pid), kind, argv.replace(b'\0', b' ')[:200]))


class ModuleArgCatcher(ProcWatch):
    """A secret a run draws for itself (no_log, so a test cannot know it in advance), caught
    from the arguments of the module it is given to, while that module runs.

    Ansible copies a module, its arguments included, into the remote temporary directory and
    runs it from there: its process (AnsiballZ_<module>.py) is found among every process's
    argv, and the file read through the process's own root. Each value found is added to
    ``watch`` (a SecretsWatch) at once, so that from then on no process's argv or environment
    may hold it either; a test then looks for it in the output too.

        with SecretsWatch([...]) as watch, \\
                ModuleArgCatcher('temp_account', 'password', watch) as caught:
            ...
        assert caught.found  # the check was not empty
    """

    PARAMS = re.compile(r'^params=(.+),$', re.M)

    def __init__(self, module, key, watch=None, interval=0.005, hosts=None):
        super(ModuleArgCatcher, self).__init__(interval)
        # Given hosts (lab.Host), only their processes: those in a host's pid namespace
        # (another test may run the same module on its own hosts meanwhile).
        self.namespaces = None if hosts is None else set(
            pid_namespace(h.init_pid) for h in hosts)
        self.module = re.compile(rb'[^\0 ]*/AnsiballZ_' + re.escape(module.encode()) + rb'\.py')
        self.key = key
        self.watch = watch
        self.found = []  # values, in the order they appeared
        self.files = []  # the module file each was read from
        self._read = set()  # (pid, path) read whole

    def wanted(self, args):
        """Whether these module arguments are the ones to catch from (all, here)."""
        return True

    def sample(self, pid, argv):
        m = self.module.search(argv)
        if not m or (pid, m.group(0)) in self._read:
            return
        if self.namespaces is not None and pid_namespace(pid) not in self.namespaces:
            return
        path = m.group(0).decode(errors='replace')
        try:
            with open('/proc/%s/root%s' % (pid, path)) as f:
                args = json.loads(ast.literal_eval(
                    self.PARAMS.search(f.read()).group(1)))['ANSIBLE_MODULE_ARGS']
        except (OSError, ValueError, SyntaxError, KeyError, AttributeError):
            return  # gone, or not whole yet: read again on the next pass
        self._read.add((pid, m.group(0)))
        value = args.get(self.key)
        if isinstance(value, str) and value and value not in self.found and self.wanted(args):
            self.found.append(value)
            self.files.append(path)
            if self.watch is not None:
                self.watch.secrets.append(value.encode())
