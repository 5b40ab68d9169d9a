"""What a check is and what running one produced.

A check is data (id, title, deadline, hints) plus one function that makes a single
attempt against the lab and returns what it found wrong. The runner retries attempts
until the deadline, because a lab converges (endpoints lag a Service, a Pod takes a
moment to pull its image); only the last attempt's findings are reported.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"  # the lab is not as the course says
    ERROR = "error"  # the check could not look (API down, SSH refused, bug)
    SKIP = "skip"  # the check does not apply to this lab (e.g. no k8s-node1)


@dataclass(frozen=True)
class Mismatch:
    """One thing that is not as expected, named by where it is.

    ``path`` is dotted (``spec.nodeName``, ``status.containerStatuses[name=c2].ready``)
    or a probe's vantage (``GET http://10.0.0.1:8000 from k8s-master``).
    ``negated``: the assertion was "must not match" and it matched.
    """

    path: str
    expected: Any = None
    got: Any = None
    negated: bool = False
    note: str = ""

    def __str__(self) -> str:
        if self.note and self.expected is None and self.got is None:
            return f"{self.path}: {self.note}"
        if self.negated:
            text = f"{self.path}: expected anything but {_show(self.expected)}, got {_show(self.got)}"
        else:
            text = f"{self.path}: expected {_show(self.expected)}, got {_show(self.got)}"
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict:
        return {"path": self.path, "expected": self.expected, "got": self.got, "negated": self.negated, "message": str(self)}


class _Missing:
    """Marks a key that is absent, as opposed to present with a null value."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def _show(value: Any) -> str:
    if value is MISSING:
        return "<missing>"
    if isinstance(value, str):
        return value if value and value.strip() == value and "\n" not in value else repr(value)
    return repr(value) if not isinstance(value, (dict, list)) else _compact(value)


def _compact(value: Any, limit: int = 120) -> str:
    import json

    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Evidence:
    """Facts that explain a failure: events, container statuses, log lines."""

    title: str  # e.g. "events of Pod default/pod-3"
    lines: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"title": self.title, "lines": list(self.lines)}


@dataclass
class Attempt:
    """What one attempt found. Empty ``mismatches`` means the check passed."""

    mismatches: list[Mismatch] = field(default_factory=list)
    # Hints that depend on what was found (e.g. a FailedScheduling event).
    hints: list[str] = field(default_factory=list)
    # Subjects to gather evidence for if this is the final attempt, e.g. ("Pod", "pod-3").
    subjects: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, namespace, name)
    # Evidence the attempt already holds (e.g. a probe's response), shown on failure.
    evidence: list[Evidence] = field(default_factory=list)
    # Attempts that cannot improve by waiting (the object is not there and the
    # course never creates it on its own) stop retrying.
    final: bool = False

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def fail(self, path: str, expected: Any = None, got: Any = None, *, note: str = "", negated: bool = False) -> None:
        self.mismatches.append(Mismatch(path, expected, got, negated=negated, note=note))

    def extend(self, mismatches: Sequence[Mismatch]) -> None:
        self.mismatches.extend(mismatches)

    def hint(self, text: str) -> None:
        if text not in self.hints:
            self.hints.append(text)

    def about(self, kind: str, name: str, namespace: str = "default") -> None:
        subject = (kind, namespace, name)
        if subject not in self.subjects:
            self.subjects.append(subject)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    attempt: Callable[[Any], Attempt]  # (VerifyContext) -> Attempt
    deadline: float = 30.0  # seconds of retrying before a failure is final
    interval: float = 2.0  # seconds between attempts
    hints: tuple[str, ...] = ()  # shown on every failure of this check
    exercise: str | None = None  # the manifest `labctl apply` creates for it
    # (LabSpec) -> why the check does not apply to this lab, or None
    skip_reason: Callable[[Any], str | None] | None = None

    def matches(self, selector: str) -> bool:
        """`pod-1` selects pod-1 and its group (pod-1-localhost, pod-1-same-port)."""
        return self.id == selector or self.id.startswith(selector + "-")


@dataclass
class CheckResult:
    id: str
    title: str
    status: Status
    duration: float
    attempts: int = 1
    mismatches: list[Mismatch] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    message: str = ""  # for ERROR: what stopped the check from looking

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "duration": round(self.duration, 3),
            "attempts": self.attempts,
            "message": self.message,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "evidence": [e.to_dict() for e in self.evidence],
            "hints": list(self.hints),
        }


@dataclass
class VerifyReport:
    """What a verify run found. ``strict``: a SKIP counts as a failure (``--strict``, the
    default for ``--all``); otherwise a skip counts as passed, and the summary says so.
    ``error``: why the run could not start (no kubeconfig, lab.yaml invalid...); then
    every chosen check is an ERROR carrying that message, so the report (JSON, JUnit)
    has the same shape as any other run."""

    results: list[CheckResult]
    duration: float
    strict: bool = False
    error: Any = None  # a LabError

    @property
    def ok(self) -> bool:
        allowed = (Status.PASS,) if self.strict else (Status.PASS, Status.SKIP)
        return self.error is None and all(r.status in allowed for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    def summary(self) -> dict:
        return {s.value: self.count(s) for s in Status} | {"total": len(self.results)}

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "strict": self.strict,
            "duration": round(self.duration, 3),
            "summary": self.summary(),
            "error": self.error.to_dict() if self.error is not None else None,
            "checks": [r.to_dict() for r in self.results],
        }

    @classmethod
    def not_started(cls, checks: Sequence[Check], error: Any, *, strict: bool = False) -> "VerifyReport":
        hints = [error.hint] if getattr(error, "hint", None) else []
        results = [CheckResult(c.id, c.title, Status.ERROR, 0.0, attempts=0, hints=list(hints),
                               message=f"verify could not start: {error.message}") for c in checks]
        return cls(results, 0.0, strict=strict, error=error)
