"""Facts about the host as data: OS, CPU architecture, CPUs, memory, Python, and where
the hypervisor's tools are.

``gather_host`` reads them once; everything that judges them (the doctor, the default
box) takes a ``HostInfo``, so tests describe a Windows laptop or an Apple Silicon Mac
as a value instead of patching this module. Probes that run commands take a
``runner`` (argv -> CommandOutput) for the same reason.

Nothing here imports a POSIX-only module: memory and CPUs come from psutil, paths of
another OS are built with ntpath/posixpath explicitly.
"""

from __future__ import annotations

import ntpath
import os
import platform as _platform
import posixpath
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

WINDOWS, MACOS, LINUX = "windows", "macos", "linux"
AMD64, ARM64 = "amd64", "arm64"

# platform.machine() spellings: Windows says AMD64/ARM64, macOS x86_64/arm64, Linux
# x86_64/aarch64 (and armv8l/armv8/arm64 in some containers). The one table of them:
# labctl.artifacts.model.arch_of reads it too. Big-endian arm is left out on purpose:
# the pinned arm64 binaries are little-endian.
_ARCH = {
    "x86_64": AMD64, "amd64": AMD64, "x64": AMD64, "em64t": AMD64,
    "aarch64": ARM64, "arm64": ARM64, "armv8l": ARM64, "armv8": ARM64,
}
_OS = {"windows": WINDOWS, "darwin": MACOS, "linux": LINUX}
_OS_NAMES = {WINDOWS: "Windows", MACOS: "macOS", LINUX: "Linux"}

# Where the VirtualBox installers put VBoxManage when it is not on PATH. The Windows
# installer never adds it to PATH; it sets VBOX_MSI_INSTALL_PATH (older ones
# VBOX_INSTALL_PATH), which is also how Vagrant finds it.
MACOS_VBOXMANAGE = "/Applications/VirtualBox.app/Contents/MacOS/VBoxManage"
WINDOWS_VBOX_ENV = ("VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH")

# `systeminfo` prints this (English Windows) when a hypervisor already runs the OS.
SYSTEMINFO_HYPERVISOR = "A hypervisor has been detected"
# Locale-independent, no admin needed (bcdedit /enum needs an elevated prompt).
POWERSHELL_HYPERVISOR = [
    "powershell", "-NoProfile", "-NonInteractive", "-Command",
    "(Get-CimInstance -ClassName Win32_ComputerSystem).HypervisorPresent",
]


@dataclass(frozen=True)
class CommandOutput:
    rc: int | None  # None: could not run (missing, timed out)
    stdout: str = ""
    error: str = ""


Runner = Callable[[Sequence[str]], CommandOutput]


@dataclass(frozen=True)
class Hypervisor:
    """Is a hypervisor (Hyper-V, Virtual Machine Platform, WHP, VBS) running Windows
    itself? VirtualBox then runs on top of it through the Windows Hypervisor Platform."""

    present: bool | None  # None: not Windows, or could not tell
    evidence: str = ""  # the command and the line that told us


@dataclass(frozen=True)
class HostInfo:
    os: str  # windows | macos | linux (or the raw platform.system() lowercased)
    arch: str  # amd64 | arm64 (or the raw platform.machine() lowercased)
    cpus: int
    memory_mb: int
    python: str  # "3.10.13"
    vboxmanage: str | None = None  # full path when found, on PATH or where the installer puts it
    vboxmanage_on_path: bool = False
    ssh_client: str | None = None  # OpenSSH client for interactive `labctl ssh NODE`
    hypervisor: Hypervisor = Hypervisor(None)

    @property
    def apple_silicon(self) -> bool:
        return self.os == MACOS and self.arch == ARM64

    @property
    def label(self) -> str:
        return f"{_OS_NAMES.get(self.os, self.os)} {self.arch}"


def normalise_arch(machine: str) -> str:
    m = (machine or "").strip().lower()
    return _ARCH.get(m, m or "unknown")


def normalise_os(system: str) -> str:
    s = (system or "").strip().lower()
    return _OS.get(s, s or "unknown")


def find_vboxmanage(
    host_os: str, env: Mapping[str, str], *, exists: Callable[[str], bool] = os.path.isfile
) -> tuple[str | None, bool]:
    """(path, on PATH?) of VBoxManage: PATH first, then where the installer puts it."""
    exe = "VBoxManage.exe" if host_os == WINDOWS else "VBoxManage"
    on_path = shutil.which("VBoxManage", path=env.get("PATH", ""))
    if on_path:
        return on_path, True
    candidates: list[str] = []
    if host_os == WINDOWS:
        # Windows variable names are case-insensitive (os.environ upper-cases them).
        upper = {k.upper(): v for k, v in env.items()}
        for var in WINDOWS_VBOX_ENV:
            # May hold several folders separated by ";" (Vagrant splits it the same way).
            candidates += [ntpath.join(d, exe) for d in upper.get(var, "").split(";") if d.strip()]
        for var in ("PROGRAMFILES", "PROGRAMW6432"):
            if upper.get(var):
                candidates.append(ntpath.join(upper[var], "Oracle", "VirtualBox", exe))
        candidates.append(ntpath.join((upper.get("SYSTEMDRIVE") or "C:") + "\\", "Program Files", "Oracle", "VirtualBox", exe))
    elif host_os == MACOS:
        candidates += [MACOS_VBOXMANAGE, posixpath.join("/usr/local/bin", exe)]
    # Linux packages put VBoxManage in /usr/bin, on every PATH: nothing else to look at.
    for c in candidates:
        if exists(c):
            return c, False
    return None, False


def probe_windows_hypervisor(runner: Runner) -> Hypervisor:
    """Without admin rights: PowerShell's Win32_ComputerSystem.HypervisorPresent, else
    the (English) `systeminfo` line. Unknown when neither answers."""
    ps = runner(POWERSHELL_HYPERVISOR)
    answer = ps.stdout.strip().splitlines()[-1].strip().lower() if ps.rc == 0 and ps.stdout.strip() else ""
    if answer in ("true", "false"):
        return Hypervisor(answer == "true", f"Win32_ComputerSystem.HypervisorPresent = {answer.capitalize()}")
    si = runner(["systeminfo"])
    if si.rc == 0 and si.stdout:
        for line in si.stdout.splitlines():
            if SYSTEMINFO_HYPERVISOR.lower() in line.lower():
                return Hypervisor(True, f"systeminfo: {line.strip()}")
        if "Hyper-V Requirements" in si.stdout:
            # The section lists the VM Monitor Mode etc. lines only when no hypervisor runs.
            return Hypervisor(False, "systeminfo: Hyper-V Requirements lists the CPU's own features")
    return Hypervisor(None, ps.error or si.error or "neither PowerShell nor systeminfo answered")


def run_command(argv: Sequence[str], timeout: float = 60) -> CommandOutput:
    """The real runner: a command's exit code and stdout; never raises."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandOutput(None, "", f"`{argv[0]}` failed: {exc}")
    return CommandOutput(proc.returncode, proc.stdout, proc.stderr.strip()[-200:])


def _memory_mb() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total // (1024 * 1024))
    except Exception:  # noqa: BLE001 - an unreadable figure is reported as 0 MB, never a crash
        return 0


def _cpus() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=True) or os.cpu_count() or 1
    except Exception:  # noqa: BLE001
        return os.cpu_count() or 1


def gather_host(
    env: Mapping[str, str] | None = None,
    runner: Runner | None = None,
    *,
    system: str | None = None,
    machine: str | None = None,
    exists: Callable[[str], bool] = os.path.isfile,
) -> HostInfo:
    """Probe this host. ``system``/``machine`` (platform.system()/machine() spellings),
    ``env``, ``runner`` and ``exists`` replace the real ones, so a test can gather the
    facts of a Windows or macOS host on Linux."""
    env = dict(os.environ if env is None else env)
    runner = runner or run_command
    host_os = normalise_os(system if system is not None else _platform.system())
    vbox, on_path = find_vboxmanage(host_os, env, exists=exists)
    return HostInfo(
        os=host_os,
        arch=normalise_arch(machine if machine is not None else _platform.machine()),
        cpus=_cpus(),
        memory_mb=_memory_mb(),
        python=".".join(str(p) for p in sys.version_info[:3]),
        vboxmanage=vbox,
        vboxmanage_on_path=on_path,
        ssh_client=shutil.which("ssh", path=env.get("PATH", "")),
        hypervisor=probe_windows_hypervisor(runner) if host_os == WINDOWS else Hypervisor(None),
    )
