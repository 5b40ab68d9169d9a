"""`labctl ssh NODE [-- COMMAND]`: a login with the lab's pinned host keys, or one
command through the same SSH session `up` uses, returning its exit code."""

from __future__ import annotations

from labctl.lab.lab import Lab


def _target(lab: Lab, node: str):
    lab.spec.node(node)  # NotFound naming the lab's nodes
    lab.require_machines("log in to")
    return lab.provider.ssh_target(node)


def ssh_argv(lab: Lab, node: str) -> list[str]:
    """The system `ssh` command line for an interactive login, pinned to the lab's keys."""
    t = _target(lab, node)
    return [
        "ssh", "-t",
        "-i", str(t.key_file),
        "-p", str(t.port),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={lab.paths.known_hosts}",
        # The lab's known_hosts pins keys by node name; the forwarded port may move.
        "-o", f"HostKeyAlias={node}",
        "-o", "StrictHostKeyChecking=accept-new",
        f"{t.user}@{t.host}",
    ]


def ssh_run(lab: Lab, node: str, command: str, *, out=None, err=None) -> int:
    """Run ``command`` on ``node`` through the lab's SSH session; its exit code."""
    import sys

    lab.spec.node(node)
    lab.require_machines("run a command on")
    out = out or sys.stdout
    err = err or sys.stderr
    session = lab.session(node, deadline=30.0)
    try:
        def on_line(stream: str, line: str) -> None:
            (err if stream == "stderr" else out).write(line + "\n")

        res = session.run(command, on_line=on_line, timeout=3600.0)
    finally:
        session.close()
    return 255 if res.rc is None else (128 + 15 if res.rc == -1 else res.rc)
