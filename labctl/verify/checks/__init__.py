"""The checks of the catalogue, grouped by what they look at (lab, pods, services)."""
