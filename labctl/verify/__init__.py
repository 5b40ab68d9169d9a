"""`labctl verify`: check a running lab against the course's claims.

    verify(lab_dir, ["pod-3"]) -> VerifyReport

The catalogue (catalogue.py) holds the checks; runner.py retries each until its
deadline and runs them concurrently; report.py renders the result. Checks reach the
lab through the lab's kubeconfig (labctl.kube.client) and the lab's SSH sessions
(the Lab's session opener, labctl.lab.lab), both opened here and only when a check needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labctl.verify.catalogue import CHECKS, ids, select
from labctl.verify.model import Check, CheckResult, Status, VerifyReport
from labctl.errors import LabError, UsageError

__all__ = ["verify", "choose", "check_deadline", "ids", "CHECKS", "Check", "CheckResult", "Status", "VerifyReport"]


HOW_TO_CHOOSE = "name checks or groups (e.g. `labctl verify pod-1 svc-nodeport`), or run them all with `labctl verify --all`"


def choose(selectors: Sequence[str], *, all_checks: bool = False) -> list[Check]:
    """The checks a command line asks for; a usage error names the valid ids."""
    if all_checks and selectors:
        raise UsageError("give check ids or --all, not both", hint="`labctl verify --all` runs every check")
    if all_checks:
        return list(CHECKS)
    if not selectors:
        raise UsageError(
            "no check chosen: " + HOW_TO_CHOOSE,
            hint="the checks are " + ", ".join(ids()) + " (a group such as `pod-1` or `lab` runs pod-1-* or lab-*)",
        )
    return select(selectors)


def check_deadline(deadline: float | None) -> None:
    """--deadline must be a positive number of seconds (NaN and infinity are not)."""
    if deadline is None:
        return
    if not (0 < deadline < float("inf")):
        raise UsageError(
            f"--deadline {deadline:g}: must be a number of seconds greater than 0",
            hint="e.g. --deadline 30 (checks stop retrying then; verify ends within a few seconds of it)",
        )


def lab_node_runner(lab):
    """A NodeRunner over the lab's SSH sessions, each opened when a check first needs it."""
    from labctl.verify.context import SessionNodeRunner

    return SessionNodeRunner(lambda node: lab.session(node, deadline=30.0))


def verify(
    lab_dir: Path,
    selectors: Sequence[str] = (),
    *,
    all_checks: bool = False,
    deadline: float | None = None,
    strict: bool | None = None,
) -> VerifyReport:
    """Run the chosen checks against the lab in ``lab_dir``.

    Bad input (unknown check, bad deadline) raises UsageError. Anything else that stops
    verify from starting (no kubeconfig, lab.yaml invalid) comes back as a report whose
    ``error`` is set and whose every check is an ERROR: one report shape always.
    ``strict`` (default: ``all_checks``) makes a skipped check count as failed.
    """
    from labctl.lab.lab import Lab
    from labctl.verify.context import VerifyContext
    from labctl.verify.runner import run_checks
    from labctl.kube.client import KubeClient

    checks = choose(selectors, all_checks=all_checks)
    check_deadline(deadline)
    strict = all_checks if strict is None else strict
    # An API call and its one retry fit in --deadline (the runner stops waiting anyway).
    timeout = 10.0 if deadline is None else min(10.0, max(0.5, deadline / 2))
    try:
        lab = Lab.load(Path(lab_dir))
        cluster = KubeClient.for_lab(lab.paths, timeout=timeout)
    except LabError as exc:
        return VerifyReport.not_started(checks, exc, strict=strict)
    try:
        nodes = lab_node_runner(lab)
    except LabError as exc:
        cluster.close()
        return VerifyReport.not_started(checks, exc, strict=strict)
    try:
        ctx = VerifyContext(spec=lab.spec, cluster=cluster, nodes=nodes)
        report = run_checks(checks, ctx, concurrent=len(checks) > 1, deadline=deadline)
    finally:
        nodes.close()
        cluster.close()
    report.strict = strict
    return report
