"""Every file labctl writes (rendered files, lab.yaml, lock, known_hosts, vagrant and node logs) has LF line endings on every host: rendered scripts run in
Linux VMs (bash chokes on "\\r") and the Vagrantfile is compared byte for byte on
re-render. Proven under windows_sim.py, where a text-mode write without an explicit
newline gets CRLF exactly as on Windows, and from a checkout whose templates have CRLF
(git's core.autocrlf=true on Windows)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.portability.conftest import REPO, WindowsLike


def _crlf_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and b"\r\n" in p.read_bytes())


def _rendered(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and (p.name == "Vagrantfile" or "scripts" in p.parts)}


def test_init_and_render_write_lf_under_windows_text_mode(windows_like, tmp_path):
    lab = tmp_path / "lab"
    for args in (["init"], ["render"], ["doctor"]):
        proc = windows_like.labctl(lab, *args)
        assert proc.returncode in (0, 4), proc.stderr
    files = _rendered(lab)
    assert "Vagrantfile" in files and sum(1 for f in files if f.endswith(".sh")) >= 10
    assert _crlf_files(lab) == []


HOST_FILES = """
import sys
from pathlib import Path
from labctl.lab.lock import lab_lock
from labctl.lab.paths import LabPaths
from labctl.providers.vagrant.proc import LoggedProcess
from labctl.remote.hostkeys import HostKey, verify_or_pin
from labctl.remote.log import NodeLog, Redactor

lab = Path(sys.argv[1])
with lab_lock(LabPaths(lab), "up"):
    verify_or_pin(lab / ".labctl" / "known_hosts", "k8s-master", "127.0.0.1", 2222, HostKey("ssh-ed25519", "AAAAC3Nza"))
    p = LoggedProcess([sys.executable, "-c", "print('one'); print('two')"], cwd=lab, env={}, log_path=lab / ".labctl" / "logs" / "x.log")
    print(p.wait(deadline=60, grace=1).rc)
node_log = NodeLog(lab / ".labctl" / "logs" / "k8s-master.log", Redactor())
node_log.event("connected")
node_log.lines("stdout", ["a", "b"])
node_log.close()
"""


def test_lock_known_hosts_and_logs_are_lf_under_windows_text_mode(windows_like, tmp_path):
    import subprocess
    import sys

    lab = tmp_path / "lab"
    lab.mkdir()
    proc = subprocess.run([sys.executable, "-c", HOST_FILES, str(lab)], env=windows_like.env(), capture_output=True,
                          text=True, timeout=60, cwd=windows_like.home)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr
    log = (lab / ".labctl" / "logs" / "x.log").read_bytes()
    assert b"one\ntwo\n" in log
    assert (lab / ".labctl" / "known_hosts").read_bytes().count(b"\n") == 1
    assert (lab / ".labctl" / "logs" / "k8s-master.log").read_bytes().count(b"\n") == 3
    assert _crlf_files(lab) == []


def _crlf_checkout(dest: Path) -> Path:
    """A copy of the checkout as git with core.autocrlf=true leaves it on Windows."""
    shutil.copytree(REPO / "labctl", dest / "labctl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Vagrantfile.j2", "playbooks", "manifests"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy(src, dest / name)
    converted = 0
    for p in [dest / "Vagrantfile.j2", *(dest / "playbooks").rglob("*"), *(dest / "manifests").rglob("*")]:
        if p.is_file():
            data = p.read_bytes()
            if b"\n" in data and b"\r\n" not in data:
                p.write_bytes(data.replace(b"\n", b"\r\n"))
                converted += 1
    assert converted >= 10
    return dest


def test_a_crlf_checkout_renders_the_same_lf_bytes(tmp_path):
    lab = tmp_path / "lab"
    lf = WindowsLike(tmp_path / "lf")
    assert lf.labctl(lab, "render").returncode == 0
    want = _rendered(lab)
    shutil.rmtree(lab)

    crlf = WindowsLike(tmp_path / "crlf", pythonpath=_crlf_checkout(tmp_path / "checkout"))
    proc = crlf.labctl(lab, "render")
    assert proc.returncode == 0, proc.stderr
    got = _rendered(lab)
    assert _crlf_files(lab) == []
    assert got == want  # same folder, same bytes: the checkout's line endings do not leak
