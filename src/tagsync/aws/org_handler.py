"""The three steps of the organisation state machine (`tagsync.org.statemachine`), run by the
same function as a scheduled single-repository run: `handler.handler` hands every event whose
`tagsync` key starts with `org-` here.

- `org-discover`: select the repositories, read their configs and catalogs, ask the registries
  once; store the answers, the repositories to run (the Map's items: each one's name, default
  branch and config path, `org.items`) and what was skipped or failed already, under
  `s3://<bucket>/<execution>/`.
- `org-repo`: one repository, its Map item admitted by the org config (no listing of the
  organisation), planned from the stored answers and published; its result (never an exception
  for the repository's own trouble, which is its result) is the child's output.
- `org-summary`: the Map's results (read back through `ResultWriter`'s manifest) and the
  selection's, one row per repository (a repository handed to the Map without a recorded
  result is failed); `status: partial` when any failed.

What Discover stores is checked by its reader against the SHA-256 Discover handed on in the
execution's state: whoever can write the bucket cannot change the answers, the list of
repositories or the selection's rows under the run's feet.

The organisation's config comes from `TAGSYNC_ORG_CONFIG` (a path in the image, `s3://…` or
`ssm:/…`), as `TAGSYNC_CONFIG` does for a single repository.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Any

log = logging.getLogger("tagsync.aws.org")

DEFAULT_ORG_CONFIG = "/var/task/org.yaml"
MAX_STORED = 256 << 20  # a stored file read whole into the function's memory: answers, results
_EXECUTION = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # Step Functions execution names, as keys


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def _put(bucket: str, key: str, data: Any) -> str:
    """Store `data` as JSON; its SHA-256 (hex), for the reader to check it is what was stored."""
    body = json.dumps(data).encode()
    _s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return hashlib.sha256(body).hexdigest()


def _get(bucket: str, key: str, sha256: str | None = None) -> Any:
    """A stored JSON file; with `sha256`, only if its bytes are the ones stored (the digest
    travels in the execution's state, which whoever can write the bucket cannot change)."""
    from tagsync.errors import ConfigError

    try:
        found = _s3().get_object(Bucket=bucket, Key=key)
        if int(found.get("ContentLength") or 0) > MAX_STORED:
            raise ConfigError(f"s3://{bucket}/{key} is over {MAX_STORED} bytes; not read")
        body = found["Body"].read()
        if sha256 is not None and hashlib.sha256(body).hexdigest() != sha256:
            raise ConfigError(f"s3://{bucket}/{key} changed since it was stored (its SHA-256 is "
                              "not the one the execution carries); not read")
        return json.loads(body)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"s3://{bucket}/{key} is not JSON") from None
    except Exception as exc:  # botocore's errors are generated classes; the code says enough
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise ConfigError(f"cannot read s3://{bucket}/{key}: {code}") from None


def load_org(ref: str) -> Any:
    """The organisation's config from the image, S3 or SSM (as the single-repository one)."""
    from pathlib import Path

    from tagsync.aws.handler import read_ref
    from tagsync.org.config import load_org_config, parse_org_config

    text = read_ref(ref, "TAGSYNC_ORG_CONFIG")
    return load_org_config(Path(ref)) if text is None else parse_org_config(text, ref, Path("/tmp"))


def handle(event: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
    """One step; the event says which (`tagsync`: org-discover, org-repo, org-summary)."""
    from tagsync.errors import ConfigError

    kind = event.get("tagsync")
    bucket = event.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise ConfigError(f"{kind}: the event names no `bucket`")
    if kind == "org-discover":
        return discover(event, bucket, deadline)
    if kind == "org-repo":
        return repository(event, bucket, deadline)
    if kind == "org-summary":
        return summary(event, bucket)
    raise ConfigError(f"unknown organisation step {kind!r} (org-discover, org-repo, org-summary)")


def discover(event: dict[str, Any], bucket: str, deadline: float | None = None) -> dict[str, Any]:
    from tagsync.errors import ConfigError
    from tagsync.org import answers
    from tagsync.org.run import org_run

    execution = str(event.get("execution", ""))
    if not _EXECUTION.fullmatch(execution):
        raise ConfigError("org-discover: `execution` must be a Step Functions execution name")
    org = load_org(os.environ.get("TAGSYNC_ORG_CONFIG", DEFAULT_ORG_CONFIG))
    result = org_run(org, answers_only=True, deadline=deadline)
    keys = {k: f"{execution}/{k}.json" for k in ("answers", "repositories", "selection")}
    digests = {
        "answers_sha256": _put(bucket, keys["answers"], answers.dump(result.known)),
        "repositories_sha256": _put(bucket, keys["repositories"], result.items),
        "selection_sha256": _put(bucket, keys["selection"], [
            _row(r.__dict__) for r in result.repositories if r.status != "planned"])}
    planned = len(result.items)
    log.info("org-discover: %d repositories to run, %d registry requests", planned,
             result.requests.get("requests", 0))
    return {"bucket": bucket, **keys, **digests, "results": f"{execution}/results",
            "planned": planned, "requests": result.requests}


def _digest(event: dict[str, Any], key: str) -> str | None:
    """A stored file's SHA-256 as the execution carries it; absent only from a state machine
    deployed before it was (then the file is read unchecked)."""
    from tagsync.errors import ConfigError

    digest = event.get(key)
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise ConfigError(f"{event.get('tagsync')}: `{key}` is a SHA-256, in hex")
    return digest


def repository(event: dict[str, Any], bucket: str, deadline: float | None = None
               ) -> dict[str, Any]:
    from tagsync.errors import ConfigError
    from tagsync.org import answers
    from tagsync.org.run import org_run

    repo, key = event.get("repo"), event.get("answers")
    if not isinstance(repo, str) or not isinstance(key, str):
        raise ConfigError("org-repo: the event needs `repo` (owner/name) and `answers` (a key)")
    org = load_org(os.environ.get("TAGSYNC_ORG_CONFIG", DEFAULT_ORG_CONFIG))
    known = answers.load(_get(bucket, key, _digest(event, "answers_sha256")), f"s3://{bucket}/{key}")
    # the item as Discover wrote it (name, default branch, config path): no listing here; an
    # item that is not one (tampered with, or an older tagsync's) is that repository's failure
    item = event.get("item", {"repo": repo})
    result = org_run(org, items=[item], known=known, dry_run=bool(event.get("dry_run")),
                     deadline=deadline)
    rows = [_row(r.__dict__) for r in result.repositories]
    if not rows:  # cannot happen (an item is always a row); never nothing
        return {"repo": repo, "status": "failed", "reason": "the child produced no result"}
    return rows[0]


def summary(event: dict[str, Any], bucket: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    selection = event.get("selection")
    if isinstance(selection, str):
        rows += [_row(r) for r in _get(bucket, selection, _digest(event, "selection_sha256"))
                 if isinstance(r, dict)]
    written = event.get("written")
    details = written.get("ResultWriterDetails") if isinstance(written, dict) else None
    if isinstance(details, dict) and isinstance(details.get("Key"), str):
        manifest = _get(str(details.get("Bucket") or bucket), details["Key"])
        files = manifest.get("ResultFiles", {}) if isinstance(manifest, dict) else {}
        for status, entries in files.items() if isinstance(files, dict) else ():
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, dict) and isinstance(entry.get("Key"), str):
                    rows += [_child(status, c) for c in _get(bucket, entry["Key"])
                             if isinstance(c, dict)]
    planned = event.get("repositories")
    if isinstance(planned, str):  # every repository Discover handed the Map has its row
        have = {r["repo"] for r in rows}
        rows += [_row({"repo": r.get("repo"), "status": "failed",
                       "reason": "no result was recorded for this repository's child"})
                 for r in _get(bucket, planned, _digest(event, "repositories_sha256"))
                 if isinstance(r, dict) and str(r.get("repo")) not in have]
    rows.sort(key=lambda r: str(r.get("repo", "")).lower())
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    partial = any(r["status"] in ("failed", "partial") for r in rows)
    out: dict[str, Any] = {"status": "partial" if partial else "ok", "counts": counts,
                           "repositories": rows}
    org = load_org(os.environ.get("TAGSYNC_ORG_CONFIG", DEFAULT_ORG_CONFIG))
    if org.dashboard is not None:
        from tagsync.org.run import org_api, update_dashboard

        out["dashboard"] = update_dashboard(org, org_api(org), rows)
    return out


def _row(r: dict[str, Any]) -> dict[str, Any]:
    """What a summary keeps of one repository: small enough for thousands in one state."""
    return {"repo": str(r.get("repo", "?")), "status": str(r.get("status", "failed")),
            "reason": str(r.get("reason", ""))[:500]}


def _child(status: str, execution: dict[str, Any]) -> dict[str, Any]:
    """One child execution as ResultWriter wrote it: its output, or why it failed."""
    def parsed(key: str) -> dict[str, Any]:
        try:
            value = json.loads(execution.get(key) or "{}")
        except (TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    if status == "SUCCEEDED" and parsed("Output"):
        return _row(parsed("Output"))
    repo = parsed("Input").get("repo", "?")
    why = execution.get("Cause") or execution.get("Error") or f"child execution {status.lower()}"
    return _row({"repo": repo, "status": "failed", "reason": str(why)})
