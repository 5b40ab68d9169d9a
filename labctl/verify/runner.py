"""Running checks: retries until each check's deadline, independent checks at once.

A lab converges (images pull, endpoints follow Pods, MetalLB assigns addresses), so a
failed attempt is retried until the check's deadline and only then reported, with the
evidence of the last attempt. Checks only read the lab, so they are independent and
run concurrently: `verify --all` takes about as long as its slowest check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from labctl.verify.context import VerifyContext
from labctl.verify.evidence import gather
from labctl.verify.model import Attempt, Check, CheckResult, Status, VerifyReport
from labctl.errors import LabError

MAX_WORKERS = 16


def run_check(
    check: Check,
    ctx: VerifyContext,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    reraise_bugs: bool = False,
) -> CheckResult:
    """Attempt ``check`` until it passes or its deadline (capped by ``deadline``) passes."""
    start = clock()
    skip = check.skip_reason(ctx.spec) if check.skip_reason else None
    if skip:
        return CheckResult(check.id, check.title, Status.SKIP, 0.0, attempts=0, message=skip)
    budget = check.deadline if deadline is None else min(check.deadline, deadline)
    end = start + budget
    attempts = 0
    last: Attempt | None = None
    error: BaseException | None = None
    while True:
        attempts += 1
        try:
            last, error = check.attempt(ctx), None
        except LabError as exc:  # the API or a node did not answer: retry like a mismatch
            error = exc
        except Exception as exc:  # a bug in a check must not sink the other checks' report
            if reraise_bugs:
                raise
            error = exc
        if error is None and last is not None and (last.passed or last.final):
            break
        remaining = end - clock()
        if remaining <= 0:
            break
        sleep(min(check.interval, remaining))
    duration = clock() - start
    if error is not None:
        return _errored(check, error, duration, attempts)
    assert last is not None
    if last.passed:
        return CheckResult(check.id, check.title, Status.PASS, duration, attempts)
    evidence, found_hints = gather(ctx.cluster, last.subjects)
    hints = _unique(last.hints + found_hints + list(check.hints))
    return CheckResult(
        check.id,
        check.title,
        Status.FAIL,
        duration,
        attempts,
        mismatches=list(last.mismatches),
        evidence=list(last.evidence) + evidence,
        hints=hints,
    )


def _errored(check: Check, error: BaseException, duration: float, attempts: int) -> CheckResult:
    if isinstance(error, LabError):
        hints = _unique(([error.hint] if error.hint else []) + list(check.hints))
        message = error.message
    else:
        hints = ["this is a bug in labctl: run again with --debug and report the traceback"]
        message = f"internal error: {type(error).__name__}: {error}"
    return CheckResult(check.id, check.title, Status.ERROR, duration, attempts, hints=hints, message=message)


def _unique(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


def run_checks(
    checks: Sequence[Check],
    ctx: VerifyContext,
    *,
    concurrent: bool = True,
    max_workers: int = MAX_WORKERS,
    deadline: float | None = None,
    reraise_bugs: bool = False,
    on_result: Callable[[CheckResult], None] | None = None,
) -> VerifyReport:
    """Run ``checks``; results come back in the catalogue's order whatever finishes first."""
    start = time.monotonic()

    def one(check: Check) -> CheckResult:
        result = run_check(check, ctx, deadline=deadline, reraise_bugs=reraise_bugs)
        if on_result:
            on_result(result)
        return result

    if concurrent and len(checks) > 1:
        # Threads, not processes: every check waits on the network, never on the CPU.
        with ThreadPoolExecutor(max_workers=min(max_workers, len(checks)), thread_name_prefix="verify") as pool:
            results = list(pool.map(one, checks))
    else:
        results = [one(c) for c in checks]
    return VerifyReport(results, time.monotonic() - start)
