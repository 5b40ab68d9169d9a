"""Real servers on loopback addresses that stand for lab addresses in tests.

All of 127.0.0.0/8 is local on Linux, so a "node" 127.0.56.31 or a "Pod IP"
127.77.1.10 is a real address the host, curl and sshd sessions can reach; nothing
leaves the machine. Every server here is stopped by the fixture that made it.
"""

from __future__ import annotations

import random
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpServer:
    """Answers every GET with ``body`` (like the kubetm images), after ``delay`` s.

    ``inside_only``: answer only curl (the probes that run on a lab node over SSH) and
    hang up on anyone else (the host's own probes): a ClusterIP, which the lab's nodes
    reach and the host does not. All "lab addresses" are loopback here, so the server
    tells the vantage points apart by the client, as the real network does by routing."""

    def __init__(self, address: str, port: int, body: str, *, status: int = 200, delay: float = 0.0, inside_only: bool = False):
        self.body, self.status, self.delay = body, status, delay
        self.inside_only = inside_only
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if outer.inside_only and not (self.headers.get("User-Agent") or "").startswith("curl/"):
                    self.close_connection = True  # no route from here: no answer at all
                    return
                outer.hits += 1
                if outer.delay:
                    time.sleep(outer.delay)
                data = outer.body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.address, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class SilentListener:
    """Completes TCP handshakes (the kernel's backlog) but never answers: a probe of it
    times out, like a NodePort whose traffic kube-proxy drops."""

    def __init__(self, address: str, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(64)
        self.address, self.port = self.sock.getsockname()

    def stop(self) -> None:
        self.sock.close()


class DnsServer:
    """A minimal authoritative UDP DNS server: A records from ``records``, NXDOMAIN else."""

    def __init__(self, address: str, records: dict[str, str], port: int = 53, delay: float = 0.0):
        self.records = records
        self.delay = delay
        self.queries: list[str] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                qid, _flags, _qd = struct.unpack(">HHH", data[:6])
                i, labels = 12, []
                while data[i]:
                    labels.append(data[i + 1 : i + 1 + data[i]].decode())
                    i += data[i] + 1
                question = data[12 : i + 5]
                name = ".".join(labels)
                outer.queries.append(name)
                if outer.delay:
                    time.sleep(outer.delay)
                ip = outer.records.get(name)
                flags = 0x8400 if ip else 0x8403
                answer = b""
                if ip:
                    answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton(ip)
                header = struct.pack(">HHHHHH", qid, flags, 1, 1 if ip else 0, 0, 0)
                sock.sendto(header + question + answer, self.client_address)

        socketserver.UDPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingUDPServer((address, port), Handler)
        self.address, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


_HANDED_OUT: set[str] = set()


def loopback_address(second: int = 77) -> str:
    """A random 127.<second>.x.y address, never the same twice in one test run (two
    "Pods" on one address would fight over a port); random so that concurrent runs
    rarely meet."""
    while True:
        addr = f"127.{second}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        if addr not in _HANDED_OUT:
            _HANDED_OUT.add(addr)
            return addr


def free_port_on(addresses: list[str]) -> int:
    """A TCP port free on every one of ``addresses`` (a NodePort is the same on all nodes)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        ok = True
        for addr in addresses[1:]:
            with socket.socket() as s:
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no common free port")


class HangingServer:
    """Accepts every TCP connection and never sends a byte: an API server that hangs.

    A thread accepts (so connects succeed and requests are sent) and keeps the sockets
    open until ``stop()``, which closes them and joins the thread."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.address, self.port = self.sock.getsockname()
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="hanging-server", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted.append(conn)  # held open, never read from or written to

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()
