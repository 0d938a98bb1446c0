"""Review of the lead's commits 585d5d0..ae00a31: each test is a bug found, proven, then fixed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tagsync.errors import PublishAuthError, PublishError, RegistryError
from tagsync.http_policy import RetryPolicy
from tagsync.publish import github as gh
from tagsync.reference import ImageName
from tagsync.registry.oci import OciRegistry
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


def test_a_tls_handshake_with_a_plain_http_server_keeps_tls_s_reason() -> None:
    """An SSLError's errno is OpenSSL's code, not the system's: its own text is the reason."""
    server = serve_wsgi(answering("200 OK", b"{}"))
    port = int(server.url.rsplit(":", 1)[1])
    client = OciRegistry(f"https://127.0.0.1:{port}", retry=RetryPolicy(attempts=0))

    async def head() -> Any:
        try:
            return await client.head(ImageName.parse(f"127.0.0.1:{port}/a/b"), "v1")
        finally:
            await client.aclose()

    try:
        with pytest.raises(RegistryError) as err:
            asyncio.run(head())
    finally:
        server.stop()
    assert f"cannot connect to 127.0.0.1:{port} ([SSL" in err.value.message


@pytest.fixture
def github_branch() -> Iterator[WsgiThread]:
    server = serve_wsgi(answering("200 OK", b'{"object": {"sha": "' + b"a" * 40 + b'"}}'))
    yield server
    server.stop()


def test_a_token_with_a_character_no_header_carries_is_said_so_not_blamed_on_github(
        github_branch: WsgiThread) -> None:
    """A token pasted with a typographic quote: httpx's UnicodeEncodeError is ours, not an
    answer of GitHub's of an undocumented shape."""
    with pytest.raises(PublishAuthError, match="cannot carry") as caught:
        publisher(github_branch.url, token="ghp_\u2019abc").snapshot()
    assert "shape" not in str(caught.value)


def test_a_token_with_a_trailing_line_break_is_not_shown_in_the_error(
        github_branch: WsgiThread) -> None:
    """An environment variable set from a file keeps its newline; h11 refuses the header and
    quotes it as bytes (`b'Bearer ghp_…\\n'`), a form `redact` does not recognise."""
    with pytest.raises(PublishError) as caught:
        publisher(github_branch.url, token="ghp_newline_secret\n").snapshot()
    assert "ghp_newline_secret" not in str(caught.value)
