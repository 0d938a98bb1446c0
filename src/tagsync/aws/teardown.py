"""`tagsync rollback` and `tagsync destroy`: the environment's name resolved as deploy resolves it,
ownership read from tags before anything changes."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from tagsync.aws.calls import ALIAS, DeployError, Step, _tags_of, aws_errors, identity, resolve_name
from tagsync.aws.names import environment_id


def _session(session: Any) -> Any:
    import boto3

    return session or boto3.session.Session()


def rollback(repo: str, branch: str, *, session: Any = None) -> tuple[str, str]:
    """Move `live` to the version published before the current one; (from, to)."""
    before, after, _ = rollback_environment(repo, branch, session=session)
    return before, after


def rollback_environment(repo: str, branch: str, *, session: Any = None) -> tuple[str, str, str]:
    """`rollback`, also naming the environment it rolled back."""
    import os

    with aws_errors(os.environ.get("AWS_ENDPOINT_URL")):
        session = _session(session)
        identity(session)
        name = resolve_name(session.client, repo, branch)
        lam = session.client("lambda")
        try:
            current = lam.get_alias(FunctionName=name, Name=ALIAS)["FunctionVersion"]
            arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        except lam.exceptions.ResourceNotFoundException:
            raise DeployError(f"{name} has no `{ALIAS}` alias: nothing deployed to roll back") from None
        tags = dict(lam.list_tags(Resource=arn).get("Tags", {}))
        if tags.get("tagsync:id", environment_id(repo, branch)) != environment_id(repo, branch):
            raise DeployError(f"Lambda function {name} belongs to another environment "
                              f"({tags.get('tagsync:repo', '?')}@{tags.get('tagsync:branch', '?')})")
        versions = []
        for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
            versions += [int(v["Version"]) for v in page["Versions"] if v["Version"] != "$LATEST"]
        older = [v for v in versions if v < int(current)]
        if not older:
            raise DeployError(f"{name}: version {current} is the oldest; nothing to roll back to")
        target = str(max(older))
        lam.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=target)
    return current, target, name


def destroy(repo: str, branch: str, *, delete_repository: bool = False, keep_logs: bool = False,
            session: Any = None, dry: bool = False) -> list[Step]:
    """Remove what tagsync created for this environment (checked by its tags), and its logs."""
    import os

    with aws_errors(os.environ.get("AWS_ENDPOINT_URL")):
        session = _session(session)
        identity(session)
        name = resolve_name(session.client, repo, branch)
        return _destroy(name, environment_id(repo, branch), session,
                        delete_repository=delete_repository, keep_logs=keep_logs, dry=dry)


def _destroy(name: str, env_id: str, session: Any, *, delete_repository: bool, keep_logs: bool,
             dry: bool) -> list[Step]:
    """Every ownership is read before the first deletion: a read AWS refuses deletes nothing."""
    events, lam, iam, ecr, logs = (session.client(s) for s in ("events", "lambda", "iam", "ecr", "logs"))
    steps: list[Step] = []

    def ours(tags: dict[str, str]) -> bool:
        return tags.get("tagsync:environment") == name and tags.get("tagsync:id", env_id) == env_id

    def foreign(tags: dict[str, str]) -> bool:
        """Tagged as another environment's: provably not ours."""
        return not ours(tags) and ("tagsync:environment" in tags or "tagsync:id" in tags)

    def step(resource: str, owned: bool, why: str = "not created by tagsync for this branch") -> bool:
        if not owned:
            steps.append(Step(resource, "keep", why))
            return False
        steps.append(Step(resource, "delete"))
        return not dry

    # -- read --
    rule = rule_tags = None
    try:
        rule = events.describe_rule(Name=name)
        rule_tags = _tags_of(events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"])
    except events.exceptions.ResourceNotFoundException:
        pass
    fn = fn_tags = None
    try:
        fn = lam.get_function(FunctionName=name)
        # asked for explicitly: GetFunction hides tags from a caller not allowed lambda:ListTags
        fn_tags = dict(lam.list_tags(Resource=fn["Configuration"]["FunctionArn"]).get("Tags", {}))
    except lam.exceptions.ResourceNotFoundException:
        pass
    role_name = f"{name}-role"
    role = None
    with suppress(iam.exceptions.NoSuchEntityException):
        role = iam.get_role(RoleName=role_name)["Role"]
    function_ours = fn is None or ours(fn_tags or {})
    # a function that stays and is not provably another environment's may run with the role
    role_in_use = fn is not None and not function_ours and (
        not foreign(fn_tags or {}) or (role is not None and fn["Configuration"].get("Role") == role["Arn"]))
    group = f"/aws/lambda/{name}"
    has_logs = not keep_logs and function_ours and any(
        g["logGroupName"] == group for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"])
    repo = repo_tags = None
    if delete_repository:
        try:
            repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
            repo_tags = _tags_of(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
        except ecr.exceptions.RepositoryNotFoundException:
            pass

    # -- delete --
    if rule is not None and step(f"EventBridge rule {name}", ours(rule_tags or {})):
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]]
        if ids:
            events.remove_targets(Rule=name, Ids=ids)
        events.delete_rule(Name=name)
    if fn is not None and step(f"Lambda function {name}", function_ours):
        lam.delete_function(FunctionName=name)
    if role is not None:
        owned = ours(_tags_of(role.get("Tags", []))) and not role_in_use
        why = (f"Lambda function {name} is kept and may run with it" if role_in_use
               else "not created by tagsync for this branch")
        if step(f"IAM role {role_name}", owned, why):
            for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role_name, PolicyArn=p["PolicyArn"])
            for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
            iam.delete_role(RoleName=role_name)
    if has_logs and step(f"log group {group}", True):
        logs.delete_log_group(logGroupName=group)
    if repo is not None and step(f"ECR repository {name} (and its images)", ours(repo_tags or {})):
        ecr.delete_repository(repositoryName=name, force=True)
    return steps
