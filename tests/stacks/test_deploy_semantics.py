"""What the release hooks meet when they update a Serving stack for real."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_serving_stacks_need_no_ssm_read_to_update(synth: Any, product: Any, env: str) -> None:
    """CDK's BootstrapVersion parameter is an SSM parameter type, resolved with the caller's
    permissions on every update: the deploy hooks update Serving stacks, so those carry none."""
    template = synth.template(product.extra[f"serving-{env}"]).to_json()
    assert "BootstrapVersion" not in template.get("Parameters", {})
    assert "CheckBootstrapVersion" not in template.get("Rules", {})


def test_stacks_deployed_only_by_cdk_keep_the_bootstrap_check(synth: Any, product: Any) -> None:
    template = synth.template(product.extra["data"]).to_json()
    assert "BootstrapVersion" in template["Parameters"]


# --- issue 29: the Serving stack takes released versions of this product only ----------------

RELEASED_PARAMETERS = (
    "ModelPackageArn",
    "ModelDataUrl",
    "BaselineStatisticsUri",
    "BaselineConstraintsUri",
)


def allowed(template: Any, parameter: str, value: str) -> bool:
    """Whether CloudFormation takes `value` for `parameter`: its AllowedPattern (a Java regular
    expression matched against the whole value; these patterns use no syntax where Java and
    Python differ)."""
    pattern = template["Parameters"][parameter]["AllowedPattern"]
    return re.fullmatch(pattern, value) is not None


def registered_version(manifest: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ARN SageMaker gives a version of the product's group (moto, in the home account
    and region), the value release.json carries."""
    import boto3
    from moto import mock_aws

    from mlgate.infra.naming import Names

    home = manifest.environments.staging
    monkeypatch.setenv("MOTO_ACCOUNT_ID", home.account)
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=home.region)
        group = Names.of(manifest).model_package_group()
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        for _ in range(12):  # a two-digit version number
            arn = sagemaker.create_model_package(
                ModelPackageGroupName=group,
                InferenceSpecification={
                    "Containers": [{"Image": "image", "ModelDataUrl": "s3://bucket/model"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]
    return str(arn)


def release_values(manifest: Any, arn: str) -> dict[str, str]:
    """What the deployer sets for a released version (the shared contract of issue 29:
    released copies under Names.released_prefix in the home artifact bucket)."""
    from mlgate.infra.naming import Names

    home = manifest.environments.staging
    names = Names.of(manifest)
    version = arn.rsplit("/", 1)[-1]
    released = f"s3://{names.bucket('artifacts', home.account, home.region)}/"
    released += names.released_prefix(version)
    return {
        "ModelPackageArn": arn,
        "ModelDataUrl": f"{released}/model.tar.gz",
        "BaselineStatisticsUri": f"{released}/baseline/statistics.json",
        "BaselineConstraintsUri": f"{released}/baseline/constraints.json",
    }


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_real_release_passes_every_parameter_pattern_and_the_defaults_do_too(
    synth: Any, product: Any, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = synth.template(product.extra[f"serving-{env}"]).to_json()
    values = release_values(product.manifest, registered_version(product.manifest, monkeypatch))
    assert set(values) == set(RELEASED_PARAMETERS)
    for parameter, value in values.items():
        assert allowed(template, parameter, value), (parameter, value)
        default = template["Parameters"][parameter]["Default"]
        assert allowed(template, parameter, default), (parameter, default)


def forgeries(manifest: Any, real: dict[str, str]) -> list[tuple[str, str]]:
    """Values a caller who invokes the deployer (or UpdateStack) directly might submit."""
    home = manifest.environments.staging
    arn, data = real["ModelPackageArn"], real["ModelDataUrl"]
    group = arn.split("/")[-2]
    product = manifest.product.name
    bucket = data.removeprefix("s3://").split("/")[0]
    return [
        ("ModelPackageArn", arn.replace(f"/{group}/", "/mlgate-other-product/")),
        ("ModelPackageArn", arn.replace(f":{home.account}:", ":999999999999:")),
        ("ModelPackageArn", arn.replace(f"/{group}/", f"/{group}-shadow/")),
        ("ModelPackageArn", arn + "/../1"),
        ("ModelPackageArn", f"arn:aws:sagemaker:{home.region}:{home.account}:model/anything"),
        # A training run: unapproved and never released.
        ("ModelDataUrl", f"s3://{bucket}/training/{product}/run/output/model.tar.gz"),
        ("ModelDataUrl", data.replace(f"/released/{product}/", "/released/other-product/")),
        ("ModelDataUrl", data.replace(bucket, "attacker-bucket")),
        ("ModelDataUrl", data.replace("/model.tar.gz", "/../../training/model.tar.gz")),
        ("ModelDataUrl", data + "\n"),
        ("BaselineStatisticsUri", f"s3://{bucket}/training/{product}/statistics.json"),
        ("BaselineConstraintsUri", real["BaselineConstraintsUri"].replace(bucket, "elsewhere")),
    ]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_forged_release_fails_the_parameter_patterns(
    synth: Any, product: Any, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = synth.template(product.extra[f"serving-{env}"]).to_json()
    real = release_values(product.manifest, registered_version(product.manifest, monkeypatch))
    for parameter, forged in forgeries(product.manifest, real):
        assert not allowed(template, parameter, forged), (parameter, forged)


def test_the_patterns_hold_a_group_name_in_capitals_to_its_lower_case_arn() -> None:
    """SageMaker writes a version's ARN with its group's name in lower case (DescribeModel-
    Package's ModelPackageArn pattern); the pattern expects that form."""
    from mlgate.infra.stacks.serving import release_patterns
    from mlgate.manifest import load_manifests

    from ..conftest import EXAMPLES

    manifest = load_manifests(EXAMPLES)[0]
    home = manifest.environments.staging
    pattern = release_patterns(manifest)["ModelPackageArn"]
    group = f"mlgate-{manifest.product.name}"
    arn = f"arn:aws:sagemaker:{home.region}:{home.account}:model-package/{group}/3"
    assert re.fullmatch(pattern, arn)
    assert not re.fullmatch(pattern, arn.replace(group, group.upper()))


def serving_cfn_statements(synth: Any, product: Any, env: str) -> list[dict[str, Any]]:
    """The policy statements of the env's Serving CloudFormation service role."""
    from mlgate.infra.naming import Names

    stacks = product.extra
    site = stacks.get(f"foundation-{env}", product.foundation)
    template = synth.template(site).to_json()
    name = Names.of(product.manifest, env).serving_cfn_role()
    (role_id,) = [
        logical
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == name
    ]
    return [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


# Handler permissions the Serving stack's resources never call: its scalable target has no
# scheduled action, and its target is an endpoint variant, not a Lambda function.
NOT_CALLED = {
    "lambda:GetProvisionedConcurrencyConfig",
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
}


def released_resources(template: dict[str, Any]) -> dict[str, str]:
    """The resources a release changes: those that read a parameter, wait for a model or
    depend on having one (Fn::If HasModel: a batch environment's live model name), and those
    that read an attribute of a resource a release changes (a replaced model's new name)."""
    parameters = set(template.get("Parameters", {}))
    found: dict[str, str] = {}
    while True:
        before = len(found)
        for logical, resource in template["Resources"].items():
            text = json.dumps(resource.get("Properties", {}))
            reads = any(f'{{"Ref": "{p}"}}' in text for p in parameters)
            follows = '{"Fn::If": ["HasModel"' in text or any(
                f'{{"Fn::GetAtt": ["{other}"' in text or f'{{"Ref": "{other}"}}' in text
                for other in found
            )
            if reads or follows or resource.get("Condition") == "HasModel":
                found[logical] = resource["Type"]
        if len(found) == before:
            return found


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_serving_cfn_role_may_do_what_a_release_of_its_stack_needs(
    synth: Any, product: Any, env: str
) -> None:
    """Every handler permission (create, read, update, delete: a rollback deletes what a first
    release created) of every resource a release changes, from the resource type's
    CloudFormation schema (as cfn-lint ships it), is allowed by the role the deployer passes."""
    from fnmatch import fnmatchcase

    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    template = synth.template(product.extra[f"serving-{env}"]).to_json()
    region = product.manifest.environment(env).region
    statements = serving_cfn_statements(synth, product, env)
    granted = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                               else s["Action"])}  # fmt: skip
    changed = released_resources(template)
    # A batch environment's release replaces its model and rewrites the live parameters, its
    # model name among them (no endpoint, config or scaling to update).
    assert set(changed.values()) >= (
        {"AWS::SageMaker::Model", "AWS::SSM::Parameter"}
        if product.manifest.is_batch(env)
        else {
            "AWS::SageMaker::Model",
            "AWS::SageMaker::EndpointConfig",
            "AWS::SageMaker::Endpoint",
            "AWS::SSM::Parameter",
        }
    )
    missing = set()
    for kind in set(changed.values()):
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind).schema["handlers"]
        for handler in ("create", "read", "update", "delete"):
            for action in handlers.get(handler, {}).get("permissions", []):
                if action not in NOT_CALLED and not any(fnmatchcase(action, g) for g in granted):
                    missing.add(f"{kind} {handler}: {action}")
    assert missing == set()


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_deployer_passes_the_serving_cfn_role_and_nothing_else(
    synth: Any, product: Any, env: str
) -> None:
    from mlgate.infra.accounts import serving_cfn_role_arn
    from mlgate.infra.naming import Names

    template = synth.template(product.extra["delivery"]).to_json()
    (pipeline,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    params = next(
        json.loads(action["Configuration"]["UserParameters"])
        for stage in pipeline["Properties"]["Stages"]
        for action in stage["Actions"]
        if action["Name"] == f"UpdateServing{env.capitalize()}"
    )
    arn = serving_cfn_role_arn(product.manifest, env)
    assert params["service_role"] == arn
    assert arn.endswith(f":role/{Names.of(product.manifest, env).serving_cfn_role()}")
    assert arn.split(":")[4] == product.manifest.environment(env).account


def test_a_release_changes_what_follows_the_model_too() -> None:
    """A batch environment's live model name reads no parameter and waits for no model, yet a
    release rewrites it (Fn::If HasModel, the replaced model's name): it is released, as is
    what reads an attribute of a released resource; the broken form (parameters and the
    HasModel condition only) misses both."""
    template = {
        "Parameters": {"ModelDataUrl": {}},
        "Resources": {
            "Model": {"Type": "AWS::SageMaker::Model", "Condition": "HasModel",
                      "Properties": {"Url": {"Ref": "ModelDataUrl"}}},
            "LiveModelName": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": {
                "Fn::If": ["HasModel", {"Fn::GetAtt": ["Model", "ModelName"]}, "none"]}}},
            "Reader": {"Type": "AWS::SSM::Parameter",
                       "Properties": {"Value": {"Fn::GetAtt": ["LiveModelName", "Value"]}}},
            "Unrelated": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": "x"}},
        },
    }  # fmt: skip
    assert set(released_resources(template)) == {"Model", "LiveModelName", "Reader"}
    broken = {
        logical
        for logical, r in template["Resources"].items()
        if r.get("Condition") == "HasModel" or '"Ref": "ModelDataUrl"' in json.dumps(r)
    }
    assert broken == {"Model"}
