"""Hand the terminal to the OpenSSH client for an interactive `labctl ssh NODE`.

Only the interactive login needs it; `labctl ssh NODE -- COMMAND` runs through paramiko.
Without a client the user is told what to install (Windows 10/11 carry OpenSSH as an
optional feature, not always on). Windows has no exec: ``os.execvp`` there starts a new
process and returns to the shell at once, so the client runs as a child whose exit
code becomes labctl's.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from labctl.errors import HostNotReady
from labctl.host.doctor_host import SSH_CLIENT_FIX
from labctl.host.platform import normalise_os


def find_ssh_client(env: Mapping[str, str] | None = None) -> str | None:
    return shutil.which("ssh", path=(os.environ if env is None else env).get("PATH", ""))


def exec_ssh(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> NoReturn:
    """Run the OpenSSH client ``argv`` (argv[0] == "ssh") in place of labctl."""
    client = find_ssh_client(env)
    if client is None:
        host_os = normalise_os(platform.system())
        raise HostNotReady(
            "no OpenSSH client (ssh) on PATH for an interactive login; "
            "`labctl ssh NODE -- COMMAND` works without it",
            hint=SSH_CLIENT_FIX.get(host_os, "install your distribution's openssh-client package"),
        )
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.platform == "win32":
        sys.exit(subprocess.call([client, *argv[1:]]))
    os.execv(client, [client, *argv[1:]])
    raise AssertionError("unreachable: os.execv returned")  # pragma: no cover
