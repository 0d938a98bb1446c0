"""`tagsync scaffold`: the files a catalog repository needs to run tagsync on a schedule in AWS.

- `tagsync.yaml`: a starting config, `tagsync init`'s for the references found in the checkout
  (the Lablup-shaped example when it has none);
- `Dockerfile`: the Lambda image (AWS Lambda Python base, x86_64 and arm64);
- `.github/workflows/tagsync-deploy.yml`: on push to the deploying branches, assume an AWS role
  via OIDC (no stored keys) and run `tagsync deploy` for that branch and commit;
- `aws/tagsync-deploy-trust.json` and `aws/tagsync-deploy-policy.json`: that role's trust
  (GitHub's OIDC tokens of this repository and branches) and least-privilege permissions.

With `org=True` (`tagsync scaffold --org`) the repository deploys the organisation's function
instead: a starting `org.yaml` in place of `tagsync.yaml`, built into the image; the workflow runs
`tagsync deploy --org` from one branch (one organisation has one fan-out); the role may also
converge and destroy that organisation's fan-out (aws/policies.org_permission_statements).

tagsync is installed from a pinned, verifiable source: a commit of its Git repository (by
default the one this tagsync was installed from, when pip recorded it), never an unpinned name
on a package index. Third-party actions are pinned by commit SHA. Existing files are never
overwritten unless asked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tagsync.aws.policies import deploy_permission_policy, deploy_trust_policy
from tagsync.config import EXAMPLE
from tagsync.errors import ConfigError

PLACEHOLDER_SOURCE = "git+https://github.com/OWNER/tagsync@COMMIT_SHA_OF_TAGSYNC"
# Commit SHAs of the actions' release tags (named in the comment beside each use). Override with
# `tagsync scaffold --action owner/name@<sha>`; check one with
# `git ls-remote https://github.com/actions/checkout refs/tags/v4.2.2`.
ACTIONS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "aws-actions/configure-aws-credentials": ("e3dd6a429d7300a6a4c196c26e071d42e0343502", "v4.0.2"),
}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_URL = r"[A-Za-z0-9._~:/%+-]+"  # no quotes, spaces or `@`: it is written into YAML and a Dockerfile
_PINNED = re.compile(rf"^git\+https://{_URL}@[0-9a-f]{{40}}$|^https://{_URL}/[0-9a-f]{{40}}\.(tar\.gz|zip)$")


def installed_source() -> str | None:
    """The pinned Git source this tagsync was installed from (pip's direct_url.json), if any."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("tagsync").read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    if not text:
        return None
    data = json.loads(text)
    vcs = data.get("vcs_info") or {}
    url, commit = str(data.get("url", "")), str(vcs.get("commit_id", ""))
    if vcs.get("vcs") == "git" and url.startswith("https://") and _SHA.match(commit):
        return f"git+{url}@{commit}"
    return None


def archive_of(source: str) -> str:
    """What pip installs without git (the Lambda base image has none): GitHub's archive of the
    commit (the placeholder's too, so the Dockerfile never needs git once filled in)."""
    m = re.match(r"^git\+(https://github\.com/[^@\s]+?)(?:\.git)?@([0-9a-f]{40}|COMMIT_SHA_OF_TAGSYNC)$",
                 source)
    return f"{m[1]}/archive/{m[2]}.tar.gz" if m else source


@dataclass(frozen=True)
class ScaffoldOptions:
    repo: str = "OWNER/REPO"
    branches: tuple[str, ...] = ("main", "dev")
    account: str = "123456789012"
    region: str = "eu-west-1"
    source: str = PLACEHOLDER_SOURCE
    actions: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(ACTIONS))
    organisation: str | None = None  # the organisation's deployment (`--org`)

    @classmethod
    def make(cls, *, repo: str = "OWNER/REPO", branches: tuple[str, ...] | None = None,
             account: str = "123456789012", region: str = "eu-west-1", source: str | None = None,
             actions: tuple[str, ...] = (), org: bool = False,
             organisation: str | None = None) -> ScaffoldOptions:
        """Checked options: a pinned source, actions by SHA, a real account id and region; with
        `org`, an organisation name GitHub accepts (default: the repository's owner) and one
        deploying branch."""
        from tagsync.aws.names import validate_branch, validate_repo

        if repo != "OWNER/REPO":
            validate_repo(repo)
            if "/" not in repo:
                raise ConfigError(f"--repo {repo!r}: write owner/name (the OIDC trust names both)")
        if organisation is not None and not org:
            raise ConfigError("--organisation is for --org (the organisation's deployment)")
        if org:
            organisation = organisation or repo.split("/", 1)[0]
            if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", organisation):
                raise ConfigError(f"--organisation {organisation!r} is not a GitHub account name")
            branches = branches or ("main",)
            if len(branches) != 1:
                raise ConfigError(f"--org deploys from one branch, not {len(branches)}: the "
                                  f"organisation has one fan-out (state machine, schedule, bucket), "
                                  "which two branches would take from each other")
        branches = branches or ("main", "dev")
        for branch in branches:
            validate_branch(branch)
        if not re.fullmatch(r"\d{12}", account):
            raise ConfigError(f"--account {account!r}: an AWS account id is 12 digits")
        if not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", region):
            raise ConfigError(f"--region {region!r} is not an AWS region name")
        chosen = source or installed_source() or PLACEHOLDER_SOURCE
        if chosen != PLACEHOLDER_SOURCE and not _PINNED.match(chosen):
            raise ConfigError(f"--tagsync-source {chosen!r}: pin a commit, e.g. "
                              "git+https://github.com/OWNER/tagsync@<40-hex commit sha>")
        if archive_of(chosen).startswith("git+"):
            raise ConfigError(f"--tagsync-source {chosen!r}: the Lambda base image has no git, so the "
                              "Dockerfile needs an archive: give a github.com commit, or "
                              "https://HOST/PATH/<40-hex commit sha>.tar.gz")
        pinned = dict(ACTIONS)
        for item in actions:
            name, _, sha = item.partition("@")
            if name not in ACTIONS or not _SHA.match(sha):
                raise ConfigError(f"--action {item!r}: write one of {', '.join(ACTIONS)} "
                                  "as NAME@<40-hex commit sha>")
            pinned[name] = (sha, "pinned with --action")
        return cls(repo, branches, account, region, chosen, pinned, organisation)

    def notes(self) -> list[str]:
        """What the user still has to fill in before the first workflow run."""
        out = []
        if self.source == PLACEHOLDER_SOURCE:
            out.append("this tagsync was not installed from a Git commit: replace COMMIT_SHA_OF_TAGSYNC "
                       "and OWNER in the workflow and the Dockerfile (an archive URL: the Lambda base "
                       "has no git), or rerun with --tagsync-source "
                       "git+https://github.com/OWNER/tagsync@<sha>")
        if self.repo == "OWNER/REPO":
            out.append("rerun with --repo owner/name so the deploy role trusts this repository only")
        if self.account == "123456789012":
            out.append("rerun with --account (your AWS account id) for the role policies")
        if self.organisation is not None:
            out.append("org.yaml names the GitHub token's secret (or an App) and which "
                       "repositories: check it before the first deploy")
        return out


def _uses(options: ScaffoldOptions, name: str) -> str:
    sha, label = options.actions[name]
    return f"{name}@{sha}  # {label}"


def _deploy_step(options: ScaffoldOptions) -> str:
    if options.organisation is not None:
        return ('          tagsync deploy --org --config org.yaml\n'
                '          --repo "$REPOSITORY" --branch "$BRANCH" --sha "$SHA"')
    return ('          tagsync deploy --repo "$REPOSITORY" --branch "$BRANCH" --sha "$SHA"\n'
            '          --config tagsync.yaml --secret-env "TAGSYNC_GIT_TOKEN=$TAGSYNC_GIT_TOKEN_REF"')


def _what(options: ScaffoldOptions) -> str:
    if options.organisation is not None:
        return (f"# Deploys tagsync for every repository of {options.organisation}: the function (org.yaml\n"
                "# built in), and the Step Functions state machine, schedule and bucket that fan it out.")
    return "# Deploys tagsync as a scheduled AWS Lambda function, one environment per branch."


def _token_env(options: ScaffoldOptions) -> str:
    if options.organisation is not None:  # org.yaml names its own secrets
        return ""
    return """\
  # tagsync.yaml reads the Git token from TAGSYNC_GIT_TOKEN; the function resolves this
  # reference at run time, and its role may read exactly this secret.
  TAGSYNC_GIT_TOKEN_REF: aws-secretsmanager:tagsync/git-token
"""


def workflow(options: ScaffoldOptions) -> str:
    branches = ", ".join(json.dumps(b) for b in options.branches)  # a JSON string is a YAML string
    return f"""\
{_what(options)}
# The role under `env:` is created from aws/tagsync-deploy-trust.json and
# aws/tagsync-deploy-policy.json (written by `tagsync scaffold`): it trusts GitHub's OIDC tokens
# of {options.repo} only. No AWS keys are stored in GitHub.
# Third-party actions are pinned by commit SHA; tagsync is installed from a pinned commit.
name: tagsync deploy

on:
  push:
    branches: [{branches}]
  workflow_dispatch:

permissions:
  id-token: write   # to ask GitHub for the OIDC token the AWS role trusts
  contents: read

env:
  AWS_REGION: {options.region}
  TAGSYNC_DEPLOY_ROLE_ARN: arn:aws:iam::{options.account}:role/tagsync-deploy
{_token_env(options)}  TAGSYNC_SOURCE: "{options.source}"

concurrency:
  group: tagsync-deploy-${{{{ github.ref_name }}}}
  cancel-in-progress: false

jobs:
  deploy:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: {_uses(options, "actions/checkout")}
      - uses: {_uses(options, "aws-actions/configure-aws-credentials")}
        with:
          role-to-assume: ${{{{ env.TAGSYNC_DEPLOY_ROLE_ARN }}}}
          aws-region: ${{{{ env.AWS_REGION }}}}
      - uses: {_uses(options, "actions/setup-python")}
        with:
          python-version: "3.11"
      - name: Install tagsync (a pinned commit)
        run: python -m pip install "tagsync[aws] @ $TAGSYNC_SOURCE"
      - name: Deploy this branch
        env:
          REPOSITORY: ${{{{ github.repository }}}}
          BRANCH: ${{{{ github.ref_name }}}}
          SHA: ${{{{ github.sha }}}}
        run: >-
{_deploy_step(options)}
"""


def dockerfile(options: ScaffoldOptions) -> str:
    config = "tagsync.yaml" if options.organisation is None else "org.yaml"
    return f"""\
# The tagsync Lambda image. The base is multi-arch: `docker build --platform linux/arm64` for
# Graviton, linux/amd64 for x86_64 (tagsync deploy passes the right one). tagsync comes from a
# pinned commit (the base image has no git: GitHub's archive of that commit).
FROM public.ecr.aws/lambda/python:3.11
# pip compiles the bytecode here, so cold starts do not (the image is read-only on Lambda).
RUN pip install --no-cache-dir "tagsync[aws,ssh] @ {archive_of(options.source)}"
COPY {config} ${{LAMBDA_TASK_ROOT}}/{config}
CMD ["tagsync.aws.handler.handler"]
"""


def files(options: ScaffoldOptions | None = None, root: Path | None = None) -> dict[str, str]:
    """The files to write; the config is `tagsync init`'s for the references found under `root`
    (the Lablup-shaped example when there are none)."""
    o = options or ScaffoldOptions()
    if o.organisation is not None:
        config = {"org.yaml": org_config(o.organisation)}
    else:
        text = EXAMPLE
        if root is not None:
            from tagsync.init import starting_config

            found_text, found = starting_config(str(root))
            if found.slots or found.notes:
                text = found_text
        config = {"tagsync.yaml": text}
    return {
        **config,
        "Dockerfile": dockerfile(o),
        ".github/workflows/tagsync-deploy.yml": workflow(o),
        "aws/tagsync-deploy-trust.json": json.dumps(
            deploy_trust_policy(o.repo, o.account, o.branches), indent=2) + "\n",
        "aws/tagsync-deploy-policy.json": json.dumps(
            deploy_permission_policy(o.repo, o.account, o.region, o.organisation), indent=2) + "\n",
    }


def org_config(organisation: str) -> str:
    """A starting `org.yaml`: the organisation, a GitHub token the function's role may read,
    every repository."""
    return f"""\
# tagsync's organisation config: `tagsync deploy --org -c org.yaml` builds it into the image.
# Each repository keeps its own tagsync.yaml (catalogs, how changes are proposed); what reaches
# a secret or a host is the organisation's, here.
organisation: {organisation}
github:
  # A token with access to the repositories (or a GitHub App:
  # app: {{app_id: 12345, private_key: aws-secretsmanager:tagsync/app-key, installation_id: 678}}).
  # The function's role may read exactly the secrets named in this file.
  token: aws-secretsmanager:tagsync/github-token
repositories:
  include: ["*"]
  exclude: []
onboarding: false   # true: offer each repository without a config one pull request
"""


def scaffold(root: Path, options: ScaffoldOptions | None = None, *,
             force: bool = False) -> tuple[list[str], list[str]]:
    """Write the files; (written, kept because they exist)."""
    written, kept = [], []
    for rel, text in files(options, root).items():
        target = root / rel
        if target.exists() and not force:
            kept.append(rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(rel)
    return written, kept
