"""VirtualBox VM names are global to the host user: two lab folders with the course's
node names (k8s-master, k8s-node1, ...) would both ask for "k8s-lab-k8s-master", and
the second `vagrant up` fails ("another VM with that name already exists"). The
rendered ``vb.name`` therefore carries a short id of the lab folder itself."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def lab_folder_id(lab_dir: Path | str, length: int = 8) -> str:
    """A short, stable id of the lab folder's absolute path: the same folder always gives
    the same id (re-rendering changes nothing), another folder another id. Case and
    separators are normalised where the OS ignores them (Windows)."""
    absolute = os.path.normcase(os.path.abspath(Path(lab_dir).expanduser().resolve()))
    return hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:length]


def vm_name(lab_name: str, node: str, lab_dir: Path | str | None) -> str:
    """``<lab name>-<node>-<folder id>`` (without a folder: ``<lab name>-<node>``)."""
    base = f"{lab_name}-{node}"
    return f"{base}-{lab_folder_id(lab_dir)}" if lab_dir is not None else base
