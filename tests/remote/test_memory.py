"""MemorySession speaks the Session protocol the way SSHSession does: same command
lines to the node (sudo, the upload script), redaction, logs, on_line; it records
every command. Its uploads are checked by running the script it sends in a real bash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labctl.errors import CommandFailed
from labctl.remote.memory import MemorySession
from labctl.remote.result import CommandResult, ConnectionLost


def bash_in(root: Path):
    """A responder that runs the node's command in a real bash, paths under ``root``."""

    def respond(command: str, stdin: bytes | None) -> CommandResult:
        command = command.replace("/var/lib/node", str(root))
        done = subprocess.run(["bash", "-c", command], input=stdin or b"", capture_output=True, timeout=30)
        return CommandResult(command, done.returncode, done.stdout.decode(), done.stderr.decode(), 0.0)

    return respond


def test_a_mapping_answers_and_unknown_commands_exit_127():
    s = MemorySession("n1", {"hostname": "n1\n", "false": (1, "", "no")})
    assert s.run("hostname").stdout == "n1\n"
    assert s.run("false").rc == 1
    missing = s.run("kubectl get nodes")
    assert missing.rc == 127 and "kubectl: command not found" in missing.stderr
    assert [c.command for c in s.commands] == ["hostname", "false", "kubectl get nodes"]


def test_sudo_is_wrapped_as_ssh_does_and_stdin_is_recorded():
    from labctl.remote.ssh import SSHSession

    seen = []
    s = MemorySession("n1", lambda cmd, stdin: seen.append((cmd, stdin)) or (0, "", ""))
    s.run("id -u", sudo=True, stdin="x")
    assert seen == [(SSHSession._wire("id -u", True), b"x")]
    assert s.commands[0].stdin == b"x"


def test_secrets_are_redacted_in_results_lines_and_log(tmp_path):
    log = tmp_path / "n1.log"
    lines = []
    s = MemorySession("n1", lambda cmd, stdin: (0, "token abc.def123\n", ""), log_path=log)
    s.add_secret("abc.def123")
    r = s.run("kubeadm token create abc.def123", on_line=lambda stream, line: lines.append((stream, line)))
    assert r.command == "kubeadm token create ***"
    assert lines == [("stdout", "token ***")]
    text = log.read_text()
    assert "abc.def123" not in text and "token ***" in text and "exit 0" in text
    assert r.stdout == "token abc.def123\n"  # the caller asked for the real value


def test_put_and_put_file_send_the_upload_script_a_real_bash_runs(tmp_path):
    node = tmp_path / "node"
    s = MemorySession("n1", bash_in(node))
    s.put("secret: 1\n", "/var/lib/node/etc/labctl/join.yaml", mode=0o600)
    assert (node / "etc/labctl/join.yaml").read_text() == "secret: 1\n"
    assert (node / "etc/labctl/join.yaml").stat().st_mode & 0o777 == 0o600
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(300_000))
    s.put_file(local, "/var/lib/node/opt/big.bin", mode=0o755)
    assert (node / "opt/big.bin").read_bytes() == local.read_bytes()
    assert s.commands[-1].stdin == local.read_bytes()
    assert not list(node.rglob(".labctl-put.*"))


def test_a_failed_put_raises_with_the_node_and_the_output():
    s = MemorySession("n1", lambda cmd, stdin: (3, "", "upload truncated: 1 of 2 bytes"))
    with pytest.raises(CommandFailed) as exc:
        s.put(b"ab", "/etc/x")
    assert exc.value.where == "n1" and "upload truncated" in "\n".join(exc.value.evidence)


def test_check_raises_and_a_closed_session_refuses():
    s = MemorySession("n1", {"false": (1, "", "boom")})
    with pytest.raises(CommandFailed):
        s.check("false")
    s.close()
    with pytest.raises(ConnectionLost):
        s.run("true")


def test_memory_and_ssh_sessions_offer_the_same_methods():
    from labctl.remote.ssh import SSHSession

    for name in ("run", "check", "put", "put_file", "add_secret", "redact", "connect", "close"):
        assert callable(getattr(MemorySession, name)) and callable(getattr(SSHSession, name)), name
