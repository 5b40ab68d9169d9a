"""Read lab.yaml as hostile input: bounded in size, time and memory, one clear error.

Before anything is parsed the file must be a regular file of at most MAX_BYTES, UTF-8
text without NUL or control characters. The YAML is then walked as events (in C when
libyaml is there) and refused if it uses anchors or aliases (the billion-laughs kind of
bomb is built from them, and a lab spec never needs them), nests deeper than MAX_DEPTH
or holds more than MAX_EVENTS values; a key written twice in one mapping is refused
(YAML would silently keep the last). Only then is it composed and constructed.
Every failure is a SpecError whose field names the file (and the line).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from labctl.errors import SpecError, clip, shown

MAX_BYTES = 1 << 20  # lab.yaml written by `labctl init` is ~3 KB
MAX_DEPTH = 16  # lab.yaml nests 3 deep (nodes -> [i] -> key)
MAX_EVENTS = 20_000  # ~250 in a 10-node lab.yaml
# What YAML 1.1 does not allow in a stream (tab, LF, CR and NEL are allowed).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
_FIX = "fix it, or write a fresh one with `labctl init --force`"

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _guarded(construct):
    """A scalar constructor whose ValueError (a 5000-digit int, 2024-02-30) becomes a
    YAML error at the value's line instead of an exception nobody expects."""

    def run(loader, node):
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(None, None, f"cannot read {shown(node.value)} ({type(exc).__name__})", node.start_mark) from None

    return run


class _Loader(_Base):  # type: ignore[misc, valid-type]
    pass


for _tag in ("int", "float", "timestamp", "binary"):
    _full = f"tag:yaml.org,2002:{_tag}"
    _Loader.add_constructor(_full, _guarded(yaml.SafeLoader.yaml_constructors[_full]))


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes | None:
    """The file's bytes, or None when there is no file. Refuses anything that is not a
    regular file of at most ``limit`` bytes without reading more than that."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        if os.path.lexists(path):
            raise SpecError(name, "is a link to a file that does not exist", hint="remove the link or point it at a lab.yaml") from None
        return None
    except IsADirectoryError:
        raise SpecError(name, "is a folder, not a file", hint="remove or rename that folder; lab.yaml must be a text file") from None
    except PermissionError:
        raise SpecError(name, "cannot be read: permission denied", hint="make it readable (chmod 644) or run labctl as its owner") from None
    except OSError as exc:
        raise SpecError(name, f"cannot be opened ({exc.strerror or type(exc).__name__})", hint=_FIX) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(name, "is a folder, not a file", hint="remove or rename that folder; lab.yaml must be a text file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(name, "is not a regular file (a device, pipe or socket)", hint="lab.yaml must be a text file")
        if info.st_size > limit:
            raise SpecError(name, f"is {info.st_size} bytes; lab.yaml may be at most {limit} bytes", hint=_FIX)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while we read
            raise SpecError(name, f"is more than {limit} bytes; lab.yaml may be at most {limit} bytes", hint=_FIX)
        return b"".join(chunks)
    except OSError as exc:
        raise SpecError(name, f"cannot be read ({exc.strerror or type(exc).__name__})", hint=_FIX) from None
    finally:
        os.close(fd)


def decode(raw: bytes, name: str) -> str:
    """UTF-8 text (a BOM, as Windows editors write, is allowed) free of control characters."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(name, "is UTF-16 text", hint="save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)")
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise SpecError(f"{name} line {line}", "holds a NUL byte: this is a binary file, not YAML text", hint=_FIX)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(f"{name} line {line}", f"is not UTF-8 text (byte 0x{raw[exc.start]:02x})", hint="save it as UTF-8") from None
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise SpecError(f"{name} line {line}", f"column {column}: control character U+{ord(bad.group()):04X} is not allowed",
                        hint="remove it (it may have come from a copy and paste)")
    return text


def _check_events(loader: Any, name: str) -> None:
    depth = count = 0
    while loader.check_event():
        event = loader.get_event()
        count += 1
        where = f"{name} line {event.start_mark.line + 1}"
        if count > MAX_EVENTS:
            raise SpecError(where, f"more than {MAX_EVENTS} values: this is not a lab spec", hint=_FIX)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise SpecError(where, "uses a YAML anchor or alias (&name / *name), which lab.yaml does not allow",
                            hint="write each value out in full")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(where, f"nests more than {MAX_DEPTH} levels deep: this is not a lab spec", hint=_FIX)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _key_text(node: Any) -> str:
    return clip(node.value) if isinstance(node, ScalarNode) and isinstance(node.value, str) else "?"


def _check_duplicate_keys(root: Any, name: str) -> None:
    stack = [(root, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                field = f"{where}.{_key_text(key)}" if where else _key_text(key)
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    ident = (key.tag, key.value)
                    if ident in seen:
                        raise SpecError(field, f"is written twice in {name} (lines {seen[ident]} and {line})",
                                        hint="keep one of them: YAML would silently use the last")
                    seen[ident] = line
                stack.append((value, field))
        elif isinstance(node, SequenceNode):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node.value))


def parse(text: str, name: str) -> Any:
    """The YAML document in ``text`` as Python data, refusing the constructs above."""
    try:
        events = _Loader(text)
        try:
            _check_events(events, name)
        finally:
            events.dispose()
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_duplicate_keys(node, name)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{name} line {mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(where, f"is not valid YAML ({clip(problem, 80)})",
                        hint="fix the syntax or regenerate it with `labctl init --force`") from None


def read_yaml_file(path: Path) -> tuple[bool, Any]:
    """(found, data) for the YAML file at ``path``; (False, None) when there is none."""
    raw = read_bytes(path)
    if raw is None:
        return False, None
    return True, parse(decode(raw, str(path)), str(path))
