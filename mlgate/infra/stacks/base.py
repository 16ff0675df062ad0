"""What every mlgate stack shares: its product, its environment, its tags."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlgate.infra.constructs.alarms import AlarmFactory
from mlgate.infra.constructs.sagemaker_access import ReleasedVersions
from mlgate.infra.naming import Names
from mlgate.manifest import EnvName, Manifest, MonitoringEngine


def reports_prefix(manifest: Manifest, env: EnvName) -> str:
    """Where the environment's monitoring writes its reports, inside its artifact bucket."""
    evidently = manifest.monitoring.engine is MonitoringEngine.EVIDENTLY
    return Names.of(manifest, env).monitoring_reports(evidently)


def released_versions(manifest: Manifest, env: EnvName) -> ReleasedVersions:
    """Where `env`'s roles read released versions: the home artifact bucket."""
    home = manifest.environments.staging
    return ReleasedVersions(
        env=env,
        home_account=home.account,
        home_region=home.region,
        bucket=Names.of(manifest).bucket("artifacts", home.account, home.region),
        remote=manifest.is_remote(env),
    )


def training_pipeline_arn(manifest: Manifest) -> str:
    """The product's training pipeline, in the home account."""
    home = manifest.environments.staging
    name = Names.of(manifest).training_pipeline()
    return f"arn:aws:sagemaker:{home.region}:{home.account}:pipeline/{name}"


class ProductStack(cdk.Stack):
    """A deployable unit of one product, in one environment (the staging account hosts the
    product-wide stacks: foundation, data, training, delivery)."""

    component: str = ""
    updated_by_hooks: bool = False
    """True for a stack the release hooks update (UpdateStack with the previous template): it
    carries no BootstrapVersion rule, whose SSM parameter CloudFormation would resolve with the
    hook's permissions on every update (https://docs.aws.amazon.com/cdk/v2/guide/
    bootstrapping-env.html#bootstrapping-template, the BootstrapVersion check)."""

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        env_name: EnvName | None = None,
        description: str,
    ) -> None:
        home: EnvName = env_name or "staging"
        target = manifest.environment(home)
        product = manifest.product.name
        super().__init__(
            scope,
            Names(product, env_name).stack(self.component),
            description=f"mlgate {product}: {description}",
            env=cdk.Environment(account=target.account, region=target.region),
            termination_protection=env_name == "prod",
            synthesizer=cdk.DefaultStackSynthesizer(
                generate_bootstrap_version_rule=not self.updated_by_hooks
            ),
        )
        self.manifest = manifest
        self.target = target
        """The manifest's account and region for this stack. CDK's `self.account` and
        `self.region` are the same strings (a concrete environment), but each read of those is
        a round trip to jsii's node: read these instead."""
        self.env_name = env_name
        self.product = product
        self.names = Names(product, env_name)
        """Every physical name of this stack's product and environment."""
        tags = cdk.Tags.of(self)  # each Tags.of is a call to node
        for key, value in {
            "mlgate:product": product,
            "mlgate:component": self.component,
            "mlgate:environment": env_name or "shared",
            "mlgate:owner": manifest.contact(manifest.product.owners.product_manager).email,
        }.items():
            tags.add(key, value)

    def bucket_name(self, purpose: str) -> str:
        """Globally unique and predictable: product, purpose, account, region."""
        return self.names.bucket(purpose, self.target.account, self.target.region)

    def bucket_arn(self, purpose: str) -> str:
        return f"arn:aws:s3:::{self.bucket_name(purpose)}"

    def name(self, *parts: str, max_length: int = 63) -> str:
        """A physical name namespaced by product (and environment, for per-env stacks)."""
        return self.names.resource(*parts, max_length=max_length)

    def alarm_factory(self, on_call: sns.ITopic) -> AlarmFactory:
        """The factory of this stack's alarms, paging `on_call`: its environment's, or for a
        product-wide stack the home environment's (`naming.home_env`)."""
        manifest = self.manifest
        return AlarmFactory(
            names=self.names if self.env_name else Names.home(manifest),
            runbook=manifest.product.runbook_url,
            on_call=on_call,
            on_call_owner=manifest.contact(manifest.product.owners.on_call),
        )
