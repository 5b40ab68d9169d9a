"""One lab, as every command sees it: its spec, its folder, its machines (a Provider),
how to open a session on a node, and how to reach its Kubernetes API.

Built once per command (``Lab.load`` from the CLI, or by hand in tests with in-memory
parts) and handed down; no module below reaches up for a factory.

    lab = Lab.load(lab_dir)                      # lab.yaml (or the course's lab)
    lab.provider.states()                        # the machines
    with lab.session("k8s-master") as s: ...     # a connected Session
    lab.kube()                                   # a KubeClient on the lab's kubeconfig
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labctl.errors import NotFound, UsageError
from labctl.lab.paths import LabPaths
from labctl.providers.base import Provider
from labctl.spec.model import LabSpec

CONNECT_DEADLINE = 300.0

# (lab, node, deadline in seconds) -> a connected session (labctl.bootstrap.context.Session).
SessionOpener = Callable[["Lab", str, float], Any]
KubeFactory = Callable[["Lab"], Any]
HostCheck = Callable[[LabSpec], Any]


def ssh_session(lab: Lab, node: str, deadline: float) -> Any:
    """The real opener: the provider's SSH endpoint, the lab's pinned host keys, one log
    per node; connected (retrying while the node boots) or closed and raised."""
    from labctl.remote.ssh import SSHSession

    session = SSHSession(lab.provider.ssh_target(node), known_hosts=lab.paths.known_hosts,
                         log_path=lab.paths.node_log(node))
    try:
        session.connect(deadline)
    except BaseException:
        session.close()
        raise
    return session


def kube_client(lab: Lab) -> Any:
    from labctl.kube.client import KubeClient

    return KubeClient.for_lab(lab.paths)


def require_ready_host(spec: LabSpec) -> Any:
    from labctl.host import doctor

    return doctor.require_ready(spec)


@dataclass
class Lab:
    paths: LabPaths
    spec: LabSpec
    provider: Provider
    open_session: SessionOpener = ssh_session
    kube_factory: KubeFactory = kube_client
    # What `up` asks before it writes anything: can this host run the lab?
    host_check: HostCheck = require_ready_host
    # The spec came from --nodes/--provider and lab.yaml does not exist yet: `up`
    # writes it, so that every later command sees the same nodes and provider.
    spec_to_write: bool = field(default=False)

    @classmethod
    def load(
        cls,
        lab_dir: Path,
        *,
        workers: int | None = None,
        provider: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Lab:
        """The lab in ``lab_dir``; ``workers``/``provider`` are `up`'s overrides, which must
        agree with lab.yaml when it exists. ``env`` is added to the provider's environment."""
        from labctl.providers import open_provider

        paths = LabPaths(Path(lab_dir))
        spec = resolve_spec(paths, workers=workers, provider=provider)
        written = (workers is not None or provider is not None) and not paths.spec.exists()
        return cls(paths, spec, open_provider(paths, spec, env=env), spec_to_write=written)

    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.spec.nodes]

    def session(self, node: str, *, deadline: float = CONNECT_DEADLINE) -> Any:
        """A connected session on ``node``; the caller closes it."""
        return self.open_session(self, node, deadline)

    def kube(self) -> Any:
        return self.kube_factory(self)

    def require_machines(self, what: str) -> None:
        """NotFound (exit 8) naming the fix when the lab has no machine to act on."""
        if not self.provider.has_machines():
            raise NotFound(f"lab {self.spec.name} in {self.root} has no machines to {what}",
                           hint="run `labctl up` first")


def resolve_spec(paths: LabPaths, *, workers: int | None = None, provider: str | None = None) -> LabSpec:
    """The lab's spec with command-line overrides; --nodes must agree with lab.yaml."""
    from labctl.spec import default_spec, load_spec, validate

    if paths.spec.exists():
        spec = load_spec(paths.root)
        if workers is not None and workers != len(spec.workers):
            raise UsageError(
                f"--nodes {workers} does not match lab.yaml in {paths.root}, which has {len(spec.workers)} workers",
                hint="drop --nodes (lab.yaml decides), or edit the nodes in lab.yaml; a running lab must be destroyed first",
            )
        if provider is not None and provider != spec.provider:
            raise UsageError(
                f"--provider {provider} does not match lab.yaml in {paths.root}, which says provider: {spec.provider}",
                hint="drop --provider (lab.yaml decides), or `labctl destroy` the lab and change provider in lab.yaml",
            )
        return spec
    spec = default_spec(2 if workers is None else workers)
    if provider is not None:
        spec = replace(spec, provider=provider)
    validate(spec)
    return spec
