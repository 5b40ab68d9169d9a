"""Byte streams of one remote command: split into lines for the log and callbacks,
kept whole for the result, and stdin written alongside."""

from __future__ import annotations

import threading
from collections.abc import Callable

from labctl.remote.log import NodeLog, Redactor


class _Stream:
    def __init__(self, name: str, sink: Callable[[str, list[str]], None]):
        self.name = name
        self._sink = sink
        self._chunks: list[bytes] = []
        self._partial = b""

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        if lines:
            self._sink(self.name, [_decode(line) for line in lines])

    def finish(self) -> None:
        if self._partial:
            self._sink(self.name, [_decode(self._partial)])
            self._partial = b""

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", errors="replace")

    def tail_bytes(self, limit: int = 8192) -> bytes:
        out = b""
        for chunk in reversed(self._chunks):
            out = chunk + out
            if len(out) >= limit:
                break
        return out[-limit:]


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


class Streams:
    def __init__(self, log: NodeLog | None, redactor: Redactor, on_line):
        self._log = log
        self._redactor = redactor
        self._on_line = on_line
        self.stdout = _Stream("stdout", self._sink)
        self.stderr = _Stream("stderr", self._sink)

    def _sink(self, stream: str, lines: list[str]) -> None:
        lines = [self._redactor(line) for line in lines] if self._redactor else lines
        if self._log is not None:
            self._log.lines(stream, lines)
        if self._on_line is not None:
            for line in lines:
                self._on_line(stream, line)

    def finish(self) -> None:
        self.stdout.finish()
        self.stderr.finish()

    def tail_text(self) -> str:
        parts = [s.tail_bytes().decode("utf-8", errors="replace") for s in (self.stdout, self.stderr)]
        return "\n".join(p for p in parts if p)


class StdinFeeder:
    """Writes stdin in its own thread: a command that prints a lot before it reads its
    input would otherwise deadlock against a blocked sendall()."""

    CHUNK = 256 * 1024

    def __init__(self, chan, data):
        """``data``: bytes, str, None (no input), or a binary file object, which is
        streamed in chunks and never held in memory whole."""
        self.error: BaseException | None = None
        self._thread = None
        if data is None:
            chan.shutdown_write()
            return
        if not hasattr(data, "read"):
            data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._thread = threading.Thread(target=self._feed, args=(chan, data), daemon=True, name="ssh-stdin")
        self._thread.start()

    def _feed(self, chan, data) -> None:
        try:
            if hasattr(data, "read"):
                for block in iter(lambda: data.read(self.CHUNK), b""):
                    chan.sendall(block)
            elif data:
                chan.sendall(data)
            chan.shutdown_write()
        except (OSError, EOFError) as exc:
            self.error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=5.0)
