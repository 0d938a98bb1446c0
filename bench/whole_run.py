"""The whole run a user waits for (issue 30), not the scan alone.

`tagsync run --json` (in this process, through the CLI's own entry point) on a generated
repository of 150 images x 2 references, every image changed, with its registry behind
`bench/latency_proxy.py` at 50 ms a request; a dry run and a real commit pushed to the local
git server (`git http-backend`, not delayed). The images carry OCI labels naming a GitHub source
and revision, so each change is explained with a compare view: the new and the old image's
manifest and config are read. The latency-bound limit is the run's own: `ceil(registry requests
/ lanes) x 50 ms`, lanes being the smaller of `run.concurrency` and the registry's
`max_concurrency` (both 16 here). Target: <= 1.3x.

`BENCH_ONLY=whole_run make bench`; BENCH_WHOLE_IMAGES (150), BENCH_WHOLE_RUNS (3).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DELAY_MS = 50
LANES = 16
SRC = "org.opencontainers.image.source"
REV = "org.opencontainers.image.revision"


def _pods(host: str, digests: list[str], env: str) -> bytes:
    docs = [f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: app{i}-{env}\nspec:\n  containers:\n"
            f"    - name: app\n      image: {host}/bench/app{i}:1.0@{digest}\n"
            for i, digest in enumerate(digests)]
    return "---\n".join(docs).encode()


def _run_cli(config: Path, *flags: str) -> tuple[float, dict[str, Any]]:
    from tagsync.cli import main

    out = io.StringIO()
    start, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(out):
        code = main(["run", "-c", str(config), "--json", "--quiet", *flags])
    wall = time.perf_counter() - start
    assert code == 0, out.getvalue()[-2000:]
    summary = json.loads(out.getvalue())
    summary["cpu"] = time.process_time() - cpu
    return wall, summary


def bench_whole_run() -> None:
    import httpx
    import latency_proxy
    from tests.servers.fixtures import _start_registry, _stop, start_git_server
    from tests.servers.images import push_image

    from tagsync.image.tiny import build_image

    if not shutil.which("docker-registry") or not shutil.which("git"):
        print("== whole run: skipped (docker-registry or git missing; `make deps`)")
        return
    images = int(os.environ.get("BENCH_WHOLE_IMAGES", 150))
    runs = int(os.environ.get("BENCH_WHOLE_RUNS", 3))
    tmp = Path(tempfile.mkdtemp(prefix="tagsync-whole-"))
    server = _start_registry(tmp)
    git = start_git_server(tmp)
    proxy = None
    try:
        def push(i: int) -> str:
            with httpx.Client(timeout=60) as c:
                labels = {SRC: "https://github.com/acme/app", REV: f"{i:04d}aaaa"}
                old = build_image(f"whole {i} old", labels=labels, created="2026-01-01T00:00:00Z")
                push_image(c, server.url, f"bench/app{i}", "1.0", old)
                new = build_image(f"whole {i} new", labels={**labels, REV: f"{i:04d}bbbb"},
                                  created="2026-02-01T00:00:00Z")
                push_image(c, server.url, f"bench/app{i}", "1.0", new)
                return old.digest

        with ThreadPoolExecutor(8) as pool:
            olds = list(pool.map(push, range(images)))
        proxy, port = latency_proxy.start(server.url, DELAY_MS)
        host, url = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        files = {"staging/apps.yaml": _pods(host, olds, "staging"),
                 "production/apps.yaml": _pods(host, olds, "production")}
        work = tmp / "work"
        work.mkdir()
        config = work / "tagsync.yaml"
        os.environ["BENCH_GIT_TOKEN"] = git.token
        def settings(registry_url: str) -> str:
            return ("catalogs:\n  - name: apps\n    files: ['*/apps.yaml']\n"
                    f"registries:\n  - host: '{host}'\n    url: {registry_url}\n"
                    f"    max_concurrency: {LANES}\n"
                    f"git:\n  repo: {git.url}\n  branch: main\n  token_env: BENCH_GIT_TOKEN\n"
                    f"run:\n  concurrency: {LANES}\n")

        config.write_text(settings(url))
        direct = work / "direct.yaml"  # the same run, the registry reached without the proxy
        direct.write_text(settings(server.url))
        git.commit_directly(files, "the images as deployed")

        print(f"== whole run: `tagsync run` on {images} images x 2 references, every image "
              f"changed, registry {DELAY_MS} ms away (proxy), {LANES} lanes; best and median "
              f"of {runs}")
        print("   variant              wall (best)   latency-bound limit   ratio best / median"
              "   registry requests   per changed image   manifest GETs (Hub pulls)")
        for name, flags in (("dry run", ("--dry-run",)), ("commit (git push)", ())):
            walls = []
            for _ in range(runs):
                wall, summary = _run_cli(config, *flags)
                walls.append(wall)
                changed = {c["image"] for c in summary["changes"]}
                assert len(summary["changes"]) == 2 * images and len(changed) == images
                assert summary["dry_run"] or summary["pushed"]
                if not flags:  # the next run starts from the old digests again
                    git.commit_directly(files, "rolled back")
            requests = summary["requests"]["requests"] + summary["requests"]["token_requests"]
            limit = math.ceil(requests / LANES) * DELAY_MS / 1000
            best, median = min(walls), statistics.median(walls)
            print(f"   {name:<19} {best * 1000:8.0f} ms   {limit * 1000:9.0f} ms"
                  f"            {best / limit:5.2f}x / {median / limit:4.2f}x"
                  f"   {requests:>13}   {requests / len(changed):13.2f}"
                  f"       {summary['requests']['manifest_gets']}   (target <= 1.3x)", flush=True)
        base = min(_run_cli(direct, "--dry-run")[0] for _ in range(runs))
        print(f"   dry run, no proxy    {base * 1000:8.0f} ms   = registry, git and client time "
              f"on top of the added delay; client CPU of the last run {summary['cpu'] * 1000:.0f} ms "
              f"({summary['cpu'] * 1000 / requests:.2f} ms a request, everything included)")
        by_kind = summary["requests"]["by_kind"]
        print("   requests by kind (last run): "
              + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        git.wsgi.stop()
        _stop(server.process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    bench_whole_run()
