"""Engine-run work on the cluster: fresh join tokens, the admin kubeconfig, node status.

Secrets handled here (bootstrap tokens, the admin client key) are read with
``log_output=False`` and registered with every session and the event bus before
anything could print them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from labctl.bootstrap import steps as cat
from labctl.bootstrap.context import RunContext
from labctl.bootstrap.model import Step
from labctl.errors import ClusterError, CommandFailed
from labctl.lab.fsutil import atomic_write
from labctl.render.kubeadm import API_PORT, join_configuration

_TOKEN = re.compile(r"\b([a-z0-9]{6}\.[a-z0-9]{16})\b")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def _check(ctx: RunContext, node: str, command: str, what: str, *, secret_output: bool = False):
    # Several workers ask the master at once: each command is its own channel on the
    # master's one connection, so they run side by side.
    res = ctx.sessions[node].run(command, timeout=120.0, log_output=not secret_output)
    if res.rc != 0:
        # Output of a secret command is never shown, even when it failed.
        output = "" if secret_output else ctx.bus.redactor(res.stdout + res.stderr)
        raise CommandFailed(command, res.rc, output, where=node, log_path=ctx.log_path(node), what=what,
                            hint=f"run `labctl ssh {node} -- {command}` to see why, then `labctl up` again")
    return res


def fresh_join_token(ctx: RunContext) -> tuple[str, str]:
    """A new bootstrap token (valid 15 minutes) and the CA certificate hash, from the master."""
    master = ctx.spec.master.name
    res = _check(ctx, master, cat.JOIN_TOKEN_COMMAND, "creating a join token", secret_output=True)
    m = _TOKEN.search(res.stdout)
    if not m:
        raise ClusterError(f"`{cat.JOIN_TOKEN_COMMAND}` on {master} printed no bootstrap token",
                           hint=f"check the control plane: `labctl ssh {master} -- sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes`")
    token = m.group(1)
    ctx.add_secret(token)
    return token, ca_cert_hash(ctx)


def ca_cert_hash(ctx: RunContext) -> str:
    """The cluster CA's hash, read once per run (every worker needs the same one)."""
    master = ctx.spec.master.name
    with ctx.node_lock(master):
        cached = ctx.memo.get("ca_cert_hash")
        if cached:
            return cached
        res = _check(ctx, master, cat.CA_CERT_HASH_COMMAND, "reading the cluster CA's hash")
        h = _HASH.search(res.stdout)
        if not h:
            raise ClusterError(f"no sha256 CA certificate hash from {master}", evidence=res.stdout.splitlines()[-5:],
                               hint=f"check /etc/kubernetes/pki/ca.crt on {master}")
        ctx.memo["ca_cert_hash"] = h.group(0)
        return h.group(0)


def upload_join_config(ctx: RunContext, node: str, step: Step | None = None) -> bool:
    """Before kubeadm-join: a fresh token per worker, in a JoinConfiguration (0600)."""
    token, ca_hash = fresh_join_token(ctx)
    text = join_configuration(ctx.spec, ctx.spec.node(node), token, ca_hash)
    ctx.sessions[node].put(text, cat.JOIN_CONFIG_PATH, mode=0o600, sudo=True)
    return True


# ------------------------------------------------------------------ kubeconfig


def _load_yaml(text: str, where: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClusterError(f"{where} is not valid YAML ({exc})", hint="check the file, or remove it and run again") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClusterError(f"{where} is not a kubeconfig (not a mapping)", hint="check the file, or remove it and run again")
    return data


def lab_kubeconfig(admin_conf: str, *, lab: str, server: str) -> dict:
    """The master's admin.conf, pointed at the host-only address and named after the lab."""
    cfg = _load_yaml(admin_conf, "admin.conf")
    try:
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
    except (KeyError, IndexError, TypeError):
        raise ClusterError("admin.conf from the master has no cluster or user", hint="re-run `labctl up`; if it persists, `kubeadm init` did not finish") from None
    cluster = dict(cluster, server=server)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": lab, "cluster": cluster}],
        "users": [{"name": f"{lab}-admin", "user": user}],
        "contexts": [{"name": lab, "context": {"cluster": lab, "user": f"{lab}-admin"}}],
        "current-context": lab,
    }


def _dump(cfg: dict) -> str:
    import yaml

    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def export_kubeconfig(ctx: RunContext, node: str, step: Step | None = None) -> bool:
    """Write <lab>/kubeconfig (0600) from the master's admin.conf; merge it if asked."""
    master = ctx.spec.master
    res = _check(ctx, master.name, cat.KUBECONFIG_COMMAND, "reading admin.conf", secret_output=True)
    cfg = lab_kubeconfig(res.stdout, lab=ctx.spec.name, server=f"https://{master.ip}:{API_PORT}")
    changed = atomic_write(ctx.kubeconfig_path, _dump(cfg), mode=0o600)
    if ctx.merge_kubeconfig is not None:
        changed = merge_kubeconfig(cfg, Path(ctx.merge_kubeconfig)) or changed
    return changed


def default_user_kubeconfig() -> Path:
    return Path(os.path.expanduser("~/.kube/config"))


def merge_kubeconfig(lab_cfg: dict, target: Path) -> bool:
    """Add (or replace) the lab's cluster, user and context in ``target``; keep the
    rest. The current context is set only when the file had none. Idempotent."""
    existing = _load_yaml(target.read_text(encoding="utf-8"), str(target)) if target.exists() else {}
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {}, **existing}
    for key in ("clusters", "users", "contexts"):
        mine = lab_cfg[key][0]
        others = [e for e in (existing.get(key) or []) if isinstance(e, dict) and e.get("name") != mine["name"]]
        merged[key] = others + [mine]
    if not merged.get("current-context"):
        merged["current-context"] = lab_cfg["current-context"]
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = (target.stat().st_mode & 0o777) if target.exists() else 0o600
    return atomic_write(target, _dump(merged), mode=mode & 0o700 or 0o600)


# ------------------------------------------------------------------ node status


def parse_nodes(kubectl_json: str) -> list[dict[str, Any]]:
    """`kubectl get nodes -o json` -> name, ready, roles, internal_ip, kubelet version."""
    try:
        data = json.loads(kubectl_json)
    except ValueError as exc:
        raise ClusterError(f"`kubectl get nodes -o json` did not print JSON ({exc})", hint="check the control plane with `labctl ssh k8s-master`") from None
    out = []
    for item in data.get("items", []):
        meta, status = item.get("metadata", {}), item.get("status", {})
        labels = meta.get("labels", {}) or {}
        ready = next((c.get("status") == "True" for c in status.get("conditions", []) if c.get("type") == "Ready"), False)
        ip = next((a.get("address") for a in status.get("addresses", []) if a.get("type") == "InternalIP"), "")
        roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")) or ["<none>"]
        out.append({
            "name": meta.get("name", ""),
            "ready": ready,
            "roles": ",".join(roles),
            "internal_ip": ip,
            "kubelet_version": status.get("nodeInfo", {}).get("kubeletVersion", ""),
        })
    return out
