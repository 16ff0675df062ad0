"""Model cards: the hook that keeps a SageMaker Model Card for each registered model version of
a product, its status following the release (mlgate/runtime/hooks/model_card/handler.py), and
the three rules that feed it: the registry's version changes, the request of the release
pipeline's first manual gate, and the success of the stage that verifies prod."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlgate.infra.constructs.alarms import AlarmFactory
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import FailureRouting, HookFunction
from mlgate.infra.constructs.release_hooks import RELEASE_KEY, ReleaseProps, decrypt_via_s3

NAME_DIGITS = 6
"""A card's name is its prefix and the version's six digits (model_card/card.py DIGITS)."""


@dataclass(frozen=True)
class ModelCardProps:
    """The release (`release`: the product's names and home artifact bucket), the manifest's
    part of every card (`context`, encoded: mlgate/infra/cards.py), the prefix every card's
    name starts with (`card_prefix`), the stage of the first manual gate (`review_stage`),
    whose request puts a version's card up for review, and the stage that verifies prod
    (`live_stage`), whose success is the version's go-live."""

    release: ReleaseProps
    context: str
    card_prefix: str
    review_stage: str
    live_stage: str


def card_resource(region: str, account: str, prefix: str) -> str:
    """The ARN pattern of the product's cards and no other: `?` matches one character
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html),
    so the pattern names exactly the prefix and six characters. A product whose name extends
    this one's with -v... (<product>-v2: cards mlgate-<product>-v2-v000001) has more after it."""
    return f"arn:aws:sagemaker:{region}:{account}:model-card/{prefix}{'?' * NAME_DIGITS}"


class ModelCards(HookFunction):
    """The model card hook, its grants (exactly what it calls, on the product's cards,
    versions, release and training runs) and the rules that invoke it."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: ModelCardProps,
        key: kms.IKey,
        alarms: AlarmFactory,
    ) -> None:
        names = props.release.names
        stack = Stack.of(scope)
        region, account = stack.region, stack.account
        releases = names.bucket("releases", account, region)
        artifacts = props.release.home_artifacts
        group = names.model_package_group()
        training = f"training/{names.product}"
        pipeline = names.release_pipeline()
        super().__init__(
            scope,
            id,
            hook="model_card",
            description="Keeps each model version's SageMaker Model Card, its status following "
            "the release's gates",
            environment={
                "MODEL_CARD_CONTEXT": props.context,
                "MODEL_CARD_PREFIX": props.card_prefix,
                "MODEL_CARD_REVIEW_STAGE": props.review_stage,
                "MODEL_CARD_LIVE_STAGE": props.live_stage,
                "MODEL_PACKAGE_GROUP": group,
                "RELEASE_PIPELINE": pipeline,
                "RELEASE_BUCKET": releases,
                "RELEASE_KEY": RELEASE_KEY,
                "ARTIFACT_BUCKET": artifacts,
                "TRAINING_PREFIX": training,
            },
            failures=FailureRouting.of("model_card", key=key, alarms=alarms),
        )
        self.cards = card_resource(region, account, props.card_prefix)
        packages = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/*"
        reports = f"arn:aws:s3:::{artifacts}/{training}/*"
        for actions, resource in (
            (
                ["sagemaker:DescribeModelCard", "sagemaker:CreateModelCard",
                 "sagemaker:UpdateModelCard"],
                self.cards,
            ),
            # ListModelCards supports no resource-level permission (the service authorization
            # reference lists no resource type for it); the hook lists by its prefix.
            (["sagemaker:ListModelCards"], "*"),
            (["sagemaker:DescribeModelPackage"], packages),
            # CreateModelCard with model_package_details checks the version's group with the
            # caller's permissions (AWS::SageMaker::ModelCard's create handler lists
            # DescribeModelPackageGroup and DescribeModelPackage).
            (
                ["sagemaker:DescribeModelPackageGroup"],
                f"arn:aws:sagemaker:{region}:{account}:model-package-group/{group}",
            ),
            (
                ["codepipeline:GetPipelineExecution"],
                f"arn:aws:codepipeline:{region}:{account}:{pipeline}",
            ),
            (["s3:GetObjectVersion"], f"arn:aws:s3:::{releases}/{RELEASE_KEY}"),
            (["s3:GetObject"], reports),
        ):  # fmt: skip
            self.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[resource]))
        decrypt_via_s3(
            self, key, ["kms:Decrypt"], {releases: [RELEASE_KEY], artifacts: [f"{training}/"]}
        )
        acknowledge_each(
            self.policy,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "sagemaker:ListModelCards supports no resource-level permission; the model "
                    "card hook lists only names with its product's prefix, to archive the card "
                    "a new version supersedes."
                ),
                f"AwsSolutions-IAM5[Resource::{packages}]": (
                    f"The model card hook describes versions of {group} for their cards; the "
                    "wildcard is the version number."
                ),
                f"AwsSolutions-IAM5[Resource::{reports}]": (
                    "The model card hook reads a version's evaluation report in this product's "
                    "training runs; the wildcard is the run."
                ),
            },
        )
        target = targets.LambdaFunction(self.function, retry_attempts=2)
        self.rules = [
            WatchedRule(
                self,
                "VersionRegistered",
                rule_name=names.rule("model-card-registered"),
                description="A version of this product's model was registered or changed in "
                "the registry: its model card (Draft)",
                event_pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=["SageMaker Model Package State Change"],
                    detail={"ModelPackageGroupName": [group]},
                ),
                targets=[target],
            ),
            WatchedRule(
                self,
                "ReviewRequested",
                rule_name=names.rule("model-card-review"),
                description="The release's first manual gate asks its approvers: the version's "
                "model card is pending review",
                event_pattern=events.EventPattern(
                    source=["aws.codepipeline"],
                    detail_type=["CodePipeline Action Execution State Change"],
                    detail={
                        "pipeline": [pipeline],
                        "stage": [props.review_stage],
                        "state": ["STARTED"],
                    },
                ),
                targets=[target],
            ),
            WatchedRule(
                self,
                "WentLive",
                rule_name=names.rule("model-card-live"),
                description="Prod was verified with the released version: its model card is "
                "approved, the one it replaces archived",
                event_pattern=events.EventPattern(
                    source=["aws.codepipeline"],
                    detail_type=["CodePipeline Stage Execution State Change"],
                    detail={
                        "pipeline": [pipeline],
                        "stage": [props.live_stage],
                        "state": ["SUCCEEDED"],
                    },
                ),
                targets=[target],
            ),
        ]
