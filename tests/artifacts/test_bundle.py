"""Offline bundles: round trip, idempotent import, tampering and path traversal refused."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from labctl.artifacts.bundle import export_bundle, import_bundle
from labctl.artifacts.cache import Cache
from labctl.errors import ArtifactError
from tests.artifacts.conftest import blobs_in, oci_archive


@pytest.fixture
def full_cache(pin_set, artifact_server, tmp_path):
    aset = pin_set[0]
    cache = Cache(tmp_path / "host-with-internet")
    cache.ensure_all(aset.files("amd64") + aset.files("arm64"))
    tar = tmp_path / "node.tar"
    tar.write_bytes(oci_archive("quay.io/calico/node:v3.26.4", "sha256:" + "a" * 64))
    cache.put_image("quay.io/calico/node:v3.26.4", "sha256:" + "a" * 64, tar)
    return cache, aset


@pytest.mark.parametrize("name", ["class.tar", "class.tar.gz"])
def test_round_trip_into_an_empty_cache(full_cache, tmp_path, name):
    cache, aset = full_cache
    result = export_bundle(cache, aset, ["amd64", "arm64"], tmp_path / name)
    assert result.entries == 5 and result.missing_images == ["docker.io/kubetm/p8000:latest"]
    with tarfile.open(tmp_path / name) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("bundle.json"))
    assert names[0] == "bundle.json" and len(names) == 6
    assert manifest["set"] == "test-1.27.16"
    assert {(e["id"], e["arch"], e["kind"]) for e in manifest["entries"]} == {
        ("kubeadm", "amd64", "file"), ("kubeadm", "arm64", "file"), ("crictl", None, "file"),
        ("calico-manifest", None, "file"), ("quay.io/calico/node:v3.26.4", None, "image")}
    if name.endswith(".gz"):
        assert (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"

    laptop = Cache(tmp_path / "laptop")
    first = import_bundle(tmp_path / name, laptop)
    assert (first.entries, first.added, first.added_bytes) == (5, 5, result.size)
    assert blobs_in(laptop.root) == blobs_in(cache.root)
    assert laptop.image_path("quay.io/calico/node:v3.26.4", "sha256:" + "a" * 64) is not None
    again = import_bundle(tmp_path / name, laptop)
    assert (again.added, again.added_bytes) == (0, 0)
    # the imported cache serves a lab without a single request
    offline = Cache(laptop.root, retries=0)
    offline.ensure_all(aset.files("arm64"))
    assert offline.received == 0 and offline.hits == 3


def test_export_names_what_is_missing(pin_set, artifact_server, tmp_path):
    aset = pin_set[0]
    cache = Cache(tmp_path / "c")
    cache.ensure_all(aset.files("amd64"))
    with pytest.raises(ArtifactError) as info:
        export_bundle(cache, aset, ["amd64", "arm64"], tmp_path / "b.tar")
    assert "1 artifact(s) of set test-1.27.16 are not in the cache" in info.value.message
    assert "kubeadm v1.27.16 (arm64)" in info.value.message
    assert "labctl cache fetch" in info.value.hint
    assert not (tmp_path / "b.tar").exists() and not (tmp_path / "b.tar.tmp").exists()


def _rewrite(src, dst, change):
    """Copy a plain bundle, passing each (info, bytes) through ``change``."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()
            for info, body in change(m, data):
                info.size = len(body)
                tout.addfile(info, io.BytesIO(body))


def test_a_tampered_bundle_changes_nothing(full_cache, tmp_path):
    cache, aset = full_cache
    export_bundle(cache, aset, ["amd64"], tmp_path / "b.tar")
    victim = aset.files("amd64")[1].sha256  # crictl

    def flip(m, data):
        if m.name.endswith(victim):
            data = data[:-1] + bytes([data[-1] ^ 1])
        yield m, data

    _rewrite(tmp_path / "b.tar", tmp_path / "evil.tar", flip)
    laptop = Cache(tmp_path / "laptop")
    with pytest.raises(ArtifactError) as info:
        import_bundle(tmp_path / "evil.tar", laptop)
    msg = info.value.message
    assert "crictl is damaged or was altered" in msg and f"expected sha256 {victim}" in msg
    assert "nothing was imported" in msg
    assert blobs_in(laptop.root) == [] and list(laptop.tmp.iterdir()) == []


def test_path_traversal_and_links_are_refused(full_cache, tmp_path):
    cache, aset = full_cache
    export_bundle(cache, aset, ["amd64"], tmp_path / "b.tar")
    for name, kind in [("../../escaped", tarfile.REGTYPE), ("/tmp/escaped-abs", tarfile.REGTYPE),
                       ("blobs/sha256/" + "b" * 64, tarfile.SYMTYPE)]:
        def add(m, data, name=name, kind=kind):
            yield m, data
            if m.name == "bundle.json":
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
                yield info, b"" if kind == tarfile.SYMTYPE else b"pwned"

        _rewrite(tmp_path / "b.tar", tmp_path / "evil.tar", add)
        laptop = Cache(tmp_path / "laptop")
        with pytest.raises(ArtifactError, match="unexpected member"):
            import_bundle(tmp_path / "evil.tar", laptop)
        assert blobs_in(laptop.root) == []
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_incomplete_and_garbage_bundles(full_cache, tmp_path):
    cache, aset = full_cache
    export_bundle(cache, aset, ["amd64"], tmp_path / "b.tar")
    dropped = aset.files("amd64")[2].sha256

    def drop(m, data):
        if not m.name.endswith(dropped):
            yield m, data

    _rewrite(tmp_path / "b.tar", tmp_path / "short.tar", drop)
    laptop = Cache(tmp_path / "laptop")
    with pytest.raises(ArtifactError, match="1 entry listed in bundle.json missing: calico-manifest"):
        import_bundle(tmp_path / "short.tar", laptop)
    assert blobs_in(laptop.root) == []
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ArtifactError, match="unreadable"):
        import_bundle(tmp_path / "junk.tar.gz", laptop)
    cut = tmp_path / "cut.tar"
    cut.write_bytes((tmp_path / "b.tar").read_bytes()[:200_000])
    with pytest.raises(ArtifactError, match="nothing was imported"):
        import_bundle(cut, laptop)
    assert blobs_in(laptop.root) == []


def _repacked(src, dest, edit_manifest=None, swap=None):
    """Copy bundle ``src`` to ``dest``, editing its manifest and/or swapping blobs
    (old sha256 -> new bytes, renamed and re-listed under their own sha256)."""
    import hashlib

    swap = swap or {}
    renamed = {old: hashlib.sha256(new).hexdigest() for old, new in swap.items()}

    def edit(m, data):
        if m.name == "bundle.json":
            doc = json.loads(data)
            for e in doc["entries"]:
                if e["sha256"] in swap:
                    e["size"] = len(swap[e["sha256"]])
                    e["sha256"] = renamed[e["sha256"]]
            if edit_manifest:
                edit_manifest(doc)
            data = json.dumps(doc).encode()
            m.size = len(data)
        for old, new in swap.items():
            if m.name.endswith(old):
                m.name, data = f"blobs/sha256/{renamed[old]}", new
                m.size = len(data)
        yield m, data

    _rewrite(src, dest, edit)


def test_a_bundle_cannot_put_another_image_under_a_pinned_digest(full_cache, tmp_path):
    """Each blob matches its own name; the image behind a pinned digest must be that one."""
    cache, aset = full_cache
    export_bundle(cache, aset, ["amd64"], tmp_path / "b.tar")
    image = cache.image_path("quay.io/calico/node:v3.26.4", "sha256:" + "a" * 64)
    other = oci_archive("quay.io/calico/node:v3.26.4", "sha256:" + "e" * 64, filler=b"something else")
    _repacked(tmp_path / "b.tar", tmp_path / "evil.tar", swap={image.name: other})
    laptop = Cache(tmp_path / "laptop")
    with pytest.raises(ArtifactError) as info:
        import_bundle(tmp_path / "evil.tar", laptop)
    assert ("image quay.io/calico/node:v3.26.4 is filed under digest sha256:" + "a" * 64 + " but the archive holds "
            "sha256:" + "e" * 64) in info.value.message
    assert blobs_in(laptop.root) == [] and laptop.image_path("quay.io/calico/node:v3.26.4", "sha256:" + "a" * 64) is None


@pytest.mark.parametrize("field, value", [("id", 5), ("arch", 7), ("image_key", [1]), ("url", {"x": 1})])
def test_manifest_fields_of_the_wrong_type_are_refused_before_anything_changes(full_cache, tmp_path, field, value):
    cache, aset = full_cache
    export_bundle(cache, aset, ["amd64"], tmp_path / "b.tar")

    def poison(doc):
        doc["entries"][0][field] = value

    _repacked(tmp_path / "b.tar", tmp_path / "evil.tar", edit_manifest=poison)
    laptop = Cache(tmp_path / "laptop")
    with pytest.raises(ArtifactError, match=rf"entries\[0\]\.{field} must be a string; nothing was imported"):
        import_bundle(tmp_path / "evil.tar", laptop)
    assert blobs_in(laptop.root) == []
