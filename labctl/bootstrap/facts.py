"""Reading the ``key=value`` lines that a node's rendered ``facts.sh`` prints.

facts.sh (playbooks/facts.sh.j2) runs read-only probes in one SSH round trip. Every
probe is guarded, so a fact is either a value or the empty string; any other line
(a warning from a tool, a blank line) is ignored rather than guessed at.
"""

from __future__ import annotations

import re

from labctl.bootstrap.model import Facts

_LINE = re.compile(r"^([a-z][a-z0-9_]*)=(.*)$")

YES, NO = "yes", "no"


def parse_facts(stdout: str) -> dict[str, str]:
    """``key=value`` lines -> dict. A key printed twice keeps its last value."""
    facts: dict[str, str] = {}
    for raw in stdout.splitlines():
        m = _LINE.match(raw.rstrip("\r"))
        if m:
            facts[m.group(1)] = m.group(2).strip()
    return facts


def is_yes(facts: Facts, key: str) -> bool:
    return facts.get(key, "") == YES


def node_list(value: str) -> dict[str, tuple[str, ...]]:
    """``a/Ready/1.2.3.4,b/NotReady/1.2.3.5`` -> {"a": ("Ready", "1.2.3.4"), ...}.

    facts.sh prints the cluster's nodes in this one-line form (and the expected ones as
    ``name/ip``) so that a fact stays a single line."""
    nodes: dict[str, tuple[str, ...]] = {}
    for item in value.split(","):
        parts = tuple(p for p in item.strip().split("/"))
        if parts and parts[0]:
            nodes[parts[0]] = parts[1:]
    return nodes
