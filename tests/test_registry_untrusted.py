"""What reaches a catalog from outside follows the grammar exactly; messages say what happened;
secrets inside URLs never show; config refuses what would crash later."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.config import parse_config
from tagsync.errors import ConfigError, InvalidReferenceError, MalformedAnswerError, RegistryError
from tagsync.http_policy import RetryPolicy, redact
from tagsync.reference import ImageName, short, validate_digest, validate_repository, validate_tag
from tagsync.registry import RepoQuery, list_repositories
from tagsync.registry.discover import DockerHub
from tagsync.registry.oci import OciRegistry
from tests.servers.hostile import HUB_NAMESPACES, JUNK_TAGS, HostileRegistry, kernels_config

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("value", ["1.2.0\n", "latest\n", "v1\r", "x" * 129, ""])
def test_a_tag_with_a_trailing_newline_or_too_long_is_refused(value: str) -> None:
    with pytest.raises(InvalidReferenceError, match="OCI tag grammar"):
        validate_tag(value)


@pytest.mark.parametrize("value", [DIGEST + "\n", DIGEST + " ", "sha256:" + "A" * 64])
def test_a_digest_with_anything_after_it_is_refused(value: str) -> None:
    with pytest.raises(InvalidReferenceError, match="not a valid sha256"):
        validate_digest(value)


@pytest.mark.parametrize("value", ["team/app\n", "UPPER", "a..b%2Fc", "x" * 256, 'x",evil:"y'])
def test_a_repository_name_outside_the_grammar_is_refused(value: str) -> None:
    with pytest.raises(InvalidReferenceError, match="OCI grammar"):
        validate_repository(value)


def test_redaction_hides_passwords_and_signed_parameters_in_urls() -> None:
    text = "GET https://robot:s3cret@reg.example/v2/x?X-Amz-Signature=abc&n=1 failed"
    assert redact(text) == "GET https://***@reg.example/v2/x?X-Amz-Signature=***&n=1 failed"


# --- against the hostile server -------------------------------------------------------------


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileRegistry]:
    server = HostileRegistry(tags={"good/app": ["1.0.0", "1.1.0"]},
                             credentials=("robot", "s3cret-pass"),
                             catalog=["h/fine", "UPPER", "a..b%2Fc", "h/" + "x" * 300,
                                      'h/x",evil:"y', "h/ok\n", 7, "h/also-fine"]).start()
    try:
        yield server
    finally:
        server.stop()


def test_catalog_names_outside_the_grammar_never_become_entries(hostile: HostileRegistry) -> None:
    client = OciRegistry(hostile.url, username="robot", password="s3cret-pass")

    async def go() -> tuple[str, ...]:
        try:
            found = await list_repositories([RepoQuery(hostile.host, "h")], {hostile.host: client})
        finally:
            await client.aclose()
        return found[RepoQuery(hostile.host, "h")].names

    assert asyncio.run(go()) == ("h/also-fine", "h/fine")


def hub_names(server: HostileRegistry, namespace: str) -> tuple[tuple[str, ...], str | None]:
    hub = DockerHub(server.url, timeout=2.0)

    async def go() -> tuple[tuple[str, ...], str | None]:
        try:
            found = await list_repositories([RepoQuery("docker.io", namespace)],
                                            {"docker.io": hub})
        finally:
            await hub.aclose()
        listing = found[RepoQuery("docker.io", namespace)]
        return listing.names, listing.error.message if listing.error else None

    return asyncio.run(go())


def test_hub_names_outside_the_grammar_never_become_entries(hostile: HostileRegistry) -> None:
    assert hub_names(hostile, "hubjunk") == (("hubjunk/fine", "hubjunk/ok-too"), None)


@pytest.mark.parametrize(("namespace", "reason"), [
    ("hubforeign", "a Docker Hub page links to another origin; not followed"),
    ("hubloop", "Docker Hub's pages loop back to"),
    ("hubhtml", "Docker Hub's answer is not JSON"),
])
def test_a_hostile_hub_listing_is_a_one_line_failure(hostile: HostileRegistry, namespace: str,
                                                     reason: str) -> None:
    names, error = hub_names(hostile, namespace)
    assert names == ()
    assert error is not None and error.startswith(reason)
    assert [r for r in hostile.seen if r.port == hostile.other_port] == []
    assert namespace in HUB_NAMESPACES


def world(server: HostileRegistry, tmp_path: Path, catalog: str, *, url: str | None = None,
          extra: str = "") -> Path:
    (tmp_path / "images.yml").write_text(catalog)
    config = tmp_path / "tagsync.yaml"
    config.write_text(kernels_config(server, catalog_extra=extra, url=url,
                                     run="  timeout: 2\n  retries: 1\n"))
    return config


def test_junk_tags_are_dropped_from_ranking_with_a_note(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = world(hostile, tmp_path, 'images:\n  - name: h/junk-tags\n    tag: "1.0.0"\n'
                   '    digest: "0123456789ab"\n', url=f"http://robot:s3cret-pass@{hostile.host}",
                   extra="    policy: {kind: semver}\n")
    assert main(["run", "-c", str(config), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    _, config_digest = hostile.manifest("h/junk-tags", "1.1.0")
    assert (tmp_path / "images.yml").read_text() == (
        f'images:\n  - name: h/junk-tags\n    tag: "1.1.0"\n    digest: "{short(config_digest)}"\n')
    (note,) = summary["skipped"]
    assert note["reason"] == (f"{len(JUNK_TAGS)} listed tag(s) outside the OCI tag grammar "
                              "not ranked")


def test_a_password_inside_the_registry_url_is_used_and_never_shown(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = world(hostile, tmp_path, 'images:\n  - name: good/app\n    tag: "1.0.0"\n'
                   '    digest: "0123456789ab"\n  - name: h/retry-after\n    tag: "1.0.0"\n'
                   '    digest: "0123456789ab"\n',
                   url=f"http://robot:s3cret-pass@{hostile.host}")
    code = main(["-vv", "run", "-c", str(config), "--json"])
    out, err = capsys.readouterr()
    assert code == 3
    assert any("authorization" in r.headers for r in hostile.seen)  # the URL's credentials work
    assert "s3cret-pass" not in out + err + caplog.text


def test_an_unreachable_registry_url_with_a_password_is_redacted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        hostile: HostileRegistry, closed_port: int) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port
    config = world(hostile, tmp_path, 'images:\n  - name: good/app\n    tag: "1.0.0"\n'
                   '    digest: "0123456789ab"\n', url=f"http://robot:s3cret-pass@127.0.0.1:{port}")
    code = main(["-vv", "run", "-c", str(config), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "cannot reach http://127.0.0.1" in err
    assert "s3cret-pass" not in out + err + caplog.text


def test_a_tag_the_registry_does_not_have_is_not_found_not_silence(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = world(hostile, tmp_path, 'images:\n  - name: good/app\n    tag: "7.7.7"\n'
                   '    digest: "0123456789ab"\n', url=f"http://robot:s3cret-pass@{hostile.host}")
    code = main(["run", "-c", str(config)])
    err = capsys.readouterr().err
    assert code == 3
    assert "tag or digest '7.7.7' not found" in err
    assert "no registry answered" not in err


def test_the_same_tag_with_and_without_a_platform_both_work(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "images.yml").write_text(
        'plain: {image: good/app, tag: "1.0.0", digest: old}\n'
        'amd64: {image: good/app, tag: "1.0.0", digest: old}\n')
    (tmp_path / "tagsync.yaml").write_text(f"""\
catalogs:
  - name: plain
    file: images.yml
    entries: .plain
    image: "{hostile.host}/{{image}}"
    tag: .tag
    digest: .digest
  - name: amd64
    file: images.yml
    entries: .amd64
    image: "{hostile.host}/{{image}}"
    tag: .tag
    digest: .digest
    platform: linux/amd64
registries:
  - host: "{hostile.host}"
    url: {hostile.url}
    username: robot
    password: env:HOSTILE_PW
""")
    monkeypatch.setenv("HOSTILE_PW", "s3cret-pass")
    code = main(["run", "-c", str(tmp_path / "tagsync.yaml")])
    digest, _ = hostile.manifest("good/app", "1.0.0")
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "images.yml").read_text().count(f'digest: "{digest}"') == 2


@pytest.mark.parametrize("url", ["127.0.0.1:5000", "registry.example.com", "ftp://x.example",
                                 "https://", "http://h:notaport"])
def test_a_registry_url_without_an_http_scheme_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"registry \"r\.example\": url: .*(http://|invalid port)"):
        parse_config(f"catalogs: [{{name: c, file: f.yml, image: x/y, tag: .t, digest: .d}}]\n"
                     f"registries: [{{host: r.example, url: '{url}'}}]\n",
                     "tagsync.yaml", Path("."))


def test_a_registry_url_password_is_not_echoed_by_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("catalogs: [{name: c, file: f.yml, image: x/y, tag: .t, digest: .d}]\n"
                     "registries: [{host: r.example, url: 'robot:s3cret@r.example'}]\n",
                     "tagsync.yaml", Path("."))
    assert "s3cret" not in str(info.value)


def test_content_fetched_by_digest_must_match_it(hostile: HostileRegistry) -> None:
    client = OciRegistry(hostile.url, username="robot", password="s3cret-pass")
    digest, _ = hostile.manifest("h/digest-mismatch", "1.0.0")

    async def go() -> None:
        try:
            await client.get(ImageName(hostile.host, "h/digest-mismatch"), digest)
        finally:
            await client.aclose()

    with pytest.raises(MalformedAnswerError, match=r"fetched by digest .* has another digest"):
        asyncio.run(go())


def test_a_manifest_redirected_to_another_host_is_refused_without_asking_it(
        hostile: HostileRegistry) -> None:
    """A manifest is the registry's word: another host cannot give it (issue #27, item 9)."""
    client = OciRegistry(hostile.url, username="robot", password="s3cret-pass")

    async def go() -> str:
        try:
            await client.ping()  # learns the Basic challenge: registry requests carry credentials
            return (await client.head(ImageName(hostile.host, "h/cdn"), "1.0.0")).digest
        finally:
            await client.aclose()

    with pytest.raises(MalformedAnswerError, match="redirected to another origin"):
        asyncio.run(go())
    assert [r for r in hostile.seen if r.port == hostile.other_port] == []


def test_a_blob_download_redirected_in_circles_is_a_registry_error(tmp_path: Path) -> None:
    """Past the HEAD, the GET of a blob can still meet what HTTP itself refuses (a redirect
    loop, a proxy's refusal): a typed error and no partial file, never a traceback."""
    from tests.servers.fixtures import serve_wsgi

    digest = "sha256:" + "a" * 64

    def app(environ: dict[str, object], start: object) -> list[bytes]:
        assert callable(start)
        if environ["REQUEST_METHOD"] == "HEAD" or environ["PATH_INFO"] == "/v2/":
            start("200 OK", [("Content-Length", "0")])
        else:  # the blob's storage sends the client back to where it came from, forever
            start("302 Found", [("Location", str(environ["PATH_INFO"])), ("Content-Length", "0")])
        return [b""]

    server = serve_wsgi(app)
    client = OciRegistry(server.url, retry=RetryPolicy(attempts=0))
    dest = tmp_path / "blob"

    async def go() -> None:
        try:
            await client.download_blob(ImageName.parse("127.0.0.1:1/team/app"), digest, dest)
        finally:
            await client.aclose()

    try:
        with pytest.raises(RegistryError, match=r"cannot download blob .*TooManyRedirects"):
            asyncio.run(go())
    finally:
        server.stop()
    assert not dest.exists() and not (tmp_path / "blob.part").exists()
