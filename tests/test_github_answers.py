"""GitHub's API as something else answers for it: a captive portal's page, a web server at a
wrong `api_url`, JSON of another shape. Each is a PublishError naming the step; never a
traceback, and nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tagsync.errors import PublishError
from tagsync.publish import github as gh
from tagsync.publish.pull_request import PullRequestMode
from tests.servers.fixtures import WsgiThread, serve_wsgi

PORTAL = b"<html><body>Sign in to the guest network</body></html>"


def answering(body: bytes, content_type: str) -> Callable[..., list[bytes]]:
    def app(environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        start("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]
    return app


@pytest.fixture
def portal() -> Iterator[WsgiThread]:
    server = serve_wsgi(answering(PORTAL, "text/html; charset=utf-8"))
    yield server
    server.stop()


@pytest.fixture
def empty_object() -> Iterator[WsgiThread]:
    server = serve_wsgi(answering(b"{}", "application/json"))
    yield server
    server.stop()


def publisher(url: str, auth: gh.TokenSource | None = None) -> gh.GitHubPublisher:
    api = gh.GitHubApi(url, auth or gh.StaticToken("ghp_secret"), retries=0)
    return gh.GitHubPublisher(api, "acme/catalogs", "main")


def test_a_page_instead_of_json_is_a_publish_error_saying_what_came(portal: WsgiThread) -> None:
    with pytest.raises(PublishError) as caught:
        publisher(portal.url).snapshot()
    message = str(caught.value)
    assert "reading branch main of acme/catalogs" in message
    assert "text/html" in message and "not JSON" in message and "github.api_url" in message


def test_json_of_another_shape_is_a_publish_error_naming_the_step(empty_object: WsgiThread) -> None:
    with pytest.raises(PublishError, match=r"snapshot: GitHub's API answered with a shape .*KeyError"):
        publisher(empty_object.url).snapshot()


def test_a_file_read_through_a_portal_is_a_publish_error(portal: WsgiThread) -> None:
    snap = gh.GitHubSnapshot(publisher(portal.url).api, "acme/catalogs", "main", "a" * 40, None)
    with pytest.raises(PublishError, match=r"reading a folder: the answer .* is not JSON"):
        snap.read("pod.yaml")


def test_a_graphql_answer_that_is_not_an_object_is_a_publish_error() -> None:
    server = serve_wsgi(answering(b"[]", "application/json"))
    try:
        api = gh.GitHubApi(server.url, gh.StaticToken("ghp_secret"), retries=0)
        with pytest.raises(PublishError, match="not an object"):
            api.graphql("query { viewer { login } }", {}, "asking")
    finally:
        server.stop()


def test_an_apps_token_exchange_through_a_portal_is_a_publish_error(
        portal: WsgiThread, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    app = gh.AppToken(4242, pem, "acme/catalogs", portal.url)
    with pytest.raises(PublishError, match=r"finding the installation .* is not JSON") as caught:
        publisher(portal.url, app).snapshot()
    assert not any(secret in str(caught.value) for secret in app.secrets())


def test_a_run_against_a_portal_exits_1_without_a_traceback_and_writes_nothing(
        portal: WsgiThread, tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       "    - image: nginx:1.25\n")
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: app\n    file: pod.yaml\n"
        f"github:\n  repo: acme/catalogs\n  token: env:GH_TOKEN\n  api_url: {portal.url}\n")
    done = subprocess.run([sys.executable, "-m", "tagsync", "run", "-c", "tagsync.yaml", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "GH_TOKEN": "ghp_secret"})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "ghp_secret" not in done.stderr + done.stdout
    assert "not JSON" in done.stderr
    assert json.loads(done.stdout or "{}").get("commit") is None


def test_pull_request_upkeep_on_an_answer_of_another_shape_only_warns(
        caplog: pytest.LogCaptureFixture) -> None:
    """After the commit has landed, labels, reviewers and auto-merge are upkeep: an answer
    without the documented `node_id` is a warning, not a failed run."""
    api = gh.GitHubApi("http://127.0.0.1:9", gh.StaticToken("ghp_secret"), retries=0)
    pub = gh.GitHubPublisher(api, "acme/catalogs", "main",
                             pull_request=gh.PullRequestOptions("tagsync/main/kernels"))
    pr: dict[str, Any] = {"number": 7}
    with caplog.at_level("WARNING"):
        PullRequestMode(pub)._try("requesting auto-merge", lambda: pr["node_id"])
    assert "requesting auto-merge failed on an answer of another shape" in caplog.text
    assert "the commit stands" in caplog.text
