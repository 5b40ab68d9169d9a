"""labctl commands (course)."""

from labctl.cli import app  # noqa: F401
