"""`tagsync org deploy` / `org destroy`: the organisation run on Step Functions, converged.

The function itself is a tagsync function deployed with `tagsync deploy` (its image carries
`org.yaml`, its environment `TAGSYNC_ORG_CONFIG`); this adds what fans it out:

- an S3 bucket for each execution's answers and results (private, expiring after two weeks);
- the state machine (`tagsync.org.statemachine`) and its role;
- the function role's access to that bucket (one inline policy);
- an EventBridge Scheduler schedule that starts the state machine, and the role it starts it
  with.

Each resource is read, compared with what is wanted, and changed only where it differs (a
second deploy changes nothing); everything carries the tag `tagsync:org`, which `destroy`
checks before deleting anything. Names are checked before the first write.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tagsync.aws.calls import (
    ALIAS,
    Step,
    aws_errors,
    check_permissions,
    identity,
    while_propagating,
)
from tagsync.aws.names import org_bucket, org_name, validate_schedule
from tagsync.aws.policies import RUNS_POLICY, org_needs
from tagsync.errors import ConfigError
from tagsync.org.statemachine import definition, role_policy

log = logging.getLogger(__name__)

TAG = "tagsync:org"
EXPIRE_DAYS = 14
_TRUST = {"states": "states.amazonaws.com", "scheduler": "scheduler.amazonaws.com"}
# what Step Functions and Scheduler answer while a new role is not yet assumable
_NOT_YET_ASSUMABLE = (("AccessDeniedException", "is authorized to assume the provided role"),
                      ("ValidationException", "must allow AWS EventBridge Scheduler to assume the role"))


def trust(service: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": _TRUST[service]}, "Action": "sts:AssumeRole"}]}


@dataclass(frozen=True)
class OrgDeploySpec:
    organisation: str
    function: str  # the tagsync function (`tagsync deploy`'s environment name)
    schedule: str = "rate(1 hour)"
    max_concurrency: int = 10

    @property
    def name(self) -> str:
        return org_name(self.organisation)

    def check(self) -> None:
        """Every rule AWS applies to the names, before the first write."""
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", self.organisation):
            raise ConfigError(f"organisation {self.organisation!r} is not a GitHub account name")
        # role, state machine and schedule names: 12 + 39 + "-scheduler" stays within 64
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.function):
            raise ConfigError(f"function {self.function!r} is not a Lambda function name")
        validate_schedule(self.schedule)
        if not 1 <= self.max_concurrency <= 10_000:
            raise ConfigError("max concurrency must be between 1 and 10000 (a Distributed Map's "
                              "limit)")


def bucket_name(spec: OrgDeploySpec, account: str, region: str) -> str:
    """Globally unique and within S3's rules (3-63 lowercase letters, digits, hyphens)."""
    return org_bucket(spec.organisation, account, region)


class OrgDeployer:
    """The steps of one organisation's fan-out; `dry=True` reads and reports, writing nothing."""

    def __init__(self, spec: OrgDeploySpec, *, session: Any = None, dry: bool = False,
                 function_planned: bool = False, sleep: Callable[[float], None] = time.sleep,
                 role_retry_budget: float = 120.0) -> None:
        spec.check()
        import boto3

        self.spec, self.dry, self.function_planned = spec, dry, function_planned
        self.sleep, self.role_retry_budget, self.role_retries = sleep, role_retry_budget, 0
        self.session = session or boto3.session.Session()
        self.steps: list[Step] = []
        self.tags = {TAG: spec.organisation.lower(), "tagsync:managed": "true"}
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def _step(self, resource: str, action: str, detail: str = "") -> bool:
        self.steps.append(Step(resource, action, detail))
        return action not in ("none", "keep") and not self.dry

    def _ours(self, tags: dict[str, str], resource: str) -> None:
        if tags.get(TAG) != self.spec.organisation.lower():
            raise ConfigError(f"{resource} exists and was not created by tagsync for "
                              f"{self.spec.organisation}: rename or remove it first")

    # -- the resources ---------------------------------------------------------------------------

    def function_arn(self, account: str, region: str) -> tuple[str, str]:
        """The function's `live` alias and its role's name: the function must exist already
        (a plan made together with the function's own first deploy names the one to come)."""
        lam = self.client("lambda")
        try:  # GetFunction: the deploy role's read of its functions already (no other action)
            conf = lam.get_function(FunctionName=self.spec.function)["Configuration"]
        except lam.exceptions.ResourceNotFoundException:
            if self.dry and self.function_planned:
                return (f"arn:aws:lambda:{region}:{account}:function:{self.spec.function}:{ALIAS}",
                        f"{self.spec.function}-role")
            raise ConfigError(f"no Lambda function {self.spec.function}: deploy it first with "
                              "`tagsync deploy --org -c org.yaml`") from None
        return f"{conf['FunctionArn']}:{ALIAS}", str(conf["Role"]).rsplit("/", 1)[-1]

    def bucket(self, name: str, account: str, region: str) -> None:
        """Every call names this account as the bucket's owner: the name is guessable, and a
        bucket of that name in another account (tagged to look like ours) must never hold
        the organisation's answers."""
        s3 = self.client("s3")
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(
                Bucket=name, ExpectedBucketOwner=account)["TagSet"]}
        except s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "AccessDenied":  # the permissions were checked: another account's
                raise ConfigError(f"S3 bucket {name} exists and is not account {account}'s (or "
                                  "may not be read): nothing was changed; its name is taken "
                                  "elsewhere, which the organisation's fan-out cannot share") from None
            if code not in ("NoSuchBucket", "NoSuchTagSet"):
                raise
            if code == "NoSuchTagSet":
                self._ours({}, f"S3 bucket {name}")
            if not self._step(f"S3 bucket {name}", "create", f"private, runs expire after "
                                                               f"{EXPIRE_DAYS} days"):
                return
            kwargs: dict[str, Any] = {}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(Bucket=name, **kwargs)
            # tagged first: a deploy interrupted after this finds the bucket its own
            s3.put_bucket_tagging(Bucket=name, ExpectedBucketOwner=account, Tagging={"TagSet": [
                {"Key": k, "Value": v} for k, v in self.tags.items()]})
            s3.put_public_access_block(Bucket=name, ExpectedBucketOwner=account,
                                       PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
            s3.put_bucket_lifecycle_configuration(Bucket=name, ExpectedBucketOwner=account,
                                                  LifecycleConfiguration={"Rules": [{
                "ID": "expire-runs", "Status": "Enabled", "Filter": {"Prefix": ""},
                "Expiration": {"Days": EXPIRE_DAYS}}]})
            return
        self._ours(tags, f"S3 bucket {name}")
        self._step(f"S3 bucket {name}", "none")

    def role(self, name: str, service: str, policy_name: str, policy: dict[str, Any]) -> str:
        iam = self.client("iam")
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            role = None
        if role is None:
            if self._step(f"IAM role {name}", "create", f"{service} trust, {policy_name}"):
                created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust(service)),
                                          Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
                iam.put_role_policy(RoleName=name, PolicyName=policy_name,
                                    PolicyDocument=json.dumps(policy))
                return str(created["Role"]["Arn"])
            account = self.client("sts").get_caller_identity()["Account"]
            return f"arn:aws:iam::{account}:role/{name}"
        self._ours({t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]},
                   f"IAM role {name}")
        current_trust = role.get("AssumeRolePolicyDocument")
        fixes = []
        if (json.loads(current_trust) if isinstance(current_trust, str) else current_trust) != trust(service):
            fixes.append("trust policy")
        if self._inline(iam, name, policy_name) != policy:
            fixes.append(policy_name)
        if self._step(f"IAM role {name}", "update" if fixes else "none", ", ".join(fixes)):
            if "trust policy" in fixes:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust(service)))
            if policy_name in fixes:
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
        return str(role["Arn"])

    def _retry_role(self, call: Callable[[], Any]) -> Any:
        """A role created moments ago is not yet assumable everywhere (IAM propagation): Step
        Functions and Scheduler refuse it with these exact errors for a few seconds. Retried
        with backoff within a time budget; any other error at once."""
        return while_propagating(call, _NOT_YET_ASSUMABLE, self.role_retry_budget, self.sleep,
                                 self._retried)

    def _retried(self) -> None:
        self.role_retries += 1

    @staticmethod
    def _inline(iam: Any, role: str, name: str) -> Any:
        """The role's inline policy `name`; None without it (or, in a plan, without the role)."""
        try:
            names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        except iam.exceptions.NoSuchEntityException:
            return None
        if name not in names:
            return None
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        return json.loads(doc) if isinstance(doc, str) else doc

    def function_access(self, role: str, bucket: str) -> None:
        """The function reads answers and writes results in the bucket: one inline policy."""
        iam = self.client("iam")
        wanted = {"Version": "2012-10-17", "Statement": [{
            "Sid": "OrganisationRuns", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::{bucket}/*"}]}
        current = self._inline(iam, role, RUNS_POLICY)
        action = "none" if current == wanted else ("create" if current is None else "update")
        if self._step(f"{RUNS_POLICY} on IAM role {role}", action, f"s3://{bucket}/*"):
            iam.put_role_policy(RoleName=role, PolicyName=RUNS_POLICY, PolicyDocument=json.dumps(wanted))

    def state_machine(self, arn: str, role: str, document: dict[str, Any]) -> None:
        sfn = self.client("stepfunctions")
        try:
            current = sfn.describe_state_machine(stateMachineArn=arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            current = None
        if current is None:
            if self._step(f"state machine {self.spec.name}", "create", "Distributed Map"):
                self._retry_role(lambda: sfn.create_state_machine(
                    name=self.spec.name, roleArn=role, type="STANDARD", definition=json.dumps(document),
                    tags=[{"key": k, "value": v} for k, v in self.tags.items()]))
            return
        self._ours({t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]},
                   f"state machine {self.spec.name}")
        fixes = [what for what, same in (("definition", json.loads(current["definition"]) == document),
                                         ("role", current["roleArn"] == role)) if not same]
        if self._step(f"state machine {self.spec.name}", "update" if fixes else "none", ", ".join(fixes)):
            self._retry_role(lambda: sfn.update_state_machine(
                stateMachineArn=arn, definition=json.dumps(document), roleArn=role))

    def schedule(self, machine: str, role: str) -> None:
        scheduler = self.client("scheduler")
        wanted_target = {"Arn": machine, "RoleArn": role, "Input": "{}"}
        try:
            current = scheduler.get_schedule(Name=self.spec.name)
        except scheduler.exceptions.ResourceNotFoundException:
            current = None
        kwargs = {"Name": self.spec.name, "ScheduleExpression": self.spec.schedule,
                  "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": wanted_target, "State": "ENABLED",
                  "Description": f"tagsync: every repository of {self.spec.organisation}"}
        if current is None:
            if self._step(f"schedule {self.spec.name}", "create", self.spec.schedule):
                self._retry_role(lambda: scheduler.create_schedule(**kwargs))
            return
        target = current.get("Target", {})
        same = (current.get("ScheduleExpression") == self.spec.schedule
                and current.get("State") == "ENABLED"
                and {k: target.get(k) for k in wanted_target} == wanted_target)
        if self._step(f"schedule {self.spec.name}", "none" if same else "update", self.spec.schedule):
            self._retry_role(lambda: scheduler.update_schedule(**kwargs))

    # -- the whole deploy -----------------------------------------------------------------------

    def deploy(self) -> list[Step]:
        """Every read that can refuse (a missing function, a resource of the same name not
        ours) happens in a dry pass first: a refused deploy creates nothing."""
        import os

        if not self.dry:
            OrgDeployer(self.spec, session=self.session, dry=True).deploy()
        with aws_errors(os.environ.get("AWS_ENDPOINT_URL")):
            caller: list[str] = []
            account, region = identity(self.session, self.client("sts"), caller)
            bucket = bucket_name(self.spec, account, region)
            function, function_role = self.function_arn(account, region)
            if self.dry:  # the permissions, before the first write (the real deploy's dry pass)
                self.steps.append(check_permissions(
                    self.client("iam"), caller[0] if caller else "",
                    org_needs(self.spec.organisation, account, region, function=self.spec.function,
                              function_role=function_role), "the organisation's fan-out"))
            machine = f"arn:aws:states:{region}:{account}:stateMachine:{self.spec.name}"
            self.bucket(bucket, account, region)
            self.function_access(function_role, bucket)
            sfn_role = self.role(f"{self.spec.name}-sfn", "states", "tagsync-org-machine",
                                 role_policy(function, bucket, machine))
            self.state_machine(machine, sfn_role, definition(
                function, bucket, max_concurrency=self.spec.max_concurrency))
            start = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "states:StartExecution", "Resource": machine}]}
            scheduler_role = self.role(f"{self.spec.name}-scheduler", "scheduler",
                                       "tagsync-org-start", start)
            self.schedule(machine, scheduler_role)
        return self.steps

    def destroy(self) -> list[Step]:
        """Delete what deploy made for this organisation. Every ownership is read before the
        first deletion (a read AWS refuses deletes nothing); what is not provably this
        organisation's is kept and said: a resource without its tag, a schedule starting
        another state machine. The bucket is deleted once empty (its expiry rule empties it),
        else kept and said."""
        import os

        with aws_errors(os.environ.get("AWS_ENDPOINT_URL")):
            account, region = identity(self.session, self.client("sts"))
            found = self._destroy_reads(account, region)
            for resource, (owned, delete) in found.items():
                if owned is not True:
                    self._step(resource, "keep", owned or "")
                elif self._step(resource, "delete"):
                    delete()
        return self.steps

    def _destroy_reads(self, account: str, region: str) -> dict[str, tuple[str | bool, Any]]:
        """resource -> (True when ours, else why it is kept; its deletion), in deletion order."""
        name, org = self.spec.name, self.spec.organisation
        machine = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
        scheduler, sfn, iam, lam, s3 = (self.client(s) for s in (
            "scheduler", "stepfunctions", "iam", "lambda", "s3"))
        not_ours = f"not created by tagsync for {org}"
        found: dict[str, tuple[str | bool, Any]] = {}
        machine_owned: str | bool = True  # absent: nothing of another's to start
        try:
            tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=machine)["tags"]}
            sfn.describe_state_machine(stateMachineArn=machine)
            machine_owned = tags.get(TAG) == org.lower() or not_ours
            machine_found = True
        except (sfn.exceptions.StateMachineDoesNotExist, sfn.exceptions.ResourceNotFound):
            machine_found = False
        try:
            target = scheduler.get_schedule(Name=name).get("Target", {}).get("Arn")
            owned = True if target == machine and machine_owned is True else \
                f"starts {target}, not this organisation's state machine"
            found[f"schedule {name}"] = (owned, lambda: scheduler.delete_schedule(Name=name))
        except scheduler.exceptions.ResourceNotFoundException:
            pass
        if machine_found:
            found[f"state machine {name}"] = (
                machine_owned, lambda: sfn.delete_state_machine(stateMachineArn=machine))
        try:
            function_role = str(lam.get_function(FunctionName=self.spec.function)[
                "Configuration"]["Role"]).rsplit("/", 1)[-1]
            if RUNS_POLICY in iam.list_role_policies(RoleName=function_role)["PolicyNames"]:
                found[f"{RUNS_POLICY} on IAM role {function_role}"] = (True, lambda: iam.delete_role_policy(
                    RoleName=function_role, PolicyName=RUNS_POLICY))
        except (lam.exceptions.ResourceNotFoundException, iam.exceptions.NoSuchEntityException):
            pass
        for role in (f"{name}-scheduler", f"{name}-sfn"):
            try:
                tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role)["Tags"]}
            except iam.exceptions.NoSuchEntityException:
                continue
            found[f"IAM role {role}"] = (tags.get(TAG) == org.lower() or not_ours,
                                         lambda role=role: self._delete_role(iam, role))
        bucket = bucket_name(self.spec, account, region)
        bucket_tags: dict[str, str] | None
        try:
            bucket_tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(
                Bucket=bucket, ExpectedBucketOwner=account)["TagSet"]}
        except s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("NoSuchBucket", "NoSuchTagSet"):
                raise
            bucket_tags = None if code == "NoSuchBucket" else {}
        if bucket_tags is not None:
            found[f"S3 bucket {bucket}"] = (bucket_tags.get(TAG) == org.lower() or not_ours,
                                           lambda: self._delete_bucket(bucket, account))
        return found

    @staticmethod
    def _delete_role(iam: Any, role: str) -> None:
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=policy)
        iam.delete_role(RoleName=role)

    def _delete_bucket(self, name: str, account: str) -> None:
        """Runs still stored keep it (its expiry rule empties it within EXPIRE_DAYS days:
        destroy again then), said in the step."""
        s3 = self.client("s3")
        try:
            s3.delete_bucket(Bucket=name, ExpectedBucketOwner=account)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
                raise
            self.steps[-1] = Step(f"S3 bucket {name}", "keep", f"runs are still stored: its expiry rule "
                                  f"empties it within {EXPIRE_DAYS} days, then destroy again")
