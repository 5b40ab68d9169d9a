"""lab.yaml as hostile input (issue 12): whatever the file is, labctl answers with one
line naming the file (and the line) and the problem, exit SPEC_INVALID, quickly, with
bounded memory, quoting at most 60 characters of any value, and writes nothing."""

from __future__ import annotations

import os
import time
import tracemalloc

import pytest

from labctl.errors import ExitCode, SpecError
from labctl.spec import load_spec
from labctl.spec.yamlfile import MAX_BYTES, MAX_EVENTS
from tests.spec.cli import lab_files, run_cli

_BOMB = (
    b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + b"".join(
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n".encode()
        for p, n in zip("abcdefgh", "bcdefghi")
    )
)

# (id, lab.yaml bytes, text the one-line error must contain)
HOSTILE = [
    ("billion-laughs", _BOMB, "anchor or alias"),
    ("alias-only", b"name: &n k8s-lab\nprovider: *n\n", "anchor or alias"),
    # "nests more than MAX_DEPTH levels" (or, from a libyaml that caps depth itself, "maximum nesting depth")
    ("deep-nesting", b"[" * 50_000 + b"]" * 50_000, "nest"),
    ("too-many-values", b"nodes: [" + b"1," * (MAX_EVENTS + 10) + b"1]\n", f"more than {MAX_EVENTS} values"),
    ("too-large", b"# " + b"x" * MAX_BYTES + b"\n", f"at most {MAX_BYTES} bytes"),
    ("binary", b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary file"),
    ("not-utf8", "name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("utf16", "name: k8s-lab\n".encode("utf-16"), "UTF-16"),
    ("control-char", b"name: k8s\x1b[31mlab\n", "control character U+001B"),
    ("duplicate-top-key", b"name: a-lab\nprovider: virtualbox\nname: b-lab\n", "name: is written twice"),
    ("duplicate-nested-key", b"nodes:\n  - name: k8s-master\n    ip: 192.168.56.30\n    ip: 192.168.56.31\n", "nodes[0].ip: is written twice"),
    ("huge-int", b"libvirt:\n  boot_timeout: " + b"9" * 10_000 + b"\n", "line 2"),
    ("impossible-date", b"name: 2024-02-30\n", "line 1"),
    ("python-tag", b"name: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
    ("two-documents", b"name: a\n---\nname: b\n", "not valid YAML"),
    ("unhashable-key", b"? [a, b]\n: 1\n", "not valid YAML"),
    ("int-key", b"1: 2\n", "unknown key"),
]


@pytest.mark.parametrize("raw,expected", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_lab_yaml_is_one_line_exit_3_and_writes_nothing(tmp_path, capsys, raw, expected):
    (tmp_path / "lab.yaml").write_bytes(raw)
    started = time.monotonic()
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    took = time.monotonic() - started
    assert res.code == ExitCode.SPEC_INVALID, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("labctl: error: ") and lines[1].startswith("hint: "), res.err
    assert expected in lines[0], lines[0]
    assert len(lines[0]) < 250, lines[0]  # no value echoed whole
    assert "Traceback" not in res.err + res.out
    assert lab_files(tmp_path) == {"lab.yaml"}
    assert (tmp_path / "lab.yaml").read_bytes() == raw
    assert took < 10, took  # generous for 2 shared cores; typical well under 1 s


@pytest.mark.parametrize("name,raw", [("billion-laughs", _BOMB), ("deep", b"[" * 200_000 + b"]" * 200_000)])
def test_a_yaml_bomb_is_refused_in_bounded_memory(tmp_path, name, raw):
    (tmp_path / "lab.yaml").write_bytes(raw)
    tracemalloc.start()
    try:
        with pytest.raises(SpecError):
            load_spec(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The bomb expands to 9**9 (387 million) strings; refusing it costs a few MB at most.
    assert peak < 32 * 2**20, peak


def test_the_error_names_the_file(tmp_path, capsys):
    (tmp_path / "lab.yaml").write_bytes(b"\x00")
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert str(tmp_path / "lab.yaml") in res.err


def test_a_long_value_is_quoted_cut_to_60_characters(tmp_path, capsys):
    (tmp_path / "lab.yaml").write_text("name: " + "x" * 500_000 + "\n")
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == ExitCode.SPEC_INVALID
    first = res.err.splitlines()[0]
    assert "'" + "x" * 56 + "..." in first and "x" * 61 not in first


def test_a_long_unknown_key_is_cut(tmp_path, capsys):
    (tmp_path / "lab.yaml").write_text("network:\n  " + "k" * 1000 + ": 1\n")
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == ExitCode.SPEC_INVALID
    assert "unknown key" in res.err and "k" * 61 not in res.err


@pytest.mark.parametrize("kind", ["folder", "fifo", "dangling-link", "device"])
def test_lab_yaml_that_is_not_a_regular_file(tmp_path, capsys, kind):
    path = tmp_path / "lab.yaml"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif kind == "dangling-link":
        path.symlink_to(tmp_path / "nowhere.yaml")
    else:
        path.symlink_to("/dev/zero")  # reading it would never end
    res = run_cli(capsys, "-C", str(tmp_path), "render")
    assert res.code == ExitCode.SPEC_INVALID, res
    assert res.err.startswith(f"labctl: error: {path}: ")
    assert lab_files(tmp_path) == {"lab.yaml"}


def without_dac(*argv: str) -> list[str]:
    """argv run as a root that obeys file permissions (chmod does not stop full root)."""
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root and setpriv to drop CAP_DAC_OVERRIDE")
def test_lab_yaml_without_read_permission(tmp_path):
    import subprocess
    import sys

    (tmp_path / "lab.yaml").write_text("name: k8s-lab\n")
    (tmp_path / "lab.yaml").chmod(0o000)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(without_dac(sys.executable, "-m", "labctl", "-C", str(tmp_path), "render"), capture_output=True,
                       text=True, timeout=60, env={**os.environ, "PYTHONPATH": root}, cwd=root)
    assert r.returncode == ExitCode.SPEC_INVALID, r.stderr
    assert r.stderr.startswith(f"labctl: error: {tmp_path / 'lab.yaml'}: cannot be read: permission denied"), r.stderr
    assert "Traceback" not in r.stderr
    assert lab_files(tmp_path) == {"lab.yaml"}


def test_accepted_text_forms(tmp_path):
    # Windows editors: a UTF-8 BOM and CRLF line ends; tabs inside values are fine too.
    (tmp_path / "lab.yaml").write_bytes(b"\xef\xbb\xbfname: lab-a\r\nprovider: virtualbox\r\n")
    assert load_spec(tmp_path).name == "lab-a"


def test_an_empty_section_takes_its_defaults(tmp_path):
    (tmp_path / "lab.yaml").write_text("box:\nname: lab-b\n")
    spec = load_spec(tmp_path)
    assert spec.name == "lab-b" and spec.box.name == "bento/ubuntu-22.04"


def test_a_lab_folder_that_is_a_file(tmp_path):
    from labctl.errors import LabFolderError

    (tmp_path / "f").write_text("")
    with pytest.raises(LabFolderError):
        load_spec(tmp_path / "f")
