"""Failures told apart by their real cause, from real sockets on loopback (and the
.invalid TLD, which never resolves), and from curl's and ctr's own messages."""

from __future__ import annotations

import datetime
import errno
import socket
import ssl

import pytest
from pytest_httpserver import HTTPServer

from labctl.artifacts import classify as cl
from labctl.artifacts.cache import Cache
from labctl.artifacts.fetch import DownloadFailed
from labctl.artifacts.model import Artifact
from labctl.errors import ArtifactError, ExitCode

DIGEST = "0" * 64


def _fail(url: str, tmp_path, **kw) -> DownloadFailed:
    art = Artifact(id="kubelet", version="v1.27.16", url=url, sha256=DIGEST, arch="amd64")
    with pytest.raises(DownloadFailed) as info:
        Cache(tmp_path / "c", backoff=0, **kw).ensure(art)
    err = info.value
    assert isinstance(err, ArtifactError) and err.exit_code == ExitCode.ARTIFACT_FAILED
    assert "kubelet v1.27.16 (amd64)" in err.message and url in err.message
    assert not list((tmp_path / "c" / "blobs" / "sha256").glob("*"))
    return err


@pytest.mark.parametrize("status,body,reason,words", [
    (404, b"Not Found", cl.WITHDRAWN, "withdrawn upstream"),
    (410, b"Gone", cl.WITHDRAWN, "update labctl"),
    (429, b"slow down", cl.RATE_LIMITED, "Docker Hub"),
    (403, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}',
     cl.RATE_LIMITED, "Wait an hour"),
    (403, b"Forbidden", cl.FORBIDDEN, "proxy"),
])
def test_http_statuses(artifact_server, tmp_path, status, body, reason, words):
    artifact_server.replies["/f"] = (status, body)
    err = _fail(artifact_server.url("/f"), tmp_path)
    assert err.reason == reason and words in err.hint
    assert f"HTTP {status}" in err.message
    assert artifact_server.requests["/f"] == 1  # none of these is retried


def test_connection_refused_on_a_closed_port(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound then closed: nothing listens there
    err = _fail(f"http://127.0.0.1:{port}/kubelet", tmp_path)
    assert err.reason == cl.REFUSED and "nothing accepts connections" in err.hint
    assert "connection refused" in err.message


def test_dns_failure(tmp_path):
    err = _fail("http://nonexistent.invalid/kubelet", tmp_path)
    assert err.reason == cl.DNS and "did not resolve" in err.hint and "DNS lookup failed" in err.message


def test_timeout_when_the_server_never_answers(tmp_path):
    with socket.socket() as s:  # listening, never accepting: connect succeeds, no reply ever
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        err = _fail(f"http://127.0.0.1:{s.getsockname()[1]}/kubelet", tmp_path, timeout=0.3, retries=1)
    assert err.reason == cl.TIMEOUT and "did not answer in time" in err.hint


def test_https_against_a_plain_http_server(artifact_server, tmp_path):
    err = _fail(artifact_server.url("/f").replace("http://", "https://"), tmp_path)
    assert err.reason == cl.TLS and "intercepts HTTPS" in err.hint and "`date`" in err.hint


def _cert(tmp_path, *, days_from: int, days_to: int):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return ctx


@pytest.mark.parametrize("days_from,days_to,trusted,reason,words", [
    # valid dates, unknown issuer: what a TLS-intercepting proxy's certificate looks like
    (-1, 30, False, cl.TLS, "SSL_CERT_FILE"),
    # a trusted certificate that looks expired: what a laptop whose clock is far ahead sees
    (-30, -1, True, cl.TLS_CLOCK, "clock"),
])
def test_certificate_problems(tmp_path, monkeypatch, days_from, days_to, trusted, reason, words):
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=_cert(tmp_path, days_from=days_from, days_to=days_to))
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    server.start()
    try:
        err = _fail(f"https://127.0.0.1:{server.port}/kubelet", tmp_path)
    finally:
        server.stop()
    assert err.reason == reason and words in err.hint


def test_no_route_and_other_oserrors_by_errno():
    assert cl.classify(OSError(errno.EHOSTUNREACH, "No route to host")).reason == cl.NO_ROUTE
    assert cl.classify(OSError(errno.ENETUNREACH, "Network is unreachable")).reason == cl.NO_ROUTE
    assert cl.classify(OSError(errno.ETIMEDOUT, "Connection timed out")).reason == cl.TIMEOUT
    assert cl.classify(OSError(errno.ENOSPC, "No space left on device")).reason == cl.DISK_FULL
    assert cl.classify(ValueError("?")).reason == cl.UNKNOWN


@pytest.mark.parametrize("output,reason", [
    ("curl: (6) Could not resolve host: dl.k8s.io", cl.DNS),
    ("curl: (7) Failed to connect to 10.0.2.2 port 3128 after 0 ms: Connection refused", cl.REFUSED),
    ("curl: (7) Failed to connect to dl.k8s.io port 443 after 3 ms: No route to host", cl.NO_ROUTE),
    ("curl: (28) Failed to connect to dl.k8s.io port 443 after 129 s: Connection timed out", cl.TIMEOUT),
    ("curl: (60) SSL certificate problem: unable to get local issuer certificate", cl.TLS),
    ("curl: (60) SSL certificate problem: certificate has expired", cl.TLS_CLOCK),
    ("curl: (60) SSL certificate problem: certificate is not yet valid", cl.TLS_CLOCK),
    ("curl: (22) The requested URL returned error: 404", cl.WITHDRAWN),
    ("curl: (22) The requested URL returned error: 410", cl.WITHDRAWN),
    ("curl: (22) The requested URL returned error: 429", cl.RATE_LIMITED),
    ("curl: (22) The requested URL returned error: 503", cl.SERVER),
    ("curl: (18) transfer closed with 1234 bytes remaining to read", cl.TRUNCATED),
    ('ctr: failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/'
     'kubetm/p8000/manifests/sha256:aa: 429 Too Many Requests - Server message: toomanyrequests: You have reached '
     'your pull rate limit.', cl.RATE_LIMITED),
    ('ctr: failed to resolve reference "docker.io/kubetm/p8000:latest": failed to do request: Head '
     '"https://registry-1.docker.io/v2/kubetm/p8000/manifests/latest": dial tcp: lookup registry-1.docker.io on '
     '10.0.2.3:53: no such host', cl.DNS),
    ('ctr: failed to resolve reference "quay.io/calico/node:v3.26.4": failed to do request: Head "https://quay.io/'
     'v2/calico/node/manifests/v3.26.4": tls: failed to verify certificate: x509: certificate signed by unknown '
     'authority', cl.TLS),
    ('ctr: failed to resolve reference "quay.io/calico/node:v3.99.0": quay.io/calico/node:v3.99.0: not found',
     cl.WITHDRAWN),
    ("dial tcp 104.18.0.1:443: i/o timeout", cl.TIMEOUT),
    ("dial tcp 127.0.0.1:5000: connect: connection refused", cl.REFUSED),
    ("kubeadm: FAILED\nsha256sum: WARNING: 1 computed checksum did NOT match", cl.CHECKSUM),
    ('ctr: failed to copy: failed to do request: unexpected commit digest sha256:aa, expected sha256:bb: failed '
     'precondition', cl.CHECKSUM),
    ("ctr: failed to extract layer sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef: write "
     "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs/usr/bin/calico-node: no space left "
     "on device", cl.DISK_FULL),
    ("E: You don't have enough free space in /var/cache/apt/archives/.", cl.DISK_FULL),
    ("W: Failed to fetch http://archive.ubuntu.com/ubuntu/dists/jammy/InRelease  Temporary failure resolving "
     "'archive.ubuntu.com'", cl.DNS),
    ("E: Failed to fetch http://archive.ubuntu.com/ubuntu/pool/main/s/socat/socat_1.7.4.1-3ubuntu4_amd64.deb  "
     "404  Not Found [IP: 91.189.91.82 80]", cl.WITHDRAWN),
    ('ctr: failed to resolve reference "docker.io/kubetm/p8000:latest": pull access denied, repository does not '
     'exist or may require authorization: server message: insufficient_scope: authorization failed', cl.WITHDRAWN),
    ('ctr: failed to resolve reference "registry.k8s.io/pause@sha256:00": unexpected status code 404: manifest '
     'unknown', cl.WITHDRAWN),
])
def test_classify_text_of_curl_ctr_and_sha256sum(output, reason):
    diag = cl.classify_text(output)
    assert diag is not None and diag.reason == reason
    assert diag.hint == cl.HINTS[reason]


def test_classify_text_unknown_is_none():
    assert cl.classify_text("E: Unable to locate package kubelet") is None
    # ctr's "failed" is no sha256sum "FAILED": an unknown ctr failure is no checksum mismatch
    assert cl.classify_text("ctr: failed to create shim task: OCI runtime create failed: unknown") is None
