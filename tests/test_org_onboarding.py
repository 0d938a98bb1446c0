"""Onboarding proposes a config that is right for organisation mode: what `tagsync init` finds
(catalogs and files), with publishing hints a repository may follow there (how to propose),
never a single repository's (`git:`, a token, `registries:`), which its config may not hold."""

from __future__ import annotations

import re

from tagsync.init import ORG_FOOTER
from tagsync.org.config import REPO_GITHUB_KEYS, load_org_config, repo_config
from tagsync.org.run import org_run
from tests import test_org_run
from tests.test_org_run import Org

org = test_org_run.org  # the fixture: an organisation on the contract server and a registry


def _proposed(org: Org) -> str:
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.create_repo("acme/new-svc", {"k8s/app.yaml": org.kube(), "README.md": b"hi\n"})
    org_run(load_org_config(org.config))
    [pr] = org.github.open_pulls("acme/new-svc")
    return org.github.read("acme/new-svc", "tagsync.yaml", pr.head).decode()


def _uncommented(text: str) -> str:
    """The config with its commented `github:` hint taken up, as its reader would."""
    out = []
    for line in text.splitlines():
        m = re.match(r"# (github:|  [a-z_]+: .*?)\s+(#.*)?$", line)
        out.append(m.group(1) if m else line)
    return "\n".join(out) + "\n"


def test_the_proposal_keeps_init_s_catalogs_and_drops_single_repository_publishing(
        org: Org) -> None:
    proposed = _proposed(org)
    assert "k8s/**/*.yaml" in proposed and "kind: kubernetes" in proposed
    for word in ("git:", "registries:", "token", "repo:", "env:", "OWNER/NAME"):
        assert word not in proposed
    assert "organisation" in proposed


def test_the_proposal_validates_as_a_repository_config_as_it_is_and_with_its_hint_taken_up(
        org: Org) -> None:
    proposed = _proposed(org)
    org_config = load_org_config(org.config)
    repo_config(org_config, "acme/new-svc", "main", proposed, "acme/new-svc:tagsync.yaml")
    taken = _uncommented(proposed)
    assert taken != proposed
    config = repo_config(org_config, "acme/new-svc", "main", taken, "acme/new-svc:tagsync.yaml")
    assert config.github is not None
    assert (config.github.mode, config.github.labels) == ("pull-request", ["dependencies"])


def test_the_hint_names_only_keys_a_repository_may_set() -> None:
    named = set(re.findall(r"\b([a-z_]+)(?=[:,\n])", ORG_FOOTER.split("also:", 1)[1]))
    keys = set(re.findall(r"#\s+([a-z_]+):", ORG_FOOTER)) - {"github"}
    assert named and keys and named | keys <= REPO_GITHUB_KEYS
