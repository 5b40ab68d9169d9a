"""labctl cache / labctl bundle as a user runs them: `python -m labctl` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labctl.errors import ExitCode
from tests.artifacts.conftest import blobs_in

ROOT = Path(__file__).resolve().parents[2]


def labctl(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABCTL_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True, timeout=60, env=env)


def test_fetch_list_export_import_prune(pin_set, artifact_server, tmp_path):
    aset, set_path, files = pin_set
    host, laptop = tmp_path / "host", tmp_path / "laptop"

    r = labctl("cache", "fetch", "--arch", "all", "--set", str(set_path), cache=host)
    assert r.returncode == 0, r.stderr
    assert "set test-1.27.16 (amd64, arm64): 4 files" in r.stdout
    assert "kubeadm: 0.3 MB" in r.stderr  # progress goes to stderr
    again = labctl("cache", "fetch", "--arch", "amd64", "--set", str(set_path), "--json", cache=host)
    payload = json.loads(again.stdout)
    assert payload["received"] == 0 and payload["hits"] == 3
    assert sum(artifact_server.requests.values()) == 4

    listing = labctl("cache", "--json", cache=host)
    entries = json.loads(listing.stdout)["entries"]
    assert {(e["id"], e["arch"]) for e in entries} == {("kubeadm", "amd64"), ("kubeadm", "arm64"),
                                                       ("crictl", None), ("calico-manifest", None)}
    human = labctl("cache", cache=host).stdout
    assert "kubeadm" in human and "4 cached" in human and str(host) in human

    bundle = tmp_path / "class.tgz"
    r = labctl("bundle", "export", str(bundle), "--set", str(set_path), cache=host)
    assert r.returncode == 0, r.stderr
    assert "2 image(s) not cached" in r.stderr and "4 entries" in r.stdout
    r = labctl("bundle", "import", str(bundle), "--json", cache=laptop)
    assert json.loads(r.stdout)["added"] == 4
    assert blobs_in(laptop) == blobs_in(host)
    r = labctl("bundle", "import", str(bundle), cache=laptop)
    assert "4 entries verified, 0 added (0.0 MB)" in r.stdout

    # an older pin lying around goes; the set's files stay
    stale = laptop / "blobs" / "sha256" / ("c" * 64)
    stale.write_bytes(b"kubeadm v1.27.15")
    r = labctl("cache", "prune", "--set", str(set_path), cache=laptop)
    assert r.returncode == 0 and not stale.exists() and len(blobs_in(laptop)) == 4
    r = labctl("cache", "prune", "--all", cache=laptop)
    assert r.returncode == 0 and blobs_in(laptop) == []


def test_failures_exit_12_with_the_cause(pin_set, artifact_server, tmp_path):
    _, set_path, _ = pin_set
    artifact_server.replies["/gh/calico.yaml"] = (404, b"Not Found")
    r = labctl("cache", "fetch", "--arch", "amd64", "--set", str(set_path), cache=tmp_path / "c")
    assert r.returncode == ExitCode.ARTIFACT_FAILED
    lines = r.stderr.strip().splitlines()
    assert any(line.startswith("labctl: error: calico-manifest v3.26.4: not found upstream (HTTP 404") for line in lines)
    assert lines[-1].startswith("hint: the file is gone from where this labctl pins it")
    assert "Traceback" not in r.stderr

    r = labctl("bundle", "export", str(tmp_path / "b.tar"), "--set", str(set_path), cache=tmp_path / "empty")
    assert r.returncode == ExitCode.ARTIFACT_FAILED and "labctl cache fetch" in r.stderr

    r = labctl("cache", "fetch", "--arch", "sparc", "--set", str(set_path), cache=tmp_path / "c")
    assert r.returncode == ExitCode.USAGE and "--arch 'sparc'" in r.stderr


def test_the_shipped_set_through_a_mirror_that_refuses_names_the_cause(tmp_path):
    """The real pin table, every base moved to a class mirror (LABCTL_MIRROR) on a closed
    loopback port: nothing leaves this machine, exit 12 says "refused", nothing is cached."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABCTL_CACHE_DIR": str(tmp_path / "c"),
           "LABCTL_MIRROR": f"http://127.0.0.1:{port}"}
    env.pop("LABCTL_ARTIFACT_SET", None)
    r = subprocess.run([sys.executable, "-m", "labctl", "cache", "fetch", "--arch", "amd64"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == ExitCode.ARTIFACT_FAILED, r.stderr
    assert "refused" in r.stderr and f"127.0.0.1:{port}/k8s/release/v1.27.16/" in r.stderr
    assert "Traceback" not in r.stderr
    blobs = tmp_path / "c" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def test_help_does_not_import_the_artifact_modules(tmp_path):
    probe = ("import sys; from labctl.cli import main\n"
             "try:\n    main(['cache', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('labctl.artifacts', 'filelock', 'yaml'))),"
             " file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.stderr.strip().splitlines()[-1] == "[]"


def test_cache_and_bundle_read_the_set_that_up_reads(pin_set, artifact_server, tmp_path, monkeypatch):
    """$LABCTL_ARTIFACT_SET (a class's own table) is the default of --set, as for `labctl up`."""
    _, set_path, _ = pin_set
    missing = tmp_path / "class-set.yaml"
    monkeypatch.setenv("LABCTL_ARTIFACT_SET", str(missing))
    r = labctl("cache", "prune", cache=tmp_path / "c")  # no download: only which set it reads
    assert r.returncode == ExitCode.ARTIFACT_FAILED and str(missing) in r.stderr, r.stderr
    monkeypatch.setenv("LABCTL_ARTIFACT_SET", str(set_path))
    r = labctl("cache", "fetch", "--arch", "amd64", "--json", cache=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["set"] == "test-1.27.16"
    assert sum(artifact_server.requests.values()) == 3
