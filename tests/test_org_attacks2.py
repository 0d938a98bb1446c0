"""Organisation mode, attacked again by a fresh adversary (the first review: test_org_attacks.py).

Who attacks: a repository's author (its `tagsync.yaml`, its file names, its branches), an image's
publisher (its labels), a server that lies (GitHub's listing, its GraphQL answers), whoever can
write the fan-out's S3 bucket, and a second run or a person acting at the same moment.

The promises: tagsync writes only to the repository a config came from, never loses a person's
work, one repository's trouble is that repository's alone (never the run's, never a traceback),
and words from outside reach the dashboard and the pull requests inert (no mention, link, image)
and the terminal without control characters.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tagsync.org.config import load_org_config
from tagsync.org.run import org_run
from tests import test_org_run
from tests.servers.fixtures import commit_entries, serve_json, serve_wsgi
from tests.test_org_run import REPO_CONFIG, Org

org = test_org_run.org  # the fixture: an organisation on the contract server and a registry

LOUD = "@acme/everyone <img src=https://evil.example/x.png> [login](https://evil.example) #1"


def _outside_code(markdown: str) -> str:
    """What GitHub renders as Markdown: everything but code spans."""
    return re.sub(r"`[^`\n]*`", "", markdown)


def _inert(markdown: str) -> bool:
    bare = _outside_code(markdown)
    return ("@acme" not in bare and "<img" not in bare and "](https://evil" not in bare
            and "#1" not in bare)


def _api(org: Org) -> Any:
    from tagsync.org.run import org_api

    return org_api(load_org_config(org.config))


# --- an image's words in every repository's pull request -------------------------------------------


def test_an_image_s_labels_in_a_pull_request_mention_link_and_embed_nothing() -> None:
    """An image's labels are its publisher's words: in organisation mode the same bump is
    proposed to hundreds of repositories, so a `version` label naming `@acme/everyone` would
    notify the whole organisation once per pull request."""
    from tagsync.explain import Provenance, describe
    from tagsync.plan import Change
    from tagsync.publish.github import pr_body

    claims = describe(None, Provenance(version=LOUD))
    assert claims is not None and LOUD in claims  # the label reaches the change as it is
    change = Change("app", "pod.yaml", 0, ".spec.containers[0].image", 5, "ghcr.io/acme/web",
                    "1.4", "ghcr.io/acme/web:1.4@sha256:" + "a" * 64,
                    "ghcr.io/acme/web:1.4@sha256:" + "b" * 64, "digest changed",
                    why="signed by ci@acme.example", claims=claims)
    body = pr_body([change], "tagsync/main/app")
    assert "everyone" in body  # said, but inert
    assert _inert(body)


def test_plain_explanations_stay_plain_in_the_pull_request() -> None:
    from tagsync.plan import Change
    from tagsync.publish.github import pr_body

    claims = "version 1.4.3; changes https://github.com/acme/web/compare/aaa111...bbb222; built 3h ago"
    change = Change("app", "pod.yaml", 0, ".spec.containers[0].image", 5, "ghcr.io/acme/web",
                    "1.4", "ghcr.io/acme/web:1.4@sha256:" + "a" * 64,
                    "ghcr.io/acme/web:1.4@sha256:" + "b" * 64, "digest changed", claims=claims)
    body = pr_body([change], "tagsync/main/app")
    assert f"| pod.yaml:5 | claimed by the image's labels (not verified): {claims} |" in body


# --- the dashboard --------------------------------------------------------------------------------


def test_a_state_read_back_from_storage_says_nothing_active_in_the_dashboard() -> None:
    """The summary step reads each child's row back from S3 (ResultWriter's files): a state
    that is not one of tagsync's is shown inert, in the counts line as in the table."""
    from tagsync.org.dashboard import render

    text = render("acme", [{"repo": "acme/x", "status": LOUD, "reason": "r"},
                           {"repo": "acme/y", "status": "changed", "reason": "1 changed"}])
    assert "everyone" in text and _inert(text)


def test_a_row_quoting_another_organisation_s_marker_never_makes_this_dashboard_theirs(
        org: Org) -> None:
    """Two organisations keep their dashboards in one repository; a repository of the first
    names a key that is the second's marker, which its row quotes: the second's run must not
    take (and overwrite) the first's dashboard."""
    from tagsync.org.dashboard import marker, render, update_issue

    api = _api(org)
    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    rows = [{"repo": "acme/loud", "status": "failed",
             "reason": f"acme/loud:tagsync.yaml:4:1: {marker('beta')}: a repository's config "
                       "may not set this"}]
    assert update_issue(api, "acme/ops", "acme", render("acme", rows), "acme").endswith("opened")
    [acme] = org.github.repos["acme/ops"].issues
    before = acme.body
    assert update_issue(api, "acme/ops", "beta", render("beta", []), "beta").endswith("opened")
    assert acme.body == before
    assert len(org.github.repos["acme/ops"].issues) == 2


# --- GitHub's listing -------------------------------------------------------------------------------




def test_a_repository_listed_twice_is_run_once() -> None:
    """GitHub's listing is paged by offset: a repository created while it is read shifts the
    next page, and one already listed comes again. Run twice, the same repository would be
    published twice (two Step Functions children racing on it); names are case-insensitive."""
    from tagsync.org.repos import list_repositories
    from tagsync.publish.github import GitHubApi, StaticToken

    server = serve_json([{"full_name": "acme/svc", "default_branch": "main"},
                       {"full_name": "acme/other", "default_branch": "main"},
                       {"full_name": "acme/svc", "default_branch": "main"},
                       {"full_name": "acme/SVC", "default_branch": "main"}])
    try:
        repos = list_repositories(GitHubApi(server.url, StaticToken("t"), retries=0), "acme")
    finally:
        server.stop()
    assert [r.full_name for r in repos] == ["acme/other", "acme/svc"]


# --- the fan-out's Map items and stored files ---------------------------------------------------------


BUCKET = "runs"


@pytest.fixture
def steps(org: Org, moto: Any, monkeypatch: pytest.MonkeyPatch) -> Org:
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("TAGSYNC_ORG_CONFIG", str(org.config))
    return org


@pytest.mark.parametrize("repo", ["acme/legacy-x", "other/elsewhere", "acme/svc-a/../legacy-x",
                                  "acme/LEGACY-X", "acme/svc-a\n"])
def test_a_map_item_naming_a_repository_outside_the_selection_writes_nothing(
        steps: Org, repo: str) -> None:
    """Whoever writes the bucket can add an item to the Map's list: the child runs only a
    repository the organisation's own selection holds."""
    from tagsync.aws import org_handler

    steps.github.create_repo("other/elsewhere", {"tagsync.yaml": REPO_CONFIG.encode(),
                                                 "deploy/app.yaml": steps.kube()})
    out = org_handler.handle({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"})
    row = org_handler.handle({"tagsync": "org-repo", "bucket": BUCKET, "repo": repo,
                              "item": {"repo": repo, "branch": "main", "config": "tagsync.yaml"},
                              "answers": out["answers"]})
    assert row["status"] == "failed" and "refused" in row["reason"]  # a tampered item
    assert steps.github.writes() == []


def test_stored_answers_changed_after_discovery_are_refused_by_the_child(steps: Org) -> None:
    """The answers file is in S3, the list of what to run and the key in the execution's
    state: answers written to the bucket after Discover (a digest of the writer's choosing for
    every repository) are not the ones Discover stored, and a child refuses them."""
    import boto3

    from tagsync.aws import org_handler
    from tagsync.errors import ConfigError

    out = org_handler.handle({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"})
    s3 = boto3.client("s3")
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=out["answers"])["Body"].read())
    evil = "sha256:" + "e" * 64
    for d in stored["digests"]:
        d["value"] = evil
    s3.put_object(Bucket=BUCKET, Key=out["answers"], Body=json.dumps(stored).encode())
    item = {"tagsync": "org-repo", "bucket": BUCKET, "repo": "acme/svc-a",
            "answers": out["answers"], "answers_sha256": out["answers_sha256"]}
    with pytest.raises(ConfigError, match="changed since"):
        org_handler.handle(item)
    assert steps.github.writes() == []
    assert evil.encode() not in steps.github.read("acme/svc-a", "deploy/app.yaml")


def test_the_map_hands_each_child_the_answers_digest() -> None:
    from tagsync.org.statemachine import definition

    doc = definition("arn:aws:lambda:eu-west-1:123456789012:function:f:live", BUCKET)
    discover = doc["States"]["Discover"]["ResultSelector"]
    assert discover["answers_sha256.$"] == "$.Payload.answers_sha256"
    item = doc["States"]["Repositories"]["ItemSelector"]
    assert item["answers_sha256.$"] == "$.discovered.answers_sha256"


# --- a repository's files, too large or absent -------------------------------------------------------


def test_a_config_too_large_to_load_is_never_read_whole(org: Org) -> None:
    """A `tagsync.yaml` of 100 MB would be read into the run's memory (GraphQL truncates it,
    REST gives it through the blob API) before the loader refused it for size: a few such
    repositories stop a Lambda's whole run. Its size is known before it is read."""
    org.github.create_repo("acme/aaa-huge", {
        "tagsync.yaml": REPO_CONFIG.encode() + b"#" + b"x" * (4_300_000) + b"\n",
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config), dry_run=True)
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/aaa-huge"].status == "failed"
    assert "limit" in by_repo["acme/aaa-huge"].reason
    assert not [h for h in org.github.hits if h.path.startswith("/repos/acme/aaa-huge/git/blobs/")]
    assert by_repo["acme/svc-a"].status == "changed"


def test_an_empty_repository_is_skipped_not_failed_even_with_onboarding(org: Org) -> None:
    """A repository just created has no commit and no branch: nothing to keep in step, nothing
    to propose. As a failure, it would fail every run (exit 3, a failed execution) until
    someone pushed to it."""
    from dulwich.repo import MemoryRepo

    from tests.servers.github import Repository

    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.repos["acme/aaa-empty"] = Repository("acme/aaa-empty", MemoryRepo())
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/aaa-empty"].status == "skipped"
    assert "empty" in by_repo["acme/aaa-empty"].reason
    assert org.github.repos["acme/aaa-empty"].pulls == []


def test_the_contract_server_answers_409_for_an_empty_repository_s_branch(org: Org) -> None:
    """As GitHub documents (and does): a repository with no commit has no ref to read."""
    from dulwich.repo import MemoryRepo

    from tagsync.errors import PublishError
    from tests.servers.github import Repository

    org.github.repos["acme/aaa-empty"] = Repository("acme/aaa-empty", MemoryRepo())
    with pytest.raises(PublishError, match="409 Git Repository is empty"):
        _api(org).request("GET", "/repos/acme/aaa-empty/git/ref/heads/main", "reading")


# --- a repository's words, too many of them ------------------------------------------------------------


def test_a_repository_s_words_in_its_row_are_bounded(
        org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    """A key of 300,000 characters (or as many control characters, each shown as an escape)
    would be quoted whole in the row, the `--json` summary and every log of it."""
    from tagsync.cli import main

    org.github.create_repo("acme/aaa-long", {
        "tagsync.yaml": (REPO_CONFIG + "? " + json.dumps("\x1b" * 100_000 + "k" * 100_000)
                         + "\n: 1\n").encode()})
    summary = org_run(load_org_config(org.config), dry_run=True)
    [row] = [r for r in summary.repositories if r.repo == "acme/aaa-long"]
    assert row.status == "failed" and "acme/aaa-long:tagsync.yaml" in row.reason
    assert len(row.reason) <= 2000
    assert main(["org", "run", "-c", str(org.config), "--dry-run", "--json"]) == 3
    assert len(capsys.readouterr().out) < 100_000


# --- two runs, or a run and a person, at the same moment ---------------------------------------------


def test_two_organisation_runs_racing_on_the_same_repositories_lose_nothing(org: Org) -> None:
    """Two runs (a scheduled one and a person's `tagsync org run`) read every repository before
    either writes: one commit and one pull request land, the other run finds them and changes
    nothing, and neither fails."""
    org.github.hold_writes(2)
    results: list[Any] = []

    def one() -> None:
        results.append(org_run(load_org_config(org.config)))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube(org.digest)
    assert len(org.github.open_pulls("acme/svc-b")) == 1
    for summary in results:
        statuses = {r.repo: r.status for r in summary.repositories}
        assert statuses["acme/svc-a"] in ("changed", "unchanged")
        assert statuses["acme/svc-b"] in ("changed", "unchanged")


def test_two_runs_onboarding_the_same_repository_open_one_pull_request(org: Org) -> None:
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.create_repo("acme/aaa-new", {"k8s/app.yaml": org.kube()})
    org.github.hold_writes(2)
    results: list[Any] = []

    def one() -> None:
        results.append(org_run(load_org_config(org.config), only=frozenset({"acme/aaa-new"})))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2
    assert len(org.github.repos["acme/aaa-new"].pulls) == 1
    assert org.github.read("acme/aaa-new", "k8s/app.yaml") == org.kube()


def test_onboarding_racing_a_person_s_config_never_leaves_it_ignored(org: Org) -> None:
    """A person adds `.github/tagsync.yaml` while the run is between reading configs and
    proposing one. Once the (now stale) proposal is merged too, the repository holds two
    configs: the proposed `tagsync.yaml` must not silently win over the person's."""
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.create_repo("acme/aaa-new", {"deploy/app.yaml": org.kube()})
    own = (REPO_CONFIG + "github:\n  mode: pull-request\n").encode()

    def person(method: str, template: str) -> None:
        org.github.commit_directly("acme/aaa-new", {".github/tagsync.yaml": own}, "add config")

    org.github.before_write = person
    org_run(load_org_config(org.config), only=frozenset({"acme/aaa-new"}))
    [row] = org_run(load_org_config(org.config), only=frozenset({"acme/aaa-new"}),
                    dry_run=True).repositories
    assert row.config == ".github/tagsync.yaml"  # the person's config is the one that runs
    [pr] = org.github.open_pulls("acme/aaa-new")  # the proposal, made from what was read
    proposed = org.github.read("acme/aaa-new", "tagsync.yaml", pr.head)
    # a person merges it (the contract server's merge takes the head's tree whole: the
    # merge's result, both configs, is committed as it would be)
    org.github.commit_directly("acme/aaa-new", {"tagsync.yaml": proposed}, "Merge #1")
    [row] = org_run(load_org_config(org.config), only=frozenset({"acme/aaa-new"}),
                    dry_run=True).repositories
    assert row.status == "failed" and ".github/tagsync.yaml" in row.reason


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_repository_with_two_configs_fails_naming_both(org: Org, api: str) -> None:
    """`tagsync.yaml` and `.github/tagsync.yaml` both there (an onboarding PR merged after a
    person added the other): which one runs is not guessed; the row says to keep one."""
    org.config.write_text(org.config.read_text().replace("github:\n", f"github:\n  api: {api}\n"))
    org.github.create_repo("acme/aaa-two", {
        "tagsync.yaml": REPO_CONFIG.encode(),
        ".github/tagsync.yaml": (REPO_CONFIG + "github:\n  mode: pull-request\n").encode(),
        "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config), dry_run=True)
    [row] = [r for r in summary.repositories if r.repo == "acme/aaa-two"]
    assert row.status == "failed"
    assert "tagsync.yaml" in row.reason and ".github/tagsync.yaml" in row.reason


# --- a repository's branches ----------------------------------------------------------------------------


def test_a_pr_branch_naming_a_person_s_branch_never_overwrites_it(org: Org) -> None:
    """`pr_branch: release` names a branch a person works on: tagsync's pull requests never
    take it over (its commits are not tagsync's)."""
    org.github.create_repo("acme/aaa-rel", {
        "tagsync.yaml": (REPO_CONFIG + "github:\n  mode: pull-request\n  pr_branch: release\n"
                         ).encode(),
        "deploy/app.yaml": org.kube()})
    org.github.commit_directly("acme/aaa-rel", {"notes.md": b"mine\n"}, "a person's work",
                               branch="release")
    before = org.github.head("acme/aaa-rel", "release")
    summary = org_run(load_org_config(org.config))
    assert org.github.head("acme/aaa-rel", "release") == before
    assert org.github.repos["acme/aaa-rel"].pulls == []
    assert {r.repo: r.status for r in summary.repositories}["acme/aaa-rel"] == "failed"


# --- the token sees more than the selection -------------------------------------------------------------


def test_a_token_that_sees_more_repositories_writes_only_to_the_selected_ones(org: Org) -> None:
    """The token reaches `acme/legacy-x` (excluded) and another organisation's repository:
    neither is read for a config nor written, whatever the selected repositories' configs say."""
    org.github.create_repo("other/thing", {"tagsync.yaml": REPO_CONFIG.encode(),
                                           "deploy/app.yaml": org.kube()})
    org_run(load_org_config(org.config))
    touched = {h.path.split("/")[2] + "/" + h.path.split("/")[3] for h in org.github.hits
               if h.path.startswith("/repos/")}
    assert "acme/legacy-x" not in touched and "other/thing" not in touched
    assert org.github.read("acme/legacy-x", "deploy/app.yaml") == org.kube()


# --- a lying GraphQL answer ----------------------------------------------------------------------------


def test_a_graphql_answer_giving_one_repository_another_s_config_is_not_believed(org: Org) -> None:
    """GraphQL answers every repository of a batch under an alias: an answer whose aliases are
    swapped (a proxy, a bug) would run one repository with another's config. Each node says
    which repository it is, and one that is not the one asked is read again over REST."""
    upstream = org.github

    def lying(environ: dict[str, Any], start: Any) -> list[bytes]:
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]]) -> None:
            captured["status"], captured["headers"] = status, headers

        body = b"".join(upstream(environ, keep))
        if environ.get("PATH_INFO") == "/graphql":
            data = json.loads(body)
            nodes = (data.get("data") or {})
            if "r0" in nodes and "r1" in nodes:
                nodes["r0"], nodes["r1"] = nodes["r1"], nodes["r0"]
                body = json.dumps(data).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    proxy = serve_wsgi(lying)
    try:
        org.github.create_repo("acme/aaa-first", {
            "tagsync.yaml": (REPO_CONFIG + "github:\n  branch: nowhere\n").encode(),
            "deploy/app.yaml": org.kube()})
        org.config.write_text(org.config.read_text().replace(org.github.url, proxy.url))
        summary = org_run(load_org_config(org.config), dry_run=True)
    finally:
        proxy.stop()
    configs = {r.repo: r.config for r in summary.repositories}
    statuses = {r.repo: r.status for r in summary.repositories}
    assert statuses["acme/svc-a"] == "changed" and configs["acme/svc-a"] == "tagsync.yaml"
    assert statuses["acme/svc-b"] == "changed" and configs["acme/svc-b"] == ".github/tagsync.yaml"
    assert statuses["acme/aaa-first"] == "failed"  # its own branch `nowhere`, not another's





# --- asked for a repository the run does not hold ------------------------------------------------------


@pytest.mark.parametrize(("name", "why"), [("acme/legacy-x", "excluded"),
                                           ("acme/nothing-here", "not listed")])
def test_a_repository_asked_for_by_name_but_not_run_is_said(
        org: Org, name: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--repo acme/typo` (or a Map item for a repository deleted since Discover): never a
    silent success, the row says why nothing ran."""
    from tagsync.cli import main

    summary = org_run(load_org_config(org.config), only=frozenset({name}))
    [row] = summary.repositories
    assert (row.repo, row.status) == (name, "skipped") and why in row.reason
    assert org.github.writes() == []
    main(["org", "run", "-c", str(org.config), "--repo", name])
    assert name in capsys.readouterr().out


def _discovered(steps: Org) -> dict[str, Any]:
    from tagsync.aws import org_handler

    out = org_handler.handle({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"})
    return out


def _summary_event(out: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tagsync": "org-summary", "bucket": BUCKET, "selection": out["selection"],
            "selection_sha256": out["selection_sha256"], "repositories": out["repositories"],
            "repositories_sha256": out["repositories_sha256"], **extra}


def test_a_selection_changed_in_the_bucket_is_refused_by_the_summary(steps: Org) -> None:
    """Discover's own rows (a broken config, failed) are in the bucket: rewritten as skipped
    they would hide a failure from the summary, the dashboard and the execution's outcome."""
    import boto3

    from tagsync.aws import org_handler
    from tagsync.errors import ConfigError

    steps.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs: 3\n"})
    out = _discovered(steps)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=out["selection"], Body=json.dumps(
        [{"repo": "acme/broken", "status": "skipped", "reason": "fine"}]).encode())
    with pytest.raises(ConfigError, match="changed since"):
        org_handler.handle(_summary_event(out))


def test_a_repository_handed_to_the_map_without_a_result_is_failed_in_the_summary(
        steps: Org) -> None:
    """A child's result lost (or its file removed from the bucket): the summary never counts
    the run as a success without it."""
    import boto3

    from tagsync.aws import org_handler

    out = _discovered(steps)
    s3 = boto3.client("s3")
    ok = {"Status": "SUCCEEDED", "Input": json.dumps({"repo": "acme/svc-a"}),
          "Output": json.dumps({"repo": "acme/svc-a", "status": "changed", "reason": "1 changed"})}
    s3.put_object(Bucket=BUCKET, Key="run-1/results/x/SUCCEEDED_0.json", Body=json.dumps([ok]))
    s3.put_object(Bucket=BUCKET, Key="run-1/results/x/manifest.json", Body=json.dumps({
        "DestinationBucket": BUCKET, "ResultFiles": {
            "SUCCEEDED": [{"Key": "run-1/results/x/SUCCEEDED_0.json", "Size": 1}]}}))
    result = org_handler.handle(_summary_event(out, written={"ResultWriterDetails": {
        "Bucket": BUCKET, "Key": "run-1/results/x/manifest.json"}}))
    assert result["status"] == "partial"
    statuses = {r["repo"]: r["status"] for r in result["repositories"]}
    assert statuses == {"acme/no-config": "skipped", "acme/svc-a": "changed",
                        "acme/svc-b": "failed"}


def test_the_summary_is_handed_what_discover_stored_and_its_digests() -> None:
    from tagsync.org.statemachine import definition

    doc = definition("arn:aws:lambda:eu-west-1:123456789012:function:f:live", BUCKET)
    payload = doc["States"]["Summary"]["Parameters"]["Payload"]
    for key in ("selection", "selection_sha256", "repositories", "repositories_sha256"):
        assert payload[f"{key}.$"] == f"$.discovered.{key}"


def test_a_person_s_commit_landing_between_the_organisation_s_read_and_its_write_is_kept(
        org: Org) -> None:
    """Organisation mode reads every repository first, asks the registries, then writes: the
    window for a person's push is the whole registry round. Their commit is kept, and
    tagsync's change is made on top of it."""
    mine = org.kube() + b"# a person's line\n"

    def person(method: str, template: str) -> None:
        org.github.commit_directly("acme/svc-a", {"notes.md": b"mine\n",
                                                  "deploy/app.yaml": mine})

    org.github.before_write = person
    summary = org_run(load_org_config(org.config))
    assert {r.repo: r.status for r in summary.repositories}["acme/svc-a"] == "changed"
    assert org.github.read("acme/svc-a", "notes.md") == b"mine\n"
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube(org.digest) + (
        b"# a person's line\n")


def test_onboarding_never_takes_a_person_s_branch_of_the_same_name(org: Org) -> None:
    """A person works on a branch that happens to be called `tagsync/onboarding` (no pull
    request): the proposal never overwrites it, and the row says so rather than 'proposed'."""
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.create_repo("acme/aaa-new", {"k8s/app.yaml": org.kube()})
    org.github.commit_directly("acme/aaa-new", {"notes.md": b"mine\n"}, "a person's work",
                               branch="tagsync/onboarding")
    before = org.github.head("acme/aaa-new", "tagsync/onboarding")
    summary = org_run(load_org_config(org.config), only=frozenset({"acme/aaa-new"}))
    assert org.github.head("acme/aaa-new", "tagsync/onboarding") == before
    [row] = summary.repositories
    assert row.status == "failed" and "did not make" in row.reason
    assert org.github.repos["acme/aaa-new"].pulls == []


# --- the selection, as GitHub spells names ------------------------------------------------------------


def test_an_exclusion_holds_whatever_the_case_of_the_repository_s_name(org: Org) -> None:
    """GitHub's names are case-insensitive (`acme/Legacy-pay` is `acme/legacy-pay`): a
    repository created as `Legacy-pay` is still one the organisation excluded with `legacy-*`."""
    org.github.create_repo("acme/Legacy-pay", {"tagsync.yaml": REPO_CONFIG.encode(),
                                               "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    assert "acme/Legacy-pay" not in {r.repo for r in summary.repositories}
    assert org.github.read("acme/Legacy-pay", "deploy/app.yaml") == org.kube()


# --- a repository archived while the run reads it --------------------------------------------------------


def test_the_contract_server_refuses_writes_to_an_archived_repository(org: Org) -> None:
    from tagsync.errors import PublishError

    org.github.repos["acme/svc-a"].archived = True
    with pytest.raises(PublishError, match="archived so is read-only"):
        _api(org).request("POST", "/repos/acme/svc-a/issues", "opening an issue",
                          json={"title": "x"})


def test_a_repository_archived_during_the_run_fails_alone_and_is_not_written(org: Org) -> None:
    def archive(method: str, template: str) -> None:
        org.github.repos["acme/svc-a"].archived = True

    org.github.before_write = archive
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/svc-a"].status == "failed"
    assert "archived" in by_repo["acme/svc-a"].reason
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube()
    assert by_repo["acme/svc-b"].status == "changed"


# --- a fork's config was written by someone outside the organisation ----------------------------------


def test_a_fork_is_skipped_unless_the_organisation_runs_forks(org: Org) -> None:
    """A fork's `tagsync.yaml` came from upstream, written by people outside the organisation:
    run with the organisation's registry credentials, it could list a private namespace
    (`new_images`) and commit what it found into a public fork. Forks run only when the
    organisation says so."""
    org.github.create_repo("acme/upstream-fork", {"tagsync.yaml": REPO_CONFIG.encode(),
                                                  "deploy/app.yaml": org.kube()})
    org.github.repos["acme/upstream-fork"].fork = True
    summary = org_run(load_org_config(org.config))
    row = {r.repo: r for r in summary.repositories}["acme/upstream-fork"]
    assert row.status == "skipped" and "fork" in row.reason
    assert org.github.read("acme/upstream-fork", "deploy/app.yaml") == org.kube()
    org.config.write_text(org.config.read_text().replace(
        "repositories:\n", "repositories:\n  forks: true\n"))
    summary = org_run(load_org_config(org.config))
    assert {r.repo: r.status for r in summary.repositories}["acme/upstream-fork"] == "changed"


# --- a dashboard for thousands of repositories ---------------------------------------------------------


def test_the_contract_server_refuses_an_issue_body_past_github_s_limit(org: Org) -> None:
    from tagsync.errors import PublishError

    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    with pytest.raises(PublishError, match="body is too long"):
        _api(org).request("POST", "/repos/acme/ops/issues", "opening an issue",
                          json={"title": "x", "body": "x" * 65537})


def test_a_dashboard_for_thousands_of_repositories_fits_in_an_issue(org: Org) -> None:
    """GitHub refuses an issue body over 65,536 characters: a row per repository (300
    characters of reason each, at most) stopped the dashboard from updating once the
    organisation passed a few hundred repositories. The failures come first, and the rest
    is counted."""
    from tagsync.org.dashboard import render, update_issue

    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    rows = [{"repo": f"acme/svc-{i:04d}", "status": "changed" if i % 3 else "failed",
             "reason": f"{'x' * 250} {i}"} for i in range(1000)]
    text = render("acme", rows)
    assert update_issue(_api(org), "acme/ops", "acme", text, "t").endswith("opened")
    [issue] = org.github.repos["acme/ops"].issues
    assert "| acme/svc-0000 | **failed** |" in issue.body  # failures first
    shown = issue.body.count("| acme/svc-")
    assert f"{1000 - shown} more repositories are not shown" in issue.body
    assert "Last run" in issue.body and "334 failed" in issue.body  # the counts cover all
    assert render("acme", rows, limit=None).count("| acme/svc-") == 1000  # `--markdown FILE`


# --- an image's labels in every repository's commit -----------------------------------------------------


@pytest.mark.parametrize("labels", [
    {"org.opencontainers.image.version": "1.0 fixes #1"},
    {"org.opencontainers.image.version": "1.0, closes acme/security#42"},
    {"org.opencontainers.image.version": "@acme/everyone"},
    {"org.opencontainers.image.source": "https://git.example.com/x",
     "org.opencontainers.image.revision": "fixes #1"},
    {"org.opencontainers.image.source": "https://git.example.com/x fixes #1"},
    {"org.opencontainers.image.source": "https://git.example.com/x#1"},
])
def test_an_image_s_labels_never_close_or_reference_issues_from_a_commit(
        labels: dict[str, str]) -> None:
    """A commit's message carries the bump's explanation, made from the image's labels; pushed
    to a default branch, `fixes #1` in it closes issue #1 (`closes acme/security#42`, another
    repository's). In organisation mode one image's label would close an issue in every
    repository that uses the image. A label says a version, a revision, a source URL: in
    their grammar, or nothing."""
    from tagsync.explain import _provenance, describe

    line = describe(None, _provenance({}, labels)) or ""
    assert "#" not in line and "@" not in line
    assert not re.search(r"\b(close|fix|resolve)[sd]?\b", line, re.IGNORECASE), line


def test_ordinary_labels_still_explain() -> None:
    from tagsync.explain import _provenance, describe

    prov = _provenance({}, {"org.opencontainers.image.version": "1.4.3+build.7",
                            "org.opencontainers.image.source": "https://github.com/acme/web.git",
                            "org.opencontainers.image.revision": "0123456789abcdef"})
    assert describe(None, prov) == ("version 1.4.3+build.7; source https://github.com/acme/web "
                                    "at 0123456789ab")


def test_a_file_name_never_makes_tagsync_s_commit_close_another_repository_s_issue(
        org: Org) -> None:
    """The commit message names each changed file; pushed to the default branch with the
    organisation's credentials, `fixes acme/other#1` in it closes issue 1 of another
    repository: a write there, chosen by this repository's file names."""
    org.github.create_repo("acme/aaa-names", {
        "tagsync.yaml": b"catalogs:\n  - name: d\n    files: ['fixes acme/*.yaml']\n",
        "fixes acme/other#1.yaml": org.kube(), "@acme/everyone.yaml": org.kube()})
    org.github.create_repo("acme/aaa-names2", {
        "tagsync.yaml": b"catalogs:\n  - name: d\n    files: ['@acme/*.yaml']\n",
        "@acme/everyone.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    statuses = {r.repo: r.status for r in summary.repositories}
    assert statuses["acme/aaa-names"] == statuses["acme/aaa-names2"] == "changed"
    for name in ("acme/aaa-names", "acme/aaa-names2"):
        head = org.github.head(name)
        assert head is not None
        message = org.github.commit(name, head).message.decode()
        assert "#" not in message and "@" not in message, message


def test_a_file_name_in_a_pull_request_s_table_says_no_closing_phrase() -> None:
    """A squash merge can take the pull request's description as the commit's body (a
    repository setting): its file names then stand in a commit on the default branch."""
    from tagsync.plan import Change
    from tagsync.publish.github import pr_body

    change = Change("app", "fixes acme/other#1.yaml", 0, ".spec.containers[0].image", 5,
                    "ghcr.io/acme/web", "1.4", "ghcr.io/acme/web:1.4@sha256:" + "a" * 64,
                    "ghcr.io/acme/web:1.4@sha256:" + "b" * 64, "digest changed")
    body = pr_body([change], "tagsync/main/app")
    assert "other#1" not in body and "fixes acme" not in body


@pytest.mark.parametrize("key", ["message", "pr_title"])
@pytest.mark.parametrize("message", ["tagsync: {images} (fixes acme/other#1)", "cc @acme/everyone",
                                     "closes #1"])
def test_a_message_template_can_never_make_a_commit_act_on_issues(message: str, key: str) -> None:
    """The repository's `github.message` is its author's words, in a commit pushed with the
    organisation's credentials: `fixes acme/other#1` would close another repository's issue.
    So is `pr_title`: a squash merge (auto-merge, by the organisation's App) makes it the
    subject of the commit on the default branch."""
    from tagsync.errors import ConfigError
    from tagsync.org.config import parse_org_config, repo_config

    org_yaml = parse_org_config("organisation: acme\ngithub: {token: env:T}\n", "org.yaml",
                                Path("/org"))
    with pytest.raises(ConfigError) as caught:
        repo_config(org_yaml, "acme/svc", "main", "catalogs: [{name: a, file: x.yaml}]\n"
                    f"github: {{{key}: {json.dumps(message)}}}\n", "acme/svc:tagsync.yaml")
    assert caught.value.message.startswith(f"github.{key}: ")


# --- a catalog among the workflows, with credentials that may not touch them --------------------------


def test_a_catalog_among_workflows_fails_its_repository_alone_when_the_app_may_not_touch_them(
        org: Org) -> None:
    """An App installed without the `workflows` permission: GitHub refuses any commit touching
    `.github/workflows/`, whole. The repository that names a workflow as a catalog fails,
    saying why; nothing of it is written, and the others go on."""
    from tests.test_org_run import TOKEN

    org.github.without_workflows.add(TOKEN)
    org.github.create_repo("acme/aaa-ci", {
        "tagsync.yaml": b"catalogs:\n  - name: ci\n    files: ['.github/workflows/*.yml', "
                        b"'deploy/*.yaml']\n",
        ".github/workflows/deploy.yml": org.kube(), "deploy/app.yaml": org.kube()})
    before = org.github.head("acme/aaa-ci")
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/aaa-ci"].status == "failed"
    assert "workflows" in by_repo["acme/aaa-ci"].reason
    assert org.github.head("acme/aaa-ci") == before
    assert by_repo["acme/svc-a"].status == "changed"


def test_two_runs_opening_the_dashboard_at_once_leave_one_dashboard(org: Org) -> None:
    """Two runs (overlapping executions, a person's run beside the schedule) both find no
    dashboard and both open one: the later one closes itself, and the first is the one kept."""
    from tagsync.org.dashboard import render, update_issue

    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    org.github.hold_writes(2)  # both look for the dashboard before either opens it
    api = [_api(org), _api(org)]
    threads = [threading.Thread(target=update_issue, args=(a, "acme/ops", "acme",
                                                           render("acme", []), "t"))
               for a in api]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    [kept] = [i for i in org.github.repos["acme/ops"].issues if i.state == "open"]
    assert kept.number == min(i.number for i in org.github.repos["acme/ops"].issues)
    assert update_issue(api[0], "acme/ops", "acme", render("acme", [
        {"repo": "acme/x", "status": "changed", "reason": "r"}]), "t") == (
        f"dashboard acme/ops#{kept.number} updated")


def test_a_repository_asked_for_in_another_case_runs(org: Org) -> None:
    """`--repo ACME/SVC-A` names `acme/svc-a` (GitHub's names are case-insensitive)."""
    summary = org_run(load_org_config(org.config), only=frozenset({"ACME/SVC-A"}), dry_run=True)
    assert [(r.repo, r.status) for r in summary.repositories] == [("acme/svc-a", "changed")]


# --- links in a repository ------------------------------------------------------------------------------


def _links(org: Org, repo: str, links: dict[str, bytes]) -> None:
    """A commit on main adding these symbolic links (path -> target)."""
    git = org.github.repos[repo].git
    made = commit_entries(git, git.refs[b"refs/heads/main"],
                          [(path, 0o120000, target) for path, target in links.items()], "links")
    org.github._set_ref(org.github.repos[repo], b"refs/heads/main", made)


@pytest.mark.parametrize("target", [b"../../acme/victim/deploy/app.yaml", b"/etc/passwd",
                                    b"../../../.git/config"])
def test_a_link_leading_out_of_the_repository_reaches_nothing_outside_it(
        org: Org, target: bytes) -> None:
    """A catalog named through a link whose target leaves the repository: nothing outside is
    read or written, the repository fails alone, saying so."""
    org.github.create_repo("acme/victim", {"deploy/app.yaml": org.kube()})
    victim = org.github.head("acme/victim")
    org.github.create_repo("acme/aaa-link", {
        "tagsync.yaml": b"catalogs:\n  - name: d\n    file: deploy/app.yaml\n",
        "README.md": b"x\n"})
    _links(org, "acme/aaa-link", {"deploy/app.yaml": target})
    before = org.github.head("acme/aaa-link")
    summary = org_run(load_org_config(org.config))
    row = {r.repo: r for r in summary.repositories}["acme/aaa-link"]
    assert row.status == "failed" and "symlink" in row.reason
    assert org.github.head("acme/aaa-link") == before and org.github.head("acme/victim") == victim
    assert not [h for h in org.github.hits if h.path.startswith("/repos/acme/victim/")]


# --- not defended yet ------------------------------------------------------------------------------------


@pytest.mark.xfail(run=False, reason="a child's result is written by Step Functions' ResultWriter "
                   "into the bucket, with no digest the execution carries; rewritten there "
                   "(FAILED made SUCCEEDED), the summary trusts it. Needs the Map run's own "
                   "counts (states:DescribeMapRun, a permission of aws/policies.py) compared "
                   "with the rows: see the README's Step Functions section")
def test_a_child_s_result_rewritten_in_the_bucket_is_not_taken_for_a_success(steps: Org) -> None:
    raise AssertionError("not defended yet")


def test_a_disabled_repository_is_said_to_be_disabled() -> None:
    from tagsync.org.repos import _listed

    repo = _listed({"full_name": "acme/x", "default_branch": "main", "disabled": True,
                    "archived": False, "fork": False}, "acme")
    assert repo is not None and repo.archived and repo.disabled
