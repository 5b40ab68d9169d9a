"""labctl commands (lifecycle)."""

from labctl.cli import app  # noqa: F401
