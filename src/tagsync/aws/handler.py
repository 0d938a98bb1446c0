"""The Lambda entry point: `tagsync.aws.handler.handler`, fired by an EventBridge schedule.

The cold path stays light: this module imports only the standard library; the pipeline (httpx,
pydantic, dulwich, boto3) is imported on the first invocation. The config comes from
`TAGSYNC_CONFIG`: a path in the image (default `/var/task/tagsync.yaml`), `s3://bucket/key`, or
`ssm:/parameter/name`. Secrets stay references inside the config (`aws-secretsmanager:…`,
`aws-ssm:…`), read with the function's role. Variables `deploy --secret-env` set (named in
`TAGSYNC_SECRET_ENV`) hold such references too: they are resolved once per process, before the
config is read, so `token_env: TAGSYNC_GIT_TOKEN` finds the token.

The run stops asking registries before the function's deadline, keeping `TAGSYNC_RESERVE_SECONDS`
(default: a quarter of the time left, at most 30 s) to publish what it has; the summary lists the
images left for the next run. Logs are one JSON object per line, for CloudWatch Logs Insights.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, Protocol

DEFAULT_CONFIG = "/var/task/tagsync.yaml"
log = logging.getLogger("tagsync.aws.handler")


class LambdaContext(Protocol):
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        ...


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the request id ties a run's lines together."""

    request_id: str | None = None

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "time": round(record.created, 3),
        }
        if self.request_id:
            out["request_id"] = self.request_id
        for key in ("event_kind", "summary"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            out["error_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


_FORMATTER = JsonFormatter()


def _setup_logging() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_FORMATTER)
    from tagsync.http_policy import RedactingFilter

    handler.addFilter(RedactingFilter())  # a server's words quoting a secret: never logged
    root.handlers = [handler]  # the runtime's default handler prints plain text
    root.setLevel(os.environ.get("TAGSYNC_LOG_LEVEL", "INFO").upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    logging.getLogger("botocore").setLevel(logging.WARNING)


def event_kind(event: Any) -> str:
    """EventBridge rule, EventBridge Scheduler (our input), or a manual test invocation."""
    if isinstance(event, dict):
        if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
            return "eventbridge-rule"
        if event.get("source") == "tagsync.scheduler":
            return "eventbridge-scheduler"
    return "manual"


def read_ref(ref: str, variable: str) -> str | None:
    """The text a config reference names in SSM (`ssm:/name`) or S3 (`s3://bucket/key`); None
    for a path in the image, which its loader reads (with its size limit)."""
    from tagsync.errors import ConfigError
    from tagsync.secrets import resolve

    if ref.startswith("ssm:"):
        text = resolve("aws-ssm:" + ref.removeprefix("ssm:"), variable)
        assert text is not None
        return text
    if ref.startswith("s3://"):
        import boto3

        bucket, _, key = ref[5:].partition("/")
        try:
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # botocore's errors are generated; the code says enough
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise ConfigError(f"cannot read the config from {ref}: {code}") from None
        try:
            return str(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError("config is not UTF-8", file=ref) from None
    return None


def load(ref: str) -> Any:
    from pathlib import Path

    from tagsync.config import load_config, parse_config

    text = read_ref(ref, "TAGSYNC_CONFIG")
    return load_config(Path(ref)) if text is None else parse_config(text, ref, Path("/tmp"))


_resolved_env = False


def resolve_secret_environment() -> list[str]:
    """Replace the references `deploy --secret-env` set with their values, once per process.

    `TAGSYNC_SECRET_ENV` names the variables; each holds an `aws-secretsmanager:`/`aws-ssm:`
    reference the function's role may read. A warm start keeps the values it resolved.
    """
    global _resolved_env
    if _resolved_env:
        return []
    from tagsync.secrets import resolve

    names = [n for n in os.environ.get("TAGSYNC_SECRET_ENV", "").split(",") if n]
    for name in names:
        ref = os.environ.get(name)
        if ref:
            value = resolve(ref, f"environment variable {name}")
            if value is not None:
                os.environ[name] = value
    _resolved_env = True
    return names


def deadline_for(context: LambdaContext | None, now: float) -> float | None:
    if context is None:
        return None
    left = context.get_remaining_time_in_millis() / 1000.0
    reserve_env = os.environ.get("TAGSYNC_RESERVE_SECONDS")
    reserve = float(reserve_env) if reserve_env else min(30.0, left / 4)
    return now + max(0.0, left - reserve)


def handler(event: Any, context: LambdaContext | None) -> dict[str, Any]:
    """Run once; return the summary. Errors are logged as JSON and re-raised (a failed invocation)."""
    now = time.monotonic()
    _setup_logging()
    _FORMATTER.request_id = getattr(context, "aws_request_id", None)
    if isinstance(event, dict) and str(event.get("tagsync", "")).startswith("org-"):
        from tagsync.aws.org_handler import handle  # a step of the organisation state machine

        return handle(event, deadline_for(context, now))
    kind = event_kind(event)
    dry_run = bool(event.get("dry_run")) if isinstance(event, dict) else False
    log.info("tagsync run starting", extra={"event_kind": kind})

    from tagsync.errors import TagsyncError
    from tagsync.run import run

    try:
        resolved = resolve_secret_environment()
        if resolved:
            log.info("secret environment resolved: %s", ", ".join(resolved))
        config = load(os.environ.get("TAGSYNC_CONFIG", DEFAULT_CONFIG))
        summary = run(config, dry_run=dry_run, deadline=deadline_for(context, now))
    except TagsyncError as exc:
        log.error("tagsync run failed: %s", exc, extra={"event_kind": kind})
        raise
    result = summary.to_dict()
    result["event_kind"] = kind
    if summary.dry_run:
        result["diff"] = summary.diff
    log.info("tagsync run finished: %s", result["status"],
             extra={"event_kind": kind, "summary": {k: result[k] for k in (
                 "status", "commit", "pushed", "url", "pull_request", "deferred", "attempts")}
                 | {"changes": len(summary.changes), "failures": len(summary.failures)}})
    return result
