"""A lab folder that cannot take a write (issue 12): full disk, read-only file system,
a state.json that is not labctl's. Each is one clear line, exit LAB_FOLDER (13),
nothing half-written, no temporary file left, and the same command run again once the
cause is gone finishes the job."""

from __future__ import annotations

import json

import pytest

from labctl.errors import ExitCode
from labctl.lab.fsutil import atomic_write
from tests.faults.namespace import namespaces_usable, run_in_namespace

needs_namespaces = pytest.mark.skipif(not namespaces_usable(), reason="needs root and unshare -m (private mount namespace)")


def _no_temp_files(tree: dict) -> None:
    assert not [p for p in tree if p.endswith(".tmp")], sorted(tree)


@needs_namespaces
def test_render_on_a_full_disk_leaves_no_half_file_and_a_rerun_completes(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    # 64 KiB cannot hold the ~80 KB a default lab renders to.
    failed, rerun = run_in_namespace(lab, [["tmpfs", "64k"], ["labctl", "-C", str(lab), "render"],
                                           ["remount", "4m"], ["labctl", "-C", str(lab), "render"]])
    assert failed["rc"] == ExitCode.LAB_FOLDER, failed["err"]
    lines = failed["err"].strip().splitlines()
    assert lines[0].startswith("labctl: error: no space left on the device holding "), lines
    assert lines[1].startswith("hint: free some disk space") and len(lines) == 2
    assert "Traceback" not in failed["err"]
    _no_temp_files(failed["tree"])
    assert rerun["rc"] == 0, rerun["err"]
    # Every file the failed run left is complete: byte-identical to the finished render.
    for path, digest in failed["tree"].items():
        assert rerun["tree"].get(path) == digest, path


@needs_namespaces
def test_init_on_a_full_disk_writes_nothing(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    (full,) = run_in_namespace(lab, [["tmpfs", "64k"], ["fill"], ["labctl", "-C", str(lab), "init"]])
    assert full["rc"] == ExitCode.LAB_FOLDER, full["err"]
    assert full["err"].startswith("labctl: error: no space left on the device holding ")
    assert set(full["tree"]) == {"filler"}


@needs_namespaces
def test_a_read_only_lab_folder_is_refused_and_left_as_it_was(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "lab.yaml").write_text("name: ro-lab\n")
    before = {"lab.yaml": None}
    init, render = run_in_namespace(lab, [["readonly"], ["labctl", "-C", str(lab), "init", "--force"],
                                          ["labctl", "-C", str(lab), "render"]])
    for r in (init, render):
        assert r["rc"] == ExitCode.LAB_FOLDER, r["err"]
        assert "is on a read-only file system" in r["err"].splitlines()[0]
        assert set(r["tree"]) == set(before)
    assert (lab / "lab.yaml").read_text() == "name: ro-lab\n"


def test_atomic_write_keeps_lf_and_leaves_nothing_when_the_target_cannot_be_replaced(tmp_path):
    target = tmp_path / "f.sh"
    assert atomic_write(target, "a\nb\n") is True
    assert target.read_bytes() == b"a\nb\n"
    assert atomic_write(target, "a\nb\n") is False  # same bytes: untouched
    (tmp_path / "dir").mkdir()
    from labctl.errors import LabFolderError

    with pytest.raises(LabFolderError):
        atomic_write(tmp_path / "dir", "x")  # a folder stands where the file goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "f.sh"]


_BAD_STATES = {
    "not-json": "{half",
    "a-list": "[]",
    "no-version": json.dumps({"lab": "k8s-lab"}),
    "future-version": json.dumps({"version": 99}),
    "machines-a-list": json.dumps({"version": 1, "lab": "k8s-lab", "command": "up", "result": "done", "phase": None,
                                   "started": 1.0, "updated": 1.0, "finished": None, "error": None,
                                   "machines": [], "nodes": {}}),
    "steps-a-string": json.dumps({"version": 1, "lab": "k8s-lab", "command": "up", "result": "done", "phase": None,
                                  "started": 1.0, "updated": 1.0, "finished": None, "error": None,
                                  "machines": {}, "nodes": {"k8s-master": {"steps": "done"}}}),
    "binary": "\udcff\x00",
}


@pytest.mark.parametrize("name", sorted(_BAD_STATES))
def test_a_state_json_that_is_not_labctls_is_named(tmp_path, capsys, name):
    from tests.spec.cli import run_cli

    state = tmp_path / ".labctl" / "state.json"
    state.parent.mkdir()
    state.write_bytes(_BAD_STATES[name].encode("utf-8", "surrogateescape"))
    before = state.read_bytes()
    res = run_cli(capsys, "-C", str(tmp_path), "status")
    assert res.code == ExitCode.LAB_FOLDER, res
    lines = res.err.strip().splitlines()
    assert lines[0].startswith(f"labctl: error: {state} ") and lines[1].startswith("hint: delete .labctl/state.json")
    assert state.read_bytes() == before
