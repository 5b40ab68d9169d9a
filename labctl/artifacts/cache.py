"""The per-user host cache: every pinned file crosses the internet once per host.

Layout (under ``$LABCTL_CACHE_DIR``, else ``platformdirs.user_cache_dir("labctl")/artifacts``)::

    blobs/sha256/<hex>   the bytes, named by their digest: a name can only ever hold
                         the right content, so two labs, two labctl versions or a
                         bundle import can share them without asking who wrote them
    tmp/<hex>.part       a download in progress (or interrupted: the next run resumes)
    locks/<hex>.lock     one file lock per blob: threads and processes download once
    index.json           what each blob is (id, version, arch, url, ...) and which blob
                         is which image's tarball; if it is lost or damaged, a file is
                         described again on its next use (its digest is its name), but
                         an image tarball is not recognised any more: the image is
                         pulled again and `cache prune` drops the orphan

Two ``labctl up`` of two labs at once are two processes: only a lock in the file
system (``filelock``, fcntl-based, released by the kernel if a process dies) makes
the second wait for the first's download instead of starting its own.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Optional

from filelock import FileLock, Timeout

from labctl.artifacts import fetch
from labctl.artifacts.model import Artifact, Image
from labctl.errors import ArtifactError

CACHE_ENV = "LABCTL_CACHE_DIR"


def default_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("labctl")) / "artifacts"


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Optional[str]) -> datetime:
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(0, timezone.utc)  # unknown age: as old as can be


def image_key(ref: str, digest: Optional[str], arch: Optional[str]) -> str:
    """The index key of an image tarball: ``Image.key``, plus the platform when the
    tarball holds one platform only."""
    key = Image(ref=ref, digest=digest).key
    return f"{key} linux/{arch}" if arch else key


@dataclass(frozen=True)
class CacheEntry:
    sha256: str
    size: int
    kind: str = "file"  # file | image | unknown (a blob the index lost track of)
    id: str = ""
    version: str = ""
    arch: Optional[str] = None
    url: str = ""
    added: str = ""
    last_used: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PruneResult:
    removed: list[CacheEntry] = field(default_factory=list)
    freed: int = 0
    partials: int = 0  # interrupted downloads removed


class Cache:
    def __init__(self, root: Optional[str | Path] = None, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 1.0):
        chosen = root or os.environ.get(CACHE_ENV) or default_root()
        self.root = Path(chosen).expanduser()
        self.blobs = self.root / "blobs" / "sha256"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        self.index_path = self.root / "index.json"
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        # Counted for this Cache object only: what this run cost on the wire.
        self.received = 0
        self.requests = 0
        self.hits = 0
        self._stats = threading.Lock()
        self._folders_made = False

    # -- lookups ---------------------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        return self.blobs / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def image_path(self, ref: str, digest: Optional[str] = None, arch: Optional[str] = None) -> Optional[Path]:
        found = self.image_lookup(ref, digest, arch)
        return found[1] if found else None

    def image_lookup(self, ref: str, digest: Optional[str] = None,
                     arch: Optional[str] = None) -> Optional[tuple[str, Path]]:
        """(index key, tarball) of image ``ref`` for a node of ``arch``. A node exports
        only its own platform, so tarballs are filed per architecture; one filed without
        an architecture (a tarball made by hand for every platform) serves any node."""
        images = self._read_index()["images"]
        for key in ([image_key(ref, digest, arch)] if arch else []) + [image_key(ref, digest, None)]:
            hexd = images.get(key)
            if hexd and self.has(hexd):
                return key, self.path_for(hexd)
        return None

    # -- filling ---------------------------------------------------------------------
    def ensure(self, artifact: Artifact, progress: Optional[fetch.Progress] = None) -> Path:
        """The blob for ``artifact``, downloaded only if no thread or process on this
        host has it (or is fetching it: then wait for that download instead)."""
        dest = self.path_for(artifact.sha256)
        if not dest.is_file():
            self.ensure_folders()
            with FileLock(str(self.locks / f"{artifact.sha256}.lock")):
                if not dest.is_file():  # nobody fetched it while we waited for the lock
                    part = self.tmp / f"{artifact.sha256}.part"
                    t = fetch.download(artifact, part, progress=progress, timeout=self.timeout,
                                       retries=self.retries, backoff=self.backoff)
                    os.chmod(part, 0o444)  # blobs are immutable; a stray write is refused
                    os.replace(part, dest)
                    with self._stats:
                        self.received += t.received
                        self.requests += t.requests
                    self._record(artifact.sha256, kind="file", id=artifact.id, version=artifact.version,
                                 arch=artifact.arch, url=artifact.url, size=dest.stat().st_size)
                    return dest
        with self._stats:
            self.hits += 1
        if progress:
            size = dest.stat().st_size
            progress(artifact.id, size, size)
        # Re-describing on every hit also heals an index that was lost or damaged.
        self._record(artifact.sha256, kind="file", id=artifact.id, version=artifact.version, arch=artifact.arch,
                     url=artifact.url, size=dest.stat().st_size)
        return dest

    def ensure_all(self, artifacts: Iterable[Artifact], parallel: int = 4,
                   progress: Optional[fetch.Progress] = None) -> list[Path]:
        """``ensure`` for each, ``parallel`` at a time; paths in the order given.
        Every download is let finish (the next run need not repeat it); then the
        failures are raised together. ``progress`` is called from worker threads."""
        items = list(artifacts)
        if items:
            self.ensure_folders()  # a cache folder that cannot be used is one error, not one per file
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="labctl-fetch") as pool:
            futures = [pool.submit(self.ensure, a, progress) for a in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if len(errors) == 1:
            raise errors[0]
        if errors:
            first = errors[0]
            raise ArtifactError(
                f"{len(errors)} of {len(items)} artifacts could not be fetched",
                hint=getattr(first, "hint", None),
                evidence=[getattr(e, "message", str(e)) for e in errors],
            ) from first
        return [f.result() for f in futures]

    def put_image(self, ref: str, digest: Optional[str], tarball: Path, arch: Optional[str] = None) -> Path:
        """File an image tarball (``ctr images export`` output) under its ref (+digest),
        for nodes of ``arch`` (None: a tarball that holds every platform)."""
        self.ensure_folders()
        h = hashlib.sha256()
        staged = self.tmp / f"image-{os.getpid()}-{threading.get_ident()}.part"
        with open(tarball, "rb") as src, open(staged, "wb") as out:
            for block in iter(lambda: src.read(fetch.CHUNK), b""):
                h.update(block)
                out.write(block)
        path = self.adopt(staged, h.hexdigest(), kind="image", id=ref, version=digest or "", arch=arch)
        self.register_image(image_key(ref, digest, arch), h.hexdigest())
        return path

    def register_image(self, key: str, sha256: str) -> None:
        """Name blob ``sha256`` as the tarball of image ``key`` (``Image.key``)."""
        self._edit_index(lambda idx: idx["images"].__setitem__(key, sha256))

    def adopt(self, staged: Path, sha256: str, **meta) -> Path:
        """Move a file whose digest the caller has verified into blobs/ (bundle import);
        if the blob is already there, ``staged`` is dropped and only the index updated."""
        dest = self.path_for(sha256)
        self.ensure_folders()
        with FileLock(str(self.locks / f"{sha256}.lock")):
            if dest.is_file():
                staged.unlink()
            else:
                os.chmod(staged, 0o444)
                os.replace(staged, dest)
        self._record(sha256, size=dest.stat().st_size, **meta)
        return dest

    # -- reporting and cleaning ------------------------------------------------------
    def list(self) -> list[CacheEntry]:
        """Every blob on disk, described by the index where it knows it."""
        idx = self._read_index()["blobs"]
        out = []
        for p in sorted(self.blobs.glob("*")) if self.blobs.is_dir() else []:
            if len(p.name) != 64 or not p.is_file():
                continue
            meta = {k: v for k, v in idx.get(p.name, {"kind": "unknown"}).items()
                    if k in CacheEntry.__dataclass_fields__ and k not in ("sha256", "size")}
            out.append(CacheEntry(sha256=p.name, size=p.stat().st_size, **meta))
        return out

    def size(self) -> int:
        return sum(e.size for e in self.list())

    def prune(self, *, keep_sha256: Iterable[str] = (), keep_ids: Iterable[str] = (),
              older_than: Optional[timedelta] = None, everything: bool = False) -> PruneResult:
        """Remove blobs neither kept by digest nor by id (nor used within ``older_than``);
        ``everything=True`` empties the cache. Downloads in progress are left alone."""
        keep_h, keep_i = set(keep_sha256), set(keep_ids)
        if not self.root.exists():
            return PruneResult()  # nothing was ever cached here
        if not self.root.is_dir():
            raise _unusable(self.root, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
        cutoff = datetime.now(timezone.utc) - older_than if older_than is not None else None
        result = PruneResult()
        for e in self.list():
            if not everything:
                if e.sha256 in keep_h or (e.id and e.id in keep_i):
                    continue
                if cutoff is not None and _parse_time(e.last_used) > cutoff:
                    continue
            if self._remove_unlocked(self.path_for(e.sha256), e.sha256):
                result.removed.append(e)
                result.freed += e.size
        for part in sorted(self.tmp.glob("*.part")) if self.tmp.is_dir() else []:
            if self._remove_unlocked(part, part.name.split(".")[0]):
                result.partials += 1
        gone = {e.sha256 for e in result.removed}

        def drop(idx: dict) -> None:
            idx["blobs"] = {h: m for h, m in idx["blobs"].items() if h not in gone}
            idx["images"] = {k: h for k, h in idx["images"].items() if h not in gone}

        self._edit_index(drop)
        return result

    # -- internals -------------------------------------------------------------------
    def _remove_unlocked(self, path: Path, sha256: str) -> bool:
        # Holding the blob's lock proves nobody is writing it right now.
        try:
            with FileLock(str(self.locks / f"{sha256}.lock"), timeout=0):
                path.unlink()
                return True
        except (Timeout, FileNotFoundError):
            return False

    def ensure_folders(self) -> None:
        """The cache's folders, or one ArtifactError naming the folder and the fix."""
        if self._folders_made:
            return  # every index edit asks; the folders outlive this object
        try:
            for d in (self.blobs, self.tmp, self.locks):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unusable(self.root, exc) from None
        self._folders_made = True

    def _record(self, sha256: str, **meta) -> None:
        now = _now()

        def edit(idx: dict) -> None:
            entry = idx["blobs"].setdefault(sha256, {"added": now})
            entry["last_used"] = now
            entry.update({k: v for k, v in meta.items() if v is not None})

        self._edit_index(edit)

    def _edit_index(self, change) -> None:
        self.ensure_folders()
        # Threads queue on a thread lock first: filelock waits by polling (50 ms steps),
        # which made 8 cache hits from 4 threads take 150 ms instead of 10.
        with _thread_lock(self.index_path), FileLock(str(self.root / "index.lock")).acquire(poll_interval=0.005):
            idx = self._read_index()
            change(idx)
            tmp = self.index_path.with_name(f"index.json.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                    json.dump(idx, f, indent=1, sort_keys=True)
                    f.write("\n")
                os.replace(tmp, self.index_path)  # readers see the old index or the new, never half
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise _unusable(self.root, exc) from None

    def _read_index(self) -> dict:
        try:
            idx = json.loads(self.index_path.read_text(encoding="utf-8"))
            if isinstance(idx, dict) and isinstance(idx.get("blobs"), dict) and isinstance(idx.get("images"), dict):
                return idx
        except (OSError, ValueError):
            pass
        # Missing or damaged: the blobs are the truth, the index only names them.
        return {"schema": 1, "blobs": {}, "images": {}}



def _unusable(root: Path, exc: OSError) -> ArtifactError:
    """The host cache folder cannot take a write: why, and the fix."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = f"a file stands where the folder goes: remove it, or set {CACHE_ENV} to a folder"
    elif exc.errno == errno.ENOSPC:
        hint = "free some disk space (`labctl cache prune` drops what no set pins), then run the command again"
    else:
        hint = f"set {CACHE_ENV} to a folder you can write, or fix the permissions of {root}"
    return ArtifactError(f"the host cache folder {root} cannot be used: {why}", hint=hint)
