"""What every command on an environment (deploy, rollback, destroy, the organisation's deploy)
shares: botocore's exceptions as typed errors, the caller's account, the environment's name as
AWS resolves it, and the `Step` each reports."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from tagsync.aws.names import environment_id, environment_name, qualified_name
from tagsync.aws.policies import Needed, principal_of
from tagsync.errors import ConfigError, TagsyncError

log = logging.getLogger("tagsync.aws.deploy")  # every step's line names the deploy
_T = TypeVar("_T")

ALIAS = "live"


class DeployError(TagsyncError):
    """AWS refused a step, or could not be reached; earlier steps stay as they are."""


@dataclass(frozen=True)
class Step:
    resource: str
    action: str  # create | update | none | delete | keep
    detail: str = ""

    def __str__(self) -> str:
        verb = {"none": "unchanged", "create": "create", "update": "update", "delete": "delete",
                "keep": "keep", "replace": "replace"}[self.action]
        return f"{verb:9s} {self.resource}" + (f"  ({self.detail})" if self.detail else "")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _message(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", exc))


@contextmanager
def aws_errors(endpoint: str | None) -> Iterator[None]:
    """botocore's exceptions as typed errors: AWS refusals, unreachable or non-AWS endpoints."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
    )

    where = endpoint or "AWS"
    try:
        yield
    except NoCredentialsError:
        raise ConfigError("no AWS credentials: in GitHub Actions use "
                          "aws-actions/configure-aws-credentials with OIDC; locally set "
                          "AWS_PROFILE or AWS_ACCESS_KEY_ID") from None
    except NoRegionError:
        raise ConfigError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)") from None
    except ClientError as exc:
        op, code = exc.operation_name, _code(exc)
        if code.isdigit() or not code:
            raise DeployError(f"{where} does not answer like AWS: HTTP {code or '?'} to {op}") from None
        raise DeployError(f"AWS refused {op}: {code}: {_message(exc)}") from None
    except ParamValidationError as exc:  # a bug of ours: the request breaks the service's model
        raise DeployError(f"tagsync built a request AWS would refuse: {exc}") from None
    except BotoCoreError as exc:
        kind = type(exc).__name__
        if "Parser" in kind or "Parse" in kind:
            raise DeployError(f"{where} does not answer like AWS ({kind}): is AWS_ENDPOINT_URL "
                              "right?") from None
        raise DeployError(f"cannot talk to {where}: {exc}") from None


def _tags_of(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in items or []}


def _claims(client: Callable[[str], Any], name: str) -> set[str]:
    """The `tagsync:id`s on the resources named `name` (function, role, repository, rule)."""
    lam, iam, ecr, events = (client(s) for s in ("lambda", "iam", "ecr", "events"))
    found: list[dict[str, str]] = []
    with suppress(lam.exceptions.ResourceNotFoundException):
        arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        found.append(dict(lam.list_tags(Resource=arn).get("Tags", {})))
    with suppress(iam.exceptions.NoSuchEntityException):
        found.append(_tags_of(iam.get_role(RoleName=f"{name}-role")["Role"].get("Tags")))
    with suppress(ecr.exceptions.RepositoryNotFoundException):
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryArn"]
        found.append(_tags_of(ecr.list_tags_for_resource(resourceArn=repo).get("tags")))
    with suppress(events.exceptions.ResourceNotFoundException):
        rule = events.describe_rule(Name=name)["Arn"]
        found.append(_tags_of(events.list_tags_for_resource(ResourceARN=rule).get("Tags")))
    return {tags["tagsync:id"] for tags in found if "tagsync:id" in tags}


def resolve_name(client: Callable[[str], Any], repo: str, branch: str) -> str:
    """The environment's name: `<repo>-<branch>`, unless that belongs to a repository of the same
    name under another owner (or this environment already lives at the qualified name), then
    the qualified name (with a hash of owner/repo/branch). Both start with the policy's prefix."""
    plain, qualified = environment_name(repo, branch), qualified_name(repo, branch)
    if plain == qualified:
        return plain
    env_id = environment_id(repo, branch)
    if env_id in _claims(client, qualified) or _claims(client, plain) - {env_id}:
        return qualified
    return plain


def identity(session: Any, sts: Any = None, caller: list[str] | None = None) -> tuple[str, str]:
    """(account, region) from STS, which needs no permission: also proves the endpoint is AWS.
    The caller's ARN is appended to `caller` when given."""
    region = session.region_name
    if not region:
        raise ConfigError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)")
    sts = sts or session.client("sts")
    try:
        answer = sts.get_caller_identity()
        account = answer.get("Account")
        if caller is not None and isinstance(answer.get("Arn"), str):
            caller.append(answer["Arn"])
    except (KeyError, ValueError, TypeError, AttributeError):  # botocore read a body that is not AWS's
        account = None
    if not isinstance(account, str) or not re.fullmatch(r"\d{12}", account):
        raise DeployError(f"{sts.meta.endpoint_url} does not answer like AWS (STS "
                          "GetCallerIdentity gave no account): is AWS_ENDPOINT_URL right?")
    return account, str(region)


def check_permissions(iam: Any, caller_arn: str, needs: list[Needed], what: str) -> Step:
    """Ask IAM's simulator whether the caller may call every action `needs` lists, on its
    resource and with its condition keys, before the first write: a ConfigError naming each one
    refused ("Nothing was changed"). A caller that is not an IAM role or user, or may not
    simulate, gets the list of actions in the returned step instead."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    principal = principal_of(caller_arn)
    actions = sorted({a for _, names, _ in needs for a in names})
    resource = f"permissions of {principal or caller_arn}"
    if principal is None:
        return Step(resource, "none", f"not checked (not an IAM role or user); {what} needs: "
                    + ", ".join(actions))
    denied: list[str] = []
    try:
        for arn, names, context in needs:
            answer = iam.simulate_principal_policy(
                PolicySourceArn=principal, ActionNames=list(names), ResourceArns=[arn],
                ContextEntries=[{"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
                                for k, v in context.items()])
            denied += [f"{r['EvalActionName']} on {r['EvalResourceName']}"
                       for r in answer["EvaluationResults"] if r["EvalDecision"] != "allowed"]
    except (ClientError, BotoCoreError, ResponseParserError) as exc:  # not allowed; no simulator
        why = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        log.warning("cannot check permissions (%s): %s needs %s", why, what, ", ".join(actions))
        return Step(resource, "none", f"not checked ({why} to iam:SimulatePrincipalPolicy); "
                    f"{what} needs: " + ", ".join(actions))
    if denied:
        scaffold = "tagsync scaffold --org" if what.startswith("the organisation") else "tagsync scaffold"
        raise ConfigError(f"{principal} may not: {'; '.join(denied)}. Nothing was changed: add them "
                          f"to its policy ({scaffold} writes aws/tagsync-deploy-policy.json)")
    return Step(resource, "none", f"{len(actions)} actions allowed (iam:SimulatePrincipalPolicy)")


def while_propagating(call: Callable[[], _T], not_yet: tuple[tuple[str, str], ...], budget: float,
                      sleep: Callable[[float], None], retried: Callable[[], None],
                      by: str = "") -> _T:
    """`call()`, retried while AWS refuses a role created moments ago as not yet assumable (IAM
    propagation: `not_yet` lists those refusals as (code, words in the message)), with backoff
    (1 s doubling to 16 s) within `budget` seconds; any other error at once."""
    from botocore.exceptions import ClientError

    delay, waited = 1.0, 0.0
    while True:
        try:
            return call()
        except ClientError as exc:
            code, message = _code(exc), _message(exc)
            if not any(code == c and text in message for c, text in not_yet):
                raise
            if waited + delay > budget:
                raise DeployError(f"the new role is still not assumable{by} after {waited:.0f} s: "
                                  f"{message}") from None
            retried()
            log.info("role not yet assumable (IAM propagation); retrying in %.0f s", delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 16.0)
