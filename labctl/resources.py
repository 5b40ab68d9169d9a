"""Where the shipped templates, playbooks and manifests are.

An installed wheel carries them in ``labctl/_data`` (see pyproject's force-include); a
checkout or editable install reads them from the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_root() -> Path:
    installed = _PKG / "_data"
    if (installed / "Vagrantfile.j2").is_file():
        return installed
    checkout = _PKG.parent
    if (checkout / "Vagrantfile.j2").is_file():
        return checkout
    raise FileNotFoundError(f"labctl's data files are missing from {installed} and {checkout}; reinstall labctl")


def playbooks_dir() -> Path:
    return data_root() / "playbooks"


def manifests_dir() -> Path:
    return data_root() / "manifests"
