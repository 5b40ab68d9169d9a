"""labctl commands (lab)."""

from labctl.cli import app  # noqa: F401
