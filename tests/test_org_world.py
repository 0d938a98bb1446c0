"""Issue #32's check in one world: an organisation of 20 repositories on the contract server
(most with a config, some without, one broken, one whose push is refused, one hostile), images
on the real registry behind a recording proxy. One run: the right commits and PRs, the broken
ones fail alone, no credential leaves, every registry question asked once; a second run changes
nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.org.config import load_org_config
from tagsync.org.run import org_run
from tests.test_org_run import OLD, REPO_CONFIG, Org, org  # noqa: F401  (the organisation fixture)

SECRET = "registry-password-0123456789"


@pytest.fixture
def world(org: Org, monkeypatch: pytest.MonkeyPatch) -> Org:  # noqa: F811
    monkeypatch.setenv("ORG_REGISTRY_PASSWORD", SECRET)
    org.config.write_text(org.config.read_text() + "    username: bot\n"
                          "    password: env:ORG_REGISTRY_PASSWORD\n")
    for i in range(12):  # 12 more configured services on the one image: 14 with svc-a and svc-b
        mode = "github:\n  mode: pull-request\n" if i % 2 else ""
        org.github.create_repo(f"acme/svc-{i:02d}", {"tagsync.yaml": (REPO_CONFIG + mode).encode(),
                                                     "deploy/app.yaml": org.kube()})
    org.github.create_repo("acme/docs", {"README.md": b"no config\n"})
    org.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs:\n  - name: x\n    files: 3\n"})
    org.github.create_repo("acme/locked", {"tagsync.yaml": REPO_CONFIG.encode(),
                                           "deploy/app.yaml": org.kube()})
    org.github.repos["acme/locked"].protected.add("main")
    org.github.create_repo("acme/hostile", {
        "tagsync.yaml": (REPO_CONFIG + f"registries:\n  - host: '{org.registry.host}'\n"
                         "    url: http://127.0.0.1:9\n    password: env:ORG_REGISTRY_PASSWORD\n"
                         ).encode(),
        "deploy/app.yaml": org.kube()})
    return org


def test_one_run_over_twenty_repositories_keeps_every_promise(
        world: Org, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    assert len([r for r in world.github.repos if r.startswith("acme/")]) == 20
    summary = org_run(load_org_config(world.config))
    status = {r.repo: r.status for r in summary.repositories}
    assert status.pop("acme/legacy-x", None) is None  # excluded by the org config
    assert {r for r, s in status.items() if s == "failed"} == {"acme/broken", "acme/locked",
                                                               "acme/hostile"}
    assert {r for r, s in status.items() if s == "skipped"} == {"acme/docs", "acme/no-config"}
    changed = {r for r, s in status.items() if s == "changed"}
    assert len(changed) == 14
    for repo in changed:  # push mode committed; PR mode opened one PR and left the base alone
        pulls = world.github.open_pulls(repo)
        ref = pulls[0].head if pulls else "main"
        assert world.github.read(repo, "deploy/app.yaml", ref) == world.kube(world.digest)
    assert world.github.read("acme/hostile", "deploy/app.yaml") == world.kube()
    assert world.github.read("acme/locked", "deploy/app.yaml") == world.kube()
    seen = world.registry.faults.seen
    assert len(seen) == len(set(seen)), "a registry question was asked twice"
    assert seen.count(f"HEAD /v2/{world.ns}/app/manifests/1.0") == 1
    everything = capsys.readouterr().out + capsys.readouterr().err + caplog.text + str(summary.to_dict())
    assert SECRET not in everything

    moves = len(world.github.ref_log)  # the protected branch is asked again, and refuses again
    again = org_run(load_org_config(world.config))
    assert len(world.github.ref_log) == moves  # no branch moved, no PR opened
    assert {r.repo for r in again.repositories if r.status == "changed"} == set()
    assert Path(world.config).exists() and OLD not in world.kube(world.digest).decode()
