"""A host cache folder that cannot take the downloads: a disk that fills up mid-download,
a read-only file system, a file where the folder goes. Each is one line with the cause
and the fix, exit ARTIFACT_FAILED, no partial file left, and the same command completes
once the cause is gone. Full and read-only are a small tmpfs or a read-only bind in a
private mount namespace (tests/faults/namespace.py): the host's disks are never touched."""

from __future__ import annotations

import pytest

from labctl.errors import ExitCode
from tests.faults.namespace import ROOT, namespaces_usable, run_in_namespace

needs_namespaces = pytest.mark.skipif(not namespaces_usable(), reason="needs root and unshare -m (private mount namespace)")


@needs_namespaces
def test_a_full_cache_disk_is_told_as_such_and_leaves_nothing_half_written(pin_set, artifact_server, tmp_path,
                                                                          monkeypatch):
    _, set_path, files = pin_set
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(cache))
    fetch = ["labctl", "cache", "fetch", "--arch", "amd64", "--set", str(set_path), "--parallel", "1"]
    # 128 KiB holds the small files, not the 300 KB kubeadm.
    full, rerun = run_in_namespace(cache, [["tmpfs", "128k"], fetch, ["remount", "4m"], fetch])
    assert full["rc"] == ExitCode.ARTIFACT_FAILED, full["err"]
    lines = full["err"].strip().splitlines()
    assert any(line.startswith("labctl: error: ") and "could not be fetched" in line for line in lines), lines
    told = [line for line in lines if line.startswith("  | ")]
    assert any(line.startswith("  | kubeadm v1.27.16 (amd64): disk full") for line in told), lines
    assert lines[-1].startswith("hint: the disk filled up: free space (`labctl cache prune`"), lines
    assert "Traceback" not in full["err"]
    assert not [p for p in full["tree"] if p.endswith(".part") or ".tmp" in p], sorted(full["tree"])
    blobs = {p.rsplit("/", 1)[1]: d for p, d in full["tree"].items() if p.startswith("blobs/sha256/") and d != "dir"}
    assert all(name == digest for name, digest in blobs.items()), blobs  # what is cached is whole
    assert rerun["rc"] == 0, rerun["err"]
    assert len([p for p, d in rerun["tree"].items() if p.startswith("blobs/sha256/") and d != "dir"]) == 3


def _fetch(set_path) -> list[str]:
    return ["labctl", "cache", "fetch", "--arch", "amd64", "--set", str(set_path)]


@needs_namespaces
def test_a_read_only_cache_folder_is_one_line_and_changes_nothing(pin_set, artifact_server, tmp_path, monkeypatch):
    _, set_path, _ = pin_set
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(cache))
    (ro,) = run_in_namespace(cache, [["readonly"], _fetch(set_path)])
    assert ro["rc"] == ExitCode.ARTIFACT_FAILED, ro["err"]
    assert ro["err"].strip().splitlines() == [
        f"labctl: error: the host cache folder {cache} cannot be used: Read-only file system",
        f"hint: set LABCTL_CACHE_DIR to a folder you can write, or fix the permissions of {cache}"]
    assert ro["tree"] == {} and sum(artifact_server.requests.values()) == 0  # nothing fetched for nothing


def test_a_file_where_the_cache_folder_goes(pin_set, artifact_server, tmp_path):
    import os
    import subprocess
    import sys

    _, set_path, _ = pin_set
    taken = tmp_path / "cache"
    taken.write_text("not a folder\n")
    env = {**os.environ, "LABCTL_CACHE_DIR": str(taken), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", *_fetch(set_path)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == ExitCode.ARTIFACT_FAILED
    assert r.stderr.strip().splitlines() == [
        f"labctl: error: the host cache folder {taken} cannot be used: Not a directory",
        "hint: a file stands where the folder goes: remove it, or set LABCTL_CACHE_DIR to a folder"]
    assert taken.read_text() == "not a folder\n"


def test_every_cache_command_names_a_file_in_the_cache_folders_place(pin_set, tmp_path):
    import os
    import subprocess
    import sys

    _, set_path, _ = pin_set
    taken = tmp_path / "cache"
    taken.write_text("not a folder\n")
    bundle = tmp_path / "class.tar"
    bundle.write_bytes(b"")  # never read: the cache folder is refused first
    env = {**os.environ, "LABCTL_CACHE_DIR": str(taken), "PYTHONPATH": str(ROOT), "LABCTL_ARTIFACT_SET": str(set_path)}
    for argv in (["cache", "prune"], ["cache", "prune", "--all"], ["bundle", "import", str(bundle)]):
        r = subprocess.run([sys.executable, "-m", "labctl", *argv], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == ExitCode.ARTIFACT_FAILED, (argv, r.stderr)
        assert r.stderr.startswith(f"labctl: error: the host cache folder {taken} cannot be used: Not a directory"), argv
    assert taken.read_text() == "not a folder\n"


def test_bundle_export_to_a_folder_or_an_impossible_path_writes_nothing(pin_set, artifact_server, tmp_path):
    from labctl.artifacts.bundle import export_bundle
    from labctl.artifacts.cache import Cache
    from labctl.errors import ArtifactError

    aset = pin_set[0]
    cache = Cache(tmp_path / "c")
    cache.ensure_all(aset.files("amd64"))
    (tmp_path / "a-file").write_text("x")
    for target, said in ((tmp_path, f"bundle path {tmp_path} is a folder"),
                         (tmp_path / "a-file" / "b.tar", "a file stands where one of its folders goes")):
        with pytest.raises(ArtifactError) as info:
            export_bundle(cache, aset, ["amd64"], target)
        assert said in info.value.message
    assert not [p for p in tmp_path.rglob("*.tar*")]  # no bundle, no half-written .tmp
