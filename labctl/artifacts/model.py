"""An artifact set: every file and image a lab needs, pinned by digest, as data.

A set is a YAML file shipped in ``labctl/artifacts/sets/`` (see ``sets/README.md``
for the schema). Digests live in the project, not next to the files upstream: a
checksum served by the same CDN as the file proves nothing if the CDN is wrong.

Base URLs. A file's URL names its server by base, ``{k8s}/release/...``, so that
the whole set can be moved to another server without editing it:

- ``set.files(arch, bases={"k8s": "http://127.0.0.1:8080/k8s"})`` replaces single
  bases (tests, a local mirror of one upstream);
- ``LABCTL_MIRROR=URL`` in the environment makes every base ``URL/<basename>``
  (e.g. ``https://mirror.school.example/labctl/k8s/release/...``): one class
  mirror, laid out by base name, serves every file of every set.
  Explicit ``bases=`` still win over ``LABCTL_MIRROR``.

Validation errors are ``ArtifactError``s with one line: the file, the field's path,
what is wrong. A shipped set that fails to load is a labctl bug, but the researcher
filling it needs to know exactly which line to fix.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from labctl.errors import ArtifactError

ARCHES = ("amd64", "arm64")
SETS_DIR = Path(__file__).resolve().parent / "sets"
DEFAULT_SET = "k8s-1.27.16"
# A class's own table (or a test's): what `labctl up` and `labctl cache`/`bundle` use.
SET_ENV = "LABCTL_ARTIFACT_SET"


def default_set() -> str:
    return os.environ.get(SET_ENV) or DEFAULT_SET
MIRROR_ENV = "LABCTL_MIRROR"

_HEX = re.compile(r"^[0-9a-f]{64}$")
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_BASE = re.compile(r"^[a-z0-9_]+$")
_MODE = re.compile(r"^0?[0-7]{3}$")
_TOP_KEYS = {"schema", "id", "kubernetes", "bases", "files", "images"}
_FILE_KEYS = {"id", "version", "url", "sha256", "size", "source", "install"}
_IMAGE_KEYS = {"ref", "digest", "used_by", "source"}

def arch_of(machine: str) -> str:
    """``platform.machine()`` (Linux x86_64, Windows AMD64, macOS arm64) -> amd64|arm64."""
    from labctl.host.platform import normalise_arch

    arch = normalise_arch(machine)
    if arch not in ARCHES:
        raise ArtifactError(
            f"host architecture {machine!r} is not supported",
            hint="the lab's pinned binaries exist for amd64 (x86_64) and arm64 (aarch64) only",
        )
    return arch


def host_arch() -> str:
    import platform

    return arch_of(platform.machine())


@dataclass(frozen=True)
class Artifact:
    """One file for one arch, with its URL resolved: what the cache downloads."""

    id: str
    version: str
    url: str
    sha256: str
    size: Optional[int] = None
    arch: Optional[str] = None  # None: the same bytes on every arch
    install: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        """How messages name it: ``kubeadm v1.27.16 (arm64)``."""
        return f"{self.id} {self.version}" + (f" ({self.arch})" if self.arch else "")


@dataclass(frozen=True)
class Image:
    ref: str
    digest: Optional[str]  # None: not pinned yet; the tag is trusted (said in `labctl cache`)
    used_by: str = ""
    source: str = ""

    @property
    def key(self) -> str:
        """How the cache files an image tarball: by digest when known, else by ref."""
        return f"{self.ref}@{self.digest}" if self.digest else self.ref


@dataclass(frozen=True)
class _FileSpec:
    id: str
    version: str
    url: str
    sha256: Any  # str, or {arch: str}
    size: Any  # None, int, or {arch: int}
    install: Mapping[str, Any]


def resolve_bases(own: Mapping[str, str], overrides: Optional[Mapping[str, str]] = None,
                  env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The set's bases, then LABCTL_MIRROR, then explicit overrides (see module doc)."""
    env = os.environ if env is None else env
    bases = dict(own)
    mirror = (env.get(MIRROR_ENV) or "").strip().rstrip("/")
    if mirror and not _http_url(mirror):
        raise ArtifactError(f"{MIRROR_ENV}={mirror!r} is not an http(s) URL with a host",
                            hint=f"set {MIRROR_ENV} to the class mirror's URL, e.g. http://10.0.0.5:8080, or unset it")
    if mirror:
        bases = {name: f"{mirror}/{name}" for name in bases}
    for name, url in (overrides or {}).items():
        bases[name] = url
    return {name: url.rstrip("/") for name, url in bases.items()}


class ArtifactSet:
    def __init__(self, *, id: str, kubernetes: str, bases: Mapping[str, str],
                 file_specs: list[_FileSpec], images: list[Image], path: Optional[Path] = None):
        self.id = id
        self.kubernetes = kubernetes
        self.bases = dict(bases)
        self._files = file_specs
        self.images = images
        self.path = path

    @classmethod
    def load(cls, path: str | Path) -> "ArtifactSet":
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_bytes())
        except OSError as exc:
            raise ArtifactError(f"cannot read artifact set {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ArtifactError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from exc
        return _parse(data, path)

    def file_ids(self) -> list[str]:
        return [f.id for f in self._files]

    def all_sha256(self) -> set[str]:
        """Every file digest the set pins, for every arch (what a prune keeps)."""
        out: set[str] = set()
        for f in self._files:
            out |= set(f.sha256.values()) if isinstance(f.sha256, dict) else {f.sha256}
        return out

    def files(self, arch: str, bases: Optional[Mapping[str, str]] = None) -> list[Artifact]:
        """Every file for ``arch``, URLs resolved. A file pinned for other arches only
        is an error: a lab missing one binary fails later and far less clearly."""
        if arch not in ARCHES:
            raise ArtifactError(f"unknown arch {arch!r}", hint=f"use one of {', '.join(ARCHES)}")
        where = resolve_bases(self.bases, bases)
        out = []
        for f in self._files:
            per_arch = isinstance(f.sha256, dict)
            if per_arch and arch not in f.sha256:
                raise ArtifactError(
                    f"{self.id}: file {f.id} has no {arch} build pinned",
                    hint="the set must pin a sha256 for every arch a lab can run on",
                )
            url = f.url.format_map({**where, "arch": arch})
            size = f.size.get(arch) if isinstance(f.size, dict) else f.size
            out.append(Artifact(id=f.id, version=f.version, url=url,
                                sha256=f.sha256[arch] if per_arch else f.sha256,
                                size=size, arch=arch if per_arch else None, install=f.install))
        return out

    def total_size(self, arch: str) -> Optional[int]:
        """Bytes of every file for ``arch``; None when some file has no pinned size."""
        sizes = [a.size for a in self.files(arch)]
        return None if any(s is None for s in sizes) else sum(sizes)


def load_set(name_or_path: str | Path = DEFAULT_SET) -> ArtifactSet:
    """A shipped set by id (``k8s-1.27.16``) or any set file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return ArtifactSet.load(p)
    shipped = SETS_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        have = sorted(x.stem for x in SETS_DIR.glob("*.yaml"))
        raise ArtifactError(
            f"artifact set {name_or_path} is not shipped with this labctl ({SETS_DIR})",
            hint=f"shipped sets: {', '.join(have) or 'none'}; pass a set file by path (--set FILE or "
                 f"${SET_ENV}), or update labctl",
        )
    return ArtifactSet.load(shipped)


# -- validation ------------------------------------------------------------------------

def _parse(data: Any, path: Path) -> ArtifactSet:
    def bad(where: str, what: str) -> ArtifactError:
        return ArtifactError(f"{path}: {where}: {what}", hint="fix the artifact set file")

    if not isinstance(data, dict):
        raise bad("(top)", "expected a mapping")
    _unknown(data, _TOP_KEYS, "(top)", bad)
    if data.get("schema") != 1:
        raise bad("schema", f"expected 1, got {data.get('schema')!r}")
    set_id = _text(data, "id", "id", bad)
    kube = _text(data, "kubernetes", "kubernetes", bad)
    bases = data.get("bases") or {}
    if not isinstance(bases, dict):
        raise bad("bases", "expected a mapping of name to URL")
    for name, url in bases.items():
        if not isinstance(name, str) or not _BASE.match(name):
            raise bad(f"bases.{name}", "a base name is lower-case letters, digits and '_'")
        if not isinstance(url, str) or not _http_url(url):
            raise bad(f"bases.{name}", f"expected an http(s) URL with a host, got {url!r}")
    files_raw = data.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        raise bad("files", "expected a non-empty list")
    files, seen = [], set()
    for i, raw in enumerate(files_raw):
        files.append(_parse_file(raw, f"files[{i}]", set(bases), bad))
        if files[-1].id in seen:
            raise bad(f"files[{i}].id", f"duplicate id {files[-1].id!r}")
        seen.add(files[-1].id)
    images_raw = data.get("images") or []
    if not isinstance(images_raw, list):
        raise bad("images", "expected a list")
    images = [_parse_image(raw, f"images[{i}]", bad) for i, raw in enumerate(images_raw)]
    return ArtifactSet(id=set_id, kubernetes=kube, bases=bases, file_specs=files, images=images, path=path)


def _unknown(d: dict, allowed: set, where: str, bad) -> None:
    extra = sorted(set(map(str, d)) - allowed)
    if extra:
        key = extra[0] if where == "(top)" else f"{where}.{extra[0]}"
        raise bad(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _text(d: dict, key: str, where: str, bad) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise bad(where, "required, a non-empty string (quote versions: \"1.27.16\")")
    return v


def _parse_file(raw: Any, where: str, base_names: set, bad) -> _FileSpec:
    if not isinstance(raw, dict):
        raise bad(where, "expected a mapping")
    _unknown(raw, _FILE_KEYS, where, bad)
    fid = _text(raw, "id", f"{where}.id", bad)
    if not _ID.match(fid):
        raise bad(f"{where}.id", f"{fid!r}: lower-case letters, digits, '.', '_', '-' only")
    where = f"{where} ({fid})"
    version = _text(raw, "version", f"{where}.version", bad)
    _text(raw, "source", f"{where}.source", bad)  # provenance of the digest is not optional
    url = _text(raw, "url", f"{where}.url", bad)
    try:
        names = {n for _, n, _, _ in string.Formatter().parse(url) if n is not None}
    except ValueError as exc:
        raise bad(f"{where}.url", f"{exc} (a base is written {{name}}; a literal brace is {{{{ or }}}})") from None
    unknown = names - base_names - {"arch"}
    if unknown:
        raise bad(f"{where}.url", f"unknown base {{{sorted(unknown)[0]}}} (bases: {', '.join(sorted(base_names))})")
    sha = raw.get("sha256")
    if isinstance(sha, dict):
        if not sha or set(sha) - set(ARCHES):
            raise bad(f"{where}.sha256", f"per-arch keys must be among {', '.join(ARCHES)}")
        for arch, h in sha.items():
            if not isinstance(h, str) or not _HEX.match(h):
                raise bad(f"{where}.sha256.{arch}", "expected 64 lower-case hex digits")
    elif not isinstance(sha, str) or not _HEX.match(sha):
        raise bad(f"{where}.sha256", "expected 64 lower-case hex digits, or one per arch")
    if ("arch" in names) != isinstance(sha, dict):
        raise bad(f"{where}.sha256", "a URL with {arch} needs one sha256 per arch, and only such a URL")
    size = raw.get("size")
    sizes = size.values() if isinstance(size, dict) else [size]
    if isinstance(size, dict) and (not isinstance(sha, dict) or set(size) - set(sha)):
        raise bad(f"{where}.size", "per-arch sizes need per-arch sha256 for the same arches")
    if size is not None and not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes):
        raise bad(f"{where}.size", "expected a byte count (or one per arch)")
    install = raw.get("install") or {}
    if not isinstance(install, dict):
        raise bad(f"{where}.install", "expected a mapping")
    if install:
        _check_install(install, f"{where}.install", bad)
    return _FileSpec(fid, version, url, sha, size, install)


def _check_install(install: dict, where: str, bad) -> None:
    """What the node scripts do with a file: copy it (``to``, ``mode``) or unpack it
    (``extract`` into a folder that then holds each of ``provides``). The values end up
    in a root shell script: absolute paths, an octal mode, nothing else."""
    if "to" in install:
        _unknown(install, {"to", "mode"}, where, bad)
        if not _abs_path(install["to"]):
            raise bad(f"{where}.to", "an absolute path without spaces or '..'")
        mode = install.get("mode", "0644")
        if not isinstance(mode, str) or not _MODE.match(mode):
            raise bad(f"{where}.mode", 'an octal mode as a quoted string, e.g. "0755"')
        return
    _unknown(install, {"extract", "provides"}, where, bad)
    if not _abs_path(install.get("extract")):
        raise bad(f"{where}", "needs to: PATH (a file) or extract: FOLDER with provides: [...] (a tarball)")
    provides = install.get("provides")
    if (not isinstance(provides, list) or not provides
            or not all(isinstance(m, str) and _abs_path("/" + m) and not m.startswith("/") for m in provides)):
        raise bad(f"{where}.provides", "a non-empty list of paths inside the folder (what the tarball must hold)")


def _abs_path(value: Any) -> bool:
    return (isinstance(value, str) and value.startswith("/") and not re.search(r"\s", value)
            and ".." not in value.split("/"))


def _http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is no number)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _parse_image(raw: Any, where: str, bad) -> Image:
    if not isinstance(raw, dict):
        raise bad(where, "expected a mapping")
    _unknown(raw, _IMAGE_KEYS, where, bad)
    ref = _text(raw, "ref", f"{where}.ref", bad)
    digest = raw.get("digest")
    if digest is not None and (not isinstance(digest, str) or not _IMAGE_DIGEST.match(digest)):
        raise bad(f"{where} ({ref}).digest", "expected sha256:<64 hex digits> or null")
    return Image(ref=ref, digest=digest, used_by=str(raw.get("used_by") or ""), source=str(raw.get("source") or ""))
