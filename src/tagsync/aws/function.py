"""The function and what runs it: its IAM role, $LATEST, the published version that runs the
requested commit with the requested settings (found by fingerprint, published only when none
does), the alias `live` on it, and the EventBridge schedule that invokes the alias."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from tagsync.aws.calls import ALIAS, DeployError, _tags_of, while_propagating
from tagsync.aws.environment import Environment
from tagsync.aws.names import description
from tagsync.aws.policies import BASIC_EXECUTION, LAMBDA_TRUST, RUNS_POLICY, role_policy
from tagsync.aws.spec import OWN_ENV

log = logging.getLogger("tagsync.aws.deploy")  # every step's line names the deploy
# what Lambda says of a role IAM has not yet propagated
_LAMBDA_NOT_YET = (("InvalidParameterValueException", "cannot be assumed"),)

STATEMENT_ID = "tagsync-schedule"
TARGET_ID = "tagsync"
READ_POLICY = "tagsync-read"


class FunctionSteps(Environment):
    """Converge the function, its version, alias and schedule to the request."""

    def role(self, account: str, region: str) -> str:
        """The function's role: Lambda trust, basic execution, and exactly the reads the run needs.
        Each part is compared and repaired on its own, so any drift converges."""
        iam = self.client("iam")
        name = f"{self.name}-role"
        inline = role_policy(self.spec.all_secret_refs, self.spec.config_ref,
                             self.spec.ecr_registries, account, region)
        wanted = inline if inline["Statement"] else None
        role = self._read("role")
        if role is None:
            grants = len(inline["Statement"])
            if self._step(f"IAM role {name}", "create",
                          f"Lambda trust, basic execution, {grants} read grants"):
                created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                                          Description=description(f"tagsync {self.name}", 1000),
                                          Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
                iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
                if wanted is not None:
                    iam.put_role_policy(RoleName=name, PolicyName=READ_POLICY,
                                        PolicyDocument=json.dumps(wanted))
                return str(created["Role"]["Arn"])
            return f"arn:aws:iam::{account}:role/{name}"
        trust = role.get("AssumeRolePolicyDocument")
        trust = json.loads(trust) if isinstance(trust, str) else trust
        listed = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        attached = [p["PolicyArn"] for p in listed]
        inline_names = iam.list_role_policies(RoleName=name)["PolicyNames"]
        current = None
        if READ_POLICY in inline_names:
            current = iam.get_role_policy(RoleName=name, PolicyName=READ_POLICY)["PolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
        fixes = []
        if trust != LAMBDA_TRUST:
            fixes.append("trust policy")
        if BASIC_EXECUTION not in attached:
            fixes.append("basic execution")
        if current != wanted:
            fixes.append("read grants")
        missing = self._missing_tags(_tags_of(role.get("Tags")))
        if missing:
            fixes.append("tags")
        ours = (READ_POLICY, RUNS_POLICY) if self.spec.org else (READ_POLICY,)  # RUNS: org_deploy's
        others = sorted([p.rsplit("/", 1)[-1] for p in attached if p != BASIC_EXECUTION]
                        + [p for p in inline_names if p not in ours])
        if others:
            log.warning("IAM role %s has policies tagsync did not set, kept: %s", name, ", ".join(others))
            fixes_detail = ", ".join(fixes) + ("; " if fixes else "") + "kept policies set by hand: " + \
                ", ".join(others)
        else:
            fixes_detail = ", ".join(fixes)
        if self._step(f"IAM role {name}", "update" if fixes else "none", fixes_detail):
            if "trust policy" in fixes:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(LAMBDA_TRUST))
            if "basic execution" in fixes:
                iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
            if "read grants" in fixes:
                if wanted is None:
                    iam.delete_role_policy(RoleName=name, PolicyName=READ_POLICY)
                else:
                    iam.put_role_policy(RoleName=name, PolicyName=READ_POLICY,
                                        PolicyDocument=json.dumps(wanted))
            if missing:
                iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in missing.items()])
        return str(role["Arn"])

    def _retry_role(self, call: Callable[[], Any]) -> Any:
        """Retry the one error IAM propagation causes, with backoff, within a time budget."""
        return while_propagating(call, _LAMBDA_NOT_YET, self.role_retry_budget, self.sleep,
                                 self._retried, " by Lambda")

    def _retried(self) -> None:
        self.role_retries += 1

    def _environment(self, current: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """Desired variables plus those set by hand (kept, and named so the user knows)."""
        wanted = self.spec.desired_environment()
        managed = set(filter(None, current.get("TAGSYNC_MANAGED_ENV", "").split(",")))
        foreign = {k: v for k, v in current.items() if k not in wanted and k not in managed
                   and k not in OWN_ENV}
        return {**foreign, **wanted}, sorted(foreign)

    def _fingerprint(self) -> str:
        """What a published version must match: image and settings, as a short hash."""
        text = json.dumps(self._settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def function(self, image: str, role: str) -> None:
        """Converge $LATEST to the image and settings; the version step publishes from it."""
        lam = self.client("lambda")
        resource = f"Lambda function {self.name}"
        current = self._read("function")
        replacing = current is not None and self._replace_zip
        if replacing:
            current = None
        if current is None:
            env, _ = self._environment({})
            self._settings = self._wanted(image, role, env)
            detail = f"{self.spec.architecture}, {self.spec.memory} MB, {self.spec.timeout} s"
            if replacing:
                detail = ("a Zip package function of this environment: deleted, created from the "
                          "image; " + detail)
            if self._step(resource, "replace" if replacing else "create", detail):
                if replacing:
                    lam.delete_function(FunctionName=self.name)
                self._retry_role(lambda: lam.create_function(
                    FunctionName=self.name, PackageType="Image", Code={"ImageUri": image}, Role=role,
                    Timeout=self.spec.timeout, MemorySize=self.spec.memory,
                    Architectures=[self.spec.architecture], Environment={"Variables": env},
                    Description=description(f"tagsync {self.spec.repo}@{self.spec.branch}", 256),
                    Tags=self.tags))
                lam.get_waiter("function_active_v2").wait(FunctionName=self.name)
            return
        conf = current["Configuration"]
        now_env = conf.get("Environment", {}).get("Variables", {})
        env, foreign = self._environment(now_env)
        self._settings = self._wanted(image, role, env)
        changed = []
        code = current.get("Code", {})
        if (code.get("ImageUri") != image or not self._same_digest(code)
                or conf.get("Architectures", ["x86_64"]) != [self.spec.architecture]):
            changed.append("image " + image.rsplit(":", 1)[-1][:12])
        missing = self._missing_tags(self._function_tags)
        if missing:
            changed.append("tags")
        settings = {"Role": role, "Timeout": self.spec.timeout, "MemorySize": self.spec.memory,
                    "Environment": {"Variables": env}}
        now = {**conf, "Environment": {"Variables": now_env}}
        differs = [k for k, v in settings.items() if now.get(k) != v]
        if differs:
            changed.append("configuration: " + ", ".join(differs))
        detail = "; ".join(changed)
        if foreign:
            log.warning("%s has environment variables tagsync did not set, kept: %s",
                        self.name, ", ".join(foreign))
            detail += ("; " if detail else "") + "kept variables set by hand: " + ", ".join(foreign)
        if not self.dry:
            self._ready(conf)  # also before publishing from a function left unchanged
        if self._step(resource, "update" if changed else "none", detail):
            if differs:
                self._retry_role(lambda: lam.update_function_configuration(FunctionName=self.name,
                                                                           **settings))
                lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
            if changed[0].startswith("image"):
                lam.update_function_code(FunctionName=self.name, ImageUri=image,
                                         Architectures=[self.spec.architecture])
                lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
            if missing:
                lam.tag_resource(Resource=conf["FunctionArn"], Tags=missing)

    def _same_digest(self, code: dict[str, Any]) -> bool:
        """Does the code resolve to the image's digest in ECR (a tag pushed again does not)?"""
        resolved = code.get("ResolvedImageUri")
        return self._digest is None or not resolved or resolved.rsplit("@", 1)[-1] == self._digest

    def _runs(self, version: str) -> bool:
        """Does this published version run the image (by digest), SHA and settings asked for?
        Its description is ours to write, so it is not proof; what AWS resolved is."""
        fn = self.client("lambda").get_function(FunctionName=self.name, Qualifier=version)
        conf, code = fn["Configuration"], fn.get("Code", {})
        env = conf.get("Environment", {}).get("Variables", {})
        wanted = self._settings
        return (code.get("ImageUri") == wanted["image"] and self._same_digest(code)
                and env.get("TAGSYNC_SHA") == self.spec.sha and env == wanted["environment"]
                and conf.get("Role") == wanted["role"] and conf.get("MemorySize") == wanted["memory"]
                and conf.get("Timeout") == wanted["timeout"]
                and conf.get("Architectures", ["x86_64"]) == [wanted["architecture"]])

    def _ready(self, conf: dict[str, Any]) -> None:
        """A function still being created or updated (a deploy interrupted) takes no update."""
        lam = self.client("lambda")
        if conf.get("State") == "Pending":
            lam.get_waiter("function_active_v2").wait(FunctionName=self.name)
        if conf.get("LastUpdateStatus") == "InProgress":
            lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)

    def _wanted(self, image: str, role: str, env: dict[str, str]) -> dict[str, Any]:
        return {"image": image, "role": role, "timeout": self.spec.timeout, "memory": self.spec.memory,
                "architecture": self.spec.architecture, "environment": env}

    def version(self) -> str | None:
        """The published version running this image with these settings; published if none is."""
        lam = self.client("lambda")
        wanted = f"tagsync {self.spec.sha[:12]} {self._fingerprint()}"
        found: list[int] = []
        try:
            for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=self.name):
                found += [int(v["Version"]) for v in page["Versions"]
                          if v["Version"] != "$LATEST" and v.get("Description") == wanted]
        except lam.exceptions.ResourceNotFoundException:
            pass  # dry run of a first deploy
        for number in sorted(found, reverse=True):
            if self._runs(str(number)):
                self._step(f"version of {self.name}", "none", f"version {number} runs {self.spec.sha[:12]}")
                return str(number)
            log.warning("%s version %s is described as %s but does not run it", self.name, number,
                        self.spec.sha[:12])
        if not self._step(f"version of {self.name}", "create", f"publish {self.spec.sha[:12]}"):
            return None
        version = str(lam.publish_version(FunctionName=self.name, Description=wanted)["Version"])
        if self._runs(version):
            return version
        # AWS publishes nothing when $LATEST has not changed since the last version was published
        # (even when that version was deleted since) and answers with an existing one instead:
        # change $LATEST's description, so the next publish is a new version.
        log.info("PublishVersion answered version %s, which does not run %s: publishing again",
                 version, self.spec.sha[:12])
        lam.update_function_configuration(FunctionName=self.name, Description=description(
            f"tagsync {self.spec.repo}@{self.spec.branch} {self.spec.sha[:12]}, after version {version}",
            256))
        lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
        again = str(lam.publish_version(FunctionName=self.name, Description=wanted)["Version"])
        if not self._runs(again):
            raise DeployError(f"{self.name}: AWS answered PublishVersion with version {again}, which "
                              f"does not run {self._settings['image']}; `live` was left as it is")
        return again

    def alias(self, version: str | None) -> str:
        lam = self.client("lambda")
        resource = f"alias {self.name}:{ALIAS}"
        try:
            alias = lam.get_alias(FunctionName=self.name, Name=ALIAS)
        except lam.exceptions.ResourceNotFoundException:
            alias = None
        if alias is None:
            if self._step(resource, "create", f"version {version or '(new)'}") and version is not None:
                return str(lam.create_alias(FunctionName=self.name, Name=ALIAS, FunctionVersion=version,
                                            Description="what the schedule invokes")["AliasArn"])
            account, region = self.identity()
            return f"arn:aws:lambda:{region}:{account}:function:{self.name}:{ALIAS}"
        if version is not None and alias["FunctionVersion"] == version:
            self._step(resource, "none", f"version {version}")
        elif self._step(resource, "update", f"version {alias['FunctionVersion']} -> {version or '(new)'}"):
            assert version is not None
            lam.update_alias(FunctionName=self.name, Name=ALIAS, FunctionVersion=version)
        return str(alias["AliasArn"])

    def schedule(self, alias_arn: str) -> None:
        events, lam = self.client("events"), self.client("lambda")
        rule = self._read("rule")
        if rule is not None and rule.get("ScheduleExpression") == self.spec.schedule \
                and rule.get("State") == "ENABLED" and self._missing_tags(self._rule_tags):
            if self._step(f"EventBridge rule {self.name}", "update", "tags"):
                events.tag_resource(ResourceARN=rule["Arn"], Tags=[
                    {"Key": k, "Value": v} for k, v in self._missing_tags(self._rule_tags).items()])
        elif (rule is None or rule.get("ScheduleExpression") != self.spec.schedule
                or rule.get("State") != "ENABLED"):
            action = "create" if rule is None else "update"
            if self._step(f"EventBridge rule {self.name}", action, self.spec.schedule):
                arn = events.put_rule(Name=self.name, ScheduleExpression=self.spec.schedule, State="ENABLED",
                                      Description=description(f"tagsync {self.name}", 512),
                                      Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])["RuleArn"]
                if rule is not None and self._missing_tags(self._rule_tags):  # PutRule tags new rules only
                    events.tag_resource(ResourceARN=arn, Tags=[
                        {"Key": k, "Value": v} for k, v in self._missing_tags(self._rule_tags).items()])
                rule = {"Arn": arn}
        else:
            self._step(f"EventBridge rule {self.name}", "none", self.spec.schedule)
        if rule is None:  # dry run of a first deploy
            self._step(f"schedule target and invoke permission for {self.name}:{ALIAS}", "create")
            return
        targets = events.list_targets_by_rule(Rule=self.name)["Targets"]
        if [t["Arn"] for t in targets] != [alias_arn]:
            if self._step(f"schedule target {self.name} -> {ALIAS}", "create" if not targets else "update"):
                stale = [t["Id"] for t in targets if t["Arn"] != alias_arn]
                if stale:
                    events.remove_targets(Rule=self.name, Ids=stale)
                events.put_targets(Rule=self.name, Targets=[{"Id": TARGET_ID, "Arn": alias_arn}])
        else:
            self._step(f"schedule target {self.name} -> {ALIAS}", "none")
        permission = self._permission()
        resource = f"invoke permission for the rule on {self.name}:{ALIAS}"
        if permission is not None and permission.get("Condition", {}).get("ArnLike", {}).get(
                "AWS:SourceArn") == rule["Arn"]:
            self._step(resource, "none")
            return
        if self._step(resource, "create" if permission is None else "update"):
            if permission is not None:
                lam.remove_permission(FunctionName=self.name, Qualifier=ALIAS, StatementId=STATEMENT_ID)
            lam.add_permission(FunctionName=self.name, Qualifier=ALIAS, StatementId=STATEMENT_ID,
                               Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                               SourceArn=rule["Arn"])

    def _permission(self) -> dict[str, Any] | None:
        lam = self.client("lambda")
        try:
            policy = json.loads(lam.get_policy(FunctionName=self.name, Qualifier=ALIAS)["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            return None
        found = [s for s in policy.get("Statement", []) if s.get("Sid") == STATEMENT_ID]
        return dict(found[0]) if found else None
