"""Which HTTP stack for registry traffic, measured over TLS (issue 18): `BENCH_ONLY=http_stacks`.

600 manifest `HEAD`s (150 repositories x 4 tags) against the real CNCF registry serving HTTPS
with a private CA (`tests/servers/tls.py`; Go's server offers h2 by ALPN), sent by:

- tagsync's `OciRegistry` (aiohttp, HTTP/1.1): the registry client as a run uses it, through
  `observe`, the baseline every ratio is against;
- aiohttp bare: one `ClientSession`, the same questions, none of tagsync's checks (what the
  library costs alone);
- httpx `AsyncClient`, HTTP/1.1;
- httpx `AsyncClient`, HTTP/2 (the `h2` package): every request multiplexed on one connection.

Each at concurrency 8 and 16, directly and through `bench/latency_proxy.py` (20 ms added to
every chunk the client sends; TCP-level, so TLS passes through and a handshake pays it twice).
Per variant: median wall time of `BENCH_HTTP_RUNS` (3) rounds, client CPU per request (process
CPU time / requests: the registry and the proxy are other processes), TLS handshakes (the
connections opened, counted by the client's `SSLContext.wrap_bio`) and the protocol the server
answered with. Then each stack's import time in a fresh interpreter (median of 5) against
`import json, logging` measured the same way. Variants take turns within each round, so a
machine that gets busier mid-run does not fall on one stack. No assertions on time anywhere.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REPOS, TAGS, DELAY_MS = 150, 4, 20


class CountingContext(ssl.SSLContext):
    """A client context that counts TLS sessions started: asyncio (aiohttp) and anyio (httpx)
    both wrap a memory BIO per connection, so this is the number of handshakes."""

    handshakes = 0

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.handshakes += 1
        return super().wrap_bio(*args, **kwargs)


def counting_context(cafile: Path) -> CountingContext:
    """What `ssl.create_default_context(cafile=…)` builds (tagsync's own context), countable."""
    ctx = CountingContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cafile))
    return ctx


@dataclass
class Result:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)  # CPU seconds per request
    handshakes: int = 0
    protocol: str = ""


Scan = Callable[[str, list[tuple[str, str]], int, ssl.SSLContext], Awaitable[str]]


async def scan_tagsync(url: str, refs: list[tuple[str, str]], concurrency: int,
                       ctx: ssl.SSLContext) -> str:
    from tagsync.config import DigestFormat
    from tagsync.reference import ImageName
    from tagsync.registry import Want, observe, oci, transport

    host = url.split("://", 1)[1]
    wants = [Want(ImageName(host, r), t, DigestFormat.full, None) for r, t in refs]
    # the bench's counting context in place of the process-wide one (same CA, same settings)
    shared = transport._https
    transport._https = lambda: ctx
    client = oci.OciRegistry(url, max_concurrency=concurrency)
    try:
        found = await observe(wants, {host: client}, concurrency)
        assert all(o.value for o in found.values()), "a HEAD failed"
        assert client.stats.requests == len(refs), client.stats
    finally:
        await client.aclose()
        transport._https = shared
    return "HTTP/1.1"


async def scan_aiohttp(url: str, refs: list[tuple[str, str]], concurrency: int,
                       ctx: ssl.SSLContext) -> str:
    import aiohttp

    from tagsync.registry.manifest import ACCEPT

    versions: set[str] = set()
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(repo: str, tag: str) -> None:
            async with gate, session.head(f"{url}/v2/{repo}/manifests/{tag}",
                                          headers={"Accept": ACCEPT}) as r:
                assert r.status == 200 and r.headers.get("Docker-Content-Digest"), r.status
                versions.add(f"HTTP/{r.version.major}.{r.version.minor}")

        await asyncio.gather(*(one(r, t) for r, t in refs))
    return "/".join(sorted(versions))


def _scan_httpx(http2: bool) -> Scan:
    async def scan(url: str, refs: list[tuple[str, str]], concurrency: int,
                   ctx: ssl.SSLContext) -> str:
        import httpx

        from tagsync.registry.manifest import ACCEPT

        versions: set[str] = set()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(verify=ctx, http2=http2, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(repo: str, tag: str) -> None:
                async with gate:
                    r = await client.head(f"{url}/v2/{repo}/manifests/{tag}",
                                          headers={"Accept": ACCEPT})
                assert r.status_code == 200 and r.headers.get("Docker-Content-Digest"), r
                versions.add(r.http_version)

            await asyncio.gather(*(one(r, t) for r, t in refs))
        return "/".join(sorted(versions))

    return scan


STACKS: dict[str, Scan] = {
    "tagsync OciRegistry (aiohttp)": scan_tagsync,
    "aiohttp, bare session": scan_aiohttp,
    "httpx, HTTP/1.1": _scan_httpx(False),
    "httpx, HTTP/2": _scan_httpx(True),
}
BASELINE = "tagsync OciRegistry (aiohttp)"

# What each stack loads before its first request, event loop and TLS included, with tagsync
# imported first (so httpx's command-line tool stays out, as in a run: tagsync/__init__.py).
# httpcore imports h2 whenever it is installed (the test extra installs it; a Lambda image,
# built from the runtime dependencies, has none), so "HTTP/1.1" hides it as an absent package.
_ASYNC_HTTPX = "import asyncio, ssl, httpx, httpcore._backends.anyio, anyio._backends._asyncio"
IMPORTS = {
    "import json, logging (baseline)": ("", "import json, logging"),
    "asyncio + ssl (every stack needs)": ("", "import asyncio, ssl"),
    "aiohttp": ("", "import asyncio, ssl, aiohttp"),
    "httpx, async, HTTP/1.1 (no h2)": ("import sys; sys.modules['h2'] = None", _ASYNC_HTTPX),
    "httpx, async, HTTP/2 (h2)": ("", _ASYNC_HTTPX + ", httpcore._async.http2"),
}


def import_ms(setup: str, statement: str, runs: int = 5) -> float:
    """Median milliseconds of `statement` in fresh interpreters (interpreter start excluded)."""
    code = (f"import tagsync, time\n{setup}\nt = time.perf_counter()\n{statement}\n"
            "print(time.perf_counter() - t)")
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True, env=os.environ).stdout
        times.append(float(out) * 1000)
    return statistics.median(times)


def _push_all(server: Any, ctx: ssl.SSLContext) -> list[tuple[str, str]]:
    import httpx
    from tests.servers.images import push_image

    from tagsync.image.tiny import build_image

    def push(i: int) -> None:
        built = build_image(f"http stacks {i}")
        with httpx.Client(timeout=60, verify=ctx) as c:
            for t in range(TAGS):
                push_image(c, server.url, f"stacks/svc-{i}", f"1.{t}.0", built)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(push, range(REPOS)))
    return [(f"stacks/svc-{i}", f"1.{t}.0") for i in range(REPOS) for t in range(TAGS)]


def bench_http_stacks() -> None:
    import latency_proxy
    from tests.servers.tls import CertificateAuthority, start_tls_registry, stop_tls_registry

    if not shutil.which("docker-registry"):
        print("== HTTP stacks over TLS: skipped (docker-registry missing; `make deps`)")
        return
    try:
        import h2  # noqa: F401
    except ImportError:
        print("== HTTP stacks over TLS: skipped (the h2 package is missing: pip install -e '.[test]')")
        return
    runs = int(os.environ.get("BENCH_HTTP_RUNS", 3))
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-stacks-"))
    ca = CertificateAuthority.create(tmp / "ca")
    server = start_tls_registry(tmp / "registry", ca)
    proxy = None
    try:
        refs = _push_all(server, ca.context())
        proxy, port = latency_proxy.start(server.url, DELAY_MS)
        paths = {"direct": server.url, f"+{DELAY_MS} ms": f"https://127.0.0.1:{port}"}
        variants = [(stack, c, path) for path in paths for c in (8, 16) for stack in STACKS]
        results = {v: Result() for v in variants}
        for _ in range(runs):
            for stack, concurrency, path in variants:
                ctx = counting_context(ca.cert)
                t0, cpu0 = time.perf_counter(), time.process_time()
                protocol = asyncio.run(STACKS[stack](paths[path], refs, concurrency, ctx))
                result = results[(stack, concurrency, path)]
                result.walls.append(time.perf_counter() - t0)
                result.cpus.append((time.process_time() - cpu0) / len(refs))
                result.handshakes, result.protocol = ctx.handshakes, protocol
        print(f"== HTTP stacks over TLS: {len(refs)} manifest HEADs ({REPOS} repositories x {TAGS} "
              f"tags), CNCF registry on 127.0.0.1 (h2 offered by ALPN); median of {runs} rounds")
        print("   stack                          conc  path       wall   CPU/request  handshakes"
              "  protocol    wall, CPU vs tagsync")
        for stack, concurrency, path in variants:
            r = results[(stack, concurrency, path)]
            base = results[(BASELINE, concurrency, path)]
            wall, cpu = statistics.median(r.walls), statistics.median(r.cpus)
            ratio = (f"{wall / statistics.median(base.walls):5.2f}x, "
                     f"{cpu / statistics.median(base.cpus):4.2f}x")
            print(f"   {stack:<30} {concurrency:>4}  {path:<8} {wall * 1000:6.0f} ms  {cpu * 1000:6.2f} ms"
                  f"  {r.handshakes:>10}  {r.protocol:<10}  {ratio}")
        for concurrency in (8, 16):
            limit = math.ceil(len(refs) / concurrency) * DELAY_MS
            print(f"   latency-bound limit at {concurrency:>2}: {limit} ms (ceil({len(refs)}/"
                  f"{concurrency}) x {DELAY_MS} ms); a new connection's TLS handshake waits "
                  f"2 x {DELAY_MS} ms (ClientHello, then the client's Finished)")
        base_import = import_ms(*IMPORTS["import json, logging (baseline)"])
        print("   import time, fresh interpreter, median of 5 (tagsync imported first, so httpx's "
              "CLI stays out):")
        for name, (setup, statement) in IMPORTS.items():
            ms = base_import if "baseline" in name else import_ms(setup, statement)
            print(f"     {name:<34} {ms:7.1f} ms   {ms / base_import:5.1f}x", flush=True)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        stop_tls_registry(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    bench_http_stacks()
