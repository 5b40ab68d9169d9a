"""Throughput of labctl's SSH execution against a real sshd on loopback.

Prints figures, asserts nothing:  python bench/ssh_throughput.py
Per-command latency includes the remote login shell's start-up (root's ~/.bashrc on
this machine), which is not labctl's; the line and upload rates are labctl's own.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.remote.ssh import SSHSession  # noqa: E402
from tests.helpers.sshd import SSHDHost  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="labctl-bench-ssh-") as tmp:
        tmp = Path(tmp)
        host = SSHDHost(tmp / "sshd").start()
        try:
            session = SSHSession(host.target("bench"), known_hosts=tmp / "kh", log_path=tmp / "bench.log")
            t = time.perf_counter()
            session.connect(deadline=30)
            print(f"connect (handshake, host key pin, auth): {1000 * (time.perf_counter() - t):.1f} ms")

            n = 30
            t = time.perf_counter()
            for _ in range(n):
                session.run("true")
            per = (time.perf_counter() - t) / n
            print(f"`true` x{n}: {1000 * per:.1f} ms per command on one connection")

            lines = 1_000_000
            t = time.perf_counter()
            result = session.run(f"seq {lines}", timeout=300)
            secs = time.perf_counter() - t
            assert len(result.stdout.splitlines()) == lines
            mb = len(result.stdout) / 1e6
            print(f"seq {lines}: {secs:.2f} s, {lines / secs / 1e3:.0f}k lines/s, {mb / secs:.1f} MB/s (logged)")

            t = time.perf_counter()
            session.run(f"seq {lines}", timeout=300, log_output=False)
            secs = time.perf_counter() - t
            print(f"seq {lines} without logging: {secs:.2f} s, {lines / secs / 1e3:.0f}k lines/s")

            blob = b"x" * (32 * 1024 * 1024)
            t = time.perf_counter()
            session.put(blob, str(tmp / "upload.bin"), mode=0o600)
            secs = time.perf_counter() - t
            print(f"put 32 MiB: {secs:.2f} s, {32 / secs:.1f} MiB/s")
            session.close()
        finally:
            host.stop()


if __name__ == "__main__":
    main()
