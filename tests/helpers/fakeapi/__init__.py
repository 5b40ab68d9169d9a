"""The fake Kubernetes 1.27 API server, in parts; tests use it through tests/helpers/fake_apiserver.py."""
