"""The AWS accounts of `python -m mlgate preflight --double` and tests/test_preflight.py:
healthy accounts set up to match the manifests, offline.

moto holds what it implements (STS, SSM, IAM, CloudFormation, Secrets Manager, ECR); botocore's
Stubber answers the calls moto lacks (Service Quotas, Lambda's GetAccountSettings, SageMaker's
ListMonitoringSchedules), in the order preflight makes them, with the parameters it must pass.
Each home account holds the bootstrap (version parameter, roles; a prod of its own trusts home),
a narrow CloudFormation execution policy, the Slack secrets with values of the right shape and
every SageMaker image the product names; each account's quotas and Lambda limits cover the
plan. The tests break one thing at a time (`World`'s fields, or moto's state through
`World.client` and World's other methods, which mark the accounts changed) and read what
preflight called in `World.calls`.

The double reaches each account by moto's `x-moto-account-id` header, so its sessions and
clients outlive moto's resets. `healthy_world(..., keep=True)` (the tests) also keeps the
seeded accounts for the next world of the same manifests: moto's mock stops without removing
its data (`stop(remove_data=False)`, https://github.com/getmoto/moto/blob/master/CHANGELOG.md,
4.1.4) and starts again without a reset. They are kept only when the world left them as seeded
(no write through `World`, only reads by preflight) and found again only when the sentinel
parameter of that seeding is still there: any other mock_aws() in the process resets every
backend, the sentinel with them, and the next world seeds afresh. preflight's own clients of
the home account are lent from a pool for one run and given back with the run's stubs and
records removed (clients a test's own hook touched are dropped instead).

moto ignores ECR's registryId: an image of AWS's registry is kept in the caller's own registry,
where BatchGetImage finds it. A development tool, not shipped: it needs moto.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
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


ACCOUNT_HEADER = "x-moto-account-id"
"""moto serves a request carrying this header from that account, whatever its credentials
(http://docs.getmoto.org/en/latest/docs/multi_account.html, for its server; the in-process
mock reads it in the same place, BaseResponse.get_current_account). A prod session preflight
makes from its own sts:AssumeRole carries no header: moto finds prod by those credentials."""
READ_ONLY = re.compile(r"^(Get|List|Describe|BatchGet)[A-Z]")
"""Calls that change nothing in an account; besides them preflight makes sts:AssumeRole, whose
credentials moto keeps (as IAM access keys no check reads)."""
SENTINEL = "/mlgate-preflight-double/seeding"


def route(client: Any, account: str) -> Any:
    """`client`, its every request served from `account`."""

    def header(request: Any, **_: Any) -> None:
        request.headers[ACCOUNT_HEADER] = account

    client.meta.events.register("before-sign.*.*", header)
    return client


def config_key(config: Any) -> tuple[str, ...]:
    """A botocore Config's settings, comparable (Config has no equality)."""
    from botocore.config import Config

    return tuple(f"{name}={getattr(config, name)!r}" for name in Config.OPTION_DEFAULTS)


class PooledSession:
    """The home account's boto3 session for preflight: routed by ACCOUNT_HEADER, handing out
    each client to one caller per run (as session.client makes a new one each call) from
    clients kept across runs; what a session has besides client() is the session's."""

    def __init__(self, account: str) -> None:
        core = botocore.session.Session()
        core.register_component("data_loader", shared()._session.get_component("data_loader"))
        self._boto = boto3.Session(botocore_session=core)
        self.account = account
        self._idle: dict[tuple[Any, ...], list[Any]] = {}
        self._lent: list[tuple[tuple[Any, ...], Any]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._boto, name)

    def client(self, service_name: str, region_name: str, config: Any = None) -> Any:
        key = (service_name, region_name, config_key(config) if config else None)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if idle:
                made = idle.pop()
            else:
                made = self._boto.client(service_name, region_name=region_name, config=config)
                route(made, self.account)
            self._lent.append((key, made))
            return made

    def give_back(self, keep: bool) -> None:
        """The run's clients, back in the pool (or dropped)."""
        with self._lock:
            if keep:
                for key, made in self._lent:
                    self._idle[key].append(made)
            self._lent.clear()


@dataclass
class Kept:
    """The process's accounts, kept between worlds: which manifests moto holds seeded (None:
    none, or changed since), that seeding's sentinel value, the double's routed clients."""

    seeded: str | None = None
    sentinel: str = ""
    generation: itertools.count[int] = field(default_factory=itertools.count)
    clients: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    sessions: dict[str, PooledSession] = field(default_factory=dict)


KEPT = Kept()


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
    changed: bool = False
    """Whether a test changed moto's accounts (through `client` or World's methods)."""
    _registered: list[tuple[Any, str]] = field(default_factory=list, repr=False)

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
            ("transform", p.transform),
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

    @functools.cached_property
    def key(self) -> str:
        """What the seeding depends on: the manifests."""
        return json.dumps([m.model_dump(mode="json") for m in self.manifests], sort_keys=True)

    def _client(self, account: str, service: str, region: str) -> Any:
        """The double's own client in `account` (no stub, no record), made once a process."""
        key = (account, service, region)
        if key not in KEPT.clients:
            KEPT.clients[key] = route(shared().client(service, region_name=region), account)
        return KEPT.clients[key]

    def client(self, account: str, service: str, region: str) -> Any:
        """A client to change `account` with (the accounts are then not kept)."""
        self.changed = True
        return self._client(account, service, region)

    @property
    def home_session(self) -> PooledSession:
        account = preflight.home(self.manifests[0])[0]
        if account not in KEPT.sessions:
            KEPT.sessions[account] = PooledSession(account)
        return KEPT.sessions[account]

    def _sentinel(self) -> Any:
        account, region = preflight.home(self.manifests[0])
        return self._client(account, "ssm", region)

    def sentinel_found(self) -> bool:
        """Whether moto still holds the last seeding's sentinel (any reset drops it)."""
        ssm = self._sentinel()
        try:
            value = ssm.get_parameter(Name=SENTINEL)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return False
        return bool(value == KEPT.sentinel)

    def seed(self) -> None:
        KEPT.seeded = None
        for (account, region), p in self.plans.items():
            ssm = self._client(account, "ssm", region)
            ssm.put_parameter(
                Name=preflight.BOOTSTRAP_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String"
            )
            iam = self._client(account, "iam", region)
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
            secrets = self._client(account, "secretsmanager", region)
            names = Names.of(m)
            secrets.create_secret(Name=names.secret("SlackWebhook"), SecretString=WEBHOOK)
            secrets.create_secret(Name=names.secret("SlackSigningSecret"), SecretString=SIGNING)
            ecr = self._client(account, "ecr", region)
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
        KEPT.sentinel = f"{next(KEPT.generation)}"
        self._sentinel().put_parameter(Name=SENTINEL, Value=KEPT.sentinel, Type="String")
        KEPT.seeded = self.key

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

        self.changed = True
        backend = cloudformation_backends[account][region]
        (found,) = [s for s in backend.stacks.values() if s.name == stack]
        found.creation_time -= datetime.timedelta(hours=hours)

    def add_aws_managed_policy(self, account: str, name: str, document: dict[str, Any]) -> str:
        """An AWS managed policy in `account`'s IAM (moto loads AWS's only when told to, slowly,
        all of them); its ARN."""
        from moto.iam.models import AWSManagedPolicy, iam_backends

        self.changed = True
        policy = AWSManagedPolicy.from_data(
            name,
            account,
            "us-east-1",
            {
                "DefaultVersionId": "v1",
                "Path": "/",
                "Document": document,
                "CreateDate": "2015-02-06T18:39:46+00:00",
                "UpdateDate": "2015-02-06T18:39:46+00:00",
            },
        )
        iam_backends[account]["aws"].managed_policies[policy.arn] = policy
        return str(policy.arn)

    # --- the calls moto lacks, and the record of every call ---------------------------------

    def client_hook(self, account: str, region: str, service: str, client: Any) -> None:
        def record(model: Any, **_: Any) -> None:
            self.calls.append((account, service, model.name))

        unique = f"mlgate-preflight-double-record-{id(self)}-{len(self._registered)}"
        client.meta.events.register_first("before-call.*.*", record, unique_id=unique)
        self._registered.append((client, unique))
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

    @property
    def left_as_seeded(self) -> bool:
        """No change through World, and preflight only read."""
        return not self.changed and all(
            READ_ONLY.match(op) or op == "AssumeRole" for _, _, op in self.calls
        )

    def release(self) -> None:
        """preflight's clients back in the pool, this world's stubs and records removed; the
        clients a test's own hook touched are dropped."""
        for stubber in self.stubbers:
            stubber.deactivate()
        for client, unique in self._registered:
            client.meta.events.unregister("before-call.*.*", unique_id=unique)
        self.home_session.give_back(keep=not self.hooks)


@contextmanager
def healthy_world(manifests: Sequence[Manifest], keep: bool = False) -> Iterator[World]:
    """moto started, healthy accounts seeded for the manifests. With `keep`, the accounts of
    the last world of the same manifests when it left them as seeded (module docstring)."""
    from moto import mock_aws

    world = World(manifests)
    mock = mock_aws()
    seeded = keep and KEPT.seeded == world.key
    mock.start(reset=not seeded)
    kept = False
    try:
        if seeded and not world.sentinel_found():
            # Another mock_aws() reset moto since: what it holds is not this seeding.
            mock.stop()
            mock.start()
            seeded = False
        if not seeded:
            world.seed()
        yield world
        kept = keep and world.left_as_seeded
    finally:
        world.release()
        if not kept:
            KEPT.seeded = None
        mock.stop(remove_data=not kept)


def run_double(
    manifests: Sequence[Manifest], out: Callable[[str], None] = print, **kwargs: Any
) -> int:
    """`preflight --double`: the banner, then every check against the healthy world, one run
    per home account (as preflight reads the products of one home account at a time, with its
    credentials); the worst exit status."""
    out(BANNER)
    homes: dict[str, list[Manifest]] = {}
    for manifest in manifests:
        homes.setdefault(preflight.home(manifest)[0], []).append(manifest)
    code = 0
    for group in homes.values():
        with healthy_world(group) as world:
            code = max(
                code,
                preflight.run(
                    group,
                    session=world.home_session,
                    client_hook=world.client_hook,
                    out=out,
                    **kwargs,
                ),
            )
    return code
