"""Downloads through the real cache and urllib against a real loopback server:
checksums, cut-short bodies, resume with Range, servers that ignore Range, retries."""

from __future__ import annotations

import os

import pytest

from labctl.artifacts.cache import Cache
from labctl.artifacts.fetch import DownloadFailed
from labctl.errors import ExitCode
from tests.artifacts.conftest import blobs_in, sha

KUBEADM = "/k8s/release/v1.27.16/bin/linux/amd64/kubeadm"


def _kubeadm(pin_set):
    return next(a for a in pin_set[0].files("amd64") if a.id == "kubeadm")


def test_checksum_mismatch_is_refused_and_nothing_is_kept(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    evil = bytes(len(pin_set[2]["kubeadm-amd64"]))  # same size, other bytes
    artifact_server.files[KUBEADM] = evil
    cache = Cache(tmp_path / "c", backoff=0)
    with pytest.raises(DownloadFailed) as info:
        cache.ensure(art)
    err = info.value
    assert err.reason == "checksum-mismatch" and err.exit_code == ExitCode.ARTIFACT_FAILED
    assert "kubeadm v1.27.16 (amd64)" in err.message and art.url in err.message
    assert f"expected sha256 {art.sha256}" in err.message and f"received {sha(evil)}" in err.message
    assert "nothing was kept" in err.hint
    assert blobs_in(cache.root) == [] and os.listdir(cache.tmp) == []
    assert artifact_server.requests[KUBEADM] == 1  # a checksum mismatch is not retried


def test_cut_short_download_never_enters_blobs(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    artifact_server.truncate[KUBEADM] = 50_000  # every response drops after 50 kB
    cache = Cache(tmp_path / "c", backoff=0, retries=2)
    with pytest.raises(DownloadFailed) as info:
        cache.ensure(art)
    assert info.value.reason == "truncated" and "run the command again to resume" in info.value.hint
    assert blobs_in(cache.root) == [] and not cache.has(art.sha256)
    assert artifact_server.requests[KUBEADM] == 3  # bounded: 1 + 2 retries, each resuming
    assert [r for p, r in artifact_server.ranges] == [None, "bytes=50000-", "bytes=100000-"]
    assert cache.list() == []


def test_resume_after_an_interrupted_download(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    size = len(pin_set[2]["kubeadm-amd64"])
    artifact_server.truncate[KUBEADM] = 120_000
    artifact_server.truncate_times[KUBEADM] = 1  # only the first response drops
    first = Cache(tmp_path / "c", retries=0)  # the first run gives up (e.g. Ctrl-C)
    with pytest.raises(DownloadFailed):
        first.ensure(art)
    assert (first.tmp / f"{art.sha256}.part").stat().st_size == 120_000
    second = Cache(tmp_path / "c", retries=0)  # the next run continues
    path = second.ensure(art)
    assert path.read_bytes() == pin_set[2]["kubeadm-amd64"]
    ranges = [r for p, r in artifact_server.ranges if p == KUBEADM]
    assert ranges == [None, "bytes=120000-"]
    assert artifact_server.sent[KUBEADM] == size  # not a byte twice
    assert second.received == size - 120_000
    assert not (second.tmp / f"{art.sha256}.part").exists()


def test_retry_resumes_within_one_run(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    artifact_server.truncate[KUBEADM] = 64 * 1024
    artifact_server.truncate_times[KUBEADM] = 2
    cache = Cache(tmp_path / "c", backoff=0, retries=3)
    assert cache.ensure(art).read_bytes() == pin_set[2]["kubeadm-amd64"]
    assert [r for p, r in artifact_server.ranges if p == KUBEADM] == [None, "bytes=65536-", "bytes=131072-"]
    assert artifact_server.sent[KUBEADM] == len(pin_set[2]["kubeadm-amd64"])


def test_server_ignoring_range_restarts_from_zero(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    size = len(pin_set[2]["kubeadm-amd64"])
    part = tmp_path / "c" / "tmp" / f"{art.sha256}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(pin_set[2]["kubeadm-amd64"][:50_000])
    artifact_server.ignore_range = True
    cache = Cache(tmp_path / "c", retries=0)
    assert cache.ensure(art).read_bytes() == pin_set[2]["kubeadm-amd64"]
    assert [r for p, r in artifact_server.ranges if p == KUBEADM] == ["bytes=50000-"]
    assert cache.received == size  # the 200 body replaced the prefix, not appended to it


def test_a_stale_part_is_dropped_and_fetched_fresh(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    part = tmp_path / "c" / "tmp" / f"{art.sha256}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage from another upstream")
    cache = Cache(tmp_path / "c", retries=0)
    assert cache.ensure(art).read_bytes() == pin_set[2]["kubeadm-amd64"]
    assert [r for p, r in artifact_server.ranges if p == KUBEADM] == ["bytes=29-", None]


def test_complete_part_is_verified_without_downloading(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    part = tmp_path / "c" / "tmp" / f"{art.sha256}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(pin_set[2]["kubeadm-amd64"])  # died between the last write and the rename
    cache = Cache(tmp_path / "c")
    assert cache.ensure(art).read_bytes() == pin_set[2]["kubeadm-amd64"]
    assert artifact_server.requests[KUBEADM] == 0


def test_a_full_size_part_with_wrong_bytes_is_fetched_fresh_not_blamed_on_upstream(pin_set, artifact_server,
                                                                                    tmp_path):
    art = _kubeadm(pin_set)
    part = tmp_path / "c" / "tmp" / f"{art.sha256}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * len(pin_set[2]["kubeadm-amd64"]))  # the right size, other bytes (a damaged disk)
    cache = Cache(tmp_path / "c", retries=0)
    assert cache.ensure(art).read_bytes() == pin_set[2]["kubeadm-amd64"]
    assert artifact_server.requests[KUBEADM] == 1


def test_server_errors_are_retried_a_bounded_number_of_times(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    artifact_server.replies[KUBEADM] = (503, b"busy")
    cache = Cache(tmp_path / "c", backoff=0, retries=2)
    with pytest.raises(DownloadFailed) as info:
        cache.ensure(art)
    assert info.value.reason == "server-error" and "HTTP 503" in info.value.message
    assert artifact_server.requests[KUBEADM] == 3


def test_progress_reaches_the_total(pin_set, artifact_server, tmp_path):
    art = _kubeadm(pin_set)
    seen = []
    Cache(tmp_path / "c").ensure(art, progress=lambda i, done, total: seen.append((i, done, total)))
    assert seen[-1] == ("kubeadm", art.size, art.size)
    assert all(b[1] >= a[1] for a, b in zip(seen, seen[1:]))
