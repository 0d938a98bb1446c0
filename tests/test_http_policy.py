"""The one HTTP policy every client follows (registries, Docker Hub's API, GitHub): how a
server's wait is read, how backoff grows, what is redacted."""

from __future__ import annotations

import logging

import pytest

from tagsync.errors import RegistryError
from tagsync.http_policy import (
    RedactingFilter,
    RetryPolicy,
    redact,
    remember_secret,
    wait_from,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("header", "seconds"), [
    ("5", 5.0),                      # Retry-After: delta-seconds
    ("2.5", 2.5),
    (" 7 ", 7.0),
    (str(int(NOW) + 30), 30.0),      # X-Retry-After / x-ratelimit-reset: epoch seconds
    (str(int(NOW) - 30), 0.0),       # a time already past: no wait, never negative
    ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),  # Retry-After: an HTTP-date
])
def test_a_servers_wait_is_read_in_every_documented_form(header: str, seconds: float) -> None:
    assert wait_from(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf"])
def test_an_unreadable_wait_is_no_wait_at_all(header: str | None) -> None:
    assert wait_from(header, now=NOW) is None


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=8.0)
    for attempt in range(10):
        delay = policy.delay(attempt)
        assert min(2.0 ** attempt / 2, 8.0) <= delay <= min(2.0 ** attempt, 8.0)


def test_credentials_and_signed_parameters_in_urls_are_redacted() -> None:
    text = "GET https://bot:s3cret@reg.example/v2/x?X-Amz-Signature=abc&n=1&access_token=t failed"
    assert redact(text) == ("GET https://***@reg.example/v2/x?X-Amz-Signature=***&n=1"
                            "&access_token=*** failed")


def test_given_secrets_are_redacted_wherever_they_appear() -> None:
    assert redact("Bearer ghs_abc refused; ghs_abc again", "ghs_abc", None) == \
        "Bearer *** refused; *** again"


def test_a_password_holding_an_at_sign_is_redacted_whole() -> None:
    assert redact("cannot reach https://bot:p@ss@reg.example/v2/") == \
        "cannot reach https://***@reg.example/v2/"
    assert redact("bot:p@ss@127.0.0.1:5000", one_url=True) == "***@127.0.0.1:5000"


def test_a_url_written_without_its_scheme_loses_its_credentials_too() -> None:
    assert redact("bot:s3cret@127.0.0.1:5000", one_url=True) == "***@127.0.0.1:5000"


def test_an_image_at_the_start_of_a_message_is_not_taken_for_a_login() -> None:
    message = "app:1.0@sha256:0123: not found"
    assert redact(message) == message


# --- server text that quotes a secret (issue #27, item 4) -----------------------------------


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "Mon, 99 Foo 2027", "-"])
def test_an_unreadable_wait_is_an_error_for_a_strict_reader(value: str) -> None:
    assert wait_from(value, NOW) is None
    with pytest.raises(ValueError):
        wait_from(value, NOW, strict=True)


@pytest.mark.parametrize(("text", "shown"), [
    ("you sent Authorization: Basic cm9ib3Q6czNjcmV0 (denied)", "you sent Authorization: Basic *** (denied)"),
    ('{"authorization": "Bearer eyJhbGciOi.eyJzdWIi.c2ln"}', '{"authorization": "Bearer ***"}'),
    ("proxy-authorization=abc123def", "proxy-authorization=***"),
    ("token ghp_0123456789abcdef refused", "token *** refused"),
])
def test_an_authorization_value_a_server_quotes_is_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize("prose", ["the Bearer challenge names no realm",
                                   "the registry requires credentials (Basic); set username",
                                   "the token service refused our credentials"])
def test_prose_about_auth_is_left_as_it_is(prose: str) -> None:
    assert redact(prose) == prose


def test_a_remembered_secret_is_redacted_in_every_later_error_and_log_line() -> None:
    remember_secret("Zq8-remembered-secret", "WnE4LXJlbWVtYmVyZWQ=")
    error = RegistryError("the server says: Zq8-remembered-secret is wrong (WnE4LXJlbWVtYmVyZWQ=)")
    assert "remembered" not in str(error) and "WnE4" not in error.message
    assert redact("Zq8-remembered-secret%21") == "***%21"
    record = logging.LogRecord("tagsync", logging.INFO, __file__, 1, "got %s",
                               ("Zq8-remembered-secret",), None)
    assert RedactingFilter().filter(record) and record.getMessage() == "got ***"


def test_a_secret_in_url_encoded_form_is_redacted_too() -> None:
    remember_secret("p@ss word/1")
    assert redact("https://x.example/?q=p%40ss%20word%2F1") == "https://x.example/?q=***"


def test_a_long_run_of_words_is_redacted_in_linear_time() -> None:
    """`a.a.a.…` (a repository's value quoted in a config error): the URL pattern was tried from
    every word of the run, each time to its end (seconds for 40 KB, minutes for a 1 MiB config);
    a scheme is now at most 32 characters, and a real one is still found after such a run."""
    from tagsync.http_policy import redact

    text = "a." * 300_000 + " https://user:secret@host/x"
    assert redact(text).endswith(" https://***@host/x")
    assert redact("x-https://user:secret@host") == "x-https://***@host"
