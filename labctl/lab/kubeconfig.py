"""`labctl kubeconfig`: where the lab's admin kubeconfig is, or merge it into another."""

from __future__ import annotations

from pathlib import Path

from labctl.errors import NotFound
from labctl.lab.paths import LabPaths


def kubeconfig(paths: LabPaths, *, merge_into: Path | None = None) -> Path:
    """The lab's kubeconfig path; with ``merge_into``, also merge it there."""
    import yaml

    from labctl.bootstrap.cluster import merge_kubeconfig

    if not paths.kubeconfig.exists():
        raise NotFound(f"{paths.kubeconfig} does not exist", hint="run `labctl up`; it writes the kubeconfig when the cluster is ready")
    if merge_into is not None:
        merge_kubeconfig(yaml.safe_load(paths.kubeconfig.read_text()), Path(merge_into))
        return Path(merge_into)
    return paths.kubeconfig
