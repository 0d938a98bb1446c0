"""A small IAM policy evaluator: what the stricter test AWS decides a caller may do.

It follows AWS's evaluation logic for the parts tagsync's policies use: an explicit Deny wins,
else any matching Allow allows, else the request is implicitly denied. Statements match on
Action/NotAction (case-insensitive, `*` and `?` wildcards), Resource/NotResource (wildcards,
case-sensitive; a resource policy's statement without Resource applies to its own resource),
Principal (for resource policies: a service principal or `*`) and Condition with the string and
ARN operators (a missing context key fails the condition unless the operator ends in IfExists).
An operator it does not know raises: a fake that guesses would allow what AWS refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import regex

ALLOWED, IMPLICIT_DENY, EXPLICIT_DENY = "allowed", "implicitDeny", "explicitDeny"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    principal: str | None = None  # a service principal, when a resource policy is evaluated


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters (also `:` and `/`), `?` exactly one."""
    text = regex.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return regex.fullmatch(text, value, flags=0 if case else regex.IGNORECASE) is not None



def _condition(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    lowered = {k.lower(): v for k, v in context.items()}
    if_exists = operator.endswith("IfExists")
    op = operator.removesuffix("IfExists")
    value = lowered.get(key.lower())
    if value is None:
        return if_exists or op.startswith(("StringNot", "ArnNot"))
    wanted = [str(v) for v in _listed(expected)]
    if op in ("StringEquals", "ArnEquals"):
        return value in wanted
    if op == "StringEqualsIgnoreCase":
        return value.lower() in [w.lower() for w in wanted]
    if op in ("StringLike", "ArnLike"):
        return any(wildcard(w, value) for w in wanted)
    if op in ("StringNotEquals", "ArnNotEquals"):
        return value not in wanted
    if op in ("StringNotLike", "ArnNotLike"):
        return not any(wildcard(w, value) for w in wanted)
    raise ValueError(f"the test IAM engine does not know the condition operator {operator}")


def _principal(statement: Mapping[str, Any], principal: str | None) -> bool:
    if "Principal" not in statement:
        return principal is None
    if principal is None:
        return False
    named = statement["Principal"]
    if named == "*":
        return True
    return any(p == "*" or p == principal for values in named.values() for p in _listed(values))


def statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(wildcard(a, request.action, case=False) for a in _listed(statement["Action"])):
            return False
    elif any(wildcard(a, request.action, case=False) for a in _listed(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(wildcard(r, request.resource) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(wildcard(r, request.resource) for r in _listed(statement["NotResource"])):
            return False
    elif request.principal is None:  # an identity policy's statement names its resources
        return False
    if not _principal(statement, request.principal):
        return False
    return all(_condition(op, key, expected, request.context)
               for op, keys in statement.get("Condition", {}).items()
               for key, expected in keys.items())


def decide(policies: Iterable[Mapping[str, Any]], request: Request) -> str:
    """allowed, implicitDeny or explicitDeny, as iam:SimulatePrincipalPolicy words it."""
    allowed = False
    for policy in policies:
        for statement in _listed(policy.get("Statement", [])):
            if not statement_matches(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return EXPLICIT_DENY
            allowed = allowed or statement["Effect"] == "Allow"
    return ALLOWED if allowed else IMPLICIT_DENY


def allows(policy: Mapping[str, Any], action: str, resource: str, **context: str) -> bool:
    return decide([policy], Request(action, resource, context)) == ALLOWED
