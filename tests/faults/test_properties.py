"""Property-based tests (Hypothesis) of the spec loader and the CLI's error boundary
(issue 12): whatever bytes lab.yaml holds and whatever values the options get, labctl
never says "a bug in labctl" (exit 70), never prints a traceback, answers in bounded
time, and writes nothing when it refuses.

The CLI runs in-process through labctl.cli.main (what the `labctl` script runs), with
stdout/stderr captured; each example gets a fresh lab folder. The commands exercised are
the ones that reach no VM and no cluster (those end at "no kubeconfig" here).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.errors import ExitCode, LabError, SpecError
from labctl.spec import default_spec, load_spec, spec_from_dict
from labctl.spec.initfile import spec_yaml

# Each example is well under a second; the deadline catches a hang or a blow-up.
# LABCTL_PROPERTY_EXAMPLES raises the count for a longer bug hunt (the suite keeps ~120: about 10 s).
PROPERTY = settings(max_examples=int(os.environ.get("LABCTL_PROPERTY_EXAMPLES", "120")), deadline=5000, suppress_health_check=[HealthCheck.too_slow], database=None)
DEFAULT_YAML = spec_yaml(default_spec()).encode()


def run_main(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    from labctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)  # relative --dir values land inside the example's folder
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.rglob("*"))}


def assert_clean_refusal(code: int, out: str, err: str) -> None:
    assert code != ExitCode.INTERNAL, err
    assert "Traceback" not in err + out, err
    if code not in (0,):
        errors = [line for line in err.splitlines() if line.startswith("labctl: error: ")]
        if errors:
            assert len(errors) == 1 and len(errors[0]) <= 650, err


@st.composite
def mutated_default(draw) -> bytes:
    """The lab.yaml `labctl init` writes, with bytes inserted, deleted or replaced."""
    raw = bytearray(DEFAULT_YAML)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
            [b"&a ", b"*a", b"\n  ", b"- ", b": ", b"{", b"[", b"\x00", b"\x1b", b"\xff", b"!!python/name:os.system ", b"1e999",
             b"0x", b"~", b"? ", b"\t", b"\r\n", b"'", b'"', b"9" * 30, b" 9" + b"9" * 5000, b" 2024-02-30"]))
        if op == "insert":
            raw[at:at] = chunk
        elif op == "delete":
            del raw[at:at + len(chunk)]
        else:
            raw[at:at + len(chunk)] = chunk
    return bytes(raw)


HOSTILE_SCALARS = ["2024-02-30", "9" * 5000, "1e999", "-.inf", ".nan", "0x1F", "0o17", "1_000", "~", "null", "yes", "no", "on",
                   "!!binary aGk=", "!!set {a}", "!!omap [a: 1]", "!!float x", "!!python/name:os.system", "&x 1", "*x", "<<: {a: 1}",
                   "{a: 1}", "[1, [2]]", "'", '"\\x00"', '"\\u2028"', "|\n  text", ">-\n  text", "2001-12-14t21:59:43.10-05:00"]
KEYS = ["name", "provider", "box", "  name", "  version", "kubernetes", "network", "  host_only", "  vbox_networks_conf_allows",
        "nodes", "  - name", "    ip", "    cpus", "    memory", "libvirt", "  boot_timeout", "<<", "? x", "1", "null"]


@st.composite
def yaml_lines(draw) -> bytes:
    """YAML-shaped text: lab.yaml's keys with hostile scalars and random text as values."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        value = draw(st.sampled_from(HOSTILE_SCALARS) | st.text(max_size=12))
        lines.append(f"{draw(st.sampled_from(KEYS))}: {value}")
    return "\n".join(lines).encode("utf-8", "surrogatepass")


lab_yaml_bytes = st.one_of(st.binary(max_size=2048), mutated_default(), yaml_lines(),
                           st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))


@PROPERTY
@given(raw=lab_yaml_bytes)
def test_any_bytes_as_lab_yaml(raw):
    with tempfile.TemporaryDirectory() as tmp:
        lab = Path(tmp)
        (lab / "lab.yaml").write_bytes(raw)
        code, out, err = run_main(["-C", str(lab), "render"], lab)
        assert code in (ExitCode.OK, ExitCode.SPEC_INVALID), (code, err)
        assert_clean_refusal(code, out, err)
        if code != ExitCode.OK:
            assert tree(lab) == {"lab.yaml": raw}  # nothing written on refusal


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                      max_leaves=12)
KEY_PATHS = ["name", "provider", "box", "box.name", "kubernetes", "kubernetes.version", "network", "network.host_only",
             "network.pod_cidr", "network.vbox_networks_conf_allows", "metallb.pool", "libvirt.boot_timeout", "nodes",
             "nodes.0", "nodes.1.ip", "nodes.1.memory", "nodes.0.role", "nodes.2", "calico.version", "extra"]


@PROPERTY
@given(changes=st.lists(st.tuples(st.sampled_from(KEY_PATHS), values), max_size=4))
def test_any_values_in_the_spec_give_a_spec_or_a_spec_error(changes):
    data = yaml.safe_load(DEFAULT_YAML)
    for path, value in changes:
        target = data
        *parents, last = path.split(".")
        for key in parents:
            nxt = target[int(key)] if isinstance(target, list) and key.isdigit() and int(key) < len(target) else (
                target.get(key) if isinstance(target, dict) else None)
            if not isinstance(nxt, (dict, list)):
                break
            target = nxt
        else:
            if isinstance(target, list) and last.isdigit():
                if int(last) < len(target):
                    target[int(last)] = value
            elif isinstance(target, dict):
                target[last] = value
    try:
        spec = spec_from_dict(data)
    except SpecError as err:
        assert len(err.message) < 400, err.message
    else:
        assert spec == spec_from_dict(yaml.safe_load(spec_yaml(spec)))  # what init writes reads back the same


root_dir = st.one_of(st.text(alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)), max_size=20)
                     .filter(lambda s: s not in ("", ".", "..")), st.just("afile"), st.just("afile/lab"), st.just("a\x00b"))
free_text = st.text(max_size=40)
number_text = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str), free_text)
commands = st.one_of(
    st.tuples(st.just("init"), st.lists(st.sampled_from(["--force", "--json"]), max_size=2),
              st.lists(st.tuples(st.sampled_from(["--nodes", "--name"]), number_text | free_text), max_size=2)),
    st.tuples(st.sampled_from(["render", "exercises", "status"]), st.lists(st.sampled_from(["--json", "--bogus"]), max_size=2),
              st.just([])),
    st.tuples(st.sampled_from(["apply", "reset"]), st.lists(st.sampled_from(["pod-1", "--all", "--json", "nosuch"]), max_size=3),
              st.lists(st.tuples(st.just("--timeout"), number_text), max_size=1)),
    st.tuples(st.sampled_from(["--version", "--help", "fly", "-h"]), st.just([]), st.just([])),
)


@PROPERTY
@given(where=root_dir, debug=st.booleans(), command=commands)
def test_any_argument_values(where, debug, command):
    name, flags, options = command
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "afile").write_text("not a folder")
        argv = (["--debug"] if debug else []) + ["-C", where, name, *flags]
        for option, value in options:
            argv += [option, value]
        before = tree(base)
        code, out, err = run_main(argv, base)
        assert code != ExitCode.INTERNAL, (argv, err)
        if not debug:
            assert "Traceback" not in err + out, (argv, err)
        if code != ExitCode.OK:
            assert tree(base) == before, argv  # a refusal writes nothing
        assert_clean_refusal(code, out, err) if not debug else None


def test_a_billion_laughs_is_refused_in_bounded_memory_and_time(tmp_path):
    import time
    import tracemalloc

    layers = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij"):
        layers.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (tmp_path / "lab.yaml").write_text("\n".join(layers) + "\n")  # 10**10 strings if expanded
    tracemalloc.start()
    started = time.monotonic()
    try:
        try:
            load_spec(tmp_path)
        except LabError as err:
            assert err.exit_code == ExitCode.SPEC_INVALID
        else:
            raise AssertionError("a billion laughs was accepted")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak
    assert time.monotonic() - started < 5
