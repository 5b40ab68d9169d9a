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
