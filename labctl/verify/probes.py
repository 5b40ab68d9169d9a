"""Probes: ask the lab a question from a named vantage point and record the answer.

Three vantage points, because the course's claims differ in where they hold:
- the host (urllib): NodePort, LoadBalancer, `externalTrafficPolicy: Local`;
- a node over SSH (curl on the node): Pod IPs and ClusterIPs, reachable only inside;
- inside a container (`exec`): localhost between a Pod's containers.
A probe never raises for an unreachable target: "no answer" is an answer that some
checks expect (a node without a Pod under `externalTrafficPolicy: Local`).
"""

from __future__ import annotations

import shlex
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from labctl.verify.model import Evidence, Mismatch

HTTP_TIMEOUT = 3.0  # seconds; the course's servers answer in milliseconds
CURL_EXIT = {6: "could not resolve host", 7: "connection refused", 28: "timed out", 52: "empty reply", 56: "connection reset"}


class NodeRunner(Protocol):
    """Runs a shell command on a lab node. Implementations: SSH sessions of the lab
    (labctl.verify.context.SessionNodeRunner) or anything speaking the same."""

    def run(self, node: str, command: str, timeout: float) -> Any:  # -> CommandResult
        ...


@dataclass(frozen=True)
class HttpAnswer:
    vantage: str  # "host", "k8s-master", ...
    url: str
    status: int | None  # None: no HTTP answer at all
    body: str = ""
    error: str = ""  # "timed out", "connection refused", ...
    duration: float = 0.0

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def timed_out(self) -> bool:
        return self.status is None and "timed out" in self.error

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error or 'unknown error'})"
        body = self.body.strip().replace("\n", " | ")
        if len(body) > 80:
            body = body[:77] + "..."
        return f"HTTP {self.status} {body!r}"

    def where(self) -> str:
        return f"GET {self.url} from {self.vantage}"


def http_from_host(url: str, *, timeout: float = HTTP_TIMEOUT) -> HttpAnswer:
    # No proxy: lab addresses are on the host's own private networks, and a
    # corporate http_proxy in the environment would answer in their place.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    start = time.monotonic()
    try:
        with opener.open(url, timeout=timeout) as resp:
            body = resp.read(65536).decode("utf-8", "replace")
            return HttpAnswer("host", url, resp.status, body, duration=time.monotonic() - start)
    except urllib.error.HTTPError as exc:
        body = exc.read(65536).decode("utf-8", "replace") if exc.fp else ""
        return HttpAnswer("host", url, exc.code, body, duration=time.monotonic() - start)
    except urllib.error.URLError as exc:
        return HttpAnswer("host", url, None, error=_reason(exc.reason), duration=time.monotonic() - start)
    except (TimeoutError, socket.timeout):
        return HttpAnswer("host", url, None, error="timed out", duration=time.monotonic() - start)
    except (ConnectionError, OSError) as exc:
        return HttpAnswer("host", url, None, error=_reason(exc), duration=time.monotonic() - start)


def _reason(reason: Any) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    return str(reason) or type(reason).__name__


def curl_command(url: str, timeout: float = HTTP_TIMEOUT) -> str:
    # -w puts the status on its own last line so the body can be anything.
    seconds = max(1, int(round(timeout)))
    return f"curl -s -m {seconds} -o - -w '\\n%{{http_code}}' {shlex.quote(url)}"


def http_from_node(runner: NodeRunner, node: str, url: str, *, timeout: float = HTTP_TIMEOUT) -> HttpAnswer:
    start = time.monotonic()
    result = runner.run(node, curl_command(url, timeout), timeout + 5.0)
    duration = time.monotonic() - start
    return parse_curl(node, url, result.rc, result.stdout, result.stderr, duration)


def parse_curl(node: str, url: str, rc: int | None, stdout: str, stderr: str = "", duration: float = 0.0) -> HttpAnswer:
    body, _, code = stdout.rpartition("\n")
    code = code.strip()
    if rc is None:
        return HttpAnswer(node, url, None, error="timed out (ssh)", duration=duration)
    if rc == 127 or "command not found" in stderr:
        return HttpAnswer(node, url, None, error=f"curl is not installed on {node}", duration=duration)
    if rc != 0 or not code.isdigit() or code == "000":
        reason = CURL_EXIT.get(rc, f"curl exited {rc}")
        return HttpAnswer(node, url, None, body=body, error=reason, duration=duration)
    return HttpAnswer(node, url, int(code), body, duration=duration)


def expect_http(answer: HttpAnswer, *, status: int = 200, body: str | None = None, contains: str | None = None) -> list[Mismatch]:
    """The answer's mismatches against an expected status and body."""
    where = answer.where()
    if answer.status is None:
        return [Mismatch(where, f"HTTP {status}", answer.describe())]
    out = []
    if answer.status != status:
        out.append(Mismatch(where + " status", status, answer.status))
    if body is not None and answer.body.strip() != body.strip():
        out.append(Mismatch(where + " body", body, answer.body.strip()))
    if contains is not None and contains not in answer.body:
        out.append(Mismatch(where + " body", f"text containing {contains!r}", answer.body.strip()))
    return out


def expect_no_answer(answer: HttpAnswer) -> list[Mismatch]:
    """A negative probe: the target must not answer at all (time out or refuse)."""
    if answer.status is None:
        return []
    return [Mismatch(answer.where(), "no answer", answer.describe(), negated=False)]


def answer_evidence(answers: Sequence[HttpAnswer]) -> Evidence:
    return Evidence("probes", tuple(f"{a.where()}: {a.describe()} in {a.duration:.2f}s" for a in answers))


@dataclass(frozen=True)
class ExecAnswer:
    pod: str
    container: str
    command: tuple[str, ...]
    rc: int | None
    stdout: str
    stderr: str = ""
    error: str = ""  # the exec itself failed (container not running, API refused)

    def where(self) -> str:
        return f"exec {shlex.join(self.command)} in {self.pod}/{self.container}"

    def describe(self) -> str:
        if self.error:
            return f"exec failed ({self.error})"
        out = self.stdout.strip().replace("\n", " | ")
        return f"rc={self.rc} stdout={out!r}" + (f" stderr={self.stderr.strip()!r}" if self.stderr.strip() else "")


def exec_in_container(cluster: Any, pod: str, container: str, command: Sequence[str], *, namespace: str = "default", timeout: float = 10.0) -> ExecAnswer:
    from labctl.errors import LabError

    try:
        result = cluster.exec(pod, list(command), namespace=namespace, container=container, timeout=timeout)
    except LabError as exc:
        return ExecAnswer(pod, container, tuple(command), None, "", error=exc.message)
    return ExecAnswer(pod, container, tuple(command), result.rc, result.stdout, result.stderr)


def expect_exec(answer: ExecAnswer, *, rc: int = 0, stdout: str | None = None, contains: str | None = None) -> list[Mismatch]:
    where = answer.where()
    if answer.error:
        return [Mismatch(where, f"exit {rc}", answer.describe())]
    out = []
    if answer.rc != rc:
        out.append(Mismatch(where + " exit code", rc, answer.rc, note=answer.stderr.strip()[:200]))
    if stdout is not None and answer.stdout.strip() != stdout.strip():
        out.append(Mismatch(where + " stdout", stdout, answer.stdout.strip()))
    if contains is not None and contains not in answer.stdout:
        out.append(Mismatch(where + " stdout", f"text containing {contains!r}", answer.stdout.strip()))
    return out
