"""Byte streams of one remote command: split into lines for the log and callbacks,
kept whole for the result, and stdin written alongside."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from pathlib import Path

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

    CHUNK = 1 << 20

    def __init__(self, chan, data: bytes | str | Path | None):
        self.error: BaseException | None = None
        self._thread = None
        if data is None:
            chan.shutdown_write()
            return
        if not isinstance(data, Path):
            data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._thread = threading.Thread(target=self._feed, args=(chan, data), daemon=True, name="ssh-stdin")
        self._thread.start()

    def _feed(self, chan, data: bytes | Path) -> None:
        try:
            if isinstance(data, Path):  # streamed: a large file never sits in memory
                with open(data, "rb") as fh:
                    while chunk := fh.read(self.CHUNK):
                        chan.sendall(chunk)
            elif data:
                chan.sendall(data)
            chan.shutdown_write()
        except (OSError, EOFError) as exc:
            self.error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=5.0)


def wire(command: str, sudo: bool) -> str:
    """The command line a node receives. -n: fail instead of waiting for a password
    prompt nobody sees; -H: root's HOME."""
    return f"sudo -n -H -- bash -c {shlex.quote(command)}" if sudo else command


def put_script(remote_path: str, size: int, mode: int, sha256: str | None = None) -> str:
    """The shell that writes stdin to ``remote_path`` atomically (temp file in the same
    directory, size check, with ``sha256`` a digest check, chmod, then mv), creating the
    directory. Exit 3: truncated; exit 4: the digest differs (the bytes are dropped)."""
    check = ""
    if sha256 is not None:
        check = (
            'got=$(sha256sum "$tmp" | cut -d" " -f1); '
            f'if [ "$got" != {shlex.quote(sha256)} ]; then '
            f'echo "checksum mismatch: expected sha256 {sha256}, received $got" >&2; exit 4; fi; '
        )
    return (
        f"set -e; dest={shlex.quote(remote_path)}; dir=$(dirname -- \"$dest\"); mkdir -p -- \"$dir\"; "
        'tmp=$(mktemp "$dir/.labctl-put.XXXXXX"); trap \'rm -f -- "$tmp"\' EXIT; '
        'cat > "$tmp"; size=$(wc -c < "$tmp"); '
        f'if [ "$size" -ne {size} ]; then echo "upload truncated: $size of {size} bytes" >&2; exit 3; fi; '
        f'{check}chmod {mode:04o} "$tmp"; mv -f -- "$tmp" "$dest"; trap - EXIT'
    )
