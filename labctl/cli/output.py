"""How results and errors reach a person or a script."""

from __future__ import annotations

import json
import sys
from typing import Any

from labctl.errors import LabError


def print_error(err: LabError, *, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"ok": False, **err.to_dict()}), file=sys.stdout)
        return
    print(f"labctl: error: {err.message}", file=sys.stderr)
    for line in err.evidence[-10:]:
        print(f"  | {line}", file=sys.stderr)
    if err.hint:
        print(f"hint: {err.hint}", file=sys.stderr)


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
