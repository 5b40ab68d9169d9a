"""`labctl up --bundle FILE`: a class's downloads carried in; the lab then downloads nothing."""

from __future__ import annotations

import pytest

from labctl.errors import UsageError


def test_up_with_a_bundle_downloads_nothing(memory_lab, pin_server, tmp_path):
    from labctl.artifacts.api import bundle_export, cache_fetch

    teacher = tmp_path / "teacher-cache"  # the instructor's host, which has internet
    cache_fetch(arch="all", set_name=pin_server.set_path, cache_dir=teacher)
    bundle = tmp_path / "class.tar"
    bundle_export(bundle, arch="all", set_name=pin_server.set_path, cache_dir=teacher)
    fetched_by_teacher = len(pin_server.requests)
    assert fetched_by_teacher > 0

    lab = memory_lab(workers=1)  # a student's host: a fresh host cache ($LABCTL_CACHE_DIR)
    result = lab.up(bundle=bundle)

    assert result.ran and lab.lab.paths.kubeconfig.exists()
    assert len(pin_server.requests) == fetched_by_teacher, pin_server.requests[fetched_by_teacher:]
    said = [e.message for e in lab.events if e.message.startswith(f"bundle {bundle}")]
    assert said and " new in the host cache" in said[0]


def test_up_with_a_missing_bundle_is_bad_input_and_writes_nothing(memory_lab, tmp_path):
    lab = memory_lab()
    with pytest.raises(UsageError, match="--bundle .*no such file"):
        lab.up(bundle=tmp_path / "nope.tar")
    assert not lab.lab.paths.meta.exists()
