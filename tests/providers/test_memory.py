"""MemoryProvider keeps the Provider Protocol's promises (labctl.providers.base)."""

from __future__ import annotations

import pytest

from labctl.errors import ExitCode, LabError
from labctl.providers.base import Provider
from labctl.providers.memory import MemoryProvider


def test_it_is_a_provider_and_starts_without_machines():
    p = MemoryProvider(["a", "b"])
    assert isinstance(p, Provider)
    assert not p.has_machines()
    assert {n: s.state for n, s in p.states().items()} == {"a": "not_created", "b": "not_created"}


def test_up_halt_destroy_and_events():
    p = MemoryProvider(["a", "b"])
    events = []
    p.up(["a", "b"], parallel=2, on_event=lambda n, e: events.append((n, e)))
    assert events == [("a", "started"), ("a", "running"), ("b", "started"), ("b", "running")]
    assert p.has_machines() and all(s.running for s in p.states().values())
    p.halt(["a"])
    assert p.states()["a"].state == "poweroff"
    p.destroy()
    assert not p.has_machines()
    assert [c[0] for c in p.calls if c[0] != "states"] == ["up", "halt", "destroy"]


def test_a_failure_names_the_machine_and_is_a_provider_failure():
    p = MemoryProvider(["a", "b"])
    p.fail("up", "b", "VT-x is not available")
    with pytest.raises(LabError) as exc:
        p.up(["a", "b"], parallel=2)
    assert exc.value.exit_code == ExitCode.PROVIDER_FAILED and "b" in exc.value.message
    assert "VT-x" in "\n".join(exc.value.evidence)
    assert p.states()["a"].running and not p.states()["b"].running


def test_snapshots_and_ssh_targets():
    p = MemoryProvider(["a"])
    with pytest.raises(LabError):
        p.ssh_target("a")  # not running
    p.up(["a"], parallel=1)
    assert p.ssh_target("a").name == "a"
    p.snapshot_save("s1")
    assert p.snapshot_list() == {"a": ["s1"]}
    p.halt(["a"])
    p.snapshot_restore("s1")
    assert p.states()["a"].running
    p.snapshot_delete("s1")
    assert p.snapshot_list() == {"a": []}
