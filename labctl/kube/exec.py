"""Exec in a container over the API server's exec websocket (channel protocol v4).

:func:`exec_in_pod` is THE adapter tests replace; they replace it where
:class:`labctl.kube.client.KubeClient` looks it up (``labctl.kube.client.exec_in_pod``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from labctl.errors import ClusterError
from labctl.kube.errors import translate
from labctl.kube.kinds import ObjectRef


@dataclass(frozen=True)
class ExecResult:
    command: tuple[str, ...]
    rc: int | None  # None: no exit status (timed out, or the stream broke off)
    stdout: str
    stderr: str = ""

    @property
    def succeeded(self) -> bool:
        return self.rc == 0


def exec_in_pod(api_client, namespace: str, pod: str, container: str | None, command: Sequence[str], *, timeout: float = 30.0) -> ExecResult:
    """Run ``command`` in a container over the exec websocket: THE adapter tests replace."""
    from kubernetes import client
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    # stream() swaps ``request`` on the ApiClient it is given while the call runs; a
    # private ApiClient keeps that swap away from other threads' GETs on the shared one.
    private = client.ApiClient(configuration=api_client.configuration)
    core = client.CoreV1Api(private)
    argv = tuple(command)
    kwargs = dict(command=list(argv), stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    if container:
        kwargs["container"] = container
    try:
        resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
    except Exception as exc:  # the websocket handshake fails with ApiException(status=0) or a socket error
        raise translate(_handshake_status(exc), f"exec in Pod {namespace}/{pod}", ObjectRef("Pod", pod, namespace)) from exc
    try:
        resp.run_forever(timeout=timeout)
        timed_out = resp.is_open()
        stdout = resp.read_stdout(timeout=0) if resp.peek_stdout() else ""
        stderr = resp.read_stderr(timeout=0) if resp.peek_stderr() else ""
        rc = None if timed_out else _exec_rc(resp.read_channel(ERROR_CHANNEL, timeout=0))
    finally:
        resp.close()
        private.close()
    return ExecResult(argv, rc, stdout or "", stderr or "")


def _handshake_status(exc: BaseException) -> BaseException:
    """The websocket client reports a refused upgrade as ApiException(status=0) whose
    reason holds "Handshake status 404 ... -+-+- <headers> -+-+- <Status JSON>":
    recover the HTTP status and the Status body, so 404 reads as NotFound."""
    from kubernetes.client.exceptions import ApiException

    text = str(getattr(exc, "reason", "") or exc)
    match = re.search(r"Handshake status (\d{3})", text)
    if not isinstance(exc, ApiException) or not match:
        return exc
    parts = text.split(" -+-+- ")
    rebuilt = ApiException(status=int(match.group(1)), reason=parts[0].removeprefix("Handshake status ")[4:] or None)
    if len(parts) >= 3:
        body = parts[2].removeprefix("b'")
        try:
            rebuilt.body = json.dumps(json.JSONDecoder().raw_decode(body)[0])
        except ValueError:
            pass
    return rebuilt


def _exec_rc(status_text: str) -> int | None:
    """The exit code from the exec error channel's Status. The v4 protocol always ends
    with one; none means the stream broke off, so the outcome is unknown (None)."""
    if not status_text:
        return None
    status = json.loads(status_text)
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1))
    # Not an exit code: the runtime could not start the command at all.
    raise ClusterError(f"exec failed: {status.get('message', status_text)}", hint="check the container name and that the command exists in the image")
