"""Render a lab: its Vagrantfile and every node's bootstrap scripts.

Output is a pure function of the spec (no timestamps, no versions, sorted nothing
that is not already ordered), so a second render is byte-identical and leaves
mtimes alone (atomic_write skips identical files). Scripts of nodes that left the
spec are removed, so `up` never uploads a stale step.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from labctl.bootstrap.steps import (
    ADMIN_CONF,
    EXIT_UNREACHABLE,
    FACTS_SCRIPT,
    JOIN_CONFIG_PATH,
    REMOTE_ARTIFACTS,
    REMOTE_DIR,
    REMOTE_IMAGES,
    REMOTE_INSTALLED,
    SHARED_IMAGES,
    STEPS,
)
from labctl.errors import ArtifactError
from labctl.lab.fsutil import atomic_write
from labctl.lab.paths import LabPaths
from labctl.render.kubeadm import kubeadm_init_config
from labctl.spec import LabSpec, Node

# Rendered names we own inside scripts/<node>/: only these are ever deleted (NN-<id>.sh
# is how labctl named step scripts before they were named by their id alone).
_OLD_NAMES = re.compile(r"^\d\d-[a-z0-9-]+\.sh$")
_OWNED = frozenset({FACTS_SCRIPT, *(s.script_name for s in STEPS if s.script_name)})


@dataclass
class RenderResult:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def to_dict(self, root: Path | None = None) -> dict:
        def rel(p: Path) -> str:
            return str(p.relative_to(root)) if root else str(p)

        return {
            "written": [rel(p) for p in self.written],
            "unchanged": [rel(p) for p in self.unchanged],
            "removed": [rel(p) for p in self.removed],
        }


def ruby_string(value: object) -> str:
    """A Ruby double-quoted literal: the fake and real vagrant both read "NAME"."""
    text = str(value)
    out = []
    for ch in text:
        if ch in '\\"#':
            out.append("\\" + ch)  # "\#" keeps `#{...}` from interpolating
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _environment():
    import jinja2

    from labctl.resources import data_root

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_root())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["rb"] = ruby_string
    env.filters["sq"] = lambda v: shlex.quote(str(v))
    return env


# ------------------------------------------------------------------ rendering


def _context(spec: LabSpec, node: Node | None = None) -> dict:
    host = ipaddress.ip_network(spec.network.host_only)
    ctx = {
        "spec": spec,
        "netmask": str(host.netmask),
        "host_only": str(host),
        "remote_dir": REMOTE_DIR,
        "admin_conf": ADMIN_CONF,
        "join_config": JOIN_CONFIG_PATH,
        "exit_unreachable": EXIT_UNREACHABLE,
        "k8s_version": spec.kubernetes.version.lstrip("v"),
        "expected_nodes": ",".join(f"{n.name}/{n.ip}" for n in spec.nodes),
    }
    if node is not None:
        from labctl.bootstrap.artifacts import check_versions, image_digests, load_for, pins, shared_images

        aset = load_for(spec)  # one read of the set for everything below
        ctx["node"] = node
        ctx["master"] = spec.master
        ctx["kubeadm_init_config"] = kubeadm_init_config(spec)
        ctx["pins"] = pins(aset)
        check_versions(spec, ctx["pins"])
        ctx["remote_artifacts"] = REMOTE_ARTIFACTS
        ctx["remote_installed"] = REMOTE_INSTALLED
        ctx["remote_images"] = REMOTE_IMAGES
        ctx["shared_images"] = shared_images(aset, SHARED_IMAGES)
        ctx["image_digests"] = image_digests(aset, SHARED_IMAGES)
    return ctx


def render_vagrantfile(spec: LabSpec, env=None, lab_dir: Path | None = None) -> str:
    from labctl.host.vmnames import lab_folder_id

    env = env or _environment()
    # lab_id: VirtualBox VM names must be unique per lab folder (labctl.host.vmnames).
    lab_id = lab_folder_id(lab_dir) if lab_dir is not None else None
    return env.get_template("Vagrantfile.j2").render(lab_id=lab_id, **_context(spec))


def render_node_scripts(spec: LabSpec, node: Node, env=None) -> dict[str, str]:
    """file name -> script text, for every step of the node's role plus facts.sh."""
    env = env or _environment()
    ctx = _context(spec, node)
    scripts: dict[str, str] = {}
    by_id = {p["id"]: p for p in ctx["pins"]}
    for s in STEPS:
        if s.script is None or not s.applies_to(node.role):
            continue
        missing = [a for a in s.artifacts if a not in by_id]
        if missing:
            raise ArtifactError(f"step {s.id} installs {', '.join(missing)}, which the artifact set does not pin with an install entry",
                           hint="the artifact set (labctl/artifacts/sets/ or $LABCTL_ARTIFACT_SET) must pin every file a step installs")
        artifacts = [by_id[a] for a in s.artifacts]
        scripts[s.script_name] = env.get_template(f"playbooks/{s.script}.sh.j2").render(step=s, artifacts=artifacts, **ctx)
    scripts[FACTS_SCRIPT] = env.get_template("playbooks/facts.sh.j2").render(**ctx)
    return scripts


def render_lab(spec: LabSpec, paths: LabPaths) -> RenderResult:
    """Write <lab>/Vagrantfile and <lab>/scripts/<node>/*.sh. Validate the spec first
    (callers normally have, via load_spec) so nothing is written for a bad spec."""
    from labctl.spec import validate

    validate(spec)
    env = _environment()
    # Render everything in memory first: a template error must not leave half a lab.
    files: list[tuple[Path, str, int]] = [(paths.vagrantfile, render_vagrantfile(spec, env, paths.root), 0o644)]
    for node in spec.nodes:
        for name, text in render_node_scripts(spec, node, env).items():
            files.append((paths.node_scripts(node.name) / name, text, 0o755))

    result = RenderResult()
    for path, text, mode in files:
        (result.written if atomic_write(path, text, mode=mode) else result.unchanged).append(path)
    result.removed = _remove_stale(paths, {p for p, _, _ in files})
    return result


def _remove_stale(paths: LabPaths, keep: set[Path]) -> list[Path]:
    removed: list[Path] = []
    if not paths.scripts.is_dir():
        return removed
    for node_dir in sorted(p for p in paths.scripts.iterdir() if p.is_dir()):
        for f in sorted(node_dir.iterdir()):
            if f.is_file() and (f.name in _OWNED or _OLD_NAMES.match(f.name)) and f not in keep:
                f.unlink()
                removed.append(f)
        try:
            node_dir.rmdir()  # only succeeds when empty: a user's own file stays
        except OSError:
            pass
    return removed


def render_lab_dir(paths: LabPaths) -> tuple[RenderResult, list[str]]:
    """`labctl render`: load the lab's spec (lab.yaml or the default), validate it and
    render. Returns the result and the spec's warnings. A bad spec writes nothing."""
    from labctl.spec import load_spec, validate

    spec = load_spec(paths.root)
    warnings = validate(spec)
    return render_lab(spec, paths), warnings
