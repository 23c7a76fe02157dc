# Copyright: reseed.mariadb developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch every process's argv and environment for secrets while something runs.

Lab hosts' pid namespaces are children of the controller's, so the controller's /proc shows
every process of every lab host: one watcher covers them all.
"""

from __future__ import annotations

import os
import threading


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
