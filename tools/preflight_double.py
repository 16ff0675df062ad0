"""The AWS accounts of `python -m mlgate preflight --double` and tests/test_preflight.py:
healthy accounts set up to match the manifests, offline.

moto holds what it implements (STS, SSM, IAM, CloudFormation, Secrets Manager, ECR); botocore's
Stubber answers the calls moto lacks (Service Quotas, Lambda's GetAccountSettings, SageMaker's
ListMonitoringSchedules), in the order preflight makes them, with the parameters it must pass.
Each home account holds the bootstrap (version parameter, roles; a prod of its own trusts home),
a narrow CloudFormation execution policy, the Slack secrets with values of the right shape and
every SageMaker image the product names; each account's quotas and Lambda limits cover the
plan. The tests break one thing at a time (`World`'s fields, or moto's state through
`World.client`) and read what preflight called in `World.calls`.

moto ignores ECR's registryId: an image of AWS's registry is kept in the caller's own registry,
where BatchGetImage finds it. A development tool, not shipped: it needs moto.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.stub import Stubber

from mlgate.cli import preflight
from mlgate.infra.naming import Names
from mlgate.manifest import Manifest

BANNER = (
    "TEST DOUBLE: every check below ran against moto and botocore Stubber answers set up as "
    "healthy accounts for the manifest; no real AWS account was read"
)
BOOTSTRAP_VERSION = "30"
NARROW_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "glue:*"], "Resource": "*"}],
}
WEBHOOK = "https://hooks.slack.com/services/T0DOUBLE/B0DOUBLE/double"
SIGNING = json.dumps({"signing_secret": "double", "team_id": "T0DOUBLE", "app_id": "A0DOUBLE"})
Key = tuple[str, str]


def trust(*accounts: str, service: str | None = None) -> str:
    principal: dict[str, Any] = (
        {"Service": service} if service else {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]}
    )
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


def quota_code(name: str) -> str:
    return f"L-{zlib.crc32(name.encode()):08X}"


@functools.cache
def shared() -> boto3.Session:
    """Loads each service's models once for every double of the process. Made on first use,
    inside moto's mock: a session made before moto is imported has no moto handler, and its
    clients would reach AWS."""
    return boto3.Session()


@dataclass
class World:
    """The accounts preflight reads, by (account, region); change a field before the run to
    break one thing."""

    manifests: Sequence[Manifest]
    plans: dict[Key, preflight.Plan] = field(init=False)
    lambda_limits: dict[Key, tuple[int, int]] = field(init=False)
    """(ConcurrentExecutions, UnreservedConcurrentExecutions) per account and region."""
    applied: dict[Key, dict[str, float]] = field(init=False)
    """SageMaker quotas with an applied value, by name."""
    defaults: dict[Key, dict[str, float]] = field(init=False)
    """SageMaker quotas' AWS defaults, read only for names `applied` lacks."""
    glue: dict[Key, dict[str, float]] = field(init=False)
    monitoring: dict[Key, dict[str, Any] | str] = field(init=False)
    """ListMonitoringSchedules' answer, or the error code it raises."""
    support: dict[str, str | None] = field(init=False)
    """Per account: None for a support plan that runs every Trusted Advisor check (the Support
    API answers), or the error code DescribeTrustedAdvisorChecks raises (Basic, Developer)."""
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(account, service, operation) of every call preflight made."""
    hooks: list[preflight.ClientHook] = field(default_factory=list)
    """More hooks for preflight's clients (a test stubs STS through one)."""
    stubbers: list[Stubber] = field(default_factory=list)
    _sessions: dict[str, boto3.Session] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.plans = preflight.plan(self.manifests)
        self.lambda_limits = dict.fromkeys(self.plans, (1000, 1000))
        self.applied = {
            key: {name: 2.0 * self.need(key, name) for name in preflight.wanted_quotas(p)}
            for key, p in self.plans.items()
        }
        self.defaults = {key: {} for key in self.plans}
        self.glue = {
            key: {preflight.GLUE_DPUS[0]: 2.0 * p.glue_dpus, preflight.GLUE_RUNS[0]: 50.0}
            for key, p in self.plans.items()
        }
        self.support = dict.fromkeys((key[0] for key in self.plans), None)
        self.monitoring = {
            key: {"MonitoringScheduleSummaries": [self.schedule(key)]} for key in self.plans
        }

    def need(self, key: Key, name: str) -> int:
        p = self.plans[key]
        if name == preflight.SERVERLESS_QUOTA:
            return p.serverless_concurrency
        for use, counts in (
            ("endpoint", p.endpoint),
            ("training", p.training),
            ("processing", p.processing),
        ):
            for instance_type, count in counts.items():
                if preflight.quota_name(instance_type, use) == name:
                    return count
        raise KeyError(name)

    @staticmethod
    def schedule(key: Key) -> dict[str, Any]:
        import datetime

        account, region = key
        return {
            "MonitoringScheduleName": "existing-schedule",
            "MonitoringScheduleArn": f"arn:aws:sagemaker:{region}:{account}:"
            "monitoring-schedule/existing-schedule",
            "CreationTime": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            "LastModifiedTime": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            "MonitoringScheduleStatus": "Scheduled",
        }

    # --- moto's accounts --------------------------------------------------------------------

    def session(self, account: str) -> boto3.Session:
        """Credentials of `account` (moto keeps accounts apart by the key that signs), one
        session per account for this double, all sharing one set of loaded service models."""
        if account not in self._sessions:
            sts = shared().client("sts", region_name="us-east-1")
            found = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/mlgate-preflight-double",
                RoleSessionName="mlgate-preflight-double",
            )["Credentials"]
            self._sessions[account] = preflight.session_like(
                shared(),
                aws_access_key_id=found["AccessKeyId"],
                aws_secret_access_key=found["SecretAccessKey"],
                aws_session_token=found["SessionToken"],
            )
        return self._sessions[account]

    def client(self, account: str, service: str, region: str) -> Any:
        return self.session(account).client(service, region_name=region)

    @property
    def home_session(self) -> boto3.Session:
        return self.session(preflight.home(self.manifests[0])[0])

    def seed(self) -> None:
        for (account, region), p in self.plans.items():
            ssm = self.client(account, "ssm", region)
            ssm.put_parameter(
                Name=preflight.BOOTSTRAP_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String"
            )
            iam = self.client(account, "iam", region)
            trusted = (account, p.trusted_home) if p.remote else (account,)
            for kind in ("deploy", "file-publishing", "lookup"):
                iam.create_role(
                    RoleName=f"cdk-{preflight.QUALIFIER}-{kind}-role-{account}-{region}",
                    AssumeRolePolicyDocument=trust(*trusted),
                )
            exec_role = f"cdk-{preflight.QUALIFIER}-cfn-exec-role-{account}-{region}"
            iam.create_role(
                RoleName=exec_role,
                AssumeRolePolicyDocument=trust(service="cloudformation.amazonaws.com"),
            )
            policy = f"arn:aws:iam::{account}:policy/{preflight.EXEC_POLICY}"
            # IAM is global: one policy per account, whatever the regions.
            with suppress(iam.exceptions.EntityAlreadyExistsException):
                iam.create_policy(
                    PolicyName=preflight.EXEC_POLICY, PolicyDocument=json.dumps(NARROW_POLICY)
                )
            iam.attach_role_policy(RoleName=exec_role, PolicyArn=policy)
        for m in self.manifests:
            account, region = preflight.home(m)
            secrets = self.client(account, "secretsmanager", region)
            names = Names.of(m)
            secrets.create_secret(Name=names.secret("SlackWebhook"), SecretString=WEBHOOK)
            secrets.create_secret(Name=names.secret("SlackSigningSecret"), SecretString=SIGNING)
            ecr = self.client(account, "ecr", region)
            for uri in preflight.product_images(m):
                parts = preflight.IMAGE_URI.match(uri)
                assert parts is not None, uri
                repository = parts["repository"]
                with suppress(ecr.exceptions.RepositoryAlreadyExistsException):
                    ecr.create_repository(repositoryName=repository)
                manifest = {
                    "schemaVersion": 2,
                    "mediaType": preflight.MEDIA_TYPES[0],
                    "config": {"digest": f"sha256:{'0' * 64}"},
                    "layers": [],
                }
                ecr.put_image(
                    repositoryName=repository,
                    imageManifest=json.dumps(manifest),
                    imageTag=parts["tag"] or "latest",
                )

    def deploy_roles(self, account: str, region: str, stack: str, names: Sequence[str]) -> None:
        """Roles of these names created by CloudFormation as resources of `stack` (moto runs
        the template), as `make deploy` leaves the roles another account trusts by name."""
        template = {
            "Resources": {
                f"Role{i}": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "RoleName": name,
                        "AssumeRolePolicyDocument": json.loads(trust(account)),
                    },
                }
                for i, name in enumerate(names)
            }
        }
        self.client(account, "cloudformation", region).create_stack(
            StackName=stack, TemplateBody=json.dumps(template)
        )

    def age_stack(self, account: str, region: str, stack: str, hours: float) -> None:
        """Make the stack's record of its resources `hours` older (moto dates
        ListStackResources' LastUpdatedTimestamp by the stack's creation)."""
        import datetime

        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[account][region]
        (found,) = [s for s in backend.stacks.values() if s.name == stack]
        found.creation_time -= datetime.timedelta(hours=hours)

    # --- the calls moto lacks, and the record of every call ---------------------------------

    def client_hook(self, account: str, region: str, service: str, client: Any) -> None:
        def record(model: Any, **_: Any) -> None:
            self.calls.append((account, service, model.name))

        client.meta.events.register_first("before-call.*.*", record)
        for hook in self.hooks:
            hook(account, region, service, client)
        key = (account, region)
        if service == "support":
            stubber = Stubber(client)
            self._stub_support(stubber, account)
            stubber.activate()
            self.stubbers.append(stubber)
            return
        if key not in self.plans or service not in ("lambda", "service-quotas", "sagemaker"):
            return
        stubber = Stubber(client)
        getattr(self, f"_stub_{service.replace('-', '_')}")(stubber, key)
        stubber.activate()
        self.stubbers.append(stubber)

    def _stub_lambda(self, stubber: Stubber, key: Key) -> None:
        limit, unreserved = self.lambda_limits[key]
        stubber.add_response(
            "get_account_settings",
            {
                "AccountLimit": {
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": unreserved,
                },
                "AccountUsage": {"FunctionCount": 0, "TotalCodeSize": 0},
            },
            {},
        )

    def _quota_page(self, key: Key, quotas: dict[str, float]) -> dict[str, Any]:
        return {
            "Quotas": [
                {
                    "ServiceCode": "sagemaker",
                    "QuotaName": name,
                    "QuotaCode": quota_code(name),
                    "Value": value,
                }
                for name, value in sorted(quotas.items())
            ]
        }

    def _stub_service_quotas(self, stubber: Stubber, key: Key) -> None:
        p = self.plans[key]
        params = {"ServiceCode": "sagemaker", "MaxResults": 100}
        applied = self.applied[key]
        stubber.add_response("list_service_quotas", self._quota_page(key, applied), params)
        if preflight.wanted_quotas(p) - set(applied):
            stubber.add_response(
                "list_aws_default_service_quotas",
                self._quota_page(key, self.defaults[key]),
                params,
            )
        if p.homes:
            for code, name in (preflight.GLUE_DPUS, preflight.GLUE_RUNS):
                stubber.add_response(
                    "get_service_quota",
                    {
                        "Quota": {
                            "ServiceCode": "glue",
                            "QuotaCode": code,
                            "QuotaName": name,
                            "Value": self.glue[key][code],
                        }
                    },
                    {"ServiceCode": "glue", "QuotaCode": code},
                )

    def _stub_sagemaker(self, stubber: Stubber, key: Key) -> None:
        if not self.plans[key].model_monitor:
            return
        answer = self.monitoring[key]
        if isinstance(answer, str):
            stubber.add_client_error(
                "list_monitoring_schedules",
                service_error_code=answer,
                service_message="the account may not use this feature",
                http_status_code=400,
                expected_params={"MaxResults": 10},
            )
        else:
            stubber.add_response("list_monitoring_schedules", answer, {"MaxResults": 10})

    def _stub_support(self, stubber: Stubber, account: str) -> None:
        from mlgate.infra.constructs.cost import ADVISOR_CHECKS

        answer = self.support[account]
        if answer is not None:
            stubber.add_client_error(
                "describe_trusted_advisor_checks",
                service_error_code=answer,
                service_message="AWS Premium Support Subscription is required to use this service.",
                http_status_code=400,
                expected_params={"language": "en"},
            )
            return
        checks = [
            {"id": f"double{i}", "name": c.name, "description": "", "category": "security",
             "metadata": []}
            for i, c in enumerate(ADVISOR_CHECKS)
        ]  # fmt: skip
        stubber.add_response("describe_trusted_advisor_checks", {"checks": checks},
                             {"language": "en"})  # fmt: skip

    def assert_answered(self) -> None:
        """Every stubbed answer was asked for: the double follows preflight's calls."""
        for stubber in self.stubbers:
            stubber.assert_no_pending_responses()


@contextmanager
def healthy_world(manifests: Sequence[Manifest]) -> Iterator[World]:
    """moto started, healthy accounts seeded for the manifests."""
    from moto import mock_aws

    with mock_aws():
        world = World(manifests)
        world.seed()
        yield world


def run_double(
    manifests: Sequence[Manifest], out: Callable[[str], None] = print, **kwargs: Any
) -> int:
    """`preflight --double`: the banner, then every check against the healthy world."""
    out(BANNER)
    with healthy_world(manifests) as world:
        return preflight.run(
            manifests,
            session=world.home_session,
            client_hook=world.client_hook,
            out=out,
            **kwargs,
        )
