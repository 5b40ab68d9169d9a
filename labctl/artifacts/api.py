"""What the CLI and ``labctl up`` call: one function per command, results as data.

``set_name`` is a shipped set's id or a set file's path (default: the course's set);
``cache_dir`` overrides ``$LABCTL_CACHE_DIR`` and the per-user default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Optional

from labctl.artifacts.bundle import ExportResult, ImportResult, export_bundle, import_bundle
from labctl.artifacts.cache import Cache, CacheEntry, PruneResult
from labctl.artifacts.fetch import Progress
from labctl.artifacts.model import ARCHES, DEFAULT_SET, host_arch, load_set
from labctl.errors import UsageError


def archs_for(choice: str = "host") -> list[str]:
    """``host`` -> this machine's arch, ``all`` -> every arch, or one named arch."""
    if choice == "host":
        return [host_arch()]
    if choice == "all":
        return list(ARCHES)
    if choice in ARCHES:
        return [choice]
    raise UsageError(f"--arch {choice!r}: expected host, all, {' or '.join(ARCHES)}")


@dataclass
class CacheReport:
    root: Path
    entries: list[CacheEntry]

    @property
    def total(self) -> int:
        return sum(e.size for e in self.entries)

    def to_dict(self) -> dict:
        return {"cache": str(self.root), "total": self.total, "entries": [e.to_dict() for e in self.entries]}


@dataclass
class FetchReport:
    set_id: str
    archs: list[str]
    root: Path
    paths: dict[str, Path] = field(default_factory=dict)  # "id" or "id/arch" -> blob
    received: int = 0  # bytes that came over the network in this run
    hits: int = 0  # artifacts the cache already had
    set_size: Optional[int] = None

    def to_dict(self) -> dict:
        return {"set": self.set_id, "archs": self.archs, "cache": str(self.root), "received": self.received,
                "hits": self.hits, "set_size": self.set_size,
                "artifacts": {k: str(v) for k, v in self.paths.items()}}


def cache_report(cache_dir: Optional[Path] = None) -> CacheReport:
    cache = Cache(cache_dir)
    return CacheReport(root=cache.root, entries=cache.list())


def cache_fetch(*, arch: str = "host", set_name: str | Path = DEFAULT_SET, cache_dir: Optional[Path] = None,
                parallel: int = 4, progress: Optional[Progress] = None) -> FetchReport:
    """Download every file of the set for ``arch`` into the cache (once per host)."""
    aset = load_set(set_name)
    archs = archs_for(arch)
    cache = Cache(cache_dir)
    wanted = {}
    for a in archs:
        for art in aset.files(a):
            wanted[f"{art.id}/{art.arch}" if art.arch and len(archs) > 1 else art.id] = art
    paths = cache.ensure_all(wanted.values(), parallel=parallel, progress=progress)
    sizes = [aset.total_size(a) for a in archs]
    return FetchReport(set_id=aset.id, archs=archs, root=cache.root, paths=dict(zip(wanted, paths)),
                       received=cache.received, hits=cache.hits,
                       set_size=None if None in sizes else sum(sizes))


def lab_artifacts(arch: Optional[str] = None, *, set_name: str | Path = DEFAULT_SET, cache: Optional[Cache] = None,
                  bases: Optional[dict] = None, parallel: int = 4,
                  progress: Optional[Progress] = None) -> dict[str, tuple[Path, dict]]:
    """For ``labctl up``: every file the nodes need, on this host, verified.
    Returns ``{id: (blob path, install mapping)}``; push the blob to the nodes from
    there (it is read-only and shared: copy it, never move or edit it)."""
    aset = load_set(set_name)
    cache = cache or Cache()
    files = aset.files(arch or host_arch(), bases=bases)
    paths = cache.ensure_all(files, parallel=parallel, progress=progress)
    return {a.id: (p, dict(a.install)) for a, p in zip(files, paths)}


def cache_prune(*, everything: bool = False, set_name: str | Path = DEFAULT_SET, cache_dir: Optional[Path] = None,
                older_than: Optional[timedelta] = None) -> PruneResult:
    """Remove what the set does not pin (any arch), or ``everything``."""
    cache = Cache(cache_dir)
    if everything:
        return cache.prune(everything=True)
    aset = load_set(set_name)
    keep = aset.all_sha256()
    keep |= {p.name for p in (cache.image_path(i.ref, i.digest, a) for i in aset.images for a in (None, *ARCHES))
             if p is not None}
    return cache.prune(keep_sha256=keep, older_than=older_than)


def bundle_export(path: Path, *, arch: str = "all", set_name: str | Path = DEFAULT_SET,
                  cache_dir: Optional[Path] = None, require_images: bool = False) -> ExportResult:
    return export_bundle(Cache(cache_dir), load_set(set_name), archs_for(arch), path, require_images=require_images)


def bundle_import(path: Path, *, cache_dir: Optional[Path] = None) -> ImportResult:
    return import_bundle(path, Cache(cache_dir))
