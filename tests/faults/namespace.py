"""Run labctl against a lab folder on a full or read-only file system, without touching
the host: the folder is mounted (a small tmpfs, or a read-only bind of itself) inside a
private mount namespace (`unshare -m`) that ends with the subprocess.

Inside, a small script mounts, runs the labctl commands given, and reports each one's
exit code and output plus a snapshot of the folder (path -> sha256) as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_INSIDE = r'''
import hashlib, json, os, subprocess, sys
plan = json.loads(sys.argv[1])
folder = plan["folder"]

def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)

def snapshot():
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), folder) + "/"] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out

def fill():
    # Take every free byte of the tmpfs, so the next write meets ENOSPC.
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, bytes(1024)):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)

results = []
for step in plan["steps"]:
    kind = step[0]
    if kind == "tmpfs":
        sh("mount", "-t", "tmpfs", "-o", "size=" + step[1], "tmpfs", folder)
    elif kind == "remount":
        sh("mount", "-o", "remount,size=" + step[1], folder)
    elif kind == "readonly":
        sh("mount", "--bind", folder, folder)
        sh("mount", "-o", "remount,ro,bind", folder)
    elif kind == "write":
        path = os.path.join(folder, step[1])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(step[2])
    elif kind == "fill":
        fill()
    elif kind == "unfill":
        os.unlink(os.path.join(folder, "filler"))
    elif kind == "labctl":
        r = subprocess.run([sys.executable, "-m", "labctl", *step[1:]], capture_output=True, text=True,
                           timeout=120, cwd=plan["root"])
        results.append({"rc": r.returncode, "out": r.stdout, "err": r.stderr, "tree": snapshot()})
print(json.dumps(results))
'''


@functools.lru_cache(maxsize=1)
def namespaces_usable() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def run_in_namespace(folder: Path, steps: list[list[str]]) -> list[dict]:
    """Run ``steps`` (see _INSIDE) on ``folder`` in a private mount namespace."""
    plan = {"folder": str(folder), "root": str(ROOT), "steps": steps}
    r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", _INSIDE, json.dumps(plan)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)
