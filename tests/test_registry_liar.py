"""Registries that lie, round two (issue #27), through `tagsync run --json` with a registry
password in the environment: credentials go only to the registry's origin and the realm its own
401 named; what is written is what the registry vouched for (a manifest that is a manifest);
every header a server controls is parsed defensively; server text quoting a secret is redacted.

Each lie fails only its own image with a one-line reason (exit 3), the good images are still
updated, the lying entry stays byte-identical, no secret reaches any output or any listener but
the registry, and time and requests stay bounded."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.cli import main
from tagsync.errors import EXIT_PARTIAL, MalformedAnswerError, RegistryAuthError
from tagsync.reference import short
from tagsync.registry.answers import check_realm, next_link, read_challenge, server_url
from tests.servers.liar import CASES, GOOD, PASSWORD, LiarRegistry

TIMEOUT = 1.0
BOUND = 12.0  # seconds a run may take: far below a hang or a retry storm
OLD = "0123456789ab"
STALE = "sha256:" + "0" * 64
# The lies a pinned Kubernetes `image:` meets (policy `same`: one HEAD, a GET when the HEAD
# vouches for nothing); the others are about tag lists, blobs, or a body only image-id reads.
KUBE_CASES = sorted(set(CASES) - {"tags-redirect-foreign", "link-backslash", "link-garbage",
                                  "link-two-next", "blob-redirect-asks-auth",
                                  "mediatype-mismatch", "manifest-no-config"})
# A captive portal answers HTML to the tag list too: the paths catalog lists tags first.
PATHS_REASON = {**CASES, "portal": "the tag list answer is not JSON"}


@dataclass
class World:
    liar: LiarRegistry
    folder: Path
    config: Path

    @property
    def catalog(self) -> Path:
        return self.folder / "images.yml"

    @property
    def pods(self) -> Path:
        return self.folder / "deploy" / "pods.yaml"

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str, float]:
        start = time.monotonic()
        code = main([*args, "run", "-c", str(self.config), "--json"])
        elapsed = time.monotonic() - start
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip() else {}, out + err, elapsed


def _entry(name: str, tag: str, digest: str) -> str:
    return f'  - name: {name}\n    tag: "{tag}"\n    digest: "{digest}"\n'


def _pod(host: str, name: str, digest: str) -> str:
    return f"    - name: c{abs(hash(name)) % 10**6}\n      image: {host}/{name}:1.0.0@{digest}\n"


def make_world(liar: LiarRegistry, tmp_path: Path, repos: list[str]) -> World:
    folder = tmp_path / "checkout"
    (folder / "deploy").mkdir(parents=True)
    (folder / "images.yml").write_text(
        "images:\n" + "".join(_entry(r, "1.0.0", OLD) for r in [*GOOD, *repos]))
    kube = [r for r in repos if r.removeprefix("l/") in KUBE_CASES]
    (folder / "deploy" / "pods.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        + "".join(_pod(liar.host, r, STALE) for r in ["good/app", *kube]))
    config = folder / "tagsync.yaml"
    config.write_text(f"""\
catalogs:
  - name: kernels
    file: images.yml
    entries: .images[*]
    image: "{liar.host}/{{name}}"
    tag: .tag
    digest: .digest
    digest_format: image-id
    policy: {{kind: semver, min_age: 1d}}  # reads each tag's config blob
  - name: deploy
    kind: kubernetes
    files: ["deploy/*.yaml"]
registries:
  - host: "{liar.host}"
    url: {liar.url}
    username: robot
    password: env:LIAR_PASSWORD
run:
  timeout: {TIMEOUT}
  retries: 2
  max_wait: 5
""")
    return World(liar, folder, config)


@pytest.fixture(params=["basic", "bearer"])
def liar(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiarRegistry]:
    server = LiarRegistry(auth=request.param).start()
    monkeypatch.setenv("LIAR_PASSWORD", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bearer(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiarRegistry]:
    server = LiarRegistry(auth="bearer").start()
    monkeypatch.setenv("LIAR_PASSWORD", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def assert_good_images_updated(world: World) -> None:
    text = world.catalog.read_text()
    for repo in GOOD:
        _, config = world.liar.manifest(repo, "1.1.0")
        assert _entry(repo, "1.1.0", short(config)) in text, repo
    digest, _ = world.liar.manifest("good/app", "1.0.0")
    assert f"{world.liar.host}/good/app:1.0.0@{digest}" in world.pods.read_text()


def assert_no_secret_left_the_registry(liar: LiarRegistry, shown: str) -> None:
    secrets = liar.secrets()
    for seen in liar.at("foreign") + liar.at("evil"):
        assert "authorization" not in seen.headers, seen
        assert not any(s in seen.target or s in json.dumps(seen.headers) for s in secrets), seen
    assert liar.at("evil") == []  # no token was ever asked of a realm another host named
    assert not any("evil-token" in json.dumps(r.headers) for r in liar.seen)  # nor used
    assert not any("evil:hunter2" in json.dumps(r.headers) or "ZXZpbDpodW50ZXIy" in
                   json.dumps(r.headers) for r in liar.seen)  # a Location's userinfo: never sent
    for secret in secrets:
        assert secret not in shown


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_lie_fails_only_its_own_image(case: str, bearer: LiarRegistry, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(bearer, tmp_path, [f"l/{case}"])
    before = world.catalog.read_text(), world.pods.read_text()
    code, summary, shown, elapsed = world.run(capsys)
    assert code == EXIT_PARTIAL, shown
    assert "Traceback" not in shown and elapsed < BOUND
    image = f"{bearer.host}/l/{case}"
    failures = {(f["catalog"], f["image"]): f["error"] for f in summary["failures"]}
    assert set(failures) == {("kernels", image)} | (
        {("deploy", image)} if case in KUBE_CASES else set())  # nothing else failed
    assert PATHS_REASON[case] in failures["kernels", image]
    assert CASES[case] in failures.get(("deploy", image), CASES[case])
    assert all("\n" not in f["error"] for f in summary["failures"])
    assert_good_images_updated(world)
    assert _entry(f"l/{case}", "1.0.0", OLD) in world.catalog.read_text()  # left as written
    assert f"l/{case}:1.0.0@{STALE}" in world.pods.read_text() or case not in KUBE_CASES
    assert world.catalog.read_text() != before[0]
    assert len([r for r in bearer.seen if f"/l/{case}/" in r.path]) <= 20  # no retry storm
    assert_no_secret_left_the_registry(bearer, shown)


def test_every_lie_at_once_leaks_nothing_in_either_auth_mode(
        liar: LiarRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The run of issue #27 item 1: a password and a token in play, a foreign host asking for
    them after a redirect, realms elsewhere; only the registry ever sees a credential."""
    caplog.set_level(logging.DEBUG)
    world = make_world(liar, tmp_path, [f"l/{c}" for c in sorted(CASES)])
    code, summary, shown, elapsed = world.run(capsys, "-vv")
    assert code == EXIT_PARTIAL and "Traceback" not in shown and elapsed < BOUND
    failed = {f["image"].removeprefix(f"{liar.host}/") for f in summary["failures"]}
    assert failed == {f"l/{c}" for c in CASES}
    assert_good_images_updated(world)
    assert "9.9.9" not in world.catalog.read_text()  # the foreign host's tag list: never used
    assert_no_secret_left_the_registry(liar, shown + caplog.text)
    assert any("authorization" in r.headers for r in liar.at("registry"))  # credentials work


def test_a_blob_served_by_another_host_is_fetched_without_credentials(
        bearer: LiarRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(bearer, tmp_path, [])
    code, _, shown, _ = world.run(capsys)
    assert code == 0, shown
    assert_good_images_updated(world)
    at_cdn = [r for r in bearer.at("foreign") if "/blobs/" in r.path]
    assert {r.path.split("/blobs/")[0] for r in at_cdn} == {"/v2/l/blob-cdn",
                                                            "/v2/l/location-userinfo"}
    assert all("authorization" not in r.headers for r in at_cdn)


def test_a_captive_portal_never_becomes_a_pinned_digest(
        bearer: LiarRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #27 item 2: `200 text/html` with a digest header to everything, a pinned `image:`."""
    world = make_world(bearer, tmp_path, ["l/portal"])
    before = world.pods.read_text()
    code, summary, _, _ = world.run(capsys)
    assert code == EXIT_PARTIAL
    after = world.pods.read_text()
    assert after.count(STALE) == before.count(STALE) - 1  # good/app moved, the portal's did not
    assert f"l/portal:1.0.0@{STALE}" in after
    assert summary["status"] == "partial"


def test_server_text_quoting_our_authorization_is_redacted_on_every_output(
        liar: LiarRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world = make_world(liar, tmp_path, ["l/echo-authorization"])
    code, summary, shown, _ = world.run(capsys, "-vv")
    assert code == EXIT_PARTIAL
    reasons = [f["error"] for f in summary["failures"]]
    assert reasons and all("you sent Authorization: " in r and "***" in r for r in reasons)
    code = main(["run", "-c", str(world.config)])  # the text summary on stderr too
    text = capsys.readouterr()
    for secret in liar.secrets():
        assert secret not in shown + caplog.text + text.out + text.err


# --- the parsers, one refusal each --------------------------------------------------------


@pytest.mark.parametrize("location", ["http://a\\@b.example/x", "http://h:99999/x", "http://[::1/x",
                                      "/x y", "http://\u00e9.example/", "", "\x00"])
def test_a_location_that_is_not_a_well_formed_url_is_refused(location: str) -> None:
    with pytest.raises(MalformedAnswerError, match="is not a well-formed URL"):
        server_url("https://r.example/v2/", location, "Location", "r.example/app")


@pytest.mark.parametrize("location", ["ftp://r.example/x", "file:///etc/passwd", "javascript:x"])
def test_a_location_with_another_scheme_is_refused(location: str) -> None:
    with pytest.raises(MalformedAnswerError, match="non-HTTP URL"):
        server_url("https://r.example/v2/", location, "Location", "r.example/app")


def test_userinfo_in_a_location_is_stripped() -> None:
    assert server_url("https://r.example/v2/", "https://u:p@cdn.example:8443/b?x=1", "Location",
                      "r") == "https://cdn.example:8443/b?x=1"


@pytest.mark.parametrize("header", ["garbage", '<a>; rel="next" junk', "<a>; rel=next,, <",
                                    "<a\nb>; rel=next"])
def test_a_link_header_that_does_not_parse_is_refused(header: str) -> None:
    with pytest.raises(MalformedAnswerError, match="Link header"):
        next_link(header, "https://r.example/v2/x/tags/list", "r")


def test_a_link_header_with_other_relations_and_parameters_is_read() -> None:
    header = ('</v2/x/tags/list?last=a>; title="first, page"; rel="prev", '
              '</v2/x/tags/list?last=b>; rel="next last"')
    assert next_link(header, "https://r.example/v2/x/tags/list", "r") == \
        "https://r.example/v2/x/tags/list?last=b"
    assert next_link('</a>; rel="prev"', "https://r.example/", "r") is None


@pytest.mark.parametrize(("registry", "realm", "ok"), [
    ("https://r.example", "https://auth.example/token", True),
    ("https://r.example", "http://auth.example/token", False),
    ("http://r.example", "http://auth.example/token", True),
    ("https://r.example", "file:///etc/passwd", False),
    ("https://r.example", "ftp://auth.example/t", False),
    ("https://r.example", "https://u:p@auth.example/t", False),
    ("https://r.example", "/token", False),
])
def test_a_realm_is_https_or_the_registry_s_own_http(registry: str, realm: str, ok: bool) -> None:
    if ok:
        assert check_realm(realm, registry, "r") == realm
    else:
        with pytest.raises((RegistryAuthError, MalformedAnswerError)):
            check_realm(realm, registry, "r")


@pytest.mark.parametrize("header", ["", "Negotiate x", 'Bearer service="s"', "Bearer realm=\x01",
                                    "Basic realm=" + "x" * 9000])
def test_a_challenge_that_is_not_usable_is_refused(header: str) -> None:
    with pytest.raises((RegistryAuthError, MalformedAnswerError)):
        read_challenge(header, "https://r.example", "r")


# --- the class, not the instances: any header text is a value or a typed reason ----------

_URLISH = st.text(alphabet=st.sampled_from(list("htps:/\\@[]%?#<>;,=\" .:1aä\x00\t")) |
                  st.characters(), max_size=60)


@settings(max_examples=200, deadline=None)
@given(_URLISH)
def test_any_location_is_a_safe_url_or_a_reason(location: str) -> None:
    try:
        url = server_url("https://r.example/v2/x/", location, "Location", "r")
    except MalformedAnswerError:
        return
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname and "@" not in parts.netloc
    assert url.isascii() and url.isprintable() and " " not in url and "\\" not in url


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('<>;,= "rel=next/\\@htps:ab')), max_size=60))
def test_any_link_header_is_a_next_page_or_none_or_a_reason(header: str) -> None:
    try:
        found = next_link(header, "https://r.example/v2/x/tags/list", "r")
    except MalformedAnswerError:
        return
    assert found is None or urlsplit(found).scheme in ("http", "https")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.sampled_from(["https://r.example", "http://r.example"]))
def test_any_challenge_is_usable_or_a_reason(header: str, registry: str) -> None:
    try:
        scheme, params = read_challenge(header, registry, "r")
    except (RegistryAuthError, MalformedAnswerError):
        return
    assert scheme in ("basic", "bearer")
    if scheme == "bearer":
        assert urlsplit(params["realm"]).scheme in ("https", urlsplit(registry).scheme)


# --- the liar is as strict as a real registry where it does not lie -----------------------


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_the_liar_refuses_what_a_registry_refuses(mode: str) -> None:
    import base64

    server = LiarRegistry(auth=mode).start()
    try:
        manifest = f"{server.url}/v2/good/app/manifests/1.0.0"
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        status, headers = _get(manifest, accept)
        assert status == 401 and headers["WWW-Authenticate"].lower().startswith(mode)
        basic = "Basic " + base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
        wrong = "Basic " + base64.b64encode(b"robot:wrong").decode()
        if mode == "basic":
            assert _get(manifest, {**accept, "Authorization": wrong})[0] == 401
            assert _get(manifest, {"Authorization": basic})[0] == 404  # no Accept: unknown
            assert _get(manifest, {**accept, "Authorization": basic})[0] == 200
        else:
            token_url = f"{server.url}/token?service=liar&scope=repository:good/app:pull"
            assert _get(token_url, {"Authorization": wrong})[0] == 401
            assert _get(manifest, {**accept, "Authorization": "Bearer tok-made-up"})[0] == 401
            assert _get(token_url, {"Authorization": basic})[0] == 200
            (token,) = server.tokens
            assert _get(manifest, {**accept, "Authorization": f"Bearer {token}"})[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_shape_to_another_origin_is_refused_for_tags_and_manifests(
        status: int) -> None:
    import asyncio

    from tagsync.reference import ImageName
    from tagsync.registry.oci import OciRegistry

    server = LiarRegistry(auth="basic", redirect_status=status).start()
    client = OciRegistry(server.url, username="robot", password=PASSWORD)

    async def ask() -> list[BaseException | object]:
        try:
            return await asyncio.gather(
                client.list_tags(ImageName(server.host, "l/tags-redirect-foreign")),
                client.head(ImageName(server.host, "l/manifest-redirect-foreign"), "1.0.0"),
                client.get(ImageName(server.host, "l/manifest-redirect-foreign"), "1.0.0"),
                return_exceptions=True)
        finally:
            await client.aclose()

    try:
        answers = asyncio.run(ask())
    finally:
        server.stop()
    assert all(isinstance(a, MalformedAnswerError) and "redirected to another origin" in str(a)
               for a in answers), answers
    assert server.at("foreign") == []


def test_a_bad_challenge_is_never_remembered_for_the_registry(bearer: LiarRegistry) -> None:
    """In this order, one at a time: a `file://` realm, a good image, an `ftp://` realm, a
    `Negotiate`, the good image again: the registry's own challenge is kept throughout."""
    import asyncio

    from tagsync.reference import ImageName
    from tagsync.registry.oci import OciRegistry

    client = OciRegistry(bearer.url, username="robot", password=PASSWORD)
    order = ["l/challenge-file-realm", "good/app", "l/challenge-ftp-realm",
             "l/challenge-unknown-scheme", "good/app"]

    async def ask() -> list[str]:
        out = []
        try:
            for repo in order:
                try:
                    out.append((await client.head(ImageName(bearer.host, repo), "1.0.0")).digest)
                except (RegistryAuthError, MalformedAnswerError) as exc:
                    out.append(type(exc).__name__)
        finally:
            await client.aclose()
        return out

    digest, _ = bearer.manifest("good/app", "1.0.0")
    assert asyncio.run(ask()) == ["RegistryAuthError", digest, "RegistryAuthError",
                                  "RegistryAuthError", digest]
    for_good = [r for r in bearer.at("registry")
                if r.path == "/token" and "repository:good/app:pull" in r.target]
    assert len(for_good) == 1  # the second good/app used the token it had, from the same realm
    assert bearer.at("evil") == [] and bearer.at("foreign") == []
