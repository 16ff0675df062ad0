"""`python -m mlgate preflight`: every check passes on healthy accounts for both example
products, and fails (or warns) with its fix on an account that breaks it; missing or foreign
credentials give one line; no call writes. Offline: moto, and botocore's Stubber for the calls
moto lacks (tools/preflight_double.py)."""

from __future__ import annotations

import functools
import gc
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber

from mlgate.cli import preflight
from mlgate.infra.naming import Names
from mlgate.manifest import ENV_NAMES, Manifest, load_manifests, parse_manifest
from mlgate.manifest.serving import ServingMode
from tools.preflight_double import KEPT, World, healthy_world

from .conftest import EXAMPLES, PRODUCTS, ROOT

LINE = re.compile(r"^(PASS|WARN|FAIL) ([a-z-]+) \[[^\]]+\]: .+")
READ = re.compile(r"^(Get|List|Describe|BatchGet)[A-Z]")
# sts:AssumeRole into a prod account's CDK lookup role hands out temporary credentials, and
# changes nothing in either account.
ALSO_READ_ONLY = {"AssumeRole"}


def modes(product: str) -> set[ServingMode]:
    manifest = load_manifests(EXAMPLES / product)[0]
    return {manifest.env_serving(env).mode for env in ENV_NAMES}


# Products with an endpoint on instances (real-time or async); with a batch environment (every
# environment batch); whose environments may all run Model Monitor (a batch one may not: the
# manifest refuses it).
ON_INSTANCES = tuple(p for p in PRODUCTS if modes(p) & {ServingMode.REAL_TIME, ServingMode.ASYNC})
BATCH = tuple(p for p in PRODUCTS if ServingMode.BATCH in modes(p))
ALL_BATCH = tuple(p for p in BATCH if modes(p) == {ServingMode.BATCH})
MONITORABLE = tuple(p for p in PRODUCTS if ServingMode.BATCH not in modes(p))


def manifests_of(product: str | None, engine: str | None = None) -> list[Manifest]:
    """The product's manifest (every example's, for None), with `engine` if given."""
    return list(_manifests(product, engine))


@functools.cache
def _manifests(product: str | None, engine: str | None) -> tuple[Manifest, ...]:
    """Loaded once a process: a Manifest is immutable."""
    if product is None:
        return tuple(load_manifests(EXAMPLES))
    if engine is None:
        return tuple(load_manifests(EXAMPLES / product))
    path = EXAMPLES / product / "manifest.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("monitoring", {})["engine"] = engine
    return (parse_manifest(raw, path),)


@dataclass
class Run:
    code: int
    lines: list[str]
    errors: list[str]
    world: World

    def line(self, check: str) -> str:
        found = [line for line in self.lines if line.split(" ")[1:2] == [check]]
        assert found, f"no {check} line in:\n" + "\n".join(self.lines)
        return found[0]

    def not_passing(self) -> dict[str, str]:
        checks = [line for line in self.lines[:-1] if not line.startswith("PASS")]
        return {line.split(" ")[1]: line for line in checks}


def run_preflight(
    manifests: list[Manifest], breaks: Callable[[World], None] | None = None, **kwargs: Any
) -> Run:
    lines: list[str] = []
    errors: list[str] = []
    # The accounts seeded for the same manifests by an earlier test, when it left them as
    # seeded (tools/preflight_double.py): the breaks below are this test's alone. The cyclic
    # garbage collector waits for the run's end: its passes over the test process's large heap
    # slowed every run (the hooks' coldstart.py defers it alike).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with healthy_world(manifests, keep=True) as world:
            if breaks is not None:
                breaks(world)
            code = preflight.run(
                manifests,
                session=world.home_session,
                client_hook=world.client_hook,
                out=lines.append,
                err=errors.append,
                cdk_out=kwargs.pop("cdk_out", Path("no-cdk-out")),
                **kwargs,
            )
            world.assert_answered()
    finally:
        if collecting:
            gc.enable()
    written = [c for c in world.calls if not (READ.match(c[2]) or c[2] in ALSO_READ_ONLY)]
    assert written == [], f"preflight made calls that are not reads: {written}"
    return Run(code, lines, errors, world)


def home_key(world: World) -> tuple[str, str]:
    return preflight.home(world.manifests[0])


def prod_key(world: World) -> tuple[str, str]:
    prod = world.manifests[0].environments.prod
    return prod.account, prod.region


# --- healthy accounts -----------------------------------------------------------------------


@pytest.mark.parametrize("example", PRODUCTS)
def test_healthy_accounts_pass_every_check(example: str) -> None:
    run = run_preflight(manifests_of(example))
    assert run.code == 0, "\n".join(run.lines)
    assert run.errors == []
    assert run.not_passing() == {}
    for line in run.lines[:-1]:
        assert LINE.match(line), line
    checks = {line.split(" ")[1] for line in run.lines[:-1]}
    expected = {
        "cdk-bootstrap", "cfn-exec-role", "lambda-concurrency", "training-quota",
        "processing-quota", "glue-quota", "slack-secrets", "sagemaker-images",
        "powertools-layer", "support-plan",
    }  # fmt: skip
    if example in ON_INSTANCES:
        expected.add("endpoint-quota")
    if example in BATCH:  # Batch Transform's instances, no endpoint's
        expected.add("transform-quota")
    [m] = run.world.manifests
    environments = m.environments
    if m.is_remote("prod"):  # delivery-time: prod in an account of its own
        expected |= {"prod-trusts-home", "trust-by-name", "trusted-role-origin"}
    if any(m.env_serving(env).mode is ServingMode.SERVERLESS for env in ENV_NAMES):
        expected.add("serverless-quota")  # delivery-time's staging
    assert checks == expected
    accounts = {line.split("[")[1].split("]")[0] for line in run.lines if "cdk-bootstrap" in line}
    wanted = {f"{e.account} {e.region}" for e in (environments.staging, environments.prod)}
    assert accounts == wanted
    support = [line for line in run.lines if " support-plan " in line]
    # the support plan is read once per account, whatever its regions
    assert len(support) == len({e.account for e in (environments.staging, environments.prod)})
    assert "ships with the stack" in run.line("powertools-layer")
    assert run.lines[-1].startswith("preflight: ")


def test_both_products_at_once_share_the_home_account_quotas() -> None:
    """The examples of one home account (preflight reads one home account at a time)."""
    manifests = [m for m in manifests_of(None) if preflight.home(m)[0] == "111111111111"]
    assert sorted(m.product.name for m in manifests) == ["delivery-time", "fraud-detection"]
    plans = preflight.plan(manifests)
    assert set(plans) == {
        ("111111111111", "eu-west-1"),
        ("111111111111", "us-east-1"),
        ("222222222222", "us-east-1"),
    }
    run = run_preflight(manifests)
    assert run.code == 0, "\n".join(run.lines)


def test_blue_green_doubles_the_largest_fleet() -> None:
    [m] = manifests_of("delivery-time")
    prod = preflight.plan([m])[("222222222222", "us-east-1")]
    # prod: 4 instances, autoscaling up to 12, and a whole green fleet beside blue.
    assert prod.endpoint == {"ml.c5.large": 24}
    assert prod.hooks == len(preflight.ENV_HOOKS)
    assert prod.serverless_concurrency == 0
    home = preflight.plan([m])[("111111111111", "us-east-1")]
    # staging is serverless: no instance quota, its max concurrency (both variants) against
    # the region's serverless concurrency; no monitoring job, no drift responder.
    staging = m.env_serving("staging")
    assert staging.mode is ServingMode.SERVERLESS
    assert staging.serverless is not None
    assert home.endpoint == {}
    assert home.serverless_concurrency == 2 * staging.serverless.max_concurrency
    assert home.processing == {m.model.processing_instance_type: 1}  # the pipeline's only
    assert home.hooks == len(preflight.HOME_HOOKS)
    assert preflight.SERVERLESS_QUOTA in preflight.wanted_quotas(home)
    assert [(p.product.name, n) for p, n in home.reservations] == [("delivery-time", 10)]


def test_an_async_endpoint_counts_its_largest_fleet_like_real_time() -> None:
    [m] = manifests_of("fraud-detection")
    staging = m.env_serving("staging")
    assert staging.mode is ServingMode.ASYNC  # scales to zero, up to autoscaling's maximum
    home = preflight.plan([m])[preflight.home(m)]
    fleet = max(staging.instance_count, staging.autoscaling.max_instances)
    prod = m.env_serving("prod")
    same = staging.instance_type == prod.instance_type and not m.is_remote("prod")
    extra = 2 * preflight.largest_fleet(m, "prod") if same else 0
    assert home.endpoint[staging.instance_type] == 2 * fleet + extra
    assert home.serverless_concurrency == 0


@pytest.mark.parametrize("example", ALL_BATCH)
def test_a_batch_environment_counts_its_runs_jobs_and_hook_not_an_endpoint(example: str) -> None:
    """No endpoint: the transform instances of a scheduled run beside a release's sample run
    (with its reference job in staging when prod scores in batch too), each run's prepare job
    on the environment's instance type, its batch_run hook; monitored as an endpoint is."""
    [m] = manifests_of(example)
    plans = preflight.plan([m])
    want = {key: (Counter[str](), Counter[str](), 0) for key in plans}
    for key in plans:
        transform, processing, hooks = want[key]
        if key == preflight.home(m):
            processing[m.model.processing_instance_type] += 1
            hooks += len(preflight.HOME_HOOKS)
        for env in ENV_NAMES:
            serving = m.env_serving(env)
            if (m.environment(env).account, m.environment(env).region) != key:
                continue
            sides = 2 if env == "staging" and m.is_batch("prod") else 1
            transform[serving.instance_type] += serving.instance_count * (1 + sides)
            processing[serving.instance_type] += preflight.BATCH_RUNS_AT_ONCE
            processing[preflight.MONITOR_INSTANCE] += preflight.monitoring_jobs(m)
            hooks += len(preflight.BATCH_HOOKS) + len(preflight.ENV_HOOKS)
        want[key] = (transform, processing, hooks)
    for key, p in plans.items():
        transform, processing, hooks = want[key]
        assert (p.endpoint, p.serverless_concurrency, p.model_monitor) == ({}, 0, [])
        assert (p.transform, p.processing, p.hooks) == (transform, processing, hooks)
        assert {f"{kind} for transform job usage" for kind in transform} <= (
            preflight.wanted_quotas(p)
        )


# --- an account that breaks one check -------------------------------------------------------


def delete_bootstrap(world: World) -> None:
    account, region = home_key(world)
    world.client(account, "ssm", region).delete_parameter(Name=preflight.BOOTSTRAP_PARAMETER)


def old_bootstrap(world: World) -> None:
    account, region = home_key(world)
    world.client(account, "ssm", region).put_parameter(
        Name=preflight.BOOTSTRAP_PARAMETER, Value="5", Type="String", Overwrite=True
    )


def exec_role(world: World) -> tuple[Any, str]:
    account, region = home_key(world)
    return world.client(account, "iam", region), (
        f"cdk-{preflight.QUALIFIER}-cfn-exec-role-{account}-{region}"
    )


def admin_exec_role(world: World) -> None:
    """As `cdk bootstrap` does without --cloudformation-execution-policies (moto lacks AWS's
    AdministratorAccess unless told to load every managed policy: added by hand)."""
    iam, role = exec_role(world)
    admin = world.add_aws_managed_policy(
        home_key(world)[0],
        "AdministratorAccess",
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    )  # fmt: skip
    assert admin == preflight.ADMIN_POLICY
    iam.attach_role_policy(RoleName=role, PolicyArn=admin)


def no_exec_role(world: World) -> None:
    iam, role = exec_role(world)
    account = home_key(world)[0]
    iam.detach_role_policy(
        RoleName=role, PolicyArn=f"arn:aws:iam::{account}:policy/{preflight.EXEC_POLICY}"
    )
    iam.delete_role(RoleName=role)


def new_account_lambda_limit(world: World) -> None:
    world.lambda_limits[home_key(world)] = (10, 10)


def few_unreserved(world: World) -> None:
    world.lambda_limits[home_key(world)] = (1000, 105)


def quota(use: str, value: float, where: Callable[[World], tuple[str, str]] = home_key) -> Any:
    def breaks(world: World) -> None:
        key = where(world)
        names = [n for n in world.applied[key] if n.endswith(preflight.QUOTA_USES[use])]
        world.applied[key][names[0]] = value

    return breaks


def transform_one_short(world: World) -> None:
    key = next(k for k in (home_key(world), prod_key(world)) if world.plans[k].transform)
    name = next(n for n in world.applied[key] if n.endswith("transform job usage"))
    world.applied[key][name] = world.need(key, name) - 1


def endpoint_key(world: World) -> tuple[str, str]:
    """The first account and region with an endpoint on instances (home, unless staging is
    serverless)."""
    return next(k for k in (home_key(world), prod_key(world)) if world.plans[k].endpoint)


def endpoint_one_short(world: World) -> None:
    key = endpoint_key(world)
    name = next(n for n in world.applied[key] if n.endswith("endpoint usage"))
    world.applied[key][name] = world.need(key, name) - 1


def instance_not_offered(world: World) -> None:
    key = endpoint_key(world)
    name = next(n for n in world.applied[key] if n.endswith("endpoint usage"))
    del world.applied[key][name]  # nor among the defaults: not offered in the region


def serverless_one_short(world: World) -> None:
    key = home_key(world)
    need = world.need(key, preflight.SERVERLESS_QUOTA)
    world.applied[key][preflight.SERVERLESS_QUOTA] = need - 1


def serverless_not_offered(world: World) -> None:
    del world.applied[home_key(world)][preflight.SERVERLESS_QUOTA]


def few_dpus(world: World) -> None:
    world.glue[home_key(world)][preflight.GLUE_DPUS[0]] = 1


def image_gone(world: World) -> None:
    account, region = home_key(world)
    uri = preflight.product_images(world.manifests[0])[0]
    parts = preflight.IMAGE_URI.match(uri)
    assert parts is not None
    world.client(account, "ecr", region).batch_delete_image(
        repositoryName=parts["repository"], imageIds=[{"imageTag": parts["tag"]}]
    )


PLACEHOLDER = "generated-by-cloudformation-9f2"


def placeholder_webhook(world: World) -> None:
    account, region = home_key(world)
    world.client(account, "secretsmanager", region).put_secret_value(
        SecretId=Names.of(world.manifests[0]).secret("SlackWebhook"), SecretString=PLACEHOLDER
    )


def signing_without_team(world: World) -> None:
    account, region = home_key(world)
    world.client(account, "secretsmanager", region).put_secret_value(
        SecretId=Names.of(world.manifests[0]).secret("SlackSigningSecret"),
        SecretString=json.dumps({"signing_secret": PLACEHOLDER}),
    )


def secrets_not_created(world: World) -> None:
    account, region = home_key(world)
    client = world.client(account, "secretsmanager", region)
    for secret in ("SlackWebhook", "SlackSigningSecret"):
        client.delete_secret(
            SecretId=Names.of(world.manifests[0]).secret(secret), ForceDeleteWithoutRecovery=True
        )


def prod_distrusts_home(world: World) -> None:
    account, region = prod_key(world)
    world.client(account, "iam", region).update_assume_role_policy(
        RoleName=f"cdk-{preflight.QUALIFIER}-deploy-role-{account}-{region}",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}],
            }
        ),
    )  # fmt: skip


def lookup_role_refused(world: World) -> None:
    home_account = home_key(world)[0]

    def refuse(account: str, region: str, service: str, client: Any) -> None:
        if (account, service) == (home_account, "sts"):
            stubber = Stubber(client)
            stubber.add_client_error(
                "assume_role", "AccessDenied", "not authorized to perform: sts:AssumeRole"
            )
            stubber.activate()

    world.hooks.append(refuse)


def dangling_trust(world: World) -> None:
    account, region = prod_key(world)
    m = world.manifests[0]
    world.client(account, "iam", region).create_role(
        RoleName=Names.of(m).deploy_role("prod"),
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )


def deploy_trusted_roles(world: World) -> None:
    """Every role another account trusts by name, created by its stack (as make deploy does)."""
    stacks: dict[tuple[str, str, str], list[str]] = {}
    for env, name, stack, _ in preflight.trusted_roles(world.manifests[0]):
        account, region = prod_key(world) if env == "prod" else home_key(world)
        stacks.setdefault((account, region, stack), []).append(name)
    for (account, region, stack), names in stacks.items():
        world.deploy_roles(account, region, stack, names)


def trusted_role_recreated(world: World) -> None:
    """The prod model role, deleted and created again by hand after its stack made it: the
    home bucket and key policies still let it in by name."""
    deploy_trusted_roles(world)
    account, region = prod_key(world)
    m = world.manifests[0]
    name = Names.of(m).model_role("prod")
    world.age_stack(account, region, Names.of(m, "prod").serving_stack(), hours=24)
    iam = world.client(account, "iam", region)
    iam.delete_role(RoleName=name)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Statement": []}))


def trusted_role_by_hand(world: World) -> None:
    """The home deployer role, created by hand before the delivery stack exists: prod's deploy
    role (once deployed) trusts it by name."""
    account, region = home_key(world)
    world.client(account, "iam", region).create_role(
        RoleName=Names.of(world.manifests[0]).deployer_role(),
        AssumeRolePolicyDocument=json.dumps({"Statement": []}),
    )


@dataclass(frozen=True)
class Broken:
    breaks: Callable[[World], None]
    check: str
    status: str
    fix: str
    products: tuple[str, ...] = tuple(PRODUCTS)


BROKEN = {
    "not bootstrapped": Broken(delete_bootstrap, "cdk-bootstrap", "FAIL", "npx cdk bootstrap"),
    "old bootstrap": Broken(old_bootstrap, "cdk-bootstrap", "FAIL", "bootstrap again"),
    "admin exec role": Broken(
        admin_exec_role, "cfn-exec-role", "WARN", "--cloudformation-execution-policies"
    ),
    "no exec role": Broken(no_exec_role, "cfn-exec-role", "FAIL", "npx cdk bootstrap"),
    "new account's Lambda limit": Broken(
        new_account_lambda_limit, "lambda-concurrency", "FAIL", "L-B99A9384", ("delivery-time",)
    ),
    "no Lambda left for the hooks": Broken(
        lambda w: w.lambda_limits.update({home_key(w): (5, 5)}),
        "lambda-concurrency",
        "FAIL",
        "L-B99A9384",
        ("fraud-detection",),
    ),
    "unreserved taken by others": Broken(
        few_unreserved,
        "lambda-concurrency",
        "FAIL",
        "delete-function-concurrency",
        ("delivery-time",),
    ),
    "endpoint quota below the blue/green peak": Broken(
        endpoint_one_short,
        "endpoint-quota",
        "FAIL",
        "request-service-quota-increase",
        ON_INSTANCES,
    ),
    "transform quota below a scheduled and a sample run": Broken(
        transform_one_short, "transform-quota", "FAIL", "request-service-quota-increase", BATCH
    ),
    "prod endpoint quota": Broken(
        quota("endpoint", 0, prod_key),
        "endpoint-quota",
        "FAIL",
        "--region us-east-1",
        ("delivery-time",),
    ),
    "instance type not offered": Broken(
        instance_not_offered, "endpoint-quota", "FAIL", "another instance type", ON_INSTANCES
    ),
    "serverless concurrency below the blue/green peak": Broken(
        serverless_one_short,
        "serverless-quota",
        "FAIL",
        "request-service-quota-increase",
        ("delivery-time",),
    ),
    "serverless not offered": Broken(
        serverless_not_offered, "serverless-quota", "FAIL", "another mode", ("delivery-time",)
    ),
    "no training instances": Broken(
        quota("training", 0), "training-quota", "FAIL", "request-service-quota-increase"
    ),
    "no processing instances": Broken(
        quota("processing", 0), "processing-quota", "FAIL", "request-service-quota-increase"
    ),
    "Glue DPUs": Broken(few_dpus, "glue-quota", "FAIL", "L-08F3B322"),
    "image not published": Broken(image_gone, "sagemaker-images", "FAIL", "framework_version"),
    "webhook placeholder": Broken(placeholder_webhook, "slack-secrets", "FAIL", "put-secret-value"),
    "signing secret without team": Broken(
        signing_without_team, "slack-secrets", "FAIL", "put-secret-value"
    ),
    "secrets not created yet": Broken(
        secrets_not_created, "slack-secrets", "WARN", "run preflight again"
    ),
    "prod does not trust home": Broken(
        prod_distrusts_home,
        "prod-trusts-home",
        "FAIL",
        "--trust 111111111111",
        ("delivery-time",),
    ),
    "home may not read prod": Broken(
        lookup_role_refused,
        "prod-trusts-home",
        "FAIL",
        "--trust 111111111111",
        ("delivery-time",),
    ),
    "trust names a missing role": Broken(
        dangling_trust, "trust-by-name", "WARN", "make deploy", ("delivery-time",)
    ),
    "trusted role created again by hand": Broken(
        trusted_role_recreated,
        "trusted-role-origin",
        "WARN",
        "CloudTrail CreateRole",
        ("delivery-time",),
    ),
    "trusted role made outside its stack": Broken(
        trusted_role_by_hand,
        "trusted-role-origin",
        "WARN",
        "deploy its stack again",
        ("delivery-time",),
    ),
}
CASES = [
    pytest.param(example, name, id=f"{example}: {name}")
    for example in PRODUCTS  # one product's cases in a row: they find its accounts kept
    for name, broken in BROKEN.items()
    if example in broken.products
]


@pytest.mark.parametrize(("example", "name"), CASES)
def test_an_account_that_breaks_a_check_fails_it_with_its_fix(example: str, name: str) -> None:
    broken = BROKEN[name]
    run = run_preflight(manifests_of(example), broken.breaks)
    assert run.errors == []
    assert list(run.not_passing()) == [broken.check], "\n".join(run.lines)
    line = run.not_passing()[broken.check]
    assert line.startswith(f"{broken.status} {broken.check} ")
    _, _, fix = line.partition(". Fix: ")
    assert broken.fix in fix, line
    assert run.code == (1 if broken.status == "FAIL" else 0)
    assert PLACEHOLDER not in "\n".join(run.lines)  # a secret's value is never printed


def test_trusted_roles_their_stacks_created_pass() -> None:
    run = run_preflight(manifests_of("delivery-time"), deploy_trusted_roles)
    assert run.not_passing() == {}, "\n".join(run.lines)
    line = run.line("trusted-role-origin")
    assert f"{len(preflight.trusted_roles(run.world.manifests[0]))} trusted role(s)" in line
    assert "created by its stack" in line


def test_a_recreated_trusted_role_is_named_with_its_dates() -> None:
    run = run_preflight(manifests_of("delivery-time"), trusted_role_recreated)
    line = run.line("trusted-role-origin")
    name = Names.of(run.world.manifests[0]).model_role("prod")
    assert line.startswith("WARN trusted-role-origin [delivery-time]: ")
    # moto dates every resource of a stack by the stack's creation: the role beside it in the
    # aged stack shows too.
    assert f"{name} (222222222222), trusted by home's artifact bucket and key, was created" in line
    assert "after mlgate-delivery-time-prod-serving last recorded it" in line
    assert "inherited the trust" in line


def test_the_admin_exec_role_warning_names_a_narrow_policy_and_a_boundary() -> None:
    run = run_preflight(manifests_of("fraud-detection"), admin_exec_role)
    line = run.line("cfn-exec-role")
    assert "whoever may pass that role to CloudFormation is an administrator" in line
    assert f"--custom-permissions-boundary {preflight.EXEC_BOUNDARY}" in line


def test_a_prod_account_home_cannot_read_is_one_line_not_a_check_each() -> None:
    run = run_preflight(manifests_of("delivery-time"), lookup_role_refused)
    assert not any("222222222222 us-east-1" in line for line in run.lines)
    assert "could not assume arn:aws:iam::222222222222:role/cdk-hnb659fds-lookup-role" in (
        run.line("prod-trusts-home")
    )


def test_an_instance_type_among_the_defaults_only_passes() -> None:
    def default_only(world: World) -> None:
        key = home_key(world)
        name = next(n for n in world.applied[key] if n.endswith("endpoint usage"))
        world.defaults[key][name] = world.applied[key].pop(name)

    run = run_preflight(manifests_of("fraud-detection"), default_only)
    assert run.code == 0, "\n".join(run.lines)
    assert any(call[2] == "ListAWSDefaultServiceQuotas" for call in run.world.calls)


def test_a_deployed_gate_callback_holds_its_reservation_already() -> None:
    """Its reservation is out of the unreserved count already: no second subtraction."""

    def deployed(world: World) -> None:
        account, region = home_key(world)
        world.client(account, "cloudformation", region).create_stack(
            StackName=Names.of(world.manifests[0]).stack("delivery"),
            TemplateBody=json.dumps(
                {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
            ),
        )
        world.lambda_limits[(account, region)] = (1000, 100)

    run = run_preflight(manifests_of("delivery-time"), deployed)
    assert run.line("lambda-concurrency").startswith("PASS"), run.line("lambda-concurrency")
    undeployed = run_preflight(
        manifests_of("delivery-time"),
        lambda w: w.lambda_limits.update({home_key(w): (1000, 100)}),
    )
    assert undeployed.line("lambda-concurrency").startswith("FAIL")


# --- the double keeps only accounts a test left as seeded ---------------------------------


def test_a_world_a_test_changed_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes run_preflight's kept accounts safe: a world whose moto accounts a test
    changed, or that another mock_aws() reset, is seeded again; one whose test changed only
    the stubbed answers is kept."""
    from moto import mock_aws

    manifests = manifests_of("fraud-detection")
    try:
        run_preflight(manifests)
        seeding = KEPT.sentinel
        assert run_preflight(manifests, few_dpus).code == 1  # stubbed answers only: kept
        assert run_preflight(manifests, delete_bootstrap).code == 1  # moto changed
        assert KEPT.sentinel == seeding  # the two found the accounts kept
        assert run_preflight(manifests).code == 0
        assert KEPT.sentinel != seeding  # seeded again
        seeding = KEPT.sentinel
        with mock_aws():  # as other tests' mocks start: every backend reset
            pass
        assert run_preflight(manifests).code == 0
        assert KEPT.sentinel != seeding  # seeded again
        # The broken forms: a double that missed a reset, or kept a changed world, hands the
        # next test an account it did not seed.
        with mock_aws():
            pass
        with monkeypatch.context() as patch:
            patch.setattr(World, "sentinel_found", lambda self: True)
            assert run_preflight(manifests).not_passing()["cdk-bootstrap"].startswith("FAIL")
        KEPT.seeded = None
        with monkeypatch.context() as patch:
            patch.setattr(World, "left_as_seeded", property(lambda self: True))
            run_preflight(manifests, delete_bootstrap)
            assert list(run_preflight(manifests).not_passing()) == ["cdk-bootstrap"]
    finally:
        KEPT.seeded = None  # whatever this test left, the next world seeds afresh


# --- monitoring.engine: model-monitor ------------------------------------------------------


@pytest.mark.parametrize("example", MONITORABLE)
def test_model_monitor_passes_in_an_account_that_has_it(example: str) -> None:
    run = run_preflight(manifests_of(example, "model-monitor"))
    assert run.code == 0, "\n".join(run.lines)
    assert run.line("model-monitor").startswith("PASS")
    assert "sagemaker-model-monitor-analyzer" in run.line("sagemaker-images")


def monitored_key(world: World) -> tuple[str, str]:
    """The first account and region with a monitored environment (a serverless one is not)."""
    return next(k for k in (home_key(world), prod_key(world)) if world.plans[k].model_monitor)


@pytest.mark.parametrize("example", MONITORABLE)
def test_model_monitor_refused_fails_and_an_account_without_it_warns(example: str) -> None:
    def refused(world: World) -> None:
        world.monitoring[monitored_key(world)] = "AccessDeniedException"

    run = run_preflight(manifests_of(example, "model-monitor"), refused)
    assert run.code == 1
    assert list(run.not_passing()) == ["model-monitor"]
    assert "monitoring.engine: evidently" in run.line("model-monitor").partition("Fix: ")[2]

    def never_used(world: World) -> None:
        world.monitoring[monitored_key(world)] = {"MonitoringScheduleSummaries": []}

    run = run_preflight(manifests_of(example, "model-monitor"), never_used)
    assert run.code == 0
    assert run.line("model-monitor").startswith("WARN")
    assert preflight.MODEL_MONITOR_PAGE in run.line("model-monitor")


# --- credentials: one line, no traceback, no check ------------------------------------------


def test_no_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlgate.cli.commands import main

    for variable in list(os.environ):
        if variable.startswith("AWS_") and variable not in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(["preflight", str(EXAMPLES / "fraud-detection")])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("no AWS credentials: "), err
    assert "Traceback" not in err


def test_credentials_of_another_account_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from moto import mock_aws

    from mlgate.cli.commands import main

    with mock_aws():  # moto's callers are account 123456789012
        code = main(["preflight", str(EXAMPLES / "delivery-time")])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert "123456789012" in err
    assert "111111111111 (delivery-time)" in err
    assert "Traceback" not in err


def test_refused_credentials_are_one_line() -> None:
    def expired(account: str, region: str, service: str, client: Any) -> None:
        if service == "sts" and account == "caller":
            stubber = Stubber(client)
            stubber.add_client_error("get_caller_identity", "ExpiredToken", "expired")
            stubber.activate()

    run = run_preflight(manifests_of("fraud-detection"), lambda w: w.hooks.append(expired))
    assert run.code == 2
    assert run.lines == []
    assert len(run.errors) == 1
    assert "ExpiredToken" in run.errors[0]


def test_a_profile_of_another_account_for_prod_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[not-prod]\naws_access_key_id = AKIAX\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    run = run_preflight(manifests_of("delivery-time"), profiles={"222222222222": "not-prod"})
    assert run.code == 2
    assert run.lines == []
    assert run.errors == [
        "profile not-prod is for account 123456789012, not 222222222222: name the profile of "
        "222222222222"
    ]


def test_make_preflight_with_the_double_reads_no_network_in_a_fresh_process() -> None:
    """As `make preflight PREFLIGHT=double` runs it, for every example product at once: a fresh
    interpreter, where nothing imported moto before the double (a boto3 session made before
    moto has no moto handler, and its clients reached AWS). A socket that connects anywhere
    fails the run; every check prints its line, one run (and summary) per home account."""
    import subprocess
    import sys

    code = (
        "import socket, sys\n"
        "def refuse(self, address): raise OSError(f'network use: {address}')\n"
        "socket.socket.connect = refuse\n"
        "from mlgate.cli.commands import main\n"
        f"sys.exit(main(['preflight', {str(EXAMPLES)!r}, '--double']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-1500:] + run.stderr[-1500:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("TEST DOUBLE: ")
    assert "no real AWS account was read" in lines[0]
    summaries = [line for line in lines if line.startswith("preflight: ")]
    homes = {preflight.home(m)[0] for m in manifests_of(None)}
    assert len(summaries) == len(homes) > 1, run.stdout
    assert all(f"read as arn:aws:sts::{a}:" in "\n".join(summaries) for a in homes), summaries
    assert all(LINE.match(line) for line in lines[1:] if line not in summaries), run.stdout
    assert lines[-1].startswith("preflight: ")


# --- what preflight reads from the code and from cdk.out ------------------------------------


def test_bootstrap_version_comes_from_the_synthesized_templates(tmp_path: Path) -> None:
    assert preflight.required_bootstrap(tmp_path, ["fraud-detection"])[0] == (
        preflight.MIN_BOOTSTRAP_VERSION
    )
    rule = {"Assertions": [{"Assert": {"Fn::Not": [{"Fn::Contains": [
        [str(v) for v in range(1, 10)], {"Ref": "BootstrapVersion"}]}]}}]}  # fmt: skip
    template = {"Rules": {"CheckBootstrapVersion": rule}, "Resources": {}}
    (tmp_path / "mlgate-fraud-detection-data.template.json").write_text(json.dumps(template))
    version, source = preflight.required_bootstrap(tmp_path, ["fraud-detection"])
    assert version == 10
    assert str(tmp_path) in source
    assert preflight.required_bootstrap(tmp_path, ["delivery-time"])[0] == 6


def test_the_minimum_bootstrap_version_is_what_the_templates_check(synth: Any) -> None:
    """The suite's own synthesis of every example (a fresh clone has no cdk.out)."""
    templates = synth.template_files
    assert templates
    names = [
        m.product.name
        for m in load_manifests(EXAMPLES)
        if any(t.name.startswith(f"mlgate-{m.product.name}-") for t in templates)
    ]
    assert names
    found = preflight.required_bootstrap(synth.outdir, names)
    assert found[0] == preflight.MIN_BOOTSTRAP_VERSION


def test_the_hooks_counted_are_the_hooks_mlgate_deploys() -> None:
    hooks = {p.parent.name for p in (ROOT / "mlgate" / "runtime" / "hooks").glob("*/handler.py")}
    counted = (preflight.HOME_HOOKS, preflight.ENV_HOOKS, preflight.BATCH_HOOKS)
    assert set().union(*counted) == hooks


def test_the_monitoring_instance_is_the_monitoring_jobs() -> None:
    for path, name in (("evidently.py", "INSTANCE"), ("model_monitor.py", "MONITOR_INSTANCE")):
        text = (ROOT / "mlgate" / "infra" / "constructs" / path).read_text()
        found = re.search(rf'^{name} = "([^"]+)"', text, re.MULTILINE)
        assert found, path
        assert found[1] == preflight.MONITOR_INSTANCE, path


def test_trust_policies_name_the_account() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                          "Principal": {"AWS": "arn:aws:iam::111111111111:root"}}]}  # fmt: skip
    assert preflight.trusts(doc, "111111111111")
    assert not preflight.trusts(doc, "222222222222")
    assert preflight.trusts(json.dumps(doc), "111111111111")
    deny = {"Statement": {**doc["Statement"][0], "Effect": "Deny"}}
    assert not preflight.trusts(deny, "111111111111")


# --- the support plan: Trusted Advisor's events (issue 33) ----------------------------------


@pytest.mark.parametrize("example", PRODUCTS)
def test_a_basic_support_plan_warns_naming_the_plan_needed(example: str) -> None:
    from mlgate.infra.constructs.cost import SUPPORT_PLANS

    def basic(world: World) -> None:
        for account in world.support:
            world.support[account] = "SubscriptionRequiredException"

    # A healthy account's support-plan line (once per account, whatever its regions) passes:
    # test_healthy_accounts_pass_every_check. The broken form: an account on Basic support
    # warns, names the plan, exits 0 (a warning).
    run = run_preflight(manifests_of(example), basic)
    assert run.code == 0
    warned = run.not_passing()["support-plan"]
    assert warned.startswith("WARN"), warned
    assert SUPPORT_PLANS in warned, warned
    assert "Amazon S3 Bucket Permissions" in warned  # the core check that still runs
    support_calls = [c for c in run.world.calls if c[1] == "support"]
    assert {c[2] for c in support_calls} == {"DescribeTrustedAdvisorChecks"}


def test_another_support_error_fails_the_check() -> None:
    def denied(world: World) -> None:
        for account in world.support:
            world.support[account] = "AccessDeniedException"

    run = run_preflight(manifests_of("fraud-detection"), denied)
    assert run.code == 1
    assert run.not_passing()["support-plan"].startswith("FAIL")
