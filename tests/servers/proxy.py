"""A loopback proxy in front of the real registry that misbehaves on purpose.

Faults are queued per path pattern: each matching request consumes one fault (a status with
headers, a dropped connection, a slow answer, or a rewritten header) before traffic passes
through untouched. It also pages `tags/list` with `Link` headers as distribution v3 does
(the Debian 2.8 registry ignores `?n=`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx


@dataclass
class Fault:
    status: int | None = None  # answer with this status instead of forwarding
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # drop the connection without an answer
    delay: float = 0.0  # then forward
    rewrite: dict[str, str] = field(default_factory=dict)  # forward, then replace headers


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[re.Pattern[str], Fault]] = []
        self.seen: list[str] = []

    def add(self, pattern: str, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend((re.compile(pattern), f) for f in faults)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.seen.append(f"{method} {path}")
            for i, (pattern, fault) in enumerate(self._queue):
                if pattern.search(f"{method} {path}"):
                    del self._queue[i]
                    return fault
        return None


class ConnectionDropped(Exception):
    pass


def make_proxy(upstream: str, plan: FaultPlan, page_tags: bool = True,
               latency: float = 0.0) -> Callable[..., Any]:
    client = httpx.Client(base_url=upstream, timeout=30)

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterator[bytes] | list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if latency:
            time.sleep(latency)
        fault = plan.take(method, path)
        if fault is not None and fault.reset:
            raise ConnectionDropped(path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            start(f"{fault.status} Injected", [*fault.headers.items(),
                                               ("Content-Type", "application/json"),
                                               ("Content-Length", "2")])
            return [] if method == "HEAD" else [b"{}"]  # a HEAD answer has no body
        # Host goes upstream as a reverse proxy sends it, so the registry's upload Locations
        # point back at the proxy and every request of a push is seen (and counted) here.
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_") and k != "HTTP_CONNECTION"}
        if environ.get("CONTENT_TYPE"):  # WSGI keeps it out of the HTTP_ keys
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        params = parse_qs(query)
        if page_tags and path.endswith("/tags/list") and "n" in params:
            resp = client.request(method, path, headers=headers)
            tags = sorted(resp.json().get("tags") or [])
            last = params.get("last", [""])[0]
            n = int(params["n"][0])
            rest = [t for t in tags if t > last]
            page, more = rest[:n], rest[n:]
            out_headers = [("Content-Type", "application/json")]
            if more:
                nxt = urlencode({"n": n, "last": page[-1]})
                out_headers.append(("Link", f'<{path}?{nxt}>; rel="next"'))
            import json

            data = json.dumps({"name": resp.json().get("name"), "tags": page}).encode()
            start("200 OK", [*out_headers, ("Content-Length", str(len(data)))])
            return [data]
        resp = client.request(method, f"{path}?{query}" if query else path, headers=headers,
                              content=body)
        out = [(k, v) for k, v in resp.headers.items()
               if k.lower() not in ("transfer-encoding", "connection", "content-encoding")]
        if fault is not None and fault.rewrite:
            out = [(k, v) for k, v in out if k.lower() not in
                   {r.lower() for r in fault.rewrite}] + list(fault.rewrite.items())
        start(f"{resp.status_code} {resp.reason_phrase}", out)
        return [resp.content]

    return app
