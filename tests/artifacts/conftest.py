"""Fixtures for the artifact tests: a real HTTP server on loopback serving a small
pin table, counting every request and byte, and misbehaving on demand.

``artifact_server`` -> :class:`FileServer` (threaded pytest-httpserver on 127.0.0.1)
``pin_set``         -> (ArtifactSet, set file path, {id: bytes}) for 3 small files
                       served by ``artifact_server``; ``kubeadm`` is per-arch.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from labctl.artifacts.model import ArtifactSet


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support, and counts.

    Misbehaviours, per path: ``truncate[path] = n`` sends only the first n bytes of
    the next responses while announcing the full length, then closes (a dropped
    connection); ``ignore_range`` answers 200 with the whole file to Range requests;
    ``replies[path] = (status, body)`` answers that instead; ``delay`` sleeps per
    chunk so that concurrent clients overlap."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.files: dict[str, bytes] = {}
        self.requests: Counter = Counter()
        self.sent: Counter = Counter()
        self.ranges: list[tuple[str, str | None]] = []
        self.truncate: dict[str, int] = {}
        self.truncate_times: dict[str, int] = {}
        self.replies: dict[str, tuple[int, bytes]] = {}
        self.ignore_range = False
        self.delay = 0.0
        self._lock = threading.Lock()
        server.expect_request(__import__("re").compile(".*")).respond_with_handler(self._handle)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.sent[path] += n

    def _handle(self, request: Request) -> Response:
        path = request.path
        rng = request.headers.get("Range")
        with self._lock:
            self.requests[path] += 1
            self.ranges.append((path, rng))
        if path in self.replies:
            status, body = self.replies[path]
            return Response(body, status=status)
        data = self.files.get(path)
        if data is None:
            return Response(b"not found", status=404)
        start, status, headers = 0, 200, {}
        if rng and not self.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                return Response(b"", status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        cut = None
        with self._lock:
            if self.truncate_times.get(path, 0) > 0 or (path in self.truncate and path not in self.truncate_times):
                cut = self.truncate[path]
                if path in self.truncate_times:
                    self.truncate_times[path] -= 1

        def stream():
            out = body if cut is None else body[:cut]
            for i in range(0, len(out), 64 * 1024):
                if self.delay:
                    time.sleep(self.delay)
                piece = out[i:i + 64 * 1024]
                self._count(path, len(piece))
                yield piece

        resp = Response(stream(), status=status, headers=headers, direct_passthrough=True)
        return resp


@pytest.fixture(scope="session")
def _http_server():
    # One server for the session: stopping werkzeug's server waits for its 0.5 s poll.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def artifact_server(_http_server):
    _http_server.clear()
    yield FileServer(_http_server)
    _http_server.clear()


@pytest.fixture(autouse=True)
def _no_proxy_no_mirror(monkeypatch, tmp_path):
    # Loopback only, whatever the machine's environment says.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "LABCTL_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(tmp_path / "default-cache"))


def make_files(seed: int = 1) -> dict[str, bytes]:
    rnd = random.Random(seed)
    return {
        "kubeadm-amd64": rnd.randbytes(300_000),
        "kubeadm-arm64": rnd.randbytes(280_000),
        "crictl": rnd.randbytes(150_000),
        "manifest": b"apiVersion: v1\nkind: ConfigMap\n" * 40,
    }


def write_set(path: Path, base: str, files: dict[str, bytes], *, sizes: bool = True) -> Path:
    doc = {
        "schema": 1,
        "id": "test-1.27.16",
        "kubernetes": "1.27.16",
        "bases": {"k8s": f"{base}/k8s", "github": f"{base}/gh"},
        "files": [
            {"id": "kubeadm", "version": "v1.27.16", "url": "{k8s}/release/v1.27.16/bin/linux/{arch}/kubeadm",
             "sha256": {"amd64": sha(files["kubeadm-amd64"]), "arm64": sha(files["kubeadm-arm64"])},
             "source": "computed by the test", "install": {"to": "/usr/bin/kubeadm", "mode": "0755"}},
            {"id": "crictl", "version": "v1.27.0", "url": "{github}/crictl-v1.27.0.tar.gz",
             "sha256": sha(files["crictl"]), "source": "computed by the test"},
            {"id": "calico-manifest", "version": "v3.26.4", "url": "{github}/calico.yaml",
             "sha256": sha(files["manifest"]), "source": "computed by the test"},
        ],
        "images": [
            {"ref": "quay.io/calico/node:v3.26.4", "digest": "sha256:" + "a" * 64, "used_by": "calico", "source": "test"},
            {"ref": "docker.io/kubetm/p8000:latest", "digest": None, "used_by": "pod-1", "source": "test"},
        ],
    }
    if sizes:
        doc["files"][0]["size"] = {"amd64": len(files["kubeadm-amd64"]), "arm64": len(files["kubeadm-arm64"])}
        doc["files"][1]["size"] = len(files["crictl"])
    path.write_bytes(yaml.safe_dump(doc, sort_keys=False).encode())
    return path


def serve_files(srv: FileServer, files: dict[str, bytes]) -> None:
    srv.files.update({
        "/k8s/release/v1.27.16/bin/linux/amd64/kubeadm": files["kubeadm-amd64"],
        "/k8s/release/v1.27.16/bin/linux/arm64/kubeadm": files["kubeadm-arm64"],
        "/gh/crictl-v1.27.0.tar.gz": files["crictl"],
        "/gh/calico.yaml": files["manifest"],
    })


@pytest.fixture
def pin_set(artifact_server, tmp_path):
    files = make_files()
    serve_files(artifact_server, files)
    path = write_set(tmp_path / "test-set.yaml", artifact_server.url(), files)
    return ArtifactSet.load(path), path, files


def blobs_in(root: Path) -> list[str]:
    d = root / "blobs" / "sha256"
    return sorted(os.listdir(d)) if d.is_dir() else []


def oci_archive(ref: str, digest: str, filler: bytes = b"layer" * 200) -> bytes:
    """A small archive shaped like `ctr images export` output: index.json names ``ref``
    with its target ``digest`` (the part bundle import reads), plus a blob."""
    import io
    import json
    import tarfile

    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1234,
        "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}]}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("index.json", json.dumps(index).encode()), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           (f"blobs/sha256/{sha(filler)}", filler)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
