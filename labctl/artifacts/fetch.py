"""One download, verified while it streams, resumable, with an honest error.

urllib only: the host side must work on a bare Python, and streaming, Range and
timeouts are all it needs. The file is written to a ``.part`` path given by the
caller (the cache); only the caller moves it into place, and only after
``download`` returned, i.e. after the sha256 matched. A ``.part`` left by an
interrupted run is resumed with ``Range: bytes=N-``; a server that answers 200
instead of 206 gets a fresh start (never append a full body to a prefix).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from labctl.artifacts import classify as cl
from labctl.artifacts.model import Artifact
from labctl.errors import ArtifactError

CHUNK = 256 * 1024
Progress = Callable[[str, int, Optional[int]], None]  # (artifact id, bytes done, bytes total or None)


class DownloadFailed(ArtifactError):
    """An ArtifactError that knows which artifact, which URL and which reason."""

    def __init__(self, artifact: Artifact, reason: str, detail: str, *, hint: Optional[str] = None):
        super().__init__(f"{artifact.label}: {cl.PHRASE[reason]} ({detail}) fetching {artifact.url}",
                         hint=hint or cl.HINTS[reason])
        self.artifact_id = artifact.id
        self.url = artifact.url
        self.reason = reason

    def to_dict(self) -> dict:
        return {**super().to_dict(), "artifact": self.artifact_id, "url": self.url, "reason": self.reason}


@dataclass
class Transfer:
    """What a download cost on the wire: the bench and the tests count it."""

    received: int = 0
    requests: int = 0
    resumed_from: int = 0  # bytes of a .part kept from an earlier attempt (0: none)


def download(artifact: Artifact, part: Path, *, progress: Optional[Progress] = None, timeout: float = 30.0,
             retries: int = 3, backoff: float = 1.0) -> Transfer:
    """Fetch ``artifact`` into ``part``; on return ``part`` holds exactly the pinned bytes.
    Transient failures (timeouts, resets, cut-short bodies, 5xx) are retried ``retries``
    times, waiting backoff, 2*backoff, ...; each retry resumes from what ``part`` holds.
    Anything else raises ``DownloadFailed`` at once."""
    part.parent.mkdir(parents=True, exist_ok=True)
    t = Transfer()
    fresh_retry_used = False
    attempt = 0
    while True:
        try:
            _attempt(artifact, part, t, progress, timeout)
            return t
        except cl.ChecksumMismatch as exc:
            _unlink(part)  # bad bytes never stay, not even as a .part to resume
            # A stale .part (from a server that changed its bytes since) poisons a
            # resumed download: one fresh start proves whether upstream itself is wrong.
            if t.resumed_from and not fresh_retry_used:
                fresh_retry_used = True
                t.resumed_from = 0
                continue
            raise DownloadFailed(artifact, cl.CHECKSUM, str(exc)) from None
        except (OSError, urllib.error.URLError, cl.Truncated, http.client.HTTPException) as exc:
            body = _error_body(exc)
            diag = cl.classify(exc, body)
            if diag.reason in cl.TRANSIENT and attempt < retries:
                time.sleep(backoff * (2 ** attempt))
                attempt += 1
                continue
            if diag.reason not in (cl.TRUNCATED, cl.RESET, cl.TIMEOUT):
                _unlink(part)  # nothing worth resuming from a request that never got going
            raise DownloadFailed(artifact, diag.reason, _detail(exc), hint=diag.hint) from exc


def _attempt(artifact: Artifact, part: Path, t: Transfer, progress: Optional[Progress], timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    if artifact.size is not None and have > artifact.size:
        _unlink(part)
        have = 0
    if have and have == artifact.size:
        t.resumed_from = have  # a mismatch here is the old .part's, not upstream's: one fresh try
        return _verify_existing(artifact, part, have)  # a run that died between write and rename
    req = urllib.request.Request(artifact.url, headers={"User-Agent": "labctl", "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    t.requests += 1
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # "nothing after byte N": the .part may already be whole
            exc.close()
            t.resumed_from = have
            return _verify_existing(artifact, part, have)
        raise
    with resp:
        h = hashlib.sha256()
        start = _range_start(resp.headers.get("Content-Range")) if resp.status == 206 else None
        if have and start == have:
            t.resumed_from = have
            _hash_file(part, h)
            mode = "ab"
        else:  # no Range sent, or the server ignored it: the body is the whole file
            have, mode = 0, "wb"
        length = resp.length  # what the server announced for this body, None if chunked
        total = have + length if length is not None else artifact.size
        done = have
        with open(part, mode) as out:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                t.received += len(chunk)
                if progress:
                    progress(artifact.id, done, total)
            out.flush()
            os.fsync(out.fileno())  # a blob renamed into place must survive a power cut whole
    if (length is not None and done < have + length) or (artifact.size is not None and done < artifact.size):
        raise cl.Truncated(f"received {done} of {total if total is not None else '?'} bytes")
    got = h.hexdigest()
    if got != artifact.sha256:
        raise cl.ChecksumMismatch(artifact.sha256, got, done)


def _verify_existing(artifact: Artifact, part: Path, size: int) -> None:
    h = hashlib.sha256()
    _hash_file(part, h)
    if h.hexdigest() != artifact.sha256:
        raise cl.ChecksumMismatch(artifact.sha256, h.hexdigest(), size)


def _hash_file(path: Path, h) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)


def _range_start(content_range: Optional[str]) -> Optional[int]:
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)", content_range or "")
    return int(m.group(1)) if m else None


def _error_body(exc: BaseException) -> str:
    # Docker Hub and friends put the real reason in the body; read a little, never all.
    if isinstance(exc, urllib.error.HTTPError):
        try:
            return exc.read(4096).decode("utf-8", "replace")
        except Exception:  # a body that fails to read adds nothing to the diagnosis
            return ""
        finally:
            exc.close()
    return ""


def _detail(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
