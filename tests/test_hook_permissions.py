"""Every hook's role allows exactly the AWS calls its handler documents, in the synthesized
templates: nothing it calls is missing, nothing it never calls is granted.

A hook that acts in another account documents those calls after "Under the assumed role when
one is set:"; its own role needs them only where it has no role to assume, and the role it
assumes (in the other account's template) must allow exactly them.

A release check judges environments by their serving mode: a batch environment has no
endpoint, so the hook calls no endpoint action for it (ENDPOINT_ACTIONS), and the calls it
makes there instead are documented in a sentence of their own that starts "In a batch
environment" (or "In a batch staging"), to the end of its part of the list. A hook's calls are
those of the modes of the environments it checks (RELEASE_CHECKS), each template's own
environment for a stack of one environment."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import APPS, ROOT

LAMBDAS = ROOT / "mlgate" / "runtime" / "hooks"
# Granted by the platform around every hook, not called by the handler's code: logs, keys,
# and the on-failure destination Lambda itself sends a failed event to.
AMBIENT = re.compile(r"^(logs|kms|xray):|^sqs:(SendMessage|GetQueueAttributes|GetQueueUrl)$")
ASSUMED = "Under the assumed role when one is set:"
HOOKS = {
    "release", "deployer", "deploy_verifier", "quality_gate", "gate_notifier",
    "gate_callback", "pipeline_starter", "drift_responder", "rollback", "batch_run",
}  # fmt: skip
BATCH_CALLS = re.compile(r"In a batch (environment|staging)")
ENDPOINT_ACTIONS = re.compile(r"^sagemaker:(\w*Endpoint\w*|DescribeModel|\w*InferenceComponents?)$")
"""What acts on an endpoint, its config, its model or its inference component."""
RELEASE_CHECKS = {"deploy_verifier": ("staging", "prod"), "quality_gate": ("staging",)}
"""The environments whose serving mode decides a release check's calls (the quality gate
judges staging)."""
ENDPOINT, BATCH = "endpoint", "batch"
BOTH = frozenset({ENDPOINT, BATCH})


def _calls(text: str) -> tuple[set[str], set[str]]:
    required, exempt = set(), set()
    for match in re.finditer(r"([a-z0-9-]+:[A-Za-z]+)(\s*\(([^)]*)\))?", text):
        action, note = match.group(1), match.group(3) or ""
        (exempt if ("artifact" in note or "optional" in note) else required).add(action)
    return required, exempt


def _by_mode(text: str, modes: frozenset[str]) -> tuple[set[str], set[str]]:
    """The calls of a part of the list made in environments of `modes`."""
    found = BATCH_CALLS.search(text)
    served, batch = (text[: found.start()], text[found.start() :]) if found else (text, "")
    required, exempt = _calls(served)
    if ENDPOINT not in modes:
        required = {a for a in required if not ENDPOINT_ACTIONS.match(a)}
        exempt = {a for a in exempt if not ENDPOINT_ACTIONS.match(a)}
    if BATCH in modes:
        more, optional = _calls(batch)
        required, exempt = required | more, exempt | optional
    return required, exempt


def documented_calls(
    hook: str, modes: frozenset[str] = BOTH
) -> tuple[set[str], set[str], set[str]]:
    """(calls the hook's role must allow, calls it makes with other credentials or optionally
    (its own or under an assumed role: an async endpoint's, say), calls it always makes under
    the role it assumes when one is configured), for environments served in `modes`."""
    doc = ast.get_docstring(ast.parse((LAMBDAS / hook / "handler.py").read_text())) or ""
    own, _, assumed = doc.split("AWS calls:", 1)[1].partition(ASSUMED)
    required, exempt = _by_mode(own, modes)
    always, optional = _by_mode(assumed, modes)
    return required, exempt | optional, always


def policy_actions(resources: dict[str, Any], role: str) -> set[str]:
    """Actions the IAM policies attached to the role with this logical id allow."""
    allowed: set[str] = set()
    for policy in resources.values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                allowed.update([actions] if isinstance(actions, str) else actions)
    return allowed


def functions(outdir: Path) -> list[tuple[str, str, set[str]]]:
    """(template, hook, actions allowed to its role) for every mlgate hook."""
    found = []
    for path in sorted(outdir.glob("*.template.json")):
        resources: dict[str, Any] = json.loads(path.read_text())["Resources"]
        for fn in resources.values():
            if fn["Type"] != "AWS::Lambda::Function":
                continue
            handler = fn["Properties"].get("Handler", "")
            if not handler.endswith(".handler.handler"):
                continue
            role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
            found.append((path.name, handler.split(".")[0], policy_actions(resources, role)))
    return found


def named_roles(outdir: Path) -> dict[str, set[str]]:
    """Role name -> actions it allows, for every role with a fixed name."""
    found = {}
    for path in sorted(outdir.glob("*.template.json")):
        resources: dict[str, Any] = json.loads(path.read_text())["Resources"]
        for logical_id, role in resources.items():
            name = role["Properties"].get("RoleName") if role["Type"] == "AWS::IAM::Role" else None
            if isinstance(name, str):
                found[name] = policy_actions(resources, logical_id)
    return found


def mode_of(manifest: Any, env: str) -> str:
    return BATCH if manifest.is_batch(env) else ENDPOINT


def modes_of(manifests: list[Any], template: str, hook: str) -> frozenset[str]:
    """The serving modes `hook` of `template` acts on: its stack's environment's, or for a
    product-wide stack those of the environments the hook checks (every mode for a hook that
    judges none)."""
    manifest = max(
        (m for m in manifests if template.startswith(f"mlgate-{m.product.name}-")),
        key=lambda m: len(m.product.name),
    )
    rest = template.removeprefix(f"mlgate-{manifest.product.name}-")
    for env in ("staging", "prod"):
        if rest.startswith(f"{env}-"):
            return frozenset({mode_of(manifest, env)})
    if hook not in RELEASE_CHECKS:
        return BOTH
    return frozenset(mode_of(manifest, env) for env in RELEASE_CHECKS[hook])


def compare(template: str, hook: str, allowed: set[str], modes: frozenset[str] = BOTH) -> list[str]:
    required, exempt, assumed = documented_calls(hook, modes)
    granted = {a for a in allowed if not AMBIENT.match(a)}
    # With a role to assume, the calls under it may or may not be the hook's own (both, when
    # one environment is local and another remote); without one, they are its own.
    (exempt if "sts:AssumeRole" in granted else required).update(assumed)
    problems = []
    if missing := required - granted:
        problems.append(f"{template} {hook}: calls {sorted(missing)} but may not")
    if extra := granted - required - exempt:
        problems.append(f"{template} {hook}: may {sorted(extra)} but never calls it")
    if wild := sorted(a for a in granted if a.endswith("*")):
        problems.append(f"{template} {hook}: wildcard actions {wild}")
    return problems


def check(outdir: Path, manifests: list[Any]) -> list[str]:
    hooks = functions(outdir)
    assert {h for _, h, _ in hooks} >= HOOKS
    return [
        p
        for template, hook, allowed in hooks
        for p in compare(template, hook, allowed, modes_of(manifests, template, hook))
    ]


def test_every_hook_role_allows_exactly_what_the_hook_calls(synth: Any) -> None:
    assert check(synth.outdir, [p.manifest for p in synth.products]) == []


def test_with_prod_elsewhere_hooks_and_the_roles_they_assume_allow_exactly_their_calls(
    synth: Any, cross_account: Any
) -> None:
    from mlgate.infra.naming import Names

    assert check(cross_account.outdir, [p.manifest for p in synth.products]) == []
    manifest = cross_account.products[0].manifest
    roles = named_roles(cross_account.outdir)
    prod = frozenset({mode_of(manifest, "prod")})
    for hook, role in (
        ("deployer", Names.of(manifest).deploy_role("prod")),
        ("deploy_verifier", Names.of(manifest).verify_role("prod")),
        ("drift_responder", Names.of(manifest).retrain_role("prod")),
    ):
        _, optional, always = documented_calls(hook, prod)
        assert always <= roles[role] <= always | optional, (hook, role)


def test_a_release_check_s_calls_follow_the_serving_mode() -> None:
    """A batch environment's checks call no endpoint, and an endpoint's start no batch run:
    the deploy verifier's role judged for the wrong mode is named."""
    endpoint = frozenset({ENDPOINT})
    batch = frozenset({BATCH})
    served, _, served_assumed = documented_calls("deploy_verifier", endpoint)
    _, _, scored_assumed = documented_calls("deploy_verifier", batch)
    assert "sagemaker:InvokeEndpoint" in served_assumed - scored_assumed
    assert "lambda:InvokeFunction" in scored_assumed - served_assumed
    both = documented_calls("deploy_verifier")[2]
    assert both == served_assumed | scored_assumed
    as_endpoint = served | served_assumed
    assert compare("t", "deploy_verifier", as_endpoint, endpoint) == []
    assert compare("t", "deploy_verifier", as_endpoint, batch) == [
        f"t deploy_verifier: calls {sorted(scored_assumed - served_assumed)} but may not",
        f"t deploy_verifier: may {sorted(served_assumed - scored_assumed)} but never calls it",
    ]
    # The gate judges staging only: a product whose prod alone scores in batch is endpoint.
    assert modes_of([_Named("p", prod=BATCH)], "mlgate-p-delivery.template.json",
                    "quality_gate") == endpoint  # fmt: skip
    assert modes_of([_Named("p", prod=BATCH)], "mlgate-p-prod-serving.template.json",
                    "drift_responder") == batch  # fmt: skip


class _Named:
    """A manifest as modes_of reads it: its product's name and which environments score in
    batch."""

    def __init__(self, name: str, **modes: str) -> None:
        self.product = type("Product", (), {"name": name})()
        self._modes = modes

    def is_batch(self, env: str) -> bool:
        return self._modes.get(env) == BATCH


def test_the_check_notices_a_missing_an_extra_and_a_wildcard_grant() -> None:
    required, _, _ = documented_calls("gate_callback")
    assert compare("t", "gate_callback", required) == []
    assert compare("t", "gate_callback", required - {"codepipeline:PutApprovalResult"}) == [
        "t gate_callback: calls ['codepipeline:PutApprovalResult'] but may not"
    ]
    assert compare("t", "gate_callback", required | {"s3:*"}) == [
        "t gate_callback: may ['s3:*'] but never calls it",
        "t gate_callback: wildcard actions ['s3:*']",
    ]


def test_calls_under_an_assumed_role_are_the_hooks_own_when_it_assumes_none() -> None:
    required, _, assumed = documented_calls("deploy_verifier")
    assert "sagemaker:InvokeEndpoint" in assumed
    assert compare("t", "deploy_verifier", required | assumed) == []
    assert compare("t", "deploy_verifier", required) == [
        f"t deploy_verifier: calls {sorted(assumed)} but may not"
    ]
    assert compare("t", "deploy_verifier", required | {"sts:AssumeRole"}) == []


# --- the release path reads and writes only its own release (issue 29, items 2 and 4) ---------

JOB_HOOKS = ("deployer", "deploy_verifier", "quality_gate")


def release_path_grants(app: Any) -> list[tuple[str, dict[str, str], list[dict[str, Any]]]]:
    """(hook, its environment, its role's statements) of every release-path hook."""
    found = []
    for function in app.resources("AWS::Lambda::Function"):
        props = function.props
        hook = str(props.get("Handler", "")).split(".")[0]
        if hook not in (*JOB_HOOKS, "release"):
            continue
        role = props["Role"]["Fn::GetAtt"][0]
        statements = [
            statement
            for policy in function.stack.resources.values()
            if policy["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        found.append((hook, props["Environment"]["Variables"], statements))
    return found


def resources_of(statements: list[dict[str, Any]], action: str) -> set[str]:
    """Every resource a statement allowing `action` names (as text)."""
    names: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        if action in ([actions] if isinstance(actions, str) else actions):
            given = statement["Resource"]
            names.update(json.dumps(r) if not isinstance(r, str) else r
                         for r in (given if isinstance(given, list) else [given]))  # fmt: skip
    return names


def release_path_problems(hook: str, env: dict[str, str], statements: list[Any]) -> list[str]:
    """What a release-path hook's role may reach beyond its own release: a job hook reads
    only its release pipeline's executions, release.json and its product's versions; the
    release hook reads only this product's training runs and writes only release.json and
    the released folder."""
    bucket, key = env.get("RELEASE_BUCKET", "?"), env.get("RELEASE_KEY", "release.json")
    release_json = f"arn:aws:s3:::{bucket}/{key}"
    packages = f":model-package/{env.get('MODEL_PACKAGE_GROUP', '?')}/*"
    problems = []
    if hook in JOB_HOOKS:
        wanted = {
            "codepipeline:GetPipelineExecution": lambda r: r.endswith(
                f":{env['RELEASE_PIPELINE']}"
            ),
            "s3:GetObjectVersion": lambda r: r == release_json,
            "sagemaker:DescribeModelPackage": lambda r: r.endswith(packages),
        }
        for name in ("RELEASE_PIPELINE", "RELEASE_BUCKET", "MODEL_PACKAGE_GROUP",
                     "ARTIFACT_BUCKET", "RELEASED_PREFIX"):  # fmt: skip
            if not env.get(name):
                problems.append(f"{hook}: no {name} in its environment")
    else:
        artifacts = f"arn:aws:s3:::{env.get('ARTIFACT_BUCKET', '?')}"
        wanted = {
            "s3:PutObject": lambda r: r in (release_json,
                                            f"{artifacts}/{env.get('RELEASED_PREFIX')}/*"),
            "s3:GetObject": lambda r: r == f"{artifacts}/{env.get('TRAINING_PREFIX')}/*",
            "sagemaker:DescribeModelPackage": lambda r: r.endswith(packages),
        }  # fmt: skip
    for action, allowed in wanted.items():
        granted = resources_of(statements, action)
        if not granted:
            problems.append(f"{hook}: may not {action}")
        problems += [f"{hook}: may {action} on {r}" for r in sorted(granted) if not allowed(r)]
    return problems


@pytest.mark.parametrize("app", APPS)
def test_release_path_hooks_reach_only_their_own_release(
    app: str, request: pytest.FixtureRequest
) -> None:
    hooks = release_path_grants(request.getfixturevalue(app))
    assert {hook for hook, _, _ in hooks} >= {"deployer", "deploy_verifier", "release"}
    assert [p for hook, env, statements in hooks
            for p in release_path_problems(hook, env, statements)] == []  # fmt: skip


def test_the_release_path_check_fails_on_the_broken_forms() -> None:
    """A release.json read from any bucket, any pipeline's executions, any group's versions,
    or a release hook writing anywhere in the artifact bucket, is named."""
    env = {"RELEASE_PIPELINE": "mlgate-p-release", "RELEASE_BUCKET": "rel", "RELEASE_KEY":
           "release.json", "MODEL_PACKAGE_GROUP": "mlgate-p", "ARTIFACT_BUCKET": "art",
           "RELEASED_PREFIX": "released/p", "TRAINING_PREFIX": "training/p"}  # fmt: skip

    def allow(action: str, resource: str) -> dict[str, Any]:
        return {"Action": action, "Effect": "Allow", "Resource": resource}

    good = [
        allow("codepipeline:GetPipelineExecution", "arn:aws:codepipeline:r:1:mlgate-p-release"),
        allow("s3:GetObjectVersion", "arn:aws:s3:::rel/release.json"),
        allow("sagemaker:DescribeModelPackage", "arn:aws:sagemaker:r:1:model-package/mlgate-p/*"),
    ]
    assert release_path_problems("deployer", env, good) == []
    broken = [
        allow("codepipeline:GetPipelineExecution", "*"),
        allow("s3:GetObjectVersion", "arn:aws:s3:::*/*"),
        good[2],
        allow("sagemaker:DescribeModelPackage", "arn:aws:sagemaker:r:1:model-package/*"),
    ]
    assert release_path_problems("deployer", env, broken) == [
        "deployer: may codepipeline:GetPipelineExecution on *",
        "deployer: may s3:GetObjectVersion on arn:aws:s3:::*/*",
        "deployer: may sagemaker:DescribeModelPackage on arn:aws:sagemaker:r:1:model-package/*",
    ]  # fmt: skip
    assert release_path_problems("deployer", {**env, "RELEASE_BUCKET": ""}, good)[0] == (
        "deployer: no RELEASE_BUCKET in its environment"
    )
    release = [allow("s3:PutObject", "arn:aws:s3:::art/*"),
               allow("s3:GetObject", "arn:aws:s3:::art/training/p/*"), good[2]]  # fmt: skip
    assert release_path_problems("release", env, release) == [
        "release: may s3:PutObject on arn:aws:s3:::art/*"
    ]


# --- an asynchronous endpoint's release path (issue 32) -----------------------------------------

ASYNC_CALLS = {"sagemaker:InvokeEndpointAsync", "s3:PutObject"}


def async_grant_problems(mode: str, env: str, statements: list[dict[str, Any]]) -> list[str]:
    """A role that queues requests on an `env` endpoint of `mode`: for async, InvokeEndpointAsync
    on that endpoint and the async prefixes exactly (requests in, results and failures out);
    none otherwise."""

    def tail(arn: str) -> str:
        return arn.split(":::", 1)[-1].split("/", 1)[-1]

    invoke = resources_of(statements, "sagemaker:InvokeEndpointAsync")
    puts = {r for r in resources_of(statements, "s3:PutObject") if tail(r).startswith("async/")}
    gets = {r for r in resources_of(statements, "s3:GetObject") if tail(r).startswith("async/")}
    if mode != "async":
        return [f"{mode} {env}: may queue async requests"] if invoke | puts | gets else []
    problems = []
    if not invoke or not all(r.endswith(f"-{env}") and ":endpoint/" in r for r in invoke):
        problems.append(f"async {env}: InvokeEndpointAsync on {sorted(invoke)}")
    if {tail(r) for r in puts} != {f"async/{env}/input/*"}:
        problems.append(f"async {env}: s3:PutObject on {sorted(puts)}")
    if {tail(r) for r in gets} != {f"async/{env}/output/*", f"async/{env}/failures/*"}:
        problems.append(f"async {env}: s3:GetObject on {sorted(gets)}")
    return problems


def test_the_async_grant_check_fails_on_the_broken_forms() -> None:
    def allow(action: str, *resources: str) -> dict[str, Any]:
        return {"Action": action, "Effect": "Allow", "Resource": list(resources)}

    bucket = "arn:aws:s3:::art"
    good = [
        allow("sagemaker:InvokeEndpointAsync", "arn:aws:sagemaker:r:1:endpoint/mlgate-p-staging"),
        allow("s3:PutObject", f"{bucket}/async/staging/input/*"),
        allow("s3:GetObject", f"{bucket}/async/staging/output/*",
              f"{bucket}/async/staging/failures/*"),
    ]  # fmt: skip
    assert async_grant_problems("async", "staging", good) == []
    assert async_grant_problems("real-time", "staging", good) == [
        "real-time staging: may queue async requests"
    ]
    assert async_grant_problems("async", "staging", good[1:])[0].startswith(
        "async staging: InvokeEndpointAsync on []"
    )
    broad = [good[0], allow("s3:PutObject", f"{bucket}/async/*"), good[2]]
    assert async_grant_problems("async", "staging", broad)[0].startswith(
        "async staging: s3:PutObject on"
    )
    other = [good[0], good[1], allow("s3:GetObject", f"{bucket}/async/prod/output/*")]
    assert async_grant_problems("async", "staging", other)[0].startswith(
        "async staging: s3:GetObject on"
    )


def test_the_verifier_may_queue_its_sample_exactly_where_the_endpoint_is_async(
    synth: Any, examples: Any
) -> None:
    """fraud-detection's staging endpoint is asynchronous, delivery-time's serverless, both
    prods real-time: the verifier's role holds the async grants of each environment in the
    home account whose endpoint is async, and no other."""
    from mlgate.infra.naming import Names

    problems, checked = [], 0
    for product in synth.products:
        manifest = product.manifest
        pipeline = Names.of(manifest).release_pipeline()
        (statements,) = [
            s
            for hook, env, s in release_path_grants(examples)
            if hook == "deploy_verifier" and env["RELEASE_PIPELINE"] == pipeline
        ]
        for env in ("staging", "prod"):
            if manifest.is_remote(env):
                continue  # its verify role, in the other account's template
            endpoint = f":endpoint/{Names.of(manifest).endpoint(env)}"
            mine = [s for s in statements
                    if f"/async/{env}/" in json.dumps(s) or endpoint in json.dumps(s)]  # fmt: skip
            mode = manifest.env_serving(env).mode.value
            checked += mode == "async"
            problems += [f"{manifest.product.name}: {p}"
                         for p in async_grant_problems(mode, env, mine)]  # fmt: skip
    assert problems == []
    assert checked >= 1, "no example has an async environment in its home account"


def test_the_quality_gate_may_queue_its_load_only_on_an_async_staging_endpoint() -> None:
    """The QualityGate construct alone, in a bare stack: with staging_queue_access of an async
    staging (fraud-detection), the async grants; of a serverless one (delivery-time), none."""
    from mlgate.infra import accounts
    from mlgate.infra.constructs.hooks import AuditTrail
    from mlgate.infra.constructs.release_hooks import (
        EnvironmentAccess,
        QualityGate,
        QualityGateProps,
        ReleaseProps,
    )
    from mlgate.infra.naming import Names
    from mlgate.manifest import load_manifest

    from .constructs.conftest import kit, policy_statements

    found = {}
    for product in ("fraud-detection", "delivery-time"):
        manifest = load_manifest(ROOT / "examples" / product / "manifest.yaml")
        statements, findings = accounts.staging_queue_access(manifest)
        home = kit()
        QualityGate(
            home.stack, "Gate",
            props=QualityGateProps(
                release=ReleaseProps(names=Names.of(manifest), home_artifacts="art"),
                thresholds={"model_metrics": [], "slos": []}, smoke_requests=5,
                staging_queue=EnvironmentAccess(statements=tuple(statements), findings=findings),
            ),
            key=home.key, alarms=home.alarms, idempotency=home.idempotency(),
            audit=AuditTrail(home.stack, "Audit", key=home.key, table_name="audit"),
        )  # fmt: skip
        granted = policy_statements(home.template())
        found[product] = async_grant_problems(
            manifest.env_serving("staging").mode.value, "staging", granted
        )
        assert resources_of(granted, "sagemaker:DescribeEndpointConfig"), product
        assert bool(statements) == (product == "fraud-detection")
    assert found == {"fraud-detection": [], "delivery-time": []}
