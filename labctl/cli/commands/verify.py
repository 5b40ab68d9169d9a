"""labctl commands (verify)."""

from labctl.cli import app  # noqa: F401
