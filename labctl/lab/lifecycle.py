"""Deprecated: the old home of `up`, halt/destroy/snapshot and the connector factories.

`up` is labctl.lab.up, halt/destroy/snapshots labctl.lab.machines, the kubeconfig
labctl.lab.kubeconfig, and the factories live on the Lab object (labctl.lab.lab):
``lab.provider`` and ``lab.session(node)``. These two wrappers remain only so that code
on other branches (labctl/verify/__init__.py: lab_node_runner) keeps working until it
takes a Lab; remove them then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from labctl.lab.lab import CONNECT_DEADLINE, Lab
from labctl.lab.paths import LabPaths


def driver_for(paths: LabPaths, env: Mapping[str, str] | None = None):
    """Deprecated: ``Lab.load(root).provider`` (it has ssh_target, states, up, ...)."""
    return Lab.load(paths.root, env=env).provider


def open_session(paths: LabPaths, target, *, deadline: float = CONNECT_DEADLINE, secrets: Iterable[str] = ()):
    """Deprecated: ``lab.session(node, deadline=...)``."""
    from labctl.remote.ssh import SSHSession

    session = SSHSession(target, known_hosts=paths.known_hosts, log_path=paths.node_log(target.name), secrets=secrets)
    try:
        session.connect(deadline)
    except BaseException:
        session.close()
        raise
    return session
