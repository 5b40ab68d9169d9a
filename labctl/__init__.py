"""labctl: a Kubernetes practice lab on your laptop, checked exercise by exercise."""

__version__ = "0.1.0"
