"""Bootstrapping Kubernetes on the lab's nodes: steps as data, planned from facts."""
