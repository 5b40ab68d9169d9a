"""`labctl verify`: check a running lab against the course's claims.

    verify(lab_dir, ["pod-3"]) -> VerifyReport

The catalogue (catalogue.py) holds the checks; runner.py retries each until its
deadline and runs them concurrently; report.py renders the result. Checks reach the
lab through the lab's kubeconfig (labctl.kube.client) and the lab's SSH sessions
(labctl.lab.lifecycle), both opened here and only when a check needs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from labctl.verify.catalogue import CHECKS, ids, select
from labctl.verify.model import Check, CheckResult, Status, VerifyReport
from labctl.errors import UsageError

__all__ = ["verify", "choose", "ids", "CHECKS", "Check", "CheckResult", "Status", "VerifyReport"]


def choose(selectors: Sequence[str], *, all_checks: bool = False) -> list[Check]:
    """The checks a command line asks for; a usage error names the valid ids."""
    if all_checks and selectors:
        raise UsageError("give check ids or --all, not both", hint="`labctl verify --all` runs every check")
    if all_checks:
        return list(CHECKS)
    if not selectors:
        raise UsageError("no check named", hint="run `labctl verify --all`, or name checks: " + ", ".join(ids()))
    return select(selectors)


def lab_node_runner(paths, vagrant_env: Mapping[str, str] | None = None):
    """A NodeRunner over the lab's SSH sessions (vagrant ssh-config + the lab's known_hosts)."""
    from labctl.lab.lifecycle import driver_for, open_session
    from labctl.verify.context import SessionNodeRunner

    driver = driver_for(paths, vagrant_env)
    return SessionNodeRunner(lambda node: open_session(paths, driver.ssh_target(node), deadline=30.0))


def verify(
    lab_dir: Path,
    selectors: Sequence[str] = (),
    *,
    all_checks: bool = False,
    deadline: float | None = None,
    vagrant_env: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Run the chosen checks against the lab in ``lab_dir``."""
    from labctl.lab.paths import LabPaths
    from labctl.spec import load_spec
    from labctl.verify.context import VerifyContext
    from labctl.verify.runner import run_checks
    from labctl.kube.client import KubeClient

    checks = choose(selectors, all_checks=all_checks)
    if deadline is not None and deadline < 0:
        raise UsageError(f"--deadline {deadline:g} is negative", hint="give the seconds each check may retry, e.g. --deadline 30")
    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    cluster = KubeClient.for_lab(paths)
    nodes = lab_node_runner(paths, vagrant_env)
    try:
        ctx = VerifyContext(spec=spec, cluster=cluster, nodes=nodes)
        return run_checks(checks, ctx, concurrent=len(checks) > 1, deadline=deadline)
    finally:
        nodes.close()
        cluster.close()
