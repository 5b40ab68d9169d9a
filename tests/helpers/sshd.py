"""Real OpenSSH servers on loopback for tests (pytest plugin).

``sshd_factory(force_command=None, env=None) -> SSHDHost`` starts ``/usr/sbin/sshd -D -e``
on 127.0.0.1:<free port> with its own ed25519 host key, config, authorized_keys and
client key, all in a temporary folder. Everything it starts (the listener, and the
per-connection sshd children and the commands they run) is stopped by PID at teardown.

The login user is the user running the tests (root here, ``PermitRootLogin
prohibit-password``). As root, OpenSSH insists on its privilege separation directory
``/run/sshd`` (compiled in, not configurable); it is created (0755, empty) when missing,
which is what Debian's own init script does at boot.

``env`` reaches every session (and a ForceCommand) as ``environment=`` options in
authorized_keys (``PermitUserEnvironment yes``) rather than ``SetEnv``, because sshd
sets PATH after SetEnv and a fake node needs its own PATH. ``SHLVL=1`` is set by
default so Debian's bash does not source this machine's ~/.bashrc for sshd commands.

When the machine has no ``sudo`` (this one has none), a stand-in ``sudo`` for root is
put first on the sessions' PATH: it accepts ``-n -H -u root --``, logs each call to
``SSHDHost.sudo_log`` and runs the command. It stands for the node OS's sudo.

``SSHDHost`` also offers ``authorize(False)`` (refuse the client key, as a VM before its
key is installed), ``move()`` (another port from the next start), ``rotate_host_key()``
(a re-created VM), ``kill_sessions()`` (drop connections, keep listening) and
``accepted_connections()`` (logins counted from sshd's own log).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labctl.remote.ssh import SSHTarget

SSHD = "/usr/sbin/sshd"

_FAKE_SUDO = r"""#!/bin/sh
# stand-in for the node's sudo (tests run as root on a machine without sudo)
echo "sudo $*" >> "$LABCTL_TEST_SUDO_LOG"
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-E) shift ;;
    -H) HOME=$(getent passwd root | cut -d: -f6); export HOME; shift ;;
    -u) [ "$2" = root ] || { echo "sudo: only root here" >&2; exit 1; }; shift 2 ;;
    --) shift; break ;;
    -*) echo "sudo: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "sudo: a password is required" >&2; exit 1; }
exec "$@"
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _quoted(value: str) -> str:
    # authorized_keys options: inside double quotes only \" is an escape
    return str(value).replace('"', '\\"')


def _keygen(path: Path) -> None:
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may hold spaces and parens: fields resume after the last ')'
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    tree = _children()
    out, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class SSHDHost:
    """One sshd on loopback. ``stop()`` then ``start()`` is a host that goes away and
    comes back on the same port with the same keys (a VM rebooting)."""

    def __init__(self, workdir: Path, *, force_command: str | None = None, env: dict | None = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.key_file = self.dir / "client_key"
        self.host_key_file = self.dir / "ssh_host_ed25519_key"
        self.config_file = self.dir / "sshd_config"
        self.log_path = self.dir / "sshd.log"
        self.sudo_log = self.dir / "sudo.log"
        self.force_command = force_command
        self.env = dict(env or {})
        self._proc: subprocess.Popen | None = None
        self._log_fh = None
        self._authorized = True
        self._started_once = False
        _keygen(self.key_file)
        _keygen(self.host_key_file)
        self._write_config()

    @property
    def host_key_pub(self) -> str:
        """``ssh-ed25519 AAAA...`` as the server presents it (without comment)."""
        return " ".join(self.host_key_file.with_suffix(".pub").read_text().split()[:2])

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def target(self, name: str = "node") -> SSHTarget:
        return SSHTarget(name=name, host=self.host, port=self.port, user=self.user, key_file=self.key_file)

    def _write_config(self) -> None:
        env = dict(self.env)
        env.setdefault("LABCTL_TEST_SUDO_LOG", str(self.sudo_log))
        # Debian's bash sources ~/.bashrc for commands run by sshd when it is a top-level
        # shell; SHLVL=1 makes it a second-level one, so this machine's ~/.bashrc (its
        # PATH, its ~0.25 s pyenv start-up) does not leak into the emulated node.
        env.setdefault("SHLVL", "1")
        if shutil.which("sudo") is None and "PATH" not in env:
            bindir = self.dir / "bin"
            bindir.mkdir(exist_ok=True)
            (bindir / "sudo").write_text(_FAKE_SUDO)
            (bindir / "sudo").chmod(0o755)
            env["PATH"] = f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key_file}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "LogLevel INFO",
            "MaxStartups 50",
        ]
        # sshd sets PATH after SetEnv; authorized_keys environment= options come last.
        options = ",".join(f'environment="{key}={_quoted(value)}"' for key, value in env.items())
        pub = self.key_file.with_suffix(".pub").read_text().strip()
        line = f"{options} {pub}\n" if options else f"{pub}\n"
        (self.dir / "authorized_keys").write_text(line if self._authorized else "")
        if options:
            lines.append("PermitUserEnvironment yes")
        if self.force_command:
            lines.append(f"ForceCommand {self.force_command}")
        self.config_file.write_text("\n".join(lines) + "\n")

    def authorize(self, allowed: bool = True) -> None:
        """Accept or refuse the client key (a VM whose key is not installed yet)."""
        self._authorized = allowed
        self._write_config()

    def move(self, port: int | None = None) -> None:
        """Listen on another port from the next start() (Vagrant moved the forward)."""
        self.port = port or free_port(self.host)
        self._write_config()

    def rotate_host_key(self) -> None:
        """A new host key (the node was re-created); takes effect at the next start()."""
        _keygen(self.host_key_file)

    def start(self, timeout: float = 10.0) -> SSHDHost:
        """Start sshd and wait until it listens. A port that another process took between
        free_port() and sshd's bind (xdist workers, other test runs on the machine) means
        another port, on a first start; a restart keeps its port (a VM coming back)."""
        if self.pid is not None:
            return self
        if os.getuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        first = not self._started_once
        for _ in range(5 if first else 1):
            if self._start_once(timeout):
                self._started_once = True
                return self
            self.move()
        raise RuntimeError(f"sshd could not bind a port on {self.host}: {self.log_path.read_text()[-2000:]}")

    def _start_once(self, timeout: float) -> bool:
        """True once this sshd listens; False when its port was taken."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=self._log_fh,
            start_new_session=True,
        )
        listening = f"Server listening on {self.host} port {self.port}."
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                log = fh.read().decode(errors="replace")
            # Our own sshd's word, not a banner on the port: that could be another's.
            if listening in log and self._proc.poll() is None:
                return True
            if "Address already in use" in log:
                self.stop()
                return False
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self._proc.returncode}: {log[-2000:]}")
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sshd did not listen on {self.host}:{self.port}: {self.log_path.read_text()[-2000:]}")

    def session_pids(self) -> list[int]:
        """PIDs of the per-connection sshd processes and everything they run."""
        return descendants(self._proc.pid) if self.pid is not None else []

    def kill_sessions(self) -> None:
        """Drop every open connection (and its commands) but keep listening."""
        _kill(self.session_pids())

    def stop(self) -> None:
        """The host goes away: the listener, its connections and their commands."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            pids = self.session_pids()
            self._proc.kill()
            _kill(pids)
            self._proc.wait(timeout=10)
        self._proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def accepted_connections(self) -> int:
        """How many logins this sshd accepted (its INFO log line per connection)."""
        return self.log().count("Accepted publickey for ")


@pytest.fixture
def sshd_factory(tmp_path_factory) -> Iterator[Callable[..., SSHDHost]]:
    hosts: list[SSHDHost] = []

    def make(force_command: str | None = None, env: dict | None = None, *, start: bool = True) -> SSHDHost:
        host = SSHDHost(tmp_path_factory.mktemp("sshd"), force_command=force_command, env=env)
        hosts.append(host)
        return host.start() if start else host

    yield make
    for host in hosts:
        host.stop()


@pytest.fixture
def sshd_host(sshd_factory) -> SSHDHost:
    return sshd_factory()
