"""Pinned, checksummed, cached artifacts: everything a lab downloads, as data.

Upstream moves under an end-of-life Kubernetes minor (an expired apt key, withdrawn
files, Docker Hub limits), so a lab must not depend on what upstream serves today:

- ``model``:    an artifact set (YAML in ``sets/``): URL, version and sha256 per file
                and arch, images with their digests.
- ``classify``: why a download failed, from an exception or from curl/ctr output.
- ``fetch``:    one streamed, resumable, verified HTTP download (urllib only).
- ``cache``:    the per-user host cache; each file crosses the internet once per host.
- ``bundle``:   one tar to carry the cache to a classroom without internet.
- ``api``:      what the CLI (and ``labctl up``) calls.

This package imports nothing from labctl but ``labctl.errors``; its modules import
each other only downwards (model/classify <- fetch <- cache <- bundle <- api).
"""
