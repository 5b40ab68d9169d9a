"""Why a download failed, in words that point at the real cause.

"No network" is the least useful thing to tell a student: a DNS failure, a proxy
that intercepts TLS, a wrong clock, a Docker Hub rate limit and a file withdrawn
upstream each have a different fix. The host side classifies Python exceptions
(``classify``); the node side classifies what curl, ctr and sha256sum printed
(``classify_text``). Both return the same reasons and hints, so a failure reads the
same wherever it happened.
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import ssl
import urllib.error
from typing import NamedTuple, Optional

CHECKSUM = "checksum-mismatch"
TLS = "tls"
TLS_CLOCK = "tls-clock"
WITHDRAWN = "withdrawn"
RATE_LIMITED = "rate-limited"
DNS = "dns"
REFUSED = "connection-refused"
NO_ROUTE = "no-route"
TIMEOUT = "timeout"
TRUNCATED = "truncated"
RESET = "connection-reset"
SERVER = "server-error"
FORBIDDEN = "forbidden"
DISK_FULL = "disk-full"
HTTP = "http-error"
UNKNOWN = "unknown"

# Worth another attempt after a pause: the same request can succeed a moment later.
# Rate limits are not: hammering Docker Hub again only extends the ban.
TRANSIENT = frozenset({TIMEOUT, TRUNCATED, RESET, SERVER})

PHRASE = {
    CHECKSUM: "checksum mismatch",
    TLS: "TLS failed",
    TLS_CLOCK: "TLS certificate outside its validity period",
    WITHDRAWN: "not found upstream",
    RATE_LIMITED: "rate-limited",
    DNS: "DNS lookup failed",
    REFUSED: "connection refused",
    NO_ROUTE: "no route to host",
    TIMEOUT: "timed out",
    TRUNCATED: "download cut short",
    RESET: "connection reset",
    SERVER: "server error",
    FORBIDDEN: "access refused",
    DISK_FULL: "disk full",
    HTTP: "HTTP error",
    UNKNOWN: "download failed",
}

_BUNDLE = ("or carry the downloads in with `labctl bundle import FILE` (made by `labctl bundle export` on a host "
           "with internet)")
HINTS = {
    CHECKSUM: "the bytes received are not the pinned ones (a proxy or mirror serving other content, or a changed "
              "upstream file); nothing was kept. Retry; if it persists, use a bundle or report it to labctl",
    TLS: "the TLS handshake failed: a proxy or firewall that intercepts HTTPS (point SSL_CERT_FILE at its CA "
         "certificate), a captive portal, or a wrong system clock (check `date`); " + _BUNDLE,
    TLS_CLOCK: "a certificate looked expired or not yet valid: the clock is probably wrong (check `date`, enable "
               "NTP); otherwise a TLS-intercepting proxy is in the way",
    WITHDRAWN: "the file is gone from where this labctl pins it (withdrawn upstream): update labctl, set "
               "LABCTL_MIRROR to a mirror that still has it, " + _BUNDLE,
    RATE_LIMITED: "the registry or server rate-limits this address (Docker Hub limits anonymous pulls per IP: a "
                  "classroom behind one NAT hits it fast). Wait an hour, use a mirror (LABCTL_MIRROR), " + _BUNDLE,
    DNS: "the server's name did not resolve: check the host's DNS (`getent hosts NAME`) and any LABCTL_MIRROR "
         "spelling; offline, " + _BUNDLE,
    REFUSED: "the server's address answered but nothing accepts connections on that port: a mirror or proxy "
             "that is down, or a wrong port in LABCTL_MIRROR/HTTPS_PROXY",
    NO_ROUTE: "the host has no route to the server: offline, a VPN or firewall in the way; " + _BUNDLE,
    TIMEOUT: "the server did not answer in time: a slow or filtered network (a firewall that drops packets); "
             "retry, " + _BUNDLE,
    TRUNCATED: "the connection ended before the whole file arrived; run the command again to resume where it stopped",
    RESET: "the connection was reset mid-transfer (an unstable link or a proxy); run the command again to resume",
    SERVER: "the server failed (HTTP 5xx); retry later, or use a mirror (LABCTL_MIRROR)",
    FORBIDDEN: "the server or a proxy refused access (HTTP 401/403/407): a proxy needing credentials, or a "
               "mirror that needs a login",
    DISK_FULL: "the disk filled up: free space (`labctl cache prune` on the host; on a node, a larger VM disk or "
               "`sudo crictl rmi --prune`) and run the command again",
    HTTP: "the server answered with an unexpected HTTP status; retry, or use a mirror (LABCTL_MIRROR)",
    UNKNOWN: "retry; if it persists, run with --debug and report it",
}


class Diagnosis(NamedTuple):
    reason: str
    hint: str


class ChecksumMismatch(Exception):
    def __init__(self, expected: str, received: str, size: int):
        super().__init__(f"expected sha256 {expected}, received {received} ({size} bytes)")
        self.expected, self.received, self.size = expected, received, size


class Truncated(Exception):
    """Fewer bytes than announced (Content-Length, Content-Range or the pinned size)."""


def diagnosis(reason: str) -> Diagnosis:
    return Diagnosis(reason, HINTS[reason])


def classify(exc: BaseException, body: str = "") -> Diagnosis:
    """Why ``exc`` (from urllib, a socket, ssl, or this package) ended a download.
    ``body``: the first bytes of an HTTP error's body (Docker Hub says ``toomanyrequests``
    there, sometimes with a status other than 429)."""
    return diagnosis(_reason(exc, body))


def _reason(exc: BaseException, body: str) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 429 or "toomanyrequests" in body.lower():
            return RATE_LIMITED
        if exc.code in (404, 410):
            return WITHDRAWN
        if exc.code in (401, 403, 407):
            return FORBIDDEN
        return SERVER if exc.code >= 500 else HTTP
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _reason(exc.reason, body)
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, str):
        return classify_text(exc.reason).reason if classify_text(exc.reason) else UNKNOWN
    if isinstance(exc, ChecksumMismatch):
        return CHECKSUM
    if isinstance(exc, (Truncated, http.client.IncompleteRead)):
        return TRUNCATED
    if isinstance(exc, ssl.SSLCertVerificationError):
        msg = f"{exc.verify_message or ''} {exc}".lower()
        return TLS_CLOCK if "expired" in msg or "not yet valid" in msg else TLS
    if isinstance(exc, ssl.SSLError):
        return TLS
    if isinstance(exc, socket.gaierror):
        return DNS
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return RESET  # http.client.RemoteDisconnected is a ConnectionResetError too
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TIMEOUT
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DISK_FULL  # writing into the host cache, not the network
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN):
        return NO_ROUTE
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        return TIMEOUT
    if isinstance(exc, http.client.HTTPException):
        return RESET  # BadStatusLine and friends: the peer stopped speaking HTTP mid-way
    cause = exc.__cause__ or exc.__context__
    return _reason(cause, body) if cause is not None else UNKNOWN


# First match wins: the order puts the most specific message first (a 429 page can
# also say "error", an expired certificate is also "SSL certificate problem").
_TEXT = [
    # A full disk ends a download whatever else it says ("failed to extract layer ...").
    (DISK_FULL, r"no space left on device|disk quota exceeded|enough free space"),
    (RATE_LIMITED, r"toomanyrequests|too many requests|returned error: 429|pull rate limit"),
    (TLS_CLOCK, r"certificate (has )?expired|not yet valid|certificate is not valid yet"),
    (TLS, r"SSL certificate problem|server certificate verification failed|x509: |tls: |"
          r"certificate verify failed|SSL_connect|wrong version number|SSL routines|unable to get local issuer"),
    (DNS, r"could not resolve (host|proxy)|no such host|temporary failure in name resolution|"
          r"name or service not known|server misbehaving|nodename nor servname|temporary failure resolving"),
    (REFUSED, r"connection refused"),
    (NO_ROUTE, r"no route to host|network is unreachable"),
    (TIMEOUT, r"timed out|i/o timeout|context deadline exceeded|curl: \(28\)"),
    # Docker Hub answers a pull of a repository that is gone (or private) with 401 "pull
    # access denied"; registries say "manifest unknown" for a tag or digest they lack.
    (WITHDRAWN, r"returned error: 4(04|10)|404 not found|410 gone|: not found\b|pull access denied|"
                r"repository does not exist|manifest unknown|\b404\s+not found"),
    (FORBIDDEN, r"returned error: 40[137]|401 unauthorized|403 forbidden"),
    (SERVER, r"returned error: 5\d\d|50[0234] (internal|bad gateway|service unavailable|gateway)"),
    (TRUNCATED, r"transfer closed with \d+ bytes remaining|curl: \(18\)|unexpected eof"),
    (RESET, r"connection reset|recv failure"),
    # sha256sum's "FILE: FAILED" in capitals only: "ctr: failed to ..." is no checksum.
    (CHECKSUM, r"did not match|checksum mismatch|computed checksum|unexpected commit digest|(?-i:: FAILED\b)"),
]
_TEXT_RE = [(reason, re.compile(rx, re.IGNORECASE)) for reason, rx in _TEXT]


def classify_text(output: str) -> Optional[Diagnosis]:
    """The cause in curl's, ctr's/containerd's or sha256sum's output; None when no
    known message is in it (then show the output itself, not a guess)."""
    for reason, rx in _TEXT_RE:
        if rx.search(output or ""):
            return diagnosis(reason)
    return None
