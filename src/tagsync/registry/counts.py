"""What a run asked of each registry, in the shape `--json` reports it: totals, by kind
(`manifest HEAD`, `manifest GET`, `blob GET`, `tags GET`, `token GET`…), by host, and the
requests Docker Hub counts as pulls (manifest GETs; HEADs and blob GETs it does not)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from tagsync.reference import DOCKER_HUB
from tagsync.registry import Source, stats_of


def requests_by_host(sources: dict[str, Source]) -> dict[str, dict[str, int]]:
    """What each registry was asked, by kind (`manifest HEAD`, `manifest GET`, `blob GET`,
    `tags GET`, `token GET`…), with `pulls`: the manifest GETs, which Docker Hub counts against
    its pull limit (HEADs and blob GETs it does not)."""
    from tagsync.registry.oci import OciRegistry  # loaded with the first source, not here

    out: dict[str, dict[str, int]] = {}
    for host, s in sources.items():
        if isinstance(s, OciRegistry):
            kinds = dict(sorted(s.stats.kinds.items()))
            kinds["pulls"] = s.stats.manifest_gets
            out[host] = kinds
        elif isinstance(getattr(s, "requests", None), int):  # ECR's API: calls, not kinds
            out[host] = {"requests": s.requests}  # type: ignore[attr-defined]
    return {h: k for h, k in out.items() if any(k.values())}


def request_counts(sources: dict[str, Any], apis: Mapping[str, int] | None = None
                   ) -> dict[str, Any]:
    """What a survey asked, for `--json`: totals (`requests`, `heads`, `manifest_gets`,
    `token_requests`, `retries`), `by_kind` and `by_host` (registries, and Docker Hub's API as
    `<host> api`), and `docker_hub_pulls`: the manifest GETs sent to docker.io, each a pull."""
    stats = stats_of(sources)
    out: dict[str, Any] = {k: v for k, v in asdict(stats).items() if v is not None}
    out["by_kind"] = out.pop("kinds")
    out["by_host"] = requests_by_host(sources)
    for host, n in (apis or {}).items():
        out["requests"] += n
        out["by_host"][f"{host} api"] = {"requests": n}
    out["docker_hub_pulls"] = out["by_host"].get(DOCKER_HUB, {}).get("pulls", 0)
    return out


def add_counts(total: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Request counts of a re-plan added to the first pass's (numbers add up, nested counts
    per key, anything else is the latest)."""
    out = dict(total)
    for key, value in more.items():
        if isinstance(value, bool) or not isinstance(value, (int, dict)):
            if value is not None:
                out[key] = value
        elif isinstance(value, dict):
            out[key] = add_counts(out.get(key) or {}, value)
        else:
            out[key] = out.get(key, 0) + value
    return out
