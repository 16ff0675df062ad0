"""Model card hook: each registered model version's SageMaker Model Card, its status following
the release's gates.

Events (EventBridge; each checked whole before any AWS call, without pydantic: shared/events.py):
- "SageMaker Model Package State Change" of this product's group (a version registered, or
  later approved or rejected in the registry): the version's card exists, Draft at least;
- "CodePipeline Action Execution State Change" STARTED in the release pipeline's first manual
  gate (MODEL_CARD_REVIEW_STAGE): the version that execution releases is under review:
  PendingReview;
- "CodePipeline Stage Execution State Change" SUCCEEDED of the stage that verifies prod
  (MODEL_CARD_LIVE_STAGE): the version is live in prod: Approved, and the card of every earlier
  version still Approved (the version it replaces) is superseded: Archived. A version whose
  go-live arrives after a later version's is superseded already: Archived at once.
The version of a pipeline event is the release of its own execution: release.json at the S3
object version CodePipeline recorded as the execution's source revision (GetPipelineExecution:
artifactRevisions[].revisionId; https://docs.aws.amazon.com/codepipeline/latest/userguide/
action-reference-S3.html), never a field of the event. The events' format:
https://docs.aws.amazon.com/codepipeline/latest/userguide/detect-state-changes-cloudwatch-events.html
and https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html.

The card (model_card/card.py) is named from the product and the version
(MODEL_CARD_PREFIX and six digits). It is created with its content: the manifest's part
(MODEL_CARD_CONTEXT, built by the stack) and the version's, from the registry
(DescribeModelPackage: its artifact, image, lineage metadata and evaluation report, read from
this product's training runs only). Later changes are status only: UpdateModelCard takes either
the content or the status in one call, not both
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelCard.html).

Idempotent without a record of its own: each change reads the card first (DescribeModelCard)
and moves it only forward, Draft < PendingReview < Approved < Archived; a card at or past the
wanted status is left as it is, so a redelivered or replayed event changes nothing and a card
is never moved back. A run that fails half way (a throttle after the card was created) is
retried by Lambda and finishes from what the card shows. Two deliveries of one event at the
same moment may both send the same status: the card ends the same.

Anything malformed or foreign (another source, account, region, group, pipeline or stage; a
release that cannot be read; a version the registry does not hold in this group) is refused
with one log line naming the field: no retry changes it. Any AWS error fails the invocation,
for Lambda's retries and then the dead-letter queue (on-call's alarm).

Environment: MODEL_CARD_CONTEXT, MODEL_CARD_PREFIX, MODEL_CARD_REVIEW_STAGE,
MODEL_CARD_LIVE_STAGE, MODEL_PACKAGE_GROUP, RELEASE_PIPELINE, RELEASE_BUCKET, ARTIFACT_BUCKET,
TRAINING_PREFIX; RELEASE_KEY (default release.json).
AWS calls: sagemaker:DescribeModelCard, sagemaker:CreateModelCard, sagemaker:UpdateModelCard,
sagemaker:ListModelCards (the product's Approved cards, at go-live),
sagemaker:DescribeModelPackage, sagemaker:DescribeModelPackageGroup (SageMaker's check of a new
card's model_package_details, made with the caller's permissions),
codepipeline:GetPipelineExecution, s3:GetObjectVersion (release.json at the execution's source
revision), s3:GetObject (the version's evaluation report).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import ClientError

from model_card import card
from shared.coldstart import settle
from shared.events import (
    ARN,
    FROM_CONTEXT,
    NAME,
    PIPELINE_NAME,
    SHORT,
    Origin,
    Refused,
    envelope,
    expect,
    first_problem,
    from_here,
    kinds,
    read_as,
    resources_within,
)
from shared.fields import Invalid, Loc, Obj, Spec, Text, check
from shared.settings import read

logger = Logger()
sagemaker = boto3.client("sagemaker")
codepipeline = boto3.client("codepipeline")
s3 = boto3.client("s3")

PACKAGE_CHANGE = "SageMaker Model Package State Change"
ACTION_CHANGE = "CodePipeline Action Execution State Change"
STAGE_CHANGE = "CodePipeline Stage Execution State Change"
KINDS = (PACKAGE_CHANGE, ACTION_CHANGE, STAGE_CHANGE)


@dataclass(frozen=True)
class Settings:
    context: dict[str, Any]
    prefix: str
    review_stage: str
    live_stage: str
    group: str
    pipeline: str
    bucket: str
    key: str
    artifacts: str
    training: str


@cache
def settings() -> Settings:
    env = read(
        "model_card",
        ("MODEL_CARD_CONTEXT", "MODEL_CARD_PREFIX", "MODEL_CARD_REVIEW_STAGE",
         "MODEL_CARD_LIVE_STAGE", "MODEL_PACKAGE_GROUP", "RELEASE_PIPELINE", "RELEASE_BUCKET",
         "ARTIFACT_BUCKET", "TRAINING_PREFIX"),
        {"RELEASE_KEY": "release.json"},
    )  # fmt: skip
    return Settings(
        context=card.decode(env["MODEL_CARD_CONTEXT"]),
        prefix=env["MODEL_CARD_PREFIX"],
        review_stage=env["MODEL_CARD_REVIEW_STAGE"],
        live_stage=env["MODEL_CARD_LIVE_STAGE"],
        group=env["MODEL_PACKAGE_GROUP"],
        pipeline=env["RELEASE_PIPELINE"],
        bucket=env["RELEASE_BUCKET"],
        key=env["RELEASE_KEY"],
        artifacts=env["ARTIFACT_BUCKET"],
        training=env["TRAINING_PREFIX"],
    )


class EventError(Refused):
    """Not an event this hook acts on, or one whose version cannot be told: `field` names
    what, the message says why."""


class Version(Spec):
    """A model version: a whole number from 1 (never a bool or text)."""

    def read(self, value: Any, loc: Loc, errors: list[tuple[Loc, str, str]]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append((loc, "Input should be a valid integer", "int_type"))
            return None
        if not 1 <= value <= card.MAX_VERSION:
            errors.append((loc, f"Input should be from 1 to {card.MAX_VERSION}", "range"))
            return None
        return value


# CodePipeline's execution ids are UUIDs.
EXECUTION_ID = Text(36, r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PACKAGE_DETAIL = Obj(
    "ModelPackageDetail",
    {"ModelPackageGroupName": NAME, "ModelPackageVersion": Version(), "ModelPackageArn": ARN},
)
ACTION_DETAIL = Obj(
    "ActionDetail",
    {"pipeline": PIPELINE_NAME, "execution_id": EXECUTION_ID, "stage": PIPELINE_NAME,
     "action": PIPELINE_NAME, "state": SHORT},
    aliases={"execution_id": "execution-id"},
)  # fmt: skip
STAGE_DETAIL = Obj(
    "StageDetail",
    {"pipeline": PIPELINE_NAME, "execution_id": EXECUTION_ID, "stage": PIPELINE_NAME,
     "state": SHORT},
    aliases={"execution_id": "execution-id"},
)  # fmt: skip
TRIGGER = kinds(
    envelope("PackageEvent", PACKAGE_CHANGE, PACKAGE_DETAIL),
    envelope("ActionEvent", ACTION_CHANGE, ACTION_DETAIL),
    envelope("StageEvent", STAGE_CHANGE, STAGE_DETAIL),
)
# What release.json must say for its version to be told (the release hook writes it whole).
RELEASE = Obj("Release", {"model_version": Version(), "model_package_arn": ARN})
RELEASE_BYTES = 1 << 20


@dataclass(frozen=True)
class Step:
    """What an event asks of the cards: `wanted` for `version` (a pipeline event names it
    through `execution`, whose release tells it)."""

    wanted: str
    why: str
    version: int | None = None
    execution: str | None = None


def describe(event: Any) -> Any:
    """The event, checked whole (its fields as attributes); EventError naming the field."""
    return read_as(event, TRIGGER, EventError, "a model package or release pipeline event", KINDS)


def package_arn(origin: Origin, group: str, version: int) -> str:
    """A version's ARN as SageMaker writes it (the group's name in lower case)."""
    return origin.arn("sagemaker", f"model-package/{group.lower()}/{version}")


def step_of(trigger: Any, origin: Origin, config: Settings) -> Step:
    """What the event asks, if it comes from this product's registry or release pipeline, here;
    EventError otherwise, before any AWS call."""
    detail = trigger.detail
    if trigger.detail_type == PACKAGE_CHANGE:
        from_here(trigger, origin, "aws.sagemaker", EventError)
        expect(EventError, "detail.ModelPackageGroupName", detail.ModelPackageGroupName,
               config.group, "this product's group, from MODEL_PACKAGE_GROUP")  # fmt: skip
        arn = package_arn(origin, config.group, detail.ModelPackageVersion)
        whence = f"version {detail.ModelPackageVersion} of this product's group, {FROM_CONTEXT}"
        expect(EventError, "detail.ModelPackageArn", detail.ModelPackageArn.lower(), arn, whence)
        resources_within(trigger, arn, FROM_CONTEXT, EventError)
        return Step("Draft", "registered in the model registry", detail.ModelPackageVersion)
    from_here(trigger, origin, "aws.codepipeline", EventError)
    expect(EventError, "detail.pipeline", detail.pipeline, config.pipeline,
           "this product's release pipeline, from RELEASE_PIPELINE")  # fmt: skip
    resources_within(trigger, origin.arn("codepipeline", config.pipeline), FROM_CONTEXT,
                     EventError)  # fmt: skip
    if trigger.detail_type == ACTION_CHANGE:
        expect(EventError, "detail.stage", detail.stage, config.review_stage,
               "the first manual gate's stage, from MODEL_CARD_REVIEW_STAGE")  # fmt: skip
        expect(EventError, "detail.state", detail.state, "STARTED", "a gate's request")
        return Step("PendingReview", f"{detail.stage} asks its approvers",
                    execution=detail.execution_id)  # fmt: skip
    expect(EventError, "detail.stage", detail.stage, config.live_stage,
           "the stage that verifies prod, from MODEL_CARD_LIVE_STAGE")  # fmt: skip
    expect(EventError, "detail.state", detail.state, "SUCCEEDED", "a verified release")
    return Step("Approved", f"{detail.stage} succeeded: live in prod",
                execution=detail.execution_id)  # fmt: skip


# S3's and CodePipeline's answers for a release that is not there
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
MISSING = ("NoSuchKey", "NoSuchVersion", "InvalidArgument", "PipelineExecutionNotFoundException")


def code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def release_of(execution: str, origin: Origin, config: Settings) -> int:
    """The version `execution` releases: release.json at its source revision, its package a
    version of this product's group. EventError when it cannot be read."""
    where = f"s3://{config.bucket}/{config.key} of execution {execution}"
    try:
        described = codepipeline.get_pipeline_execution(
            pipelineName=config.pipeline, pipelineExecutionId=execution
        )
        revisions = described["pipelineExecution"].get("artifactRevisions") or []
        versions = [r["revisionId"] for r in revisions if r.get("revisionId")]
        if len(versions) != 1:
            raise EventError("artifactRevisions", f"execution {execution} has {len(versions)} "
                             "source revisions; expected the one of its release.json")  # fmt: skip
        body = s3.get_object(Bucket=config.bucket, Key=config.key, VersionId=versions[0])[
            "Body"
        ].read(RELEASE_BYTES + 1)
    except ClientError as err:
        if code(err) not in MISSING:
            raise
        raise EventError("release.json", f"{where} cannot be read ({code(err)})") from None
    try:
        found = check(json.loads(body), RELEASE)
    except Invalid as err:
        field, reason = first_problem(err.errors, root="release.json")
        raise EventError(field, f"{where} is not a release: {reason}") from None
    except ValueError as err:  # not JSON
        raise EventError("release.json", f"{where} is not JSON: {err}") from None
    arn = package_arn(origin, config.group, found.model_version)
    expect(EventError, "release.json.model_package_arn", found.model_package_arn.lower(), arn,
           f"version {found.model_version} of this product's group")  # fmt: skip
    version: int = found.model_version
    return version


def version_facts(arn: str, config: Settings) -> dict[str, Any]:
    """What the registry holds of the version for its card, and its evaluation's metrics
    (under "metrics": None when it registered no report this hook may read)."""
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        if code(err) != "ValidationException":  # SageMaker's answer for a version it lacks
            raise
        raise EventError("ModelPackageArn", f"SageMaker holds no version {arn}") from None
    if package.get("ModelPackageGroupName") != config.group:
        raise EventError("ModelPackageGroupName", f"{arn} belongs to "
                         f"{package.get('ModelPackageGroupName')}, not {config.group}")  # fmt: skip
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    quality = (package.get("ModelMetrics") or {}).get("ModelQuality") or {}
    report = (quality.get("Statistics") or {}).get("S3Uri")
    meta = package.get("CustomerMetadataProperties") or {}
    return {
        "arn": arn,
        "group": config.group,
        "number": int(arn.rsplit("/", 1)[1]),
        "model_data_url": containers[0].get("ModelDataUrl"),
        "image": containers[0].get("Image"),
        "report_uri": report,
        "metadata": {key.removeprefix("mlgate:").replace("-", "_"): value
                     for key, value in meta.items() if key.startswith("mlgate:")},
        "metrics": evaluation_of(report, config),
    }  # fmt: skip


def evaluation_of(uri: str | None, config: Settings) -> dict[str, float] | None:
    """The metrics of the version's evaluation report, read only from this product's training
    runs (as the release hook does); None when there is none to read."""
    runs = f"s3://{config.artifacts}/{config.training}/"
    if not uri or not uri.startswith(runs) or "/../" in uri:
        return None
    try:
        body = s3.get_object(
            Bucket=config.artifacts, Key=uri.removeprefix(f"s3://{config.artifacts}/")
        )["Body"]
        metrics = card.report_metrics(json.loads(body.read()))
    except ClientError as err:
        if code(err) != "NoSuchKey":
            raise
        return None
    except ValueError:  # not JSON
        return None
    return metrics or None


def status_of(name: str) -> str | None:
    """The card's status now; None when there is no such card."""
    try:
        return str(sagemaker.describe_model_card(ModelCardName=name)["ModelCardStatus"])
    except ClientError as err:
        if code(err) != "ResourceNotFound":
            raise
        return None


@dataclass(frozen=True)
class Move:
    card: str
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def ensure(version: int, arn: str, wanted: str, config: Settings) -> Move:
    """The card of `version` at `wanted` or later: created with its content when missing, its
    status moved forward otherwise, left as it is when it is there already or past it."""
    name = card.card_name(config.prefix, version)
    before = status_of(name)
    if before is None:
        facts = version_facts(arn, config)
        content = card.content(config.context, facts, facts.pop("metrics"))
        try:
            sagemaker.create_model_card(
                ModelCardName=name, Content=json.dumps(content), ModelCardStatus=wanted
            )
            return Move(name, None, wanted)
        except ClientError as err:
            if code(err) != "ConflictException":  # another try created it meanwhile
                raise
            before = status_of(name)
            assert before is not None, f"{name} exists and cannot be described"
    if not card.later(before, wanted):
        return Move(name, before, before)
    sagemaker.update_model_card(ModelCardName=name, ModelCardStatus=wanted)
    return Move(name, before, wanted)


def approved_versions(config: Settings) -> list[int]:
    """The versions whose cards are Approved now, of this product only (ListModelCards filters
    by a name's substring: another product's may contain the prefix)."""
    found = []
    for page in sagemaker.get_paginator("list_model_cards").paginate(
        NameContains=config.prefix, ModelCardStatus="Approved"
    ):
        for summary in page.get("ModelCardSummaries", []):
            version = card.version_of(config.prefix, summary["ModelCardName"])
            if version is not None and summary.get("ModelCardStatus") == "Approved":
                found.append(version)
    return sorted(set(found))


def go_live(version: int, origin: Origin, config: Settings) -> list[Move]:
    """The version is live: Approved, unless a later version is live already (then superseded:
    Archived); every earlier Approved card is superseded: Archived."""
    approved = approved_versions(config)
    superseded = any(v > version for v in approved)
    wanted = "Archived" if superseded else "Approved"
    moves = [ensure(version, package_arn(origin, config.group, version), wanted, config)]
    moves += [
        ensure(v, package_arn(origin, config.group, v), "Archived", config)
        for v in approved
        if v < version
    ]
    return moves


def act(step: Step, origin: Origin, config: Settings) -> dict[str, str]:
    if step.execution is not None:
        version = release_of(step.execution, origin, config)
    else:
        assert step.version is not None
        version = step.version
    if step.wanted == "Approved":
        moves = go_live(version, origin, config)
    else:
        moves = [ensure(version, package_arn(origin, config.group, version), step.wanted, config)]
    own, others = moves[0], moves[1:]
    archived = [m.card for m in others if m.changed]
    answer = {
        "card": own.card,
        "version": str(version),
        "status": own.after,
        "changed": "true" if own.changed else "false",
        "reason": step.why,
        "previous": own.before or "none",
        "archived": ",".join(archived),
    }
    logger.info("model card", extra=answer)
    return answer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: Any, context: Any) -> dict[str, str]:
    config = settings()
    origin = Origin.of(context)
    try:
        step = step_of(describe(event), origin, config)
        return act(step, origin, config)
    except EventError as err:
        logger.error("event refused", extra={"field": err.field, "reason": err.reason})
        return {"changed": "false", "status": "refused", "reason": err.reason}


# The import is done: its objects are frozen and the collector resumes (shared/coldstart.py).
settle()
