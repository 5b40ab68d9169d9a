"""`labctl status`: each VM's state and, asked of the master over SSH, each node's
Ready condition, role, InternalIP and kubelet version; plus where the last run stopped.

Read-only, so it takes no lock: it may run while `labctl up` works, and it writes
nothing (a lab never brought up gets no .labctl/ and no .vagrant/ from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabError
from labctl.lab import events as ev
from labctl.lab.lab import Lab


@dataclass
class NodeStatus:
    name: str
    role: str
    ip: str
    vm: str
    ready: bool | None = None
    internal_ip: str = ""
    kubelet_version: str = ""
    steps_failed: list[str] = field(default_factory=list)


@dataclass
class StatusResult:
    lab: str
    nodes: list[NodeStatus]
    cluster_note: str = ""
    last_run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"lab": self.lab, "nodes": [asdict(n) for n in self.nodes], "cluster_note": self.cluster_note,
                "last_run": self.last_run}


GET_NODES_COMMAND = "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json"


def status(lab: Lab) -> StatusResult:
    """Each VM's state and, from the master, each node's Ready, InternalIP and version."""
    from labctl.bootstrap.cluster import parse_nodes
    from labctl.lab.state import read_state

    spec, paths = lab.spec, lab.paths
    rows = {n.name: NodeStatus(n.name, n.role, n.ip, "not created") for n in spec.nodes}
    note = ""
    if lab.provider.has_machines():
        states = lab.provider.states()
        for name, row in rows.items():
            row.vm = states[name].state if name in states else "unknown"
        master = spec.master.name
        if rows[master].vm == "running":
            try:
                session = lab.session(master, deadline=20.0)
                try:
                    res = session.run(GET_NODES_COMMAND, timeout=60.0, log_output=False)
                finally:
                    session.close()
                if res.rc == 0:
                    for item in parse_nodes(res.stdout):
                        if item["name"] in rows:
                            r = rows[item["name"]]
                            r.ready, r.internal_ip, r.kubelet_version = item["ready"], item["internal_ip"], item["kubelet_version"]
                            r.role = item["roles"] if item["roles"] != "<none>" else r.role
                else:
                    note = f"the cluster did not answer on {master} (kubectl exited {res.rc}); run `labctl up`"
            except LabError as err:
                note = f"cannot ask {master} for nodes: {err.message}"
        else:
            note = f"{master} is not running; run `labctl up`"
    else:
        note = "the lab was never brought up (it has no machines); run `labctl up`"
    state = read_state(paths)
    last = None
    if state:
        last = {k: state.get(k) for k in ("command", "result", "phase", "started", "finished", "error")}
        for name, rec in (state.get("nodes") or {}).items():
            if name in rows:
                rows[name].steps_failed = [s for s, v in rec.get("steps", {}).items() if v.get("status") == ev.FAILED]
    return StatusResult(spec.name, list(rows.values()), note, last)
