"""`python -m mlgate preflight PATH`: what the manifests' AWS accounts must hold before the first
`cdk deploy`, read and never changed.

Every AWS call here reads (Get*, List*, Describe*, BatchGet*), besides sts:AssumeRole into a
prod account's CDK lookup role, which changes nothing either. Each check prints one line:
`PASS <check> [<where>]: ...`, `WARN ...` or `FAIL <check> [<where>]: <what is wrong>. Fix:
<how>`; the command exits 0 only when no check failed. Missing or foreign credentials give one
line and exit 2, before any check.

The accounts: the caller's credentials are the home account's (staging's, where the
product-wide stacks live: `mlgate/infra/accounts.py`). A prod account of its own is read through its
CDK lookup role (`cdk-hnb659fds-lookup-role-<prod>-<region>`, AWS's ReadOnlyAccess, trusted by
home once prod is bootstrapped with `--trust`), or through a profile named with
`--account-profile PROD=PROFILE`.

Quotas are per account and region: the plans of every product deployed there add up.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlgate.infra.ml.images import image_uris, monitoring_image
from mlgate.infra.naming import Names, role_arn
from mlgate.manifest import ENV_NAMES, EnvName, Manifest, MonitoringEngine
from mlgate.manifest.serving import ServingMode

# --- what the templates and the hooks need --------------------------------------------------

QUALIFIER = "hnb659fds"
BOOTSTRAP_PARAMETER = f"/cdk-bootstrap/{QUALIFIER}/version"
MIN_BOOTSTRAP_VERSION = 6
"""What aws-cdk-lib 2.275's templates require when cdk.out holds none of a product's: each
synthesized template's Rules.CheckBootstrapVersion refuses versions 1 to 5 ("CDK bootstrap
stack version 6 required"), and cdk.out/manifest.json says requiresBootstrapStackVersion 6."""

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
EXEC_POLICY = "mlgate-cfn-exec"
"""The customer managed policy preflight names for the CloudFormation execution role instead
of AdministratorAccess (docs/platform-engineer.md, "Prod in its own account")."""
EXEC_BOUNDARY = "mlgate-cfn-boundary"
"""The permissions boundary `cdk bootstrap --custom-permissions-boundary` puts on the roles
the execution role creates (docs/platform-engineer.md, "Prod in its own account")."""
CFN_TO_IAM = {
    "ApplicationAutoScaling": "application-autoscaling",
    "CloudWatch": "cloudwatch",
    "CodePipeline": "codepipeline",
    "DynamoDB": "dynamodb",
    "Events": "events",
    "Glue": "glue",
    "IAM": "iam",
    "KMS": "kms",
    "Lambda": "lambda",
    "Logs": "logs",
    "S3": "s3",
    "SNS": "sns",
    "SQS": "sqs",
    "SSM": "ssm",
    "SageMaker": "sagemaker",
    "SecretsManager": "secretsmanager",
}
"""CloudFormation namespaces of the resources mlgate's stacks create, as IAM service prefixes
(the services the example products' templates create; read from cdk.out when it holds them)."""

# PutFunctionConcurrency leaves at least 100 executions unreserved for the functions without a
# reservation (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
# the account's limit is Service Quotas' Lambda "Concurrent executions".
LAMBDA_UNRESERVED_FLOOR = 100
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"
HOME_HOOKS = (
    "release",
    "deployer",
    "deploy_verifier",
    "quality_gate",
    "gate_notifier",
    "gate_callback",
    "pipeline_starter",
    "model_card",
    "rollback",
)
"""Hooks of the home account's stacks (delivery, training); each monitored environment's
serving stack adds a drift_responder in the environment's account."""
ENV_HOOKS = ("drift_responder",)
BATCH_HOOKS = ("batch_run",)
"""Each batch environment's serving stack adds its batch_run hook (mlgate/infra/constructs/
batch.py) in place of an endpoint."""

# Service Quotas: Glue's by code (the quotas of https://docs.aws.amazon.com/general/latest/gr/
# glue.html), SageMaker's by name, one per instance type and use ("ml.m5.large for endpoint
# usage", "ml.m5.xlarge for transform job usage": Batch Transform's instances;
# https://docs.aws.amazon.com/general/latest/gr/sagemaker.html).
GLUE_DPUS = ("L-08F3B322", "Max task DPUs per account")
GLUE_RUNS = ("L-5E4153CA", "Max concurrent job runs per account")
G1X_DPUS = 1  # a G.1X worker is 1 DPU; the ETL and quality jobs run on G.1X
MONITOR_INSTANCE = "ml.m5.large"
"""The monitoring job's instance: mlgate/infra/constructs/evidently.py's INSTANCE and
model_monitor.py's MONITOR_INSTANCE (tests/test_preflight.py keeps them equal)."""
QUOTA_USES = {
    "endpoint": "endpoint usage",
    "training": "training job usage",
    "processing": "processing job usage",
    "transform": "transform job usage",
}

# A batch environment's runs (mlgate/runtime/hooks/batch_run): each prepares its input with
# one processing job on the environment's instance type, then scores it with a transform job
# on instance_count of them; a release's sample run in staging, when prod scores in batch too,
# scores it with prod's model as well, a second transform job of staging's instances beside
# the first. A scheduled run (or one after the ETL) and a release's sample run may overlap:
# preflight counts both at once.
BATCH_RUNS_AT_ONCE = 2

# During a blue/green update SageMaker provisions a whole new (green) fleet beside the old
# (blue) one and terminates blue only after the final bake, in every traffic-shifting mode
# (all at once, canary, linear):
# https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html and
# https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html.
# So an endpoint needs twice its largest fleet (autoscaling's maximum) in instance quota.
BLUE_GREEN_FACTOR = 2

# A serverless endpoint uses no instance quota: its MaxConcurrency is allocated from the
# account's total serverless concurrency in the region, shared by every serverless endpoint
# there ("Serverless Inference quotas" of
# https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html; Service Quotas
# names it as below, code L-96300102). Blue/green applies to serverless endpoints too (only
# rolling updates exclude them: https://docs.aws.amazon.com/sagemaker/latest/dg/
# deployment-guardrails-exclusions.html); AWS does not say whether the green variant's
# concurrency is allocated beside blue's, so preflight counts both, as for instances.
# Provisioned concurrency is at most MaxConcurrency, so it is inside that count; its own
# quota is not checked.
SERVERLESS_QUOTA = "Maximum total concurrency that can be allocated across all serverless endpoints"

# Model Monitor: "no longer open to new customers. Existing customers can continue to use the
# service as normal" (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-availability-change.html).
# AWS documents no read-only call that tells whether an account may create schedules, nor the
# error a closed account gets; preflight reads sagemaker:ListMonitoringSchedules: schedules
# there show an existing customer, a refusal fails, an empty list warns.
MODEL_MONITOR_PAGE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-availability-change.html"
)

# The manifest types BatchGetImage accepts (its documented valid values).
MEDIA_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+json",
]
IMAGE_URI = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+)|@(?P<digest>sha256:[0-9a-f]+))?$"
)

Status = Literal["PASS", "WARN", "FAIL"]
ClientHook = Callable[[str, str, str, Any], None]
"""Called with (account, region, service, client) for every client preflight makes: the test
double and the tests stub the calls moto lacks through it."""


@dataclass(frozen=True)
class Result:
    status: Status
    check: str
    where: str
    message: str
    fix: str = ""

    @property
    def line(self) -> str:
        text = f"{self.status} {self.check} [{self.where}]: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.status != "PASS" and self.fix else text


class CredentialsProblem(Exception):
    """No credentials, rejected credentials or credentials of another account: one line."""


# --- the plan: what the manifests put in each account and region ----------------------------


@dataclass
class Plan:
    account: str
    region: str
    endpoint: Counter[str] = field(default_factory=Counter)
    endpoint_uses: dict[str, list[str]] = field(default_factory=dict)
    serverless_concurrency: int = 0
    """Serverless concurrency the plan allocates here, blue/green's two variants counted."""
    serverless_uses: list[str] = field(default_factory=list)
    transform: Counter[str] = field(default_factory=Counter)
    """Batch Transform instances, a scheduled and a sample run at once (BATCH_RUNS_AT_ONCE)."""
    transform_uses: dict[str, list[str]] = field(default_factory=dict)
    training: Counter[str] = field(default_factory=Counter)
    processing: Counter[str] = field(default_factory=Counter)
    glue_dpus: int = 0
    glue_runs: int = 0
    hooks: int = 0
    reservations: list[tuple[Manifest, int]] = field(default_factory=list)
    homes: list[Manifest] = field(default_factory=list)
    model_monitor: list[str] = field(default_factory=list)
    remote: bool = False
    trusted_home: str = ""
    products: set[str] = field(default_factory=set)
    """Every product with a stack here."""

    @property
    def where(self) -> str:
        return f"{self.account} {self.region}"


def home(manifest: Manifest) -> tuple[str, str]:
    """The home account and region (mlgate/infra/accounts.py's home_account: staging's)."""
    staging = manifest.environments.staging
    return staging.account, staging.region


def largest_fleet(manifest: Manifest, env: EnvName) -> int:
    """Instances of a real-time or async endpoint at autoscaling's maximum (an async endpoint
    scales on its backlog between 0 or min_instances and the same maximum)."""
    serving = manifest.env_serving(env)
    scaling = serving.autoscaling
    return max(serving.instance_count, scaling.max_instances if scaling.enabled else 0)


def monitoring_jobs(manifest: Manifest) -> int:
    """Processing jobs one environment's monitoring runs at once: Evidently's one job, or Model
    Monitor's data quality and, with ground truth, model quality."""
    monitoring = manifest.monitoring
    if monitoring.engine is MonitoringEngine.MODEL_MONITOR:
        return 2 if monitoring.ground_truth_s3_uri else 1
    return 1


def plan(manifests: Sequence[Manifest]) -> dict[tuple[str, str], Plan]:
    """Every account and region the manifests deploy to, home first, with what lands there."""
    plans: dict[tuple[str, str], Plan] = {}

    def at(account: str, region: str) -> Plan:
        return plans.setdefault((account, region), Plan(account, region))

    for m in manifests:
        here = at(*home(m))
        here.homes.append(m)
        here.products.add(m.product.name)
        model = m.model
        here.training[model.training_instance_type] += model.training_instance_count
        here.processing[model.processing_instance_type] += 1
        # The ETL job at the manifest's upper bound of auto-scaling (etl_max_workers), then
        # the 2-worker quality job: the workflow runs one after the other.
        etl = max(m.data.etl_workers, m.data.etl_max_workers)
        here.glue_dpus += max(etl, 2) * G1X_DPUS
        here.glue_runs += 1  # the workflow runs one job at a time
        here.hooks += len(HOME_HOOKS)
        reserved = m.delivery.callback_reserved_concurrency
        if reserved:
            here.reservations.append((m, reserved))
    for m in manifests:
        for env in ENV_NAMES:
            target = m.environment(env)
            there = at(target.account, target.region)
            there.products.add(m.product.name)
            if m.is_remote(env):
                there.remote = True
                there.trusted_home = home(m)[0]
            serving = m.env_serving(env)
            if serving.mode is ServingMode.SERVERLESS:
                assert serving.serverless is not None  # the manifest requires it
                concurrency = serving.serverless.max_concurrency
                there.serverless_concurrency += BLUE_GREEN_FACTOR * concurrency
                there.serverless_uses.append(f"{m.product.name} {env} up to {concurrency}")
                # A serverless endpoint captures no traffic: no monitoring job, no drift
                # responder (Manifest.monitored).
                continue
            if m.is_batch(env):
                # No endpoint: the runs' jobs, started by the environment's batch_run hook.
                sides = 2 if env == "staging" and m.is_batch("prod") else 1
                scoring = serving.instance_count * (1 + sides)
                there.transform[serving.instance_type] += scoring
                there.transform_uses.setdefault(serving.instance_type, []).append(
                    f"{m.product.name} {env} up to {scoring}"
                )
                there.processing[serving.instance_type] += BATCH_RUNS_AT_ONCE
                there.hooks += len(BATCH_HOOKS)
            else:
                fleet = largest_fleet(m, env)
                there.endpoint[serving.instance_type] += BLUE_GREEN_FACTOR * fleet
                there.endpoint_uses.setdefault(serving.instance_type, []).append(
                    f"{m.product.name} {env} up to {fleet}"
                )
            there.processing[MONITOR_INSTANCE] += monitoring_jobs(m)
            there.hooks += len(ENV_HOOKS)
            if m.monitoring.engine is MonitoringEngine.MODEL_MONITOR:
                there.model_monitor.append(f"{m.product.name} {env}")
    return plans


# --- what cdk.out says ----------------------------------------------------------------------


def _template(path: Path) -> dict[str, Any]:
    """A synthesized JSON file; one unreadable counts as absent."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def required_bootstrap(cdk_out: Path, products: Sequence[str]) -> tuple[int, str]:
    """The bootstrap version the products' synthesized templates require, and where that comes
    from: the highest CheckBootstrapVersion rule and requiresBootstrapStackVersion in cdk.out,
    else aws-cdk-lib's minimum."""
    found: list[int] = []
    for product in products:
        for path in sorted(cdk_out.glob(f"mlgate-{product}-*.template.json")):
            rule = _template(path).get("Rules", {}).get("CheckBootstrapVersion")
            refused = re.findall(r'"(\d+)"', json.dumps(rule)) if rule else []
            if refused:
                found.append(max(int(v) for v in refused) + 1)
    manifest = cdk_out / "manifest.json"
    if found:
        for name, artifact in _template(manifest).get("artifacts", {}).items():
            wanted = artifact.get("properties", {}).get("requiresBootstrapStackVersion")
            if isinstance(wanted, int) and any(name.startswith(f"mlgate-{p}-") for p in products):
                found.append(wanted)
    if found:
        return max(found), f"the synthesized templates in {cdk_out}/ require"
    return MIN_BOOTSTRAP_VERSION, (
        f"aws-cdk-lib 2.275's templates require ({cdk_out}/ holds none of these products')"
    )


def stack_services(cdk_out: Path, products: Sequence[str]) -> list[str]:
    """IAM prefixes of the services whose resources the products' stacks create."""
    found: set[str] = set()
    for product in products:
        for path in cdk_out.glob(f"mlgate-{product}-*.template.json"):
            for resource in _template(path).get("Resources", {}).values():
                namespace = str(resource.get("Type", "")).split("::")
                if len(namespace) > 1 and namespace[0] == "AWS" and namespace[1] in CFN_TO_IAM:
                    found.add(CFN_TO_IAM[namespace[1]])
    return sorted(found or CFN_TO_IAM.values())


# --- sessions and clients -------------------------------------------------------------------


class Account:
    """One account and region: its session and the clients made from it, each made once."""

    _lock = threading.Lock()  # boto3 sessions are not safe to make clients from in threads

    def __init__(self, account: str, region: str, session: Any, hook: ClientHook | None) -> None:
        self.account = account
        self.region = region
        self.session = session
        self.hook = hook
        self._clients: dict[str, Any] = {}
        self.deployed: dict[str, bool] = {}

    def client(self, service: str) -> Any:
        return self.client_in(service, self.region)

    def client_in(self, service: str, region: str) -> Any:
        """A client of this account in `region` (the Support API answers in us-east-1 only)."""
        key = service if region == self.region else f"{service}@{region}"
        with self._lock:
            if key not in self._clients:
                from botocore.config import Config

                config = Config(
                    connect_timeout=5,
                    read_timeout=20,
                    retries={"max_attempts": 4, "mode": "standard"},
                )
                made = self.session.client(service, region_name=region, config=config)
                if self.hook is not None:
                    self.hook(self.account, region, service, made)
                self._clients[key] = made
            return self._clients[key]


def error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(err).__name__))


def error_text(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    message = response.get("Error", {}).get("Message") or str(err)
    return f"{error_code(err)}: {message}".replace("\n", " ")


def identify(
    session: Any, region: str, account: str | None, hook: ClientHook | None
) -> dict[str, Any]:
    """sts:GetCallerIdentity, or CredentialsProblem in one line."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    try:
        credentials = session.get_credentials()
    except BotoCoreError as err:  # a broken profile, an expired SSO token, ...
        raise CredentialsProblem(f"no usable AWS credentials: {err}") from None
    if credentials is None:
        raise CredentialsProblem(
            "no AWS credentials: set AWS_PROFILE (then `aws sso login`) or the AWS_* variables "
            "for the home account, or run the offline double: make preflight PREFLIGHT=double"
        )
    try:
        sts = Account(account or "caller", region, session, hook).client("sts")
        found: dict[str, Any] = sts.get_caller_identity()
    except NoCredentialsError:
        raise CredentialsProblem(
            "no AWS credentials: set AWS_PROFILE or the AWS_* variables"
        ) from None
    except ClientError as err:
        raise CredentialsProblem(
            f"AWS refused these credentials ({error_text(err)}): renew them "
            "(`aws sso login`, or new keys) and run again"
        ) from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as err:
        raise CredentialsProblem(f"could not reach AWS STS in {region}: {err}") from None
    except BotoCoreError as err:
        raise CredentialsProblem(f"no usable AWS credentials: {err}") from None
    return found


@dataclass
class Sessions:
    """The caller's session (home) and how each other account is read."""

    caller: dict[str, Any]
    by_account: dict[str, Any]
    refused: dict[str, str]


def open_sessions(
    manifests: Sequence[Manifest],
    plans: dict[tuple[str, str], Plan],
    *,
    session: Any,
    profiles: dict[str, str],
    hook: ClientHook | None,
) -> Sessions:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    homes = sorted({home(m)[0] for m in manifests})
    region = home(manifests[0])[1]
    caller = identify(session, region, None, hook)
    if caller["Account"] not in homes or len(homes) > 1:
        wanted = " and ".join(
            f"{home(m)[0]} ({m.product.name})" for m in manifests if home(m)[0] != caller["Account"]
        )
        raise CredentialsProblem(
            f"these credentials are for account {caller['Account']} ({caller['Arn']}), but the "
            f"home account is {wanted}: use the home account's credentials (AWS_PROFILE), "
            "or check the products of one home account at a time"
        )
    by_account: dict[str, Any] = {caller["Account"]: session}
    refused: dict[str, str] = {}
    for (account, region), _ in plans.items():
        if account in by_account or account in refused:
            continue
        if account in profiles:
            try:
                other = boto3.Session(profile_name=profiles[account])
            except ProfileNotFound as err:
                raise CredentialsProblem(f"--account-profile {account}: {err}") from None
            found = identify(other, region, account, hook)
            if found["Account"] != account:
                raise CredentialsProblem(
                    f"profile {profiles[account]} is for account {found['Account']}, not "
                    f"{account}: name the profile of {account}"
                )
            by_account[account] = other
            continue
        lookup = role_arn(account, f"cdk-{QUALIFIER}-lookup-role-{account}-{region}")
        try:
            sts = Account(caller["Account"], region, session, hook).client("sts")
            credentials = sts.assume_role(
                RoleArn=lookup, RoleSessionName="mlgate-preflight", DurationSeconds=900
            )["Credentials"]
        except (ClientError, BotoCoreError) as err:
            refused[account] = f"could not assume {lookup} ({error_text(err)})"
            continue
        by_account[account] = session_like(
            session,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
    return Sessions(caller=caller, by_account=by_account, refused=refused)


def session_like(base: Any, **credentials: str) -> Any:
    """A boto3 session with other credentials that shares `base`'s loaded service models: a
    new session would read every client's JSON models again (about 50 ms a client)."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    core.register_component("data_loader", base._session.get_component("data_loader"))
    return boto3.Session(botocore_session=core, **credentials)


# --- the checks -----------------------------------------------------------------------------


def needs(*actions: str) -> str:
    return "let the caller read it (" + ", ".join(actions) + ")"


def guarded(
    check: str, where: str, permissions: str, run: Callable[[], list[Result]]
) -> list[Result]:
    """A check's lines; an AWS error it did not expect is its one FAIL line, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return run()
    except ClientError as err:
        return [Result("FAIL", check, where, f"could not read: {error_text(err)}", permissions)]
    except BotoCoreError as err:
        return [Result("FAIL", check, where, f"could not reach AWS: {err}", "check the network")]
    except Exception as err:  # a bug of preflight's: one line still, never a traceback
        return [
            Result("FAIL", check, where, f"preflight could not run this check: {err!r}",
                   "report it with this line; the other checks are unaffected")
        ]  # fmt: skip


def bootstrap_fix(plan: Plan) -> str:
    """`cdk bootstrap` for the account; a prod account of its own trusts home, and CDK then
    wants the execution role's policies named."""
    command = f"npx cdk bootstrap aws://{plan.account}/{plan.region}"
    if plan.remote:
        command += (
            f" --trust {plan.trusted_home} --cloudformation-execution-policies "
            f"{exec_policy_arn(plan.account)} (a policy you create first, see cfn-exec-role)"
        )
    return command + " with the CLI package.json pins"


def exec_policy_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:policy/{EXEC_POLICY}"


def check_bootstrap(account: Account, plan: Plan, required: tuple[int, str]) -> list[Result]:
    ssm = account.client("ssm")
    version, source = required
    check = "cdk-bootstrap"
    fix = bootstrap_fix(plan)
    try:
        value = ssm.get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"not bootstrapped: no SSM parameter "
                f"{BOOTSTRAP_PARAMETER} (read with ssm:GetParameter)",
                fix,
            )
        ]
    if not str(value).isdigit() or int(value) < version:
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"bootstrap version {value}; {source} "
                f"{version} or later ({BOOTSTRAP_PARAMETER}, read with ssm:GetParameter)",
                f"bootstrap again: {fix}",
            )
        ]
    return [
        Result(
            "PASS",
            check,
            plan.where,
            f"bootstrap version {value} (SSM "
            f"{BOOTSTRAP_PARAMETER}, read with ssm:GetParameter); {source} {version}",
        )
    ]


def check_exec_role(account: Account, plan: Plan, services: list[str]) -> list[Result]:
    iam = account.client("iam")
    role = f"cdk-{QUALIFIER}-cfn-exec-role-{plan.account}-{plan.region}"
    check = "cfn-exec-role"
    try:
        attached = [
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
            for p in page["AttachedPolicies"]
        ]
    except iam.exceptions.NoSuchEntityException:
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"no role {role}: the CDK bootstrap is missing or incomplete",
                bootstrap_fix(plan),
            )
        ]
    if ADMIN_POLICY in attached:
        return [
            Result(
                "WARN",
                check,
                plan.where,
                f"{role} has AdministratorAccess attached: every stack deploys with full "
                "administrator rights, and whoever may pass that role to CloudFormation is "
                "an administrator",
                f"create a customer managed policy {EXEC_POLICY} allowing only "
                f"{', '.join(services)} (iam limited to role/mlgate-* and policy/mlgate-*) and "
                f"a permissions boundary {EXEC_BOUNDARY}, and bootstrap again with "
                f"--cloudformation-execution-policies {exec_policy_arn(plan.account)} "
                f"--custom-permissions-boundary {EXEC_BOUNDARY} "
                '(docs/platform-engineer.md, "Prod in its own account")',
            )
        ]
    names = ", ".join(a.rsplit("/", 1)[-1] for a in attached) or "none"
    return [Result("PASS", check, plan.where, f"{role} attaches {names}, not AdministratorAccess")]


def delivery_deployed(account: Account, manifest: Manifest) -> bool:
    """Whether the product's delivery stack (which holds the gate callback) exists already."""
    from botocore.exceptions import ClientError

    stack = Names.of(manifest).stack("delivery")
    if stack not in account.deployed:
        try:
            found = account.client("cloudformation").describe_stacks(StackName=stack)
        except ClientError as err:
            if error_code(err) != "ValidationError":  # "Stack with id ... does not exist"
                raise
            found = {}
        account.deployed[stack] = any(
            s["StackStatus"] != "DELETE_COMPLETE" for s in found.get("Stacks", [])
        )
    return account.deployed[stack]


def check_lambda(account: Account, plan: Plan) -> list[Result]:
    check = "lambda-concurrency"
    limits = account.client("lambda").get_account_settings()["AccountLimit"]
    limit = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    # A callback already deployed holds its reservation: it is out of `unreserved` already.
    pending = [(m, n) for m, n in plan.reservations if not delivery_deployed(account, m)]
    reserve = sum(n for _, n in plan.reservations)
    to_reserve = sum(n for _, n in pending)
    left = unreserved - to_reserve
    asks = ", ".join(f"{m.product.name} reserves {n}" for m, n in plan.reservations)
    quota = (
        f"Service Quotas Lambda 'Concurrent executions' ({LAMBDA_CONCURRENCY_QUOTA}) in "
        f"{plan.where}"
    )
    if reserve and limit < reserve + LAMBDA_UNRESERVED_FLOOR:
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"the account's Lambda limit is {limit} concurrent executions: the gate "
                f"callback's reservation ({asks}, delivery.callback_reserved_concurrency) needs "
                f"at least {reserve + LAMBDA_UNRESERVED_FLOOR}, as Lambda keeps "
                f"{LAMBDA_UNRESERVED_FLOOR} unreserved",
                f"request {quota} of at least {reserve + LAMBDA_UNRESERVED_FLOOR}, or drop "
                "delivery.callback_reserved_concurrency from the manifest until it is granted",
            )
        ]
    if reserve and left < LAMBDA_UNRESERVED_FLOOR:
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"{unreserved} of the account's {limit} concurrent executions are unreserved: "
                f"reserving {to_reserve} more ({asks}) would leave {left}, and Lambda keeps "
                f"{LAMBDA_UNRESERVED_FLOOR} unreserved",
                "free reserved concurrency of other functions (aws lambda "
                f"delete-function-concurrency), or request a higher {quota}",
            )
        ]
    if limit < plan.hooks or left < plan.hooks:
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"{left} unreserved concurrent executions (limit {limit}) for {plan.hooks} hooks "
                "that can run at once",
                f"request a higher {quota}",
            )
        ]
    reserved = (
        f"{to_reserve} reserved for the gate callback ({asks}) leave {left}"
        if reserve
        else f"no reservation asked: {left} unreserved"
    )
    return [
        Result(
            "PASS",
            check,
            plan.where,
            f"limit {limit}, {unreserved} unreserved: {reserved} for {plan.hooks} hook(s)",
        )
    ]


@dataclass
class Quotas:
    """An account's Service Quotas, read once: name -> (value, code), applied values first."""

    account: Account
    _sagemaker: dict[str, tuple[float, str]] | None = None

    def sagemaker(self, wanted: set[str]) -> dict[str, tuple[float, str]]:
        if self._sagemaker is None:
            client = self.account.client("service-quotas")
            found: dict[str, tuple[float, str]] = {}
            for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
                missing = wanted - set(found)
                if not missing:
                    break
                token: str | None = None
                while True:
                    kwargs: dict[str, Any] = {"ServiceCode": "sagemaker", "MaxResults": 100}
                    if token:
                        kwargs["NextToken"] = token
                    page = getattr(client, operation)(**kwargs)
                    for quota in page.get("Quotas", []):
                        name = quota.get("QuotaName", "")
                        if name in missing and name not in found:
                            found[name] = (float(quota["Value"]), quota.get("QuotaCode", ""))
                    token = page.get("NextToken")
                    if not token or wanted <= set(found):
                        break
            self._sagemaker = found
        return self._sagemaker

    def glue(self, code: str) -> float:
        client = self.account.client("service-quotas")
        try:
            quota = client.get_service_quota(ServiceCode="glue", QuotaCode=code)["Quota"]
        except client.exceptions.NoSuchResourceException:
            quota = client.get_aws_default_service_quota(ServiceCode="glue", QuotaCode=code)[
                "Quota"
            ]
        return float(quota["Value"])


def quota_name(instance_type: str, use: str) -> str:
    return f"{instance_type} for {QUOTA_USES[use]}"


def wanted_quotas(plan: Plan) -> set[str]:
    wanted = {
        quota_name(t, use)
        for use, counts in (
            ("endpoint", plan.endpoint),
            ("transform", plan.transform),
            ("training", plan.training),
            ("processing", plan.processing),
        )
        for t in counts
    }
    return wanted | ({SERVERLESS_QUOTA} if plan.serverless_concurrency else set())


def check_sagemaker_quotas(quotas: Quotas, plan: Plan) -> list[Result]:
    table = quotas.sagemaker(wanted_quotas(plan))
    results = []
    for use, counts in (
        ("endpoint", plan.endpoint),
        ("transform", plan.transform),
        ("training", plan.training),
        ("processing", plan.processing),
    ):
        if not counts:
            continue
        check = f"{use}-quota"
        short, fine, fixes = [], [], []
        for instance_type, need in sorted(counts.items()):
            name = quota_name(instance_type, use)
            why = ""
            if use == "endpoint":
                why = (
                    f" ({'; '.join(plan.endpoint_uses[instance_type])}, doubled while a "
                    "blue/green update runs both fleets)"
                )
            elif use == "transform":
                why = (
                    f" ({'; '.join(plan.transform_uses[instance_type])}: a scheduled run "
                    "beside a release's sample run, with its reference job in staging when "
                    "prod scores in batch too)"
                )
            if name not in table:
                short.append(
                    f"Service Quotas lists no '{name}' for SageMaker in {plan.region}: "
                    "the instance type is not offered there"
                )
                fixes.append(f"choose another instance type than {instance_type}")
                continue
            value, code = table[name]
            if value < need:
                short.append(f"'{name}' is {value:g}, the plan needs {need}{why}")
                fixes.append(
                    f"request {need} for '{name}' (aws service-quotas "
                    f"request-service-quota-increase --service-code sagemaker --quota-code "
                    f"{code} --desired-value {need} --region {plan.region})"
                )
            else:
                fine.append(f"{instance_type} {need} of {value:g}{why}")
        if short:
            results.append(Result("FAIL", check, plan.where, "; ".join(short), "; ".join(fixes)))
        else:
            shared = " (the quota also counts the account's other jobs and endpoints)"
            results.append(Result("PASS", check, plan.where, "; ".join(fine) + shared))
    if plan.serverless_concurrency:
        results.append(serverless_quota(table, plan))
    return results


def serverless_quota(table: dict[str, tuple[float, str]], plan: Plan) -> Result:
    """The serverless endpoints' MaxConcurrency against the region's shared total."""
    check, need = "serverless-quota", plan.serverless_concurrency
    why = (
        f" ({'; '.join(plan.serverless_uses)}, doubled while a blue/green update runs both "
        "variants)"
    )
    if SERVERLESS_QUOTA not in table:
        return Result(
            "FAIL",
            check,
            plan.where,
            f"Service Quotas lists no '{SERVERLESS_QUOTA}' for SageMaker in {plan.region}: "
            "Serverless Inference is not offered there",
            "serve this environment in another mode (serving.<env>.mode: real-time or async)",
        )
    value, code = table[SERVERLESS_QUOTA]
    if value < need:
        return Result(
            "FAIL",
            check,
            plan.where,
            f"'{SERVERLESS_QUOTA}' is {value:g}, the plan needs {need}{why}",
            f"request {need} (aws service-quotas request-service-quota-increase --service-code "
            f"sagemaker --quota-code {code} --desired-value {need} --region {plan.region}), "
            "or lower serving.<env>.serverless.max_concurrency",
        )
    return Result(
        "PASS",
        check,
        plan.where,
        f"concurrency {need} of {value:g}{why} (shared with the account's other serverless "
        "endpoints)",
    )


def check_glue(quotas: Quotas, plan: Plan) -> list[Result]:
    check = "glue-quota"
    dpus = quotas.glue(GLUE_DPUS[0])
    runs = quotas.glue(GLUE_RUNS[0])
    short, fixes = [], []
    for (code, name), value, need in (
        (GLUE_DPUS, dpus, plan.glue_dpus),
        (GLUE_RUNS, runs, plan.glue_runs),
    ):
        if value < need:
            short.append(f"'{name}' is {value:g}, the ETL jobs need {need}")
            fixes.append(
                f"request {need} for Glue '{name}' (aws service-quotas "
                f"request-service-quota-increase --service-code glue --quota-code {code} "
                f"--desired-value {need} --region {plan.region})"
            )
    if short:
        return [Result("FAIL", check, plan.where, "; ".join(short), "; ".join(fixes))]
    return [
        Result(
            "PASS",
            check,
            plan.where,
            f"{plan.glue_dpus} DPUs of {dpus:g} (G.1X workers "
            f"at etl_max_workers), {plan.glue_runs} concurrent job run(s) of {runs:g}",
        )
    ]


def check_model_monitor(account: Account, plan: Plan) -> list[Result]:
    from botocore.exceptions import ClientError

    check = "model-monitor"
    who = ", ".join(plan.model_monitor)
    try:
        found = account.client("sagemaker").list_monitoring_schedules(MaxResults=10)
    except ClientError as err:
        denied = "not authorized" in error_text(err)
        return [
            Result(
                "FAIL",
                check,
                plan.where,
                f"SageMaker refused ListMonitoringSchedules ({error_text(err)}), which "
                f"monitoring.engine: model-monitor needs ({who})",
                needs("sagemaker:ListMonitoringSchedules")
                if denied
                else "set monitoring.engine: evidently (any account), or ask AWS Support to "
                f"confirm the account keeps Model Monitor ({MODEL_MONITOR_PAGE})",
            )
        ]
    schedules = found.get("MonitoringScheduleSummaries", [])
    if schedules:
        return [
            Result(
                "PASS",
                check,
                plan.where,
                f"the account already has Model Monitor "
                f"schedules ({len(schedules)}{'+' if found.get('NextToken') else ''}): an "
                f"existing customer, as {who} needs",
            )
        ]
    return [
        Result(
            "WARN",
            check,
            plan.where,
            f"no Model Monitor schedule in this account and region: nothing shows it is an "
            f"existing customer, and AWS closed Model Monitor to new ones ({MODEL_MONITOR_PAGE});"
            f" the monitoring stack of {who} may be refused",
            "set monitoring.engine: evidently (any account), or confirm with AWS Support that "
            "the account keeps Model Monitor",
        )
    ]


ADVISOR_PAGE = "https://docs.aws.amazon.com/awssupport/latest/user/cloudwatch-events-ta.html"


def check_support_plan(account: Account, plan: Plan) -> list[Result]:
    """Whether the account's support plan runs the Trusted Advisor checks mlgate routes: the
    Support API answers DescribeTrustedAdvisorChecks, in us-east-1 only, on Business,
    Enterprise On-Ramp and Enterprise Support, and SubscriptionRequiredException on Basic and
    Developer (https://docs.aws.amazon.com/awssupport/latest/APIReference/
    API_DescribeTrustedAdvisorChecks.html)."""
    from botocore.exceptions import ClientError

    from mlgate.infra.constructs.cost import ADVISOR_CHECKS, SUPPORT_PLANS

    check = "support-plan"
    try:
        found = account.client_in("support", "us-east-1").describe_trusted_advisor_checks(
            language="en"
        )
    except ClientError as err:
        if error_code(err) != "SubscriptionRequiredException":
            raise
        core = [c.name for c in ADVISOR_CHECKS if c.core]
        return [
            Result(
                "WARN",
                check,
                plan.where,
                f"the account's support plan (Basic or Developer) runs only Trusted Advisor's "
                f"core checks: of the {len(ADVISOR_CHECKS)} checks mlgate routes to on-call "
                f"and owners, only {', '.join(core)} will ever send an event ({ADVISOR_PAGE})",
                f"subscribe the account to {SUPPORT_PLANS}, or accept that the other checks "
                "stay silent (the evidence pack says so)",
            )
        ]
    names = {c.get("name") for c in found.get("checks", [])}
    absent = [c.name for c in ADVISOR_CHECKS if c.name not in names]
    return [
        Result(
            "PASS",
            check,
            plan.where,
            f"the support plan runs Trusted Advisor's checks; {len(ADVISOR_CHECKS) - len(absent)}"
            f" of the {len(ADVISOR_CHECKS)} mlgate routes are offered"
            + (f" (not offered: {', '.join(absent)})" if absent else ""),
        )
    ]


def trusts(document: Any, account: str) -> bool:
    """Whether a role's trust policy lets `account` (its root or its principals) assume it."""
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") != "Allow" or not {"sts:AssumeRole", "sts:*", "*"} & set(
            actions
        ):
            continue
        principal = statement.get("Principal", {})
        aws = principal.get("AWS", []) if isinstance(principal, dict) else principal
        for who in aws if isinstance(aws, list) else [aws]:
            if who in (account, f"arn:aws:iam::{account}:root") or str(who).startswith(
                f"arn:aws:iam::{account}:"
            ):
                return True
    return False


def role_exists(account: Account, name: str) -> dict[str, Any] | None:
    iam = account.client("iam")
    try:
        role: dict[str, Any] = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return role


def check_prod_trust(
    manifest: Manifest, accounts: dict[tuple[str, str], Account], refused: dict[str, str]
) -> list[Result]:
    home_account, region = home(manifest)
    prod = manifest.environments.prod.account
    check = "prod-trusts-home"
    where = f"{manifest.product.name} prod {prod}"
    fix = (
        f"bootstrap prod so home may deploy and read there: npx cdk bootstrap aws://{prod}/"
        f"{region} --trust {home_account} --cloudformation-execution-policies "
        f"{exec_policy_arn(prod)} (a policy you create first, see cfn-exec-role)"
    )
    if prod in refused:
        return [
            Result(
                "FAIL",
                check,
                where,
                f"prod could not be read from home: {refused[prod]}; its checks did not run",
                fix + f" (or name a profile of the prod account: --account-profile {prod}=PROFILE)",
            )
        ]
    account = accounts[(prod, region)]
    missing, foreign = [], []
    for kind in ("deploy", "file-publishing"):
        name = f"cdk-{QUALIFIER}-{kind}-role-{prod}-{region}"
        role = role_exists(account, name)
        if role is None:
            missing.append(name)
        elif not trusts(role["AssumeRolePolicyDocument"], home_account):
            foreign.append(name)
    if missing or foreign:
        what = "; ".join(
            [f"no role {n}" for n in missing]
            + [f"{n} does not trust home {home_account}" for n in foreign]
        )
        return [Result("FAIL", check, where, what, fix)]
    return [
        Result(
            "PASS",
            check,
            where,
            f"prod's CDK deploy and file-publishing roles trust "
            f"home {home_account} (cdk bootstrap --trust)",
        )
    ]


def check_named_trusts(
    manifest: Manifest, accounts: dict[tuple[str, str], Account]
) -> list[Result]:
    """The cross-account trusts mlgate makes by role name (mlgate/infra/accounts.py): where one side
    exists and the role it trusts does not, anyone who creates a role of that name inherits
    the trust."""
    home_account, region = home(manifest)
    prod = manifest.environments.prod.account
    names = Names.of(manifest)
    at = {
        "home": (home_account, accounts[(home_account, region)]),
        "prod": (prod, accounts[(prod, region)]),
    }
    pairs = [
        ("prod", names.deploy_role("prod"), "home", names.deployer_role()),
        ("prod", names.verify_role("prod"), "home", names.verifier_role()),
        ("home", names.retrain_role("prod"), "prod", names.drift_role("prod")),
    ]
    check = "trust-by-name"
    where = f"{manifest.product.name}"
    risk = (
        "each trust names a role of the other account (aws:PrincipalArn): a role deleted and "
        "created again under that name inherits it, so keep iam:CreateRole on mlgate-* "
        "roles to the deployers"
    )
    dangling, live = [], 0
    for side, trusting, other, trusted in pairs:
        trusting_account, trusting_client = at[side]
        trusted_account, trusted_client = at[other]
        if role_exists(trusting_client, trusting) is None:
            continue
        live += 1
        if role_exists(trusted_client, trusted) is None:
            dangling.append(
                f"{trusting} ({trusting_account}) trusts {trusted} ({trusted_account}), which "
                "does not exist: whoever creates a role of that name there is trusted"
            )
    if dangling:
        return [
            Result(
                "WARN",
                check,
                where,
                "; ".join(dangling),
                "deploy the missing side (make deploy), or delete the stack that still "
                f"trusts it; {risk}",
            )
        ]
    state = (
        f"{live} of {len(pairs)} deployed, each with the role it trusts"
        if live
        else "none deployed yet (the first deploy creates both sides)"
    )
    return [
        Result("PASS", check, where, f"cross-account trusts by role name: {state}; note: {risk}")
    ]


RECREATED_SLACK_SECONDS = 600
"""How much later than its stack's record of it a role may have been created: CloudFormation
records a resource when it completes, after IAM created it; ten minutes cover a slow stack."""


def trusted_roles(manifest: Manifest) -> list[tuple[EnvName | None, str, str, str]]:
    """Every role another account trusts by name: (its environment, None at home; its name; the
    stack that creates it; what trusts it)."""
    names = Names.of(manifest)
    prod = names.at("prod")
    return [
        (None, names.deployer_role(), names.stack("delivery"), "prod's deploy role"),
        (None, names.verifier_role(), names.stack("delivery"), "prod's verify role"),
        ("prod", names.drift_role("prod"), prod.serving_stack(), "home's retrain role"),
        ("prod", names.model_role("prod"), prod.serving_stack(),
         "home's artifact bucket and key"),
        ("prod", names.monitor_role("prod"), prod.monitoring_stack(),
         "home's artifact bucket, key and registry"),
    ]  # fmt: skip


def stack_record(account: Account, stack: str, role: str) -> dict[str, Any] | str | None:
    """The stack's record of the role (its ListStackResources summary), None when the stack
    holds no such role, "no stack" when the stack does not exist."""
    from botocore.exceptions import ClientError

    cloudformation = account.client("cloudformation")
    try:
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
            for summary in page["StackResourceSummaries"]:
                if (
                    summary.get("ResourceType") == "AWS::IAM::Role"
                    and summary.get("PhysicalResourceId") == role
                ):
                    return dict(summary)
    except ClientError as err:
        if error_code(err) == "ValidationError":  # "Stack with id ... does not exist"
            return "no stack"
        raise
    return None


def check_trusted_role_origin(
    manifest: Manifest, accounts: dict[tuple[str, str], Account]
) -> list[Result]:
    """A role another account trusts by name is the one its stack created. Trust by name
    (aws:PrincipalArn) holds for any role of that name: one deleted and created again, by hand
    or by another template, inherits every trust the other account gives the name. IAM shows
    it by its creation date, later than the stack's record of the role (ListStackResources'
    LastUpdatedTimestamp), or by the stack not holding it."""
    home_account, region = home(manifest)
    at = {None: home_account, "prod": manifest.environments.prod.account}
    check = "trusted-role-origin"
    where = manifest.product.name
    foreign, checked = [], 0
    for env, name, stack, trusted_by in trusted_roles(manifest):
        account = accounts[(at[env], region)]
        role = role_exists(account, name)
        if role is None:
            continue  # trust-by-name says whether a trust waits for it
        checked += 1
        record = stack_record(account, stack, name)
        created = role["CreateDate"]
        if record == "no stack" or record is None:
            where_from = "no stack" if record == "no stack" else "not a resource of"
            foreign.append(
                f"{name} ({at[env]}), trusted by {trusted_by}, is {where_from} {stack}: "
                "a role of that name made outside mlgate's deploy holds the trust"
            )
            continue
        assert isinstance(record, dict)
        recorded = record["LastUpdatedTimestamp"]
        if (created - recorded).total_seconds() > RECREATED_SLACK_SECONDS:
            foreign.append(
                f"{name} ({at[env]}), trusted by {trusted_by}, was created "
                f"{created:%Y-%m-%d %H:%M} UTC, after {stack} last recorded it "
                f"({recorded:%Y-%m-%d %H:%M}): deleted and created again outside "
                "CloudFormation, it inherited the trust"
            )
    if foreign:
        return [
            Result(
                "WARN",
                check,
                where,
                "; ".join(foreign),
                "find who created the role (CloudTrail CreateRole), delete it, and deploy its "
                "stack again (make deploy) so the trusted role is the stack's own",
            )
        ]
    state = (
        f"{checked} trusted role(s) deployed, each created by its stack"
        if checked
        else "no trusted role deployed yet"
    )
    return [Result("PASS", check, where, state)]


def check_slack(manifest: Manifest, account: Account) -> list[Result]:
    """The hooks' Slack secrets hold values shaped as the hooks read them; never printed."""
    from botocore.exceptions import ClientError

    names = Names.of(manifest)
    check = "slack-secrets"
    where = manifest.product.name
    client = account.client("secretsmanager")
    put = "aws secretsmanager put-secret-value --secret-id {} --secret-string {}"
    problems, fixes, missing = [], [], []
    for secret, example in (
        ("SlackWebhook", "https://hooks.slack.com/services/..."),
        (
            "SlackSigningSecret",
            '\'{"signing_secret": "...", "team_id": "T...", "app_id": "A..."}\'',
        ),
    ):
        name = names.secret(secret)
        try:
            value = client.get_secret_value(SecretId=name).get("SecretString") or ""
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                missing.append(name)
                continue
            raise
        if secret == "SlackWebhook":
            if not value.startswith("https://hooks.slack.com/"):
                problems.append(f"{name} holds no Slack incoming-webhook URL")
                fixes.append(put.format(name, example))
        else:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            keys = ("signing_secret", "team_id", "app_id")
            empty = [k for k in keys if not (isinstance(parsed, dict) and parsed.get(k))]
            if empty:
                problems.append(f"{name} lacks {', '.join(empty)} (JSON the gate callback reads)")
                fixes.append(put.format(name, example))
    if problems:
        return [
            Result(
                "FAIL",
                check,
                where,
                "; ".join(problems) + " (values not shown)",
                "; ".join(fixes) + " (docs/platform-engineer.md, deploying for real, step 4)",
            )
        ]
    if missing and delivery_deployed(account, manifest):
        return [
            Result(
                "FAIL",
                check,
                where,
                f"{', '.join(missing)} missing though the delivery stack is deployed",
                "deploy the delivery stack again (make deploy)",
            )
        ]
    if missing:
        return [
            Result(
                "WARN",
                check,
                where,
                f"{', '.join(missing)} not created yet: the "
                f"delivery stack creates {'them' if len(missing) > 1 else 'it'}",
                "after make deploy, store the values (docs/platform-engineer.md, deploying for "
                "real, step 4) and run preflight again",
            )
        ]
    return [
        Result(
            "PASS",
            check,
            where,
            "SlackWebhook holds a hooks.slack.com URL, "
            "SlackSigningSecret signing_secret, team_id and app_id (values not shown)",
        )
    ]


def product_images(manifest: Manifest) -> list[str]:
    """Every SageMaker image the product's templates and pipeline name, in its region."""
    region = home(manifest)[1]
    uris = image_uris(manifest, region)
    chosen = [uris["model"]]
    if manifest.monitoring.engine is MonitoringEngine.MODEL_MONITOR:
        chosen.append(uris["model-monitor"])
    else:
        chosen.append(monitoring_image(region))
    return list(dict.fromkeys(chosen))


def check_images(manifest: Manifest, account: Account) -> list[Result]:
    from botocore.exceptions import ClientError

    check = "sagemaker-images"
    where = f"{manifest.product.name} {account.region}"
    try:
        uris = product_images(manifest)
    except (ValueError, FileNotFoundError) as err:
        return [
            Result(
                "FAIL",
                check,
                where,
                str(err),
                "choose a framework version published in the region (model.framework_version)",
            )
        ]
    ecr = account.client("ecr")
    bad, good = [], []
    for uri in uris:
        parts = IMAGE_URI.match(uri)
        if parts is None:
            bad.append(f"{uri} is not an ECR image URI")
            continue
        image = (
            {"imageDigest": parts["digest"]}
            if parts["digest"]
            else {"imageTag": parts["tag"] or "latest"}
        )
        try:
            found = ecr.batch_get_image(
                registryId=parts["registry"],
                repositoryName=parts["repository"],
                imageIds=[image],
                acceptedMediaTypes=MEDIA_TYPES,
            )
        except ClientError as err:
            bad.append(f"{uri}: {error_text(err)}")
            continue
        if found.get("images"):
            good.append(uri)
        else:
            reasons = ", ".join(f.get("failureCode", "?") for f in found.get("failures", []))
            bad.append(f"{uri}: {reasons or 'not found'}")
    if bad:
        return [
            Result(
                "FAIL",
                check,
                where,
                "; ".join(bad),
                "check model.algorithm and model.framework_version (or model.image_uri) "
                "against the images published in the region; the caller needs "
                "ecr:BatchGetImage",
            )
        ]
    return [
        Result(
            "PASS",
            check,
            where,
            f"{len(good)} image(s) resolve (ecr:BatchGetImage): " + ", ".join(good),
        )
    ]


POWERTOOLS = Result(
    "PASS",
    "powertools-layer",
    "all",
    "nothing to resolve: the hooks' Powertools layer ships with the stack (mlgate builds it "
    "from pinned wheels), not as a public layer ARN",
)


# --- the run --------------------------------------------------------------------------------


def task(
    check: str, where: str, permissions: str, fn: Callable[..., list[Result]], *args: Any
) -> Callable[[], list[Result]]:
    """A check ready to run in the pool, guarded."""
    return functools.partial(guarded, check, where, permissions, functools.partial(fn, *args))


def check_quotas(quotas: Quotas, plan: Plan) -> list[Result]:
    results = guarded(
        "sagemaker-quotas",
        plan.where,
        needs("servicequotas:ListServiceQuotas", "servicequotas:ListAWSDefaultServiceQuotas"),
        functools.partial(check_sagemaker_quotas, quotas, plan),
    )
    if plan.homes:
        results += guarded(
            "glue-quota",
            plan.where,
            needs("servicequotas:GetServiceQuota"),
            functools.partial(check_glue, quotas, plan),
        )
    return results


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def run(
    manifests: Sequence[Manifest],
    *,
    session: Any = None,
    profile: str | None = None,
    profiles: dict[str, str] | None = None,
    cdk_out: Path = Path("cdk.out"),
    client_hook: ClientHook | None = None,
    out: Callable[[str], None] = print,
    err: Callable[[str], None] | None = None,
) -> int:
    """Every check for the manifests' accounts, a line each to `out`; exit status 0 (no FAIL),
    1 (a FAIL) or 2 (credentials: one line to `err`, standard error by default)."""
    started = time.monotonic()
    try:
        if session is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            try:
                session = boto3.Session(profile_name=profile)
            except ProfileNotFound as err:
                raise CredentialsProblem(f"no AWS credentials: {err}") from None
        plans = plan(manifests)
        sessions = open_sessions(
            manifests, plans, session=session, profiles=profiles or {}, hook=client_hook
        )
    except CredentialsProblem as problem:
        (err or _stderr)(str(problem))
        return 2

    accounts = {
        key: Account(key[0], key[1], sessions.by_account[key[0]], client_hook)
        for key in plans
        if key[0] in sessions.by_account
    }
    tasks: list[Callable[[], list[Result]]] = []
    for key, p in plans.items():
        if key not in accounts:
            continue  # the prod-trusts-home line says why
        account = accounts[key]
        required = required_bootstrap(cdk_out, sorted(p.products))
        services = stack_services(cdk_out, sorted(p.products))
        tasks += [
            task(
                "cdk-bootstrap",
                p.where,
                needs("ssm:GetParameter"),
                check_bootstrap,
                account,
                p,
                required,
            ),
            task(
                "cfn-exec-role",
                p.where,
                needs("iam:ListAttachedRolePolicies"),
                check_exec_role,
                account,
                p,
                services,
            ),
            task(
                "lambda-concurrency",
                p.where,
                needs("lambda:GetAccountSettings", "cloudformation:DescribeStacks"),
                check_lambda,
                account,
                p,
            ),
            # One task reads the account's Service Quotas, through one client, in order.
            functools.partial(check_quotas, Quotas(account), p),
        ]
        if p.model_monitor:
            tasks.append(
                task(
                    "model-monitor",
                    p.where,
                    needs("sagemaker:ListMonitoringSchedules"),
                    check_model_monitor,
                    account,
                    p,
                )
            )
    # The support plan is the account's, whatever the region: read once per account.
    for account_id in dict.fromkeys(key[0] for key in plans if key in accounts):
        key = next(k for k in plans if k[0] == account_id and k in accounts)
        tasks.append(
            task(
                "support-plan",
                plans[key].where,
                needs("support:DescribeTrustedAdvisorChecks"),
                check_support_plan,
                accounts[key],
                plans[key],
            )
        )
    for m in manifests:
        account = accounts[home(m)]
        name = m.product.name
        if m.is_remote("prod"):
            tasks.append(
                task(
                    "prod-trusts-home",
                    name,
                    needs("iam:GetRole"),
                    check_prod_trust,
                    m,
                    accounts,
                    sessions.refused,
                )
            )
            if m.environments.prod.account not in sessions.refused:
                tasks.append(
                    task(
                        "trust-by-name", name, needs("iam:GetRole"), check_named_trusts, m, accounts
                    )
                )
                tasks.append(
                    task(
                        "trusted-role-origin",
                        name,
                        needs("iam:GetRole", "cloudformation:ListStackResources"),
                        check_trusted_role_origin,
                        m,
                        accounts,
                    )
                )
        tasks.append(
            task(
                "slack-secrets",
                name,
                needs(
                    "secretsmanager:GetSecretValue",
                    "kms:Decrypt on the product key",
                    "cloudformation:DescribeStacks",
                ),
                check_slack,
                m,
                account,
            )
        )
        tasks.append(
            task("sagemaker-images", name, needs("ecr:BatchGetImage"), check_images, m, account)
        )

    # The clients each check uses are its own but for Service Quotas (one task per account):
    # the checks run side by side, and print in this order.
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for found in pool.map(lambda task: task(), tasks) for r in found]
    results.append(POWERTOOLS)
    for result in results:
        out(result.line)
    failed = sum(r.status == "FAIL" for r in results)
    warned = sum(r.status == "WARN" for r in results)
    out(
        f"preflight: {len(results)} checks, {failed} failed, {warned} warning(s), "
        f"{len(accounts)} account/region(s) read as {sessions.caller['Arn']} in "
        f"{time.monotonic() - started:.1f} s"
    )
    return 1 if failed else 0
