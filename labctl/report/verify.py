"""A verify report for people (a table and the reasons), scripts (JSON) and graders
and CI (JUnit XML)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from labctl.verify.model import CheckResult, Status, VerifyReport

MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.ERROR: "ERROR", Status.SKIP: "SKIP"}
MAX_EVIDENCE_LINES = 12


def details(result: CheckResult) -> list[str]:
    """Why a check did not pass: mismatches, evidence, hints (one item per line)."""
    lines: list[str] = []
    if result.message:
        lines.append(result.message)
    lines += [str(m) for m in result.mismatches]
    for ev in result.evidence:
        lines.append(f"{ev.title}:")
        shown = list(ev.lines[-MAX_EVIDENCE_LINES:])
        if len(ev.lines) > len(shown):
            lines.append(f"  | ... {len(ev.lines) - len(shown)} earlier lines")
        lines += [f"  | {line}" for line in shown]
    lines += [f"hint: {h}" for h in result.hints]
    return lines


def render_text(report: VerifyReport) -> str:
    rows = [[r.id, MARK[r.status], f"{r.duration:.1f}s", r.title] for r in report.results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(("CHECK", "RESULT", "TIME", "TITLE"))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format("CHECK", "RESULT", "TIME", "TITLE").rstrip()]
    out += [fmt.format(*row).rstrip() for row in rows]
    for r in report.results:
        if r.status in (Status.FAIL, Status.ERROR):
            out.append("")
            out.append(f"{MARK[r.status]} {r.id}: {r.title} ({r.attempts} attempt{'s' if r.attempts != 1 else ''})")
            out += [f"  {line}" for line in details(r)]
        elif r.status is Status.SKIP and r.message:
            out.append("")
            out.append(f"SKIP {r.id}: {r.message}")
    out.append("")
    out.append(summary_line(report))
    return "\n".join(out)


def summary_line(report: VerifyReport) -> str:
    """One line with the counts; a skip's weight is spelt out, since it decides the exit code."""
    s = report.summary()
    line = f"{s['pass']} passed, {s['fail']} failed, {s['error']} errors, {s['skip']} skipped"
    if s["skip"]:
        line += " (--strict: skips count as failed)" if report.strict else " (skips count as passed; --strict fails on them)"
    if report.error is not None:
        line += f"; verify could not start: {report.error.message}"
    return f"{line} in {report.duration:.1f}s"


def render_json(report: VerifyReport) -> str:
    return json.dumps(report.to_dict(), default=str)


def render_junit(report: VerifyReport, *, suite: str = "labctl verify") -> str:
    s = report.summary()
    failures, skipped = (s["fail"] + s["skip"], 0) if report.strict else (s["fail"], s["skip"])
    counts = dict(tests=str(s["total"]), failures=str(failures), errors=str(s["error"]), skipped=str(skipped), time=f"{report.duration:.3f}")
    root = ET.Element("testsuites", name=suite, **counts)
    ts = ET.SubElement(root, "testsuite", name=suite, **counts)
    for r in report.results:
        group = r.id.split("-", 1)[0]
        case = ET.SubElement(ts, "testcase", classname=f"labctl.verify.{group}", name=r.id, time=f"{r.duration:.3f}")
        ET.SubElement(case, "properties").append(ET.Element("property", name="title", value=r.title))
        text = "\n".join(details(r))
        if r.status is Status.FAIL:
            first = str(r.mismatches[0]) if r.mismatches else r.title
            ET.SubElement(case, "failure", message=first, type="CheckFailed").text = text
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", message=r.message or "error", type="CheckError").text = text
        elif r.status is Status.SKIP and report.strict:
            # --strict: a check that could not be run is not a pass.
            ET.SubElement(case, "failure", message=f"skipped under --strict: {r.message or 'skipped'}", type="CheckSkipped").text = r.message
        elif r.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=r.message or "skipped")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
