"""Pinned files: host cache (downloaded once per host, from a loopback HTTP server with
a test pin table) -> real SSH sessions (streamed put_file) -> emulated nodes behind
real sshd, which install them on their own fs/ and record the commands."""

from __future__ import annotations

import hashlib

import pytest

from labctl.bootstrap.engine import StepFailed
from labctl.errors import ArtifactError, CommandFailed, LabError
from labctl.lab.paths import LabPaths
from labctl.remote.ssh import SSHSession
from tests.helpers.fake_node import stand_in_files

pytestmark = pytest.mark.slow

WORKER_FILES = ["kubeadm", "kubelet", "kubectl", "crictl", "cni-plugins", "containerd", "containerd-service", "runc",
                "kubelet-service", "kubeadm-dropin"]
MASTER_FILES = WORKER_FILES + ["calico-manifest", "metallb-manifest"]


@pytest.fixture
def up(engine_over_sshd):
    return engine_over_sshd


def _artifact_puts(node) -> int:
    return sum(1 for e in node.journal() if e["kind"] == "put-artifact")


def test_every_node_installs_the_pinned_files_and_the_host_downloads_each_once(fake_lab, up):
    lab = fake_lab(workers=2)
    result = up(lab).run()
    assert result.kubeconfig_changed
    served = stand_in_files("amd64")
    # one request per file of the set for this arch, for three nodes
    assert sorted(p.rsplit("/", 1)[1] for p in lab.pins.requests) == sorted(MASTER_FILES)
    for node in lab.nodes.values():
        for target, pid, mode in (("/usr/bin/kubeadm", "kubeadm", 0o755), ("/usr/bin/kubelet", "kubelet", 0o755),
                                  ("/usr/local/sbin/runc", "runc", 0o755),
                                  ("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "kubeadm-dropin", 0o644)):
            f = node.file(target)
            assert f.read_bytes() == served[pid][0], (node.name, target)
            assert f.stat().st_mode & 0o777 == mode
            assert node.file(f"/var/lib/labctl/installed/{pid}").read_text().strip() == hashlib.sha256(served[pid][0]).hexdigest()
        assert node.file("/usr/local/bin/ctr").exists() and node.file("/opt/cni/bin/portmap").exists()
        assert not list(node.file("/var/lib/labctl/artifacts").iterdir())  # installed, then removed
        want = MASTER_FILES if node.role == "master" else WORKER_FILES
        assert _artifact_puts(node) == len(want), node.name
        cmds = node.commands("kube-packages")
        assert ["apt-get", "install", "-y", "-q", "--no-install-recommends", "conntrack", "socat", "ebtables", "ethtool"] in cmds
        assert cmds[-2:] == [["systemctl", "daemon-reload"], ["systemctl", "enable", "kubelet"]]
        assert any(c[:4] == ["install", "-D", "-m", "0755"] and c[-1] == "/usr/bin/kubeadm" for c in cmds)
        assert ["systemctl", "restart", "containerd"] in node.commands("containerd")
    # Calico applied with quay.io images, from the pinned manifest
    applied = lab.master.file("/var/lib/labctl/calico.yaml").read_text()
    assert "image: quay.io/calico/node:v3.26.4" in applied and "docker.io" not in applied

    # a second run and a second lab on this host: no download, no push
    before = len(lab.pins.requests)
    assert up(lab).run().ran == []
    assert all(_artifact_puts(n) == len(MASTER_FILES if n.role == "master" else WORKER_FILES) for n in lab.nodes.values())
    other = fake_lab(workers=1)
    up(other).run()
    assert len(lab.pins.requests) == before


def test_a_file_already_on_the_node_is_not_pushed_again(fake_lab, up):
    lab = fake_lab(workers=0)
    data = stand_in_files("amd64")["kubeadm"][0]
    blob = lab.master.file(f"/var/lib/labctl/artifacts/{hashlib.sha256(data).hexdigest()}")
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    up(lab).run()
    assert _artifact_puts(lab.master) == len(MASTER_FILES) - 1
    assert lab.master.file("/usr/bin/kubeadm").read_bytes() == data


def test_a_damaged_copy_on_the_node_fails_with_its_cause_and_is_pushed_again(fake_lab, up):
    lab = fake_lab(workers=0)
    sha = hashlib.sha256(stand_in_files("amd64")["kubelet"][0]).hexdigest()
    blob = lab.master.file(f"/var/lib/labctl/artifacts/{sha}")
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"half a kubelet")
    with pytest.raises(StepFailed) as exc:
        up(lab).run()
    err = exc.value
    assert (err.node, err.step) == ("k8s-master", "kube-packages")
    assert "checksum mismatch" in "\n".join(err.evidence)
    assert "does not match its pinned sha256" in err.hint
    assert not blob.exists()  # removed by the step, so the next run pushes a good copy
    up(lab).run()
    assert lab.master.file("/usr/bin/kubelet").read_bytes() == stand_in_files("amd64")["kubelet"][0]


def test_a_file_the_host_cannot_verify_stops_the_step_naming_it(fake_lab, up):
    lab = fake_lab(workers=0)
    served = lab.pins.root / "served" / "amd64" / "runc"
    served.write_bytes(b"not the pinned runc")
    with pytest.raises(ArtifactError) as exc:
        up(lab).run()
    assert "step containerd on k8s-master" in exc.value.message and "runc" in exc.value.message
    assert "checksum mismatch" in exc.value.message
    assert not lab.master.file("/usr/local/sbin/runc").exists()


def test_put_file_streams_and_refuses_a_wrong_digest(fake_lab, tmp_path):
    lab = fake_lab(workers=0)
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for i in range(64):
            fh.write(hashlib.sha256(str(i).encode()).digest() * 8192)  # 16 MiB
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    paths = LabPaths(lab.dir)
    with SSHSession(lab.master.sshd.target("k8s-master"), known_hosts=paths.known_hosts, log_path=paths.node_log("m")) as s:
        s.connect(10)
        s.put_file(big, "/var/lib/labctl/artifacts/x", sha256=digest, sudo=True)
        assert lab.master.file("/var/lib/labctl/artifacts/x").read_bytes() == big.read_bytes()
        with pytest.raises(CommandFailed) as exc:
            s.put_file(big, "/var/lib/labctl/artifacts/y", sha256="0" * 64, sudo=True)
        assert exc.value.rc == 4 and "checksum mismatch" in str(exc.value.evidence)
        assert not lab.master.file("/var/lib/labctl/artifacts/y").exists()
    assert isinstance(exc.value, LabError)


SHARED = ["quay.io/calico/node:v3.26.4", "quay.io/metallb/speaker:v0.13.12", "docker.io/kubetm/p8000:latest",
          "registry.k8s.io/pause:3.9"]


def _pulls(node) -> list[str]:
    return [c[-1] for c in node.commands("images") if c[3:5] == ["images", "pull"]]


def _imports(node) -> int:
    return sum(1 for c in node.commands("images") if c[3:5] == ["images", "import"])


def test_images_are_pulled_once_per_lab_and_once_per_host(fake_lab, up):
    from labctl.artifacts.cache import Cache

    lab = fake_lab(workers=2)
    up(lab).run()
    assert sorted(_pulls(lab.master)) == sorted(SHARED)  # the control plane's too: a bundle carries them
    for w in lab.workers:
        assert _pulls(w) == [] and _imports(w) == len(SHARED)
        assert sorted(w.state()["images"]) == sorted(SHARED)
    cache = Cache(lab.pins.cache_dir)
    # Filed for the nodes' architecture (an export holds one platform), not for any node.
    arch = lab.master.state().get("arch", "amd64")
    assert all(cache.image_path(ref, None, arch) is not None for ref in SHARED)
    other = "arm64" if arch == "amd64" else "amd64"
    assert all(cache.image_path(ref, None, other) is None for ref in SHARED)
    assert {(e.id, e.arch) for e in cache.list() if e.kind == "image"} == {(ref, arch) for ref in SHARED}  # `labctl cache`
    assert not list(lab.master.file("/var/lib/labctl/images/export").iterdir())  # collected, then removed

    other = fake_lab(workers=1)  # the next lab on this host pulls nothing
    up(other).run()
    assert all(_pulls(n) == [] for n in other.nodes.values())
    assert all(_imports(n) == len(SHARED) for n in other.nodes.values())


def test_a_docker_hub_rate_limit_is_told_as_such(fake_lab, up):
    lab = fake_lab(workers=1)
    lab.master.update(pull_fail={"docker.io": (
        "ctr: failed to copy: httpReadSeeker: failed open: unexpected status code "
        "https://registry-1.docker.io/v2/kubetm/p8000/manifests/latest: 429 Too Many Requests - Server message: "
        "toomanyrequests: You have reached your pull rate limit.")})
    with pytest.raises(StepFailed) as exc:
        up(lab).run()
    assert (exc.value.node, exc.value.step) == ("k8s-master", "images")
    assert exc.value.rc == 75
    assert "rate-limited" in exc.value.hint and "Docker Hub" in exc.value.hint
    # the worker waited for the master's pull and did not pull from Docker Hub itself
    assert _pulls(lab.nodes["k8s-node1"]) == []


def _seed_images(node, *refs: str) -> None:
    """The node's containerd already has ``refs`` (pulled by hand, or by an earlier lab
    whose host cache was pruned since)."""
    import json

    st = node.state()
    st["images"] = sorted(set(st.get("images", [])) | set(refs))
    node.file("/").parent.joinpath("state.json").write_text(json.dumps(st))


def test_an_image_only_another_node_has_is_exported_there_not_pulled(fake_lab, up):
    from labctl.artifacts.cache import Cache

    lab = fake_lab(workers=2)
    seeded = "docker.io/kubetm/p8000:latest"
    _seed_images(lab.master, seeded)
    up(lab).run()
    assert seeded not in _pulls(lab.master)  # the master had it
    assert sorted(_pulls(lab.master)) == sorted(r for r in SHARED if r != seeded)
    exports = [c for c in lab.master.commands("engine") if c[3:5] == ["images", "export"]]
    assert len(exports) == 1 and exports[0][-1] == seeded and exports[0][5:7] == ["--platform", "linux/amd64"]
    for w in lab.workers:  # both workers imported the master's export; neither pulled
        assert _pulls(w) == [] and seeded in w.state()["images"] and _imports(w) == len(SHARED)
    assert Cache(lab.pins.cache_dir).image_path(seeded, None, "amd64") is not None  # kept for the next lab
    assert not list(lab.master.file("/var/lib/labctl/images/export").iterdir())


def test_a_failed_export_on_the_holder_stops_the_run_with_its_evidence(fake_lab, up):
    lab = fake_lab(workers=1)
    seeded = "docker.io/kubetm/p8000:latest"
    _seed_images(lab.master, seeded)
    lab.master.fail_command("export", rc=1, output="ctr: failed to get reader: content digest sha256:0f1e: not found")
    with pytest.raises(CommandFailed) as exc:
        up(lab).run()
    assert exc.value.where == "k8s-master" and exc.value.rc == 1
    assert "exporting docker.io/kubetm/p8000:latest for k8s-node1" in exc.value.message
    assert any("content digest sha256:0f1e: not found" in line for line in exc.value.evidence)
    assert "labctl ssh k8s-master" in exc.value.hint
    assert seeded not in lab.nodes["k8s-node1"].state().get("images", [])


def test_a_lab_from_a_class_bundle_downloads_and_pulls_nothing(fake_lab, up, pin_server, tmp_path, monkeypatch):
    """The instructor's lab fills a host cache (files and the images its master pulled);
    its bundle brings a student's host, whose cache is empty, a lab with no request to the
    artifact server and no image pull on any node."""
    from labctl.artifacts.api import bundle_export, bundle_import

    teacher = fake_lab(workers=1, name="teacher")
    up(teacher).run()
    assert sorted(_pulls(teacher.master)) == sorted(SHARED)
    bundle = tmp_path / "class.tar"
    bundle_export(bundle, arch="amd64", set_name=pin_server.set_path, cache_dir=pin_server.cache_dir)

    student_cache = tmp_path / "student-cache"
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(student_cache))
    bundle_import(bundle, cache_dir=student_cache)
    requests_before = len(pin_server.requests)
    student = fake_lab(workers=2, name="student")
    up(student).run()
    assert pin_server.requests[requests_before:] == []
    for node in student.nodes.values():
        assert _pulls(node) == [] and _imports(node) == len(SHARED), node.name
        assert sorted(node.state()["images"]) == sorted(SHARED)
