"""Engine-run work, by the names steps use (Step.before, Step.work).

Each is ``(context, node, step) -> changed``; none knows the engine.
"""

from __future__ import annotations

import shlex

from labctl.bootstrap import cluster
from labctl.bootstrap import steps as cat
from labctl.bootstrap.context import RunContext, Work
from labctl.bootstrap.facts import words
from labctl.bootstrap.model import Step
from labctl.errors import ArtifactError, CommandFailed, NodeError
from labctl.lab import events as ev


def push_artifacts(ctx: RunContext, node: str, step: Step) -> bool:
    """Push the files ``step`` installs from the host cache to the node, streamed, each
    only when the node has it neither installed (by its pinned sha256) nor pushed."""
    facts = ctx.facts.get(node, {})
    missing = words(facts, "artifacts_missing")
    wanted = [a for a in step.artifacts if a in missing]
    if not wanted:
        return False
    arch = facts.get("arch", "")
    if not arch:
        raise NodeError(f"{node} did not report its architecture (fact arch)",
                       hint=f"run `labctl ssh {node} -- uname -m`; labctl supports amd64 and arm64 nodes")
    local = ctx.artifact_source().files(arch)
    pushed = words(facts, "artifacts_pushed")
    changed = False
    for artifact_id in wanted:
        f = local.get(artifact_id)
        if f is None:
            raise ArtifactError(f"the artifact set has no file {artifact_id!r} that step {step.id} installs",
                           hint="the set (labctl/artifacts/sets/) and the steps disagree: a labctl bug, please report it")
        if f.sha256 in pushed:
            continue
        ctx.sessions[node].put_file(f.path, f"{cat.REMOTE_ARTIFACTS}/{f.sha256}", mode=0o644, sudo=True, sha256=f.sha256)
        changed = True
    return changed


def _export_name(ref: str) -> str:
    return ref.replace("/", "+") + ".tar"  # a ref has no "+"; facts.sh reads it back


def push_images(ctx: RunContext, node: str, step: Step) -> bool:
    """Push a tarball of each image the node lacks, so it imports instead of pulling:
    the host cache's (an earlier node or lab exported it), else one exported now from
    another node of the lab that has the image. Only what neither has is pulled, by the
    node's own script."""
    facts = ctx.facts.get(node, {})
    missing = sorted(words(facts, "images_missing"))
    if not missing:
        return False
    source = ctx.artifact_source()
    pushed = words(facts, "images_pushed")
    changed = False
    arch = facts.get("arch") or None
    for ref in missing:
        tarball = source.image_tarball(ref, arch) or _export_from_a_holder(ctx, node, ref, arch)
        if tarball is None or tarball.name in pushed:
            continue
        ctx.sessions[node].put_file(tarball, f"{cat.REMOTE_IMAGES}/{tarball.name}.tar", mode=0o644, sudo=True,
                                    sha256=tarball.name)
        changed = True
    return changed


def _holder(ctx: RunContext, node: str, ref: str, arch: str | None) -> str | None:
    """Another node (the spec's order: master first) whose containerd has ``ref``, by
    its latest facts, and whose export fits ``node`` (same architecture)."""
    for other in (n.name for n in ctx.spec.nodes):
        f = ctx.facts.get(other) or {}
        if other == node or other not in ctx.sessions or "images_missing" not in f:
            continue
        if arch and f.get("arch") == arch and ref not in words(f, "images_missing"):
            return other
    return None


def _export_from_a_holder(ctx: RunContext, node: str, ref: str, arch: str | None):
    holder = _holder(ctx, node, ref, arch)
    if holder is None:
        return None
    source = ctx.artifact_source()
    with ctx.node_lock(holder):  # two nodes lacking the image: one export
        if (tarball := source.image_tarball(ref, arch)) is not None:
            return tarball
        remote = f"{cat.REMOTE_IMAGES}/export/{_export_name(ref)}"
        session = ctx.sessions[holder]
        for command in (f"sudo mkdir -p -- {shlex.quote(cat.REMOTE_IMAGES + '/export')}",
                        f"sudo ctr -n k8s.io images export --platform {shlex.quote('linux/' + arch)}"
                        f" {shlex.quote(remote)} {shlex.quote(ref)}"):
            res = session.run(command, timeout=900.0)
            if res.rc == 0:
                continue
            raise CommandFailed(command, res.rc, res.stdout + res.stderr, where=holder, log_path=ctx.log_path(holder),
                                what=f"exporting {ref} for {node}",
                                hint=f"read `labctl ssh {holder} -- sudo ctr -n k8s.io images ls`; `labctl up` again "
                                     f"lets {node} pull the image itself if {holder} no longer has it")
        _collect(ctx, holder, ref, arch)
        ctx.bus.emit(ev.INFO, f"{ref}: exported on {holder} for {node} (the host cache had no copy)")
        return source.image_tarball(ref, arch)


def collect_images(ctx: RunContext, node: str, step: Step) -> bool:
    """Bring the images the node pulled (and exported) into the host cache, then remove
    the node's export: the other nodes, and the next lab, get them from there."""
    exported = sorted(words(ctx.facts.get(node, {}), "images_exported"))
    if not exported:
        return False
    arch = ctx.facts.get(node, {}).get("arch") or None  # an export holds this node's platform only
    for ref in exported:
        _collect(ctx, node, ref, arch)
    return True


def _collect(ctx: RunContext, node: str, ref: str, arch: str | None) -> None:
    """File the node's export of ``ref`` in the host cache (unless a copy is there), then
    remove it from the node."""
    import tempfile
    from pathlib import Path

    source = ctx.artifact_source()
    session = ctx.sessions[node]
    remote = f"{cat.REMOTE_IMAGES}/export/{_export_name(ref)}"
    if source.image_tarball(ref, arch) is None:
        with tempfile.TemporaryDirectory(prefix="labctl-image-") as tmp:
            local = Path(tmp) / "image.tar"
            session.get_file(remote, local, sudo=True)
            source.keep_image(ref, local, arch)
    res = session.run(f"sudo rm -f -- {shlex.quote(remote)}", timeout=60.0)
    if res.rc != 0:
        raise NodeError(f"cannot remove {remote} on {node}: {res.stderr.strip()}",
                        hint=f"run `labctl ssh {node} -- sudo rm -f {remote}` and `labctl up` again")


def upload_join_config(ctx: RunContext, node: str, step: Step) -> bool:
    return cluster.upload_join_config(ctx, node)


def export_kubeconfig(ctx: RunContext, node: str, step: Step) -> bool:
    return cluster.export_kubeconfig(ctx, node)


WORK: dict[str, Work] = {
    cat.PUSH_ARTIFACTS: push_artifacts,
    cat.PUSH_IMAGES: push_images,
    cat.COLLECT_IMAGES: collect_images,
    cat.JOIN_CONFIG: upload_join_config,
    cat.EXPORT_KUBECONFIG: export_kubeconfig,
}
