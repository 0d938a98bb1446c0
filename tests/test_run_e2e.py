"""`tagsync run` end to end: real registry → catalog → commit on a real Git smart-HTTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from dulwich import porcelain

from tagsync.cli import main
from tagsync.config import load_config
from tagsync.publish.git import GitPublisher
from tagsync.reference import short
from tagsync.run import run
from tests.servers.fixtures import GitServer, RegistryServer, kernels_yaml, unique_namespace

CATALOG = """\
# kernels served to users
images:
  - name: python
    tags:
      - ["latest",     ":3.6-ubuntu"]
      - ["3.6-ubuntu", "{py}"]   # default
    slots: &default
      cpu: 1
  - name: r
    tags:
      - ["3.5", "{r}"]
    slots:
      <<: *default
  - name: go
    tags:
      - ['1.10', '{go}']
      - ["1.9", "x"]
"""


@dataclass
class World:
    registry: RegistryServer
    git: GitServer
    config: Path
    ns: str
    old: dict[str, str]

    def expected(self, **new: str) -> bytes:
        return CATALOG.format(**{**self.old, **new}).encode()


@pytest.fixture
def world(registry: RegistryServer, git_server: GitServer, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> World:
    ns = unique_namespace("e2e", request)
    go = registry.push(f"{ns}/kernel-go", "1.10", f"{ns} go 1.10")
    old = {"py": "0123456789ab", "r": "ba9876543210", "go": short(go.digest)}
    git_server.commit_directly({"catalog/images.yml": CATALOG.format(**old).encode(),
                                "README.md": b"catalogs\n"}, "initial")
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
{kernels_yaml(registry, ns, "catalog/images.yml")}git:
  repo: {git_server.url}
  branch: main
  token_env: TEST_GIT_TOKEN
  author: "tagsync bot <bot@example.com>"
""")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    return World(registry, git_server, config, ns, old)


def push_new_images(w: World) -> dict[str, str]:
    py = w.registry.push(f"{w.ns}/kernel-python", "3.6-ubuntu", f"{w.ns} py new")
    r = w.registry.push(f"{w.ns}/kernel-r", "3.5", f"{w.ns} r new")
    return {"py": short(py.digest), "r": short(r.digest)}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def clone_back(w: World, tmp_path: Path) -> bytes:
    target = tmp_path / "clone"
    with open("/dev/null", "wb") as devnull:
        porcelain.clone(w.git.url, str(target), username="x", password=w.git.token,
                        errstream=devnull).close()
    return (target / "catalog" / "images.yml").read_bytes()


def test_run_commits_exactly_the_expected_change(world: World, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    new = push_new_images(world)
    code, out, _ = cli(capsys, "run", "-c", str(world.config))
    assert code == 0, out
    assert clone_back(world, tmp_path) == world.expected(**new)
    assert world.git.commit_count() == 2
    assert world.git.read("README.md") == b"catalogs\n"


def test_a_run_that_writes_spends_nothing_on_a_diff(world: World) -> None:
    """The unified diff is for dry runs; a 30,000-line catalog would pay ~150 ms for it."""
    from tagsync.config import load_config
    from tagsync.run import run

    push_new_images(world)
    summary = run(load_config(world.config))
    assert summary.pushed and len(summary.changes) == 2
    assert summary.diff == ""


def test_commit_message_and_author(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    push_new_images(world)
    cli(capsys, "run", "-c", str(world.config))
    from dulwich.repo import Repo

    with Repo(str(world.git.path)) as repo:
        commit = repo[world.git.head()]
    assert commit.author == commit.committer == b"tagsync bot <bot@example.com>"
    assert commit.message.startswith(b"tagsync: update 2 image(s) in kernels\n")


def test_committer_can_differ_from_the_author(world: World) -> None:
    push_new_images(world)
    world.config.write_text(world.config.read_text().replace(
        "  author:", '  committer: "CI <ci@example.com>"\n  author:'))
    run(load_config(world.config))
    from dulwich.repo import Repo

    with Repo(str(world.git.path)) as repo:
        commit = repo[world.git.head()]
    assert (commit.author, commit.committer) == (b"tagsync bot <bot@example.com>",
                                                 b"CI <ci@example.com>")


def test_second_run_makes_no_commit(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    push_new_images(world)
    assert cli(capsys, "run", "-c", str(world.config))[0] == 0
    head = world.git.head()
    code, out, _ = cli(capsys, "run", "-c", str(world.config))
    assert code == 0
    assert "nothing to change" in out
    assert world.git.head() == head


def test_second_run_sends_no_write_request(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    push_new_images(world)
    cli(capsys, "run", "-c", str(world.config))
    world.git.requests.clear()
    cli(capsys, "run", "-c", str(world.config))
    assert not [r for r in world.git.requests if "receive-pack" in r]


def test_dry_run_prints_the_diff_and_pushes_nothing(world: World,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    new = push_new_images(world)
    head = world.git.head()
    code, out, _ = cli(capsys, "run", "-c", str(world.config), "--dry-run")
    assert code == 0
    assert f'+      - ["3.6-ubuntu", "{new["py"]}"]   # default' in out
    assert world.git.head() == head


def test_json_summary(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    new = push_new_images(world)
    code, out, _ = cli(capsys, "run", "-c", str(world.config), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["status"] == "changed"
    assert data["pushed"] is True and data["commit"] == world.git.head().decode()
    assert {(c["tag"], c["new"]) for c in data["changes"]} == {("3.6-ubuntu", new["py"]),
                                                              ("3.5", new["r"])}
    assert data["up_to_date"] == 1
    assert {s["reason"].split(" ")[0] for s in data["skipped"]} == {"points", "placeholder"}
    assert data["requests"]["manifest_gets"] == 0


def test_wrong_token_is_a_clear_error_and_leaks_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    push_new_images(world)
    head = world.git.head()
    monkeypatch.setenv("TEST_GIT_TOKEN", "ghp_wrongtoken123")
    code, out, err = cli(capsys, "run", "-c", str(world.config))
    assert code == 1
    assert "refused our credentials" in err
    assert "ghp_wrongtoken123" not in out + err
    assert world.git.head() == head


def test_protected_branch_refusal_is_clear_and_changes_nothing(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    push_new_images(world)
    world.git.protect("main")
    head = world.git.head()
    code, _, err = cli(capsys, "run", "-c", str(world.config))
    assert code == 1
    assert "refused the push to main" in err
    assert world.git.head() == head


def test_unreachable_registry_changes_nothing(world: World, capsys: pytest.CaptureFixture[str],
                                              closed_port: int) -> None:
    text = world.config.read_text().replace(world.registry.url, f"http://127.0.0.1:{closed_port}")
    world.config.write_text(text)
    head = world.git.head()
    code, _, err = cli(capsys, "run", "-c", str(world.config))
    assert code == 1
    assert "cannot reach" in err
    assert world.git.head() == head


def test_malformed_catalog_names_the_line_and_changes_nothing(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.git.commit_directly({"catalog/images.yml": b"images:\n  - name: [python\n"}, "broken")
    head = world.git.head()
    code, _, err = cli(capsys, "run", "-c", str(world.config))
    assert code == 1
    assert "catalog/images.yml:3:" in err
    assert world.git.head() == head


def test_tag_outside_the_oci_grammar_fails_that_image_only(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    new = push_new_images(world)
    bad = world.expected(**new).decode().replace('["3.5", ', '["3.5 beta!", ')
    world.git.commit_directly({"catalog/images.yml": world.expected().decode()
                               .replace('["3.5", ', '["3.5 beta!", ').encode()}, "odd tag")
    code, _, err = cli(capsys, "run", "-c", str(world.config))
    assert code == 3  # partial: the others were published
    assert "'3.5 beta!' does not follow the OCI tag grammar" in err
    assert world.git.read("catalog/images.yml") == bad.replace(new["r"], world.old["r"]).encode()


def test_only_bad_tags_is_an_error_and_changes_nothing(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.git.commit_directly({"catalog/images.yml": b'images:\n  - name: python\n'
                               b'    tags:\n      - ["bad tag", "0123456789ab"]\n'}, "bad")
    head = world.git.head()
    code, _, err = cli(capsys, "run", "-c", str(world.config))
    assert code == 1
    assert "OCI tag grammar" in err
    assert world.git.head() == head


class MovingPublisher(GitPublisher):
    """Somebody else pushes between our read and our push, once."""

    def __init__(self, server: GitServer, **kw: str) -> None:
        super().__init__(server.url, "main", token=server.token, **kw)
        self.server = server
        self.moved = False

    def publish(self, snapshot, files, message, changes=()):  # type: ignore[no-untyped-def]
        if not self.moved:
            self.moved = True
            self.server.commit_directly({"OTHER.md": b"someone else's work\n"}, "concurrent")
        return super().publish(snapshot, files, message, changes)


def test_branch_moved_between_read_and_push_is_replanned(world: World) -> None:
    new = push_new_images(world)
    config = load_config(world.config)
    summary = run(config, publisher=MovingPublisher(world.git))
    assert summary.attempts == 2
    assert world.git.read("OTHER.md") == b"someone else's work\n"  # no lost update
    assert world.git.read("catalog/images.yml") == world.expected(**new)
    assert world.git.commit_count() == 3


def test_files_mode_edits_the_checkout_in_place(world: World, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    new = push_new_images(world)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "images.yml").write_bytes(world.expected())
    text = world.config.read_text()
    world.config.write_text(text[: text.index("git:")])
    assert cli(capsys, "run", "-c", str(world.config))[0] == 0
    assert (tmp_path / "catalog" / "images.yml").read_bytes() == world.expected(**new)
