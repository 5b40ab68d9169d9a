"""The e2e's host scripts are checked on every run, not only when VMs boot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("script", ["build_box.sh", "setup-host.sh"])
def test_host_script_passes_shellcheck(script):
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: tests/install-deps.sh installs it")
    proc = subprocess.run(["shellcheck", "-S", "warning", str(HERE / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_the_e2e_pin_table_and_host_cache_need_no_download(tmp_path, monkeypatch):
    """tests/e2e/pins.py: every pinned file is in the host cache before `labctl up`, and
    the OCI archive's index, manifest and blobs agree (what `ctr images import` reads)."""
    import hashlib
    import io
    import json
    import tarfile

    from labctl.bootstrap.artifacts import HostArtifacts
    from labctl.spec import default_spec
    from tests.e2e.pins import IMAGE_REF, prepare, tiny_oci_image

    for key, value in prepare(tmp_path).items():
        monkeypatch.setenv(key, value)
    source = HostArtifacts.for_spec(default_spec(workers=1))
    assert len(source.files("amd64")) == 12 and source.cache.received == 0 and source.cache.requests == 0
    assert source.image_tarball(IMAGE_REF) is not None
    with tarfile.open(fileobj=io.BytesIO(tiny_oci_image())) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    index = json.loads(files["index.json"])
    man_desc = index["manifests"][0]
    assert man_desc["annotations"]["io.containerd.image.name"] == IMAGE_REF
    manifest = files[f"blobs/sha256/{man_desc['digest'].split(':')[1]}"]
    assert hashlib.sha256(manifest).hexdigest() == man_desc["digest"].split(":")[1]
    for desc in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
        blob = files[f"blobs/sha256/{desc['digest'].split(':')[1]}"]
        assert hashlib.sha256(blob).hexdigest() == desc["digest"].split(":")[1] and len(blob) == desc["size"]
