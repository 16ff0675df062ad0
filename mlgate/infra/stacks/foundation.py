"""Foundation: the product's KMS key, artifact bucket and on-call topic.

The home foundation (staging's account) serves the product-wide stacks and every environment
in that account. An environment in another account gets its own foundation there: a key,
a bucket for captured traffic and monitoring reports, an on-call topic, and the roles the home
release hooks assume to deploy and verify it.
"""

from __future__ import annotations

import math

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate.infra import accounts, durations
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.cost import ADVISOR_CHECKS, CostGuard, CostGuardProps
from mlgate.infra.constructs.endpoint import VARIANT
from mlgate.infra.constructs.hooks import IdempotencyTable
from mlgate.infra.constructs.service_access import ServiceTopic
from mlgate.infra.constructs.storage import AccessLogBucket, SecureBucket
from mlgate.infra.naming import Names
from mlgate.infra.stacks.base import ProductStack
from mlgate.manifest import ARTIFACT_PREFIXES, ENV_NAMES, NONCURRENT_DAYS, EnvName, Manifest

ADVISOR_REGION = "us-east-1"
"""Where Trusted Advisor publishes its events (mlgate/infra/constructs/cost.py)."""


def idle_billed(manifest: Manifest, env: EnvName) -> bool:
    """Whether the env's endpoint bills by the hour while it serves nothing: real-time, async
    kept above 0, serverless with provisioned concurrency; never a batch environment (read
    defensively: older manifests have no serving mode)."""
    serving = manifest.env_serving(env)
    mode = str(getattr(serving, "mode", "real-time"))
    if mode == "batch":
        return False  # no endpoint: instances only while a run scores
    if mode == "serverless":
        settings = getattr(serving, "serverless", None)
        return getattr(settings, "provisioned_concurrency", None) is not None
    if mode == "async":
        return not getattr(getattr(serving, "async_settings", None), "scale_to_zero", True)
    return True


def idle_alarm_hours(manifest: Manifest, env: EnvName) -> int:
    """The hours without a request after which the env's idle-endpoint alarm warns: the
    manifest's cost.idle_endpoint_hours, or, for an environment with off hours, more than its
    longest stretch outside working hours (a weekend: 61 h from Friday 19:00 to Monday 08:00),
    so that an endpoint idle only while nobody works does not warn every such stretch. At most
    168, the seven days an alarm can look back over hourly periods."""
    hours = manifest.cost.idle_endpoint_hours
    off = getattr(manifest.env_serving(env), "off_hours", None)
    if off is None:
        return hours
    return min(168, max(hours, math.ceil(float(off.longest_off_hours)) + 1))


def requests_metric(manifest: Manifest, env: EnvName) -> str:
    """The metric that counts the env's requests: an async endpoint publishes no Invocations."""
    from mlgate.infra.constructs.endpoint import ASYNC, ASYNC_REQUESTS

    return ASYNC_REQUESTS if str(manifest.env_serving(env).mode) == ASYNC else "Invocations"


def cost_alarm_names(manifest: Manifest, env: EnvName) -> list[str]:
    """The cost alarms of `env` (its dashboard lists them by name)."""
    from mlgate.infra.constructs.cost import idle_alarm_name

    return [idle_alarm_name(Names.of(manifest), env)] if idle_billed(manifest, env) else []


def artifact_retention(manifest: Manifest) -> dict[str, int]:
    """The data classes an artifact bucket keeps under prefixes, {prefix: days}
    (mlgate.manifest.ARTIFACT_PREFIXES)."""
    return {
        prefix: getattr(manifest.retention, data_class)
        for data_class, prefix in ARTIFACT_PREFIXES.items()
    }


class SiteStack(ProductStack):
    """What every account the product runs in holds: key, buckets, on-call topic."""

    key: kms.Key
    access_logs: s3.Bucket
    artifacts: s3.Bucket
    on_call_topic: sns.Topic
    idempotency: IdempotencyTable

    def _site(self, manifest: Manifest, what: str) -> None:
        self.key = kms.Key(
            self,
            "ProductKey",
            alias=self.names.key_alias(),
            description=f"Encrypts every data store of the {self.product} ML product{what}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=durations.days(30),
        )
        # CloudWatch Logs encrypts the product's log groups (Glue jobs, hooks) with this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.target.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                         "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn":
                            f"arn:aws:logs:{self.target.region}:{self.target.account}:log-group:*"
                    }
                },
            )
        )  # fmt: skip
        # CloudWatch alarms and EventBridge rules publish to the product's encrypted topics, in
        # the form SNS documents for AWS services that publish to an encrypted topic: the
        # service principal, kms:Decrypt and kms:GenerateDataKey*, no condition
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "Enable
        # compatibility between event sources from AWS services and encrypted topics"). Neither
        # SNS nor KMS documents that the key request SNS makes for EventBridge or CloudWatch
        # carries aws:SourceAccount or aws:SourceArn, and a condition on an absent key fails
        # closed: every failure notice would be dropped. The topics' own policies say who may
        # publish; each rule's FailedInvocations alarm shows a notice that was dropped anyway.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AwsServicesPublishToEncryptedTopics",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.access_logs = AccessLogBucket(self, "AccessLogs").bucket
        self.artifacts = SecureBucket(
            self,
            "Artifacts",
            key=self.key,
            access_logs=self.access_logs,
            log_prefix="artifacts/",
            bucket_name=self.bucket_name("artifacts"),
            prefix_expirations=artifact_retention(manifest),
            expired_noncurrent_days=NONCURRENT_DAYS,
        ).bucket
        self.on_call_topic = ServiceTopic(
            self,
            "OnCallTopic",
            topic_name=self.name("on-call"),
            display_name=f"{manifest.product.display_name} on-call{what}",
            master_key=self.key,
            enforce_ssl=True,
        )
        on_call = manifest.contact(manifest.product.owners.on_call)
        self.on_call_topic.add_subscription(subs.EmailSubscription(on_call.email))
        # The hooks of this account keep their Powertools idempotency records here.
        self.idempotency = IdempotencyTable(
            self, "Idempotency", key=self.key, table_name=self.name("idempotency")
        )
        self.serving_cfn_roles: dict[EnvName, iam.Role] = {}
        """Per environment of this account: the Serving stack's CloudFormation service role."""

    def _cost(self, manifest: Manifest, envs: list[EnvName], budget: bool) -> None:
        """The idle-endpoint alarms of this account's environments, Trusted Advisor's routing
        (its events reach this region from us-east-1: stacks/advisor.py), and with `budget`
        the product's budget."""
        cost = manifest.cost
        owners = manifest.product.owners
        self.cost = CostGuard(
            self,
            "Cost",
            props=CostGuardProps(
                names=self.names,
                account=self.target.account,
                product_manager=manifest.contact(owners.product_manager),
                on_call=manifest.contact(owners.on_call),
                runbook=manifest.product.runbook_url,
                endpoints=tuple(
                    (
                        env,
                        Names.of(manifest, env).endpoint(),
                        VARIANT,
                        requests_metric(manifest, env),
                    )
                    for env in envs
                    if idle_billed(manifest, env)
                ),
                idle_hours=cost.idle_endpoint_hours,
                idle_hours_by_env=tuple((env, idle_alarm_hours(manifest, env)) for env in envs),
                monthly_budget=cost.monthly_budget if budget else None,
                currency=cost.currency,
                forecast_percent=cost.forecast_alert_percent,
                actual_percent=cost.actual_alert_percent,
                advisor=ADVISOR_CHECKS,
            ),
            key=self.key,
            on_call_topic=self.on_call_topic,
        )

    def _serving_cfn_role(self, env: EnvName) -> iam.Role:
        """The role CloudFormation runs the deployer's parameter update of the env's Serving
        stack as (UpdateStack's RoleARN): what that update needs and nothing else
        (accounts.serving_update_access), trusted by CloudFormation in this account only
        (aws:SourceAccount: https://docs.aws.amazon.com/IAM/latest/UserGuide/
        confused-deputy.html). `cdk deploy` keeps its own bootstrap execution role."""
        names = self.names.at(env)
        role = iam.Role(
            self,
            f"{env.capitalize()}ServingCfnRole",
            role_name=names.serving_cfn_role(),
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": self.target.account}}
            ),
            description=f"CloudFormation service role of the {self.product} {env} Serving "
            "stack: applies a released version's parameters, nothing else",
            max_session_duration=durations.hours(1),
        )
        statements, findings = accounts.serving_update_access(self.manifest, env, self.key.key_arn)
        for statement in statements:
            role.add_to_policy(statement)
        acknowledge_each(role.node.find_child("DefaultPolicy"), findings)
        self.serving_cfn_roles[env] = role
        return role


class FoundationStack(SiteStack):
    """The home foundation, in staging's account."""

    component = "foundation"

    def __init__(self, scope: Construct, *, manifest: Manifest) -> None:
        super().__init__(
            scope, manifest=manifest, description="KMS key, artifact bucket, on-call topic"
        )
        self._site(manifest, "")
        for env in ENV_NAMES:
            if not manifest.is_remote(env):
                self._serving_cfn_role(env)
        for env in accounts.remote_envs(manifest):
            self._share_artifacts(env)
        self._cost(manifest, [e for e in ENV_NAMES if not manifest.is_remote(e)], budget=True)

    def _share_artifacts(self, env: EnvName) -> None:
        """A remote environment's model and monitor roles read released versions (the copies
        the release hook makes under released/<product>/, never a training run) and decrypt
        them through S3 for this bucket only: with an S3 Bucket Key the encryption context
        KMS sees is the bucket's ARN (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
        bucket-key.html), so the prefix is the bucket policy's to hold."""
        account = self.manifest.environment(env).account
        principal = accounts.trusted_roles(account, *accounts.artifact_readers(self.manifest, env))
        self.artifacts.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{env.capitalize()}ReadsReleasedVersions",
                principals=[principal],
                actions=["s3:GetObject"],
                resources=[self.artifacts.arn_for_objects(f"{self.names.released_prefix()}/*")],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{env.capitalize()}DecryptsReleasedVersions",
                principals=[principal],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"s3.{self.target.region}.amazonaws.com",
                        "kms:EncryptionContext:aws:s3:arn": self.bucket_arn("artifacts"),
                    }
                },
            )
        )


class EnvironmentFoundationStack(SiteStack):
    """The foundation of an environment in another account than home."""

    component = "foundation"

    def __init__(self, scope: Construct, *, manifest: Manifest, env_name: EnvName) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            env_name=env_name,
            description=f"{env_name} account: KMS key, capture bucket, on-call topic, the "
            "roles the release pipeline assumes",
        )
        self._site(manifest, f" ({env_name})")
        self._serving_cfn_role(env_name)
        self._cost(manifest, [env_name], budget=False)
        home = accounts.home_account(manifest)
        self.deploy_role = self._release_role(
            "DeployRole",
            self.names.deploy_role(),
            # The rollback command's role too: it redeploys a served version the same way.
            accounts.trusted_roles(home, self.names.deployer_role(), self.names.rollback_role()),
            *accounts.deploy_access(manifest, env_name),
            what="updates the Serving stack with a released model version",
        )
        self.verify_role = self._release_role(
            "VerifyRole",
            self.names.verify_role(),
            accounts.trusted_roles(home, self.names.verifier_role(), self.names.rollback_role()),
            *accounts.verify_access(manifest, env_name),
            what="checks that the endpoint serves the released version",
        )

    def _release_role(
        self,
        id: str,
        name: str,
        trusted: iam.IPrincipal,
        statements: list[iam.PolicyStatement],
        findings: accounts.Findings,
        *,
        what: str,
    ) -> iam.Role:
        role = iam.Role(
            self,
            id,
            role_name=name,
            assumed_by=trusted,
            description=f"Assumed by the {self.product} release pipeline's hook from the home "
            f"account: {what}",
            max_session_duration=durations.hours(1),
        )
        for statement in statements:
            role.add_to_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        acknowledge_each(policy, findings)
        return role
