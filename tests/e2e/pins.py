"""The real-VM test's pin table and host cache, made here (the VMs have no internet).

Every file is pinned by its real sha256 and sits in a host cache filled beforehand
(labctl.artifacts' Cache.adopt, as a bundle import does), so `labctl up` downloads
nothing and pushes every file over SSH like on a laptop:
- kubeadm, kubelet, kubectl, crictl, CNI plugins: stand-ins that say they are stand-ins,
  so the run stops with that message where a real Kubernetes binary is needed;
- containerd, ctr, the runc shim and runc: wrappers around the box's own Debian
  binaries (the VMs' real containerd), installed where the static release goes;
- containerd.service, kubelet.service and the kubeadm drop-in: small units with the
  lines that matter (the drop-in reads /etc/default/kubelet);
- one image: a tiny OCI archive built here, filed in the host cache, pushed to both VMs
  and imported by their real containerd;
- a second image (``MASTER_ONLY_REF``), added to the set later and imported by the test
  into the master's containerd only: the engine exports it there with the master's
  real containerd, files it in the host cache and the worker imports it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.helpers.fake_node import DROPIN, _tgz, write_pin_table

IMAGE_REF = "docker.io/labctl-e2e/tiny:1"
MASTER_ONLY_REF = "docker.io/labctl-e2e/from-master:1"
STANDIN = ("#!/bin/sh\necho 'labctl e2e: {name} here is a stand-in: this test has no Kubernetes binaries "
           "(a real lab installs the pinned {name} v1.27.16)' >&2\nexit 3\n")


def _standin(name: str) -> bytes:
    return STANDIN.format(name=name).encode()


def _wrapper(target: str) -> bytes:
    return f"#!/bin/sh\nexec {target} \"$@\"\n".encode()


def e2e_files(arch: str) -> dict[str, tuple[bytes, dict]]:
    return {
        "kubeadm": (_standin("kubeadm"), {"to": "/usr/bin/kubeadm", "mode": "0755"}),
        "kubelet": (_standin("kubelet"), {"to": "/usr/bin/kubelet", "mode": "0755"}),
        "kubectl": (_standin("kubectl"), {"to": "/usr/bin/kubectl", "mode": "0755"}),
        "crictl": (_tgz({"crictl": _standin("crictl")}), {"extract": "/usr/local/bin", "provides": ["crictl"]}),
        "cni-plugins": (_tgz({f"./{p}": _standin(p) for p in ("bridge", "host-local", "loopback", "portmap")}),
                        {"extract": "/opt/cni/bin", "provides": ["bridge", "host-local", "loopback", "portmap"]}),
        "containerd": (_tgz({"bin/containerd": _wrapper("/usr/bin/containerd"), "bin/ctr": _wrapper("/usr/bin/ctr"),
                             "bin/containerd-shim-runc-v2": _wrapper("/usr/bin/containerd-shim-runc-v2")}),
                       {"extract": "/usr/local", "provides": ["bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr"]}),
        "containerd-service": (b"[Unit]\nDescription=containerd (labctl e2e: the box's binary, pinned wrapper)\n"
                               b"After=network.target local-fs.target\n[Service]\nExecStartPre=-/sbin/modprobe overlay\n"
                               b"ExecStart=/usr/local/bin/containerd\nType=notify\nDelegate=yes\nKillMode=process\n"
                               b"Restart=always\n[Install]\nWantedBy=multi-user.target\n",
                               {"to": "/etc/systemd/system/containerd.service", "mode": "0644"}),
        "runc": (_wrapper("/usr/sbin/runc"), {"to": "/usr/local/sbin/runc", "mode": "0755"}),
        "kubelet-service": (b"[Unit]\nDescription=kubelet (labctl e2e stand-in)\n[Service]\nExecStart=/usr/bin/kubelet\n"
                            b"Restart=always\nRestartSec=10\n[Install]\nWantedBy=multi-user.target\n",
                            {"to": "/etc/systemd/system/kubelet.service", "mode": "0644"}),
        "kubeadm-dropin": (DROPIN.encode(), {"to": "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "mode": "0644"}),
        "calico-manifest": (b"# calico stand-in, never applied: the run stops at kubeadm init\n",
                            {"to": "/var/lib/labctl/manifests/calico.yaml", "mode": "0644"}),
        "metallb-manifest": (b"# metallb stand-in, never applied: the run stops at kubeadm init\n",
                             {"to": "/var/lib/labctl/manifests/metallb-native.yaml", "mode": "0644"}),
    }


def _blob(blobs: dict[str, bytes], data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def tiny_oci_image(ref: str = IMAGE_REF, arch: str = "amd64") -> bytes:
    """An OCI image archive (what `ctr images export` writes) with one small layer."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        data = b"made by labctl's real-VM test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(data), 1700000000
        tar.addfile(info, io.BytesIO(data))
    raw = layer_tar.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(raw)
    blobs: dict[str, bytes] = {}
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(blobs, gz.getvalue())}
    config = {"architecture": arch, "os": "linux", "config": {"Cmd": ["/hello.txt"]},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    cfg = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(blobs, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [layer]}
    man = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(blobs, json.dumps(manifest).encode()),
           "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]},
           "platform": {"architecture": arch, "os": "linux"}}
    index = {"schemaVersion": 2, "manifests": [man]}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        entries = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
        entries.update({f"blobs/sha256/{d.split(':')[1]}": b for d, b in blobs.items()})
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def prepare(root: Path) -> dict[str, str]:
    """Write the set, fill a host cache with its files and the image; return the env."""
    from labctl.artifacts.cache import Cache
    from labctl.artifacts.model import load_set

    set_path = write_pin_table(root / "pins", "https://e2e.invalid", files=e2e_files, images=[(IMAGE_REF, "course")])
    cache = Cache(root / "host-cache")
    for arch in ("amd64",):
        for a in load_set(set_path).files(arch):
            served = root / "pins" / "served" / (arch if a.arch else "any") / a.id
            staged = root / f"{a.id}.staged"
            staged.write_bytes(served.read_bytes())
            cache.adopt(staged, a.sha256, kind="file", id=a.id, version=a.version, arch=a.arch, url=a.url)
    tarball = root / "tiny-image.tar"
    tarball.write_bytes(tiny_oci_image())
    cache.put_image(IMAGE_REF, None, tarball)
    return {"LABCTL_ARTIFACT_SET": str(set_path), "LABCTL_CACHE_DIR": str(cache.root)}


def add_image(set_path: str | Path, ref: str, used_by: str = "course") -> None:
    """Add an image to the test's set (as a class adds one to its own table)."""
    import yaml

    path = Path(set_path)
    doc = yaml.safe_load(path.read_text())
    if all(i["ref"] != ref for i in doc["images"]):
        doc["images"].append({"ref": ref, "digest": None, "used_by": used_by, "source": "made by the test"})
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
