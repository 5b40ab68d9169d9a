"""pytest plugin: a whole lab of fake nodes behind real sshd servers (``fake_lab``).

Each node is a real OpenSSH server on loopback (tests/helpers/sshd.py) whose
ForceCommand is tests/helpers/fake_node_shell.py with the node's own state folder: it
emulates the node's OS (facts, step scripts, kubeadm, kubectl) without running
anything on this machine. The `vagrant` stand-in (tests/helpers/fake_vagrant.py)
answers `ssh-config` with those servers, and a stand-in `VBoxManage` (VirtualBox
cannot run here) lets `labctl doctor` pass. So `labctl up` runs for real: real
Vagrant CLI parsing, real paramiko sessions, real uploads; only the VMs are fake.

    def test_x(fake_lab):
        lab = fake_lab(workers=2)
        lab.nodes["k8s-node1"].fail("containerd", rc=100, output="E: Unable to locate package containerd")
        r = lab.labctl("up")
        assert r.returncode == 6
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SHELL = Path(__file__).resolve().parent / "fake_node_shell.py"
# The node shell needs only the standard library: the system Python without site
# packages starts in half the time, and every remote command starts one.
NODE_PYTHON = "/usr/bin/python3 -S" if Path("/usr/bin/python3").exists() else f"{sys.executable} -S"
REPO = Path(__file__).resolve().parents[2]

_FAKE_VBOXMANAGE = """#!/bin/sh
# Stand-in for VirtualBox's CLI: only `--version`, which is all `labctl doctor` asks.
case "$1" in
  --version|-v) echo 7.0.14r161095 ;;
  *) echo "VBoxManage: error: this is a test stand-in; VirtualBox cannot run here" >&2; exit 1 ;;
esac
"""


# ------------------------------------------------------------------ a test pin table

# Stand-ins with the real set's ids and install entries: small, made here, so their
# checksums are real and no byte of another project is needed.
DROPIN = """[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
CALICO = """kind: DaemonSet
spec:
  template:
    spec:
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.26.4
          env:
            # - name: CALICO_IPV4POOL_CIDR
            #   value: "192.168.0.0/16"
"""


def _tgz(members: dict[str, bytes]) -> bytes:
    import gzip

    buf = io.BytesIO()
    # mtime=0 in the gzip header too: the same members always make the same bytes
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tool(name: str, arch: str) -> bytes:
    return f"#!/bin/sh\necho 'labctl test stand-in: {name} v1.27.16 {arch}, not Kubernetes' >&2\nexit 1\n".encode()


def stand_in_files(arch: str) -> dict[str, tuple[bytes, dict]]:
    """id -> (bytes, install), for one arch."""
    return {
        "kubeadm": (_tool("kubeadm", arch), {"to": "/usr/bin/kubeadm", "mode": "0755"}),
        "kubelet": (_tool("kubelet", arch), {"to": "/usr/bin/kubelet", "mode": "0755"}),
        "kubectl": (_tool("kubectl", arch), {"to": "/usr/bin/kubectl", "mode": "0755"}),
        "crictl": (_tgz({"crictl": _tool("crictl", arch)}), {"extract": "/usr/local/bin", "provides": ["crictl"]}),
        "cni-plugins": (_tgz({f"./{p}": _tool(p, arch) for p in ("bridge", "host-local", "loopback", "portmap")}),
                        {"extract": "/opt/cni/bin", "provides": ["bridge", "host-local", "loopback", "portmap"]}),
        "containerd": (_tgz({f"bin/{p}": _tool(p, arch) for p in ("containerd", "containerd-shim-runc-v2", "ctr")}),
                       {"extract": "/usr/local", "provides": ["bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr"]}),
        "containerd-service": (b"[Service]\nExecStart=/usr/local/bin/containerd\n",
                               {"to": "/etc/systemd/system/containerd.service", "mode": "0644"}),
        "runc": (_tool("runc", arch), {"to": "/usr/local/sbin/runc", "mode": "0755"}),
        "kubelet-service": (b"[Service]\nExecStart=/usr/bin/kubelet\n", {"to": "/etc/systemd/system/kubelet.service", "mode": "0644"}),
        "kubeadm-dropin": (DROPIN.encode(), {"to": "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "mode": "0644"}),
        "calico-manifest": (CALICO.encode(), {"to": "/var/lib/labctl/manifests/calico.yaml", "mode": "0644"}),
        "metallb-manifest": (b"kind: Namespace\nmetadata:\n  name: metallb-system\n",
                             {"to": "/var/lib/labctl/manifests/metallb-native.yaml", "mode": "0644"}),
    }


TEST_IMAGES = [("quay.io/calico/node:v3.26.4", "calico"), ("quay.io/metallb/speaker:v0.13.12", "metallb"),
               ("docker.io/kubetm/p8000:latest", "course"), ("registry.k8s.io/pause:3.9", "control-plane")]
ARCH_INDEPENDENT = {"containerd-service", "kubelet-service", "kubeadm-dropin", "calico-manifest", "metallb-manifest"}


def write_pin_table(root: Path, base_url: str, files: Callable[[str], dict] = stand_in_files,
                    images: list[tuple[str, str]] | None = None) -> Path:
    """Files under root/served/<arch>/<id> and the set that pins them (root/set.yaml);
    ``images``: (ref, used_by) pairs (default TEST_IMAGES)."""
    import yaml

    entries = []
    for pid, (_, install) in files("amd64").items():
        shas = {}
        for arch in ("amd64", "arm64"):
            data = files(arch)[pid][0]
            folder = root / "served" / ("any" if pid in ARCH_INDEPENDENT else arch)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / pid).write_bytes(data)
            shas[arch] = hashlib.sha256(data).hexdigest()
        if pid in ARCH_INDEPENDENT:
            version = {"calico-manifest": "v3.26.4", "metallb-manifest": "v0.13.12"}.get(pid, "test")
            entries.append({"id": pid, "version": version, "url": f"{{test}}/any/{pid}", "sha256": shas["amd64"],
                            "source": "made by the test", "install": install})
        else:
            entries.append({"id": pid, "version": "v1.27.16-test", "url": f"{{test}}/{{arch}}/{pid}", "sha256": shas,
                            "source": "made by the test", "install": install})
    images = [{"ref": ref, "digest": None, "used_by": group, "source": "made by the test"}
              for ref, group in (TEST_IMAGES if images is None else images)]
    doc = {"schema": 1, "id": "k8s-test", "kubernetes": "1.27.16", "bases": {"test": base_url}, "files": entries,
           "images": images}
    path = root / "set.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@dataclass
class PinServer:
    """A loopback HTTP server with a test pin table; the environment points labctl at
    it ($LABCTL_ARTIFACT_SET) and at a fresh host cache ($LABCTL_CACHE_DIR)."""

    root: Path
    set_path: Path = field(init=False)
    cache_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(self.root / "served")))
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="pin-server")
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.set_path = write_pin_table(self.root, self.url)
        self.cache_dir = self.root / "host-cache"

    @property
    def requests(self) -> list[str]:
        return list(self.httpd.requests)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def pin_server(tmp_path_factory, monkeypatch) -> Iterator[PinServer]:
    server = PinServer(tmp_path_factory.mktemp("pins"))
    monkeypatch.setenv("LABCTL_ARTIFACT_SET", str(server.set_path))
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(server.cache_dir))
    monkeypatch.delenv("LABCTL_MIRROR", raising=False)
    try:
        yield server
    finally:
        server.close()


class FakeNode:
    def __init__(self, root: Path, name: str, role: str, ip: str, lab: str):
        self.dir = root
        self.name = name
        self.role = role
        self.ip = ip
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_conf({"name": name, "role": role, "ip": ip, "lab": lab})
        self.sshd = None

    # -- configuration (read by the node's shell on every command) -----------------------

    def conf(self) -> dict:
        return json.loads((self.dir / "node.json").read_text())

    def _write_conf(self, conf: dict) -> None:
        tmp = self.dir / "node.json.tmp"
        tmp.write_text(json.dumps(conf, indent=1))
        os.replace(tmp, self.dir / "node.json")

    def update(self, **kw) -> None:
        conf = self.conf()
        conf.update(kw)
        self._write_conf(conf)

    def fail(self, step: str, *, rc: int = 1, output: str = "labctl: injected failure", times: int = 1) -> None:
        """The step's script fails ``times`` times (then works) with ``output`` and ``rc``."""
        conf = self.conf()
        conf.setdefault("fail", {})[step] = {"rc": rc, "output": output, "times": times}
        self._write_conf(conf)

    def fail_command(self, kind: str, *, rc: int = 1, output: str = "injected failure", times: int = 1) -> None:
        """A non-step command fails: kind token, ca-hash, admin.conf, kubectl or export (ctr images export)."""
        conf = self.conf()
        conf.setdefault("fail_commands", {})[kind] = {"rc": rc, "output": output, "times": times}
        self._write_conf(conf)

    def clear_failures(self) -> None:
        self.update(fail={}, fail_commands={})

    def delay(self, seconds: float, step: str | None = None) -> None:
        """Every step (or one step) takes ``seconds`` (a modeled step time)."""
        conf = self.conf()
        if step is None:
            conf["delay"] = seconds
        else:
            conf.setdefault("delays", {})[step] = seconds
        self._write_conf(conf)

    # -- what happened on the node -------------------------------------------------------

    def state(self) -> dict:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except FileNotFoundError:
            return {"done": [], "tokens": [], "failures_used": {}}

    def done_steps(self) -> list[str]:
        return list(self.state()["done"])

    def journal(self) -> list[dict]:
        path = self.dir / "journal.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def step_runs(self) -> list[dict]:
        return [e for e in self.journal() if e["kind"] == "step"]

    def file(self, remote_path: str) -> Path:
        return self.dir / "fs" / remote_path.lstrip("/")

    def commands(self, step: str | None = None) -> list[list[str]]:
        """What steps would have run on a real node (recorded, never executed)."""
        path = self.dir / "commands.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r["argv"] for r in rows if step is None or r["step"] == step]

    def mark_done(self, *steps: str) -> None:
        """Pretend these steps ran before (a node prepared by hand)."""
        st = self.state()
        st["done"] = list(dict.fromkeys([*st["done"], *steps]))
        (self.dir / "state.json").write_text(json.dumps(st))


class EmulatedNodes:
    """What a test asks of a lab's emulated nodes (``self.nodes``), whichever transport
    reaches them (FakeLab: real sshd; tests/helpers/memory_lab.py: MemorySession)."""

    nodes: dict[str, FakeNode]

    @property
    def master(self) -> FakeNode:
        return next(n for n in self.nodes.values() if n.role == "master")

    @property
    def workers(self) -> list[FakeNode]:
        return [n for n in self.nodes.values() if n.role == "worker"]

    def all_step_runs(self) -> list[tuple[str, dict]]:
        return sorted(((n.name, e) for n in self.nodes.values() for e in n.step_runs()), key=lambda x: x[1]["start"])

    def join_tokens(self) -> list[str]:
        """Tokens the master handed out with `kubeadm token create` (one per join)."""
        return list(self.master.state()["tokens"])

    def init_tokens(self) -> list[str]:
        """The default token `kubeadm init` made (printed unless --skip-token-print)."""
        return list(self.master.state().get("init_tokens", []))


@dataclass
class FakeLab(EmulatedNodes):
    dir: Path
    nodes: dict[str, FakeNode]
    fake_vagrant: object
    pins: PinServer | None = None

    @property
    def env(self) -> dict[str, str]:
        """The test's environment now (fake_vagrant.fail() etc. change it), for the CLI."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def labctl(self, *args: str, timeout: float = 120.0, input: str | None = None) -> subprocess.CompletedProcess:
        """Run the real CLI in a subprocess (no terminal), in this lab's folder."""
        return subprocess.run(
            [sys.executable, "-m", "labctl", "--dir", str(self.dir), *args],
            capture_output=True, text=True, timeout=timeout, env=self.env, input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "labctl", "--dir", str(self.dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=self.env,
        )



@pytest.fixture
def fake_lab(sshd_factory, fake_vagrant, pin_server, tmp_path_factory, monkeypatch) -> Iterator[Callable[..., FakeLab]]:
    made: list[FakeLab] = []

    def make(workers: int = 2, *, delay: float = 0.0, name: str | None = None, write_spec: bool = False) -> FakeLab:
        from labctl.spec.initfile import init_lab
        from labctl.lab.paths import LabPaths
        from labctl.spec import default_spec

        base = tmp_path_factory.mktemp("fakelab")
        lab_dir = base / "lab"
        lab_dir.mkdir()
        spec = default_spec(workers, name=name)
        if write_spec or workers != 2 or name:
            init_lab(LabPaths(lab_dir), workers=workers, name=name)
        bindir = base / "bin"
        bindir.mkdir()
        (bindir / "VBoxManage").write_text(_FAKE_VBOXMANAGE)
        (bindir / "VBoxManage").chmod(0o755)
        home = base / "home"
        home.mkdir()
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("LABCTL_DIR", raising=False)
        monkeypatch.delenv("KUBECONFIG", raising=False)
        nodes = {}
        for node in spec.nodes:
            fake = FakeNode(base / "cluster" / node.name, node.name, node.role, node.ip, spec.name)
            if delay:
                fake.delay(delay)
            fake.sshd = sshd_factory(force_command=f"{NODE_PYTHON} {SHELL} {fake.dir}")
            fake_vagrant.set_target(fake.sshd.target(node.name))
            nodes[node.name] = fake
        fake_vagrant.watch(lab_dir)
        lab = FakeLab(lab_dir, nodes, fake_vagrant, pin_server)
        made.append(lab)
        return lab

    yield make
