"""Watch streams of the fake API server (a mixin of FakeApiServer)."""

from __future__ import annotations

import copy
import json
import time

from werkzeug import Response

from tests.helpers.fakeapi.wire import Stream, match_fields, match_labels, status


class Watches:
    """Needs ``self.store`` and ``self._matching`` (FakeApiServer)."""

    def _stream_events(self, stream: Stream) -> Response:
        events = stream.events
        if isinstance(events, str):
            lines = [line for line in events.splitlines() if line.strip()]
        else:
            lines = [json.dumps(e) for e in events]

        def gen():
            for line in lines:
                if stream.delay:
                    time.sleep(stream.delay)
                yield (line + "\n").encode()

        return Response(gen(), status=200, content_type="application/json", direct_passthrough=True)

    def _watch(self, plural: str, ns: str, query: dict) -> Response:
        timeout = min(float(query.get("timeoutSeconds", self.max_watch_seconds)), self.max_watch_seconds)
        start_rv = query.get("resourceVersion")
        store = self.store

        def visible(obj: dict) -> bool:
            meta = obj.get("metadata") or {}
            return ((not ns or meta.get("namespace") == ns) and match_labels(obj, query.get("labelSelector"))
                    and match_fields(obj, query.get("fieldSelector")))

        def strip(obj: dict) -> dict:
            return obj

        with store.lock:
            if start_rv in (None, "", "0"):
                initial = [{"type": "ADDED", "object": copy.deepcopy(o)} for o in self._matching(plural, ns, query)]
                last = store.rv
            else:
                initial = []
                last = int(start_rv)
                oldest = store.log[0][0] if store.log else store.rv
                if last < oldest - 1:
                    gone = status(410, "Expired", f"too old resource version: {last} ({oldest})")
                    return self._stream_events(Stream([{"type": "ERROR", "object": gone}]))

        def gen():
            nonlocal last
            for ev in initial:
                yield (json.dumps(ev) + "\n").encode()
            until = time.monotonic() + timeout
            while True:
                with store.lock:
                    store.reap()
                    fresh = [(rv, t, o) for rv, t, p, o in store.log if rv > last and p == plural]
                    if not fresh:
                        left = until - time.monotonic()
                        if left <= 0:
                            return
                        store.lock.wait(min(left, 0.05))
                        continue
                    last = max(rv for rv, _, _ in fresh)
                for _, type_, obj in fresh:
                    if visible(obj):
                        yield (json.dumps({"type": type_, "object": strip(obj)}) + "\n").encode()

        return Response(gen(), status=200, content_type="application/json", direct_passthrough=True)
