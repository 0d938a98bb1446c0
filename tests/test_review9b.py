"""Review of the lead's commits 585d5d0..ae00a31: each test is a bug found, proven, then fixed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tagsync.errors import PublishError
from tagsync.publish import github as gh
from tests.servers.fixtures import WsgiThread, serve_wsgi

# JSON nested deeper than Python's decoder recurses: valid JSON, yet `json.loads` ends in a
# RecursionError, which is no ValueError.
DEEP = b"[" * 100_000 + b"]" * 100_000


def answering(status: str, body: bytes) -> Callable[..., list[bytes]]:
    def app(environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    return app


@pytest.fixture
def deep_200() -> Iterator[WsgiThread]:
    server = serve_wsgi(answering("200 OK", DEEP))
    yield server
    server.stop()


@pytest.fixture
def deep_403() -> Iterator[WsgiThread]:
    server = serve_wsgi(answering("403 Forbidden", DEEP))
    yield server
    server.stop()


def publisher(url: str, token: str = "ghp_secret") -> gh.GitHubPublisher:
    return gh.GitHubPublisher(gh.GitHubApi(url, gh.StaticToken(token), retries=0),
                              "acme/catalogs", "main")


def test_a_github_answer_nested_too_deep_to_read_is_a_publish_error(deep_200: WsgiThread) -> None:
    with pytest.raises(PublishError, match="reading branch main of acme/catalogs"):
        publisher(deep_200.url).snapshot()


def test_a_github_refusal_nested_too_deep_to_read_is_a_publish_error(deep_403: WsgiThread) -> None:
    """A 403's body is read twice: is it a rate limit, and what does it say."""
    with pytest.raises(PublishError, match="GitHub answered 403"):
        publisher(deep_403.url).snapshot()
