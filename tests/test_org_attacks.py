"""Organisation mode, attacked: what a repository author (its `tagsync.yaml`, its file names)
or a server (GitHub's listing, a registry, the stored answers) can make tagsync do.

The promises: a repository's config never sends the organisation's credentials anywhere, writes
only to its own repository, and one repository's trouble never stops or corrupts the others;
never a traceback for what a repository author or a server can cause.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.cli import main
from tagsync.errors import ConfigError
from tagsync.org import answers
from tagsync.org.config import load_org_config, parse_org_config, repo_config
from tagsync.org.run import org_run
from tests import test_org_run
from tests.servers.fixtures import serve_json, serve_wsgi
from tests.test_org_run import KUBE, OLD, REPO_CONFIG, Org

org = test_org_run.org  # the fixture: an organisation on the contract server and a registry

ORG = """\
organisation: acme
github: {token: env:T}
registries:
  - host: ghcr.io
    username: bot
    password: env:GHCR
"""
CATALOG = "catalogs: [{name: a, file: x.yaml}]\n"


def _org() -> Any:
    return parse_org_config(ORG, "org.yaml", Path("/org"))


def _load(text: str) -> Any:
    return repo_config(_org(), "acme/svc", "main", text, "acme/svc:tagsync.yaml")


# --- YAML tricks at the trust boundary ---------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    # a merge key brings an org-only key in from an anchor, or inline
    ("base: &b {registries: [{host: ghcr.io, url: 'http://evil'}]}\n<<: *b\n" + CATALOG,
     "registries"),
    ("<<: {registries: [{host: ghcr.io, url: 'http://evil'}]}\n" + CATALOG, "registries"),
    (CATALOG + "github: {<<: {token: 'env:GHCR'}}\n", "github.token"),
    (CATALOG + "github: {<<: [{api_url: 'http://evil'}]}\n", "github.api_url"),
    # a key spelled another way: case, a Cyrillic letter, bytes
    (CATALOG + "Registries: [{host: ghcr.io, url: 'http://evil'}]\n", "Registries"),
    (CATALOG + "github: {Token: 'env:GHCR'}\n", "github.Token"),
    (CATALOG + "registr\u0456es: [{host: ghcr.io, url: 'http://evil'}]\n", "registr\u0456es"),
    (CATALOG + "? !!binary cmVnaXN0cmllcw==\n: [{host: ghcr.io, url: 'http://evil'}]\n",
     "b'registries'"),
    # the fields the loader fills in itself
    (CATALOG + "base_dir: /etc\n", "base_dir"),
    (CATALOG + "config_file: x\n", "config_file"),
    # a key disguised as PEM by a leading blank, a trusted root of the repository's choosing
    ("catalogs:\n  - {name: a, file: x.yaml, pin_digests: true, verify: {key: ' /etc/shadow'}}\n",
     "catalogs.0.verify.key"),
    ("catalogs:\n  - {name: a, file: x.yaml, pin_digests: true,\n"
     "     verify: {identity: me, issuer: 'https://i', trusted_root: /etc/root.json}}\n",
     "catalogs.0.verify.trusted_root"),
])
def test_yaml_tricks_cannot_smuggle_an_organisation_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(text)
    assert caught.value.message.startswith(f"{key}: ")
    assert caught.value.file == "acme/svc:tagsync.yaml"


@pytest.mark.parametrize("text", [
    "catalogs: !!python/object/apply:os.system ['true']\n",
    CATALOG + "github: {mode: push}\ngithub: {token: 'env:X'}\n",  # which one wins is refused
    CATALOG.replace("x.yaml", "../other/x.yaml"),
    CATALOG.replace("x.yaml", "/etc/passwd"),
    "catalogs: [{name: a, files: ['deploy/../../x.yaml']}]\n",
])
def test_yaml_tags_duplicates_and_paths_out_of_the_repository_are_refused(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(text)
    assert caught.value.file == "acme/svc:tagsync.yaml" and caught.value.line is not None


# --- a repository writes only to its own branches ----------------------------------------------


@pytest.mark.parametrize(("github", "key"), [
    ("{branch: '../../../../../acme/victim/git/ref/heads/main'}", "github.branch"),
    ("{branch: 'x/../../../../../../acme/victim/git/ref/heads/main'}", "github.branch"),
    ("{branch: 'refs/heads/main'}", "github.branch"),
    ("{branch: 'main@{1}'}", "github.branch"),
    ("{branch: '/main'}", "github.branch"),
    ("{branch: \"ma\\x1bin\"}", "github.branch"),
    ("{mode: pull-request, pr_branch: '../../x'}", "github.pr_branch"),
    ("{mode: pull-request, pr_branch: 'a/./b'}", "github.pr_branch"),
    ("{mode: pull-request, pr_branch: 'x.lock'}", "github.pr_branch"),
])
def test_a_branch_is_a_git_branch_name_never_a_path(github: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(CATALOG + f"github: {github}\n")
    assert caught.value.message.startswith(f"{key}: ")


def test_ordinary_branch_names_are_kept() -> None:
    config = _load(CATALOG + "github: {branch: release/v1.2_x-y, mode: pull-request, "
                   "pr_branch: tagsync/release-v1.2}\n")
    assert config.github is not None
    assert (config.github.branch, config.github.pr_branch) == ("release/v1.2_x-y",
                                                                "tagsync/release-v1.2")


def test_a_branch_naming_a_path_to_another_repository_reaches_nothing_of_it(org: Org) -> None:
    org.github.create_repo("acme/victim", {"deploy/app.yaml": org.kube()})
    victim = org.github.head("acme/victim")
    org.github.create_repo("acme/attacker", {
        "tagsync.yaml": (REPO_CONFIG + "github:\n  api: rest\n").encode()
        .replace(b"  api: rest\n", b"  branch: ../../../../../acme/victim/git/ref/heads/main\n"),
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/attacker"].status == "failed"
    assert "github.branch" in by_repo["acme/attacker"].reason
    assert by_repo["acme/svc-a"].status == "changed"  # the others ran
    assert org.github.head("acme/victim") == victim
    assert not [h for h in org.github.hits if "/victim" in h.path]


# --- a commit message template is words, never code ---------------------------------------------


@pytest.mark.parametrize("message", ["{0}", "{nope}", "{count.__class__.__mro__}",
                                     "{catalogs[0]}", "{images!r:>{count}}", "{", "}"])
def test_a_message_template_names_only_its_three_fields(message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(CATALOG + f"github: {{message: {json.dumps(message)}}}\n")
    assert caught.value.message.startswith("github.message: ")


def test_a_message_template_that_cannot_be_filled_fails_its_repository_alone(org: Org) -> None:
    org.github.create_repo("acme/aaa-odd", {
        "tagsync.yaml": (REPO_CONFIG + "github:\n  message: 'update {0}'\n").encode(),
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/aaa-odd"].status == "failed"
    assert "github.message" in by_repo["acme/aaa-odd"].reason
    assert by_repo["acme/svc-a"].status == "changed"


# --- a server's listing -------------------------------------------------------------------------




def test_a_listing_keeps_only_the_organisation_s_own_well_named_repositories() -> None:
    from tagsync.org.repos import list_repositories
    from tagsync.publish.github import GitHubApi, StaticToken

    server = serve_json([
        {"full_name": "acme/good", "default_branch": "main"},
        {"full_name": "no-slash", "default_branch": "main"},
        {"full_name": "other/elsewhere", "default_branch": "main"},
        {"full_name": "acme/..", "default_branch": "main"},
        {"full_name": "acme/a/b", "default_branch": "main"},
        {"full_name": "acme/odd-branch", "default_branch": "../../x"},
        {"full_name": "acme/num-branch", "default_branch": 7},
        {"full_name": 3}, "text", None,
    ])
    try:
        api = GitHubApi(server.url, StaticToken("t"), retries=0)
        repos = list_repositories(api, "acme")
    finally:
        server.stop()
    assert [r.full_name for r in repos] == ["acme/good"]


def test_a_hostile_listing_never_stops_the_run_with_a_traceback(
        org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    server = serve_json([{"full_name": "no-slash", "default_branch": "main"}])
    try:
        text = org.config.read_text().replace(org.github.url, server.url)
        org.config.write_text(text)
        code = main(["org", "run", "-c", str(org.config), "--dry-run"])
    finally:
        server.stop()
    assert code in (0, 1, 3)
    assert "Traceback" not in capsys.readouterr().err


# --- what a repository's words become in the operator's terminal and the dashboard ---------------


HOSTILE_KEY = "@acme/everyone <img src=https://evil.example/x.png> [login](https://evil.example) \x1b[2J"


def _hostile_repo(org: Org) -> None:
    org.github.create_repo("acme/loud", {
        "tagsync.yaml": (REPO_CONFIG + json.dumps(HOSTILE_KEY) + ": 1\n").encode()})


def _outside_code(markdown: str) -> str:
    return re.sub(r"`[^`]*`", "", markdown)


def test_a_repository_s_words_in_the_dashboard_mention_link_and_embed_nothing(org: Org) -> None:
    _hostile_repo(org)
    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    org.config.write_text(org.config.read_text() + "dashboard: {repo: acme/ops}\n")
    org_run(load_org_config(org.config))
    [issue] = org.github.repos["acme/ops"].issues
    assert "acme/loud" in issue.body and "everyone" in issue.body  # said, but inert
    bare = _outside_code(issue.body)
    assert "@" not in bare and "<img" not in bare and "](" not in bare
    assert "\x1b" not in issue.body


def test_a_repository_s_words_reach_the_terminal_without_control_characters(
        org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    _hostile_repo(org)
    summary = org_run(load_org_config(org.config), dry_run=True)
    [loud] = [r for r in summary.repositories if r.repo == "acme/loud"]
    assert "\x1b" not in loud.reason and "\\x1b[2J" in loud.reason  # shown, not sent
    assert main(["org", "run", "-c", str(org.config), "--dry-run", "--json"]) == 3
    assert "\x1b" not in json.dumps(json.loads(capsys.readouterr().out), ensure_ascii=False)


# --- stored answers are input like a registry's --------------------------------------------------


def _stored(**digest: Any) -> dict[str, Any]:
    entry = {"image": ["ghcr.io", "acme/app"], "tag": "1.0", "format": "full",
             "platform": None, "value": "sha256:" + "a" * 64, "error": None, **digest}
    return {"version": answers.VERSION, "repos": [], "tags": [], "digests": [entry],
            "ages": [], "verdicts": [], "explained": []}


@pytest.mark.parametrize("digest", [
    {"value": "sha256:" + "a" * 64 + "\n  evil: x"},
    {"value": "sha256:short"},
    {"value": 12},
    {"tag": "1.0\nevil"},
    {"tag": "x" * 200},
    {"image": ["ghcr.io", "Acme/../app"]},
    {"image": "ab"},
    {"image": ["ghcr.io/x y", "acme/app"]},
    {"platform": "linux/amd64\n"},
])
def test_stored_answers_off_the_registries_grammar_are_refused(digest: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="stored registry answers"):
        answers.load(_stored(**digest), "answers.json")


def test_well_formed_stored_answers_load() -> None:
    known = answers.load(_stored(), "answers.json")
    [observation] = known.digests.values()
    assert observation.value == "sha256:" + "a" * 64


def test_a_stored_error_is_a_registry_error_in_a_line_of_printable_words() -> None:
    data = _stored(value=None, error={"kind": "ConfigError", "image": "ghcr.io/acme/app",
                                      "message": "x\x1b[2J" + "y" * 5000})
    known = answers.load(data, "answers.json")
    [observation] = known.digests.values()
    assert observation.error is not None and type(observation.error).__name__ == "RegistryError"
    assert "\x1b" not in observation.error.message and len(observation.error.message) <= 1000


def test_deeply_nested_stored_answers_are_a_usage_error(
        org: Org, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "answers.json"
    bad.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["org", "run", "-c", str(org.config), "--answers", str(bad)]) == 2
    assert "answers" in capsys.readouterr().err


# --- onboarding from hostile file names ---------------------------------------------------------


def test_onboarding_a_repository_with_unwritable_file_names_fails_it_alone(org: Org) -> None:
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.create_repo("acme/aaa-long", {("d" * 300) + "/app.yaml": org.kube(),
                                             "k8s/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config), dry_run=True)
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/aaa-long"].status in ("onboarding", "skipped", "failed")
    assert by_repo["acme/svc-a"].status == "changed"


def test_onboarding_proposes_nothing_a_file_name_injected(org: Org) -> None:
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    evil = "x\nregistries:\n  - host: ghcr.io\n    url: http://evil\n#"
    org.github.create_repo("acme/aaa-names", {f"{evil}/app.yaml": org.kube(),
                                              "k8s/app.yaml": org.kube()})
    org_run(load_org_config(org.config))
    [pr] = org.github.open_pulls("acme/aaa-names")  # proposed from k8s/app.yaml
    if pr:
        proposed = org.github.read("acme/aaa-names", "tagsync.yaml", pr.head).decode()
        config = repo_config(load_org_config(org.config), "acme/aaa-names", "main", proposed, "p")
        assert all(r.url != "http://evil" for r in config.registries)
        assert "evil" not in proposed


# --- one repository's trouble is its own --------------------------------------------------------


def test_an_unexpected_error_in_one_repository_fails_that_repository_alone(
        org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    import tagsync.run

    real = tagsync.run.run

    def buggy(config: Any, **kwargs: Any) -> Any:
        if config.github is not None and config.github.repo == "acme/svc-a":
            raise KeyError("a bug, reached by this repository's files")
        return real(config, **kwargs)

    monkeypatch.setattr(tagsync.run, "run", buggy)
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/svc-a"].status == "failed"
    assert "KeyError" in by_repo["acme/svc-a"].reason
    assert by_repo["acme/svc-b"].status == "changed"
    assert summary.partial


def test_one_repository_asking_for_another_platform_changes_nothing_of_another_s(org: Org) -> None:
    """The shared answers are keyed by everything that shapes them: a repository asking the
    same image and tag another way (a platform, a short digest) gets its own answer."""
    org.github.create_repo("acme/aaa-other", {
        "tagsync.yaml": b"catalogs:\n  - name: deploy\n    files: ['deploy/*.yaml']\n"
                        b"    platform: linux/arm64\n",
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube(org.digest)
    assert {r.repo: r.status for r in summary.repositories}["acme/svc-a"] == "changed"



# --- a foreign registry that points tagsync at a credentialed one --------------------------------


@pytest.mark.parametrize("trick", ["realm", "redirect"])
def test_a_foreign_registry_cannot_borrow_the_organisation_s_credentials(
        org: Org, trick: str) -> None:
    """A repository names an image on a host of its choosing, which answers with a token realm
    on (or a redirect to) the organisation's credentialed registry: that registry never sees the
    organisation's credentials on the foreign host's behalf, and the foreign host never does."""
    credentialed: list[str] = []
    foreign: list[str] = []

    def owned(environ: dict[str, Any], start: Any) -> list[bytes]:
        credentialed.append(environ.get("HTTP_AUTHORIZATION", ""))
        body = b'{"token": "issued-by-the-credentialed-registry"}'
        start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    owner = serve_wsgi(owned)

    def hostile(environ: dict[str, Any], start: Any) -> list[bytes]:
        foreign.append(environ.get("HTTP_AUTHORIZATION", ""))
        if trick == "redirect":
            start("307 Temporary Redirect", [("Location", owner.url + environ["PATH_INFO"]),
                                             ("Content-Length", "0")])
        else:
            start("401 Unauthorized", [
                ("WWW-Authenticate", f'Bearer realm="{owner.url}/token",service="owned",'
                                     'scope="repository:acme/private:pull"'),
                ("Content-Length", "0")])
        return [b""]

    server = serve_wsgi(hostile)
    try:
        host, owned_host = (s.url.removeprefix("http://") for s in (server, owner))
        org.config.write_text(org.config.read_text() + (
            f"  - host: '{owned_host}'\n    url: {owner.url}\n    username: bot\n"
            f"    password: env:TEST_ORG_TOKEN\n  - host: '{host}'\n    url: {server.url}\n"))
        org.github.create_repo("acme/hostile", {
            "tagsync.yaml": REPO_CONFIG.encode(),
            "deploy/app.yaml": KUBE.format(host=host, ns="acme", digest=OLD).encode()})
        summary = org_run(load_org_config(org.config), dry_run=True)
    finally:
        server.stop()
        owner.stop()
    assert foreign
    assert all(not a.startswith("Basic") for a in credentialed)  # asked anonymously, if at all
    # what reaches the foreign host is at most what anyone gets anonymously from that realm
    assert all(not a.startswith("Basic") for a in foreign)
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/hostile"].status in ("partial", "failed")
    assert by_repo["acme/svc-a"].status == "changed"


# --- a reference whose host no URL can be made of ------------------------------------------------


def test_an_image_on_a_host_off_the_grammar_fails_its_repository_alone(org: Org) -> None:
    """A port past 65535, a port that is no number, an empty DNS label: each once stopped the
    whole organisation's run with a traceback (from the URL parser or the resolver)."""
    org.github.create_repo("acme/aaa-hosts", {
        "tagsync.yaml": REPO_CONFIG.encode(),
        **{f"deploy/{i}.yaml": KUBE.format(host=host, ns="x", digest=OLD).encode()
           for i, host in enumerate(["a.b:99999999", "a.b:xx", "a..b", "a.b:0", "x" * 64 + ".io"])}})
    summary = org_run(load_org_config(org.config), dry_run=True)
    by_repo = {r.repo: r for r in summary.repositories}
    hosts = by_repo["acme/aaa-hosts"]
    assert hosts.summary is not None and len(hosts.summary["skipped"]) == 5
    assert "5 skipped" in hosts.reason  # not followed, and said so
    assert by_repo["acme/svc-a"].status == "changed"


@pytest.mark.parametrize("host", ["ghcr.io", "localhost:5000", "127.0.0.1:65535", "[::1]:5000",
                                  "my-registry.example.com", "xn--bcher-kva.example"])
def test_ordinary_registry_hosts_are_hosts(host: str) -> None:
    from tagsync.reference import ImageName

    assert ImageName.parse(f"{host}/acme/app").registry == host


@pytest.mark.parametrize("host", ["a.b:99999999", "a.b:xx", "a..b", "a.b:0", "-a.b", "a_b.c",
                                  "x" * 64 + ".io", "[::1", "a.b%2f"])
def test_a_registry_host_off_the_grammar_is_no_reference(host: str) -> None:
    from tagsync.errors import InvalidReferenceError
    from tagsync.reference import ImageName

    with pytest.raises(InvalidReferenceError):
        ImageName.parse(f"{host}/acme/app")


# --- the fan-out's stored files -------------------------------------------------------------------


def test_a_stored_file_too_large_to_read_whole_is_refused_before_reading(
        org: Org, moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from tagsync.aws import org_handler

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="runs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="runs", Key="run-1/answers.json", Body=b"[" + b"0," * 600 + b"0]")
    monkeypatch.setattr(org_handler, "MAX_STORED", 1000)
    monkeypatch.setenv("TAGSYNC_ORG_CONFIG", str(org.config))
    with pytest.raises(ConfigError, match="over 1000 bytes"):
        org_handler.handle({"tagsync": "org-repo", "bucket": "runs", "repo": "acme/svc-a",
                            "answers": "run-1/answers.json"})
    assert org.github.writes() == []


def test_onboarding_reads_no_file_too_large_for_graphql_to_give_whole(org: Org) -> None:
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    big = org.kube() + b"#" + b"x" * (600 * 1024) + b"\n"
    org.github.create_repo("acme/aaa-big", {"huge/app.yaml": big, "k8s/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert "would propose" in {r.repo: r for r in summary.repositories}["acme/aaa-big"].reason
    assert not [h for h in org.github.hits if h.path.endswith("/contents/huge/app.yaml")
                or (h.path.startswith("/repos/acme/aaa-big/git/blobs/"))]


def test_an_issue_copying_the_dashboard_s_marker_is_never_taken_for_it(org: Org) -> None:
    from tests.servers.github import Issue

    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    org.config.write_text(org.config.read_text() + "dashboard: {repo: acme/ops}\n")
    org_run(load_org_config(org.config))
    [dashboard] = org.github.repos["acme/ops"].issues
    for state in ("open", "closed"):  # someone copies the marker into a later issue
        copy = Issue(1000 + len(state), "look here", dashboard.body + "\n[login](https://evil)\n")
        copy.state = state
        org.github.repos["acme/ops"].issues.append(copy)
    org.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs: 3\n"})
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard == f"dashboard acme/ops#{dashboard.number} updated"
    assert "acme/broken" in dashboard.body
    assert all("acme/broken" not in i.body for i in org.github.repos["acme/ops"].issues
               if i is not dashboard)


# --- a repository's file globs are matched in time linear in the path ------------------------------


def test_file_globs_written_to_backtrack_match_at_once() -> None:
    """`**/` ten times over, `*a` ten times over: each took the regular expression seconds to
    hours on one path, and a repository's config names its globs."""
    from tagsync.find.globs import matches, select

    deep = "/".join(["a"] * 200) + "/y.yaml"
    assert not matches("/".join(["**"] * 30) + "/x.yaml", deep)
    assert matches("/".join(["**"] * 30) + "/y.yaml", deep)
    assert not matches("*a" * 30 + "*b.yaml", "a" * 250 + ".yaml")
    chosen, _ = select(["*a" * 30 + "*b.yaml"], [f"{'a' * 200}{i}.yaml" for i in range(500)])
    assert chosen == []


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")  # `[` in a class
@given(st.text(alphabet="ab/*?[]!.\n", max_size=10), st.text(alphabet="ab/.\n", max_size=12))
@settings(max_examples=3000, deadline=None)
def test_the_linear_glob_matcher_reads_patterns_as_their_regular_expression(
        pattern: str, path: str) -> None:
    from tagsync.find import globs
    from tagsync.find.globs import _regex

    def matches(pattern: str, path: str) -> bool:  # the linear walk, whatever the stars
        fast, globs.FAST_STARS = globs.FAST_STARS, -1
        try:
            return globs.matches(pattern, path)
        finally:
            globs.FAST_STARS = fast

    if "[]" in pattern or "[!]" in pattern:  # an empty class: `[` is a plain character now
        matches(pattern, path)  # (the regular expression read on into what followed)
        return
    try:
        expected = _regex(pattern).fullmatch(path) is not None
    except re.error:  # a class no regular expression reads: `[` is a plain character now
        matches(pattern, path)
        return
    assert matches(pattern, path) == expected


# --- a repository's regular expressions (tagsync.patterns) --------------------------------------

BACKTRACKS = r"^(a|a)*(\d+)$"  # exponential on a tag made for it
BAIT = "a" * 60 + "-"


def _with_policy(policy: str) -> bytes:
    return (REPO_CONFIG + f"    policy: {policy}\n").encode()


def test_a_repository_s_backtracking_tag_pattern_fails_that_repository_alone(org: Org) -> None:
    """A repository's `policy.include` written to backtrack, meeting a tag made for it: that
    repository fails with the key and the pattern in its row; the others are planned and
    published; nothing of the hostile one is written."""
    org.registry.upstream.push(f"{org.ns}/app", BAIT, f"{org.ns} bait")
    org.github.create_repo("acme/hostile", {
        "tagsync.yaml": _with_policy("{kind: regex, include: '" + BACKTRACKS + "'}"),
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    hostile = by_repo["acme/hostile"]
    assert hostile.status == "failed"
    assert hostile.config == "tagsync.yaml"
    assert "catalog deploy: policy.include " in hostile.reason and "(a|a)*" in hostile.reason
    assert "backtracks" in hostile.reason
    assert org.github.read("acme/hostile", "deploy/app.yaml") == org.kube()
    assert by_repo["acme/svc-a"].status == "changed"
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube(org.digest)
    assert by_repo["acme/svc-b"].status == "changed"
    assert summary.partial


def test_one_repository_s_patterns_never_spend_another_s_budget(
        org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each repository's patterns have their own CPU budget: the hostile one spends all of its
    own (one match is the whole budget here), and a later repository's ordinary regex policy
    still chooses its tag."""
    from tagsync import patterns

    monkeypatch.setattr(patterns, "RUN_SECONDS", 0.05)
    monkeypatch.setattr(patterns, "MATCH_SECONDS", 0.05)
    org.registry.upstream.push(f"{org.ns}/app", BAIT, f"{org.ns} bait")
    org.github.create_repo("acme/a-hostile", {
        "tagsync.yaml": _with_policy("{kind: regex, include: '" + BACKTRACKS + "'}"),
        "deploy/app.yaml": org.kube()})
    org.github.create_repo("acme/z-ordinary", {
        "tagsync.yaml": _with_policy("{kind: regex, include: '(\\d+)\\.(\\d+)'}"),
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/a-hostile"].status == "failed"
    assert by_repo["acme/z-ordinary"].status == "changed", by_repo["acme/z-ordinary"].reason
    assert org.github.read("acme/z-ordinary", "deploy/app.yaml") == org.kube(org.digest)


def test_the_organisation_s_cli_reports_the_hostile_pattern_and_exits_3(
        org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    org.registry.upstream.push(f"{org.ns}/app", BAIT, f"{org.ns} bait")
    org.github.create_repo("acme/hostile", {
        "tagsync.yaml": _with_policy("{kind: semver, exclude: '" + BACKTRACKS + "'}"),
        "deploy/app.yaml": org.kube()})
    assert main(["org", "run", "-c", str(org.config), "--dry-run", "--json"]) == 3
    rows = {r["repo"]: r for r in json.loads(capsys.readouterr().out)["repositories"]}
    assert rows["acme/hostile"]["status"] == "failed"
    assert "policy.exclude" in rows["acme/hostile"]["reason"]
    assert rows["acme/svc-a"]["status"] == "changed"


def test_a_log_line_quoting_a_repository_s_words_sends_no_escape_sequence() -> None:
    import logging

    from tagsync.http_policy import RedactingFilter

    record = logging.LogRecord("tagsync.org", logging.WARNING, __file__, 1,
                               "onboarding %s: %s", ("acme/x", "deploy/\x1b[2J\u202e.yaml\nnext"),
                               None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "onboarding acme/x: deploy/\\x1b[2J\\u202e.yaml\nnext"
