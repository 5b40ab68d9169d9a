"""Secrets (join tokens, certificate keys) never reach logs, errors or callbacks."""

from __future__ import annotations

import pytest

from labctl.errors import CommandFailed

TOKEN = "abcdef.0123456789abcdef"
CERT_KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_secret_is_redacted_in_log_callbacks_and_result_command(session, tmp_path):
    session.add_secret(TOKEN)
    seen = []
    result = session.run(
        f"echo join --token {TOKEN}; echo {TOKEN} >&2",
        on_line=lambda stream, line: seen.append((stream, line)),
    )
    # the caller asked for the output: it gets the real value
    assert TOKEN in result.stdout
    assert result.command == "echo join --token ***; echo *** >&2"
    assert TOKEN not in repr(result)
    assert seen == [("stdout", "join --token ***"), ("stderr", "***")]
    log = (tmp_path / "logs" / "node1.log").read_text()
    assert TOKEN not in log
    assert "out join --token ***" in log


def test_secrets_given_at_construction(sshd_host, make_session, tmp_path):
    s = make_session(sshd_host, "node1", secrets=[CERT_KEY, ""])
    s.connect(deadline=10)
    s.run(f"echo {CERT_KEY}")
    log = (tmp_path / "logs" / "node1.log").read_text()
    assert CERT_KEY not in log and "out ***" in log


def test_secret_in_a_failure_is_redacted_everywhere(session, tmp_path):
    session.add_secret(TOKEN)
    with pytest.raises(CommandFailed) as info:
        session.check(f"echo using {TOKEN}; echo bad {TOKEN} >&2; exit 1")
    err = info.value
    everything = " ".join([err.message, err.hint or "", err.command, *err.evidence, str(err.to_dict())])
    assert TOKEN not in everything
    assert "using ***" in err.evidence and "bad ***" in err.evidence


def test_secret_in_a_timeout_is_redacted(session):
    session.add_secret(TOKEN)
    with pytest.raises(CommandFailed) as info:
        session.run(f"echo {TOKEN}; sleep 30", timeout=1)
    err = info.value
    assert TOKEN not in err.message and TOKEN not in " ".join(err.evidence)
    assert "***" in err.evidence


def test_secret_added_later_applies_to_later_output(session, tmp_path):
    session.run("echo early-value")
    session.add_secret("early-value")
    session.run("echo early-value again")
    log = (tmp_path / "logs" / "node1.log").read_text()
    assert "out *** again" in log


def test_secret_through_stdin_never_reaches_the_log(session, tmp_path):
    session.add_secret(TOKEN)
    result = session.run("sha256sum", stdin=f"{TOKEN}\n")
    assert result.rc == 0
    assert TOKEN not in (tmp_path / "logs" / "node1.log").read_text()


def test_longer_secret_containing_a_shorter_one_is_hidden_whole(session, tmp_path):
    session.add_secret("abc")
    session.add_secret("abcdef-long")
    session.run("echo abcdef-long abc")
    assert "out *** ***" in (tmp_path / "logs" / "node1.log").read_text()
