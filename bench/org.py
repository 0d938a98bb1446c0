"""`make bench` (org): one organisation run against one run per repository.

200 repositories on the GitHub contract server, each with a `tagsync.yaml` and a manifest of 5
pinned references, over 100 distinct images (each named by 10 repositories), every image
changed; the real registry behind the latency proxy at 50 ms a request. Both sides are dry runs
(the same GitHub reads, no writes): what differs is how often the registries are asked. Printed:
registry requests and wall time of each, and their ratios.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers:
{containers}"""
CONFIG = "catalogs:\n  - name: deploy\n    files: [\"deploy/*.yaml\"]\n"
OLD = "sha256:" + "0" * 64


def bench_org() -> None:
    import httpx
    import latency_proxy
    from tests.servers.fixtures import _start_registry, _stop, serve_wsgi
    from tests.servers.github import serve
    from tests.servers.images import push_image

    from tagsync.image.tiny import build_image
    from tagsync.org.config import parse_org_config, repo_config
    from tagsync.org.run import org_run
    from tagsync.run import run

    if not shutil.which("docker-registry"):
        print("== organisation run: skipped (docker-registry missing; `make deps`)")
        return
    repos, per_repo, images = (int(os.environ.get("BENCH_ORG_REPOS", 200)), 5,
                               int(os.environ.get("BENCH_ORG_IMAGES", 100)))
    delay_ms = 50
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-org-"))
    server = _start_registry(tmp)
    proxy = None
    gen = serve(serve_wsgi)
    github = next(gen)
    try:
        def push(i: int) -> None:
            with httpx.Client(timeout=60) as c:
                push_image(c, server.url, f"org/img-{i}", "1.0", build_image(f"org {i}"))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(push, range(images)))
        proxy, port = latency_proxy.start(server.url, delay_ms)
        host = f"127.0.0.1:{port}"
        token = "ghp_benchtoken0123456789abcdefABCDEF"
        github.tokens[token] = "write"
        os.environ["BENCH_ORG_TOKEN"] = token
        for r in range(repos):
            containers = "".join(
                f"    - name: c{k}\n      image: {host}/org/img-{(r * per_repo + k) % images}:1.0@{OLD}\n"
                for k in range(per_repo))
            github.create_repo(f"acme/svc-{r:04d}", {
                "tagsync.yaml": CONFIG.encode(),
                "deploy/pod.yaml": MANIFEST.format(containers=containers).encode()})
        org = parse_org_config(
            f"organisation: acme\ngithub: {{api_url: '{github.url}', token: env:BENCH_ORG_TOKEN}}\n"
            f"registries:\n  - host: '{host}'\n    url: http://{host}\n"
            "run: {concurrency: 16}\n", "org.yaml", tmp)

        def registry_requests(summary: dict[str, Any]) -> int:
            return int(summary.get("requests", {}).get("requests", 0))

        t0 = time.perf_counter()
        together = org_run(org, dry_run=True)
        org_wall = time.perf_counter() - t0
        org_requests = int(together.requests.get("requests", 0)) + sum(
            registry_requests(r.summary or {}) for r in together.repositories)
        changed = sum(r.status == "changed" for r in together.repositories)

        t0 = time.perf_counter()
        single_requests = 0
        for r in range(repos):
            name = f"acme/svc-{r:04d}"
            config = repo_config(org, name, "main", CONFIG, f"{name}:tagsync.yaml")
            single_requests += registry_requests(run(config, dry_run=True).to_dict())
        single_wall = time.perf_counter() - t0

        print(f"== organisation run: {repos} repositories x {per_repo} references over {images} "
              f"images, every image changed, registry {delay_ms} ms away (dry runs)")
        print(f"   one org run               {org_wall:8.1f} s    registry requests {org_requests:6d}"
              f"   ({changed} repositories with changes)")
        print(f"   {repos} single runs          {single_wall:8.1f} s    registry requests "
              f"{single_requests:6d}")
        print(f"   ratio (single / org)      {single_wall / org_wall:8.1f}x wall, "
              f"{single_requests / max(org_requests, 1):.1f}x requests; the org run asks "
              f"{org_requests / images:.2f} requests per distinct image")
        print("   per-repository registry requests left in the org run: "
              + json.dumps(sum(registry_requests(r.summary or {}) for r in together.repositories)))
    finally:
        next(gen, None)
        if proxy is not None:
            proxy.terminate()
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    bench_org()
