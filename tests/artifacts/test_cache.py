"""The host cache: once per host, across threads, processes and labs; list, prune, images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from labctl.artifacts.cache import Cache
from tests.artifacts.conftest import blobs_in, sha

ROOT = Path(__file__).resolve().parents[2]

# A second labctl process: waits for "go" on stdin so that it starts with the threads.
_OTHER_LAB = """
import sys
from labctl.artifacts.cache import Cache
from labctl.artifacts.model import ArtifactSet
files = ArtifactSet.load(sys.argv[2]).files("amd64")
print("ready", flush=True)
sys.stdin.readline()
paths = Cache(sys.argv[1]).ensure_all(files, parallel=3)
print(" ".join(p.name for p in paths), flush=True)
"""


def test_concurrent_threads_and_a_second_process_download_each_file_once(pin_set, artifact_server, tmp_path):
    aset, set_path, files = pin_set
    artifacts = aset.files("amd64")
    artifact_server.delay = 0.05  # 5 chunks of kubeadm: ~0.25 s, long enough for everyone to collide
    root = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    other = subprocess.Popen([sys.executable, "-c", _OTHER_LAB, str(root), str(set_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert other.stdout.readline().strip() == "ready"
        results, errors = [], []
        barrier = threading.Barrier(8)

        def lab():
            try:
                barrier.wait(timeout=10)
                results.append([p.name for p in Cache(root).ensure_all(artifacts, parallel=3)])
            except Exception as exc:  # surfaced below; a thread must not die silently
                errors.append(exc)

        threads = [threading.Thread(target=lab) for _ in range(8)]
        for t in threads:
            t.start()
        other.stdin.write("go\n")
        other.stdin.flush()
        for t in threads:
            t.join(timeout=30)
        out, _ = other.communicate(timeout=30)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert not errors and other.returncode == 0
    expected = [a.sha256 for a in artifacts]
    assert results == [expected] * 8 and out.split() == expected
    assert all(n == 1 for n in artifact_server.requests.values()), artifact_server.requests
    assert sum(artifact_server.requests.values()) == 3
    assert artifact_server.total_sent == sum(len(files[k]) for k in ("kubeadm-amd64", "crictl", "manifest"))
    assert blobs_in(root) == sorted(expected)
    assert all(sha((root / "blobs" / "sha256" / h).read_bytes()) == h for h in expected)
    assert os.listdir(root / "tmp") == []


def test_a_second_lab_on_the_same_host_downloads_nothing(pin_set, artifact_server, tmp_path):
    aset = pin_set[0]
    first = Cache(tmp_path / "c")
    first.ensure_all(aset.files("amd64"))
    sent = artifact_server.total_sent
    second = Cache(tmp_path / "c")  # another lab, another labctl run
    paths = second.ensure_all(aset.files("amd64"))
    assert artifact_server.total_sent == sent and second.received == 0 and second.hits == 3
    assert [p.read_bytes() for p in paths][0] == pin_set[2]["kubeadm-amd64"]
    # the other arch is new bytes, except the arch-independent files
    third = Cache(tmp_path / "c")
    third.ensure_all(aset.files("arm64"))
    assert third.received == len(pin_set[2]["kubeadm-arm64"]) and third.hits == 2


def test_list_size_has_and_index(pin_set, artifact_server, tmp_path):
    aset = pin_set[0]
    cache = Cache(tmp_path / "c")
    assert cache.list() == [] and cache.size() == 0
    cache.ensure_all(aset.files("arm64"))
    entries = {e.id: e for e in cache.list()}
    assert set(entries) == {"kubeadm", "crictl", "calico-manifest"}
    k = entries["kubeadm"]
    assert (k.kind, k.version, k.arch, k.size) == ("file", "v1.27.16", "arm64", len(pin_set[2]["kubeadm-arm64"]))
    assert k.url.endswith("/arm64/kubeadm") and k.added and k.last_used
    assert cache.size() == sum(e.size for e in entries.values())
    assert cache.has(k.sha256) and not cache.has("f" * 64)
    # blobs are read-only: a stray write cannot corrupt what every lab shares
    assert not os.access(cache.path_for(k.sha256), os.W_OK) or os.geteuid() == 0
    assert oct(cache.path_for(k.sha256).stat().st_mode & 0o777) == "0o444"


def test_a_damaged_index_is_rebuilt_from_the_blobs(pin_set, artifact_server, tmp_path):
    cache = Cache(tmp_path / "c")
    cache.ensure_all(pin_set[0].files("amd64"))
    cache.index_path.write_text("{half a json")
    assert {e.kind for e in cache.list()} == {"unknown"} and len(cache.list()) == 3
    assert Cache(tmp_path / "c").ensure_all(pin_set[0].files("amd64"))  # still hits
    assert artifact_server.total_sent == sum(len(pin_set[2][k]) for k in ("kubeadm-amd64", "crictl", "manifest"))
    assert {e.kind for e in cache.list()} == {"file"}  # a hit describes its blob again
    json.loads(cache.index_path.read_text())


def test_prune_keeps_what_is_asked(pin_set, artifact_server, tmp_path):
    aset = pin_set[0]
    cache = Cache(tmp_path / "c")
    cache.ensure_all(aset.files("amd64") + aset.files("arm64"))
    (cache.tmp / ("e" * 64 + ".part")).write_bytes(b"interrupted")
    keep = {a.sha256 for a in aset.files("amd64")}
    result = cache.prune(keep_sha256=keep)
    assert [e.arch for e in result.removed] == ["arm64"] and result.freed == len(pin_set[2]["kubeadm-arm64"])
    assert result.partials == 1 and os.listdir(cache.tmp) == []
    assert cache.prune(keep_ids=["kubeadm", "crictl"]).freed == len(pin_set[2]["manifest"])
    assert cache.prune(older_than=timedelta(days=1)).removed == []  # just used
    result = cache.prune(everything=True)
    assert len(result.removed) == 2 and cache.list() == [] and blobs_in(cache.root) == []
    assert json.loads(cache.index_path.read_text())["blobs"] == {}


def test_images_are_filed_by_ref_and_digest(tmp_path):
    cache = Cache(tmp_path / "c")
    tar = tmp_path / "p8000.tar"
    tar.write_bytes(b"an OCI archive from ctr images export" * 100)
    p = cache.put_image("docker.io/kubetm/p8000:latest", None, tar)
    assert p.read_bytes() == tar.read_bytes() and p.name == sha(tar.read_bytes())
    assert cache.image_path("docker.io/kubetm/p8000:latest") == p
    assert cache.image_path("docker.io/kubetm/p8000:latest", "sha256:" + "a" * 64) is None
    (e,) = cache.list()
    assert (e.kind, e.id) == ("image", "docker.io/kubetm/p8000:latest")


def test_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(tmp_path / "env-cache"))
    assert Cache().root == tmp_path / "env-cache"
    assert Cache(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("LABCTL_CACHE_DIR")
    assert Cache().root.parts[-2:] == ("labctl", "artifacts")


def test_several_failures_are_reported_together(pin_set, artifact_server, tmp_path):
    aset = pin_set[0]
    artifact_server.replies["/gh/crictl-v1.27.0.tar.gz"] = (404, b"")
    artifact_server.replies["/gh/calico.yaml"] = (410, b"")
    cache = Cache(tmp_path / "c")
    with pytest.raises(Exception) as info:
        cache.ensure_all(aset.files("amd64"))
    err = info.value
    assert err.message == "2 of 3 artifacts could not be fetched"
    assert any("crictl" in line for line in err.evidence) and any("calico-manifest" in line for line in err.evidence)
    assert blobs_in(cache.root) == [aset.files("amd64")[0].sha256]  # the good one was kept for next time


def test_image_tarballs_are_filed_per_architecture(tmp_path):
    """A node exports its own platform only: an arm64 node must never get an amd64 export."""
    cache = Cache(tmp_path / "c")
    amd = tmp_path / "amd.tar"
    amd.write_bytes(b"amd64 layers")
    p = cache.put_image("quay.io/calico/node:v3.26.4", None, amd, "amd64")
    assert cache.image_path("quay.io/calico/node:v3.26.4", None, "amd64") == p
    assert cache.image_path("quay.io/calico/node:v3.26.4", None, "arm64") is None
    every = tmp_path / "all.tar"
    every.write_bytes(b"every platform")
    q = cache.put_image("quay.io/calico/node:v3.26.4", None, every)  # no arch: serves any node
    assert cache.image_path("quay.io/calico/node:v3.26.4", None, "arm64") == q
    assert cache.image_path("quay.io/calico/node:v3.26.4", None, "amd64") == p
