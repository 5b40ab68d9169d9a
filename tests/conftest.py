"""Root conftest: shared fixture plugins live in tests/helpers/ (one module per boundary)."""

import importlib.util

_HELPERS = (
    "tests.helpers.sshd",  # real OpenSSH servers on loopback
    "tests.helpers.fake_vagrant",  # the `vagrant` stand-in on PATH
    "tests.helpers.fake_node",  # a node's OS emulated behind a real sshd
    "tests.helpers.fake_apiserver",  # recorded Kubernetes 1.27 API JSON over HTTP
)

# A helper module appears when its boundary is built; list only what exists.
pytest_plugins = [m for m in _HELPERS if importlib.util.find_spec(m) is not None]


import pytest  # noqa: E402


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config, items):
    # The real-VM test builds one libvirt namespace and one lab per session; under
    # pytest-xdist each worker would build its own. Its tests stay on one worker.
    for item in items:
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.xdist_group("e2e"))
