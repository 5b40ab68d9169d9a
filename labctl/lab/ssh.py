"""`labctl ssh NODE [-- COMMAND]`: a login with the lab's pinned host keys, or one
command through the same SSH session `up` uses, returning its exit code."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from labctl.lab.lifecycle import driver_for, open_session
from labctl.lab.paths import LabPaths
from labctl.spec import load_spec


def ssh_argv(lab_dir: Path, node: str, *, vagrant_env: Mapping[str, str] | None = None) -> list[str]:
    """The system `ssh` command line for an interactive login, pinned to the lab's keys."""
    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    spec.node(node)
    t = driver_for(paths, vagrant_env).ssh_target(node)
    return [
        "ssh", "-t",
        "-i", str(t.key_file),
        "-p", str(t.port),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={paths.known_hosts}",
        # The lab's known_hosts pins keys by node name; the forwarded port may move.
        "-o", f"HostKeyAlias={node}",
        "-o", "StrictHostKeyChecking=accept-new",
        f"{t.user}@{t.host}",
    ]


def ssh_run(lab_dir: Path, node: str, command: str, *, out=None, err=None,
            vagrant_env: Mapping[str, str] | None = None) -> int:
    """Run ``command`` on ``node`` through the lab's SSH session; its exit code."""
    import sys

    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    spec.node(node)
    out = out or sys.stdout
    err = err or sys.stderr
    session = open_session(paths, driver_for(paths, vagrant_env).ssh_target(node), deadline=30.0)
    try:
        def on_line(stream: str, line: str) -> None:
            (err if stream == "stderr" else out).write(line + "\n")

        res = session.run(command, on_line=on_line, timeout=3600.0)
    finally:
        session.close()
    return 255 if res.rc is None else (128 + 15 if res.rc == -1 else res.rc)
