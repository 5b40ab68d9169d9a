"""How results and errors reach a person or a script."""

from __future__ import annotations

import json
import sys
from typing import Any

from labctl.errors import LabError, clip


# An error is one line: long enough for a path and a command, never a pasted file.
# A hint is labctl's own sentence (values in it are cut where they are quoted), so its
# bound only guards against a runaway list: cutting it would leave half a sentence.
MESSAGE_MAX, HINT_MAX, EVIDENCE_MAX = 600, 1200, 300


def print_error(err: LabError, *, as_json: bool = False) -> None:
    """``labctl: error: <message>`` on one line, the evidence (at most 10 lines, each
    cut), ``hint: <hint>``; or one JSON object on stdout with --json."""
    if as_json:
        print(json.dumps({"ok": False, **err.to_dict()}, default=str), file=sys.stdout)
        return
    print(f"labctl: error: {clip(err.message, MESSAGE_MAX)}", file=sys.stderr)
    for line in err.evidence[-10:]:
        print(f"  | {clip(line, EVIDENCE_MAX)}", file=sys.stderr)
    if err.hint:
        print(f"hint: {clip(err.hint, HINT_MAX)}", file=sys.stderr)


def emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=None, sort_keys=False, default=str))


def warn(message: str) -> None:
    print(f"labctl: warning: {message}", file=sys.stderr)


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(str(cell)))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers).rstrip()]
    lines += [fmt.format(*[str(c) for c in row]).rstrip() for row in rows]
    return "\n".join(lines)
