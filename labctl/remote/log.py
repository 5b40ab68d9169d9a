"""A node's log file and the redaction of secrets from everything people can see.

Each line is ``<UTC timestamp> <tag> <text>``, tag ``out``/``err`` for a command's
output and ``---`` for what labctl did (command started, exit code, connects), so
``grep ' err '`` or ``tail -f`` on ``.labctl/logs/<node>.log`` reads naturally.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

REDACTED = "***"
_TAGS = {"stdout": "out", "stderr": "err"}


class Redactor:
    """Replaces every registered secret by ***. Longest first, so a secret that
    contains another is hidden whole."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        if not value:
            return  # an empty "secret" would redact between every character
        with self._lock:
            if value not in self._secrets:
                self._secrets = sorted([*self._secrets, value], key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        for value in self._secrets:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class NodeLog:
    """Append-only log of one node. Writes are flushed per chunk so ``tail -f`` follows
    a running step; a None path logs nothing."""

    def __init__(self, path: Path | None, redactor: Redactor):
        self.path = path
        self._redact = redactor
        self._fh = None
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        if self.path is None:
            return
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # newline="\n": LF on every host (text mode writes CRLF on Windows).
                self._fh = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 - kept open for the session
            self._fh.write(text)
            self._fh.flush()

    def event(self, text: str) -> None:
        self._write(f"{_now()} --- {self._redact(text)}\n")

    def lines(self, stream: str, lines: list[str]) -> None:
        """Already-redacted output lines of one stream."""
        prefix = f"{_now()} {_TAGS.get(stream, stream)} "
        self._write("".join(f"{prefix}{line}\n" for line in lines))

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
