"""One place computes every physical name of a product: `Names`.

Every name carries the product and, where a resource exists per environment, the environment,
so several products and both environments deploy side by side without collisions. The stacks,
the hooks' environment variables, the cross-account trust (which names roles of the other
account before they exist) and the rehearsal all ask a `Names`; nothing else builds a name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlgate.manifest import Manifest

PREFIX = "mlgate"
EnvName = Literal["staging", "prod"]
"""An environment's name, as the manifest's (mlgate.manifest.EnvName): the constructs take it
from here, and import nothing from the manifest."""
ENVIRONMENTS: tuple[EnvName, ...] = ("staging", "prod")
# The parts of an alarm's name (Names.alarm).
ALARM_TIERS = ("business", "model", "system")
ALARM_SEVERITIES = ("critical", "warning", "scaling")
"""critical pages on-call, warning mails the owner; scaling acts on autoscaling only (an async
endpoint's wake from zero) and pages nobody."""
ALARM_WHAT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
ALARM_NAME = re.compile(
    rf"{PREFIX}/(?P<product>[a-z0-9-]+)/(?P<env>{'|'.join(ENVIRONMENTS)})/"
    rf"(?P<tier>{'|'.join(ALARM_TIERS)})/(?P<what>{ALARM_WHAT.pattern})/"
    rf"(?P<severity>{'|'.join(ALARM_SEVERITIES)})"
)
"""What every alarm name matches (tests/test_alarms.py checks every synthesized alarm)."""


CURATED_PREFIX = "curated/"
"""Where the ETL writes the curated table in the product's curated bucket."""


def pascal(slug: str) -> str:
    """customer-churn -> CustomerChurn (construct ids and CodePipeline stage names)."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", slug) if part)


def _cut(name: str, max_length: int) -> str:
    """A name cut to a service's length limit keeps a stable suffix derived from the whole
    name, so two long names that share a prefix never collide."""
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class Names:
    """The physical names of one product, product-wide (`env` None: the home account's
    stacks) or of one environment. Length limits are the services' own, cited per method."""

    product: str
    env: EnvName | None = None

    @classmethod
    def of(cls, manifest: Manifest, env: EnvName | None = None) -> Names:
        return cls(manifest.product.name, env)

    @classmethod
    def home(cls, manifest: Manifest) -> Names:
        """The names of a product-wide resource's alarms: those of `home_env`."""
        return cls(manifest.product.name, home_env(manifest))

    def at(self, env: EnvName | None) -> Names:
        """The same product's names in another environment (None: product-wide)."""
        return replace(self, env=env)

    def _in(self, env: EnvName | None) -> EnvName:
        chosen = env or self.env
        if chosen is None:
            raise ValueError(f"a per-environment name of '{self.product}' needs an environment")
        return chosen

    # --- generic -------------------------------------------------------------------------

    def resource(self, *parts: str, max_length: int = 63) -> str:
        """mlgate-<product>[-<env>]-<parts>, lowercase, cut to the service's limit."""
        env = (self.env,) if self.env else ()
        return _cut("-".join([PREFIX, self.product, *env, *parts]).lower(), max_length)

    def stack(self, component: str) -> str:
        """mlgate-<product>[-<env>]-<component>; CloudFormation allows 128 characters."""
        return "-".join([PREFIX, self.product, *([self.env] if self.env else []), component])

    def bucket(self, purpose: str, account: str, region: str) -> str:
        """Globally unique and predictable: product, purpose, account, region."""
        return self.resource(purpose, account, region)

    def released_prefix(self, version: int | str | None = None) -> str:
        """Where the release hook copies an approved version's artifacts in the home artifact
        bucket (released/<product>/<version>/: model.tar.gz, baseline/...): the one prefix
        another environment's roles may read (issue 29: prod reads no training run)."""
        base = f"released/{self.product}"
        return base if version is None else f"{base}/{version}"

    def key_alias(self) -> str:
        return "/".join(["alias/mlgate", self.product, *([self.env] if self.env else [])])

    # --- product-wide resources of the home account ----------------------------------------

    def model_package_group(self) -> str:
        """SageMaker model package group names allow 63 characters."""
        return _cut(f"{PREFIX}-{self.product}", 63)

    def training_pipeline(self) -> str:
        """SageMaker pipeline names allow 256 characters."""
        return _cut(f"{PREFIX}-{self.product}-training", 256)

    def release_pipeline(self) -> str:
        return _cut(f"{PREFIX}-{self.product}-release", 63)

    def etl_job(self) -> str:
        """Glue job names allow 255 characters."""
        return _cut(f"{PREFIX}-{self.product}-curate", 255)

    def quality_job(self) -> str:
        return _cut(f"{PREFIX}-{self.product}-quality", 255)

    def gate_stage(self, gate: str) -> str:
        """The CodePipeline stage of a gate."""
        return pascal(gate)

    def gate_topic(self, gate: str) -> str:
        """The SNS topic CodePipeline posts a manual gate's approval request to."""
        return self.resource("gate", gate)

    def brief_topic(self, gate: str) -> str:
        """The SNS topic that emails a gate's evidence brief to its approvers."""
        return self.resource("brief", gate)

    def audit_table(self) -> str:
        return self.resource("audit")

    def rule(self, what: str) -> str:
        """EventBridge rule names allow 64 characters."""
        return self.resource(what)

    def secret(self, what: str) -> str:
        """mlgate/<product>/<what>: the hooks' credentials issued outside AWS (Slack)."""
        return f"{PREFIX}/{self.product}/{what}"

    # --- per-environment resources ---------------------------------------------------------

    def serving_stack(self, env: EnvName | None = None) -> str:
        return self.at(self._in(env)).stack("serving")

    def endpoint(self, env: EnvName | None = None) -> str:
        """SageMaker endpoint names allow 63 characters."""
        return self.at(self._in(env)).resource(max_length=63)

    def monitoring_schedule(self, kind: str, env: EnvName | None = None) -> str:
        """kind: data-quality or model-quality; schedule names allow 63 characters."""
        return self.at(self._in(env)).resource(kind)

    def monitoring_stack(self, env: EnvName | None = None) -> str:
        return self.at(self._in(env)).stack("monitoring")

    def monitoring_pipeline(self, env: EnvName | None = None) -> str:
        """The Evidently monitor's SageMaker pipeline; pipeline names allow 256 characters."""
        return self.at(self._in(env)).resource("monitoring", max_length=256)

    def monitoring_namespace(self) -> str:
        """The CloudWatch namespace of the product's monitoring metrics."""
        return f"{PREFIX}/{self.product}"

    def live_release_parameter(self, what: str, env: EnvName | None = None) -> str:
        """SSM parameter the Serving stack keeps at the live version's `what` (model-package,
        baseline-statistics, baseline-constraints)."""
        return f"/{PREFIX}/{self.product}/{self._in(env)}/live-{what}"

    def monitoring_reports(self, evidently: bool, env: EnvName | None = None) -> str:
        """Where an environment's monitoring writes its reports inside its artifact bucket: one
        folder per run (Evidently) or Model Monitor's own layout under data-quality."""
        return f"monitoring/{self._in(env)}/{'evidently' if evidently else 'data-quality'}"

    def alarm(self, tier: str, what: str, severity: str, env: EnvName | None = None) -> str:
        """mlgate/<product>/<env>/<tier>/<what>/<severity>, the one name every alarm has
        (made by mlgate/infra/constructs/alarms.py's AlarmFactory):

        - env: the environment whose account and dashboard hold the alarm. A product-wide
          resource of the home account (the release pipeline's hooks and gates, the training
          starter, the ETL's rules) has none of its own: its alarms belong to the home
          environment (`home_env`), prod when prod shares the home account, else staging;
        - tier: business, model or system (the dashboard's metric tiers);
        - what: lowercase words joined by hyphens, never underscores (a hook's alarms are
          hook-<hook name, hyphenated>-<errors|failed>);
        - severity: critical (pages on-call), warning (mails the metric's owner) or scaling
          (its one action is a scaling policy: pages nobody).

        A part may be `*`, for an IAM resource pattern of alarm names."""
        env = self._in(env)
        for label, part, allowed in (
            ("env", env, ENVIRONMENTS),
            ("tier", tier, ALARM_TIERS),
            ("severity", severity, ALARM_SEVERITIES),
        ):
            if part not in (*allowed, "*"):
                raise ValueError(f"alarm {label} '{part}' is none of {', '.join(allowed)}")
        if what != "*" and not ALARM_WHAT.fullmatch(what):
            raise ValueError(
                f"alarm part '{what}' is not lowercase words joined by hyphens (a-z, 0-9, -)"
            )
        return f"{PREFIX}/{self.product}/{env}/{tier}/{what}/{severity}"

    def dashboard(self, env: EnvName | None = None) -> str:
        return f"{PREFIX}-{self.product}-{self._in(env)}"

    def dashboard_url(self, region: str, env: EnvName | None = None) -> str:
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={self.dashboard(env)}"
        )

    # --- IAM roles that another account trusts by name (mlgate/infra/accounts.py) ---------------
    # IAM role names allow 64 characters.

    def _role(self, *parts: str) -> str:
        return _cut("-".join([PREFIX, self.product, *parts]).lower(), 64)

    def deployer_role(self) -> str:
        """Home: the deployer hook, which updates Serving stacks and assumes deploy roles."""
        return self._role("deployer")

    def verifier_role(self) -> str:
        """Home: the deploy verifier hook, which assumes verify roles."""
        return self._role("verifier")

    def rollback_role(self) -> str:
        """Home: `python -m mlgate rollback` runs as it (mlgate/cli/rollback.py): it updates a
        Serving stack and checks its endpoint as the deployer and the verifier do, and assumes
        their roles in another account."""
        return self._role("rollback")

    def retrain_role(self, env: EnvName | None = None) -> str:
        """Home: assumed by a remote environment's drift responder to start training."""
        return self._role(self._in(env), "retrain")

    def serving_cfn_role(self, env: EnvName | None = None) -> str:
        """Environment: the CloudFormation service role the deployer hands the Serving stack's
        parameter update (UpdateStack's RoleARN), holding only what that update needs."""
        return self._role(self._in(env), "serving-cfn")

    def deploy_role(self, env: EnvName | None = None) -> str:
        """Environment: assumed by the home deployer to update the Serving stack."""
        return self._role(self._in(env), "deploy")

    def verify_role(self, env: EnvName | None = None) -> str:
        """Environment: assumed by the home verifier to check the endpoint."""
        return self._role(self._in(env), "verify")

    def model_role(self, env: EnvName | None = None) -> str:
        """Environment: hosts the model, reads the version's artifacts from home."""
        return self._role(self._in(env), "model")

    def monitor_role(self, env: EnvName | None = None) -> str:
        """Environment: monitoring jobs, read the version's baseline from home."""
        return self._role(self._in(env), "monitor")

    def drift_role(self, env: EnvName | None = None) -> str:
        """Environment: the drift responder, assumes the home retrain role."""
        return self._role(self._in(env), "drift")


def home_env(manifest: Manifest) -> EnvName:
    """The environment a product-wide resource's alarm belongs to, and whose dashboard shows
    it: prod when prod shares the home account (staging's), otherwise staging. Either way the
    environment in an alarm's name is one whose account holds the alarm."""
    return "staging" if manifest.is_remote("prod") else "prod"


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"
