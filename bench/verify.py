#!/usr/bin/env python3
"""`labctl verify --all` against a lab model with fixed latencies.

The lab model is the one verify's tests use (tests/verify/labmodel.py): COURSE's fake
1.27 API server behind a proxy that adds a fixed delay to every request, the
exercises' HTTP answers from loopback servers that sleep a fixed time before
answering, a DNS server with a fixed delay, `exec` with a fixed delay, and a real sshd
standing for every node. Nodes without a Pod under `externalTrafficPolicy: Local`
never answer, so that check waits for its probe timeout, as on a real lab.

Prints, median of N runs, each with fresh connections:
  - every check alone (the slowest is the floor for --all),
  - `verify --all` (concurrent), and its ratio to the slowest check (goal: <= 1.5x),
  - the same checks one after another (what --all would cost without concurrency).

    python bench/verify.py [--runs N] [--api-ms 20] [--http-ms 150] [--timeout 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.verify.catalogue import CHECKS  # noqa: E402
from labctl.verify.context import SessionNodeRunner, VerifyContext  # noqa: E402
from labctl.verify.runner import run_check, run_checks  # noqa: E402
from labctl.kube import client as kube  # noqa: E402
from labctl.kube.client import KubeClient  # noqa: E402
from labctl.remote.ssh import SSHSession  # noqa: E402
from tests.helpers.fake_apiserver import FakeApiServer, FakeExec  # noqa: E402
from tests.helpers.sshd import SSHDHost  # noqa: E402
from tests.verify.conftest import Servers, loopback_spec  # noqa: E402
from tests.verify.labmodel import LabModel  # noqa: E402


class LatencyProxy:
    """Forwards HTTP to ``upstream`` after sleeping ``delay`` seconds: an API server
    that answers in fixed time."""

    def __init__(self, upstream: str, delay: float):
        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                outer.requests += 1
                time.sleep(delay)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                req = urllib.request.Request(upstream + self.path, data=body, method=self.command)
                for key in ("Authorization", "Content-Type", "Accept"):
                    if self.headers.get(key):
                        req.add_header(key, self.headers[key])
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    resp = opener.open(req, timeout=30)
                    status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as exc:
                    status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def build(workdir: Path, args):
    spec = loopback_spec()
    fake = FakeApiServer(workdir / "api").start()
    servers = Servers()
    exec_fake = FakeExec()
    model = LabModel(spec, fake, servers, exec_fake).healthy()
    for server in model.http.values():
        if hasattr(server, "delay"):
            server.delay = args.http_ms / 1000
    model.dns.delay = args.http_ms / 1000
    model.publish()
    proxy = LatencyProxy(fake.url, args.api_ms / 1000)
    kubeconfig = fake.write_kubeconfig(workdir / "kubeconfig")
    text = kubeconfig.read_text().replace(fake.url, proxy.url)
    kubeconfig.write_text(text)
    sshd = SSHDHost(workdir / "sshd").start()
    return spec, fake, servers, proxy, kubeconfig, sshd, exec_fake


def context(spec, kubeconfig, sshd, workdir, timeout):
    def open_session(node):
        s = SSHSession(sshd.target(node), known_hosts=workdir / "known_hosts")
        s.connect(10.0)
        return s

    runner = SessionNodeRunner(open_session)
    client = KubeClient(kubeconfig, timeout=10.0)
    return VerifyContext(spec=spec, cluster=client, nodes=runner, http_timeout=timeout), runner, client


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--api-ms", type=float, default=20.0, help="latency of every API request")
    ap.add_argument("--http-ms", type=float, default=150.0, help="latency of every HTTP/DNS answer and exec")
    ap.add_argument("--timeout", type=float, default=1.0, help="probe timeout (a Local node without a Pod waits this long)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="labctl-bench-verify-") as tmp:
        workdir = Path(tmp)
        spec, fake, servers, proxy, kubeconfig, sshd, exec_fake = build(workdir, args)
        delay = args.http_ms / 1000
        base = exec_fake.rules[0][3]

        def slow_exec(*a):
            time.sleep(delay)
            return base(*a)

        exec_fake.rules[0] = exec_fake.rules[0][:3] + (slow_exec,)
        original_exec = kube.exec_in_pod
        kube.exec_in_pod = exec_fake  # the one adapter, as the tests replace it
        try:
            def measure(fn):
                ctx, runner, client = context(spec, kubeconfig, sshd, workdir, args.timeout)
                try:
                    t0 = time.perf_counter()
                    out = fn(ctx)
                    return time.perf_counter() - t0, out
                finally:
                    runner.close()
                    client.close()

            singles: dict[str, list[float]] = {c.id: [] for c in CHECKS}
            alls, seqs = [], []
            for _ in range(args.runs):
                for check in CHECKS:
                    t, result = measure(lambda ctx, c=check: run_check(c, ctx, deadline=0))
                    assert result.passed, (check.id, result.mismatches, result.message)
                    singles[check.id].append(t)
                t, report = measure(lambda ctx: run_checks(CHECKS, ctx, deadline=0))
                assert report.ok, [r.id for r in report.results if not r.passed]
                alls.append(t)
                t, report = measure(lambda ctx: run_checks(CHECKS, ctx, concurrent=False, deadline=0))
                assert report.ok
                seqs.append(t)
        finally:
            kube.exec_in_pod = original_exec
            sshd.stop()
            proxy.stop()
            servers.stop()
            fake.stop()

    single = {k: statistics.median(v) for k, v in singles.items()}
    slowest_id = max(single, key=single.get)
    all_t, seq_t = statistics.median(alls), statistics.median(seqs)
    figures = {
        "checks": len(CHECKS), "runs": args.runs, "api_ms": args.api_ms, "http_ms": args.http_ms, "probe_timeout_s": args.timeout,
        "single_s": {k: round(v, 3) for k, v in single.items()},
        "slowest_check": slowest_id, "slowest_check_s": round(single[slowest_id], 3),
        "all_concurrent_s": round(all_t, 3), "one_by_one_s": round(seq_t, 3),
        "all_vs_slowest": round(all_t / single[slowest_id], 2), "one_by_one_vs_all": round(seq_t / all_t, 2),
        "goal_all_vs_slowest": 1.5,
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"lab model: API +{args.api_ms:g} ms/request, HTTP/DNS/exec +{args.http_ms:g} ms, probe timeout {args.timeout:g} s, real sshd; median of {args.runs} runs")
    for k, v in single.items():
        print(f"  {k:<20} {v:6.3f} s alone")
    print(f"slowest single check   {single[slowest_id]:6.3f} s ({slowest_id})")
    print(f"verify --all           {all_t:6.3f} s  = {all_t / single[slowest_id]:.2f}x the slowest check (goal <= 1.5x)")
    print(f"one by one             {seq_t:6.3f} s  = {seq_t / all_t:.2f}x verify --all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
