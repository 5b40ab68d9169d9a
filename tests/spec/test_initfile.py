"""`labctl init`: lab.yaml spells out every default, with a comment per field, and
parses back to exactly the default spec."""

from __future__ import annotations

import dataclasses
import os

import pytest
import yaml

from labctl.spec.initfile import spec_yaml
from labctl.spec import LabSpec, Node, default_spec, load_spec, spec_from_dict
from labctl.errors import ExitCode
from tests.spec.cli import run_cli


@pytest.mark.parametrize("workers", [0, 1, 2, 5, 9])
def test_round_trip_gives_exactly_the_default_spec(workers):
    spec = default_spec(workers=workers, name="class-a")
    assert spec_from_dict(yaml.safe_load(spec_yaml(spec))) == spec


def _leaf_paths(cls, prefix=""):
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            yield from _leaf_paths(f.default_factory, f"{prefix}{f.name}.")
        elif f.name != "nodes":
            yield f"{prefix}{f.name}"


def test_every_field_is_spelled_out_with_a_comment():
    text = spec_yaml(default_spec())
    data = yaml.safe_load(text)
    paths = list(_leaf_paths(LabSpec))
    assert "libvirt.cpu_model" in paths and "network.vbox_networks_conf_allows" in paths
    for path in paths:
        section, _, key = path.rpartition(".")
        assert key in (data[section] if section else data), path
        line = next(l for l in text.splitlines() if l.strip().startswith(f"{key}:"))
        assert "  # " in line, f"{path} has no comment: {line!r}"
    node_keys = {f.name for f in dataclasses.fields(Node)}
    for node in data["nodes"]:
        assert set(node) == node_keys
    for key in ("name", "role", "ip"):
        line = next(l for l in text.splitlines() if l.strip().lstrip("- ").startswith(f"{key}:") and "nodes" not in l and l.startswith("  "))
        assert "  # " in line


def test_init_writes_the_file_and_refuses_to_overwrite(tmp_path, capsys):
    res = run_cli(capsys, "-C", str(tmp_path), "init", "--nodes", "1", "--name", "lab-one")
    assert res.code == 0, res.err
    path = tmp_path / "lab.yaml"
    assert load_spec(tmp_path) == default_spec(workers=1, name="lab-one")
    assert "wrote" in res.out and "k8s-node1" in res.out
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    before = path.read_bytes()

    res = run_cli(capsys, "-C", str(tmp_path), "init", "--nodes", "3")
    assert res.code == ExitCode.USAGE
    assert "lab.yaml already exists" in res.err and "--force" in res.err
    assert path.read_bytes() == before

    res = run_cli(capsys, "-C", str(tmp_path), "init", "--nodes", "3", "--force")
    assert res.code == 0, res.err
    assert "replaced" in res.out
    assert load_spec(tmp_path) == default_spec(workers=3)
    assert [p.name for p in tmp_path.iterdir()] == ["lab.yaml"]  # no temp file left behind


def test_init_creates_the_lab_folder(tmp_path, capsys):
    lab = tmp_path / "new" / "lab"
    res = run_cli(capsys, "-C", str(lab), "init", "--json")
    assert res.code == 0, res.err
    import json

    out = json.loads(res.out)
    assert out["ok"] and out["nodes"] == ["k8s-master", "k8s-node1", "k8s-node2"]
    assert (lab / "lab.yaml").is_file()


def test_init_with_no_workers_warns_about_the_course(tmp_path, capsys):
    res = run_cli(capsys, "-C", str(tmp_path), "init", "--nodes", "0")
    assert res.code == 0
    assert "warning: no node named k8s-node1" in res.err


def test_labctl_dir_env_is_the_default_lab_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LABCTL_DIR", str(tmp_path))
    monkeypatch.chdir(os.sep)
    res = run_cli(capsys, "init")
    assert res.code == 0, res.err
    assert (tmp_path / "lab.yaml").is_file()


def test_the_default_box_follows_the_hosts_cpu():
    from labctl.host.boxes import default_box
    from labctl.spec.defaults import host_default_box
    from labctl.spec.model import Box

    arm = host_default_box("virtualbox", "arm64")
    intel = host_default_box("virtualbox", "x86_64")
    assert (arm.name, arm.version) == (default_box("virtualbox", "arm64").name, default_box("virtualbox", "arm64").version)
    assert (intel.name, intel.version) == ("bento/ubuntu-22.04", "202401.31.0")
    assert arm != intel
    # No verified box for the pair: the model's default stands.
    assert host_default_box("libvirt", "arm64") == Box()
