"""Lambda hooks: one construct decides runtime, packaging, logging and the least-privilege role."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, Duration, RemovalPolicy, Stack, Stage
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import CRITICAL, AlarmFactory, hook_alarm
from mlgate.infra.constructs.compliance import KEY_GRANT_FINDINGS, acknowledge, acknowledge_findings
from mlgate.infra.wheelsets import POWERTOOLS

LAMBDAS = Path(__file__).resolve().parents[2] / "runtime" / "hooks"


@functools.cache
def runtime() -> lambda_.Runtime:
    """The hooks' runtime; the Powertools layer's wheels are locked for it
    (mlgate/infra/wheelsets.py).
    A function, not a module constant: reading it is a call to node, and mlgate makes none at
    import (tests/test_validation_engine.py)."""
    return lambda_.Runtime.PYTHON_3_13


@functools.cache
def architecture() -> lambda_.Architecture:
    return lambda_.Architecture.X86_64


LAYER_ID = "PowertoolsLayer"
# Runtime code shared by every hook: the asset is mlgate/runtime/hooks, minus what never runs there.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.md", "**/.mypy_cache"]


# Powertools' DynamoDB persistence reads, writes, updates and deletes its records
# (https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/#iam-permissions).
# What reading and writing a table encrypted with the product key asks of the key, through
# DynamoDB (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
# encryption.usagenotes.html).
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
IDEMPOTENCY_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
]


# How long a dead-letter queue keeps an event its hook failed on. Lambda's on-failure
# destination sends the whole invocation record, the event included
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html), and a hook
# cannot redact what Lambda sends; so a queue keeps an event only as long as it can still be
# redriven, and no longer where the event carries a credential or a token:
# - A CodePipeline job event carries the job's artifact credentials (`artifactCredentials`,
#   https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-Lambda.html).
#   Its Lambda invoke action times out 20 minutes after the function's last reply
#   (https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html), after which the
#   job can no longer be completed: an hour keeps it past that and past the alarm's period.
# (Numbers, not Durations: mlgate makes no call to node at import.)
JOB_EVENT_HOURS = 1
JOB_HOOKS = ("deployer", "deploy_verifier", "quality_gate")
# - An approval notification carries the approval's token, good until the approval expires:
#   kept as long as the product's longest manual gate stays open (at most 7 days).
# - Every other hook's event (EventBridge's) carries no credential or token: 14 days, SQS's
#   most, for on-call to read and redrive it.
EVENT_DAYS = 14


def dead_letter_retention(hook: str, *, approval_hours: int = 1) -> tuple[Duration, str]:
    """How long `hook`'s dead-letter queue keeps a failed event, and why; `approval_hours`:
    the product's longest manual gate timeout (the gate notifier's events live that long)."""
    if hook in JOB_HOOKS:
        return durations.hours(JOB_EVENT_HOURS), (
            "CodePipeline job events carry the job's artifact credentials, and the job times "
            "out 20 minutes after its last reply: kept one hour"
        )
    if hook == "gate_notifier":
        hours = approval_hours
        return durations.hours(hours), (
            f"approval notifications carry the approval token, good until the approval "
            f"expires: kept {hours} h, the longest manual gate's timeout"
        )
    return durations.days(EVENT_DAYS), (
        "its events carry no credential or token: kept 14 days for on-call to read and redrive"
    )


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """Lambda's on-failure destination on an SQS queue, without the send grant CDK's
    SqsDestination adds (its key grant is the wildcard kms:GenerateDataKey*, kms:ReEncrypt*,
    with no kms:ViaService): HookFunction grants what Lambda's send needs itself."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(self, scope: Construct, fn: lambda_.IFunction, *, type: Any = None) -> Any:
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)


@dataclass(frozen=True)
class FailureRouting:
    """Where an asynchronously invoked hook's failures go once Lambda's retries are spent: a
    dead-letter queue encrypted with `key` that keeps an event for `retention` (`why`), and
    its alarm (system/hook-<hook>-failed/critical), made by `alarms` and paging on-call."""

    key: kms.IKey
    alarms: AlarmFactory
    retention: Duration = field(default_factory=lambda: durations.days(EVENT_DAYS))
    why: str = "its events carry no credential or token: kept 14 days for on-call"

    @classmethod
    def of(
        cls, hook: str, *, key: kms.IKey, alarms: AlarmFactory, approval_hours: int = 1
    ) -> FailureRouting:
        """The hook's failure routing, its queue keeping an event as long as what the hook's
        events carry allows (`approval_hours`: dead_letter_retention's)."""
        retention, why = dead_letter_retention(hook, approval_hours=approval_hours)
        return cls(key=key, alarms=alarms, retention=retention, why=why)


def grant_key_via(
    grantee: iam.IGrantable, key: kms.IKey, region: str, services: Sequence[str], *actions: str
) -> iam.Grant:
    """`actions` on `key` only when a request comes through one of `services` in `region`
    (https://docs.aws.amazon.com/kms/latest/developerguide/
    conditions-kms.html#conditions-kms-via-service): a role that can decrypt through DynamoDB
    cannot call kms:Decrypt itself. Identity-side: the key policy names no later stack's role."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=sorted(actions),
        resource_arns=[key.key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": [
                    f"{service}.{region}.amazonaws.com" for service in sorted(services)
                ]
            }
        },
    )


class IdempotencyTable(Construct):
    """The table Powertools' idempotency utility keeps its records in: one per product and
    account, encrypted with the product key, records expire through TTL `expiration`.

    A table of its own rather than a key prefix in the audit trail: Powertools deletes the
    record of a failed run, and no role may delete from the audit trail; the audit table's TTL
    attribute is another; and an environment in another account needs a table there anyway.
    """

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, table_name: str) -> None:
        super().__init__(scope, id)
        self.key = key
        self.table = dynamodb.TableV2(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expiration",
            # Records live hours to weeks and are rebuilt by the next run: nothing to keep.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def grant_records(self, grantee: iam.IGrantable, prefix: str) -> iam.Grant:
        """What Powertools' idempotency needs, on the records whose keys start with `prefix`
        (a hook's name: the prefixes its code gives Powertools) only, and the product key
        through DynamoDB."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=IDEMPOTENCY_ACTIONS,
            resource_arns=[self.table.table_arn],
            conditions={
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{prefix}#*", f"{prefix}.*"]}
            },
        )
        region = Stack.of(self).region
        return grant.combine(
            grant_key_via(grantee, self.key, region, ["dynamodb"], *TABLE_KEY_ACTIONS)
        )


class AuditTrail(dynamodb.TableV2):
    """The audit trail of a product's gates (lambdas/shared/audit.py): "request" items whose
    state changes, and "gate" events that are appended and never changed. Encrypted with the
    product key, kept (deletion protection, retained) and expiring through TTL `expires_at`
    after the manifest's retention.audit days."""

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, table_name: str) -> None:
        super().__init__(
            scope,
            id,
            table_name=table_name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            time_to_live_attribute="expires_at",
        )
        self.product_key = key

    def grant_append(
        self, grantee: iam.IGrantable, prefixes: Sequence[str], *actions: str
    ) -> iam.Grant:
        """`actions` on the items whose keys start with `prefixes` only (dynamodb:LeadingKeys):
        "gate" events, "request" items. A hook that may change requests (UpdateItem) and append
        events (PutItem) is granted once for each, so no role may update or delete an event
        (tests/test_hook_key_grants.py); and the product key through DynamoDB."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[self.table_arn],
            conditions={
                "ForAllValues:StringLike": {
                    "dynamodb:LeadingKeys": [f"{prefix}#*" for prefix in prefixes]
                }
            },
        )
        region = Stack.of(self).region
        return grant.combine(
            grant_key_via(grantee, self.product_key, region, ["dynamodb"], *TABLE_KEY_ACTIONS)
        )


def powertools_layer(stack: Stack) -> lambda_.ILayerVersion:
    """The stack's one Powertools layer, shared by its hooks: mlgate's own, built from the
    locked wheels of the version the tests run (mlgate/infra/wheelsets.py), so no public layer has
    to exist in the region and the deployed Powertools cannot drift from the tested one.

    Lambda puts a layer's python/ folder on the runtime's path
    (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html). The asset is named
    by the lock's key (a custom hash), so synth does not read the zip to fingerprint it; every
    stack's layer is the same asset, staged and uploaded once per account. A missing zip stops
    synth with the command that builds it (`make wheels`)."""
    found = stack.node.try_find_child(LAYER_ID)
    if isinstance(found, lambda_.LayerVersion):
        return found
    version = POWERTOOLS.pins["aws-lambda-powertools"]
    return lambda_.LayerVersion(
        stack,
        LAYER_ID,
        code=lambda_.Code.from_asset(
            str(POWERTOOLS.staged(Stage.of(stack).asset_outdir)),  # type: ignore[union-attr]
            asset_hash=POWERTOOLS.key,
            asset_hash_type=AssetHashType.CUSTOM,
        ),
        compatible_runtimes=[runtime()],
        compatible_architectures=[architecture()],
        description=f"Powertools for AWS Lambda (Python) {version} and its dependencies, from "
        "mlgate's locked wheels (requirements-powertools.lock)",
        license="MIT-0",
    )


class HookFunction(Construct):
    """A Lambda hook from mlgate/runtime/hooks/<hook>/handler.py with its own role and log group.

    The role starts empty but for writing its own log group; each hook's construct grants what
    the hook calls, so the role in the template is the hook's exact contract. Logs are kept
    for a year. `role_name` fixes the role's name where a role of another account trusts it by name
    (mlgate/infra/accounts.py); otherwise CloudFormation names it. `failures` (default: none, for a
    hook invoked synchronously) gives an asynchronously invoked hook an on-failure destination
    and its alarm; `reserved_concurrency` (default: none) caps a hook anyone can invoke.
    `metrics_namespace` (default: none, for a hook that publishes no metrics) is where
    Powertools' Metrics puts the hook's EMF metrics (POWERTOOLS_METRICS_NAMESPACE): they reach
    CloudWatch through the hook's log group, so the role needs no cloudwatch:PutMetricData.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        hook: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration | None = None,
        memory_size: int = 256,
        role_name: str | None = None,
        failures: FailureRouting | None = None,
        reserved_concurrency: int | None = None,
        metrics_namespace: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.hook = hook
        if not (LAMBDAS / hook / "handler.py").is_file():
            raise ValueError(f"hook '{hook}' has no mlgate/runtime/hooks/{hook}/handler.py")
        stack = Stack.of(self)
        self._region = stack.region  # read once: each read is a call to node
        self._key_grants: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{hook} hook: writes its logs; the stack grants what it calls",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.failure_alarm_name: str | None = None
        """The name of the alarm on its dead-letter queue (system/hook-<hook>-failed/critical),
        when it has one."""
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=runtime(),
            architecture=architecture(),
            handler=f"{hook}.handler.handler",
            code=lambda_.Code.from_asset(str(LAMBDAS), exclude=ASSET_EXCLUDES),
            description=description,
            role=self.role,
            log_group=self.log_group,
            timeout=timeout or durations.seconds(30),
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            on_failure=self._dead_letters(hook, failures) if failures else None,
            layers=[powertools_layer(stack)],
            environment={
                "POWERTOOLS_SERVICE_NAME": hook,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # The hooks use no pydantic plugin: without this, pydantic's first model scans
                # the entry points of every installed distribution for one
                # (https://docs.pydantic.dev/latest/concepts/plugins/), at each cold start.
                "PYDANTIC_DISABLE_PLUGINS": "__all__",
                **(
                    {"POWERTOOLS_METRICS_NAMESPACE": metrics_namespace} if metrics_namespace else {}
                ),
                **environment,
            },
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"The {hook} hook runs on python3.13, the runtime its Powertools layer's wheels are "
            "locked for (requirements-powertools.lock); it moves when the lock does.",
        )
        if reserved_concurrency is not None:
            # Lambda refuses a reservation that leaves fewer than 100 executions unreserved
            # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html): the
            # template says who asked, and the service-rules table holds every other function
            # to none (mlgate/infra/service_rules.py).
            self.function.node.default_child.add_metadata(  # type: ignore[union-attr]
                "mlgate:reserved-concurrency",
                f"{reserved_concurrency} reserved because the manifest asks; `mlgate preflight` "
                "checks the account leaves 100 unreserved beside it",
            )

    def _dead_letters(self, hook: str, failures: FailureRouting) -> lambda_.IDestination:
        """An event Lambda gave up on (after its two retries) lands here, and on-call hears."""
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=failures.key,
            enforce_ssl=True,
            retention_period=failures.retention,
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            f"This queue is the {hook} hook's on-failure destination, itself the dead-letter "
            f"queue; on-call is alarmed at its first message ({failures.why}).",
        )
        # The name as a plain string: the dashboard of its environment lists the alarm by name
        # (a reference to the alarm itself would tie the two stacks with an export).
        self.failure_alarm_name = failures.alarms.name(
            "system", hook_alarm(hook, "failed"), CRITICAL
        )
        self.failure_alarm = failures.alarms.alarm(
            self,
            "FailedEvents",
            tier="system",
            what=hook_alarm(hook, "failed"),
            severity=CRITICAL,
            meaning=f"The {hook} hook failed on an event three times (Lambda's retries spent); "
            "the event waits in its dead-letter queue.",
            checks=(
                "the hook's log group for the error",
                "the event in the queue",
                "redrive it once the cause is fixed",
            ),
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=durations.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # An empty queue publishes nothing: no failed event is the healthy state.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # Lambda sends to the queue with the function's role: sqs:SendMessage, and the key's
        # data key through SQS only (a producer of a KMS-encrypted queue needs
        # kms:GenerateDataKey and kms:Decrypt: https://docs.aws.amazon.com/AWSSimpleQueueService/
        # latest/SQSDeveloperGuide/sqs-key-management.html), not CDK's wildcard key grant.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]
            )
        )
        self._use_key_via(failures.key, ["sqs"], "kms:GenerateDataKey", "kms:Decrypt")
        return _QueueDestination(self.dead_letters)

    @property
    def policy(self) -> IConstruct:
        """The role's default policy, where the grants and their acknowledgments sit."""
        return self.role.node.find_child("DefaultPolicy")

    def use_key(self, key: kms.IKey, *actions: str, via: Sequence[str] = ("s3",)) -> None:
        """The product key, used through the services in `via` only (kms:ViaService): the S3
        objects the hook reads or writes (the default), the SNS messages it publishes."""
        self._use_key_via(key, via, *actions)

    def read_secret(self, secret: secretsmanager.ISecret, key: kms.IKey) -> None:
        """Identity-side grants only: the key lives in the foundation stack, whose key policy
        must not name roles of later stacks (that would make the stacks depend on each other)."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn]
            )
        )
        self._use_key_via(key, ["secretsmanager"], "kms:Decrypt")

    def acknowledge_key_grant(self, why: str) -> None:
        acknowledge_findings(
            self.policy,
            KEY_GRANT_FINDINGS,
            f"The hook {why}; CDK's grant on the product key expands to these actions.",
        )

    def _use_key_via(self, key: kms.IKey, services: Sequence[str], *actions: str) -> None:
        """`grant_key_via` in the hook's region, each grant made once per role."""
        wanted = (key.node.path, tuple(sorted(services)), tuple(sorted(actions)))
        if wanted in self._key_grants:
            return
        self._key_grants.add(wanted)
        grant_key_via(self.role, key, self._region, services, *actions)

    def make_idempotent(self, store: IdempotencyTable) -> None:
        """Powertools idempotency on `store` (its table in IDEMPOTENCY_TABLE), on the records
        of this hook only (`IdempotencyTable.grant_records`)."""
        self.function.add_environment("IDEMPOTENCY_TABLE", store.table.table_name)
        store.grant_records(self.role, self.hook)
