"""Writing into the lab folder: atomic files, and one clear error when the folder cannot
take them (full disk, read-only file system, no permission, a file where a folder
should be): LabFolderError, exit LAB_FOLDER.

A lab folder never holds a half-written file: data goes to a temporary file beside the
target, is fsynced, then renamed over it (os.replace, atomic on POSIX and Windows); the
temporary file is removed when anything fails. Bytes are written as given, in binary
mode, so text keeps its LF newlines on every OS (no CRLF translation on Windows).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from labctl.errors import LabFolderError, clip

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM}


def folder_error(exc: OSError, path: Path | str) -> LabFolderError:
    """The LabFolderError for an OSError met while writing ``path``."""
    where = clip(str(path), 200)
    if exc.errno in _FULL:
        return LabFolderError(f"no space left on the device holding {where}",
                              hint="free some disk space (or use --dir on another disk), then run the same command again")
    if exc.errno == errno.EROFS:
        return LabFolderError(f"{where} is on a read-only file system",
                              hint="use a writable lab folder: --dir PATH or $LABCTL_DIR")
    if exc.errno in _DENIED:
        return LabFolderError(f"permission denied writing {where}",
                              hint="make the lab folder writable by you, or use another --dir")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return LabFolderError(f"cannot write {where}: a file stands where a folder should be (or the reverse)",
                              hint="move that file away, or use another --dir")
    return LabFolderError(f"cannot write {where}: {exc.strerror or type(exc).__name__}",
                          hint="check the lab folder, then run the same command again")


def ensure_dir(path: Path) -> Path:
    """``path`` as a folder (made with its parents when missing), or LabFolderError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_error(exc, path) from None
    return path


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically. Returns False (and touches nothing) when
    the file already holds exactly these bytes, so re-rendering keeps mtimes.
    Raises LabFolderError, with nothing changed and no temporary file left, when the
    folder cannot take it."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw and (path.stat().st_mode & 0o777) == mode:
            return False
    except OSError:
        pass  # missing, or unreadable: writing it says what is wrong
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise folder_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise folder_error(exc, path) from None
        raise
    _sync_folder(path.parent)
    return True


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder's entry is on disk; POSIX only (Windows
    # cannot open a folder this way, and NTFS journals the rename itself).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
