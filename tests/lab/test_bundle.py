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


def test_up_with_another_sets_bundle_is_refused_before_the_cache_changes(memory_lab, pin_server, tmp_path):
    import yaml

    from labctl.artifacts.api import bundle_export, cache_fetch
    from labctl.artifacts.cache import Cache
    from labctl.errors import ArtifactError

    other_set = tmp_path / "other-set.yaml"
    doc = yaml.safe_load(pin_server.set_path.read_text())
    doc["id"] = "k8s-1.28.0-class"
    other_set.write_text(yaml.safe_dump(doc, sort_keys=False))
    teacher = tmp_path / "teacher-cache"
    cache_fetch(arch="all", set_name=other_set, cache_dir=teacher)
    bundle = tmp_path / "other.tar"
    bundle_export(bundle, arch="all", set_name=other_set, cache_dir=teacher)

    lab = memory_lab(workers=1)
    with pytest.raises(ArtifactError) as info:
        lab.up(bundle=bundle)
    assert info.value.message == f"bundle {bundle} carries artifact set k8s-1.28.0-class; this lab uses set k8s-test"
    assert "labctl bundle export FILE --set k8s-test" in info.value.hint
    assert Cache().list() == []  # the student's host cache ($LABCTL_CACHE_DIR) is untouched
