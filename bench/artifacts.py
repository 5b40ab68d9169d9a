#!/usr/bin/env python3
"""What the host artifact cache saves: bytes from outside per lab, and `up`'s
download time on a student's line, cold (first lab on the host) vs warm (any later).

Real code paths: labctl.artifacts' Cache and urllib download, against a local HTTP
server that paces its answers to the modelled bandwidth (one shared line, as a
student's home connection). The set's files are served scaled down by SCALE (same
bandwidth), so a run takes seconds; measured times are divided by SCALE.
Nodes take their files from the host cache: pushing to a node is modelled as a
local read of the blob (the VirtualBox host-only link is not the bottleneck).

    python bench/artifacts.py                    # the shipped set, 20 Mbit/s, 1+2 and 1+5 nodes
    python bench/artifacts.py --mbit 8 --set path/to/class-set.yaml

The files are the set's (amd64). Its sizes are pinned only where a source states them
(the manifests and units); the binaries' and tarballs' sizes are ESTIMATED (rounded
public sizes of the 1.27 amd64 releases) and the output says which. Images (moved
between nodes by the engine) are not part of this figure. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labctl.artifacts.cache import Cache  # noqa: E402
from labctl.artifacts.model import DEFAULT_SET, Artifact, load_set  # noqa: E402

MB = 1_000_000
ESTIMATED_MB = {  # amd64, rounded; used where the set pins no size (see module docstring)
    "kubeadm": 46, "kubelet": 101, "kubectl": 47, "crictl": 17, "cni-plugins": 45,
    "containerd": 35, "runc": 10, "calico-manifest": 0.25, "metallb-manifest": 0.08,
}


def set_sizes(name: str) -> tuple[dict[str, float], str]:
    """MB per amd64 file of set ``name``: pinned where the set has a size, else estimated."""
    aset = load_set(name)
    sizes, estimated = {}, []
    for a in aset.files("amd64"):
        if a.size:
            sizes[a.id] = a.size / MB
        else:
            sizes[a.id] = ESTIMATED_MB.get(a.id, 0.01)
            estimated.append(a.id)
    return sizes, (f"set {aset.id}: {len(sizes)} files, sizes pinned for {len(sizes) - len(estimated)}, "
                   f"ESTIMATED for {', '.join(estimated) or 'none'}")


class PacedServer(http.server.ThreadingHTTPServer):
    """Serves generated files, every connection sharing one line of ``rate`` bytes/s."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes], rate: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.rate = files, rate
        self.sent = 0
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def pace(self, n: int) -> None:
        with self.lock:
            start = max(time.monotonic(), self.next_free)
            self.next_free = start + n / self.rate
            self.sent += n
            until = self.next_free
        delay = until - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(0, len(data), 32 * 1024):
            piece = data[i:i + 32 * 1024]
            self.server.pace(len(piece))
            self.wfile.write(piece)

    def log_message(self, *args):
        pass


def make_artifacts(sizes_mb: dict[str, float], scale: float, base: str) -> tuple[list[Artifact], dict[str, bytes]]:
    rnd = random.Random(7)
    arts, files = [], {}
    for name, mb in sizes_mb.items():
        data = rnd.randbytes(max(1, int(mb * MB * scale)))
        files[f"/{name}"] = data
        arts.append(Artifact(id=name, version="bench", url=f"{base}/{name}", sha256=hashlib.sha256(data).hexdigest(),
                             size=len(data), arch="amd64"))
    return arts, files


def lab(cache_root: Path, arts: list[Artifact], nodes: int, server: PacedServer) -> dict:
    """One `up`'s artifact work: the host ensures the set, then every node reads it."""
    before = server.sent
    t0 = time.monotonic()
    paths = Cache(cache_root).ensure_all(arts, parallel=4)
    t1 = time.monotonic()
    local = 0
    for _ in range(nodes):
        for p in paths:
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    local += len(block)
    return {"outside": server.sent - before, "local": local, "host_s": t1 - t0, "push_s": time.monotonic() - t1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbit", type=float, default=20.0, help="the modelled line, Mbit/s (default 20)")
    ap.add_argument("--scale", type=float, default=0.004, help="fraction of the real sizes served (default 0.004)")
    ap.add_argument("--set", default=DEFAULT_SET, help=f"an artifact set id or file (default {DEFAULT_SET})")
    args = ap.parse_args()

    sizes, origin = set_sizes(args.set)
    rate = args.mbit * 1e6 / 8
    files: dict[str, bytes] = {}
    server = PacedServer(files, rate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        arts, generated = make_artifacts(sizes, args.scale, f"http://127.0.0.1:{server.server_address[1]}")
        files.update(generated)
        set_bytes = sum(len(v) for v in generated.values())
        real_set = sum(sizes.values()) * MB
        print(f"set: {len(arts)} files, {real_set / MB:.0f} MB ({origin}); line {args.mbit:g} Mbit/s; "
              f"served at scale {args.scale:g} ({set_bytes / MB:.2f} MB)")
        print(f"{'lab':<22}{'outside/set':>12}{'host fetch':>12}{'node push*':>11}{'no cache: outside/set':>23}")
        for workers in (2, 5):
            nodes = 1 + workers
            with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
                for which in ("first", "second"):
                    r = lab(Path(tmp), arts, nodes, server)
                    # Bytes on the line scale with the set: cold time is divided by SCALE.
                    # A warm host step moves no bytes: its time is overhead, shown as is.
                    host = r["host_s"] / args.scale if r["outside"] else r["host_s"]
                    push = r["push_s"] / args.scale  # local reads of real-sized blobs
                    print(f"{which + f' lab, 1+{workers} nodes':<22}{r['outside'] / set_bytes:>12.2f}"
                          f"{host:>11.2f}s{push:>10.2f}s{nodes:>20}.00")
        print("* node push modelled as local reads of the cached blobs (page cache), scaled like the bytes")
        print(f"line-rate bound for the cold host fetch: {real_set / rate:.0f} s at {args.mbit:g} Mbit/s; "
              f"without the host cache every lab pays it once per node on the same line")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
