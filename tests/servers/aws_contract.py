"""AWS's API models as a contract for the moto fixture: a request AWS would refuse fails the test.

moto accepts much that AWS refuses (a 272-character description, `#` in an IAM tag value, an
unknown enum value). botocore ships each service's model with the constraints AWS enforces:
lengths, patterns, enums, required members, list and map sizes, integer ranges. Every call a
client in this process makes goes through `BaseClient._make_api_call`; the contract checks its
parameters against the operation's input shape before it is sent, and records the call as the
IAM action it needs (plus the actions AWS authorises implicitly: tagging on create, PassRole),
so a test can compare what deploy calls with what the deploy role's policy allows.

Patterns are matched whole, as AWS's services match them (Java's `matches`), with the `regex`
module for `\\p{L}`-style classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import regex

from tests.servers.aws_strict import StrictAws

# S3 operations whose IAM action has another name (the S3 API reference's "Permissions")
S3_ACTIONS = {
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "DeleteBucketTagging": "PutBucketTagging",
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket",
    "HeadObject": "GetObject",
    "ListBuckets": "ListAllMyBuckets",
    "DeleteObjects": "DeleteObject",
}


@dataclass(frozen=True)
class Call:
    action: str  # IAM action, e.g. lambda:CreateFunction
    params: dict[str, Any]


@dataclass
class AwsContract:
    violations: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    recording: bool = True
    strict: StrictAws = field(default_factory=StrictAws)
    _patterns: dict[str, Any] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        contract = self
        self.strict.original = original

        def checked(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            model = client.meta.service_model
            op = model.operation_model(operation_name)
            where = f"{model.service_name}.{operation_name}"
            if op.input_shape is not None:
                contract.violations += contract.check(op.input_shape, api_params, where)
            calls = contract.calls_of(model.signing_name or model.endpoint_prefix, operation_name,
                                      api_params)
            if contract.recording:
                contract.calls += calls
            return contract.strict.call(client, operation_name, api_params, calls,
                                        lambda: original(client, operation_name, api_params),
                                        enforce=contract.recording)

        monkeypatch.setattr(BaseClient, "_make_api_call", checked)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Set-up calls of the test itself: checked against the models, not recorded as actions."""
        self.recording = False
        try:
            yield
        finally:
            self.recording = True

    @staticmethod
    def calls_of(prefix: str, operation: str, params: dict[str, Any]) -> list[Call]:
        """The IAM actions one API call needs: its own, and what AWS authorises on top of it
        (the Service Authorization Reference's operation tables: tagging on create, iam:PassRole
        with the service it is passed to)."""
        action = S3_ACTIONS.get(operation, operation) if prefix == "s3" else operation
        out = [Call(f"{prefix}:{action}", params)]
        tags = params.get("tags") or params.get("Tags")
        if tags and operation in ("CreateRepository", "CreateRole", "CreateFunction", "PutRule",
                                  "CreateStateMachine"):
            out.append(Call(f"{prefix}:{'TagRole' if prefix == 'iam' else 'TagResource'}", params))
        passed = {("lambda", "CreateFunction"): params.get("Role"),
                  ("lambda", "UpdateFunctionConfiguration"): params.get("Role"),
                  ("states", "CreateStateMachine"): params.get("roleArn"),
                  ("states", "UpdateStateMachine"): params.get("roleArn"),
                  ("scheduler", "CreateSchedule"): (params.get("Target") or {}).get("RoleArn"),
                  ("scheduler", "UpdateSchedule"): (params.get("Target") or {}).get("RoleArn"),
                  }.get((prefix, operation))
        if passed:
            out.append(Call("iam:PassRole", {"RoleArn": passed,
                                             "PassedToService": f"{prefix}.amazonaws.com"}))
        return out

    def actions(self) -> set[str]:
        return {c.action for c in self.calls}

    # -- the model check -------------------------------------------------------------------

    def _pattern(self, text: str) -> Any:
        if text not in self._patterns:
            self._patterns[text] = regex.compile(text)
        return self._patterns[text]

    def check(self, shape: Any, value: Any, where: str) -> list[str]:
        out: list[str] = []
        meta = shape.metadata
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(value, dict):
                return [f"{where}: expected a structure"]
            for name in shape.required_members:
                member = shape.members[name]
                if name not in value and not member.metadata.get("idempotencyToken"):
                    out.append(f"{where}: required member {name} missing")
            for name, item in value.items():
                if name not in shape.members:
                    out.append(f"{where}: unknown member {name}")
                    continue
                out += self.check(shape.members[name], item, f"{where}.{name}")
        elif kind == "list":
            out += self._size(meta, len(value), where, "items")
            for i, item in enumerate(value):
                out += self.check(shape.member, item, f"{where}[{i}]")
        elif kind == "map":
            out += self._size(meta, len(value), where, "entries")
            for key, item in value.items():
                out += self.check(shape.key, key, f"{where}<key {key!r}>")
                out += self.check(shape.value, item, f"{where}[{key!r}]")
        elif kind == "string":
            if not isinstance(value, str):
                return [f"{where}: expected a string"]
            out += self._size(meta, len(value), where, "characters")
            if shape.enum and value not in shape.enum:
                out.append(f"{where}: {value!r} is not one of {shape.enum}")
            pattern = meta.get("pattern")
            if pattern and not self._pattern(pattern).fullmatch(value):
                out.append(f"{where}: {value[:80]!r} does not match {pattern!r}")
        elif kind in ("integer", "long"):
            if "min" in meta and value < meta["min"]:
                out.append(f"{where}: {value} < {meta['min']}")
            if "max" in meta and value > meta["max"]:
                out.append(f"{where}: {value} > {meta['max']}")
        return out

    @staticmethod
    def _size(meta: dict[str, Any], size: int, where: str, unit: str) -> list[str]:
        out = []
        if "min" in meta and size < meta["min"]:
            out.append(f"{where}: {size} {unit}, at least {meta['min']} required")
        if "max" in meta and size > meta["max"]:
            out.append(f"{where}: {size} {unit}, at most {meta['max']} allowed")
        return out


# --- the resource IAM authorises a call on ---


def resource_of(call: Call, account: str, region: str) -> str:
    """The resource ARN IAM authorises a call on (for the operations tagsync uses)."""
    service, op = call.action.split(":")
    p = call.params
    if service == "ecr":
        if op == "GetAuthorizationToken":
            return "*"
        if "resourceArn" in p:
            return str(p["resourceArn"])
        name = p.get("repositoryName") or (p.get("repositoryNames") or ["*"])[0]
        return f"arn:aws:ecr:{region}:{account}:repository/{name}"
    if service == "iam":
        if op == "PassRole":
            return str(p["RoleArn"])
        if op == "SimulatePrincipalPolicy":
            return str(p["PolicySourceArn"])
        if "RoleName" not in p:
            return "*"
        return f"arn:aws:iam::{account}:role/{p['RoleName']}"
    if service == "lambda":
        if "Resource" in p:
            return str(p["Resource"])
        if "FunctionName" not in p:  # ListFunctions and the like
            return "*"
        name = p["FunctionName"]
        qualifier = p.get("Qualifier") or (p.get("Name") if "Alias" in op else None)
        return f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else "")
    if service == "events":
        if "ResourceARN" in p:
            return str(p["ResourceARN"])
        return f"arn:aws:events:{region}:{account}:rule/{p.get('Name') or p.get('Rule')}"
    if service == "logs":
        if op == "DescribeLogGroups":
            return f"arn:aws:logs:{region}:{account}:log-group:*"
        return f"arn:aws:logs:{region}:{account}:log-group:{p['logGroupName']}"
    if service == "s3":
        if "Bucket" not in p:  # ListBuckets
            return "*"
        return f"arn:aws:s3:::{p['Bucket']}" + (f"/{p['Key']}" if "Key" in p else "")
    if service == "states":
        if "stateMachineArn" in p:
            return str(p["stateMachineArn"])
        if "resourceArn" in p:
            return str(p["resourceArn"])
        if op == "CreateStateMachine" or op == "TagResource":
            return f"arn:aws:states:{region}:{account}:stateMachine:{p['name']}"
        return "*"  # ListStateMachines
    if service == "scheduler":
        if "Name" not in p:  # ListSchedules
            return "*"
        return f"arn:aws:scheduler:{region}:{account}:schedule/{p.get('GroupName') or 'default'}/{p['Name']}"
    raise AssertionError(f"no resource mapping for {call.action}")


def allowing(policy: dict[str, Any], action: str, resource: str, **context: str) -> bool:
    """Does `policy` allow `action` on `resource` (evaluated by the test AWS's engine)?"""
    from tests.servers.iam_policy import allows

    return allows(policy, action, resource, **context)
