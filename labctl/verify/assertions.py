"""Partial-object assertions on Kubernetes objects (as the API's JSON dicts).

``expected`` is a fragment of the object: only the keys it names are compared, lists
are matched as unordered subsets (each expected item must match some actual item),
and every difference is reported by its path, e.g.
``spec.nodeName: expected k8s-node1, got k8s-node2``. Items of lists of named things
(containers, conditions, ports) are addressed by their name or type in the path:
``status.conditions[type=Ready].status``.

Leaves may be predicates (``Quantity("1Gi")``, ``OneOf(...)``, ``Matches(r"...")``,
``Present()``) for values that have more than one correct spelling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labctl.verify.model import MISSING, Mismatch

# Keys that identify an item of a list, in order of preference.
_ITEM_KEYS = ("name", "type", "ip", "containerPort", "port", "key")


class Predicate:
    """A leaf matched by a test instead of equality; ``describe`` shows in mismatches."""

    def test(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.describe()


@dataclass(frozen=True, repr=False)
class Quantity(Predicate):
    """A resource quantity equal in value: 1Gi == 1024Mi."""

    value: str

    def test(self, value: Any) -> bool:
        if value is MISSING or value is None:
            return False
        from kubernetes.utils import parse_quantity

        try:
            return parse_quantity(value) == parse_quantity(self.value)
        except ValueError:
            return False

    def describe(self) -> str:
        return self.value


@dataclass(frozen=True, repr=False)
class OneOf(Predicate):
    values: tuple

    def test(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)


@dataclass(frozen=True, repr=False)
class Matches(Predicate):
    pattern: str

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and re.search(self.pattern, value) is not None

    def describe(self) -> str:
        return f"a value matching /{self.pattern}/"


@dataclass(frozen=True, repr=False)
class Present(Predicate):
    def test(self, value: Any) -> bool:
        return value is not MISSING and value not in (None, "", [], {})

    def describe(self) -> str:
        return "a value"


@dataclass(frozen=True, repr=False)
class Satisfies(Predicate):
    fn: Callable[[Any], bool]
    text: str

    def test(self, value: Any) -> bool:
        try:
            return bool(self.fn(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _item_label(item: Any) -> str | None:
    if isinstance(item, Mapping):
        for key in _ITEM_KEYS:
            if key in item and not isinstance(item[key], (Mapping, list, Predicate)):
                return f"{key}={item[key]}"
    return None


def match(expected: Any, actual: Any, path: str = "") -> list[Mismatch]:
    """Every way ``actual`` fails to contain ``expected``; empty when it does."""
    if isinstance(expected, Predicate):
        return [] if expected.test(actual) else [Mismatch(path or "<object>", expected.describe(), actual)]
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [Mismatch(path or "<object>", "an object", actual)]
        out: list[Mismatch] = []
        for key, want in expected.items():
            out += match(want, actual.get(key, MISSING), _join(path, str(key)))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [Mismatch(path or "<object>", "a list", actual)]
        return _match_subset(expected, actual, path)
    if expected == actual:
        return []
    return [Mismatch(path or "<object>", expected, actual)]


def _match_subset(expected: Sequence[Any], actual: Sequence[Any], path: str) -> list[Mismatch]:
    out: list[Mismatch] = []
    used: set[int] = set()
    for want in expected:
        hit = next((i for i, got in enumerate(actual) if i not in used and not match(want, got)), None)
        if hit is not None:
            used.add(hit)
            continue
        label = _item_label(want)
        if label:
            key, _, value = label.partition("=")
            same = [got for got in actual if isinstance(got, Mapping) and str(got.get(key)) == value]
            if same:
                # The named item exists: report how it differs, deepest path first.
                out += match(want, same[0], f"{path}[{label}]")
                continue
            out.append(Mismatch(f"{path}[{label}]", want, MISSING))
            continue
        if len(actual) == 1 and not used:
            # One candidate: say how it differs instead of "no item matches".
            out += match(want, actual[0], f"{path}[0]")
            continue
        out.append(Mismatch(f"{path}[]", want, list(actual), note="no item matches"))
    return out


def must_not_match(forbidden: Any, actual: Any, path: str = "") -> list[Mismatch]:
    """A negative assertion: a mismatch when ``actual`` contains ``forbidden``,
    reported at the forbidden fragment's leaf when it has one
    (``status.conditions[type=Ready].status: expected anything but True, got True``)."""
    if match(forbidden, actual, path):
        return []
    leaf_path, leaf, got = _leaf(forbidden, actual, path)
    want = leaf.describe() if isinstance(leaf, Predicate) else leaf
    return [Mismatch(leaf_path or "<object>", want, got, negated=True)]


def _leaf(fragment: Any, actual: Any, path: str) -> tuple[str, Any, Any]:
    """Follow a one-branch fragment down to its single leaf (else stop where it forks)."""
    if isinstance(fragment, Mapping) and len(fragment) == 1 and isinstance(actual, Mapping):
        key, sub = next(iter(fragment.items()))
        return _leaf(sub, actual.get(key), _join(path, str(key)))
    if isinstance(fragment, list) and len(fragment) == 1 and isinstance(actual, list):
        item = fragment[0]
        hit = next((got for got in actual if not match(item, got)), None)
        label = _item_label(item)
        if label and isinstance(item, Mapping):
            key = label.partition("=")[0]
            rest = {k: v for k, v in item.items() if k != key}
            return _leaf(rest if len(rest) == 1 else item, hit, f"{path}[{label}]")
        return _leaf(item, hit, f"{path}[]")
    return path, fragment, actual


def get_path(obj: Any, dotted: str, default: Any = MISSING) -> Any:
    """``get_path(pod, "status.podIP")``; a missing step gives ``default``."""
    cur = obj
    for part in dotted.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return default
    return cur
