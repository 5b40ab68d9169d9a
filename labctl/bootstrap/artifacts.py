"""The files nodes install, as bootstrap sees them: the artifact set (render time) and
the host cache (run time), both from labctl.artifacts.

Which set: ``k8s-<spec's Kubernetes version>`` as shipped in labctl/artifacts/sets/,
or the set file (or id) named by $LABCTL_ARTIFACT_SET (a class's own table, a test's).
The host cache and its mirror settings are labctl.artifacts' ($LABCTL_CACHE_DIR,
$LABCTL_MIRROR).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.artifacts.model import SET_ENV
from labctl.lab import events as ev
from labctl.spec.model import LabSpec


def set_name(spec: LabSpec) -> str:
    return os.environ.get(SET_ENV) or f"k8s-{spec.kubernetes.version.lstrip('v')}"


def load_for(spec: LabSpec):
    from labctl.artifacts.model import load_set

    return load_set(set_name(spec))


def pins(aset: Any) -> list[dict[str, Any]]:
    """Every file of set ``aset`` with an ``install`` entry, for the templates: id,
    version, sha256 per arch (``{"*": hex}`` for arch-independent files) and the install
    mapping."""
    from labctl.artifacts.model import ARCHES

    by_id: dict[str, dict[str, Any]] = {}
    for arch in ARCHES:
        for a in aset.files(arch):
            if not a.install:
                continue
            entry = by_id.setdefault(a.id, {"id": a.id, "version": a.version, "sha256": {}, "install": dict(a.install)})
            entry["sha256"][a.arch or "*"] = a.sha256
    return list(by_id.values())


def check_versions(spec: LabSpec, pinned: list[dict[str, Any]]) -> None:
    """The spec's add-on versions must be the ones the set pins: a lab never quietly
    runs another version than lab.yaml says."""
    from labctl.errors import SpecError

    versions = {p["id"]: p["version"] for p in pinned}
    for field_name, want, pid in (("calico.version", spec.calico.version, "calico-manifest"),
                                  ("metallb.version", spec.metallb.version, "metallb-manifest")):
        have = versions.get(pid)
        if have is not None and have.lstrip("v") != want.lstrip("v"):
            raise SpecError(field_name, f"{want} is not the version labctl's artifact set {set_name(spec)} pins ({have})",
                            hint=f"use {have}, or an artifact set that pins {want} ($LABCTL_ARTIFACT_SET)")


def shared_images(aset: Any, groups: tuple[str, ...]) -> list[str]:
    """Refs of the set's images used by ``groups``, in the set's order."""
    return [i.ref for i in aset.images if i.used_by in groups]


def image_digests(aset: Any, groups: tuple[str, ...]) -> dict[str, str]:
    """The pinned digest of each of those images that has one (ref -> sha256:...)."""
    return {i.ref: i.digest for i in aset.images if i.used_by in groups and i.digest}


@dataclass(frozen=True)
class LocalFile:
    """A verified file in the host cache (read-only, shared: copy it, never move it)."""

    id: str
    version: str
    sha256: str
    path: Path
    install: Mapping[str, Any] = field(default_factory=dict)


class HostArtifacts:
    """The set's files for an arch, fetched into the host cache on first use (once per
    host: a second lab finds them there), then pushed to nodes from there."""

    def __init__(self, aset: Any, cache: Any, bus: ev.EventBus | None = None, parallel: int = 4):
        self.aset, self.cache, self.bus, self.parallel = aset, cache, bus, parallel
        self._lock = threading.Lock()
        self._by_arch: dict[str, dict[str, LocalFile]] = {}

    @classmethod
    def for_spec(cls, spec: LabSpec, bus: ev.EventBus | None = None) -> HostArtifacts:
        from labctl.artifacts.cache import Cache

        return cls(load_for(spec), Cache(), bus)

    def _progress(self, artifact_id: str, done: int, total: int | None) -> None:
        # One line per file when it is complete (a hit reports at once): enough to see
        # a long first download move without flooding the console.
        if self.bus is not None and total is not None and done >= total:
            self.bus.emit(ev.INFO, f"host cache: {artifact_id} ready ({done} bytes)")

    def image_tarball(self, ref: str, arch: str | None = None) -> Path | None:
        """The host cache's tarball of image ``ref`` for a node of ``arch`` (as
        ``ctr images export`` wrote it on a node of that architecture)."""
        return self.cache.image_path(ref, self._digest(ref), arch)

    def keep_image(self, ref: str, tarball: Path, arch: str | None = None) -> Path:
        """File a node's export of ``ref`` in the host cache, for the other nodes and
        labs of the same architecture (an export holds the node's platform only)."""
        path = self.cache.put_image(ref, self._digest(ref), tarball, arch)
        if self.bus is not None:
            self.bus.emit(ev.INFO, f"host cache: kept {ref} for the other nodes ({path.stat().st_size} bytes)")
        return path

    def _digest(self, ref: str) -> str | None:
        return next((i.digest for i in self.aset.images if i.ref == ref), None)

    def files(self, arch: str) -> dict[str, LocalFile]:
        with self._lock:  # two nodes of one arch: one fetch
            if arch not in self._by_arch:
                wanted = self.aset.files(arch)
                if self.bus is not None:
                    self.bus.emit(ev.INFO, f"host cache {self.cache.root}: {len(wanted)} pinned files for {arch}")
                before = self.cache.received
                paths = self.cache.ensure_all(wanted, parallel=self.parallel, progress=self._progress)
                if self.bus is not None and self.cache.received > before:
                    self.bus.emit(ev.INFO, f"downloaded {self.cache.received - before} bytes into the host cache")
                self._by_arch[arch] = {
                    a.id: LocalFile(a.id, a.version, a.sha256, Path(p), dict(a.install)) for a, p in zip(wanted, paths)
                }
            return self._by_arch[arch]
