"""run()/check(): exit codes, streams, stdin, sudo, long output, one connection."""

from __future__ import annotations

import hashlib
import threading

import pytest

from labctl.remote.ssh import CommandResult
from labctl.errors import CommandFailed, ExitCode


@pytest.mark.parametrize("rc", [0, 1, 42, 255])
def test_exit_code_is_returned_not_raised(session, rc):
    result = session.run(f"echo before; exit {rc}")
    assert isinstance(result, CommandResult)
    assert result.rc == rc
    assert result.succeeded is (rc == 0)
    assert result.stdout == "before\n"
    assert result.duration > 0


def test_stdout_and_stderr_are_kept_apart(session):
    result = session.run("echo to-out; echo to-err >&2; printf 'no newline'")
    assert result.stdout == "to-out\nno newline"
    assert result.stderr == "to-err\n"


def test_commands_see_the_remote_shell(session, tmp_path):
    (tmp_path / "marker").write_text("x")
    result = session.run(f"test -f {tmp_path}/marker && echo yes; echo $((6 * 7))")
    assert result.stdout.split() == ["yes", "42"]


def test_stdin_text_and_bytes(session):
    assert session.run("cat", stdin="hello\nworld\n").stdout == "hello\nworld\n"
    blob = bytes(range(256)) * 4096  # 1 MiB of every byte value
    result = session.run("sha256sum", stdin=blob)
    assert result.stdout.split()[0] == hashlib.sha256(blob).hexdigest()


def test_no_stdin_means_eof_not_a_hang(session):
    result = session.run("cat; echo done", timeout=10)
    assert result.rc == 0
    assert result.stdout == "done\n"


def test_big_output_before_reading_big_stdin_does_not_deadlock(session):
    # More than the SSH window both ways: output must be drained while stdin is sent.
    data = b"y" * (6 * 1024 * 1024)
    result = session.run("seq 1000000; wc -c", stdin=data, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[999999] == "1000000"
    assert lines[-1] == str(len(data))


def test_400k_lines_arrive_complete(session, tmp_path):
    seen = []
    result = session.run("seq 400000", on_line=lambda stream, line: seen.append(line), timeout=120)
    lines = result.stdout.splitlines()
    assert len(lines) == 400000
    assert lines[-1] == "400000"
    assert lines == [str(i) for i in range(1, 400001)]
    assert seen == lines
    log = (tmp_path / "logs" / "node1.log").read_text()
    assert sum(1 for line in log.splitlines() if " out " in line) == 400000


def test_interleaved_streams_are_both_complete_and_ordered(session):
    got: dict[str, list[str]] = {"stdout": [], "stderr": []}
    result = session.run(
        "for i in $(seq 1 20000); do echo out$i; echo err$i >&2; done",
        on_line=lambda stream, line: got[stream].append(line),
        timeout=120,
    )
    want_out = [f"out{i}" for i in range(1, 20001)]
    want_err = [f"err{i}" for i in range(1, 20001)]
    assert result.stdout.splitlines() == want_out
    assert result.stderr.splitlines() == want_err
    assert got["stdout"] == want_out
    assert got["stderr"] == want_err


def test_lines_reach_the_node_log_with_timestamp_and_stream(session, tmp_path):
    session.run("echo visible; echo problem >&2; exit 3")
    log = (tmp_path / "logs" / "node1.log").read_text().splitlines()
    out = [line for line in log if line.endswith(" out visible")]
    err = [line for line in log if line.endswith(" err problem")]
    assert len(out) == 1 and len(err) == 1
    assert out[0][:4].isdigit() and out[0].split()[0].endswith("Z")
    assert any("--- $ echo visible" in line for line in log)
    assert any("--- exit 3 after" in line for line in log)


def test_log_output_false_keeps_lines_out_of_the_log(session, tmp_path):
    result = session.run("echo kubeconfig-$((40 + 2))", log_output=False)
    assert result.stdout == "kubeconfig-42\n"
    log = (tmp_path / "logs" / "node1.log").read_text()
    assert "kubeconfig-42" not in log
    assert "--- $ echo kubeconfig-$((40 + 2))" in log
    assert "--- exit 0" in log


def test_sudo_runs_through_sudo_with_the_command_quoted(session, sshd_host):
    result = session.run("""echo "it's $HOME" ; id -u""", sudo=True)
    assert result.rc == 0, result.stderr
    assert result.stdout.splitlines() == ["it's /root", "0"]
    if sshd_host.sudo_log.exists():  # the stand-in sudo records its calls
        calls = sshd_host.sudo_log.read_text().splitlines()
        assert calls[-1].startswith("sudo -n -H -- bash -c ")


def test_sudo_keeps_the_exit_code(session):
    assert session.run("exit 7", sudo=True).rc == 7


def test_check_raises_command_failed_with_evidence(session, tmp_path):
    with pytest.raises(CommandFailed) as info:
        session.check("echo line1; echo line2 >&2; exit 4")
    err = info.value
    assert err.rc == 4
    assert err.where == "node1"
    assert err.command == "echo line1; echo line2 >&2; exit 4"
    assert err.log_path == str(tmp_path / "logs" / "node1.log")
    assert err.exit_code == ExitCode.REMOTE_FAILED
    assert "line1" in err.evidence and "line2" in err.evidence
    assert "node1" in err.message and "exited 4" in err.message
    assert err.hint


def test_check_returns_the_result_on_success(session):
    assert session.check("echo ok").stdout == "ok\n"


def test_process_killed_by_signal(session):
    result = session.run("kill -9 $$")
    assert result.rc == -1
    with pytest.raises(CommandFailed) as info:
        session.check("kill -9 $$")
    assert "signal" in info.value.hint


def test_one_connection_serves_every_command(sshd_host, session):
    transport = session.transport
    for i in range(25):
        assert session.run(f"echo {i}").stdout == f"{i}\n"
    assert session.transport is transport
    assert sshd_host.accepted_connections() == 1


def test_commands_in_parallel_threads_share_the_connection(sshd_host, session):
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = session.run(f"sleep 0.2; seq {i * 1000}").stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(1, 5):
        assert results[i].splitlines()[-1] == str(i * 1000)
    assert sshd_host.accepted_connections() == 1


def test_context_manager_closes_the_connection(sshd_host, make_session):
    with make_session(sshd_host) as s:
        s.connect(deadline=20)
        transport = s.transport
        assert s.run("true").rc == 0
    assert not transport.is_active()
    assert not s.connected


def test_missing_sudo_on_the_node_is_named(sshd_factory, make_session, tmp_path):
    empty = tmp_path / "no-sudo-bin"
    empty.mkdir()
    host = sshd_factory(env={"PATH": f"{empty}:/usr/bin:/bin"}) if not _has_real_sudo() else None
    if host is None:
        pytest.skip("this machine has a real sudo")
    s = make_session(host)
    s.connect(deadline=10)
    with pytest.raises(CommandFailed) as info:
        s.check("true", sudo=True)
    assert info.value.rc == 127
    assert "sudo is not installed" in info.value.hint


def _has_real_sudo() -> bool:
    import shutil

    return any(shutil.which("sudo", path=p) for p in ("/usr/bin", "/bin"))
