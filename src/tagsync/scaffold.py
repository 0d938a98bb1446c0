"""`tagsync scaffold`: the files a catalog repository needs to run tagsync on a schedule in AWS.

- `tagsync.yaml`: a starting config (the Lablup-shaped example);
- `Dockerfile`: the Lambda image (AWS Lambda Python base, x86_64 and arm64);
- `.github/workflows/tagsync-deploy.yml`: on push to `main` and `dev`, assume an AWS role via
  OIDC (no stored keys) and run `tagsync deploy` for that branch and commit.

Existing files are never overwritten unless asked.
"""

from __future__ import annotations

from pathlib import Path

from tagsync import __version__
from tagsync.config import EXAMPLE

WORKFLOW = """\
# Deploys tagsync as a scheduled AWS Lambda function, one environment per branch.
# Edit the two values under `env:`: the IAM role must trust GitHub's OIDC provider
# (token.actions.githubusercontent.com) for this repository. No AWS keys are stored in GitHub.
name: tagsync deploy

on:
  push:
    branches: [main, dev]
  workflow_dispatch:

permissions:
  id-token: write   # to ask GitHub for the OIDC token the AWS role trusts
  contents: read

env:
  AWS_REGION: eu-west-1
  TAGSYNC_DEPLOY_ROLE_ARN: arn:aws:iam::123456789012:role/tagsync-deploy

concurrency:
  group: tagsync-deploy-${{ github.ref_name }}
  cancel-in-progress: false

jobs:
  deploy:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{ env.TAGSYNC_DEPLOY_ROLE_ARN }}
          aws-region: ${{ env.AWS_REGION }}
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install tagsync
        run: pip install "tagsync[aws]==%(version)s"
      - name: Deploy this branch
        env:
          REPOSITORY: ${{ github.repository }}
          BRANCH: ${{ github.ref_name }}
          SHA: ${{ github.sha }}
        run: tagsync deploy --repo "$REPOSITORY" --branch "$BRANCH" --sha "$SHA" --config tagsync.yaml
"""

DOCKERFILE = """\
# The tagsync Lambda image. The base is multi-arch: `docker build --platform linux/arm64` for
# Graviton, linux/amd64 for x86_64 (tagsync deploy passes the right one).
FROM public.ecr.aws/lambda/python:3.11
RUN pip install --no-cache-dir "tagsync[aws,ssh]==%(version)s"
COPY tagsync.yaml ${LAMBDA_TASK_ROOT}/tagsync.yaml
CMD ["tagsync.aws.handler.handler"]
"""


def files() -> dict[str, str]:
    return {
        "tagsync.yaml": EXAMPLE,
        "Dockerfile": DOCKERFILE % {"version": __version__},
        ".github/workflows/tagsync-deploy.yml": WORKFLOW % {"version": __version__},
    }


def scaffold(root: Path, *, force: bool = False) -> tuple[list[str], list[str]]:
    """Write the files; (written, kept because they exist)."""
    written, kept = [], []
    for rel, text in files().items():
        target = root / rel
        if target.exists() and not force:
            kept.append(rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(rel)
    return written, kept
