"""Running checks: retries until each check's deadline, independent checks at once.

A lab converges (images pull, endpoints follow Pods, MetalLB assigns addresses), so a
failed attempt is retried until the check's deadline and only then reported, with the
evidence of the last attempt. Checks only read the lab, so they are independent and
run concurrently: `verify --all` takes about as long as its slowest check.

Nothing waits forever: a check stops retrying at its deadline (or `--deadline`), and
an attempt still in flight then gets at most ``GRACE`` more seconds. After that the
run ends anyway and the check is an ERROR whose message says it timed out (an API
server that accepts connections and never answers, a node whose SSH hangs). The
attempt's thread is a daemon: it cannot keep the process alive, and its own socket
timeouts end it soon after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from labctl.verify.context import VerifyContext
from labctl.verify.evidence import gather
from labctl.verify.model import Attempt, Check, CheckResult, Status, VerifyReport
from labctl.errors import LabError

MAX_WORKERS = 20
# Seconds an attempt in flight at the deadline may still take (one probe or API call).
GRACE = 5.0


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
    grace: float = GRACE,
) -> VerifyReport:
    """Run ``checks``; results come back in the catalogue's order whatever finishes first.

    The whole run ends by the longest check budget (capped by ``deadline``) plus
    ``grace``; a check without a result by then is an ERROR that says it timed out.
    """
    start = time.monotonic()
    budget = max((c.deadline if deadline is None else min(c.deadline, deadline) for c in checks), default=0.0)
    until = start + budget + grace
    results: dict[int, CheckResult] = {}
    done = threading.Condition()
    queue = list(enumerate(checks))
    workers = max(1, min(max_workers, len(checks))) if concurrent else 1

    def work() -> None:
        while True:
            with done:
                if not queue:
                    return
                index, check = queue.pop(0)
            try:
                result = run_check(check, ctx, deadline=deadline, reraise_bugs=reraise_bugs)
            except BaseException as exc:  # reraise_bugs: hand the bug to the caller's thread
                result = exc  # type: ignore[assignment]
            with done:
                results[index] = result
                done.notify_all()
            if on_result and isinstance(result, CheckResult):
                on_result(result)

    # Daemon threads, not an executor: an attempt stuck on a socket must not keep the
    # process (or the report) waiting; threads, not processes: checks wait on the network.
    for n in range(workers):
        threading.Thread(target=work, name=f"verify-{n}", daemon=True).start()
    with done:
        while len(results) < len(checks):
            left = until - time.monotonic()
            if left <= 0:
                break
            done.wait(left)
        finished = dict(results)
    for value in finished.values():
        if isinstance(value, BaseException):
            raise value
    out = []
    for index, check in enumerate(checks):
        result = finished.get(index)
        if result is None:
            result = _timed_out(check, time.monotonic() - start, budget + grace)
            if on_result:
                on_result(result)
        out.append(result)
    return VerifyReport(out, time.monotonic() - start)


def _timed_out(check: Check, duration: float, limit: float) -> CheckResult:
    message = (f"timed out: no result within {limit:g}s (an API server, node or probe that accepts "
               "connections but never answers)")
    hints = _unique(["is the lab up and answering? `labctl status`; `kubectl get --raw /readyz` should answer at once"]
                    + list(check.hints))
    return CheckResult(check.id, check.title, Status.ERROR, duration, attempts=0, hints=hints, message=message)
