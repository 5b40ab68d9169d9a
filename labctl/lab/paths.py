"""Where a lab keeps its files. One place, so no module invents its own layout.

    <lab>/lab.yaml             the spec (optional)
    <lab>/Vagrantfile          rendered
    <lab>/scripts/<node>/...   rendered bootstrap scripts
    <lab>/kubeconfig           admin kubeconfig (0600), written by `up`
    <lab>/.labctl/state.json   progress, written atomically after every change
    <lab>/.labctl/lock         held by the command that changes the lab
    <lab>/.labctl/logs/        one log per node and per vagrant call
    <lab>/.labctl/known_hosts  the lab's pinned SSH host keys (never ~/.ssh)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "lab.yaml"

    @property
    def vagrantfile(self) -> Path:
        return self.root / "Vagrantfile"

    @property
    def scripts(self) -> Path:
        return self.root / "scripts"

    def node_scripts(self, node: str) -> Path:
        return self.scripts / node

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def meta(self) -> Path:
        return self.root / ".labctl"

    @property
    def state(self) -> Path:
        return self.meta / "state.json"

    @property
    def lock(self) -> Path:
        return self.meta / "lock"

    @property
    def logs(self) -> Path:
        return self.meta / "logs"

    def node_log(self, node: str) -> Path:
        return self.logs / f"{node}.log"

    @property
    def known_hosts(self) -> Path:
        return self.meta / "known_hosts"
