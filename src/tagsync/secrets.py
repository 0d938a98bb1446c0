"""Secrets are named in the config, never written in it.

A reference is a string with a scheme, so the same field reads a token on a laptop, in CI and in
a Lambda without code changes:

- `env:NAME`                 an environment variable;
- `file:PATH`                a file (trailing newline stripped; relative to the config);
- `aws-secretsmanager:ID`    an AWS Secrets Manager secret (`ID#key` picks a key of a JSON secret);
- `aws-ssm:NAME`             an SSM Parameter Store parameter, decrypted (SecureString).

boto3 is imported only when an AWS reference is resolved, so the CLI stays light without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsync.errors import ConfigError

log = logging.getLogger(__name__)

SCHEMES = ("env", "file", "aws-secretsmanager", "aws-ssm")
_REF = re.compile(r"^(?P<scheme>[a-z-]+):(?P<name>.+)$")


@dataclass(frozen=True)
class SecretRef:
    scheme: str
    name: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        m = _REF.match(text)
        if m is None or m["scheme"] not in SCHEMES:
            # never quoted back: a value here is most likely the secret itself, written where
            # its reference belongs, and the message goes to CI logs
            raise ValueError(
                "the value is not a secret reference (it is not repeated here: it may be the "
                "secret itself); write one of "
                + ", ".join(f"{s}:…" for s in SCHEMES)
                + " (secrets are never written in the config itself)"
            )
        return cls(m["scheme"], m["name"])

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"


def validate_ref(value: str | None) -> str | None:
    """A pydantic field validator: keep the string, fail early on a malformed reference."""
    if value is not None:
        SecretRef.parse(value)
    return value


def resolve(ref: str | SecretRef | None, owner: str, base_dir: Path | None = None) -> str | None:
    """The secret's value, remembered for redaction (`http_policy.remember_secret`): it never
    shows in a message, a log line or `--json`, even quoted back by a server. Errors name the
    reference (never the value) and who needed it."""
    if ref is None:
        return None
    from tagsync.http_policy import remember_secret

    value = _value(SecretRef.parse(ref) if isinstance(ref, str) else ref, owner, base_dir)
    remember_secret(value)
    return value


def _value(r: SecretRef, owner: str, base_dir: Path | None) -> str:
    if r.scheme == "env":
        value = os.environ.get(r.name)
        if value is None:
            raise ConfigError(f"{owner}: environment variable {r.name} is not set")
        return value
    if r.scheme == "file":
        path = Path(r.name).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{owner}: cannot read secret file: {exc.strerror}", file=str(path)) from None
    if r.scheme == "aws-secretsmanager":
        return _secretsmanager(r.name, owner)
    return _ssm(r.name, owner)


def _client(service: str) -> Any:
    try:
        import boto3
    except ImportError:  # pragma: no cover - boto3 is in the Lambda image and the aws extra
        raise ConfigError(f"reading an AWS {service} secret needs boto3: "
                          "pip install 'tagsync[aws]'") from None
    return boto3.client(service)


def _aws_error(exc: Exception, owner: str, what: str) -> ConfigError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    return ConfigError(f"{owner}: cannot read {what}: {code}")


def _secretsmanager(name: str, owner: str) -> str:
    secret_id, _, key = name.partition("#")
    try:
        answer = _client("secretsmanager").get_secret_value(SecretId=secret_id)
    except Exception as exc:  # botocore's errors are generated classes; the code says enough
        raise _aws_error(exc, owner, f"secret {secret_id}") from None
    value = answer.get("SecretString")
    if value is None:
        value = answer["SecretBinary"].decode()
    if not key:
        return str(value)
    try:
        return str(json.loads(value)[key])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{owner}: secret {secret_id} is not a JSON object with key {key!r}") from None


def _ssm(name: str, owner: str) -> str:
    try:
        answer = _client("ssm").get_parameter(Name=name, WithDecryption=True)
    except Exception as exc:
        raise _aws_error(exc, owner, f"parameter {name}") from None
    return str(answer["Parameter"]["Value"])
