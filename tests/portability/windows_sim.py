"""Installed as ``sitecustomize`` in a subprocess: take away what Windows does not have.

- POSIX-only modules cannot be imported (a meta-path finder raises ImportError, as
  CPython on Windows would: there is no fcntl, termios, pwd, grp, resource, ...).
- POSIX-only functions and constants are deleted from ``os`` and ``signal``.
- Text-mode writes without an explicit ``newline`` translate "\\n" to "\\r\\n", as they
  do on Windows, so a file written in text mode shows up with CRLF.

What stays: the interpreter's own POSIX internals (``posix``, ``_posixsubprocess``) that
``subprocess``, ``shutil`` and ``os.path`` use under the hood, and psutil, imported
before anything is removed (it selects its Linux or Windows backend at import and reads
os.sysconf then; its Windows backend is psutil's own, tested upstream), and asyncio (the
same for the stdlib's event loop, reached through kubernetes -> google-auth). filelock is NOT
pre-imported: it must cope with a missing fcntl, as on Windows.
"""

import builtins
import importlib.abc
import io
import os
import signal
import sys

import psutil  # noqa: F401 - see above

# The stdlib's own platform backends, chosen at import like psutil's: on 3.12+ asyncio's
# unix_events reads os.sysconf('SC_IOV_MAX') at import; Windows imports windows_events.
import asyncio  # noqa: F401, E402

BLOCKED = {"fcntl", "termios", "pwd", "grp", "resource", "tty", "pty", "syslog", "crypt", "spwd", "posix_ipc"}


class _NoPosixOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (simulated Windows)", name=name)
        return None


for _name in list(sys.modules):
    if _name.split(".")[0] in BLOCKED:
        del sys.modules[_name]
sys.meta_path.insert(0, _NoPosixOnly())

_OS_GONE = (
    "killpg", "getpgid", "getpgrp", "setpgrp", "setpgid", "setsid", "getsid", "sysconf", "sysconf_names",
    "fork", "forkpty", "openpty", "getuid", "geteuid", "getgid", "getegid", "getgroups", "setuid", "setgid",
    "chown", "lchown", "fchown", "pread", "pwrite", "getloadavg", "nice", "uname", "mkfifo", "wait3", "wait4",
)
for _name in _OS_GONE:
    if hasattr(os, _name):
        delattr(os, _name)

_SIGNALS_GONE = (
    "SIGKILL", "SIGHUP", "SIGQUIT", "SIGTSTP", "SIGCONT", "SIGSTOP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD",
    "SIGPIPE", "SIGWINCH", "alarm", "setitimer", "getitimer", "pause", "siginterrupt", "pthread_kill", "sigwait",
)
for _name in _SIGNALS_GONE:
    if hasattr(signal, _name):
        delattr(signal, _name)

_real_open = io.open


class _WindowsOpen:
    """open() with Windows' text-mode newline translation. A class instance, not a
    function: Python 3.10's pathlib keeps ``io.open`` as a class attribute
    (_NormalAccessor.open), where a plain function would become a bound method."""

    def __call__(self, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
        if "b" not in mode and newline is None and any(c in mode for c in "wax+"):
            newline = "\r\n"
        return _real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)


builtins.open = io.open = _WindowsOpen()
