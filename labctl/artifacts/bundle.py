"""An offline bundle: the cache's share of one artifact set in one tar file.

A classroom behind one NAT (Docker Hub limits) or without internet gets the set
from one host that has it: ``export_bundle`` there, ``import_bundle`` on each
laptop. The bundle is a plain or gzip tar (by the file's suffix)::

    bundle.json          first member: set id and, per entry, sha256, size, arch, kind
    blobs/sha256/<hex>   the bytes

Import trusts nothing in the file: member names are matched against that one
pattern (never extracted by name, so ``../`` or absolute paths cannot go anywhere),
every blob is hashed while staged, and only when all of them matched does anything
move into the cache. A bundle's only authority is the digests, and the digests
name the content, so a tampered bundle can fail but cannot change what a lab runs
beyond what the set pins.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from labctl.artifacts.cache import Cache
from labctl.artifacts.fetch import CHUNK
from labctl.artifacts.model import ArtifactSet
from labctl.errors import ArtifactError

SCHEMA = 1
MANIFEST = "bundle.json"
_MEMBER = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_GZIP_SUFFIXES = (".gz", ".tgz")


@dataclass
class ExportResult:
    path: Path
    set_id: str
    entries: int
    size: int  # bytes of content (before tar/gzip)
    missing_images: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "set": self.set_id, "entries": self.entries, "size": self.size,
                "missing_images": self.missing_images}


@dataclass
class ImportResult:
    path: Path
    set_id: str
    entries: int
    added: int  # blobs that were not in the cache
    added_bytes: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "set": self.set_id, "entries": self.entries, "added": self.added,
                "added_bytes": self.added_bytes}


def export_bundle(cache: Cache, artifact_set: ArtifactSet, archs: Iterable[str], path: str | Path, *,
                  require_images: bool = False) -> ExportResult:
    """Write the set's files for ``archs`` (and its images the cache holds) to ``path``.
    Images reach the cache from the nodes that pulled them, so a missing image is
    reported, not fatal, unless ``require_images``."""
    path = Path(path)
    entries: dict[str, dict] = {}
    missing = []
    for arch in archs:
        for a in artifact_set.files(arch):
            if a.sha256 in entries:
                continue  # arch-independent files appear once
            if not cache.has(a.sha256):
                if a.label not in missing:  # an arch-independent file is one file for every arch
                    missing.append(a.label)
                continue
            entries[a.sha256] = {"sha256": a.sha256, "size": cache.path_for(a.sha256).stat().st_size,
                                 "kind": "file", "id": a.id, "version": a.version, "arch": a.arch, "url": a.url}
    if missing:
        raise ArtifactError(
            f"{len(missing)} artifact(s) of set {artifact_set.id} are not in the cache ({cache.root}): "
            + ", ".join(missing),
            hint="run `labctl cache fetch --arch all` (or `labctl up`) on a host with internet first, then export again",
        )
    missing_images = []
    for img in artifact_set.images:
        lacking = []
        for arch in archs:
            found = cache.image_lookup(img.ref, img.digest, arch)
            if found is None:
                lacking.append(arch)
                continue
            key, p = found
            if p.name not in entries:
                entries[p.name] = {"sha256": p.name, "size": p.stat().st_size, "kind": "image", "id": img.ref,
                                   "version": img.digest or "", "arch": arch if key.endswith(f"linux/{arch}") else None,
                                   "image_key": key}
        if lacking:  # the ref alone when no architecture has it
            missing_images.append(img.ref if len(lacking) == len(archs) else f"{img.ref} ({', '.join(lacking)})")
    if require_images and missing_images:
        raise ArtifactError(f"{len(missing_images)} image(s) of set {artifact_set.id} are not in the cache: "
                            + ", ".join(missing_images),
                            hint="bring a lab up once on this host (its nodes fill the image cache), then export again")
    manifest = {"schema": SCHEMA, "set": artifact_set.id, "kubernetes": artifact_set.kubernetes,
                "entries": list(entries.values())}
    _write_tar(cache, path, manifest)
    return ExportResult(path=path, set_id=artifact_set.id, entries=len(entries),
                        size=sum(e["size"] for e in entries.values()), missing_images=missing_images)


def _write_tar(cache: Cache, path: Path, manifest: dict) -> None:
    size_mb = sum(e["size"] for e in manifest["entries"]) / 1e6
    if path.is_dir():
        raise ArtifactError(f"bundle path {path} is a folder", hint=f"name a file, e.g. {path / 'class.tar.gz'}")
    try:
        _write_tar_to(cache, path, manifest)
    except OSError as exc:
        why = "a file stands where one of its folders goes" if exc.errno in (errno.EEXIST, errno.ENOTDIR) else \
            (exc.strerror or str(exc))
        raise ArtifactError(f"cannot write bundle {path}: {why}",
                            hint=f"write it to a folder you can write, with room for {size_mb:.0f} MB") from None


def _write_tar_to(cache: Cache, path: Path, manifest: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    mode = "w:gz" if path.name.endswith(_GZIP_SUFFIXES) else "w"
    try:
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT) as tar:
            raw = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
            tar.addfile(_info(MANIFEST, len(raw)), _Reader(io.BytesIO(raw)))
            for e in manifest["entries"]:
                with open(cache.path_for(e["sha256"]), "rb") as f:
                    reader = _Reader(f)
                    tar.addfile(_info(f"blobs/sha256/{e['sha256']}", e["size"]), reader)
                # A cache damaged on disk must not spread to a whole classroom.
                if reader.hash.hexdigest() != e["sha256"]:
                    raise ArtifactError(
                        f"cached {e['id']} ({cache.path_for(e['sha256'])}) does not match its digest",
                        hint="remove it with `labctl cache prune --all` and fetch again")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def bundle_set(path: str | Path) -> str:
    """The id of the set a bundle was made for (its manifest, the first member: only the
    start of the file is read)."""
    path = Path(path)
    bad = _refusal(path)
    try:
        with tarfile.open(path, "r|*") as tar:
            return _read_manifest(tar, bad)[1]["set"]
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise bad(f"unreadable ({exc})") from exc


def _refusal(path: Path):
    def bad(what: str) -> ArtifactError:
        return ArtifactError(f"bundle {path}: {what}; nothing was imported",
                             hint="make the bundle again with `labctl bundle export` and copy it whole")

    return bad


def _read_manifest(tar: tarfile.TarFile, bad) -> tuple[tarfile.TarInfo, dict]:
    """The first member, which must be the manifest, parsed."""
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise bad(f"the first member must be {MANIFEST}")
    return first, _parse_manifest(tar.extractfile(first).read(), bad)


def import_bundle(path: str | Path, cache: Cache) -> ImportResult:
    """Verify every blob of the bundle at ``path``, then add what the cache lacks."""
    path = Path(path)
    bad = _refusal(path)
    cache.ensure_folders()
    staging = Path(tempfile.mkdtemp(prefix="import-", dir=cache.tmp))
    try:
        # One streaming pass ("r|*"): a bundle can be gigabytes, gzip cannot seek cheaply.
        with tarfile.open(path, "r|*") as tar:
            first, manifest = _read_manifest(tar, bad)
            expected = {e["sha256"]: e for e in manifest["entries"]}
            seen: set[str] = set()
            for member in tar:
                if member is first:
                    continue  # iterating a TarFile starts again with the members already read
                m = _MEMBER.match(member.name)
                if not m or not member.isfile():
                    raise bad(f"unexpected member {member.name!r} (only {MANIFEST} and blobs/sha256/<hex>)")
                hexd = m.group(1)
                if hexd not in expected or hexd in seen:
                    raise bad(f"member {member.name} is not listed in {MANIFEST} (or appears twice)")
                entry = expected[hexd]
                got, size = _stage(tar.extractfile(member), None if cache.has(hexd) else staging / hexd)
                if got != hexd or size != entry["size"]:
                    raise bad(f"{entry.get('id') or hexd} is damaged or was altered: expected sha256 {hexd} "
                              f"({entry['size']} bytes), received {got} ({size} bytes)")
                seen.add(hexd)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise bad(f"unreadable ({exc})") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        absent = sorted(set(expected) - seen)
        if absent:
            raise bad(f"{len(absent)} entr{'y' if len(absent) == 1 else 'ies'} listed in {MANIFEST} missing: "
                      + ", ".join(expected[h].get("id") or h for h in absent))
        # An image filed under a pinned digest must be that image: the tarball's bytes
        # match their own name, which alone does not tie them to the digest.
        for hexd, e in expected.items():
            pinned = _pinned_image(e["image_key"]) if e["kind"] == "image" else None
            if pinned is None:
                continue
            tarball = staging / hexd if (staging / hexd).exists() else cache.path_for(hexd)
            held = _image_digest(tarball, pinned[0])
            if held != pinned[1]:
                raise bad(f"image {pinned[0]} is filed under digest {pinned[1]} but the archive holds "
                          f"{held or 'no image of that name'}")
        added = added_bytes = 0
        # Everything verified: only now does the cache change.
        for hexd, e in expected.items():
            staged = staging / hexd
            if staged.exists():
                cache.adopt(staged, hexd, kind=e["kind"], id=e.get("id", ""), version=e.get("version", ""),
                            arch=e.get("arch"), url=e.get("url", ""))
                added += 1
                added_bytes += e["size"]
            if e["kind"] == "image" and e.get("image_key"):
                cache.register_image(e["image_key"], hexd)
        return ImportResult(path=path, set_id=manifest["set"], entries=len(expected), added=added,
                            added_bytes=added_bytes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parse_manifest(raw: bytes, bad) -> dict:
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise bad(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA or not isinstance(manifest.get("set"), str):
        raise bad(f"{MANIFEST} is not a labctl bundle manifest (schema {SCHEMA})")
    entries = manifest.get("entries")
    if not isinstance(entries, list):
        raise bad(f"{MANIFEST}: entries must be a list")
    for i, e in enumerate(entries):
        if (not isinstance(e, dict) or not _HEX.match(str(e.get("sha256", ""))) or e.get("kind") not in ("file", "image")
                or not isinstance(e.get("size"), int) or isinstance(e.get("size"), bool) or e["size"] < 0):
            raise bad(f"{MANIFEST}: entries[{i}] needs sha256 (64 hex), size and kind file|image")
        wrong = [k for k in ("id", "version", "url", "arch", "image_key") if not isinstance(e.get(k), (str, type(None)))]
        if wrong:
            raise bad(f"{MANIFEST}: entries[{i}].{wrong[0]} must be a string")
        if e["kind"] == "image" and not e.get("image_key"):
            raise bad(f"{MANIFEST}: entries[{i}] is an image without image_key")
    return manifest


def _pinned_image(key: str) -> tuple[str, str] | None:
    """(ref, digest) of an image key that names a digest ("ref@sha256:... [linux/arch]")."""
    name = key.split(" ", 1)[0]
    if "@" not in name:
        return None
    ref, digest = name.split("@", 1)
    return ref, digest


def _image_digest(tarball: Path, ref: str) -> str | None:
    """The digest an OCI archive (``ctr images export``) records for ``ref`` in its
    index.json; containerd checks every blob against its digest on import, so this is
    the image the archive really holds."""
    try:
        with tarfile.open(tarball, "r:") as tar:
            member = tar.extractfile("index.json")
            index = json.loads(member.read(1 << 20)) if member else {}
    except (tarfile.TarError, KeyError, ValueError, OSError):
        return None
    for m in index.get("manifests", []) if isinstance(index, dict) else []:
        if isinstance(m, dict) and (m.get("annotations") or {}).get("io.containerd.image.name") == ref:
            return m.get("digest")
    return None


def _stage(src, dest: Optional[Path]) -> tuple[str, int]:
    # Hash every member, also those the cache already has: a bad bundle is reported
    # even when it would have changed nothing.
    h, n = hashlib.sha256(), 0
    out = open(dest, "wb") if dest is not None else None
    try:
        for block in iter(lambda: src.read(CHUNK), b""):
            h.update(block)
            n += len(block)
            if out:
                out.write(block)
    finally:
        if out:
            out.close()
    return h.hexdigest(), n


class _Reader:
    """A file wrapper that hashes what tarfile reads from it (one read per blob)."""

    def __init__(self, f):
        self.f = f
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        return data


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0  # the same set gives the same tar: bundles can be compared by digest
    return info
