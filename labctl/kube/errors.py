"""API and transport failures as one-line LabErrors that name the fix."""

from __future__ import annotations

import json

from labctl.errors import ClusterError, LabError, NotFound
from labctl.kube.kinds import ObjectRef

LAB_DOWN_HINT = "is the lab up? `labctl status`"


def translate(exc: BaseException, action: str, ref: ObjectRef | None = None) -> LabError:
    """An API or transport failure as a one-line LabError with a hint."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    import urllib3.exceptions

    if isinstance(exc, LabError):
        return exc
    if isinstance(exc, ApiException):
        status: dict = {}
        try:
            status = json.loads(exc.body) if exc.body else {}
        except (TypeError, ValueError):
            pass
        message = status.get("message") or exc.reason or "no message"
        code = exc.status
        if code == 404:
            if ref is None:
                return NotFound(f"{action}: {message}", hint="check the name; `labctl exercises` lists what labctl creates")
            return NotFound(f"{ref} not found", hint="create it with `labctl apply EXERCISE` (`labctl exercises` lists them)")
        hint = {
            401: "the lab's kubeconfig is not accepted; re-export it with `labctl up`",
            403: "the kubeconfig's user may not do this; use the lab's admin kubeconfig",
            409: "someone changed the object at the same time; run the command again",
            422: "the object is invalid; check the manifest (`labctl exercises`)",
            500: "the API server failed; `labctl status` shows the control plane",
            503: "the API server is not ready; wait a moment or check `labctl status`",
        }.get(code, LAB_DOWN_HINT)
        return ClusterError(f"{action}: API server answered {code} {status.get('reason') or exc.reason}: {message}", hint=hint)
    if isinstance(exc, urllib3.exceptions.HTTPError) or isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        reason = getattr(exc, "reason", None) or exc
        text = str(reason)
        if "Connection refused" in text or "Errno 111" in text:
            text = "connection refused"
        elif "timed out" in text.lower():
            text = "timed out"
        return ClusterError(f"{action}: cannot reach the Kubernetes API ({text})", hint=LAB_DOWN_HINT)
    if isinstance(exc, ConfigException):
        return ClusterError(f"the lab's kubeconfig is unusable: {exc}", hint="re-export it with `labctl up`")
    raise exc
