"""Connectors: labctl's boundaries to the outside (SSH to nodes, the vagrant CLI, the
Kubernetes API). Each module wraps one external system and raises labctl errors."""
