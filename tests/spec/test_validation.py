"""Every validation rule of the lab spec: the bad value, the field named in the
one-line message, a hint, exit code SPEC_INVALID, and nothing written to the lab."""

from __future__ import annotations

import copy

import pytest

from labctl.errors import ExitCode
from tests.spec.cli import default_dict, lab_files, run_cli, write_lab


def _set(path: str, value):
    def mutate(d: dict) -> None:
        keys = path.replace("]", "").replace("[", ".").split(".")
        target = d
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


_DELETE = object()


def _nodes(*ips, roles=None, mem=2048):
    roles = roles or ["master"] + ["worker"] * (len(ips) - 1)
    names = ["k8s-master"] + [f"k8s-node{i}" for i in range(1, len(ips))]
    return [{"name": n, "role": r, "ip": ip, "cpus": 2, "memory": mem} for n, r, ip in zip(names, roles, ips)]


# (id, mutation, text the message must contain)
RULES = [
    ("name-invalid", _set("name", "K8s_Lab"), "name:"),
    ("provider", _set("provider", "hyperv"), "provider:"),
    ("box-name-empty", _set("box.name", " "), "box.name:"),
    ("box-version-empty", _set("box.version", ""), "box.version:"),
    ("k8s-unsupported-minor", _set("kubernetes.version", "1.28.0"), "kubernetes.version:"),
    ("k8s-unknown-patch", _set("kubernetes.version", "1.27.99"), "kubernetes.version:"),
    ("k8s-float", _set("kubernetes.version", 1.27), "kubernetes.version:"),
    ("calico-not-a-version", _set("calico.version", "3.26"), "calico.version:"),
    ("calico-untested", _set("calico.version", "v3.27.0"), "calico.version:"),
    ("metallb-not-a-version", _set("metallb.version", "latest"), "metallb.version:"),
    ("host-only-not-cidr", _set("network.host_only", "192.168.56.1/24"), "network.host_only:"),
    ("host-only-ipv6", _set("network.host_only", "fd00::/64"), "network.host_only:"),
    ("host-only-outside-vbox", _set("network.host_only", "10.10.0.0/24"), "network.host_only:"),
    ("host-only-too-small", _set("network.host_only", "192.168.56.0/30"), "network.host_only:"),
    ("pod-cidr-bad", _set("network.pod_cidr", "20.96.0.0/99"), "network.pod_cidr:"),
    ("pod-overlaps-host", _set("network.pod_cidr", "192.168.56.0/25"), "network.pod_cidr"),
    ("service-overlaps-pod", _set("network.service_cidr", "20.96.0.0/16"), "network.service_cidr"),
    ("service-overlaps-vbox-nat", _set("network.service_cidr", "10.0.0.0/16"), "network.service_cidr: "),
    ("role-invalid", _set("nodes[1].role", "boss"), "nodes[1].role:"),
    ("node-name-invalid", _set("nodes[1].name", "Node_1"), "nodes[1].name:"),
    ("node-name-duplicate", _set("nodes[2].name", "k8s-node1"), "nodes[2].name:"),
    ("node-ip-invalid", _set("nodes[1].ip", "192.168.56.300"), "nodes[1].ip:"),
    ("node-ip-ipv6", _set("nodes[1].ip", "fd00::31"), "nodes[1].ip:"),
    ("node-ip-outside", _set("nodes[1].ip", "192.168.57.31"), "nodes[1].ip:"),
    ("node-ip-network-address", _set("nodes[1].ip", "192.168.56.0"), "nodes[1].ip:"),
    ("node-ip-broadcast", _set("nodes[1].ip", "192.168.56.255"), "nodes[1].ip:"),
    ("node-ip-host-address", _set("nodes[1].ip", "192.168.56.1"), "nodes[1].ip:"),
    ("node-ip-duplicate", _set("nodes[2].ip", "192.168.56.31"), "nodes[2].ip:"),
    ("node-cpus-zero", _set("nodes[2].cpus", 0), "nodes[2].cpus:"),
    ("node-memory-tiny", _set("nodes[2].memory", 256), "nodes[2].memory:"),
    ("master-cpus", _set("nodes[0].cpus", 1), "nodes[0].cpus:"),
    ("master-memory", _set("nodes[0].memory", 1024), "nodes[0].memory:"),
    ("course-node-memory", _set("nodes[1].memory", 1024), "nodes[1].memory:"),
    ("two-masters", _set("nodes[1].role", "master"), "nodes:"),
    ("no-master", _set("nodes[0].role", "worker"), "nodes:"),
    ("too-many-workers", _set("nodes", _nodes(*[f"192.168.56.{30 + i}" for i in range(11)])), "nodes:"),
    ("nodes-empty", _set("nodes", []), "nodes:"),
    ("nodes-not-list", _set("nodes", "k8s-master"), "nodes:"),
    ("node-not-mapping", _set("nodes[1]", "k8s-node1"), "nodes[1]:"),
    ("node-ip-missing", _set("nodes[1].ip", _DELETE), "nodes[1].ip:"),
    ("node-name-missing", _set("nodes[1].name", _DELETE), "nodes[1].name:"),
    ("pool-not-range", _set("metallb.pool", "192.168.56.200"), "metallb.pool:"),
    ("pool-descending", _set("metallb.pool", "192.168.56.220-192.168.56.200"), "metallb.pool:"),
    ("pool-ipv6", _set("metallb.pool", "fd00::200-fd00::220"), "metallb.pool:"),
    ("pool-outside", _set("metallb.pool", "192.168.60.200-192.168.60.220"), "metallb.pool:"),
    ("pool-has-host", _set("metallb.pool", "192.168.56.1-192.168.56.10"), "metallb.pool:"),
    ("pool-has-node", _set("metallb.pool", "192.168.56.25-192.168.56.35"), "metallb.pool:"),
    ("unknown-top-key", _set("nodez", []), "nodez: unknown key"),
    ("unknown-section-key", _set("network.pod_cidrs", "20.96.0.0/12"), "network.pod_cidrs: unknown key"),
    ("unknown-node-key", _set("nodes[0].mem", 2048), "nodes[0].mem: unknown key"),
    ("name-not-string", _set("name", ["k8s-lab"]), "name:"),
    ("cpus-not-int", _set("nodes[0].cpus", "two"), "nodes[0].cpus:"),
    ("memory-bool", _set("nodes[0].memory", True), "nodes[0].memory:"),
    ("bool-not-bool", _set("network.vbox_networks_conf_allows", "yes"), "network.vbox_networks_conf_allows:"),
    ("section-not-mapping", _set("box", "bento/ubuntu-22.04"), "box:"),
    ("boot-timeout-not-int", _set("libvirt.boot_timeout", "600s"), "libvirt.boot_timeout:"),
    ("boot-timeout-short", _set("libvirt.boot_timeout", 5), "libvirt.boot_timeout:"),
    ("libvirt-driver", _set("libvirt.driver", "kvmm"), "libvirt.driver:"),
    ("libvirt-cpu-mode", _set("libvirt.cpu_mode", "passthrough"), "libvirt.cpu_mode:"),
    ("libvirt-cpu-model-without-custom", _set("libvirt.cpu_model", "qemu64"), "libvirt.cpu_model:"),
]


@pytest.mark.parametrize("mutate,expected", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule_refused_with_field_exit_code_and_nothing_written(tmp_path, capsys, mutate, expected):
    data = copy.deepcopy(default_dict())
    mutate(data)
    lab = tmp_path / "lab"
    write_lab(lab, data)

    res = run_cli(capsys, "-C", str(lab), "render")

    assert res.code == ExitCode.SPEC_INVALID, res
    lines = res.err.strip().splitlines()
    assert lines[0].startswith("labctl: error: ") and expected in lines[0], res.err
    assert any(line.startswith("hint: ") for line in lines[1:]), res.err
    assert lab_files(lab) == {"lab.yaml"}  # no Vagrantfile, no scripts/


def test_the_rule_table_names_distinct_cases():
    assert len({r[0] for r in RULES}) == len(RULES)


def test_unknown_key_hint_suggests_the_close_name(tmp_path, capsys):
    data = default_dict()
    data["network"]["podcidr"] = data["network"].pop("pod_cidr")
    write_lab(tmp_path, data)
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == ExitCode.SPEC_INVALID
    assert "network.podcidr: unknown key" in res.err
    assert "did you mean 'pod_cidr'?" in res.err


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    write_lab(tmp_path, "name: k8s-lab\nnetwork:\n  host_only: [192.168.56.0/24\n")
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == ExitCode.SPEC_INVALID
    assert "lab.yaml line" in res.err
    assert lab_files(tmp_path) == {"lab.yaml"}


def test_top_level_must_be_a_mapping(tmp_path, capsys):
    write_lab(tmp_path, "- k8s-master\n- k8s-node1\n")
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == ExitCode.SPEC_INVALID
    assert "labctl: error: lab.yaml: must be a mapping" in res.err


def test_json_error_on_stdout(tmp_path, capsys):
    data = default_dict()
    data["provider"] = "hyperv"
    write_lab(tmp_path, data)
    res = run_cli(capsys, "-C", str(tmp_path), "render", "--json")
    import json

    err = json.loads(res.out)
    assert res.code == 3 and err["ok"] is False and err["error"] == "SpecError"
    assert err["message"].startswith("provider:") and err["hint"]


def test_empty_lab_yaml_is_the_default_lab(tmp_path, capsys):
    write_lab(tmp_path, "")
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == 0, res
    assert (tmp_path / "Vagrantfile").is_file()


def test_a_partial_lab_yaml_takes_defaults_for_the_rest(tmp_path):
    from labctl.spec import default_spec, load_spec

    write_lab(tmp_path, "name: other-lab\ncalico:\n  version: v3.25.2\n")
    spec = load_spec(tmp_path)
    assert spec.name == "other-lab" and spec.calico.version == "v3.25.2"
    assert spec.nodes == default_spec().nodes


def test_networks_conf_allows_a_network_outside_the_vbox_range(tmp_path, capsys):
    data = default_dict()
    data["network"].update(host_only="10.10.0.0/24", vbox_networks_conf_allows=True)
    data["metallb"]["pool"] = "10.10.0.200-10.10.0.220"
    data["nodes"] = _nodes("10.10.0.30", "10.10.0.31", "10.10.0.32")
    write_lab(tmp_path, data)
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == 0, res.err


def test_libvirt_ignores_the_vbox_range(tmp_path):
    from labctl.spec import load_spec

    data = default_dict()
    data["provider"] = "libvirt"
    data["network"]["host_only"] = "10.10.0.0/24"
    data["metallb"]["pool"] = "10.10.0.200-10.10.0.220"
    data["nodes"] = _nodes("10.10.0.30", "10.10.0.31")
    write_lab(tmp_path, data)
    assert load_spec(tmp_path).network.host_only == "10.10.0.0/24"


def test_missing_course_node_is_a_warning_not_an_error(tmp_path, capsys):
    data = default_dict()
    data["nodes"][1]["name"] = "worker-a"
    write_lab(tmp_path, data)
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == 0, res.err
    assert "labctl: warning: no node named k8s-node1" in res.err
    assert (tmp_path / "scripts" / "worker-a" / "facts.sh").is_file()


def test_v_prefixed_kubernetes_version_keeps_package_names_plain():
    from labctl.spec import spec_from_dict

    spec = spec_from_dict({"kubernetes": {"version": "v1.27.16"}})
    assert spec.kubernetes.minor == "1.27"
    assert spec.kubernetes.package_version == "1.27.16-1.1"


def test_worker_count_range_through_init(tmp_path, capsys):
    # A count on the command line is command-line input: exit USAGE (issue 12), not SPEC_INVALID.
    res = run_cli(capsys, "-C", str(tmp_path), "init", "--nodes", "10")
    assert res.code == ExitCode.USAGE
    assert "--nodes:" in res.err
    assert not (tmp_path / "lab.yaml").exists()
    res = run_cli(capsys, "-C", str(tmp_path), "init", "--nodes", "-1")
    assert res.code == ExitCode.USAGE
    assert not (tmp_path / "lab.yaml").exists()


def test_init_refuses_an_invalid_name(tmp_path, capsys):
    res = run_cli(capsys, "-C", str(tmp_path), "init", "--name", "My Lab")
    assert res.code == ExitCode.USAGE and "--name:" in res.err
    assert not (tmp_path / "lab.yaml").exists()


def test_the_rules_run_once_per_spec_across_up_s_stages(tmp_path):
    """issue 13: validate ran about four times per `up`; now load checks, later calls remember."""
    import uuid

    from labctl.lab.lab import resolve_spec
    from labctl.lab.paths import LabPaths
    from labctl.render.lab import render_lab
    from labctl.spec import validate
    from labctl.spec.rules import rule_runs

    data = default_dict()
    data["name"] = f"once-{uuid.uuid4().hex[:8]}"  # a spec no earlier test has checked
    write_lab(tmp_path, data)
    before = rule_runs()
    spec = resolve_spec(LabPaths(tmp_path))  # up's "validate" stage: load_spec, then validate
    validate(spec)  # up's warnings
    render_lab(spec, LabPaths(tmp_path))  # render validates again before writing
    assert rule_runs() - before == 1
