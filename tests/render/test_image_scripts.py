"""The rendered images and kubeadm-init scripts, run for real with kubeadm and ctr as
stand-ins on PATH and their /etc and /var/lib paths moved into a scratch folder: which
images they pull (only what containerd lacks: an offline class has them all; by the
pinned digest where the set has one) and how a failed pull reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labctl.bootstrap import hints
from labctl.bootstrap.steps import EXIT_UNREACHABLE
from labctl.lab.paths import LabPaths
from labctl.render.lab import render_lab
from labctl.spec import default_spec

NEEDED = ["registry.k8s.io/kube-apiserver:v1.27.16", "registry.k8s.io/kube-controller-manager:v1.27.16",
          "registry.k8s.io/kube-scheduler:v1.27.16", "registry.k8s.io/kube-proxy:v1.27.16",
          "registry.k8s.io/pause:3.9", "registry.k8s.io/etcd:3.5.12-0", "registry.k8s.io/coredns/coredns:v1.10.1"]
DNS_FAILURE = ("ctr: failed to resolve reference \"registry.k8s.io/etcd:3.5.12-0\": failed to do request: Head "
               "\"https://registry.k8s.io/v2/etcd/manifests/3.5.12-0\": dial tcp: lookup registry.k8s.io on "
               "127.0.0.53:53: server misbehaving")


class InitRun:
    """One rendered kubeadm-init.sh with stand-ins that record their argv in calls.log."""

    def __init__(self, tmp_path: Path):
        paths = LabPaths(tmp_path / "lab")
        render_lab(default_spec(workers=1), paths)
        self.root = tmp_path / "node"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        (self.root / "etc/kubernetes/manifests").mkdir(parents=True)
        self.calls = tmp_path / "calls.log"
        self.have = tmp_path / "have.txt"
        self.have.write_text("")
        text = (paths.node_scripts("k8s-master") / "kubeadm-init.sh").read_text()
        assert text.count("/etc/labctl") >= 2 and "/etc/kubernetes/admin.conf" in text
        # Only paths move: every command of the script is the rendered one.
        text = text.replace("/etc/labctl", f"{self.root}/etc/labctl").replace("/etc/kubernetes", f"{self.root}/etc/kubernetes")
        self.script = tmp_path / "kubeadm-init.sh"
        self.script.write_text(text)
        listing = "\\n".join(NEEDED)
        self._stub("kubeadm", f"""
echo "kubeadm $*" >> {self.calls}
case "$1 $2 $3" in
  "config images list") printf '{listing}\\n' ;;
  "config images pull") echo "kubeadm config images pull must not run" >&2; exit 99 ;;
  init*) touch {self.root}/etc/kubernetes/admin.conf ;;
esac
""")
        self._stub("ctr", f"""
echo "ctr $*" >> {self.calls}
if [ "$3 $4" = "images ls" ]; then cat {self.have}; exit 0; fi
if [ "$3 $4" = "images pull" ] && [ -f {tmp_path}/pull-fails ]; then cat {tmp_path}/pull-fails >&2; exit 1; fi
""")
        self._stub("id", "exit 1\n")  # no vagrant user here: the script skips its ~/.kube/config

    def _stub(self, name: str, body: str) -> None:
        p = self.bin / name
        p.write_text("#!/bin/sh\n" + body)
        p.chmod(0o755)

    def run(self) -> subprocess.CompletedProcess:
        env = dict(os.environ, PATH=f"{self.bin}:{os.environ['PATH']}")
        return subprocess.run(["bash", str(self.script)], capture_output=True, text=True, env=env, timeout=30)

    def logged(self, prefix: str) -> list[str]:
        lines = self.calls.read_text().splitlines() if self.calls.exists() else []
        return [line for line in lines if line.startswith(prefix)]


@pytest.fixture
def init(tmp_path):
    return InitRun(tmp_path)


def test_with_every_image_in_containerd_no_registry_is_asked(init):
    init.have.write_text("\n".join(NEEDED + ["quay.io/calico/node:v3.26.4"]) + "\n")
    proc = init.run()
    assert proc.returncode == 0, proc.stderr
    assert init.logged("ctr -n k8s.io images pull") == []
    assert init.logged("kubeadm config images pull") == []
    assert "every control-plane image is in containerd: kubeadm init asks no registry" in proc.stdout
    init_calls = init.logged("kubeadm init")
    assert len(init_calls) == 1 and "--skip-token-print" in init_calls[0]
    assert (init.root / "etc/labctl/kubeadm-init.done").is_file()


def test_only_what_containerd_lacks_is_pulled(init):
    init.have.write_text("\n".join(r for r in NEEDED if "etcd" not in r) + "\n")
    proc = init.run()
    assert proc.returncode == 0, proc.stderr
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    assert init.logged("ctr -n k8s.io images pull") == [
        f"ctr -n k8s.io images pull --platform linux/{arch} registry.k8s.io/etcd:3.5.12-0"]
    assert "labctl: pulled registry.k8s.io/etcd:3.5.12-0" in proc.stdout


def test_a_failed_pull_stops_before_init_with_its_cause(init, tmp_path):
    (tmp_path / "pull-fails").write_text(DNS_FAILURE + "\n")
    proc = init.run()
    assert proc.returncode == EXIT_UNREACHABLE
    assert proc.stderr.strip().splitlines()[-1] == "labctl: cannot pull registry.k8s.io/kube-apiserver:v1.27.16 from k8s-master"
    assert DNS_FAILURE in proc.stderr
    assert init.logged("kubeadm init") == [] and not (init.root / "etc/labctl/kubeadm-init.done").exists()
    hint = hints.hint_for("k8s-master", proc.returncode, proc.stderr)
    assert hint and "DNS" in hint, hint


def test_a_kubeadm_that_cannot_list_its_images_stops_the_step(init):
    init._stub("kubeadm", "echo 'kubeadm: this is not a real kubeadm' >&2\nexit 3\n")
    proc = init.run()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "kubeadm: this is not a real kubeadm",
        "labctl: kubeadm could not list the control-plane images on k8s-master (see its output above)"]


def test_images_are_pulled_by_their_pinned_digest_and_named_by_their_tag(tmp_path):
    from labctl.bootstrap.artifacts import image_digests, load_for
    from labctl.bootstrap.steps import REMOTE_IMAGES, SHARED_IMAGES

    spec = default_spec(workers=1)
    paths = LabPaths(tmp_path / "lab")
    render_lab(spec, paths)
    images = tmp_path / "images"
    text = (paths.node_scripts("k8s-master") / "images.sh").read_text()
    assert REMOTE_IMAGES in text
    script = tmp_path / "images.sh"
    script.write_text(text.replace(REMOTE_IMAGES, str(images)))
    calls, bin_dir = tmp_path / "calls.log", tmp_path / "bin"
    bin_dir.mkdir()
    ctr = bin_dir / "ctr"
    ctr.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$3 $4" in
  "images ls") exit 0 ;;
  "images export") : > "$7" ;;
esac
""")
    ctr.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = calls.read_text().splitlines()
    pulls = [line.split()[-1] for line in lines if line.startswith("-n k8s.io images pull")]
    tags = [line.split()[-2:] for line in lines if line.startswith("-n k8s.io images tag")]
    digests = image_digests(load_for(spec), SHARED_IMAGES)
    assert digests["registry.k8s.io/pause:3.9"].startswith("sha256:")
    for ref in digests:  # the control plane's: by digest, then tagged
        by_digest = f"{ref.rsplit(':', 1)[0]}@{digests[ref]}"
        assert by_digest in pulls and ref not in pulls
        assert [by_digest, ref] in tags
    assert "quay.io/calico/node:v3.26.4" in pulls  # no published digest: by tag, not tagged again
    assert not [t for t in tags if t[1] == "quay.io/calico/node:v3.26.4"]
    exported = [line.split()[-1] for line in lines if line.startswith("-n k8s.io images export")]
    assert sorted(exported) == sorted(set(exported)) and "registry.k8s.io/pause:3.9" in exported
