"""The artifact set as data: loading, validation with one-line errors, URL resolution."""

from __future__ import annotations

import pytest
import yaml

from labctl.artifacts.model import ArtifactSet, arch_of, load_set, resolve_bases
from labctl.errors import ArtifactError, ExitCode
from tests.artifacts.conftest import make_files, sha, write_set


@pytest.fixture
def set_file(tmp_path):
    return write_set(tmp_path / "s.yaml", "https://mirror.example", make_files())


def test_files_resolve_bases_and_arch(set_file):
    s = ArtifactSet.load(set_file)
    files = make_files()
    amd = {a.id: a for a in s.files("amd64")}
    assert amd["kubeadm"].url == "https://mirror.example/k8s/release/v1.27.16/bin/linux/amd64/kubeadm"
    assert amd["kubeadm"].sha256 == sha(files["kubeadm-amd64"]) and amd["kubeadm"].arch == "amd64"
    assert amd["kubeadm"].size == len(files["kubeadm-amd64"])
    assert amd["kubeadm"].install == {"to": "/usr/bin/kubeadm", "mode": "0755"}
    assert amd["crictl"].arch is None and amd["crictl"].size == len(files["crictl"])
    assert amd["calico-manifest"].size is None
    arm = {a.id: a for a in s.files("arm64")}
    assert arm["kubeadm"].sha256 == sha(files["kubeadm-arm64"]) and "/arm64/" in arm["kubeadm"].url
    assert arm["crictl"] == amd["crictl"]  # arch-independent: the same artifact
    assert [i.key for i in s.images] == ["quay.io/calico/node:v3.26.4@sha256:" + "a" * 64,
                                         "docker.io/kubetm/p8000:latest"]
    assert s.total_size("amd64") is None  # the manifest has no pinned size


def test_total_size_when_every_size_is_pinned(tmp_path):
    files = make_files()
    raw = yaml.safe_load(write_set(tmp_path / "s.yaml", "https://x", files).read_text())
    raw["files"][2]["size"] = len(files["manifest"])
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    s = ArtifactSet.load(tmp_path / "s.yaml")
    assert s.total_size("arm64") == len(files["kubeadm-arm64"]) + len(files["crictl"]) + len(files["manifest"])


def test_mirror_env_and_explicit_bases(set_file, monkeypatch):
    s = ArtifactSet.load(set_file)
    monkeypatch.setenv("LABCTL_MIRROR", "http://class.lan/labctl/")
    urls = {a.id: a.url for a in s.files("amd64")}
    assert urls["kubeadm"] == "http://class.lan/labctl/k8s/release/v1.27.16/bin/linux/amd64/kubeadm"
    assert urls["crictl"] == "http://class.lan/labctl/github/crictl-v1.27.0.tar.gz"
    # explicit overrides win over the environment
    urls = {a.id: a.url for a in s.files("amd64", bases={"github": "http://127.0.0.1:9/gh"})}
    assert urls["crictl"] == "http://127.0.0.1:9/gh/crictl-v1.27.0.tar.gz"
    assert urls["kubeadm"].startswith("http://class.lan/labctl/k8s/")
    assert resolve_bases({"k8s": "https://dl.k8s.io/"}, env={}) == {"k8s": "https://dl.k8s.io"}


@pytest.mark.parametrize("machine,arch", [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"),
                                          ("arm64", "arm64"), ("ARM64", "arm64")])
def test_arch_of(machine, arch):
    assert arch_of(machine) == arch


def test_arch_of_unknown_is_an_artifact_error():
    with pytest.raises(ArtifactError, match="'riscv64' is not supported"):
        arch_of("riscv64")


def _broken(tmp_path, edit):
    raw = yaml.safe_load(write_set(tmp_path / "s.yaml", "https://x", make_files()).read_text())
    edit(raw)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ArtifactError) as info:
        ArtifactSet.load(p)
    msg = info.value.message
    assert "\n" not in msg and msg.startswith(f"{p}: ")
    assert info.value.exit_code == ExitCode.ARTIFACT_FAILED
    return msg[len(str(p)) + 2:]


def test_validation_names_the_field(tmp_path):
    def bad_hex(r):
        r["files"][0]["sha256"]["arm64"] = "abc"
    assert _broken(tmp_path, bad_hex).startswith("files[0] (kubeadm).sha256.arm64: expected 64")

    def unknown_key(r):
        r["files"][1]["sah256"] = "x"
    assert _broken(tmp_path, unknown_key).startswith("files[1].sah256: unknown key")

    def no_source(r):
        del r["files"][1]["source"]
    assert _broken(tmp_path, no_source).startswith("files[1] (crictl).source: required")

    def unknown_base(r):
        r["files"][1]["url"] = "{gthub}/x"
    assert _broken(tmp_path, unknown_base).startswith("files[1] (crictl).url: unknown base {gthub}")

    def arch_url_plain_sha(r):
        r["files"][1]["url"] = "{github}/{arch}/crictl"
    assert "needs one sha256 per arch" in _broken(tmp_path, arch_url_plain_sha)

    def dup(r):
        r["files"][2]["id"] = "crictl"
    assert _broken(tmp_path, dup) == "files[2].id: duplicate id 'crictl'"

    def schema(r):
        r["schema"] = 2
    assert _broken(tmp_path, schema) == "schema: expected 1, got 2"

    def image_digest(r):
        r["images"][0]["digest"] = "sha256:zz"
    assert _broken(tmp_path, image_digest).startswith("images[0] (quay.io/calico/node:v3.26.4).digest:")

    def version_number(r):
        r["kubernetes"] = 1.27
    assert _broken(tmp_path, version_number).startswith("kubernetes: required, a non-empty string")


def _set(r, path, value):
    *parents, last = path
    for k in parents:
        r = r[k]
    r[last] = value


@pytest.mark.parametrize("path, value, expected", [
    (("files", 1, "url"), "{github}/a}.bin", "files[1] (crictl).url: Single '}' encountered"),
    (("bases",), {1: "http://x"}, "bases.1: a base name is lower-case"),
    (("bases", "github"), "http://[::1", "bases.github: expected an http(s) URL with a host"),
    (("bases", "github"), "http://127.0.0.1:notaport", "bases.github: expected an http(s) URL with a host"),
    (("bases", "github"), "ftp://x", "bases.github: expected an http(s) URL"),
    # install entries end up in a root shell script on every node
    (("files", 0, "install"), {"to": "/usr/bin/kubeadm", "mode": 493}, "files[0] (kubeadm).install.mode: an octal mode"),
    (("files", 0, "install"), {"to": "/usr/bin/kubeadm", "mode": "0755 /etc/shadow"}, "install.mode: an octal mode"),
    (("files", 0, "install"), {"to": "relative/kubeadm"}, "install.to: an absolute path"),
    (("files", 0, "install"), {"to": "/usr/bin/../../etc/shadow"}, "install.to: an absolute path"),
    (("files", 0, "install"), {"to": ["/a", "/b"]}, "install.to: an absolute path"),
    (("files", 0, "install"), {"to": "/usr/bin/x; rm -rf /"}, "install.to: an absolute path without spaces"),
    (("files", 1, "install"), {"extract": "/usr/local/bin"}, "files[1] (crictl).install.provides: a non-empty list"),
    (("files", 1, "install"), {"extract": "/opt", "provides": ["/etc/passwd"]}, "install.provides: a non-empty list"),
    (("files", 1, "install"), {"unpack": "/opt"}, "files[1] (crictl).install.unpack: unknown key"),
])
def test_bad_urls_and_install_entries_name_the_field(tmp_path, path, value, expected):
    assert expected in _broken(tmp_path, lambda r: _set(r, path, value))


@pytest.mark.parametrize("mirror", ["garbage", "http://[::1", "http://127.0.0.1:notaport", "file:///tmp/x"])
def test_a_mirror_that_is_no_http_url_is_named(mirror):
    with pytest.raises(ArtifactError) as info:
        resolve_bases({"k8s": "https://dl.k8s.io"}, env={"LABCTL_MIRROR": mirror})
    assert info.value.message == f"LABCTL_MIRROR={mirror!r} is not an http(s) URL with a host"
    assert "LABCTL_MIRROR" in info.value.hint


def test_invalid_yaml_names_the_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("schema: 1\nfiles: [\n")
    with pytest.raises(ArtifactError, match=r"s\.yaml: line \d+ not valid YAML"):
        ArtifactSet.load(p)


def test_missing_arch_is_refused(tmp_path):
    raw = yaml.safe_load(write_set(tmp_path / "s.yaml", "https://x", make_files()).read_text())
    del raw["files"][0]["sha256"]["arm64"]
    del raw["files"][0]["size"]["arm64"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    s = ArtifactSet.load(tmp_path / "s.yaml")
    assert len(s.files("amd64")) == 3
    with pytest.raises(ArtifactError, match="file kubeadm has no arm64 build pinned"):
        s.files("arm64")


def test_load_set_by_path_and_unshipped_name(set_file):
    assert load_set(set_file).id == "test-1.27.16"
    with pytest.raises(ArtifactError, match="artifact set k8s-9.99.0 is not shipped") as info:
        load_set("k8s-9.99.0")
    assert "--set FILE" in info.value.hint
