"""What every doctor check returns: findings with a level and a fix, and the report.

Apart from the checks so that the provider modules (doctor_virtualbox, doctor_libvirt)
and the doctor itself import it without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    id: str
    level: str  # ok | warn | fail
    message: str
    fix: str | None = None


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings]}


def version_tuple(version: str) -> tuple[int, ...]:
    """"7.1.4" -> (7, 1, 4); non-numeric parts end the tuple."""
    out: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)
