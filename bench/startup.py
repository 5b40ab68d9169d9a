#!/usr/bin/env python3
"""Start-up time: `labctl --help` next to `vagrant --help`, measured in the same run.

Goal: labctl under a quarter of vagrant's time. Prints the median wall time of N runs
of each (after one warm-up run each, so both read from a warm page cache) and the ratio.

    python bench/startup.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _time(cmd: list[str], runs: int, env: dict) -> list[float]:
    subprocess.run(cmd, capture_output=True, env=env, check=False)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-300:]}")
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    labctl = shutil.which("labctl")
    labctl_cmd = [labctl, "--help"] if labctl else [sys.executable, "-m", "labctl", "--help"]
    vagrant = shutil.which("vagrant")
    if vagrant is None:
        print("vagrant is not installed: nothing to compare with", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as home:
        # An empty VAGRANT_HOME keeps the user's plugins and boxes out of the measurement.
        env = dict(os.environ, VAGRANT_HOME=home, VAGRANT_CHECKPOINT_DISABLE="1")
        lab_t = _time(labctl_cmd, args.runs, env)
        vag_t = _time([vagrant, "--help"], args.runs, env)

    lab_med, vag_med = statistics.median(lab_t), statistics.median(vag_t)
    ratio = lab_med / vag_med
    result = {
        "runs": args.runs,
        "labctl_help_s": round(lab_med, 4),
        "vagrant_help_s": round(vag_med, 4),
        "ratio": round(ratio, 3),
        "goal_ratio": 0.25,
        "meets_goal": ratio < 0.25,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"labctl --help   median {lab_med * 1000:7.1f} ms  (min {min(lab_t) * 1000:.1f}, max {max(lab_t) * 1000:.1f}, {args.runs} runs)")
        print(f"vagrant --help  median {vag_med * 1000:7.1f} ms  (min {min(vag_t) * 1000:.1f}, max {max(vag_t) * 1000:.1f}, {args.runs} runs)")
        print(f"ratio labctl/vagrant = {ratio:.3f} (goal < 0.25: {'met' if ratio < 0.25 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
