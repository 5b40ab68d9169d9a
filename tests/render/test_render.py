"""Rendering a lab folder: the Vagrantfile and each node's scripts, deterministic,
atomic, and cleaned of nodes that left the spec."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace

import pytest
import yaml

from labctl.bootstrap import steps as cat
from labctl.lab.paths import LabPaths
from labctl.render.kubeadm import join_configuration, kubeadm_init_config
from labctl.render.lab import render_lab, render_vagrantfile, ruby_string
from labctl.spec import Box, default_spec
from labctl.errors import SpecError
from tests.render.conftest import SPECS, custom_network_spec, libvirt_spec


def _snapshot(root):
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_second_render_is_byte_identical_and_touches_nothing(tmp_path, name):
    spec = SPECS[name]()
    paths = LabPaths(tmp_path)
    first = render_lab(spec, paths)
    assert first.unchanged == [] and first.removed == []
    before = _snapshot(tmp_path)
    second = render_lab(spec, paths)
    assert second.written == [] and second.removed == []
    assert sorted(second.unchanged) == sorted(first.written)
    assert _snapshot(tmp_path) == before


def test_output_does_not_depend_on_the_lab_folder(tmp_path):
    # ... except the VirtualBox VM names, which carry the folder's id so that two labs
    # never ask VirtualBox for the same name (issue 11, tests/portability/test_vm_names.py).
    from labctl.host.vmnames import lab_folder_id

    a, b = tmp_path / "a", tmp_path / "elsewhere" / "b"
    render_lab(default_spec(), LabPaths(a))
    render_lab(default_spec(), LabPaths(b))

    def files(lab):
        return {k: v[0].replace(lab_folder_id(lab).encode(), b"<id>") for k, v in _snapshot(lab).items()}

    assert files(a) == files(b)


def test_files_and_modes(tmp_path):
    paths = LabPaths(tmp_path)
    render_lab(default_spec(), paths)
    snap = _snapshot(tmp_path)
    assert snap["Vagrantfile"][2] == 0o644
    master = sorted(k for k in snap if k.startswith("scripts/k8s-master/"))
    worker = sorted(k for k in snap if k.startswith("scripts/k8s-node1/"))
    # named by step id: adding a step renames no other step's script
    assert [k.split("/")[-1] for k in master] == sorted([
        "swap.sh", "kernel.sh", "containerd.sh", "kubelet-config.sh", "kube-packages.sh",
        "images.sh", "kubeadm-init.sh", "calico.sh", "metallb.sh", "nodes-ready.sh", "facts.sh",
    ])
    assert [k.split("/")[-1] for k in worker] == sorted([
        "swap.sh", "kernel.sh", "containerd.sh", "kubelet-config.sh", "kube-packages.sh", "images.sh", "kubeadm-join.sh", "facts.sh",
    ])
    assert all(snap[k][2] == 0o755 for k in master + worker)
    assert not any(".tmp" in k for k in snap)


def test_scripts_of_removed_nodes_are_deleted_but_user_files_stay(tmp_path):
    paths = LabPaths(tmp_path)
    render_lab(default_spec(workers=3), paths)
    (paths.node_scripts("k8s-node2") / "notes.txt").write_text("mine")
    (paths.node_scripts("k8s-node2") / "mine.sh").write_text("echo mine")
    (paths.node_scripts("k8s-node1") / "05-kube-packages.sh").write_text("# as an older labctl named it")
    result = render_lab(default_spec(workers=1), paths)
    removed = {str(p.relative_to(tmp_path)) for p in result.removed}
    assert "scripts/k8s-node3/facts.sh" in removed and "scripts/k8s-node2/kubeadm-join.sh" in removed
    assert "scripts/k8s-node1/05-kube-packages.sh" in removed
    assert not paths.node_scripts("k8s-node3").exists()
    assert sorted(p.name for p in paths.node_scripts("k8s-node2").iterdir()) == ["mine.sh", "notes.txt"]
    assert 'config.vm.define "k8s-node2"' not in paths.vagrantfile.read_text()


def test_invalid_spec_writes_nothing(tmp_path):
    bad = replace(default_spec(), metallb=replace(default_spec().metallb, pool="192.168.56.30-192.168.56.40"))
    with pytest.raises(SpecError) as err:
        render_lab(bad, LabPaths(tmp_path))
    assert err.value.field == "metallb.pool"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the Vagrantfile


def _define_blocks(text: str) -> dict[str, str]:
    blocks = re.split(r"\n  config\.vm\.define ", text)[1:]
    return {re.match(r'"([^"]+)"', b).group(1): b for b in blocks}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_vagrantfile_has_one_define_per_node_with_its_settings(name):
    spec = SPECS[name]()
    text = render_vagrantfile(spec)
    blocks = _define_blocks(text)
    assert list(blocks) == [n.name for n in spec.nodes]
    assert text.count("config.vm.define") == len(spec.nodes)
    assert f'config.vm.box = "{spec.box.name}"' in text
    assert f'config.vm.box_version = "{spec.box.version}"' in text
    assert 'config.vm.synced_folder ".", "/vagrant", disabled: true' in text
    assert "provision" not in text.replace("no provisioners", "")
    for node in spec.nodes:
        b = blocks[node.name]
        assert f'node.vm.hostname = "{node.name}"' in b
        assert re.search(rf'node\.vm\.network "private_network", ip: "{re.escape(node.ip)}", netmask: "255\.255\.255\.0"', b)
        assert f'vb.name = "{spec.name}-{node.name}"' in b
        assert f"vb.cpus = {node.cpus}\n" in b and f"vb.memory = {node.memory}\n" in b
        assert "vb.linked_clone = true" in b
        assert f'vb.customize ["modifyvm", :id, "--groups", "/{spec.name}"]' in b
        assert ('node.vm.provider "libvirt"' in b) == (spec.provider == "libvirt")
    assert ("config.vm.boot_timeout" in text) == (spec.provider == "libvirt")


def test_libvirt_block():
    spec = libvirt_spec()
    text = render_vagrantfile(spec)
    assert "config.vm.boot_timeout = 900" in text
    b = _define_blocks(text)["k8s-node1"]
    for line in ('lv.cpus = 2', 'lv.memory = 2048', 'lv.driver = "qemu"', 'lv.cpu_mode = "custom"', 'lv.cpu_model = "qemu64"',
                 'libvirt__network_name: "virt-lab-hostonly"', 'libvirt__forward_mode: "none"', 'libvirt__dhcp_enabled: false'):
        assert line in b, line
    no_model = replace(spec, libvirt=replace(spec.libvirt, cpu_model="", cpu_mode="host-passthrough"))
    assert "cpu_model" not in render_vagrantfile(no_model)


def test_ruby_strings_are_literal():
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed (Debian's vagrant brings it)")
    nasty = 'evil"#{`id`}\\ \n\x01end'
    lit = ruby_string(nasty)
    out = subprocess.run(["ruby", "-e", f"print {lit}"], capture_output=True, check=True).stdout.decode()
    assert out == nasty
    spec = replace(default_spec(), box=Box(name='odd/"box"#{x}', version="1.0.0"))
    assert 'config.vm.box = "odd/\\"box\\"\\#{x}"' in render_vagrantfile(spec)


# ------------------------------------------------------------------ kubeadm configs


def test_kubeadm_init_config_fields():
    spec = custom_network_spec()
    docs = {d["kind"]: d for d in yaml.safe_load_all(kubeadm_init_config(spec))}
    init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
    assert init["apiVersion"] == cluster["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.168.58.10", "bindPort": 6443}
    assert init["nodeRegistration"]["name"] == "cp"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": "192.168.58.10"}
    assert cluster["kubernetesVersion"] == "v1.27.16"
    assert cluster["controlPlaneEndpoint"] == "192.168.58.10:6443"
    assert cluster["networking"] == {"podSubnet": "172.16.0.0/16", "serviceSubnet": "10.112.0.0/16"}
    assert kubelet == {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "cgroupDriver": "systemd"}


def test_init_script_embeds_the_config_verbatim(tmp_path):
    paths = LabPaths(tmp_path)
    spec = default_spec()
    render_lab(spec, paths)
    script = (paths.node_scripts("k8s-master") / "kubeadm-init.sh").read_text()
    assert "<<'KUBEADM'\n" + kubeadm_init_config(spec) + "KUBEADM\n" in script
    assert "kubeadm init --config" in script


TOKEN, HASH = "abcdef.0123456789abcdef", "sha256:" + "ab" * 32


def test_join_configuration():
    spec = default_spec()
    node = spec.node("k8s-node2")
    doc = yaml.safe_load(join_configuration(spec, node, TOKEN, HASH))
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta3" and doc["kind"] == "JoinConfiguration"
    assert doc["discovery"]["bootstrapToken"] == {"apiServerEndpoint": "192.168.56.30:6443", "token": TOKEN, "caCertHashes": [HASH]}
    assert doc["nodeRegistration"]["name"] == "k8s-node2"
    assert doc["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": "192.168.56.32"}


def test_join_configuration_refuses_a_malformed_token_without_echoing_it():
    spec = default_spec()
    with pytest.raises(ValueError) as err:
        join_configuration(spec, spec.node("k8s-node1"), "s3cret-not-a-token", HASH)
    assert "s3cret" not in str(err.value)
    with pytest.raises(ValueError):
        join_configuration(spec, spec.node("k8s-node1"), TOKEN, "md5:00")


# ------------------------------------------------------------------ what the scripts do


def _scripts(tmp_path, spec):
    paths = LabPaths(tmp_path)
    render_lab(spec, paths)
    return {(n.name, p.name): p.read_text() for n in spec.nodes for p in paths.node_scripts(n.name).iterdir()}


def test_scripts_carry_the_spec_values(tmp_path):
    spec = custom_network_spec()
    s = _scripts(tmp_path, spec)
    assert 'want_args="--node-ip=192.168.58.11"' in s[("k8s-node1", "kubelet-config.sh")]
    assert "/run/systemd/resolve/resolv.conf" in s[("k8s-node1", "kubelet-config.sh")]
    pk = s[("w2", "kube-packages.sh")]
    # no third-party apt repository, key or download: pinned files from the host cache
    assert "pkgs.k8s.io" not in pk and "apt-key" not in pk and "signed-by" not in pk and "curl" not in pk
    assert "apt_install conntrack socat ebtables ethtool" in pk
    for line in ("install_file kubeadm 0755 /usr/bin/kubeadm", "install_file kubelet 0755 /usr/bin/kubelet",
                 "install_file kubectl 0755 /usr/bin/kubectl", "unpack crictl /usr/local/bin crictl",
                 "unpack cni-plugins /opt/cni/bin bridge host-local loopback portmap",
                 "install_file kubeadm-dropin 0644 /etc/systemd/system/kubelet.service.d/10-kubeadm.conf"):
        assert f"\n{line}\n" in pk, line
    assert "kubeadm/amd64) echo 33622018f83515331ac70c2041eba5d814a6d78a40b8869f089ea502f63a1421 ;;" in pk
    containerd = s[("w2", "containerd.sh")]
    assert "apt" not in containerd.replace("adapt", "")
    assert "\nunpack containerd /usr/local bin/containerd bin/containerd-shim-runc-v2 bin/ctr\n" in containerd
    assert "\ninstall_file runc 0755 /usr/local/sbin/runc\n" in containerd
    calico = s[("cp", "calico.sh")]
    assert "raw.githubusercontent.com" not in calico and "\ninstall_file calico-manifest 0644 /var/lib/labctl/manifests/calico.yaml\n" in calico
    assert "pod_cidr=172.16.0.0/16" in calico and "autodetect=cidr=192.168.58.0/24" in calico
    assert "set env daemonset/calico-node" in calico and "quay.io/calico/" in calico
    metallb = s[("cp", "metallb.sh")]
    assert "raw.githubusercontent.com" not in metallb and "install_file metallb-manifest 0644" in metallb
    pool_doc = metallb.split("<<'POOL'\n")[1].split("\nPOOL\n")[0]
    pool, l2 = yaml.safe_load_all(pool_doc)
    assert pool["apiVersion"] == l2["apiVersion"] == "metallb.io/v1beta1"
    assert pool["kind"] == "IPAddressPool" and pool["spec"]["addresses"] == ["192.168.58.100-192.168.58.120"]
    assert l2["kind"] == "L2Advertisement" and l2["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]
    ready = s[("cp", "nodes-ready.sh")]
    assert "expected=cp/192.168.58.10,k8s-node1/192.168.58.11,w2/192.168.58.12" in ready
    join = s[("w2", "kubeadm-join.sh")]
    assert f"join_config={cat.JOIN_CONFIG_PATH}" in join and "kubeadm join --config" in join
    assert not any(re.search(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b", text) for text in s.values())  # no token anywhere
    facts = s[("w2", "facts.sh")]
    assert "fact node_ip 192.168.58.12" in facts and "kc get nodes" not in facts
    assert "kc get nodes" in s[("cp", "facts.sh")]


def test_control_plane_taint_removed_only_without_workers(tmp_path):
    none = _scripts(tmp_path / "a", default_spec(workers=0))[("k8s-master", "kubeadm-init.sh")]
    some = _scripts(tmp_path / "b", default_spec(workers=1))[("k8s-master", "kubeadm-init.sh")]
    assert "control-plane:NoSchedule-" in none and "control-plane:NoSchedule-" not in some


def test_every_step_script_is_strict_bash(tmp_path):
    for (node, name), text in _scripts(tmp_path, default_spec()).items():
        assert text.startswith("#!/usr/bin/env bash\n"), (node, name)
        if name != "facts.sh":
            assert "\nset -euo pipefail\n" in text, (node, name)
        else:
            assert "set -e" not in text and text.rstrip().endswith("exit 0")


# The calico-node env list as calico.yaml v3.26 ships it (the pool lines commented out).
CALICO_ENV_SNIPPET = """\
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.26.4
          env:
            - name: CLUSTER_TYPE
              value: "k8s,bgp"
            - name: IP
              value: "autodetect"
            # The default IPv4 pool to create on startup if none exists. Pod IPs will be
            # chosen from this range. Changing this value after installation will have
            # no effect. This should fall within `--cluster-cidr`.
            # - name: CALICO_IPV4POOL_CIDR
            #   value: "192.168.0.0/16"
            # Disable file logging so `kubectl logs` works.
            - name: CALICO_DISABLE_FILE_LOGGING
              value: "true"
"""


def test_calico_manifest_edit_sets_pool_and_autodetection(tmp_path):
    """Run the calico script's own sed over the manifest's env block."""
    spec = custom_network_spec()
    script = _scripts(tmp_path / "lab", spec)[("cp", "calico.sh")]
    lines = script.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "sed -Ei \\")
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == '"$manifest"')
    variables = [l for l in lines if re.match(r"^(pod_cidr|autodetect)=", l)]
    manifest = tmp_path / "calico.yaml"
    manifest.write_text(CALICO_ENV_SNIPPET)
    program = "\n".join([*variables, f"manifest={manifest}", *lines[start : end + 1]])
    subprocess.run(["bash", "-euo", "pipefail", "-c", program], check=True)
    env = yaml.safe_load(manifest.read_text())["containers"][0]["env"]
    values = {e["name"]: e["value"] for e in env}
    assert values["CALICO_IPV4POOL_CIDR"] == "172.16.0.0/16"
    assert values["IP_AUTODETECTION_METHOD"] == "cidr=192.168.58.0/24"
    assert values["IP"] == "autodetect" and len(env) == 5


def test_an_addon_version_the_artifact_set_does_not_pin_is_refused(tmp_path):
    from labctl.spec.model import Calico

    spec = replace(default_spec(), calico=Calico(version="v3.26.1"))
    with pytest.raises(SpecError) as err:
        render_lab(spec, LabPaths(tmp_path))
    assert err.value.field == "calico.version" and "v3.26.4" in err.value.message
    assert not (tmp_path / "scripts").exists()
