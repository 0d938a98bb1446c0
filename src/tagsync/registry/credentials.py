"""Registry credentials: Docker's `config.json` (`auths`), as `docker login` leaves them, and
ECR's token for pushing.

Only inline `auth` (base64 `user:password`) and `identitytoken` entries are read; credential
helpers (`credsStore`, `credHelpers`) run programs and are out of scope, which is logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from tagsync.config import RegistryConfig, secret_from_env
from tagsync.errors import ConfigError, RegistryAuthError
from tagsync.http_policy import remember_secret
from tagsync.reference import DOCKER_HUB, parse_ecr_host
from tagsync.secrets import resolve

log = logging.getLogger(__name__)

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def registry_credentials(reg: RegistryConfig, base_dir: Path | None = None
                         ) -> tuple[str | None, str | None]:
    """(username, password): from the config, else Docker's config.json, else anonymous."""
    if reg.username is not None:
        if reg.password_env:
            return reg.username, secret_from_env(reg.password_env, f"registry {reg.host}")
        return reg.username, resolve(reg.password, f"registry {reg.host}", base_dir)
    if reg.docker_config:
        found = docker_credentials(reg.host)
        if found is not None:
            return found
    return None, None


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _host_of(key: str) -> str:
    key = key.split("://", 1)[-1]
    return key.split("/", 1)[0]


def docker_credentials(host: str, path: Path | None = None) -> tuple[str, str] | None:
    """(username, password) for a registry host, or None when the file has none for it."""
    path = path or docker_config_path()
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read Docker credentials: {exc}", file=str(path)) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    wanted = set(_HUB_KEYS) if host == DOCKER_HUB else {host}
    for key, entry in (auths or {}).items():
        if (_host_of(key) not in wanted and key not in wanted) or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            remember_secret(str(entry["identitytoken"]))
            return "<token>", str(entry["identitytoken"])
        raw = entry.get("auth")
        if not raw:
            continue
        try:
            user, sep, password = base64.b64decode(raw, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise ConfigError(f"the `auth` entry for {key} is not base64 user:password",
                              file=str(path))
        remember_secret(password, raw)
        return user, password
    helpers = data.get("credHelpers") or {} if isinstance(data, dict) else {}
    if host in helpers or (isinstance(data, dict) and data.get("credsStore")):
        log.info("%s: credentials for %s are kept by a credential helper, which tagsync does not "
                 "run; set username/password in tagsync.yaml", path, host)
    return None


def ecr_credentials(host: str, client: Any = None) -> tuple[str, str]:
    """ECR's registry password: a 12-hour token from `GetAuthorizationToken` (user `AWS`)."""
    found = parse_ecr_host(host)
    if found is None:
        raise ConfigError(f"{host} is not an ECR registry host")
    account, region = found
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if client is None:
            import boto3

            client = boto3.client("ecr", region_name=region)
        data = client.get_authorization_token(registryIds=[account])["authorizationData"][0]
        user, sep, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    except (BotoCoreError, ClientError) as exc:
        raise RegistryAuthError(f"ECR gave no registry token: {exc}", image=host) from None
    if not sep:
        raise RegistryAuthError("ECR's authorization token is not user:password", image=host)
    remember_secret(password, data["authorizationToken"])
    return user, password


def push_credentials(host: str) -> tuple[str | None, str | None]:
    """For pushing (and reading the base image): ECR's token, else `docker login`'s, else none."""
    if parse_ecr_host(host):
        return ecr_credentials(host)
    return docker_credentials(host) or (None, None)
