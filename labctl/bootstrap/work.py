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
from labctl.errors import ArtifactError, NodeError


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
    """Push the host cache's tarball of each image the node lacks (another node of this
    lab, or an earlier lab, pulled it), so the node imports instead of pulling."""
    facts = ctx.facts.get(node, {})
    missing = sorted(words(facts, "images_missing"))
    if not missing:
        return False
    source = ctx.artifact_source()
    pushed = words(facts, "images_pushed")
    changed = False
    arch = facts.get("arch") or None
    for ref in missing:
        tarball = source.image_tarball(ref, arch)
        if tarball is None or tarball.name in pushed:
            continue
        ctx.sessions[node].put_file(tarball, f"{cat.REMOTE_IMAGES}/{tarball.name}.tar", mode=0o644, sudo=True,
                                    sha256=tarball.name)
        changed = True
    return changed


def collect_images(ctx: RunContext, node: str, step: Step) -> bool:
    """Bring the images the node pulled (and exported) into the host cache, then remove
    the node's export: the other nodes, and the next lab, get them from there."""
    import tempfile
    from pathlib import Path

    exported = sorted(words(ctx.facts.get(node, {}), "images_exported"))
    if not exported:
        return False
    source = ctx.artifact_source()
    session = ctx.sessions[node]
    arch = ctx.facts.get(node, {}).get("arch") or None  # an export holds this node's platform only
    with tempfile.TemporaryDirectory(prefix="labctl-image-") as tmp:
        for ref in exported:
            remote = f"{cat.REMOTE_IMAGES}/export/{_export_name(ref)}"
            if source.image_tarball(ref, arch) is None:
                local = Path(tmp) / "image.tar"
                session.get_file(remote, local, sudo=True)
                source.keep_image(ref, local, arch)
                local.unlink()
            res = session.run(f"sudo rm -f -- {shlex.quote(remote)}", timeout=60.0)
            if res.rc != 0:
                raise NodeError(f"cannot remove {remote} on {node}: {res.stderr.strip()}",
                               hint=f"run `labctl ssh {node} -- sudo rm -f {remote}` and `labctl up` again")
    return True


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
