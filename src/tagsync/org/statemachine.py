"""The organisation run past one Lambda invocation: an AWS Step Functions state machine.

    Discover ──► Repositories (Distributed Map, one child per repository) ──► Summary ──► Outcome

- **Discover** (the tagsync function, `{"tagsync": "org-discover"}`): lists the repositories,
  reads their configs and catalogs, asks every registry question once, and stores the answers
  and the list of repositories to run in S3.
- **Repositories**: a Distributed Map reads that list from S3 (`ItemReader`), so its size is not
  bound by a state's 256 KiB payload, and runs the same function per repository
  (`{"tagsync": "org-repo"}` with its item: name, default branch, config path), which plans
  from the stored answers and publishes without listing the organisation again. A repository
  that fails is that child's result; `ToleratedFailurePercentage: 100` keeps the others going.
  Results go to S3 (`ResultWriter`), not into the state.
- **Summary** (`{"tagsync": "org-summary"}`): reads the results back and returns one row per
  repository; **Outcome** fails the execution when any repository failed, so an alarm on failed
  executions catches it.

The definition is a pure function of names; tests validate it against the Amazon States
Language (npm `asl-validator`).
"""

from __future__ import annotations

from typing import Any

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# Lambda's own transient failures, retried as AWS's Step Functions guidance recommends
_LAMBDA_RETRY = [{
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0, "JitterStrategy": "FULL",
}]


def definition(function_arn: str, bucket: str, *, max_concurrency: int = 10) -> dict[str, Any]:
    """The state machine. `function_arn`: the tagsync function (its `live` alias);
    `bucket`: where answers and results are kept, under the execution's name."""
    def invoke(payload: dict[str, Any]) -> dict[str, Any]:
        return {"Type": "Task", "Resource": LAMBDA_INVOKE,
                "Parameters": {"FunctionName": function_arn, "Payload": payload},
                "Retry": _LAMBDA_RETRY}

    return {
        "Comment": "tagsync organisation run: registries asked once, one child per repository",
        "StartAt": "Discover",
        "States": {
            "Discover": {
                **invoke({"tagsync": "org-discover", "bucket": bucket,
                          "execution.$": "$$.Execution.Name"}),
                "ResultSelector": {"bucket.$": "$.Payload.bucket",
                                   "answers.$": "$.Payload.answers",
                                   # what the answers hash to, kept in the execution's state:
                                   # a child refuses answers changed in the bucket since
                                   "answers_sha256.$": "$.Payload.answers_sha256",
                                   "repositories_sha256.$": "$.Payload.repositories_sha256",
                                   "selection_sha256.$": "$.Payload.selection_sha256",
                                   "repositories.$": "$.Payload.repositories",
                                   "selection.$": "$.Payload.selection",
                                   "results.$": "$.Payload.results"},
                "ResultPath": "$.discovered",
                "Next": "Repositories",
            },
            "Repositories": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.discovered.bucket",
                                   "Key.$": "$.discovered.repositories"},
                },
                # the whole item (repository, default branch, config path: the child lists
                # nothing), and its name apart for the summary of a child that crashed
                "ItemSelector": {"tagsync": "org-repo", "repo.$": "$$.Map.Item.Value.repo",
                                 "item.$": "$$.Map.Item.Value",
                                 "bucket.$": "$.discovered.bucket",
                                 "answers.$": "$.discovered.answers",
                                 "answers_sha256.$": "$.discovered.answers_sha256"},
                "ItemProcessor": {
                    # STANDARD children: a repository's run may take up to the function's
                    # 15 minutes (EXPRESS children stop at 5)
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Repository",
                    "States": {"Repository": {
                        **invoke({}), "Parameters": {"FunctionName": function_arn,
                                                     "Payload.$": "$"},
                        "OutputPath": "$.Payload", "End": True}},
                },
                "MaxConcurrency": max_concurrency,
                "ToleratedFailurePercentage": 100,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket.$": "$.discovered.bucket",
                                   "Prefix.$": "$.discovered.results"},
                },
                "ResultPath": "$.written",
                "Next": "Summary",
            },
            "Summary": {
                **invoke({"tagsync": "org-summary", "bucket.$": "$.discovered.bucket",
                          "selection.$": "$.discovered.selection",
                          "selection_sha256.$": "$.discovered.selection_sha256",
                          "repositories.$": "$.discovered.repositories",
                          "repositories_sha256.$": "$.discovered.repositories_sha256",
                          "written.$": "$.written"}),
                "OutputPath": "$.Payload",
                "Next": "Outcome",
            },
            "Outcome": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.status", "StringEquals": "partial",
                             "Next": "SomeRepositoriesFailed"}],
                "Default": "Done",
            },
            "SomeRepositoriesFailed": {"Type": "Fail", "Error": "tagsync.PartialRun",
                                       "Cause": "some repositories failed; see the Summary step"},
            "Done": {"Type": "Succeed"},
        },
    }


def role_policy(function_arn: str, bucket: str, state_machine_arn: str) -> dict[str, Any]:
    """What the state machine's role may do: invoke the function, read and write its bucket,
    and run its own Distributed Map children (AWS requires these for a distributed Map)."""
    executions = state_machine_arn.replace(":stateMachine:", ":execution:") + ":*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "InvokeTagsync", "Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": [function_arn, f"{function_arn}:*"]},
        {"Sid": "AnswersAndResults", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload"],
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Sid": "MapChildren", "Effect": "Allow", "Action": "states:StartExecution",
         "Resource": state_machine_arn},
        {"Sid": "MapChildrenState", "Effect": "Allow",
         "Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": executions},
    ]}
