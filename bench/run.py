"""`make bench`: speed and memory as ratios against baselines measured in the same run.

1. Edit engine: a generated 10,000-entry catalog shaped like the Lablup file, 100 digest edits in
   one pass, against a ruamel.yaml round-trip (load, set, dump). Target: >= 20x, byte-exact.
2. Registry scan: 200 images x 3 tags on a local CNCF registry, through tagsync's observer,
   against a sequential `skopeo inspect` loop over the same references.

3. Publishing: HTTP requests per published commit through GitHub's API (GraphQL, REST) against
   the contract server, and clone-and-push with dulwich against the local git server.

4. Lambda: cold import time of the handler module, peak memory of the demo run, `make demo`'s
   wall time; and the cold path: one handler invocation in a fresh interpreter on a task root
   laid out as the image's, with and without bytecode, against a bare interpreter.

5. Image builder: `tagsync build` of tagsync with its real dependencies on a 40 MB synthetic base,
   first and repeated, to the base's registry (mounts) and to another one (downloads, uploads);
   against `skopeo copy` of the finished image between two registries.

6. Verification (issue 19): per image, key-based and keyless cosign `.sig` and a Sigstore bundle
   referrer through the OCI client, against the one HEAD per tag a scan costs; the checks alone;
   and a whole run of 500 signed images with and without `verify`.
7. Hostile registry: every case of tests/servers/hostile.py in one run with one good image;
   target: all contained, under twice the request timeout. The same for every lie of
   tests/servers/liar.py (issue #27), and no credential at any listener but the registry.
8. Corpus: recall and precision of `tagsync refs` on ../shared/corpus/manifests (target 100%).
   Status: 300 rows fitted to a 120-column terminal, against a rich Table of the same rows.
9. Deploy: the AWS calls of a redeploy that changes nothing (moto).
11. Organisation (bench/org.py): one `org run` over 200 repositories x 5 references (100
   images) against 200 single-repository runs, registry 50 ms away: requests and wall time.
10. HTTP stacks over TLS (bench/http_stacks.py): tagsync's registry client, bare aiohttp, httpx on
   HTTP/1.1 and HTTP/2 against the real registry serving HTTPS (h2 offered), direct and 20 ms
   away: wall, client CPU per request, handshakes, and each stack's import time.
13. YAML test suite (bench/yaml_suite.py): every addressable scalar of every valid case set to
   hard values, judged by PyYAML, ruamel.yaml and eemeli's yaml; exact rates of right, refused,
   wrong (target 0) and tracebacks (target 0), then the same on a sample of the real files.

12. Whole run (bench/whole_run.py, issue 30): `tagsync run`, dry and with a commit pushed to the
   local git server, on 150 images x 2 references, every image changed, the registry 50 ms away:
   against the latency-bound limit of the run's own requests; requests per changed image.

`BENCH_ONLY=cold,lambda` (names without `bench_`) runs some of them.

No timed assertions: numbers are printed for people to compare between commits.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagsync.catalog import Edit, apply_edits
from tagsync.config import DigestFormat
from tagsync.reference import ImageName
from tagsync.registry import Want, observe
from tagsync.registry.oci import OciRegistry

ROOT = Path(__file__).resolve().parents[1]


def best_of(n: int, fn):  # type: ignore[no-untyped-def]
    times = []
    result = None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def catalog(entries: int) -> str:
    rng = random.Random(7)
    out = ["# generated catalog shaped like lablup image-metadata.yml\nimages:\n"]
    for i in range(entries):
        out.append(f"\n  - name: kernel-{i}\n    syntax: python\n    # comment for entry {i}\n"
                   f"    tags:\n      - [\"latest\",     \":3.6-ubuntu\"]\n")
        for tag in ("3.6-ubuntu", "3.7-debian"):
            out.append(f'      - ["{tag}", "{rng.getrandbits(48):012x}"]\n')
        if i == 0:
            out.append("    slots: &default\n      cpu: 1    # cores\n      mem: 1.0  # GiB\n")
        else:
            out.append("    slots:\n      <<: *default\n")
    return "".join(out)


def _edits(entries: int) -> list[Edit]:
    rng = random.Random(1)
    picks = sorted(rng.sample(range(entries), 100))
    return [Edit(("images", i, "tags", 1, 1), f"{rng.getrandbits(48):012x}") for i in picks]


def edit_worker(kind: str, entries: int, out: str) -> None:
    """One side of the comparison, alone in its process so its peak RSS is its own."""
    import json
    import resource

    text = catalog(entries)
    data = text.encode()
    edits = _edits(entries)
    if kind == "tagsync":
        elapsed, result = best_of(3, lambda: apply_edits(data, edits))
    else:
        from ruamel.yaml import YAML

        def roundtrip() -> bytes:
            y = YAML()
            y.preserve_quotes = True
            doc = y.load(text)
            for e in edits:
                node = doc
                for seg in e.path[:-1]:
                    node = node[seg]
                node[e.path[-1]] = e.value
            buf = io.StringIO()
            y.dump(doc, buf)
            return buf.getvalue().encode()

        elapsed, result = best_of(1, roundtrip)
    changed = sum(1 for a, b in zip(data.splitlines(), result.splitlines(), strict=False) if a != b)
    same_length = len(data.splitlines()) == len(result.splitlines())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps({"seconds": elapsed, "rss_mb": rss, "changed": changed,
                                     "same_lines": same_length, "bytes": len(data)}))


def bench_edit() -> None:
    import json

    entries = int(os.environ.get("BENCH_ENTRIES", 10_000))
    results = {}
    for kind in ("tagsync", "ruamel"):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, __file__, "--edit-worker", kind, str(entries), f.name],
                           check=True)
            results[kind] = json.loads(Path(f.name).read_text())
    ours, rt = results["tagsync"], results["ruamel"]
    print(f"== edit engine: {entries:,}-entry catalog (anchors, merge keys, comments), "
          "100 digest edits in one pass")
    print(f"   file size                 {ours['bytes'] / 1e6:.2f} MB")
    for name, r in (("tagsync", ours), ("ruamel.yaml round-trip", rt)):
        exact = r["changed"] == 100 and r["same_lines"]
        print(f"   {name:<25} {r['seconds'] * 1000:9.1f} ms   peak RSS {r['rss_mb']:6.1f} MB   "
              f"lines changed {r['changed']} (byte-exact elsewhere: {exact})")
    print(f"   speed-up                  {rt['seconds'] / ours['seconds']:9.1f}x  (target >= 20x)",
          flush=True)


def bench_scan() -> None:
    from tests.servers.fixtures import _start_registry, _stop
    from tests.servers.images import push_image

    from tagsync.image.tiny import build_image

    if not shutil.which("docker-registry") or not shutil.which("skopeo"):
        print("== registry scan: skipped (docker-registry or skopeo missing; `make deps`)")
        return
    images, tags = int(os.environ.get("BENCH_IMAGES", 200)), 3
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-bench-"))
    server = _start_registry(tmp)
    try:
        import httpx

        refs = []
        with httpx.Client(timeout=30) as c:
            for i in range(images):
                for t in range(tags):
                    push_image(c, server.url, f"bench/img{i}", f"t{t}", build_image(f"{i}:{t}"))
                    refs.append((f"bench/img{i}", f"t{t}"))
        wants = [Want(ImageName(server.host, r), t, DigestFormat.full, None) for r, t in refs]

        async def scan(concurrency: int) -> OciRegistry:
            client = OciRegistry(server.url, max_concurrency=concurrency)
            try:
                found = await observe(wants, {server.host: client}, concurrency)
                assert all(o.value for o in found.values())
            finally:
                await client.aclose()
            return client

        t0, cpu0 = time.perf_counter(), time.process_time()
        client = asyncio.run(scan(16))
        ours, cpu = time.perf_counter() - t0, time.process_time() - cpu0

        t0 = time.perf_counter()
        for r, t in refs:
            subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                            f"docker://{server.host}/{r}:{t}"], check=True, capture_output=True)
        skopeo = time.perf_counter() - t0
        print(f"== registry scan: {images} images x {tags} tags on a local registry")
        print(f"   tagsync (concurrency 16)  {ours * 1000:8.1f} ms   requests {client.stats.requests}"
              f" ({client.stats.requests / len(refs):.2f}/tag), manifest GETs "
              f"{client.stats.manifest_gets}")
        print(f"   client CPU per request    {cpu * 1000 / client.stats.requests:8.2f} ms   (process CPU "
              "time / requests: what a Lambda with a fraction of a vCPU pays per request; 512 MB is "
              "about a third of one)")
        print(f"   sequential skopeo loop    {skopeo * 1000:8.1f} ms")
        print(f"   speed-up                  {skopeo / ours:8.1f}x")
    finally:
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)


def _bare_head_lanes(port: int, refs: list[tuple[str, str]], lanes: int) -> float:
    """Seconds for `lanes` keep-alive connections sending bare HEADs: no parsing beyond the end
    of the headers, no pool, no retries. What any client could at best reach here."""
    from tagsync.registry.manifest import ACCEPT

    async def lane(queue: list[tuple[str, str]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            repo, tag = queue.pop()
            writer.write(f"HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: bench\r\n"
                         f"Accept: {ACCEPT}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"Docker-Content-Digest" in head, head
        writer.close()

    async def run() -> None:
        queue = list(refs)
        await asyncio.gather(*(lane(queue) for _ in range(lanes)))

    t0 = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - t0


def bench_scale() -> None:
    """Issue 5's scale target: 500 repositories x 4 tags behind a proxy adding 20 ms a request."""
    import math
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import latency_proxy
    from tests.servers.fixtures import _start_registry, _stop
    from tests.servers.images import push_image

    from tagsync.image.tiny import build_image

    if not shutil.which("docker-registry") or not shutil.which("skopeo"):
        print("== registry scan at scale: skipped (docker-registry or skopeo missing; `make deps`)")
        return
    repos, tags, delay_ms = int(os.environ.get("BENCH_REPOS", 500)), 4, 20
    sample = int(os.environ.get("BENCH_SKOPEO_SAMPLE", 60))
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-scale-"))
    server = _start_registry(tmp)
    proxy = None
    try:
        def push(i: int) -> None:
            built = build_image(f"scale {i}")
            with httpx.Client(timeout=60) as c:
                for t in range(tags):
                    push_image(c, server.url, f"org/svc-{i}", f"1.{t}.0", built)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(push, range(repos)))
        proxy, port = latency_proxy.start(server.url, delay_ms)
        host, url = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        refs = [(f"org/svc-{i}", f"1.{t}.0") for i in range(repos) for t in range(tags)]
        wants = [Want(ImageName(host, r), t, DigestFormat.full, None) for r, t in refs]

        async def scan(concurrency: int, target: str = url) -> OciRegistry:
            client = OciRegistry(target, max_concurrency=concurrency)
            try:
                found = await observe(wants, {host: client}, concurrency)
                assert all(o.value for o in found.values())
            finally:
                await client.aclose()
            return client

        runs = int(os.environ.get("BENCH_SCALE_RUNS", 3))
        print(f"== registry scan at scale: {repos} repositories x {tags} tags, every request "
              f"delayed {delay_ms} ms by a proxy; best and median of {runs} scans")
        print("   concurrency   wall (best)   latency-bound limit   ratio best / median"
              "   requests/tag")
        best = math.inf
        for concurrency in (8, 16, 32, 64):
            walls = []
            for _ in range(runs):
                t0 = time.perf_counter()
                client = asyncio.run(scan(concurrency))
                walls.append(time.perf_counter() - t0)
            wall, median = min(walls), statistics.median(walls)
            limit = math.ceil(client.stats.requests / concurrency) * delay_ms / 1000
            best = min(best, wall)
            print(f"   {concurrency:>11}   {wall * 1000:8.0f} ms   {limit * 1000:9.0f} ms"
                  f"            {wall / limit:5.2f}x / {median / limit:4.2f}x"
                  f"     {client.stats.requests / len(refs):.2f}   (target <= 1.3x)")
        floor = min(_bare_head_lanes(port, refs, 8) for _ in range(runs))
        floor_limit = math.ceil(len(refs) / 8) * delay_ms / 1000
        print(f"   bare sockets (8)       {floor * 1000:7.0f} ms   = {floor / floor_limit:.2f}x, the floor"
              " of this machine: 8 lanes of raw HEADs, no HTTP library, same proxy")
        t0 = time.perf_counter()
        asyncio.run(scan(8, server.url))  # same questions, no proxy: what the registry and client cost
        direct = time.perf_counter() - t0
        per_request = direct / (len(refs) / 8) * 1000
        print(f"   without the proxy (8)   {direct * 1000:7.0f} ms   = {per_request:.1f} ms a request of "
              "registry + client time on top of the added delay")
        t0 = time.perf_counter()
        for r, t in refs[:sample]:
            subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                            f"docker://{host}/{r}:{t}"], check=True, capture_output=True)
        per_ref = (time.perf_counter() - t0) / sample
        skopeo = per_ref * len(refs)
        print(f"   sequential skopeo loop  {skopeo * 1000:8.0f} ms   ({sample} references timed, "
              f"{per_ref * 1000:.0f} ms each, scaled to {len(refs)})")
        print(f"   speed-up (best tagsync)  {skopeo / best:7.1f}x   (target >= 20x)", flush=True)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_publish() -> None:
    from tests.servers.fixtures import serve_wsgi, start_git_server
    from tests.servers.github import GitHubServer, contract_files_present, graphql_schema, rest_contract

    from tagsync.publish.git import GitPublisher
    from tagsync.publish.github import GitHubApi, GitHubPublisher, StaticToken

    if not contract_files_present():
        print("== publish: skipped (GitHub API description missing; `make deps`)")
        return
    rest_contract(), graphql_schema()  # load the spec before timing (the server validates with it)
    old = catalog(200).encode()
    new = old.replace(b"sha256:", b"sha256:0", 1)
    rows = []
    for api in ("graphql", "rest"):
        server = GitHubServer()
        server.create_repo("acme/c", {"images.yml": old, "README.md": b"x\n"})
        server.tokens["t"] = "write"
        wsgi = serve_wsgi(server)
        try:
            gh = GitHubApi(wsgi.url, StaticToken("t"))
            pub = GitHubPublisher(gh, "acme/c", "main", use_graphql=api == "graphql")
            t0 = time.perf_counter()
            snap = pub.snapshot()
            snap.read("images.yml")
            pub.publish(snap, {"images.yml": new}, "bench")
            took = time.perf_counter() - t0
            rows.append((f"GitHub API, {api}", gh.requests, gh.writes, took))
            gh.close()
        finally:
            wsgi.stop()
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-bench-"))
    git = start_git_server(tmp)
    try:
        git.commit_directly({"images.yml": old, "README.md": b"x\n"}, "initial")
        git.requests.clear()
        pub_git = GitPublisher(git.url, "main", token=git.token)
        t0 = time.perf_counter()
        gsnap = pub_git.snapshot()
        gsnap.read("images.yml")
        pub_git.publish(gsnap, {"images.yml": new}, "bench")
        took = time.perf_counter() - t0
        writes = sum("receive-pack" in r for r in git.requests)
        rows.append(("clone-and-push (dulwich)", len(git.requests), writes, took))
    finally:
        git.wsgi.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("== publish: HTTP requests for one commit (read head + catalog, write one file);")
    print("   times include the contract server validating every exchange against GitHub's spec")
    for name, total, writes, took in rows:
        print(f"   {name:26s} {total:3d} requests ({writes} writing)  {took * 1000:7.1f} ms")


# Peak RSS of this process since exec (ru_maxrss would carry the forking parent's peak over).
_HWM = ("int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024")


def _child(code: str) -> tuple[float, float]:
    """(wall ms, peak RSS MB) of a fresh interpreter running `code`."""
    import json

    probe = ("import json, time; t = time.perf_counter()\n" + code +
             f"\nprint(json.dumps([(time.perf_counter() - t) * 1000, {_HWM}]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1], env=_WITH_BYTECODE)
    ms, mb = json.loads(out.stdout.strip().splitlines()[-1])
    return float(ms), float(mb)


# Imports are timed as the image runs them, from bytecode: a PYTHONDONTWRITEBYTECODE in the
# caller's environment would otherwise make every child compile tagsync's sources again.
_WITH_BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _compile_sources() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "tagsync")],
                   check=True, capture_output=True, env=_WITH_BYTECODE)


def _process_ms(code: str) -> float:
    """Spawn to exit of a fresh interpreter running `code` from bytecode, in ms."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                   cwd=Path(__file__).resolve().parents[1], env=_WITH_BYTECODE)
    return (time.perf_counter() - start) * 1000


# The libraries `import tagsync.run` needs, alone: a model class loads pydantic's `Field` machinery
# (pydantic.fields, pydantic.types, annotated_types) even when no field uses `Field`.
_RUN_LIBRARIES = "import asyncio, yaml; from pydantic import BaseModel, Field"


def bench_lambda() -> None:
    """Cold import of the handler module and of the run path, and peak memory of the demo run
    (targets: 150 ms, 3x `python -c "import json, logging"`, 80 MB)."""
    runs = 7
    _compile_sources()
    codes = {"handler": "import tagsync.aws.handler", "baseline": "import json, logging",
             "run": "import tagsync.run", "libs": _RUN_LIBRARIES}
    inside: dict[str, list[float]] = {k: [] for k in codes}
    whole: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(runs):  # interleaved, so a busy moment weighs on every line alike
        for key, code in codes.items():
            inside[key].append(_child(code)[0])
            whole[key].append(_process_ms(code))
    med = {k: sorted(v)[runs // 2] for k, v in inside.items()}
    proc = {k: sorted(v)[runs // 2] for k, v in whole.items()}
    # The demo's set-up (a bare repo, image layouts), then one full run in this process, as a
    # Lambda invocation would do it.
    demo = ("import runpy, shutil\n"
            "d = runpy.run_path('examples/demo/run_demo.py', run_name='bench')\n"
            "out = d['OUT']; shutil.rmtree(out, ignore_errors=True); out.mkdir()\n"
            "shutil.copy(d['HERE'] / 'tagsync.yaml', out / 'tagsync.yaml')\n"
            "d['make_remote'](out / 'remote.git'); d['make_registry'](out / 'registry')\n"
            "from tagsync.config import load_config; from tagsync.run import run\n"
            "assert run(load_config(out / 'tagsync.yaml')).pushed")
    _, demo_mb = _child(demo)
    _, bare_mb = _child("pass")
    with tempfile.TemporaryDirectory() as where:  # `make demo` on a warm venv, as a newcomer runs it
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "examples" / "demo" / "run_demo.py")], cwd=where,
                       capture_output=True, check=True)
        demo_s = time.perf_counter() - start
    print(f"== Lambda cold path (median of {runs} fresh interpreters, from bytecode)")
    print(f"   import tagsync.aws.handler   {med['handler']:7.1f} ms   (target <= 150 ms)")
    print(f"   import tagsync.run           {med['run']:7.1f} ms   what the first invocation adds "
          "(target <= 150 ms)")
    print(f"   the libraries it needs alone {med['libs']:7.1f} ms   asyncio, PyYAML, pydantic: "
          f"tagsync's own share is {med['run'] - med['libs']:.0f} ms")
    base = proc["baseline"]
    print(f"   python -c 'import json, logging' {base:5.1f} ms   spawn to exit, baseline")
    print(f"   python -c 'import tagsync.run'   {proc['run']:5.1f} ms   {proc['run'] / base:4.1f}x "
          f"(target <= 3x); the libraries alone {proc['libs']:.1f} ms, {proc['libs'] / base:.1f}x")
    print(f"   demo run peak RSS            {demo_mb:7.1f} MB   (target <= 80 MB; bare interpreter "
          f"{bare_mb:.1f} MB, ratio {demo_mb / bare_mb:.1f}x)")
    print(f"   make demo (warm venv)        {demo_s:7.1f} s    (target well under 30 s)")


def bench_build() -> None:
    """Build time and bytes uploaded for a first and a repeated build (issue 7)."""
    from tests.servers.fixtures import _start_registry, _stop
    from tests.servers.images import lambda_base

    from tagsync.image.pipeline import BlobCache, BuildSpec, PipOptions, run_build

    wheelhouse = Path(__file__).resolve().parents[1] / ".cache" / "wheelhouse"
    if not (wheelhouse / ".complete").exists():
        print("== image builder: skipped, no .cache/wheelhouse (make deps downloads it)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-bench-build-"))
    servers = [_start_registry(tmp / name) for name in ("a", "b", "c")]
    a, b, c = servers
    try:
        a.push("lambda/python", "3.11", lambda_base(noise=20_000_000))
        spec = BuildSpec(base=f"{a.host}/lambda/python:3.11", revision="0" * 40,
                         pip=PipOptions(find_links=(str(wheelhouse),), no_index=True))
        cache = BlobCache(tmp / "cache")
        rows = []
        for label, target in (("first, base's registry", f"{a.host}/apps/tagsync:1"),
                              ("repeated, same registry", f"{a.host}/apps/tagsync:2"),
                              ("first, another registry", f"{b.host}/apps/tagsync:1"),
                              ("repeated, another registry", f"{b.host}/apps/tagsync:2")):
            start = time.perf_counter()
            result = run_build(spec, target, cache=cache)
            elapsed = time.perf_counter() - start
            assert result.push is not None
            rows.append((label, elapsed, result.push, result.requests, result.built.digest))
        start = time.perf_counter()
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://{a.host}/apps/tagsync:1", f"docker://{c.host}/copy/tagsync:1"],
                       check=True)
        skopeo = time.perf_counter() - start
    finally:
        for server in servers:
            _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)
    layer_mb = rows[0][2].bytes_uploaded / 1e6
    print("== image builder: tagsync + real dependencies on a 40 MB two-layer base (x86_64)")
    print(f"   {'build and push':28s} {'wall':>8s} {'uploaded':>10s} {'blobs up/mounted/skipped':>26s}"
          f" {'requests':>9s}")
    for label, elapsed, push, requests, _ in rows:
        counts = f"{len(push.uploaded)}/{len(push.mounted)}/{len(push.skipped)}"
        print(f"   {label:28s} {elapsed * 1000:6.0f} ms {push.bytes_uploaded / 1e6:7.1f} MB "
              f"{counts:>26s} {requests:9d}")
    print(f"   same digest every time: {len({r[4] for r in rows}) == 1}; "
          f"our layer + config: {layer_mb:.1f} MB")
    print(f"   skopeo copy of the built image to a third registry: {skopeo * 1000:.0f} ms "
          f"(tagsync's first push elsewhere, pip and layer included: {rows[2][1] / skopeo:.2f}x)")


def _signing_registry(prefix: str) -> tuple[Path, Any, Any, Any]:
    """A scratch folder, a local registry serving signed images, and a fresh ECDSA key whose
    public half is `<folder>/k.pub`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from tests.servers.fixtures import _start_registry
    from tests.servers.signed import SignedRegistry

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = _start_registry(tmp)
    reg = SignedRegistry(server.url, server.host, tmp / "data", server.url)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp / "k.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return tmp, server, reg, key


def _key_signed(reg: Any, key: Any, repository: str, n: int) -> tuple[str, Any]:
    """Seed a manifest under `latest` and its cosign `.sig`, signed with `key`; (digest, layer)."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from tests.servers.signed import CosignLayer, simple_signing

    digest = reg.seed_manifest(repository, "latest", f'{{"schemaVersion": 2, "n": {n}}}'.encode())
    payload = simple_signing(digest)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = CosignLayer("application/vnd.dev.cosign.simplesigning.v1+json", payload,
                        {"dev.cosignproject.cosign/signature": signature})
    reg.push_sig(repository, digest, [layer])
    return digest, layer


def bench_verify() -> None:
    """Verification cost per image (issue 19): key-based and keyless cosign `.sig`, and a Sigstore
    bundle referrer, through the OCI client against a local registry, next to the one HEAD a scan
    spends per tag; plus the signature checks alone (no I/O) and sigstore's import."""
    from tests.servers.fixtures import _stop
    from tests.servers.signed import SIGNATURES, load_signed

    from tagsync.verify import RegistryFetch, Verifier, VerifyPolicy

    if not shutil.which("docker-registry") or not (SIGNATURES / "README.md").exists():
        print("== verify: skipped (docker-registry or ../shared/fixtures/signatures missing)")
        return
    images = int(os.environ.get("BENCH_VERIFY_IMAGES", 100))
    root = str(SIGNATURES / "sigstore-python" / "trusted_root.json")
    tmp, server, reg, key = _signing_registry("tagsync-bench-verify-")
    keyless = load_signed("dir-img-cosign-fulcio-rekor-valid")
    bundle = (SIGNATURES / "cosign" / "oci-attestation.sigstore.json").read_bytes()
    subject = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    cases: dict[str, tuple[Verifier, list[tuple[str, str]]]] = {}
    material: dict[str, object] = {}
    try:
        key_refs, keyless_refs, bundle_refs, key_bundle_refs = [], [], [], []
        for i in range(images):
            digest, layer = _key_signed(reg, key, f"bench/key{i}", i)
            key_refs.append((f"bench/key{i}", digest))
            material.setdefault("key-based .sig", layer)
            digest, raw = _key_bundled(reg, key, f"bench/kbundle{i}", i)
            key_bundle_refs.append((f"bench/kbundle{i}", digest))
            material.setdefault("key bundle referrer", raw)
            digest = reg.seed_manifest(f"bench/keyless{i}", "latest", keyless.manifest)
            reg.push_sig(f"bench/keyless{i}", digest, [keyless.layer])
            keyless_refs.append((f"bench/keyless{i}", digest))
            reg.push_bundle_referrer(f"bench/bundle{i}", subject, bundle, fallback_tag=True)
            bundle_refs.append((f"bench/bundle{i}", subject))
        cases["key-based .sig"] = (Verifier(VerifyPolicy(key=str(tmp / "k.pub"))), key_refs)
        cases["key bundle referrer"] = (Verifier(VerifyPolicy(key=str(tmp / "k.pub"))),
                                        key_bundle_refs)
        identity = {"identity": "mitr@redhat.com", "issuer": "https://github.com/login/oauth"}
        cases["keyless .sig (SET, chain)"] = (
            Verifier(VerifyPolicy(**identity, trusted_root=root)), keyless_refs)
        material["keyless .sig (SET, chain)"] = keyless.layer
        material["keyless bundle referrer"] = bundle
        cases["keyless bundle referrer"] = (Verifier(VerifyPolicy(
            identity="cody@soyland.com", issuer="https://github.com/login/oauth",
            trusted_root=root)), bundle_refs)

        async def verify_all(verifier: Verifier, refs: list[tuple[str, str]],
                             concurrency: int) -> tuple[float, OciRegistry]:
            client = OciRegistry(server.url, max_concurrency=concurrency)
            gate = asyncio.Semaphore(concurrency)
            fetch = RegistryFetch(client)

            async def one(repository: str, digest: str) -> None:
                async with gate:
                    verdict = await verifier.verify(fetch, f"{server.host}/{repository}", digest)
                    assert verdict.ok, verdict

            t0 = time.perf_counter()
            try:
                await asyncio.gather(*(one(r, d) for r, d in refs))
            finally:
                await client.aclose()
            return time.perf_counter() - t0, client

        async def heads(refs: list[tuple[str, str]], concurrency: int) -> float:
            client = OciRegistry(server.url, max_concurrency=concurrency)
            t0 = time.perf_counter()
            try:
                await asyncio.gather(*(client.head(ImageName(server.host, r), "latest")
                                       for r, _ in refs))
            finally:
                await client.aclose()
            return time.perf_counter() - t0

        sigstore_import, _ = _child("import sigstore.verify, sigstore.models")
        asyncio.run(verify_all(*cases["keyless bundle referrer"], 1))  # sigstore imported, warm
        head_s = min(asyncio.run(heads(key_refs, 8)) for _ in range(3))
        print(f"== verify: cost per image, {images} images, local registry, best of 3")
        print(f"   {'':28s} {'conc. 8':>9s} {'sequential':>11s} {'requests':>9s} {'checks only':>12s}")
        print(f"   {'HEAD per tag (the scan)':28s} {head_s / images * 1000:7.2f} ms")
        for label, (verifier, refs) in cases.items():
            concurrent, client = min((asyncio.run(verify_all(verifier, refs, 8)) for _ in range(3)),
                                     key=lambda r: r[0])
            sequential = min(asyncio.run(verify_all(verifier, refs, 1))[0] for _ in range(3))
            only = _checks_only(verifier, refs[0][1], material[label])
            print(f"   {label:28s} {concurrent / images * 1000:7.2f} ms {sequential / images * 1000:9.2f} ms"
                  f" {client.stats.requests / images:9.1f} {only:10.2f} ms")
        print(f"   import sigstore (bundles only, once per process): {sigstore_import:.0f} ms")
    finally:
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)


def _key_bundled(reg: Any, key: Any, repository: str, n: int) -> tuple[str, bytes]:
    """Seed a manifest under `latest` and a key-based DSSE Sigstore bundle about it, attached
    through the `sha256-<hex>` tag (the registry has no referrers API); (digest, bundle)."""
    import base64
    import json as _json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from tests.servers.signed import BUNDLE_TYPE

    digest = reg.seed_manifest(repository, "latest", f'{{"schemaVersion": 2, "b": {n}}}'.encode())
    statement = _json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicate": {},
                             "predicateType": "https://sigstore.dev/cosign/sign/v1",
                             "subject": [{"name": repository,
                                          "digest": {"sha256": digest.removeprefix("sha256:")}}]})
    kind, payload = b"application/vnd.in-toto+json", statement.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    raw = _json.dumps({"mediaType": BUNDLE_TYPE, "verificationMaterial": {"publicKey": {"hint": ""}},
                       "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                                        "payloadType": kind.decode(),
                                        "signatures": [{"sig": base64.b64encode(signature).decode()}]},
                       }).encode()
    reg.push_bundle_referrer(repository, digest, raw, fallback_tag=True)
    return digest, raw


def _checks_only(verifier, digest: str, signed) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds per verification with the bytes already in memory: the crypto's share.
    `signed` is a cosign layer (`.sig` form) or the raw bytes of a Sigstore bundle."""
    import json as _json

    if isinstance(signed, bytes):
        n = 50
        t0 = time.perf_counter()
        for _ in range(n):
            assert verifier.verify_bundle(signed, digest).reason.value == "ok"
        return (time.perf_counter() - t0) / n * 1000
    sig = _json.dumps({"schemaVersion": 2, "layers": [signed.descriptor()]}).encode()

    class Mem:
        async def manifest(self, image: str, ref: str) -> tuple[bytes, str] | None:
            return (sig, "") if ref.endswith(".sig") else None

        async def blob(self, image: str, d: str) -> bytes:
            return bytes(signed.payload)

        async def referrers(self, image: str, d: str, artifact_type: str | None = None) -> None:
            return None

    async def loop(n: int) -> float:
        fetch = Mem()
        t0 = time.perf_counter()
        for _ in range(n):
            assert (await verifier.verify(fetch, "bench/x", digest)).ok
        return time.perf_counter() - t0

    n = 200
    return asyncio.run(loop(n)) / n * 1000


def bench_hostile() -> None:
    """Every case of the hostile registry (tests/servers/hostile.py) in one `tagsync run` with one
    well-behaved image among them: each must fail alone with its reason, the good image must be
    updated, and the whole run must stay under twice the request timeout (a hang, a retry storm
    or an endless page walk would not)."""
    from tests.servers.hostile import CASES, HostileRegistry

    from tagsync.config import load_config
    from tagsync.run import run

    timeout = float(os.environ.get("BENCH_HOSTILE_TIMEOUT", 2.0))
    server = HostileRegistry(tags={"good/app": ["1.0.0", "1.1.0"]},
                             trickle_interval=timeout / 4).start()
    try:
        def one(cases: list[str], folder: Path) -> tuple[float, bool]:
            entries = "".join(f'  - name: {n}\n    tag: "1.0.0"\n    digest: "0123456789ab"\n'
                              for n in ["good/app", *(f"h/{c}" for c in cases)])
            (folder / "images.yml").write_text("images:\n" + entries)
            (folder / "tagsync.yaml").write_text(
                f"catalogs:\n  - {{name: k, file: images.yml, entries: '.images[*]', "
                f"image: '{server.host}/{{name}}', tag: .tag, digest: .digest, "
                f"digest_format: image-id, policy: {{kind: semver}}}}\n"
                f"registries:\n  - {{host: '{server.host}', url: '{server.url}'}}\n"
                f"run: {{timeout: {timeout}, retries: 2, max_wait: 5}}\n")
            start = time.perf_counter()
            summary = run(load_config(folder / "tagsync.yaml"))
            elapsed = time.perf_counter() - start
            reasons = {f.image.rsplit("/h/", 1)[-1]: f.error for f in summary.failures}
            contained = all(CASES[c] in reasons.get(c, "") for c in cases)
            good = '"1.1.0"' in (folder / "images.yml").read_text()
            deferred = f"{server.host}/good/app" in summary.deferred
            return elapsed, contained and (good or (cases == ["retry-after"] and deferred))

        with tempfile.TemporaryDirectory() as tmp:
            contained = sorted(set(CASES) - {"retry-after"})
            (Path(tmp) / "a").mkdir()
            (Path(tmp) / "b").mkdir()
            wall, ok = one(contained, Path(tmp) / "a")
            wall_ra, ok_ra = one(["retry-after"], Path(tmp) / "b")  # defers its whole registry
    finally:
        server.stop()
    bounded = ok and ok_ra and wall < 2 * timeout and wall_ra < 2 * timeout
    print(f"6. hostile registry: {len(CASES)} cases, all bounded: {'yes' if bounded else 'NO'}; "
          f"wall time {wall * 1000:.0f} ms with one good image among {len(contained)} cases "
          f"(+ {wall_ra * 1000:.0f} ms for retry-after, which defers its registry) vs "
          f"2x the request timeout = {2 * timeout * 1000:.0f} ms")

def bench_liar() -> None:
    """Every lie of the second hostile registry (tests/servers/liar.py, issue #27) in one
    `tagsync run` in Bearer mode, with the good images among them: each must fail alone, the
    good ones must be updated, no credential may reach the foreign host or realm, and the run
    must stay under twice the request timeout."""
    from tests.servers.liar import CASES, GOOD, PASSWORD, LiarRegistry

    from tagsync.config import load_config
    from tagsync.run import run

    timeout = float(os.environ.get("BENCH_HOSTILE_TIMEOUT", 2.0))
    server = LiarRegistry(auth="bearer").start()
    os.environ["BENCH_LIAR_PASSWORD"] = PASSWORD
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            repos = [*GOOD, *(f"l/{c}" for c in sorted(CASES))]
            (folder / "images.yml").write_text("images:\n" + "".join(
                f'  - name: {n}\n    tag: "1.0.0"\n    digest: "0123456789ab"\n' for n in repos))
            (folder / "tagsync.yaml").write_text(
                f"catalogs:\n  - {{name: k, file: images.yml, entries: '.images[*]', "
                f"image: '{server.host}/{{name}}', tag: .tag, digest: .digest, "
                f"digest_format: image-id, policy: {{kind: semver, min_age: 1d}}}}\n"
                f"registries:\n  - {{host: '{server.host}', url: '{server.url}', username: robot, "
                f"password: 'env:BENCH_LIAR_PASSWORD'}}\n"
                f"run: {{timeout: {timeout}, retries: 2, max_wait: 5}}\n")
            start = time.perf_counter()
            summary = run(load_config(folder / "tagsync.yaml"))
            wall = time.perf_counter() - start
            failed = {f.image.removeprefix(f"{server.host}/") for f in summary.failures}
            good = (folder / "images.yml").read_text().count('"1.1.0"') == len(GOOD)
    finally:
        server.stop()
        os.environ.pop("BENCH_LIAR_PASSWORD", None)
    leaked = any("authorization" in r.headers for r in server.at("foreign") + server.at("evil"))
    contained = failed == {f"l/{c}" for c in CASES} and good
    print(f"6b. liar registry: {len(CASES)} lies, contained: {'yes' if contained else 'NO'}, "
          f"credentials elsewhere: {'YES' if leaked else 'none'}; wall time {wall * 1000:.0f} ms "
          f"with {len(GOOD)} good images vs 2x the request timeout = {2 * timeout * 1000:.0f} ms "
          f"({len(server.seen)} requests)")


def bench_cold() -> None:
    """Lambda cold path (issue 18): `tagsync build`'s own layer, unpacked as Lambda lays it out
    (as the build tests do), and one handler invocation in a fresh interpreter against the local
    registry with a small catalog. Timed from the process's spawn to the handler's return (Lambda
    bills init and invoke; it does not wait for the interpreter to tear down), with the layer's
    bytecode and without it (Lambda's /var/task is read-only, so nothing compiled is kept),
    against a bare interpreter running `import json` (targets: <= 3x, <= 60 MB)."""
    import json as _json
    import tarfile

    from tests.servers.fixtures import RegistryServer, _start_registry, _stop
    from tests.servers.images import lambda_base

    from tagsync.image.pipeline import BlobCache, BuildSpec, PipOptions, run_build

    wheelhouse = ROOT / ".cache" / "wheelhouse"
    if not (wheelhouse / ".complete").exists() or not shutil.which("docker-registry"):
        print("== Lambda cold path: skipped (run `make deps` for the wheelhouse and the registry)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-bench-cold-"))
    server: RegistryServer = _start_registry(tmp)
    try:
        server.push("lambda/python", "3.11", lambda_base())
        spec = BuildSpec(base=f"{server.host}/lambda/python:3.11", revision="bench",
                         pip=PipOptions(find_links=(str(wheelhouse),), no_index=True))
        built = run_build(spec, cache=BlobCache(tmp / "cache")).built
        rootfs = tmp / "rootfs"
        with tarfile.open(built.layer.path) as tar:
            tar.extractall(rootfs, filter="data")
        task = rootfs / "var" / "task"
        bare_task = tmp / "no-bytecode"
        shutil.copytree(task, bare_task, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

        lines = []
        for i in range(3):
            old = server.push(f"cold/app{i}", "1.0", f"cold {i} old").digest
            server.push(f"cold/app{i}", "1.0", f"cold {i} new")
            lines.append(f"    - image: {server.host}/cold/app{i}:1.0@{old}\n")
        catalog = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n" + "".join(lines)
        config = (f"catalogs:\n  - name: app\n    file: pod.yaml\n"
                  f"registries:\n  - host: '{server.host}'\n    url: {server.url}\n")
        probe = ("import json, time, resource\n"
                 "from tagsync.aws.handler import handler\n"
                 "r = handler({}, None)\nassert r['status'] == 'changed', r\n"
                 "done = time.monotonic(); u = resource.getrusage(resource.RUSAGE_SELF)\n"
                 f"print(json.dumps([done, (u.ru_utime + u.ru_stime) * 1000, {_HWM}]))")

        # The image's own environment (where its CA roots are), with /var/task where it lies here.
        image_env = dict(str(item).split("=", 1) for item in _json.loads(built.config)["config"]["Env"])
        tls_env = {k: v for k, v in image_env.items() if k.startswith("SSL_CERT_")}

        def roots_under(root: Path) -> dict[str, str]:
            return {k: v.replace("/var/task", str(root), 1) for k, v in tls_env.items()}

        def workspace(root: Path) -> tuple[Path, dict[str, str]]:
            """A fresh catalog and config (every digest still to change), and the environment
            of an interpreter importing from `root`."""
            work = Path(tempfile.mkdtemp(dir=tmp))
            (work / "pod.yaml").write_text(catalog)
            (work / "tagsync.yaml").write_text(config)
            return work, {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root),
                          "TAGSYNC_CONFIG": str(work / "tagsync.yaml"),
                          "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(work),
                          **roots_under(root)}

        def invoke(root: Path) -> tuple[float, float, float]:
            work, env = workspace(root)
            start = time.monotonic()
            out = subprocess.run([sys.executable, "-s", "-c", probe], env=env, capture_output=True,
                                 text=True, check=True, cwd=work)
            done, cpu, mb = _json.loads(out.stdout.strip().splitlines()[-1])
            return (done - start) * 1000, float(cpu), float(mb)

        def bare() -> tuple[float, float, float]:
            start = time.monotonic()
            code = ("import json, time, resource; u = resource.getrusage(resource.RUSAGE_SELF); "
                    f"print(json.dumps([time.monotonic(), (u.ru_utime + u.ru_stime) * 1000, {_HWM}]))")
            out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True,
                                 check=True)
            done, cpu, mb = _json.loads(out.stdout)
            return (done - start) * 1000, float(cpu), float(mb)

        def imports_by_package(root: Path) -> list[tuple[str, float]]:
            """Import self-times (`-X importtime`) of one invocation, summed per top package."""
            work, env = workspace(root)
            err = subprocess.run([sys.executable, "-s", "-X", "importtime", "-c", probe], env=env,
                                 capture_output=True, text=True, check=True, cwd=work).stderr
            sums: dict[str, float] = {}
            for line in err.splitlines():
                if line.startswith("import time:") and "|" in line and "self" not in line:
                    own, _total, name = line[len("import time:"):].split("|")
                    top = name.strip().split(".")[0]
                    sums[top] = sums.get(top, 0.0) + int(own) / 1000
            return sorted(sums.items(), key=lambda kv: -kv[1])

        def stack() -> float:
            """Spawn to return of an interpreter that only imports the libraries an invocation
            needs (asyncio, PyYAML, pydantic, aiohttp) from the same task root: the floor."""
            start = time.monotonic()
            code = ("import time, asyncio, yaml, aiohttp; from pydantic import BaseModel, Field; "
                    "print(time.monotonic())")
            out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True,
                                 check=True, env={"PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1",
                                                  **roots_under(task)})
            return (float(out.stdout) - start) * 1000

        runs = 7
        base = sorted(bare() for _ in range(runs))[runs // 2]
        floor = sorted(stack() for _ in range(runs))[runs // 2]
        without = sorted(invoke(bare_task) for _ in range(runs))[runs // 2]
        with_pyc = sorted(invoke(task) for _ in range(runs))[runs // 2]
        print(f"== Lambda cold path: `tagsync build`'s layer ({built.bytecode} .pyc files), one handler "
              f"invocation in a fresh interpreter, spawn to return (median of {runs})")
        print(f"   bare interpreter (import json)  {base[0]:7.1f} ms  cpu {base[1]:6.1f} ms  "
              f"{base[2]:5.1f} MB   baseline")
        print(f"   libraries alone (no tagsync)    {floor:7.1f} ms                       "
              f"{floor / base[0]:5.1f}x the bare start: asyncio, PyYAML, pydantic, aiohttp imported")
        for name, (ms, cpu, mb) in (("without bytecode", without), ("with bytecode", with_pyc)):
            print(f"   invocation {name:<21}{ms:7.1f} ms  cpu {cpu:6.1f} ms  {mb:5.1f} MB   "
                  f"{ms / base[0]:5.1f}x the bare start (target <= 3x), RSS target <= 60 MB")
        top = imports_by_package(task)
        stdlib = set(sys.stdlib_module_names)
        ours = sum(ms for name, ms in top if name == "tagsync")
        third = [(name, ms) for name, ms in top if name not in stdlib and name != "tagsync"]
        print(f"   where the imports go (one invocation with bytecode, -X importtime self times): "
              f"{sum(ms for _, ms in top):.0f} ms in all; tagsync {ours:.0f} ms, the standard "
              f"library {sum(ms for name, ms in top if name in stdlib):.0f} ms, "
              + ", ".join(f"{name} {ms:.0f} ms" for name, ms in third[:6]))
    finally:
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_corpus() -> None:
    """Recall and precision of `tagsync refs` on the real-file corpus (issue 14; target 100% / 100%)
    against its truth.json, and the time to find every reference in it."""
    sys.path.insert(0, str(ROOT))
    from tests.test_refs_corpus import MANIFESTS, in_scope, row_key, truth_keys

    from tagsync.find import rows, scan

    if not (MANIFESTS / "truth.json").exists():
        print("== corpus: skipped (../shared/corpus/manifests is absent)")
        return
    start = time.perf_counter()
    refs, _ = scan([str(MANIFESTS)])
    took = (time.perf_counter() - start) * 1000
    found = {row_key(r) for r in rows(refs) if in_scope(r)}
    truth = truth_keys()
    hit = len(found & truth)
    print(f"== corpus: {len(truth)} references in {len(list(MANIFESTS.iterdir())) - 4} real files: "
          f"recall {100 * hit / len(truth):.1f}%, precision {100 * hit / max(1, len(found)):.1f}% "
          f"(target 100% / 100%), found in {took:.0f} ms")


def bench_status() -> None:
    """`tagsync status` at a terminal (issue 31): 300 rows fitted to 120 columns by
    `status.render`, against the same rows in a rich Table (what it printed before), best of 5."""
    sys.path.insert(0, str(ROOT))
    from rich.console import Console
    from rich.table import Table
    from tests.test_status import many_rows

    from tagsync.status import COLUMNS, cells, render

    rows = many_rows()

    def ours() -> None:
        render(rows, 120)

    def rich_table() -> None:
        table = Table(*COLUMNS)
        for row in rows:
            table.add_row(*cells(row))
        Console(file=io.StringIO(), width=120).print(table)

    fast = best_of(5, ours)[0]
    slow = best_of(5, rich_table)[0]
    print(f"== status: 300 rows at 120 columns: {fast * 1000:.1f} ms fitted, {slow * 1000:.0f} ms "
          f"as a rich Table ({slow / max(fast, 1e-9):.0f}x)")


def bench_deploy() -> None:
    """AWS calls of a redeploy that changes nothing (issue 17): reads only, no write."""
    import collections
    import json

    import boto3
    import httpx
    from tests.servers.fixtures import _stop, free_port, wait_http

    from tagsync.aws.deploy import Deployer
    from tagsync.aws.spec import DeploySpec

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            # Lambda resolves the image's digest from ECR, as AWS does (deploy checks it)
                            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
                                 "MOTO_LAMBDA_STUB_ECR": "false"})
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "AWS_PROFILE")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="eu-west-1")
    os.environ.pop("AWS_PROFILE", None)
    try:
        wait_http(f"{url}/moto-api/", timeout=60)
        httpx.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}})
        ecr = boto3.client("ecr")
        ecr.create_repository(repositoryName="catalogs-images")
        ecr.put_image(repositoryName="catalogs-images", imageTag="a" * 40, imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [],
             "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": "sha256:" + "a" * 64, "size": 2}}))
        spec = DeploySpec("acme/catalogs", "main", "a" * 40, secret_refs=("aws-ssm:/tagsync/token",),
                          image=f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/catalogs-images:{'a' * 40}")
        Deployer(spec, sleep=lambda s: None).deploy()
        calls: collections.Counter[str] = collections.Counter()
        session = boto3.session.Session()
        session.events.register("before-call", lambda model, **_: calls.update([model.name]))
        start = time.perf_counter()
        steps = Deployer(spec, session=session).deploy()
        elapsed = time.perf_counter() - start
    finally:
        _stop(proc)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    # SimulatePrincipalPolicy is the permissions preflight: a read (moto does not implement it)
    writes = [op for op in calls if not op.startswith(("Get", "List", "Describe", "Simulate"))]
    print("== deploy: a redeploy of the same commit and settings (moto)")
    print(f"   AWS calls {sum(calls.values())}, writes {len(writes)}, steps changed "
          f"{sum(s.action != 'none' for s in steps)}, {elapsed * 1000:.0f} ms against moto")
    print("   " + ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))

def bench_verify_run() -> None:
    """A whole run with and without `verify` (issue 19): N key-signed images, every digest
    changed, so every one is verified before it is written (BENCH_VERIFY_RUN_IMAGES, 500)."""

    from tests.servers.fixtures import _stop
    from tests.servers.signed import SIGNATURES

    from tagsync.config import load_config
    from tagsync.run import run

    if not shutil.which("docker-registry") or not (SIGNATURES / "README.md").exists():
        print("== verify in a run: skipped (docker-registry or ../shared/fixtures/signatures missing)")
        return
    images = int(os.environ.get("BENCH_VERIFY_RUN_IMAGES", 500))
    tmp, server, reg, key = _signing_registry("tagsync-bench-verify-run-")
    try:
        lines = []
        for i in range(images):
            _key_signed(reg, key, f"vrun/app{i}", i)
            lines.append(f"    - image: {server.host}/vrun/app{i}:latest@sha256:{'0' * 64}\n")
        catalog = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n" + "".join(lines)
        walls = {}
        variants = (("without verify", ""), ("with verify (key)", f"    verify: {{key: '{tmp}/k.pub'}}\n"))
        for name, verify in variants:
            work = Path(tempfile.mkdtemp(dir=tmp))
            (work / "pod.yaml").write_text(catalog)
            (work / "tagsync.yaml").write_text(
                f"catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n{verify}"
                f"registries:\n  - host: '{server.host}'\n    url: {server.url}\n")
            start = time.perf_counter()
            summary = run(load_config(work / "tagsync.yaml"))
            walls[name] = time.perf_counter() - start
            assert len(summary.changes) == images and not summary.failures, summary.failures[:1]
        print(f"== verify in a run: {images} images, every digest changed and written")
        base = walls["without verify"]
        for name, wall in walls.items():
            print(f"   {name:<22}{wall * 1000:9.0f} ms   {wall / base:5.2f}x")
    finally:
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)



def bench_patterns() -> None:
    """A regex policy ranking 10,000 tags through the bounded engine (`tagsync.patterns`: `regex`
    with a CPU-time limit, each match measured against the run's budget) against the same policy
    matching with Python's `re`, unbounded (as before the bound); and a pattern written to
    backtrack, meeting a tag made for it: the CPU time to fail, against the per-match limit."""
    import re

    from tagsync import patterns, policy
    from tagsync.errors import PatternTimeoutError

    tags = [f"{a}.{b}-ubuntu" for a in range(100) for b in range(100)]

    def rank() -> str | None:
        with patterns.spending(patterns.Budget()):  # a fresh run: nothing remembered
            return policy.Policy(policy.Kind.regex, include=r"(\d+)\.(\d+)-ubuntu",
                                 exclude="rc").best(tags)

    ours, best = best_of(5, rank)
    bounded = policy.compile_pattern
    policy.compile_pattern = lambda text, key: re.compile(text)  # type: ignore[assignment]
    try:
        theirs, same = best_of(5, rank)
    finally:
        policy.compile_pattern = bounded
    start = time.process_time()
    try:
        with patterns.spending(patterns.Budget()):
            policy.Policy(policy.Kind.regex, include=r"^(a|a)*(\d+)$").best(["a" * 60 + "-"])
        failed = False
    except PatternTimeoutError:
        failed = True
    stall = time.process_time() - start
    print(f"patterns: a regex policy ranking {len(tags):,} tags {ours * 1000:.0f} ms bounded vs "
          f"{theirs * 1000:.0f} ms with `re` ({ours / theirs:.1f}x; same choice: "
          f"{'yes' if best == same else 'NO'}); a backtracking pattern fails: "
          f"{'yes' if failed else 'NO'}, after {stall:.2f} s of CPU "
          f"({stall / patterns.MATCH_SECONDS:.2f}x the per-match limit)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--edit-worker":
        edit_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        only = os.environ.get("BENCH_ONLY")
        for bench in (bench_edit, bench_scan, bench_scale, bench_publish, bench_lambda, bench_build,
                      bench_cold, bench_verify, bench_verify_run, bench_hostile, bench_liar,
                      bench_corpus, bench_status, bench_deploy, bench_patterns,
                      __import__("http_stacks").bench_http_stacks,
                      __import__("whole_run").bench_whole_run, __import__("org").bench_org,
                      __import__("yaml_suite").bench_yaml_suite):
            if not only or bench.__name__.removeprefix("bench_") in only.split(","):
                bench()
