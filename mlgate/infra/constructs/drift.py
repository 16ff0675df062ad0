"""DriftResponder: drift detected in an environment starts retraining, at most once per
cool-down, and tells the model's owners."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlgate.infra.constructs.alarms import AlarmFactory
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import (
    TABLE_KEY_ACTIONS,
    FailureRouting,
    HookFunction,
    IdempotencyTable,
)
from mlgate.infra.constructs.sagemaker_access import start_training
from mlgate.infra.naming import Names

DRIFT_METRICS_NAMESPACE = "mlgate/monitoring"


@dataclass(frozen=True)
class DriftProps:
    """What the drift responder of one environment knows: its `names` (the environment's),
    the cool-down between two retrainings (`cooldown_hours`), and how it starts the training
    pipeline `training_pipeline_arn`: directly in the home account, or through the home
    account's `retrain_role_arn` from another account."""

    names: Names
    cooldown_hours: int
    training_pipeline_arn: str
    retrain_role_arn: str | None = None


class DriftResponder(Construct):
    """The cool-down table, the drift responder hook and the rule that calls it on
    `drift_event` (keyword-only inputs)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: DriftProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        idempotency: IdempotencyTable,
        drift_event: events.EventPattern,
        drift_description: str,
        drift_source: dict[str, str],
        reports_uri: str,
    ) -> None:
        """`drift_event` is what declares drift, `drift_source` the environment variable that
        names its source for the hook's own check (DRIFT_ALARM or MONITORING_SCHEDULE);
        `reports_uri` where its reports are; `alarms` the environment's alarm factory, whose
        on-call topic also hears what the responder did."""
        super().__init__(scope, id)
        on_call = alarms.on_call
        names = props.names
        if names.env is None:
            raise ValueError("a drift responder's names are those of its environment")
        product, env = names.product, names.env
        self.table = dynamodb.TableV2(
            self,
            "DriftCooldown",
            table_name=names.resource("drift"),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.hook = HookFunction(
            self,
            "DriftResponder",
            hook="drift_responder",
            role_name=names.drift_role(),
            description="Starts retraining on drift, at most once per cool-down",
            environment={
                "PIPELINE_NAME": names.training_pipeline(),
                "COOLDOWN_TABLE": self.table.table_name,
                "COOLDOWN_HOURS": str(props.cooldown_hours),
                "OWNERS_TOPIC_ARN": on_call.topic_arn,
                "ENDPOINT_NAME": names.endpoint(),
                "PRODUCT": product,
                "ENVIRONMENT": env,
                "REPORTS_URI": reports_uri,
                # DriftViolations is written in the embedded metric format to the function's
                # log; CloudWatch files it under this namespace, the drift alarm's.
                "POWERTOOLS_METRICS_NAMESPACE": DRIFT_METRICS_NAMESPACE,
                **drift_source,
            },
            failures=FailureRouting(key=key, alarms=alarms),
        )
        hook = self.hook
        hook.make_idempotent(idempotency)
        # A cool-down is claimed (PutItem), read, and given back when SageMaker refuses the
        # start (DeleteItem). The key is used through DynamoDB and SNS only (kms:ViaService),
        # not CDK's table and topic grants, whose key grants have no such condition.
        hook.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"],
                resources=[self.table.table_arn],
            )
        )
        hook.role.add_to_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[on_call.topic_arn])
        )
        hook.use_key(key, *TABLE_KEY_ACTIONS, via=("dynamodb",))
        # Publishing to the encrypted on-call topic (https://docs.aws.amazon.com/sns/latest/dg/
        # sns-key-management.html#sns-what-permissions-for-sse).
        hook.use_key(key, "kms:GenerateDataKey", "kms:Decrypt", via=("sns",))
        retrain = props.retrain_role_arn
        if retrain is not None:
            # The pipeline lives in the home account: start it through the home retrain role.
            hook.function.add_environment("RETRAIN_ROLE_ARN", retrain)
            hook.role.add_to_policy(
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[retrain])
            )
        else:
            hook.role.add_to_policy(start_training(props.training_pipeline_arn))
        self.rule = WatchedRule(
            self,
            "DriftDetected",
            rule_name=names.resource("drift"),
            description=drift_description,
            event_pattern=drift_event,
            targets=[targets.LambdaFunction(hook.function, retry_attempts=2)],
        )
