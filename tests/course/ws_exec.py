"""A loopback stand-in for the API server's exec endpoint: the websocket handshake and
the v4.channel.k8s.io framing (first byte of each message = channel: 1 stdout,
2 stderr, 3 the final Status), so the real client's stream() and labctl's
exec_in_pod adapter run unchanged. Only the exec subresource is served."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class ExecScript:
    """What one exec answers: output chunks, then the Status on channel 3 (or nothing: hang)."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    status: dict | None = None
    hang: float = 0.0  # keep the connection open this long without a Status


def success() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_code(rc: int, argv: list[str]) -> dict:
    # The kubelet's Status for a command that exited non-zero (1.27 wording).
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command [{' '.join(argv)}], exit code {rc}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}


def _frame(payload: bytes, opcode: int = 0x2) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class ExecServer:
    def __init__(self, token: str):
        self.token = token
        self.scripts: dict[tuple[str, str], ExecScript] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                server._serve(self.request)

        class TCP(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._tcp = TCP(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._tcp.server_address[1]}"

    def start(self) -> "ExecServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._tcp.shutdown()
        self._tcp.server_close()
        self._thread.join(5)

    def on(self, pod: str, container: str, script: ExecScript) -> None:
        self.scripts[(pod, container)] = script

    def _serve(self, sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        request_line, *header_lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        target = urlsplit(request_line.split()[1])
        query = parse_qs(target.query)
        parts = target.path.strip("/").split("/")  # api v1 namespaces NS pods POD exec
        record = {"path": target.path, "query": query, "authorization": headers.get("authorization"),
                  "protocol": headers.get("sec-websocket-protocol")}
        self.requests.append(record)
        pod, container = parts[5], (query.get("container") or [""])[0]
        script = self.scripts.get((pod, container))
        if headers.get("authorization") != f"Bearer {self.token}" or script is None or parts[-1] != "exec":
            code, reason = (401, "Unauthorized") if headers.get("authorization") != f"Bearer {self.token}" else (404, "Not Found")
            message = "Unauthorized" if code == 401 else f'pods "{pod}" not found'
            body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": message, "reason": reason.replace(" ", ""), "code": code}).encode()
            sock.sendall(f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            return
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        # The API server first opens every channel with an empty message.
        for ch in (1, 2, 3):
            sock.sendall(_frame(bytes([ch])))
        for text in script.stdout:
            sock.sendall(_frame(b"\x01" + text.encode()))
        for text in script.stderr:
            sock.sendall(_frame(b"\x02" + text.encode()))
        if script.status is None:
            # A command still running: wait, but answer the client's close at once,
            # as the API server does when the client gives up.
            sock.settimeout(script.hang)
            try:
                if sock.recv(64):
                    sock.sendall(_frame(struct.pack("!H", 1000), opcode=0x8))
                    return
            except OSError:
                pass
        else:
            sock.sendall(_frame(b"\x03" + json.dumps(script.status).encode()))
        try:
            sock.sendall(_frame(struct.pack("!H", 1000), opcode=0x8))
            sock.settimeout(1)
            sock.recv(64)  # the client's close reply
        except OSError:
            pass
