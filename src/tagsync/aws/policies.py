"""IAM documents: the function's role (exactly the reads its run needs) and the deploy role.

The deploy role is what the scaffolded GitHub workflow assumes through OIDC. Its permission
policy lists exactly the API actions `tagsync deploy`, `rollback` and `destroy` call, scoped to
the resources of this repository's environments (names start with the repository's name);
`iam:PassRole` only for those function roles and only to Lambda. The tests record every call
deploy and destroy make on moto and check each is allowed here, and that nothing here is unused.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
LAMBDA_TRUST: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
GITHUB_OIDC = "token.actions.githubusercontent.com"
DEPLOY_ROLE = "tagsync-deploy"  # the role the scaffolded workflow assumes
LAMBDA = "lambda.amazonaws.com"
# what Lambda needs in an image's repository policy to pull it (AWS adds it itself only when the
# deploying caller may ecr:GetRepositoryPolicy and ecr:SetRepositoryPolicy: deploy sets it)
LAMBDA_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
# the ECR reads of a run (registry/ecr.py): tags and push times, manifests, blobs, namespaces
ECR_READS = ["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:DescribeRepositories",
             "ecr:GetDownloadUrlForLayer"]


def role_policy(refs: tuple[str, ...], config_ref: str, ecr_registries: tuple[tuple[str, str], ...],
                account: str, region: str) -> dict[str, Any]:
    """Read access to exactly the secrets, parameters, config object and ECR registries the run names."""
    from tagsync.secrets import SecretRef

    secrets, params, objects = [], [], []
    for text in refs:
        ref = SecretRef.parse(text)
        if ref.scheme == "aws-secretsmanager":
            name = ref.name.partition("#")[0]
            # Secret ARNs end in a random 6-character suffix: match it, nothing more.
            secrets.append(name if name.startswith("arn:") else
                           f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????")
        elif ref.scheme == "aws-ssm":
            params.append(ref.name if ref.name.startswith("arn:") else
                          f"arn:aws:ssm:{region}:{account}:parameter/{ref.name.lstrip('/')}")
    if config_ref.startswith("ssm:"):
        params.append(f"arn:aws:ssm:{region}:{account}:parameter/{config_ref[4:].lstrip('/')}")
    elif config_ref.startswith("s3://"):
        objects.append(f"arn:aws:s3:::{config_ref[5:]}")
    statements: list[dict[str, Any]] = []
    if secrets:
        statements.append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": sorted(set(secrets))})
    if params:
        statements.append({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": sorted(set(params))})
    if objects:
        statements.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": sorted(set(objects))})
    if ecr_registries:
        statements.append({"Effect": "Allow", "Action": ECR_READS, "Resource": sorted(
            {f"arn:aws:ecr:{r}:{a}:repository/*" for a, r in ecr_registries})})
    return {"Version": "2012-10-17", "Statement": statements}


def deploy_trust_policy(repo: str, account: str, branches: tuple[str, ...] = ()) -> dict[str, Any]:
    """Trust GitHub's OIDC tokens of this repository only (of these branches, when given)."""
    subjects = [f"repo:{repo}:ref:refs/heads/{b}" for b in branches] or [f"repo:{repo}:ref:refs/heads/*"]
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"},
            "StringLike": {f"{GITHUB_OIDC}:sub": subjects}}}]}


RUNS_POLICY = "tagsync-org-runs"  # the organisation function role's access to the runs bucket
STATES = "states.amazonaws.com"
SCHEDULER = "scheduler.amazonaws.com"


def org_permission_statements(organisation: str, account: str, region: str) -> list[dict[str, Any]]:
    """What `deploy --org`, `org deploy` and `org destroy` add to a repository's deploy: the
    fan-out's bucket, state machine, schedule and their two roles, each by its exact name
    (tagsync.aws.names derives them); each role passed only to the service that runs it. The
    function role's access to the bucket and the function read are the repository's own
    statements (FunctionRole, Function)."""
    from tagsync.aws.names import org_bucket, org_name

    name = org_name(organisation)
    machine_role = f"arn:aws:iam::{account}:role/{name}-sfn"
    scheduler_role = f"arn:aws:iam::{account}:role/{name}-scheduler"
    return [
        {"Sid": "OrgRunsBucket", "Effect": "Allow",
         "Resource": f"arn:aws:s3:::{org_bucket(organisation, account, region)}", "Action": [
             "s3:CreateBucket", "s3:DeleteBucket", "s3:GetBucketTagging",
             "s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging", "s3:PutLifecycleConfiguration"]},
        {"Sid": "OrgStateMachine", "Effect": "Allow",
         "Resource": f"arn:aws:states:{region}:{account}:stateMachine:{name}", "Action": [
             "states:CreateStateMachine", "states:DeleteStateMachine", "states:DescribeStateMachine",
             "states:ListTagsForResource", "states:TagResource", "states:UpdateStateMachine"]},
        # Scheduler's default group: a schedule's ARN names its group
        {"Sid": "OrgSchedule", "Effect": "Allow",
         "Resource": f"arn:aws:scheduler:{region}:{account}:schedule/default/{name}", "Action": [
             "scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule",
             "scheduler:UpdateSchedule"]},
        {"Sid": "OrgRoles", "Effect": "Allow", "Resource": [machine_role, scheduler_role], "Action": [
            "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:GetRole",
            "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListRoleTags", "iam:PutRolePolicy",
            "iam:TagRole", "iam:UpdateAssumeRolePolicy"]},
        {"Sid": "PassStateMachineRole", "Effect": "Allow", "Resource": machine_role,
         "Action": ["iam:PassRole"], "Condition": {"StringEquals": {"iam:PassedToService": STATES}}},
        {"Sid": "PassSchedulerRole", "Effect": "Allow", "Resource": scheduler_role,
         "Action": ["iam:PassRole"], "Condition": {"StringEquals": {"iam:PassedToService": SCHEDULER}}},
    ]


def deploy_permission_policy(repo: str, account: str, region: str,
                             organisation: str | None = None) -> dict[str, Any]:
    """Least privilege for `tagsync deploy`, `rollback` and `destroy` of `repo`'s environments;
    with `organisation`, also for that organisation's fan-out (`deploy --org`, `org destroy`)."""
    from tagsync.aws.names import name_prefix

    p = name_prefix(repo)
    ecr_repo = f"arn:aws:ecr:{region}:{account}:repository/{p}*"
    function = f"arn:aws:lambda:{region}:{account}:function:{p}*"
    role = f"arn:aws:iam::{account}:role/{p}*-role"
    rule = f"arn:aws:events:{region}:{account}:rule/{p}*"
    logs = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{p}*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "EcrRepository", "Effect": "Allow", "Resource": ecr_repo, "Action": [
            "ecr:CreateRepository", "ecr:DeleteRepository", "ecr:DescribeImages",
            "ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy",
            "ecr:ListTagsForResource", "ecr:PutImageScanningConfiguration",
            "ecr:PutImageTagMutability", "ecr:PutLifecyclePolicy", "ecr:SetRepositoryPolicy",
            "ecr:TagResource"]},
        # Pushing goes through the registry protocol (docker push or tagsync build), not the API.
        {"Sid": "EcrPush", "Effect": "Allow", "Resource": ecr_repo, "Action": [
            "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
            "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:PutImage",
            "ecr:UploadLayerPart"]},
        {"Sid": "EcrLogin", "Effect": "Allow", "Resource": "*", "Action": ["ecr:GetAuthorizationToken"]},
        {"Sid": "FunctionRole", "Effect": "Allow", "Resource": role, "Action": [
            "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:GetRole",
            "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies",
            "iam:PutRolePolicy", "iam:TagRole", "iam:UpdateAssumeRolePolicy"]},
        {"Sid": "FunctionRoleBasicExecution", "Effect": "Allow", "Resource": role,
         "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
         "Condition": {"ArnEquals": {"iam:PolicyARN": BASIC_EXECUTION}}},
        {"Sid": "PassFunctionRole", "Effect": "Allow", "Resource": role, "Action": ["iam:PassRole"],
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Sid": "Function", "Effect": "Allow", "Resource": [function, f"{function}:*"], "Action": [
            "lambda:AddPermission", "lambda:CreateAlias", "lambda:CreateFunction",
            "lambda:DeleteFunction", "lambda:GetAlias", "lambda:GetFunction",
            "lambda:GetPolicy", "lambda:ListTags", "lambda:ListVersionsByFunction",
            "lambda:PublishVersion",
            "lambda:RemovePermission", "lambda:TagResource", "lambda:UpdateAlias",
            "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration"]},
        {"Sid": "Schedule", "Effect": "Allow", "Resource": rule, "Action": [
            "events:DeleteRule", "events:DescribeRule", "events:ListTagsForResource",
            "events:ListTargetsByRule", "events:PutRule", "events:PutTargets",
            "events:RemoveTargets", "events:TagResource"]},
        # the permissions preflight asks IAM whether this role may do what the deploy will do
        {"Sid": "Preflight", "Effect": "Allow", "Resource": f"arn:aws:iam::{account}:role/{DEPLOY_ROLE}",
         "Action": ["iam:SimulatePrincipalPolicy"]},
        {"Sid": "Logs", "Effect": "Allow", "Resource": logs, "Action": ["logs:DeleteLogGroup"]},
        # DescribeLogGroups is authorised on the account's log groups, not on one group.
        {"Sid": "FindLogs", "Effect": "Allow",
         "Resource": f"arn:aws:logs:{region}:{account}:log-group:*", "Action": ["logs:DescribeLogGroups"]},
        *(org_permission_statements(organisation, account, region) if organisation else []),
    ]}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str) -> bool:
    """IAM's `*` and `?` (fnmatch's, without its `[...]` classes)."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def lambda_may_pull(policy: dict[str, Any] | None, function_arn: str) -> bool:
    """Does a repository policy let Lambda pull images for this function? A statement counts when
    it allows both actions to lambda.amazonaws.com with no condition, or with one on
    aws:SourceArn that matches the function; any Deny naming Lambda makes it not count."""
    if not policy:
        return False
    granted: set[str] = set()
    for st in _listed(policy.get("Statement", [])):
        principal = st.get("Principal")
        services = ["*"] if principal == "*" else _listed((principal or {}).get("Service", []))
        if not any(s in ("*", LAMBDA) for s in services):
            continue
        listed = [p.lower() for p in _listed(st.get("Action", []))]
        actions = [a for a in LAMBDA_PULL if any(_like(p, a.lower()) for p in listed)]
        if st.get("Effect") == "Deny" and actions:
            return False
        if st.get("Effect") != "Allow" or "NotAction" in st:
            continue
        ok = True
        for op, keys in (st.get("Condition") or {}).items():
            for key, wanted in keys.items():
                if key.lower() != "aws:sourcearn" or op not in ("StringLike", "ArnLike", "StringEquals",
                                                                "ArnEquals"):
                    ok = False
                elif op.endswith("Equals"):
                    ok = ok and function_arn in _listed(wanted)
                else:
                    ok = ok and any(_like(w, function_arn) for w in _listed(wanted))
        if ok:
            granted.update(actions)
    return granted == set(LAMBDA_PULL)


def with_lambda_pull(policy: dict[str, Any] | None, sid: str, function_arn: str) -> dict[str, Any]:
    """`policy` plus (or with a fresh) statement `sid` letting Lambda pull for this function."""
    base = dict(policy or {"Version": "2012-10-17"})
    statements = [s for s in _listed(base.get("Statement", [])) if s.get("Sid") != sid]
    statements.append({"Sid": sid, "Effect": "Allow", "Principal": {"Service": LAMBDA},
                       "Action": list(LAMBDA_PULL),
                       "Condition": {"StringLike": {"aws:sourceArn": [function_arn, f"{function_arn}:*"]}}})
    return {**base, "Statement": statements}


Needed = tuple[str, tuple[str, ...], dict[str, str]]  # resource ARN, actions, condition keys


def deploy_needs(name: str, account: str, region: str, *, image_repository: str, build: bool,
                 replace: bool) -> list[Needed]:
    """The actions a deploy of environment `name` may call, by resource (for the preflight)."""
    repo = f"arn:aws:ecr:{region}:{account}:repository/{name}"
    role = f"arn:aws:iam::{account}:role/{name}-role"
    function = f"arn:aws:lambda:{region}:{account}:function:{name}"
    rule = f"arn:aws:events:{region}:{account}:rule/{name}"
    out: list[Needed] = [
        (repo, ("ecr:CreateRepository", "ecr:DescribeRepositories", "ecr:DescribeImages",
                "ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy", "ecr:ListTagsForResource",
                "ecr:TagResource", "ecr:PutImageTagMutability", "ecr:PutImageScanningConfiguration",
                "ecr:BatchGetImage", "ecr:PutImage"), {}),
        (f"arn:aws:ecr:{region}:{account}:repository/{image_repository}",
         ("ecr:DescribeImages", "ecr:GetRepositoryPolicy", "ecr:SetRepositoryPolicy"), {}),
        (role, ("iam:CreateRole", "iam:GetRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
                "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy",
                "iam:PutRolePolicy", "iam:DeleteRolePolicy"), {}),
        (role, ("iam:AttachRolePolicy",), {"iam:PolicyARN": BASIC_EXECUTION}),
        (role, ("iam:PassRole",), {"iam:PassedToService": LAMBDA}),
        (function, ("lambda:CreateFunction", "lambda:GetFunction", "lambda:ListTags", "lambda:TagResource",
                    "lambda:UpdateFunctionConfiguration", "lambda:UpdateFunctionCode",
                    "lambda:PublishVersion", "lambda:ListVersionsByFunction")
         + (("lambda:DeleteFunction",) if replace else ()), {}),
        (f"{function}:live", ("lambda:GetAlias", "lambda:CreateAlias", "lambda:UpdateAlias",
                              "lambda:GetPolicy", "lambda:AddPermission", "lambda:RemovePermission"), {}),
        (rule, ("events:PutRule", "events:DescribeRule", "events:ListTagsForResource", "events:TagResource",
                "events:ListTargetsByRule", "events:PutTargets", "events:RemoveTargets"), {}),
    ]
    if build:
        out += [("*", ("ecr:GetAuthorizationToken",), {}),
                (repo, ("ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                        "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer"), {})]
    return out


def org_needs(organisation: str, account: str, region: str, *, function: str,
              function_role: str) -> list[Needed]:
    """The actions the organisation's fan-out deploy may call, by resource (for the preflight)."""
    from tagsync.aws.names import org_bucket, org_name

    name = org_name(organisation)
    role = f"arn:aws:iam::{account}:role/{{}}"
    roles = ("iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:ListRoleTags", "iam:ListRolePolicies",
             "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy")
    return [
        (f"arn:aws:lambda:{region}:{account}:function:{function}", ("lambda:GetFunction",), {}),
        (f"arn:aws:s3:::{org_bucket(organisation, account, region)}",
         ("s3:GetBucketTagging", "s3:CreateBucket", "s3:PutBucketPublicAccessBlock",
          "s3:PutLifecycleConfiguration", "s3:PutBucketTagging"), {}),
        (role.format(function_role), ("iam:ListRolePolicies", "iam:GetRolePolicy", "iam:PutRolePolicy"), {}),
        (role.format(f"{name}-sfn"), roles, {}),
        (role.format(f"{name}-sfn"), ("iam:PassRole",), {"iam:PassedToService": STATES}),
        (f"arn:aws:states:{region}:{account}:stateMachine:{name}",
         ("states:DescribeStateMachine", "states:ListTagsForResource", "states:CreateStateMachine",
          "states:TagResource", "states:UpdateStateMachine"), {}),
        (role.format(f"{name}-scheduler"), roles, {}),
        (role.format(f"{name}-scheduler"), ("iam:PassRole",), {"iam:PassedToService": SCHEDULER}),
        (f"arn:aws:scheduler:{region}:{account}:schedule/default/{name}",
         ("scheduler:GetSchedule", "scheduler:CreateSchedule", "scheduler:UpdateSchedule"), {}),
    ]


def principal_of(caller_arn: str) -> str | None:
    """The IAM principal behind STS's caller ARN (an assumed role's role; a user), if one is."""
    m = re.fullmatch(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)
    if m:
        return f"arn:{m[1]}:iam::{m[2]}:role/{m[3]}"
    m = re.fullmatch(r"arn:(aws[a-z-]*):(?:iam|sts)::(\d{12}):user/(.+)", caller_arn)
    return f"arn:{m[1]}:iam::{m[2]}:user/{m[3]}" if m else None
