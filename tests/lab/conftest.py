"""tests/lab: the lifecycle's logic against in-memory labs (memory_lab, fast), and a few
boundary tests of the real CLI, sshd and `vagrant` stand-in (fake_lab, marked slow)."""

from tests.helpers.memory_lab import memory_lab  # noqa: F401 - a fixture
