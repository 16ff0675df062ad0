"""What an environment serves: the Serving stack update a release (or a rollback) makes, the
check that the endpoint serves a given model artifact, and the "served" records of the audit
trail that say which version each environment served and when.

Shared by the deployer and the deploy verifier hooks and by `python -m mlgate rollback`
(mlgate/cli/rollback.py), so a rollback updates and checks exactly as a release does.

Served records (the audit table, shared/audit.py): pk "served#<release pipeline>#<env>", sk
"<ISO time>#<version>", one per verified deploy. The time is the endpoint's LastModifiedTime
(when SageMaker last changed it: the deploy just verified), so a Lambda retry, or the verifier
run again on the same deploy, writes the same key, and the conditional put keeps one item.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.serving import Component, component_of, hosts_components

IN_PROGRESS = "_IN_PROGRESS"
DONE = {"UPDATE_COMPLETE", "CREATE_COMPLETE"}
# The stable states UpdateStack accepts: the "last known stable state" statuses of
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackStack.html
UPDATABLE = DONE | {"UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
# States that never end by themselves or that UpdateStack refuses, and what gets the stack out
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html).
STUCK = {
    "UPDATE_ROLLBACK_FAILED": "continue the rollback (aws cloudformation "
    "continue-update-rollback), then retry the stage",
    "ROLLBACK_COMPLETE": "its creation failed and it cannot be updated: delete it and deploy "
    "it again with cdk deploy, then retry the stage",
    "ROLLBACK_FAILED": "delete it and deploy it again with cdk deploy, then retry the stage",
    "CREATE_FAILED": "roll it back or delete it, deploy it again with cdk deploy, then retry "
    "the stage",
    "UPDATE_FAILED": "roll it back (aws cloudformation rollback-stack) or fix and update it, "
    "then retry the stage",
    "DELETE_FAILED": "finish deleting it, deploy it again with cdk deploy, then retry the stage",
    "DELETE_COMPLETE": "deploy it again with cdk deploy, then retry the stage",
    "REVIEW_IN_PROGRESS": "a change set created it and was never executed: execute or delete "
    "it, then retry the stage",
}
PARAMETER = "ModelPackageArn"
# Serving stack parameter -> release.json key; the baseline travels with its model version.
FROM_RELEASE = {
    PARAMETER: "model_package_arn",
    "ModelDataUrl": "model_data_url",
    "BaselineStatisticsUri": "baseline_statistics_uri",
    "BaselineConstraintsUri": "baseline_constraints_uri",
}
# What a Serving stack of this mlgate takes: without them the stack would keep serving
# whatever its template builds the model from.
REQUIRED = (PARAMETER, "ModelDataUrl")
# The Serving stack of an environment with a shadow test takes the shadow variant's model
# artifact; "none" is no shadow variant.
SHADOW = "ShadowModelDataUrl"
NO_SHADOW = "none"
SERVED = "served"


def stuck(status: str) -> str | None:
    """What gets a stack in `status` out, when CloudFormation will not update it; else None."""
    if status in STUCK or (status not in UPDATABLE and not status.endswith(IN_PROGRESS)):
        return STUCK.get(status, "bring it back to a stable state, then retry the stage")
    return None


def stack_parameters(stack: dict[str, Any]) -> dict[str, str | None]:
    """A DescribeStacks stack's parameters, key -> value."""
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}


def update_parameters(keys: list[str], document: dict[str, Any]) -> list[dict[str, Any]]:
    """UpdateStack's Parameters: each FROM_RELEASE parameter from `document` (release.json or
    a served record: same keys) where it has a value, every other one kept as it is; and no
    shadow variant (a release or a rollback never keeps one: a Shadow stage that failed before
    removing it leaves it no further than the next update)."""
    return [
        {"ParameterKey": k, "ParameterValue": str(document[FROM_RELEASE[k]])}
        if k in FROM_RELEASE and document.get(FROM_RELEASE[k])
        else {"ParameterKey": k, "ParameterValue": NO_SHADOW}
        if k == SHADOW
        else {"ParameterKey": k, "UsePreviousValue": True}
        for k in keys
    ]


def shadow_parameters(keys: list[str], model_data_url: str) -> list[dict[str, Any]]:
    """UpdateStack's Parameters that set only the shadow variant's model artifact
    (`model_data_url`, or NO_SHADOW to remove it), every other one kept as it is."""
    return [
        {"ParameterKey": k, "ParameterValue": model_data_url}
        if k == SHADOW
        else {"ParameterKey": k, "UsePreviousValue": True}
        for k in keys
    ]


def update_stack(cfn: Any, stack: str, parameters: list[dict[str, Any]], service_role: str) -> bool:
    """UpdateStack on the previous template, run as the Serving stack's own service role, never
    the role `cdk deploy` attached: it may change only what a parameter update of that stack
    changes. False when CloudFormation says there is nothing to update."""
    try:
        cfn.update_stack(
            StackName=stack,
            UsePreviousTemplate=True,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            RoleARN=service_role,
        )
    except ClientError as err:
        if "No updates are to be performed" in str(err):
            return False
        raise
    return True


def rollback_reason(cfn: Any, stack: str) -> str:
    """The first failed resource of the stack's last events, as CloudFormation reports it."""
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("FAILED")]
    if failed:
        first = failed[-1]
        return f"{first['LogicalResourceId']}: {first.get('ResourceStatusReason', 'no reason')}"
    return "no failed resource reported"


# --- what the endpoint serves -------------------------------------------------------------


def gone(err: ClientError) -> bool:
    """SageMaker's answer for a config or model that no longer exists: ValidationException
    "Could not find endpoint configuration ..." / "Could not find model ..."
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpointConfig.html
    lists no not-found error of its own; the service answers ValidationException)."""
    error = err.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "Could not find" in str(
        error.get("Message", "")
    )


@dataclass(frozen=True)
class Serving:
    """What an endpoint runs now: its status, endpoint config, what its model's container
    names (model artifact, model package; None when what the endpoint names was deleted under
    every read), the config's description, and when SageMaker last changed the endpoint; with
    an inference component, the component whose model it is."""

    status: str
    config: str
    named: list[str] | None
    described: dict[str, Any]
    modified: datetime | None
    component: Component | None = None
    """The inference component serving the model, when the endpoint hosts one."""


def read_endpoint(
    sagemaker: Any,
    endpoint: str,
    *,
    reads: int,
    pause_seconds: float,
    pause: Callable[[float], None] = time.sleep,
    log: Callable[[str, dict[str, Any]], None] | None = None,
) -> Serving:
    """What the endpoint serves. CloudFormation deletes the previous EndpointConfig (and
    Model) in the cleanup after a blue/green update: a config or model gone is read again,
    `reads` times at most, `pause_seconds` apart."""
    status, config, modified = "", "", None
    for read_number in range(1, reads + 1):
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        status, config = str(described["EndpointStatus"]), str(described["EndpointConfigName"])
        modified = described.get("LastModifiedTime")
        component = None
        try:
            variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)
            if hosts_components(variants):
                # The model is the component's: a release updates the component in place.
                component = component_of(sagemaker, endpoint)
                model_name = component.model
            else:
                model_name = variants["ProductionVariants"][0]["ModelName"]
            model = sagemaker.describe_model(ModelName=model_name)
        except ClientError as err:
            if not gone(err):
                raise
            # The endpoint may already have moved on to the new config: read it again.
            if log is not None:
                log(
                    "endpoint config or model gone, reading the endpoint again",
                    {"endpoint": endpoint, "config": config, "read": read_number},
                )
            if read_number < reads:
                pause(pause_seconds)
            continue
        containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
        container = containers[0]
        named = [
            str(container[k]) for k in ("ModelDataUrl", "ModelPackageName") if container.get(k)
        ]
        return Serving(status, config, named or ["no model"], variants, modified, component)
    return Serving(status, config, None, {}, modified)


# --- served records -----------------------------------------------------------------------


def served_pk(pipeline: str, env: str) -> str:
    return f"{SERVED}#{pipeline}#{env}"


def iso(moment: datetime | str) -> str:
    """An ISO-8601 UTC second, as the audit trail writes times."""
    if isinstance(moment, str):
        return moment
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment.timestamp()))


def served_item(
    *,
    pipeline: str,
    env: str,
    when: datetime | str,
    version: int,
    document: dict[str, Any],
    execution: str,
    endpoint: str,
) -> dict[str, Any]:
    """The served record of `version` (release.json's fields in `document`) in `env`."""
    at = iso(when)
    item: dict[str, Any] = {
        "pk": {"S": served_pk(pipeline, env)},
        "sk": {"S": f"{at}#{version}"},
        "event": {"S": SERVED},
        "pipeline": {"S": pipeline},
        "environment": {"S": env},
        "when": {"S": at},
        "model_version": {"S": str(version)},
        "execution": {"S": execution},
        "endpoint": {"S": endpoint},
    }
    for key in FROM_RELEASE.values():
        if document.get(key):
            item[key] = {"S": str(document[key])}
    return item


def served_history(client: Any, table: str, pipeline: str, env: str) -> list[dict[str, str]]:
    """Every served record of `env`, oldest first (the sort key starts with the time)."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": served_pk(pipeline, env)}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**query)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    records = [{k: v["S"] for k, v in i.items() if "S" in v} for i in items]
    return sorted(records, key=lambda r: r["sk"])
