"""The deploy's image: checked (`--image`) or built (Docker, or tagsync's own builder) and pushed
to the environment's ECR repository, which keeps what published versions run and lets Lambda pull.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from tagsync.aws.calls import DeployError, _tags_of
from tagsync.aws.environment import Environment
from tagsync.aws.policies import lambda_may_pull, with_lambda_pull
from tagsync.aws.spec import TASK_ROOT
from tagsync.errors import ConfigError

log = logging.getLogger("tagsync.aws.deploy")  # every step's line names the deploy

PUBLISHED = "published-"  # tag prefix of the images published versions run


class ImageSteps(Environment):
    """Where the function's image comes from and how its repository keeps it."""

    def _check_image(self, uri: str, account: str, region: str) -> None:
        from tagsync.errors import InvalidReferenceError
        from tagsync.reference import parse_ecr_host, parse_reference

        try:
            name, reference = parse_reference(uri)
        except InvalidReferenceError as exc:
            raise ConfigError(f"--image {uri!r}: {exc.message}") from None
        host = parse_ecr_host(name.registry)
        if host is None or "/" not in uri.split("@")[0]:
            raise ConfigError(f"--image {uri}: Lambda runs images from ECR only; give "
                              f"{account}.dkr.ecr.{region}.amazonaws.com/REPOSITORY:TAG")
        if host != (account, region):
            raise ConfigError(f"--image {uri}: the image is in account {host[0]}, region {host[1]}; "
                              f"this deploy is in account {account}, region {region}")
        if not 2 <= len(name.repository) <= 256:
            raise ConfigError(f"--image {uri}: an ECR repository name has 2 to 256 characters")
        ecr = self.client("ecr")
        key = "imageDigest" if reference.startswith("sha256:") else "imageTag"
        try:
            found = ecr.describe_images(repositoryName=name.repository, imageIds=[{key: reference}])
            self._digest = found["imageDetails"][0].get("imageDigest")
        except ecr.exceptions.RepositoryNotFoundException:
            raise ConfigError(f"--image {uri}: ECR has no repository {name.repository}") from None
        except ecr.exceptions.ImageNotFoundException:
            raise ConfigError(f"--image {uri}: {reference} is not in {name.repository}") from None

    def _builder(self) -> str:
        if self.spec.builder == "tagsync":
            return "tagsync"
        if docker_daemon():
            return "docker"
        if self.spec.builder == "docker":
            raise ConfigError(f"the image for {self.spec.sha[:12]} is not in ECR and there is no Docker "
                              "daemon to build it; use --builder tagsync, or pass --image URI")
        return "tagsync"

    def _baked_files(self) -> dict[str, Path]:
        """The config goes into the image when the function is to read it from there."""
        ref = self.spec.config_ref
        if not ref.startswith(TASK_ROOT + "/"):
            return {}
        if self.spec.config_file is None:
            raise ConfigError(f"the function reads its config from {ref} in the image: pass "
                              "--config so it is built in, or --config-ref s3://… or ssm:…")
        if not self.spec.config_file.is_file():
            raise ConfigError("config file not found", file=str(self.spec.config_file))
        return {ref[len(TASK_ROOT) + 1:]: self.spec.config_file}

    def _lifecycle(self) -> str:
        """Keep the last N images, but never one a published version runs: those carry a
        `published-<sha>` tag, and ECR never lets a lower-priority rule expire an image that
        matches a higher-priority rule's tags (the first rule only expires past 10000 of them)."""
        return json.dumps({"rules": [
            {"rulePriority": 1, "description": "keep images that published versions run",
             "selection": {"tagStatus": "tagged", "tagPrefixList": [PUBLISHED],
                           "countType": "imageCountMoreThan", "countNumber": 10000},
             "action": {"type": "expire"}},
            {"rulePriority": 2, "description": f"keep the last {self.spec.keep_images} images",
             "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                           "countNumber": self.spec.keep_images},
             "action": {"type": "expire"}}]}, sort_keys=True)

    def keep_published(self, image: str) -> None:
        """Tag the image a published version runs `published-<sha>` (in our repository), so the
        lifecycle policy never expires what `live` or a rollback may point at."""
        repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
        tag = image.rsplit(":", 1)[-1]
        if repository != self.name or "@" in image or self.dry:
            return
        ecr = self.client("ecr")
        mark = f"{PUBLISHED}{self.spec.sha}"
        try:
            found = ecr.describe_images(repositoryName=self.name,
                                        imageIds=[{"imageTag": tag}])["imageDetails"]
        except ecr.exceptions.ImageNotFoundException:
            log.warning("ECR does not list %s: it is not marked as published", image)
            return
        if mark in found[0].get("imageTags", []):
            self._step(f"image {image}", "none", f"kept by the lifecycle policy ({mark})")
            return
        if self._step(f"image {image}", "update", f"tag {mark}: the lifecycle policy keeps it"):
            got = ecr.batch_get_image(repositoryName=self.name, imageIds=[{"imageTag": tag}])["images"]
            ecr.put_image(repositoryName=self.name, imageManifest=got[0]["imageManifest"], imageTag=mark,
                          **({"imageManifestMediaType": got[0]["imageManifestMediaType"]}
                             if got[0].get("imageManifestMediaType") else {}))

    def ecr_repository(self) -> str:
        ecr = self.client("ecr")
        lifecycle = self._lifecycle()
        try:
            repo = ecr.describe_repositories(repositoryNames=[self.name])["repositories"][0]
        except ecr.exceptions.RepositoryNotFoundException:
            if self._step(f"ECR repository {self.name}", "create", "immutable tags, scan on push"):
                repo = ecr.create_repository(
                    repositoryName=self.name, imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])["repository"]
                ecr.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lifecycle)
                return str(repo["repositoryUri"])
            account, region = self.identity()
            return f"{account}.dkr.ecr.{region}.amazonaws.com/{self.name}"
        # the first step: nothing is written yet when another environment's repository is refused
        tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags")
        self._owned(_tags_of(tags), f"ECR repository {self.name}")
        fixes = []
        missing = self._missing_tags(_tags_of(tags))
        if missing:
            fixes.append("tags")
        if repo.get("imageTagMutability") != "IMMUTABLE":
            fixes.append("tag immutability")
        if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
            fixes.append("scan on push")
        try:
            current = json.loads(ecr.get_lifecycle_policy(repositoryName=self.name)["lifecyclePolicyText"])
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            current = None
        if current != json.loads(lifecycle):
            fixes.append("lifecycle policy")
        if self._step(f"ECR repository {self.name}", "update" if fixes else "none", ", ".join(fixes)):
            if "tag immutability" in fixes:
                ecr.put_image_tag_mutability(repositoryName=self.name, imageTagMutability="IMMUTABLE")
            if "scan on push" in fixes:
                ecr.put_image_scanning_configuration(repositoryName=self.name,
                                                     imageScanningConfiguration={"scanOnPush": True})
            if "lifecycle policy" in fixes:
                ecr.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lifecycle)
            if missing:
                ecr.tag_resource(resourceArn=repo["repositoryArn"],
                                 tags=[{"Key": k, "Value": v} for k, v in missing.items()])
        return str(repo["repositoryUri"])

    def image(self, repository_uri: str) -> str:
        if self.spec.image:
            self._step(f"image {self.spec.image}", "none", "given with --image")
            return self.spec.image
        uri = f"{repository_uri}:{self.spec.sha}"
        if self._build_with is None:
            self._step(f"image {uri}", "none", "already pushed")
        elif self._build_with == "docker":
            if self._step(f"image {uri}", "create", "docker build and push"):
                docker_build_and_push(uri, self.spec.architecture, self.client("ecr"))
        elif self._step(f"image {uri}", "create", "built by tagsync build, no Docker"):
            self._tagsync_build(uri, self._baked_files())
        if self._build_with is not None and not self.dry:
            ecr = self.client("ecr")
            try:
                found = ecr.describe_images(repositoryName=self.name, imageIds=[{"imageTag": self.spec.sha}])
                self._digest = found["imageDetails"][0].get("imageDigest")
            except ecr.exceptions.ImageNotFoundException:
                log.warning("ECR does not list %s after the push; its digest is not checked", uri)
        return uri

    def pull_access(self, image: str) -> None:
        """Lambda pulls the image only if the repository policy lets lambda.amazonaws.com: set it."""
        ecr = self.client("ecr")
        account, region = self.identity()
        repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
        function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.name}"
        resource = f"ECR repository policy of {repository}"
        try:
            current = json.loads(ecr.get_repository_policy(repositoryName=repository)["policyText"])
        except (ecr.exceptions.RepositoryPolicyNotFoundException, ecr.exceptions.RepositoryNotFoundException):
            current = None  # none yet, or (dry run) the repository is not created yet
        if lambda_may_pull(current, function_arn):
            self._step(resource, "none", "Lambda may pull")
            return
        if self._step(resource, "create" if current is None else "update", "let Lambda pull the image"):
            wanted = with_lambda_pull(current, f"TagsyncLambdaPull{self.spec.id}", function_arn)
            ecr.set_repository_policy(repositoryName=repository, policyText=json.dumps(wanted))

    def _tagsync_build(self, uri: str, files: dict[str, Path]) -> None:
        from tagsync.image.pipeline import BlobCache, BuildSpec, Registries, Target, run_build
        from tagsync.reference import parse_ecr_host
        from tagsync.registry.credentials import ecr_credentials, push_credentials

        ecr = self.client("ecr")
        template = self.build_template or BuildSpec()
        spec = replace(template, target=Target(self.spec.architecture, self.spec.python),
                       base=self.spec.base_image or template.base, revision=self.spec.sha,
                       files={**template.files, **files})

        def credentials(host: str) -> tuple[str | None, str | None]:
            return ecr_credentials(host, ecr) if parse_ecr_host(host) else push_credentials(host)

        registries = Registries(credentials=credentials, endpoints=self.registry_endpoints)
        result = run_build(spec, uri, registries=registries,
                           cache=BlobCache(self.build_cache) if self.build_cache else None)
        assert result.push is not None
        log.info("pushed %s: %d blobs uploaded (%d bytes)", uri, len(result.push.uploaded),
                 result.push.bytes_uploaded)


def docker_daemon() -> bool:
    """Is there a Docker CLI whose daemon answers?"""
    import shutil
    import subprocess

    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "info"], capture_output=True).returncode == 0


def docker_build_and_push(uri: str, architecture: str, ecr: Any) -> None:
    """Build the Dockerfile in the current directory and push it to ECR with the Docker CLI."""
    import base64
    import shutil
    import subprocess

    docker = shutil.which("docker") or "docker"
    platform = "linux/amd64" if architecture == "x86_64" else "linux/arm64"
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    registry = uri.split("/", 1)[0]
    steps = [[docker, "login", "--username", user, "--password-stdin", registry],
             [docker, "build", "--platform", platform, "--provenance=false", "-t", uri, "."],
             [docker, "push", uri]]
    for argv in steps:
        done = subprocess.run(argv, input=password.encode() if "login" in argv else None,
                              capture_output=True)
        if done.returncode != 0:
            raise DeployError(f"`{' '.join(argv[:2])}` failed: {done.stderr.decode()[-500:]}")
