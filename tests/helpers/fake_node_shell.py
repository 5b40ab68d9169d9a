#!/usr/bin/env python3
"""A lab node's OS, emulated behind a real sshd (its ForceCommand).

    ForceCommand <python> fake_node_shell.py <cluster-dir>/<node>

sshd puts the client's command in $SSH_ORIGINAL_COMMAND. This program never runs it:
it recognises what labctl sends (uploads, facts.sh, the rendered step scripts, kubeadm
token/CA/admin.conf reads, kubectl get nodes), answers from the node's state folder
and prints what the real programs print. Nothing outside the state folder is touched:
an upload to /etc/labctl/join.yaml lands in <node-dir>/fs/etc/labctl/join.yaml.

Files from the host cache: a step script's ``install_file ID MODE DEST`` and ``unpack
ID DIR MEMBER...`` lines are carried out on fs/ as the script's functions would (the
pushed file's sha256 checked against the pin that facts.sh carries, copied or
unpacked, recorded in fs/var/lib/labctl/installed/ID); every command a step would run
on a real node (install, tar, apt-get, systemctl) is recorded, never executed, in
commands.jsonl.

State folder (see tests/helpers/fake_node.py, which writes node.json):
    node.json       name, role, ip; injected failures and delays (tests edit it)
    state.json      steps done, tokens issued, failures already consumed
    fs/             uploaded files
    journal.jsonl   one line per command: start, end, kind, step, rc (never stdin)
    commands.jsonl  what a step would have run on a real node: step, argv
Every node of a lab lives next to the others, so the master sees who has joined.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

STEP_SCRIPT = re.compile(r"^/var/lib/labctl/scripts/([a-z0-9-]+)\.sh$")
ARTIFACTS = "/var/lib/labctl/artifacts"
INSTALLED = "/var/lib/labctl/installed"
PIN_LINE = re.compile(r"^\s+([a-z0-9._-]+)/(amd64|arm64|\*)\) echo ([0-9a-f]{64}) ;;$", re.M)
CHECK_LINE = re.compile(r"^installed ([a-z0-9._-]+) (.+) \|\| missing\+=", re.M)
INSTALL_LINE = re.compile(r"^install_file (\S+) (\d+) (\S+)$", re.M)
UNPACK_LINE = re.compile(r"^unpack (\S+) (\S+)((?: \S+)*)$", re.M)
ARCH = "amd64"
IMAGES = "/var/lib/labctl/images"
SHARED_LINE = re.compile(r"^shared_images=\((.*)\)$", re.M)
FACTS_SCRIPT = "/var/lib/labctl/scripts/facts.sh"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
JOIN_CONFIG = "/etc/labctl/join.yaml"
NAT_IP = "10.0.2.15"
KUBELET_VERSION = "v1.27.16"


class Node:
    def __init__(self, root: Path):
        self.root = root
        self.conf = json.loads((root / "node.json").read_text())
        self.name = self.conf["name"]
        self.role = self.conf["role"]
        self.ip = self.conf["ip"]

    # -- state -------------------------------------------------------------------------

    @contextmanager
    def locked_state(self):
        with open(self.root / "state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.state()
            yield state
            tmp = self.root / "state.json.tmp"
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, self.root / "state.json")

    def state(self) -> dict:
        try:
            return json.loads((self.root / "state.json").read_text())
        except FileNotFoundError:
            return {"done": [], "tokens": [], "failures_used": {}}

    def done(self, step: str) -> bool:
        return step in self.state()["done"]

    def path(self, remote: str) -> Path:
        return self.root / "fs" / remote.lstrip("/")

    def siblings(self) -> list["Node"]:
        out = []
        for d in sorted(self.root.parent.iterdir()):
            if (d / "node.json").is_file():
                out.append(self if d == self.root else Node(d))
        return out

    def master(self) -> "Node":
        return next(n for n in self.siblings() if n.role == "master")

    def internal_ip(self) -> str:
        return self.conf.get("internal_ip") or self.ip

    # -- journal -----------------------------------------------------------------------

    def journal(self, entry: dict) -> None:
        with open(self.root / "journal.jsonl", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(entry) + "\n")


# ------------------------------------------------------------------ commands


def strip_sudo(words: list[str]) -> list[str]:
    if words[:1] != ["sudo"]:
        return words
    words = words[1:]
    while words and words[0].startswith("-"):
        if words[0] == "--":
            return words[1:]
        words = words[2:] if words[0] == "-u" else words[1:]
    return words


def put(node: Node, script: str) -> int:
    import hashlib

    m = re.search(r"dest=('[^']*'|[^;\s]+);", script)
    mode = re.search(r"chmod (\d+) ", script)
    size = re.search(r'-ne (\d+) \]', script)
    want = re.search(r'!= \'?([0-9a-f]{64})\'?', script)
    if not m:
        print("fake-node: upload without a destination", file=sys.stderr)
        return 2
    dest = shlex.split(m.group(1))[0]
    target = node.path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".labctl-put.{os.getpid()}")
    digest, received = hashlib.sha256(), 0
    with open(tmp, "wb") as out:  # streamed, as `cat > "$tmp"` would
        for block in iter(lambda: sys.stdin.buffer.read(1 << 16), b""):
            digest.update(block)
            received += len(block)
            out.write(block)
    if size and received != int(size.group(1)):
        tmp.unlink()
        print(f"upload truncated: {received} of {size.group(1)} bytes", file=sys.stderr)
        return 3
    if want and digest.hexdigest() != want.group(1):
        tmp.unlink()
        print(f"checksum mismatch: expected sha256 {want.group(1)}, received {digest.hexdigest()}", file=sys.stderr)
        return 4
    os.chmod(tmp, int(mode.group(1), 8) if mode else 0o644)
    os.replace(tmp, target)
    return 0


# ------------------------------------------------------------------ pinned files


def record(node: Node, step: str, *argv: str) -> None:
    """A command the step would run on a real node; nothing here runs it."""
    with open(node.root / "commands.jsonl", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"step": step, "argv": list(argv)}) + "\n")


def pins(node: Node) -> dict[str, str]:
    """id -> sha256 for this node's arch, from the uploaded facts.sh's pinned()."""
    out = {}
    for pid, arch, sha in PIN_LINE.findall(node.path(FACTS_SCRIPT).read_text()):
        if arch in (ARCH, "*"):
            out[pid] = sha
    return out


def installed_ok(node: Node, pid: str, targets: list[str], pinned: dict[str, str]) -> bool:
    stamp = node.path(f"{INSTALLED}/{pid}")
    if not stamp.is_file() or stamp.read_text().strip() != pinned.get(pid):
        return False
    return all(node.path(t).exists() for t in targets)


def artifact_facts(node: Node) -> dict[str, str]:
    pinned = pins(node)
    text = node.path(FACTS_SCRIPT).read_text()
    missing = [pid for pid, paths in CHECK_LINE.findall(text) if not installed_ok(node, pid, shlex.split(paths), pinned)]
    folder = node.path(ARTIFACTS)
    pushed = sorted(p.name for p in folder.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name)) if folder.is_dir() else []
    return {"artifacts_missing": ",".join(missing), "artifacts_pushed": ",".join(pushed)}


def shared_images(node: Node) -> list[str]:
    m = SHARED_LINE.search(node.path(FACTS_SCRIPT).read_text())
    return shlex.split(m.group(1)) if m else []


def image_facts(node: Node) -> dict[str, str]:
    have = set(node.state().get("images", []))
    folder, export = node.path(IMAGES), node.path(f"{IMAGES}/export")
    pushed = sorted(p.stem for p in folder.glob("*.tar")) if folder.is_dir() else []
    exported = sorted(p.stem.replace("+", "/") for p in export.glob("*.tar")) if export.is_dir() else []
    return {"images_missing": ",".join(r for r in shared_images(node) if r not in have),
            "images_pushed": ",".join(pushed), "images_exported": ",".join(exported)}


def step_images(node: Node, script: str) -> int:
    """Import pushed tarballs, pull what is still missing and export it (a tarball whose
    content names its refs, standing in for an OCI archive)."""
    folder = node.path(IMAGES)
    for tarball in sorted(folder.glob("*.tar")) if folder.is_dir() else []:
        refs = json.loads(tarball.read_text())["refs"]
        record(node, "images", "ctr", "-n", "k8s.io", "images", "import", f"{IMAGES}/{tarball.name}")
        with node.locked_state() as st:
            st["images"] = sorted(set(st.get("images", [])) | set(refs))
        tarball.unlink()
        print(f"labctl: imported {tarball.name} from the host cache")
    for ref in shared_images(node):
        if ref in node.state().get("images", []):
            continue
        blocked = node.conf.get("pull_fail", {}).get(ref.split("/")[0])
        if blocked:
            print(blocked, file=sys.stderr)
            print(f"labctl: cannot pull {ref} from {node.name}", file=sys.stderr)
            return 75
        record(node, "images", "ctr", "-n", "k8s.io", "images", "pull", "--platform", f"linux/{ARCH}", ref)
        with node.locked_state() as st:
            st["images"] = sorted(set(st.get("images", [])) | {ref})
            st.setdefault("pulled", []).append(ref)
        out = node.path(f"{IMAGES}/export/{ref.replace('/', '+')}.tar")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"refs": [ref]}))
        record(node, "images", "ctr", "-n", "k8s.io", "images", "export", "--platform", f"linux/{ARCH}",
               f"{IMAGES}/export/{out.name}", ref)
        print(f"labctl: pulled {ref} and exported it for the other nodes")
    return 0


def export_image(node: Node, args: list[str]) -> int:
    """``ctr images export --platform P OUT REF`` as the engine sends it to a node that
    has an image another node lacks: the same tarball shape as step_images writes."""
    if len(args) != 4 or args[0] != "--platform":
        print(f"fake-node: unexpected ctr images export arguments {args}", file=sys.stderr)
        return 2
    _, platform, out, ref = args
    if ref not in node.state().get("images", []):
        print(f'ctr: image "{ref}": not found', file=sys.stderr)
        return 1
    target = node.path(out)
    if not target.parent.is_dir():
        print(f"ctr: open {out}: no such file or directory", file=sys.stderr)
        return 1
    target.write_text(json.dumps({"refs": [ref], "platform": platform}))
    record(node, "engine", "ctr", "-n", "k8s.io", "images", "export", *args)
    return 0


def _verified(node: Node, step: str, pid: str, pinned: dict[str, str]) -> Path | None:
    import hashlib

    want = pinned.get(pid)
    if want is None:
        print(f"labctl: no {pid} is pinned for {ARCH} nodes", file=sys.stderr)
        return None
    blob = node.path(f"{ARTIFACTS}/{want}")
    if not blob.is_file():
        print(f"labctl: {pid} is not in {ARTIFACTS}: labctl up pushes it from the host cache right before this step", file=sys.stderr)
        return None
    got = hashlib.sha256(blob.read_bytes()).hexdigest()
    record(node, step, "sha256sum", f"{ARTIFACTS}/{want}")
    if got != want:
        blob.unlink()
        print(f"labctl: {pid}: checksum mismatch in {ARTIFACTS}/{want}: expected sha256 {want}, got {got} "
              "(removed; labctl up pushes it again)", file=sys.stderr)
        return None
    return blob


def _stamp(node: Node, step: str, pid: str, blob: Path) -> None:
    stamp = node.path(f"{INSTALLED}/{pid}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(blob.name + "\n")
    blob.unlink()
    record(node, step, "rm", "-f", f"{ARTIFACTS}/{blob.name}")


def install_artifacts(node: Node, step: str, script: str) -> tuple[int, bool]:
    """The script's install_file/unpack lines, carried out on fs/. (rc, changed)."""
    import shutil
    import tarfile

    pinned = pins(node)
    changed = False
    for pid, mode, dest in INSTALL_LINE.findall(script):
        dest = shlex.split(dest)[0]
        if installed_ok(node, pid, [dest], pinned):
            continue
        blob = _verified(node, step, pid, pinned)
        if blob is None:
            return 1, changed
        target = node.path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob, target)
        os.chmod(target, int(mode, 8))
        record(node, step, "install", "-D", "-m", mode, f"{ARTIFACTS}/{blob.name}", dest)
        _stamp(node, step, pid, blob)
        print(f"labctl: installed {pid} to {dest}")
        changed = True
    for pid, folder, members in UNPACK_LINE.findall(script):
        folder, members = shlex.split(folder)[0], shlex.split(members)
        if installed_ok(node, pid, [f"{folder}/{m}" for m in members], pinned):
            continue
        blob = _verified(node, step, pid, pinned)
        if blob is None:
            return 1, changed
        root = node.path(folder)
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(blob) as tar:
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts or not (member.isfile() or member.isdir()):
                    print(f"tar: {member.name}: refusing to unpack outside {folder}", file=sys.stderr)
                    return 2, changed
            tar.extractall(root)
        record(node, step, "tar", "-xzf", f"{ARTIFACTS}/{blob.name}", "-C", folder, "--no-same-owner")
        for m in members:
            if not (root / m).exists():
                print(f"labctl: {pid} has no {m}", file=sys.stderr)
                return 1, changed
        _stamp(node, step, pid, blob)
        print(f"labctl: unpacked {pid} into {folder}")
        changed = True
    return 0, changed


def static_facts(node: Node) -> dict[str, str]:
    """The 'what the spec expects' lines of the uploaded facts.sh (fact KEY 'VALUE')."""
    out = {}
    for line in node.path(FACTS_SCRIPT).read_text().splitlines():
        if line.startswith("fact ") and "$" not in line:
            words = shlex.split(line)
            if len(words) == 3:
                out[words[1]] = words[2]
    return out


def facts(node: Node) -> dict[str, str]:
    want = static_facts(node)
    done = set(node.state()["done"])
    f = dict(want)
    f.update(
        hostname=node.name,
        os="Ubuntu 22.04.4 LTS",
        node_ip_present="yes",
        node_ip_iface="eth1",
        swap_active="no" if "swap" in done else "yes",
        swap_fstab="no" if "swap" in done else "yes",
    )
    k = "kernel" in done
    f.update(
        mod_overlay="yes" if k else "no",
        mod_br_netfilter="yes" if k else "no",
        modules_persisted="yes" if k else "no",
        sysctl_bridge_nf_call_iptables="1" if k else "",
        sysctl_bridge_nf_call_ip6tables="1" if k else "",
        sysctl_ip_forward="1" if k else "0",
        sysctl_persisted="yes" if k else "no",
    )
    f["arch"] = ARCH
    f.update(artifact_facts(node))
    f.update(image_facts(node))
    c = "containerd" in done
    f.update(
        containerd_installed="yes" if node.path("/usr/local/bin/containerd").exists() else "no",
        containerd_version="1.7.22" if node.path("/usr/local/bin/containerd").exists() else "",
        containerd_systemd_cgroup="yes" if c else "no",
        containerd_active="yes" if c else "no",
    )
    for tool in ("kubelet", "kubeadm", "kubectl"):
        f[f"{tool}_version"] = f"v{want.get('kube_expected_version', '')}" if node.path(f"/usr/bin/{tool}").exists() else ""
    f["distro_packages"] = "yes" if set(DISTRO_PACKAGES) <= set(node.state().get("packages", [])) else "no"
    dropin = node.path(DROPIN)
    f["kubelet_env_file"] = "yes" if dropin.is_file() and ENV_FILE_LINE in dropin.read_text().splitlines() else "no"
    f["kubelet_enabled"] = "yes" if "kube-packages" in done else "no"
    kc = "kubelet-config" in done
    f.update(
        kubelet_node_ip=node.ip if kc else "",
        kubelet_resolv_conf="/run/systemd/resolve/resolv.conf" if kc else "",
        resolved_stub="yes",
        kubelet_active="yes" if ("kubeadm-init" in done or "kubeadm-join" in done) else "no",
    )
    init = "kubeadm-init" in done
    joined = "kubeadm-join" in done
    f.update(
        admin_conf="yes" if init else "no",
        init_marker="yes" if init else "no",
        kubelet_conf="yes" if (init or joined) else "no",
        join_marker="yes" if joined else "no",
    )
    if node.role == "master" and init:
        f.update(cluster_reachable="yes")
        calico = "calico" in done
        f.update(
            calico_daemonset="yes" if calico else "no",
            calico_ipv4pool_cidr=want.get("pod_cidr", "") if calico else "",
            calico_ip_autodetection=f"cidr={want.get('host_only', '')}" if calico else "",
            calico_image=calico_image(node) if calico else "",
        )
        mlb = "metallb" in done
        f.update(
            metallb_controller="yes" if mlb else "no",
            metallb_pool=want.get("metallb_expected_pool", "") if mlb else "",
            metallb_l2advertisement="yes" if mlb else "no",
        )
        f["nodes"] = ",".join(f"{n['name']}/{'Ready' if n['ready'] else 'NotReady'}/{n['ip']}" for n in cluster_nodes(node))
    for key, value in node.conf.get("facts_override", {}).items():
        f[key] = value
    return f


def calico_image(node: Node) -> str:
    """calico-node's image as applied: from the manifest the calico step applied."""
    applied = node.path("/var/lib/labctl/calico.yaml")
    m = re.search(r"image: (\S*calico/node:\S+)", applied.read_text()) if applied.is_file() else None
    return m.group(1) if m else ""


def cluster_nodes(node: Node) -> list[dict]:
    """Nodes registered with the fake API server: the master after init, workers after
    join; Ready once Calico runs (and the node's containerd is up)."""
    master = node.master()
    mdone = set(master.state()["done"])
    if "kubeadm-init" not in mdone:
        return []
    out = []
    for n in node.siblings():
        ndone = set(n.state()["done"])
        if n.role == "master" or "kubeadm-join" in ndone:
            out.append({
                "name": n.name,
                "role": n.role,
                "ip": n.internal_ip(),
                "ready": "calico" in mdone and "containerd" in ndone,
                "since": n.state().get("joined_at", 1732600000),
            })
    return out


def node_json(n: dict, index: int) -> dict:
    import hashlib

    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n["name"],
        "kubernetes.io/os": "linux",
    }
    if n["role"] == "master":
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(n["since"]))
    ready = {
        "type": "Ready",
        "status": "True" if n["ready"] else "False",
        "lastHeartbeatTime": created,
        "lastTransitionTime": created,
        "reason": "KubeletReady" if n["ready"] else "KubeletNotReady",
        "message": "kubelet is posting ready status. AppArmor enabled" if n["ready"]
        else "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
    }
    pressure = [
        {"type": t, "status": "False", "lastHeartbeatTime": created, "lastTransitionTime": created,
         "reason": f"KubeletHas{r}", "message": f"kubelet has {m}"}
        for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "no disk pressure"),
            ("PIDPressure", "SufficientPID", "sufficient PID available"),
        )
    ]
    spec: dict = {"podCIDR": f"20.96.{index}.0/24", "podCIDRs": [f"20.96.{index}.0/24"]}
    if n["role"] == "master":
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "projectcalico.org/IPv4Address": f"{n['ip']}/24",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "creationTimestamp": created,
            "labels": labels,
            "name": n["name"],
            "resourceVersion": str(1000 + index),
            "uid": str(__import__("uuid").uuid5(__import__("uuid").NAMESPACE_DNS, n["name"])),
        },
        "spec": spec,
        "status": {
            "addresses": [{"address": n["ip"], "type": "InternalIP"}, {"address": n["name"], "type": "Hostname"}],
            "allocatable": {"cpu": "2", "ephemeral-storage": "29636083727", "hugepages-2Mi": "0", "memory": "1912356Ki", "pods": "110"},
            "capacity": {"cpu": "2", "ephemeral-storage": "32156512Ki", "hugepages-2Mi": "0", "memory": "2014756Ki", "pods": "110"},
            "conditions": pressure + [ready],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "5c7e4f0e-0c1b-4a53-9b39-0e0a5b7c8d%02d" % index,
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "5.15.0-91-generic",
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": hashlib.md5(n["name"].encode()).hexdigest(),
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS",
                "systemUUID": str(__import__("uuid").uuid5(__import__("uuid").NAMESPACE_URL, n["name"])),
            },
        },
    }


def ca_hash(node: Node) -> str:
    import hashlib

    master = node.master()
    return "sha256:" + hashlib.sha256(f"fake-ca-of-{master.root.parent}".encode()).hexdigest()


def admin_conf(node: Node) -> str:
    import base64

    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMwEQYDVQQDEwprdWJl\n-----END CERTIFICATE-----\n").decode()
    cert = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIDITCCAgmgAwIBAgIIQ0sQ0a2Fh8gwDQYJKoZIhvcNAQELBQAwFTETMBEGA1UE\n-----END CERTIFICATE-----\n").decode()
    key = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu0fake0key0for0tests0only\n-----END RSA PRIVATE KEY-----\n").decode()
    lab = node.conf.get("lab", "k8s-lab")
    return (
        "apiVersion: v1\nclusters:\n- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: https://{node.ip}:6443\n"
        f"  name: {lab}\ncontexts:\n- context:\n    cluster: {lab}\n    user: kubernetes-admin\n"
        f"  name: kubernetes-admin@{lab}\ncurrent-context: kubernetes-admin@{lab}\nkind: Config\npreferences: {{}}\n"
        "users:\n- name: kubernetes-admin\n  user:\n"
        f"    client-certificate-data: {cert}\n    client-key-data: {key}\n"
    )


# ------------------------------------------------------------------ step scripts

STEP_OUTPUT = {
    "swap": ["labctl: swap turned off", "labctl: swap entries in /etc/fstab commented out (backup: /etc/fstab.labctl.bak)"],
    "kernel": ["overlay", "br_netfilter", "* Applying /etc/sysctl.d/99-labctl-k8s.conf ...", "net.bridge.bridge-nf-call-iptables = 1",
               "net.bridge.bridge-nf-call-ip6tables = 1", "net.ipv4.ip_forward = 1"],
    "containerd": ["labctl: wrote /etc/containerd/config.toml with SystemdCgroup = true", "labctl: containerd restarted"],
    "kube-packages": ["labctl: installing conntrack socat ebtables ethtool", "Reading package lists...",
                      "Setting up conntrack (1:1.4.6-2build2) ...", "Setting up socat (1.7.4.1-3ubuntu4) ...",
                      "Created symlink /etc/systemd/system/multi-user.target.wants/kubelet.service -> /etc/systemd/system/kubelet.service."],
    "calico": ["poddisruptionbudget.policy/calico-kube-controllers created", "serviceaccount/calico-node created",
               "daemonset.apps/calico-node created", "deployment.apps/calico-kube-controllers created", "labctl: Calico applied"],
    "metallb": ["namespace/metallb-system created", "deployment.apps/controller created", "daemonset.apps/speaker created",
                "ipaddresspool.metallb.io/lab-pool created", "l2advertisement.metallb.io/lab-l2 created"],
}


DISTRO_PACKAGES = ("conntrack", "socat", "ebtables", "ethtool")
ENV_FILE_LINE = "EnvironmentFile=-/etc/default/kubelet"
DROPIN = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"


def after_install(node: Node, step: str, changed: bool) -> int:
    """What the install steps do after their files are in place (recorded only)."""
    if step == "kube-packages":
        record(node, step, "apt-get", "install", "-y", "-q", "--no-install-recommends", *DISTRO_PACKAGES)
        with node.locked_state() as st:
            st["packages"] = sorted(set(st.get("packages", [])) | set(DISTRO_PACKAGES))
    if step in ("kube-packages", "containerd") and changed:
        record(node, step, "systemctl", "daemon-reload")
    if step == "kube-packages" and changed and (node.done("kubeadm-init") or node.done("kubeadm-join")):
        record(node, step, "systemctl", "restart", "kubelet")  # kubelet runs once the node is in the cluster
    if step == "kube-packages":
        dropin = node.path(DROPIN)
        # `systemctl cat kubelet | grep -qx ...`, over the unit files as pushed
        if not dropin.is_file() or ENV_FILE_LINE not in dropin.read_text().splitlines():
            print("labctl: the kubelet unit does not read /etc/default/kubelet (see `systemctl cat kubelet`): "
                  "--node-ip would be ignored", file=sys.stderr)
            return 1
        record(node, step, "systemctl", "enable", "kubelet")
    if step == "containerd":
        record(node, step, "systemctl", "enable", "containerd")
        record(node, step, "systemctl", "restart", "containerd")
    if step == "calico":
        manifest = node.path("/var/lib/labctl/manifests/calico.yaml")
        edited = manifest.read_text().replace("image: docker.io/calico/", "image: quay.io/calico/") if manifest.is_file() else ""
        node.path("/var/lib/labctl/calico.yaml").write_text(edited)
        record(node, step, "kubectl", "apply", "-f", "/var/lib/labctl/calico.yaml")
    if step == "metallb":
        record(node, step, "kubectl", "apply", "-f", "/var/lib/labctl/manifests/metallb-native.yaml")
    return 0


def run_step(node: Node, step: str, script_path: str) -> int:
    script = node.path(script_path)
    if not script.is_file():
        print(f"bash: {script_path}: No such file or directory", file=sys.stderr)
        return 127
    delay = node.conf.get("delays", {}).get(step, node.conf.get("delay", 0.0))
    if delay:
        time.sleep(delay)
    fail = node.conf.get("fail", {}).get(step)
    if fail:
        with node.locked_state() as st:
            used = st["failures_used"].get(step, 0)
            if used < fail.get("times", 1):
                st["failures_used"][step] = used + 1
            else:
                fail = None
        if fail:
            for line in fail.get("output", "labctl: injected failure").splitlines():
                print(line, file=sys.stderr if line.startswith("labctl:") else sys.stdout)
            return int(fail.get("rc", 1))
    noop = node.conf.get("noop", {}).get(step)
    text = script.read_text()
    if not noop:
        rc, changed = install_artifacts(node, step, text)
        if rc:
            return rc
        rc = after_install(node, step, changed)
        if rc:
            return rc
    handler = {"kubeadm-init": step_init, "kubeadm-join": step_join, "nodes-ready": step_ready, "images": step_images}.get(step)
    if handler:
        rc = handler(node, text)
    else:
        for line in STEP_OUTPUT.get(step, [f"labctl: {step} done"]):
            print(line.format(ip=node.ip))
        rc = 0
    if rc == 0 and not noop:
        with node.locked_state() as st:
            if step not in st["done"]:
                st["done"].append(step)
            if step in ("kubeadm-init", "kubeadm-join"):
                st["joined_at"] = int(time.time())
    return rc


def step_init(node: Node, script: str) -> int:
    import secrets

    token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
    with node.locked_state() as st:
        st.setdefault("init_tokens", []).append(token)
    skip_token = "--skip-token-print" in script
    shown = "<value withheld>" if skip_token else token
    lines = [
        "[init] Using Kubernetes version: v1.27.16",
        "[preflight] Running pre-flight checks",
        "[certs] Using certificateDir folder \"/etc/kubernetes/pki\"",
        f"[certs] apiserver serving cert is signed for DNS names [{node.name} kubernetes kubernetes.default] and IPs [10.96.0.1 {node.ip}]",
        "[kubeconfig] Writing \"admin.conf\" kubeconfig file",
        "[control-plane] Creating static Pod manifest for \"kube-apiserver\"",
        "[apiclient] All control plane components are healthy after 6.502541 seconds",
    ]
    if not skip_token:
        lines.append(f"[bootstrap-token] Using token: {token}")
    lines += [
        "[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles",
        "[addons] Applied essential addon: CoreDNS",
        "[addons] Applied essential addon: kube-proxy",
        "",
        "Your Kubernetes control-plane has initialized successfully!",
        "",
        "Then you can join any number of worker nodes by running the following on each as root:",
        "",
        f"kubeadm join {node.ip}:6443 --token {shown} \\",
        f"\t--discovery-token-ca-cert-hash {ca_hash(node)} ",
        f"labctl: control plane initialized on {node.ip}",
    ]
    print("\n".join(lines))
    return 0


def step_join(node: Node, script: str) -> int:
    cfg = node.path(JOIN_CONFIG)
    if node.done("kubeadm-join"):
        cfg.unlink(missing_ok=True)
        print(f"labctl: {node.name} has already joined")
        return 0
    if not cfg.is_file():
        print(f"labctl: {JOIN_CONFIG} is missing: labctl up uploads it right before this step", file=sys.stderr)
        return 1
    text = cfg.read_text()
    mode = cfg.stat().st_mode & 0o777
    cfg.unlink()  # the script's trap removes it in every case
    master = node.master()
    token = re.search(r'token: "?([a-z0-9]{6}\.[a-z0-9]{16})"?', text)
    problems = []
    if mode != 0o600:
        problems.append(f"join config mode {mode:04o}, expected 0600")
    if not token or token.group(1) not in master.state()["tokens"]:
        problems.append("couldn't validate the identity of the API Server: token id not found")
    if ca_hash(node) not in text:
        problems.append("cluster CA found in cluster-info ConfigMap is invalid: none of the public keys match")
    if f"{master.ip}:6443" not in text:
        problems.append(f"apiServerEndpoint is not {master.ip}:6443")
    if f"node-ip: {node.ip}" not in text:
        problems.append(f"node-ip is not {node.ip}")
    if problems:
        print("[preflight] Running pre-flight checks")
        for p in problems:
            print(f"error execution phase preflight: {p}", file=sys.stderr)
        return 1
    print("\n".join([
        "[preflight] Running pre-flight checks",
        "[preflight] Reading configuration from the cluster...",
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"",
        "[kubelet-start] Starting the kubelet",
        "[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap...",
        "",
        "This node has joined the cluster:",
        "* Certificate signing request was sent to apiserver and a response was received.",
        "* The Kubelet was informed of the new secure connection details.",
        "",
        f"labctl: {node.name} joined the cluster at {master.ip}",
    ]))
    return 0


def step_ready(node: Node, script: str) -> int:
    want = static_facts(node).get("expected_nodes", "")
    have = {n["name"]: n for n in cluster_nodes(node)}
    waiting = []
    for item in filter(None, want.split(",")):
        name, _, ip = item.partition("/")
        n = have.get(name)
        if n is None:
            waiting.append(f"{name}(not registered)")
            continue
        if n["ip"] != ip:
            print(f"labctl: {name} has InternalIP {n['ip']}, expected {ip}: kubelet is not using --node-ip (see /etc/default/kubelet on {name})", file=sys.stderr)
            return 1
        if not n["ready"]:
            waiting.append(f"{name}(NotReady)")
    if waiting:
        print(f"labctl: nodes still not Ready after 600 s: {' '.join(waiting)}", file=sys.stderr)
        return 1
    print(f"labctl: every node is Ready: {want.replace(',', ' ')}")
    return 0


# ------------------------------------------------------------------ dispatch


def injected(node: Node, kind: str) -> int | None:
    """A failure injected for a command kind (token, ca-hash, admin.conf, kubectl)."""
    fail = node.conf.get("fail_commands", {}).get(kind)
    if not fail:
        return None
    with node.locked_state() as st:
        used = st["failures_used"].get(kind, 0)
        if used >= fail.get("times", 1):
            return None
        st["failures_used"][kind] = used + 1
    print(fail.get("output", "injected failure"), file=sys.stderr)
    return int(fail.get("rc", 1))


def dispatch(node: Node, command: str) -> tuple[str, str | None, int]:
    """Run one command; returns (kind, step, rc) for the journal."""
    try:
        words = strip_sudo(shlex.split(command))
    except ValueError:
        print(f"fake-node: cannot parse {command!r}", file=sys.stderr)
        return "unparsed", None, 2
    if words[:2] == ["bash", "-c"] and len(words) == 3:
        inner = words[2]
        if "cat > \"$tmp\"" in inner and "dest=" in inner:
            kind = "put-artifact" if f"dest={ARTIFACTS}/" in inner else "put-image" if f"dest={IMAGES}/" in inner else "put"
            return kind, None, put(node, inner)
        return dispatch(node, inner)
    if words[:1] == ["bash"] and len(words) == 2:
        path = words[1]
        if path == FACTS_SCRIPT:
            if not node.path(FACTS_SCRIPT).is_file():
                print(f"bash: {path}: No such file or directory", file=sys.stderr)
                return "facts", None, 127
            for k, v in facts(node).items():
                print(f"{k}={v}")
            return "facts", None, 0
        m = STEP_SCRIPT.match(path)
        if m:
            return "step", m.group(1), run_step(node, m.group(1), path)
        print(f"bash: {path}: No such file or directory", file=sys.stderr)
        return "script", None, 127
    if words[:2] == ["cat", "--"] and len(words) == 3:
        f = node.path(words[2])
        if not f.is_file():
            print(f"cat: {words[2]}: No such file or directory", file=sys.stderr)
            return "get", None, 1
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                sys.stdout.buffer.write(block)
        return "get", None, 0
    if words[:3] == ["mkdir", "-p", "--"] and len(words) == 4:
        node.path(words[3]).mkdir(parents=True, exist_ok=True)
        return "mkdir", None, 0
    if words[:5] == ["ctr", "-n", "k8s.io", "images", "export"]:
        if (rc := injected(node, "export")) is not None:
            return "export", None, rc
        return "export", None, export_image(node, words[5:])
    if words[:3] == ["rm", "-f", "--"] and len(words) == 4:
        node.path(words[3]).unlink(missing_ok=True)
        return "rm", None, 0
    if words[:3] == ["kubeadm", "token", "create"]:
        if (rc := injected(node, "token")) is not None:
            return "token", None, rc
        if node.role != "master" or not node.done("kubeadm-init"):
            print("failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or directory", file=sys.stderr)
            return "token", None, 1
        import secrets

        token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
        with node.locked_state() as st:
            st["tokens"].append(token)
        print(token)
        return "token", None, 0
    if "openssl x509 -pubkey" in command:
        if (rc := injected(node, "ca-hash")) is not None:
            return "ca-hash", None, rc
        if not node.done("kubeadm-init"):
            print("Could not open file or uri for loading certificate from /etc/kubernetes/pki/ca.crt", file=sys.stderr)
            return "ca-hash", None, 1
        print(ca_hash(node))
        return "ca-hash", None, 0
    if words == ["cat", ADMIN_CONF]:
        if (rc := injected(node, "admin.conf")) is not None:
            return "admin.conf", None, rc
        if node.role != "master" or not node.done("kubeadm-init"):
            print(f"cat: {ADMIN_CONF}: No such file or directory", file=sys.stderr)
            return "admin.conf", None, 1
        print(admin_conf(node), end="")
        return "admin.conf", None, 0
    if words[:1] == ["kubectl"] and words[-3:] == ["nodes", "-o", "json"]:
        if (rc := injected(node, "kubectl")) is not None:
            return "kubectl", None, rc
        if node.role != "master" or not node.done("kubeadm-init"):
            print("The connection to the server localhost:8080 was refused - did you specify the right host or port?", file=sys.stderr)
            return "kubectl", None, 1
        items = [node_json(n, i) for i, n in enumerate(cluster_nodes(node))]
        print(json.dumps({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}, indent=4))
        return "kubectl", None, 0
    if words in (["hostname"], ["uname", "-n"]):
        print(node.name)
        return "hostname", None, 0
    if words[:1] == ["echo"]:
        print(" ".join(words[1:]))
        return "echo", None, 0
    if len(words) == 2 and words[0] == "exit" and words[1].isdigit():
        return "exit", None, int(words[1])
    print(f"fake-node: {words[0] if words else command!r}: command not found", file=sys.stderr)
    return "unknown", None, 127


def main() -> int:
    node = Node(Path(sys.argv[1]))
    command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    started = time.time()
    if not command:
        print("fake-node: interactive shells are not emulated", file=sys.stderr)
        kind, step, rc = "shell", None, 1
    else:
        kind, step, rc = dispatch(node, command)
    sys.stdout.flush()
    sys.stderr.flush()
    node.journal({"start": started, "end": time.time(), "kind": kind, "step": step, "rc": rc,
                  "command": command if not kind.startswith("put") else kind})
    return rc


if __name__ == "__main__":
    sys.exit(main())
