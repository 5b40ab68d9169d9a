"""Fixtures of the verify tests: a lab whose addresses are loopback aliases, real
servers on them, a real sshd standing for every node, the fake 1.27 API server."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from labctl.spec import LabSpec, MetalLB, Network, default_nodes, validate
from tests.verify.netfakes import DnsServer, HttpServer, SilentListener


def _third_octet() -> int:
    """N for 127.56.N.0/24: each pytest-xdist worker draws from its own share of 1..250,
    and N is taken only when the MetalLB address's Service port (9000, the course's) is
    free there, so two tests running at once never meet on 127.56.N.200:9000."""
    import os
    import socket

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    share = 250 // count
    low = 1 + (index % count) * share
    for _ in range(100):
        third = random.randint(low, low + share - 1)
        with socket.socket() as s:
            try:
                s.bind((f"127.56.{third}.200", 9000))
            except OSError:
                continue
        return third
    raise RuntimeError("no free 127.56.N.200:9000 for a loopback lab")


def loopback_spec() -> LabSpec:
    """The course's lab on 127.56.N.0/24: .30 master, .31 k8s-node1, .32 k8s-node2."""
    third = _third_octet()
    net = f"127.56.{third}.0/24"
    network = Network(host_only=net, vbox_networks_conf_allows=True)
    spec = LabSpec(
        network=network,
        metallb=MetalLB(pool=f"127.56.{third}.200-127.56.{third}.220"),
        nodes=default_nodes(2, network),
    )
    validate(spec)
    return spec


@pytest.fixture
def lab_spec() -> LabSpec:
    return loopback_spec()


class Servers:
    def __init__(self):
        self.started: list = []

    def http(self, address: str, port: int, body: str, **kw) -> HttpServer:
        s = HttpServer(address, port, body, **kw)
        self.started.append(s)
        return s

    def silent(self, address: str, port: int) -> SilentListener:
        s = SilentListener(address, port)
        self.started.append(s)
        return s

    def dns(self, address: str, records: dict[str, str], port: int = 53) -> DnsServer:
        s = DnsServer(address, records, port)
        self.started.append(s)
        return s

    def stop(self) -> None:
        for s in reversed(self.started):
            s.stop()


@pytest.fixture
def servers():
    reg = Servers()
    yield reg
    reg.stop()


@pytest.fixture
def node_runner(sshd_factory, tmp_path):
    """Every node is the same real sshd on loopback: commands (curl, python3) really
    run, on this host, against the loopback servers of the test."""
    from labctl.verify.context import SessionNodeRunner
    from labctl.remote.ssh import SSHSession

    host = sshd_factory()
    opened: list[str] = []

    def open_session(node: str):
        opened.append(node)
        session = SSHSession(host.target(node), known_hosts=tmp_path / "known_hosts")
        session.connect(10.0)
        return session

    runner = SessionNodeRunner(open_session)
    runner.opened = opened
    runner.sshd = host
    yield runner
    runner.close()


@pytest.fixture
def kube(fake_apiserver):
    from labctl.kube.client import KubeClient

    client = KubeClient(fake_apiserver.kubeconfig, timeout=5.0)
    yield client
    client.close()


@pytest.fixture
def vctx(lab_spec, kube, node_runner):
    from labctl.verify.context import VerifyContext

    return VerifyContext(spec=lab_spec, cluster=kube, nodes=node_runner, http_timeout=1.0)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"


@pytest.fixture
def lab(lab_spec, fake_apiserver, servers, fake_exec):
    """The course done right, not yet published: break something, then publish()."""
    from tests.verify.labmodel import LabModel

    return LabModel(lab_spec, fake_apiserver, servers, fake_exec).healthy()


def run_one(vctx, check_id: str, deadline: float = 0.0):
    """One check of the catalogue, with its retrying capped (failures are final at once)."""
    from labctl.verify.catalogue import CHECKS
    from labctl.verify.runner import run_check

    check = next(c for c in CHECKS if c.id == check_id)
    return run_check(check, vctx, deadline=deadline, reraise_bugs=True)


def text_of(result) -> str:
    """Everything a person reads about a result, for assertions on wording."""
    from labctl.report.verify import details

    return "\n".join(details(result))


@pytest.fixture
def fixture_lab(lab_spec, fake_apiserver, servers, fake_exec):
    """``fixture_lab("passing")``: a hand-built, schema-checked 1.27 lab of tests/fixtures/k8s, on loopback."""
    from tests.verify.labmodel import FixtureLab

    return lambda name: FixtureLab(lab_spec, fake_apiserver, servers, fake_exec, name)
