"""Root conftest: shared fixture plugins live in tests/helpers/ (one module per boundary)."""

import importlib.util

_HELPERS = (
    "tests.helpers.sshd",  # real OpenSSH servers on loopback
    "tests.helpers.fake_vagrant",  # the `vagrant` stand-in on PATH
    "tests.helpers.fake_node",  # a node's OS emulated behind a real sshd
    "tests.helpers.fake_apiserver",  # hand-built, schema-checked Kubernetes 1.27 API JSON over HTTP
)

# A helper module appears when its boundary is built; list only what exists.
pytest_plugins = [m for m in _HELPERS if importlib.util.find_spec(m) is not None]


import os  # noqa: E402

import pytest  # noqa: E402


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist sets up its workers
def pytest_configure(config):
    # The real-VM test (LABCTL_E2E=1, CI) boots qemu VMs that need both cores for minutes
    # and builds one libvirt namespace and lab per session: run the suite serially then,
    # as before pytest-xdist (addopts' -n), instead of beside the other tests.
    if os.environ.get("LABCTL_E2E") == "1" and getattr(config.option, "numprocesses", None):
        config.option.numprocesses = 0
        config.option.dist = "no"
        config.option.tx = []


@pytest.fixture(autouse=True)
def _downloads_stay_on_this_machine(monkeypatch):
    """A test that reaches the shipped artifact set by accident must not send a DNS query
    or a download out of this machine: every base URL goes to a loopback port nothing
    listens on (refused at once). Tests with their own pin server unset or set this."""
    monkeypatch.setenv("LABCTL_MIRROR", "http://127.0.0.1:9")
