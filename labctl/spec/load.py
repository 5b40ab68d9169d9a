"""Loading a lab's spec: lab.yaml (or the built-in course lab) -> a validated LabSpec.

This is the one place a spec is checked: types and unknown keys by pydantic, then the
rules between fields (labctl.spec.rules). Pydantic's errors are turned into the same
one-line SpecError every rule raises: the field's path (``nodes[1].ip``), what is wrong
(the value quoted, at most 60 characters) and a hint naming the fix.
"""

from __future__ import annotations

import difflib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from labctl.errors import LabFolderError, SpecError, clip, shown
from labctl.spec.defaults import default_nodes, default_spec, host_default_box
from labctl.spec.limits import SPEC_FILE
from labctl.spec.model import SECTIONS, LabSpec, Node
from labctl.spec.rules import check_networks, validate
from labctl.spec.yamlfile import read_yaml_file

_ADAPTER = TypeAdapter(LabSpec)
_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")
_HINTS = {
    "string_type": ("expected a string, got {}", "write a single value in quotes"),
    "int_type": ("expected a whole number, got {}", "write a number without quotes or units, like 2048"),
    "bool_type": ("expected true or false, got {}", "write true or false without quotes"),
}


def load_spec(lab_dir: Path) -> LabSpec:
    """The lab's spec: lab.yaml when present, else the built-in course lab."""
    lab_dir = Path(lab_dir)
    if lab_dir.exists() and not lab_dir.is_dir():
        raise LabFolderError(f"{clip(lab_dir, 200)} is not a folder", hint="pass --dir a lab folder (or a path where one may be made)")
    found, data = read_yaml_file(lab_dir / SPEC_FILE)
    if not found:
        spec = default_spec()
        validate(spec)
        return spec
    return spec_from_dict(data)


def spec_from_dict(data: Any) -> LabSpec:
    """Build and validate a spec from parsed YAML. Missing keys take the defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(SPEC_FILE, "must be a mapping of keys to values", hint="run `labctl init` for a template")
    # An empty section (`box:` with nothing under it) means "all defaults".
    data = {k: v for k, v in data.items() if not (k in SECTIONS and v is None)}
    if "nodes" in data and (not isinstance(data["nodes"], list) or not data["nodes"]):
        raise SpecError("nodes", "must be a non-empty list of nodes", hint="run `labctl init` for an example")
    try:
        spec = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise _spec_error(exc) from None
    if "nodes" not in data:
        spec = replace(spec, nodes=_default_nodes_for(spec))
    if "box" not in data:
        spec = replace(spec, box=host_default_box(spec.provider))
    validate(spec)
    return spec


def _default_nodes_for(spec: LabSpec):
    check_networks(spec.network, spec.provider)  # a bad host_only is named before it is used
    try:
        return default_nodes(2, spec.network)
    except ValueError:
        raise SpecError("network.host_only", f"{spec.network.host_only} has no room for the default nodes (.30-.32)",
                        hint="write the nodes out under nodes:, or use a /24 like 192.168.56.0/24") from None


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + clip(part)
    return out


def _fields_at(loc: tuple) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (for "did you mean")."""
    cls: Any = LabSpec
    if loc and loc[0] in SECTIONS:
        cls = SECTIONS[loc[0]]
    elif loc and loc[0] == "nodes":
        cls = Node
    return sorted(f.name for f in fields(cls))


def _spec_error(exc: ValidationError) -> SpecError:
    # Unknown keys first, the shallowest first: a typo in a section name explains the rest.
    errors = sorted(exc.errors(include_url=False), key=lambda e: (e["type"] not in _UNKNOWN, len(e["loc"]) if e["type"] in _UNKNOWN else 0))
    err = errors[0]
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    where = _path(loc) or SPEC_FILE
    if kind == "invalid_key":  # a key YAML read as a number, a date, null, ...
        where = _path(loc[:-1]) + ("." if len(loc) > 1 else "") + shown(loc[-1])
        return SpecError(where, "unknown key", hint="allowed: " + ", ".join(_fields_at(loc[:-1])))
    if kind in _UNKNOWN:
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1])[:100], known, n=1)
        return SpecError(where, "unknown key", hint=f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(known))
    if kind in ("missing", "missing_argument"):
        hint = "every node needs a name and an ip" if loc[:1] == ("nodes",) else "see `labctl init` for the layout"
        return SpecError(where, "is required", hint=hint)
    if kind in ("dataclass_type", "dataclass_args_type", "model_type"):
        if len(loc) == 2 and loc[0] == "nodes":
            return SpecError(where, "must be a mapping with name, role and ip",
                             hint="write it like {name: k8s-node1, role: worker, ip: 192.168.56.31}")
        if not loc:
            return SpecError(SPEC_FILE, "must be a mapping of keys to values", hint="run `labctl init` for a template")
        return SpecError(where, "must be a mapping", hint=f"see `labctl init` for the layout of {where}")
    if kind in _HINTS:
        message, hint = _HINTS[kind]
        return SpecError(where, message.format(shown(value)), hint=hint)
    return SpecError(where, f"{clip(err['msg'], 80)}, got {shown(value)}", hint="see `labctl init` for what each key takes")
