"""Every command module registers its commands on labctl.cli.app when imported."""

from labctl.cli.commands import artifacts, course, lab, lifecycle, verify  # noqa: F401
