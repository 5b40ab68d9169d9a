"""Exec in a container over the API server's exec websocket (channel protocol v4).

:func:`exec_in_pod` is THE adapter tests replace; they replace it where
:class:`labctl.kube.client.KubeClient` looks it up (``labctl.kube.client.exec_in_pod``).

The client's own ``stream()`` opens the websocket with no timeout at all: a server that
accepts the connection and never answers the upgrade would hold the caller forever.
So the socket is opened here, the same way (headers, TLS options, proxy), with a
connect and read timeout; the client's WSClient then reads it as usual.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO

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
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    # Like stream(), ``request`` is swapped for a websocket opener; on a private
    # ApiClient, so that the swap never reaches other threads' GETs on the shared one.
    private = client.ApiClient(configuration=api_client.configuration)
    private.request = functools.partial(_open_websocket, private.configuration, timeout)
    core = client.CoreV1Api(private)
    argv = tuple(command)
    kwargs = dict(command=list(argv), stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    if container:
        kwargs["container"] = container
    try:
        resp = core.connect_get_namespaced_pod_exec(pod, namespace, **kwargs)
    except Exception as exc:  # the websocket handshake fails with ApiException(status=0) or a socket error
        private.close()
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


def _open_websocket(configuration, timeout: float, _method: str, url: str, **kwargs):
    """ApiClient.request's stand-in: the exec URL as an open WSClient, or an error."""
    import websocket
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import ws_client

    url = ws_client.get_websocket_url(url, kwargs.get("query_params"))
    try:
        return _timed_ws_client()(configuration, url, kwargs.get("headers"), timeout)
    except websocket.WebSocketTimeoutException as exc:
        raise TimeoutError("timed out") from exc
    except (OSError, websocket.WebSocketConnectionClosedException) as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from exc
    except Exception as exc:  # as the client's websocket_call reports a refused upgrade
        raise ApiException(status=0, reason=str(exc)) from exc


def _connect(configuration, url: str, headers, timeout: float):
    """ws_client.create_websocket, plus ``timeout`` on the connect, the upgrade and every read."""
    import ssl

    import certifi
    from kubernetes.stream import ws_client
    from websocket import WebSocket

    header = []
    if headers and "authorization" in headers:
        header.append(f"authorization: {headers['authorization']}")
    header.append(f"sec-websocket-protocol: {(headers or {}).get('sec-websocket-protocol', 'v4.channel.k8s.io')}")
    if url.startswith("wss://") and configuration.verify_ssl:
        ssl_opts = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": configuration.ssl_ca_cert or certifi.where()}
        if configuration.assert_hostname is not None:
            ssl_opts["check_hostname"] = configuration.assert_hostname
    else:
        ssl_opts = {"cert_reqs": ssl.CERT_NONE}
    if configuration.cert_file:
        ssl_opts["certfile"] = configuration.cert_file
    if configuration.key_file:
        ssl_opts["keyfile"] = configuration.key_file
    options = {"header": header, "timeout": timeout}
    if configuration.proxy or configuration.proxy_headers:
        options = ws_client.websocket_proxycare(options, configuration, url, headers)
    sock = WebSocket(sslopt=ssl_opts, skip_utf8_validation=False)
    sock.connect(url, **options)
    return sock


@functools.cache
def _timed_ws_client():
    """The client's WSClient over a socket opened by :func:`_connect` (with timeouts);
    built on first use so that importing labctl.kube does not import the client."""
    from kubernetes.stream.ws_client import WSClient

    class TimedWSClient(WSClient):
        def __init__(self, configuration, url: str, headers, timeout: float):  # mirrors WSClient.__init__
            self._connected = False
            self._channels = {}
            self._all = StringIO()
            self.sock = _connect(configuration, url, headers, timeout)
            self._connected = True
            self._returncode = None

    return TimedWSClient


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
