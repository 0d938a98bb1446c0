"""Organisation mode's allow-list of registry hosts (`allowed_registries` in org.yaml).

The promise: with an allow-list, a repository's files can make tagsync ask no registry host but
those listed and those the organisation configured, however the host is spelled; such a
reference is reported in the repository's row and never asked, and the rest of the repository
(and every other repository) goes on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.errors import ConfigError
from tagsync.org import answers
from tagsync.org.config import load_org_config, parse_org_config, repo_config
from tagsync.org.run import org_run
from tagsync.reference import host_allowed, host_key, host_pattern
from tests import test_org_run
from tests.servers.fixtures import WsgiThread, serve_wsgi
from tests.test_org_run import KUBE, OLD, REPO_CONFIG, Org

org = test_org_run.org  # the fixture: an organisation on the contract server and a registry

ORG = "organisation: acme\ngithub: {token: env:T}\nregistries: [{host: GHCR.io, username: bot, " \
      "password: env:GHCR}]\n"
CATALOG = "catalogs: [{name: a, file: x.yaml}]\n"


# --- one spelling per host ---------------------------------------------------------------------


@pytest.mark.parametrize(("spelled", "key"), [
    ("GHCR.IO", "ghcr.io"),
    ("ghcr.io.", "ghcr.io"),  # a fully qualified name
    ("ghcr.io:443", "ghcr.io"),  # HTTPS's own port: where `ghcr.io` is reached
    ("registry-1.docker.io", "docker.io"),
    ("Index.Docker.io", "docker.io"),
    ("docker.io:443", "docker.io"),
    ("[0:0:0:0:0:0:0:1]:5000", "[::1]:5000"),
    ("[FD00::0001]", "[fd00::1]"),
    # loopback is reached over plain HTTP (port 80): 443 there is another port
    ("localhost:443", "localhost:443"),
    ("127.0.0.1:443", "127.0.0.1:443"),
    ("[::1]:443", "[::1]:443"),
    ("ghcr.io:8443", "ghcr.io:8443"),
    ("registry-1.docker.io:5000", "registry-1.docker.io:5000"),  # not Docker Hub's endpoint
])
def test_a_host_has_one_spelling_for_comparing(spelled: str, key: str) -> None:
    assert host_key(spelled) == key


@pytest.mark.parametrize(("entry", "host"), [
    ("ghcr.io", "GHCR.IO"),
    ("GHCR.io.", "ghcr.io"),
    ("ghcr.io", "ghcr.io:443"),
    ("docker.io", "registry-1.docker.io"),
    ("index.docker.io", "docker.io"),
    ("[::1]:5000", "[0::1]:5000"),
    ("bücher.example", "xn--bcher-kva.example"),  # IDNA: the name references must write
    ("*.example.com", "a.b.example.com"),
    ("*.EXAMPLE.com", "Registry.example.com"),
    ("registry-?.example.com", "registry-2.example.com"),
    ("ghcr.io:*", "ghcr.io:5000"),
    ("ghcr.io:*", "ghcr.io"),
])
def test_an_allow_entry_admits_every_spelling_of_its_host(entry: str, host: str) -> None:
    assert host_allowed(host, [host_pattern(entry)])


@pytest.mark.parametrize(("entry", "host"), [
    ("ghcr.io", "ghcr.io:5000"),  # another port is another service
    ("registry.internal:5000", "registry.internal"),
    ("registry.internal:5000", "registry.internal:6000"),
    ("*.example.com", "example.com.evil.io"),
    ("*.example.com", "a.example.com:5000"),  # `*` never reaches into a port
    ("*.example.com", "evilexample.com"),
    ("localhost", "localhost:443"),
    ("ghcr.io", "ghcr.io.evil.io"),
    ("docker.io", "docker.io:5000"),
    ("[::1]:5000", "[::2]:5000"),
    ("*", "[::1]"),  # a glob never matches an IPv6 address
    ("*", "ghcr.io:5000"),  # nor reaches into a port
])
def test_an_allow_entry_admits_no_other_host(entry: str, host: str) -> None:
    assert not host_allowed(host, [host_pattern(entry)])


_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=4), st.one_of(st.none(), st.integers(1, 65535)),
       st.booleans(), st.booleans(), st.integers(1, 65535))
@settings(max_examples=300, deadline=None)
def test_a_listed_host_admits_its_spellings_and_never_another_port(
        labels: list[str], port: int | None, upper: bool, dot: bool, other: int) -> None:
    name = ".".join(labels)
    listed = name if port is None else f"{name}:{port}"
    spelled = (name.upper() if upper else name) + ("." if dot else "")
    spelled += "" if port is None else f":{port}"
    assert host_allowed(spelled, [host_pattern(listed)])
    assert host_key(host_key(spelled)) == host_key(spelled)
    if other != port and not (port is None and other == 443 and host_key(name) == name):
        assert not host_allowed(f"{name}:{other}", [host_pattern(listed)])


# --- the org config says it, and only the org config -------------------------------------------


@pytest.mark.parametrize("entry", ["https://ghcr.io", "ghcr.io/acme", "a..b", "[::1", "[::1]x",
                                   "*[ab].io", "", "ghcr.io:99999", "ghcr.io:0", "*..x", "*:x",
                                   "a b", "[::1]:*", "10.*", "192.168.*.*", "*.0.0.1:5000"])
def test_an_allow_entry_that_is_no_host_is_refused_at_load_with_its_line(entry: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_org_config(ORG + f"allowed_registries: [ghcr.io, {json.dumps(entry)}]\n", "org.yaml",
                         Path("/org"))
    assert caught.value.message.startswith("allowed_registries: ")
    assert (caught.value.file, caught.value.line) == ("org.yaml", 4)


def test_a_repository_may_not_widen_the_allow_list() -> None:
    org_config = parse_org_config(ORG + "allowed_registries: []\n", "org.yaml", Path("/org"))
    with pytest.raises(ConfigError) as caught:
        repo_config(org_config, "acme/svc", "main", CATALOG + "allowed_registries: ['*']\n",
                    "acme/svc:tagsync.yaml")
    assert caught.value.message.startswith("allowed_registries: ")
    assert "organisation" in caught.value.message and caught.value.line == 2


def test_the_organisation_s_registries_are_allowed_without_being_listed() -> None:
    org_config = parse_org_config(ORG + "allowed_registries: ['*.example.com']\n", "org.yaml",
                                  Path("/org"))
    config = repo_config(org_config, "acme/svc", "main", CATALOG, "acme/svc:tagsync.yaml")
    assert config.allows("ghcr.io") and config.allows("a.example.com")
    assert not config.allows("docker.io") and not config.allows("169.254.169.254")
    assert config.limited().allows("ghcr.io") and not config.limited().allows("docker.io")


def test_without_an_allow_list_any_host_may_be_asked() -> None:
    config = repo_config(parse_org_config(ORG, "org.yaml", Path("/org")), "acme/svc", "main",
                         CATALOG, "acme/svc:tagsync.yaml")
    assert config.allows("169.254.169.254") and config.allows("registry.internal:5000")


# --- a repository naming a host outside it: reported, never asked ---------------------------------


def _counting() -> tuple[WsgiThread, list[str]]:
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        start("404 Not Found", [("Content-Length", "0")])
        return [b""]

    return serve_wsgi(app), seen


def _spellings(port: int) -> list[str]:
    """The counting server's host, as a repository author might write it."""
    return [f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::ffff:7f00:1]:{port}",
            f"127.1:{port}", f"2130706433:{port}"]


def _quoted(host: str) -> bytes:
    """A manifest naming an image on `host`, quoted (`[::1]` would start a YAML list)."""
    ref = f"{host}/x/app:1.0@{OLD}"
    return KUBE.format(host=host, ns="x", digest=OLD).replace(ref, json.dumps(ref)).encode()


def test_a_host_outside_the_allow_list_is_never_contacted_whatever_its_spelling(org: Org) -> None:
    server, seen = _counting()
    try:
        port = int(server.url.rsplit(":", 1)[1])
        org.config.write_text(org.config.read_text() + "allowed_registries: ['*.example.com']\n")
        org.github.create_repo("acme/internal", {
            "tagsync.yaml": REPO_CONFIG.encode(),
            "deploy/app.yaml": org.kube(),  # on the organisation's registry: still kept in step
            **{f"deploy/{i}.yaml": _quoted(host) for i, host in enumerate(_spellings(port))}})
        summary = org_run(load_org_config(org.config))
    finally:
        server.stop()
    assert seen == []
    row = {r.repo: r for r in summary.repositories}["acme/internal"]
    assert row.status == "changed"
    assert org.github.read("acme/internal", "deploy/app.yaml") == org.kube(org.digest)
    assert f"127.0.0.1:{port}" in row.reason and "not allowed" in row.reason
    assert row.summary is not None and len(row.summary["skipped"]) == len(_spellings(port))
    assert {r.repo: r.status for r in summary.repositories}["acme/svc-a"] == "changed"


def test_without_an_allow_list_the_same_files_reach_that_host(org: Org) -> None:
    """The control: such a file does reach the server when nothing bounds the hosts."""
    server, seen = _counting()
    try:
        port = int(server.url.rsplit(":", 1)[1])
        org.github.create_repo("acme/internal", {"tagsync.yaml": REPO_CONFIG.encode(),
                                                 "deploy/0.yaml": _quoted(f"127.0.0.1:{port}")})
        org_run(load_org_config(org.config), dry_run=True)
    finally:
        server.stop()
    assert any(" /v2/" in s for s in seen), seen


def test_a_namespace_on_a_host_outside_the_allow_list_is_never_listed(org: Org) -> None:
    server, seen = _counting()
    try:
        host = server.url.removeprefix("http://")
        org.config.write_text(org.config.read_text() + "allowed_registries: []\n")
        org.github.create_repo("acme/kernels", {
            "tagsync.yaml": f"""\
catalogs:
  - name: kernels
    file: images.yml
    entries: .images[*]
    image: "{host}/team/kernel-{{name}}"
    pairs: .tags
    new_tags: true
    policy: {{kind: semver}}
    new_images:
      template: |
        name: ${{name}}
        tags:
          - ["${{tag}}", "${{digest}}"]
""".encode(),
            "images.yml": f'images:\n  - name: python\n    tags:\n      - ["1.0", "{OLD}"]\n'.encode()})
        summary = org_run(load_org_config(org.config))
    finally:
        server.stop()
    assert seen == []
    row = {r.repo: r for r in summary.repositories}["acme/kernels"]
    assert row.status == "unchanged", row.reason
    assert host in row.reason and "not allowed" in row.reason
    assert row.summary is not None
    assert sum(f"does not allow registry host {host}" in w for w in row.summary["warnings"]) == 2


def test_a_child_of_the_fan_out_asks_no_host_outside_the_allow_list(
        org: Org, tmp_path: Path) -> None:
    server, seen = _counting()
    try:
        host = server.url.removeprefix("http://")
        org.config.write_text(org.config.read_text() + "allowed_registries: []\n")
        org.github.create_repo("acme/internal", {
            "tagsync.yaml": REPO_CONFIG.encode(),
            "deploy/app.yaml": KUBE.format(host=host, ns="x", digest=OLD).encode()})
        first = org_run(load_org_config(org.config), answers_only=True)
        known = answers.load(json.loads(json.dumps(answers.dump(first.known))), "answers.json")
        child = org_run(load_org_config(org.config), only=frozenset({"acme/internal"}),
                        known=known)
    finally:
        server.stop()
    assert seen == []
    [row] = child.repositories
    assert row.status == "unchanged" and "not allowed" in row.reason


# --- whatever the files name, the hosts a survey asks are allowed ones ---------------------------


SPELLINGS = ["ghcr.io", "GHCR.IO", "ghcr.io:443", "ghcr.io:5000", "a.example.com",
             "A.Example.COM:443", "a.example.com:5000", "example.com", "x.example.com.evil.io",
             "127.0.0.1:5000", "localhost", "[::1]:5000", "docker.io", "registry-1.docker.io",
             "2130706433", "169.254.169.254"]
ALLOWED = ("ghcr.io", "*.example.com")


@given(st.lists(st.sampled_from(SPELLINGS), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_every_host_a_survey_would_ask_is_allowed_and_every_other_reference_is_said(
        hosts: list[str]) -> None:
    import tempfile

    from tagsync.config import parse_config
    from tagsync.publish.files import FilesPublisher
    from tagsync.run import NOT_ALLOWED, _hosts, read_references

    patterns = [host_pattern(a) for a in ALLOWED]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "deploy").mkdir()
        for i, host in enumerate(hosts):
            (root / "deploy" / f"{i}.yaml").write_bytes(_quoted(host))
        config = parse_config(REPO_CONFIG, str(root / "tagsync.yaml"), root).allowing(patterns)
        read = read_references(config, FilesPublisher(root).snapshot())
    assert all(host_allowed(h, patterns) for h in _hosts(read.refs))
    refused = [n for n in read.refs.notes if n.reason.startswith(NOT_ALLOWED)]
    assert len(refused) == sum(not host_allowed(h, patterns) for h in hosts)
    assert len(read.refs.slots) + len(refused) == len(hosts)
