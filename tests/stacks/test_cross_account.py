"""Prod in another account than staging: each side holds what runs there, the two trust each
other by role name only, and the release pipeline deploys, verifies and retrains across."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from mlgate.infra.naming import Names
from mlgate.manifest import ENV_NAMES, load_manifests

from ..conftest import EXAMPLES

# The example product whose prod lives in an account of its own.
REMOTE = next(m for m in load_manifests(EXAMPLES) if m.is_remote("prod"))
HOME = REMOTE.environments.staging.account
REGION = REMOTE.environments.staging.region
PRODUCT = REMOTE.product.name
PROD_ACCOUNT = REMOTE.environments.prod.account
PROD_REGION = REMOTE.environments.prod.region


def template(synth: Any, key: str) -> Any:
    stacks = synth.product().extra
    return synth.template(stacks[key] if key != "foundation" else synth.product().foundation)


def resources(synth: Any, key: str, kind: str) -> dict[str, Any]:
    return template(synth, key).find_resources(kind)


def role_named(synth: Any, key: str, name: str) -> dict[str, Any]:
    roles = [
        r for r in resources(synth, key, "AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == name
    ]  # fmt: skip
    assert len(roles) == 1, f"{key} has no role {name}"
    return roles[0]["Properties"]


def trust(principal_account: str, *roles: str) -> dict[str, Any]:
    """The trust statement for these named roles of another account."""
    arns = [f"arn:aws:iam::{principal_account}:role/{role}" for role in roles]
    return {
        "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": arns if len(arns) > 1 else arns[0]}},
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{principal_account}:root"},
    }


def user_parameters(synth: Any, action: str) -> dict[str, Any]:
    (pipeline,) = resources(synth, "delivery", "AWS::CodePipeline::Pipeline").values()
    for stage in pipeline["Properties"]["Stages"]:
        for a in stage["Actions"]:
            if a["Name"] == action:
                return json.loads(a["Configuration"]["UserParameters"])  # type: ignore[no-any-return]
    raise AssertionError(f"no action {action}")


def statements(synth: Any, key: str, role_name: str) -> list[dict[str, Any]]:
    """Statements of the policies attached to the role with this fixed name."""
    role_id = next(
        logical_id
        for logical_id, r in resources(synth, key, "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == role_name
    )
    return [
        s
        for p in resources(synth, key, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_prod_stacks_live_in_the_prod_account_and_the_rest_at_home(cross_account: Any) -> None:
    product = cross_account.product()
    placed = {s.stack_name: s.account for s in product.all}
    # Staging is serverless: no data capture, so no monitoring stack (tests/stacks/test_serving.py).
    assert placed == {
        f"mlgate-{PRODUCT}-foundation": HOME,
        f"mlgate-{PRODUCT}-data": HOME,
        f"mlgate-{PRODUCT}-training": HOME,
        f"mlgate-{PRODUCT}-delivery": HOME,
        f"mlgate-{PRODUCT}-staging-serving": HOME,
        f"mlgate-{PRODUCT}-staging-observability": HOME,
        f"mlgate-{PRODUCT}-prod-foundation": PROD_ACCOUNT,
        f"mlgate-{PRODUCT}-prod-serving": PROD_ACCOUNT,
        f"mlgate-{PRODUCT}-prod-monitoring": PROD_ACCOUNT,
        f"mlgate-{PRODUCT}-prod-observability": PROD_ACCOUNT,
    }


def test_one_account_products_get_no_environment_foundation(synth: Any) -> None:
    local = [p for p in synth.products if not p.manifest.is_remote("prod")]
    assert local, "an example product keeps prod in its home account"
    for product in local:
        assert "foundation-prod" not in product.extra
        training = synth.template(product.extra["training"])
        (group,) = training.find_resources("AWS::SageMaker::ModelPackageGroup").values()
        assert "ModelPackageGroupPolicy" not in group["Properties"]


def test_the_prod_foundation_holds_its_own_key_capture_bucket_and_on_call_topic(
    cross_account: Any,
) -> None:
    prod = template(cross_account, "foundation-prod")
    prod.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/mlgate/{PRODUCT}/prod"})
    prod.has_resource_properties(
        "AWS::S3::Bucket",
        {"BucketName": f"mlgate-{PRODUCT}-prod-artifacts-{PROD_ACCOUNT}-{REGION}"},
    )
    prod.has_resource_properties("AWS::SNS::Topic", {"TopicName": f"mlgate-{PRODUCT}-prod-on-call"})
    config = template(cross_account, "serving-prod")
    config.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "DataCaptureConfig": Match.object_like(
                {
                    "DestinationS3Uri": f"s3://mlgate-{PRODUCT}-prod-artifacts-{PROD_ACCOUNT}-"
                    f"{REGION}/datacapture/prod"
                }
            )
        },
    )


def test_prod_deploy_and_verify_roles_trust_only_the_home_hooks(cross_account: Any) -> None:
    """And the rollback command's role (mlgate/infra/constructs/rollback.py), which redeploys
    and checks a served version the same way."""
    manifest = cross_account.product().manifest
    names = Names.of(manifest)
    deploy = role_named(cross_account, "foundation-prod", names.deploy_role("prod"))
    verify = role_named(cross_account, "foundation-prod", names.verify_role("prod"))
    assert deploy["AssumeRolePolicyDocument"]["Statement"] == [
        trust(HOME, names.deployer_role(), names.rollback_role())
    ]
    assert verify["AssumeRolePolicyDocument"]["Statement"] == [
        trust(HOME, names.verifier_role(), names.rollback_role())
    ]
    deploys = statements(cross_account, "foundation-prod", Names.of(manifest).deploy_role("prod"))
    assert {
        r
        for s in deploys
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    } == {
        f"arn:aws:cloudformation:{PROD_REGION}:{PROD_ACCOUNT}:stack/"
        f"mlgate-{PRODUCT}-prod-serving/*",
        # The prod Serving stack's own service role, never CDK's execution role (issue 29).
        f"arn:aws:iam::{PROD_ACCOUNT}:role/{Names.of(manifest).serving_cfn_role('prod')}",
    }
    (passes,) = [s for s in deploys if s["Action"] == "iam:PassRole"]
    assert passes["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
    }


def test_the_prod_serving_stack_s_cfn_role_lives_in_prod_trusting_cloudformation_there(
    cross_account: Any,
) -> None:
    manifest = cross_account.product().manifest
    name = Names.of(manifest).serving_cfn_role("prod")
    role = role_named(cross_account, "foundation-prod", name)
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": PROD_ACCOUNT}},
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
        }
    ]
    passes = [
        s
        for s in statements(cross_account, "foundation-prod", name)
        if s["Action"] == "iam:PassRole"
    ]
    model = f"arn:aws:iam::{PROD_ACCOUNT}:role/{Names.of(manifest).model_role('prod')}"
    assert {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}} in [
        s.get("Condition") for s in passes if s["Resource"] == model
    ]
    # Besides the model role: Application Auto Scaling's service-linked role, AWS's own.
    assert all(s["Resource"] == model or ":role/aws-service-role/" in s["Resource"]
               for s in passes)  # fmt: skip
    # The home foundation holds the staging one only.
    home_roles = resources(cross_account, "foundation", "AWS::IAM::Role").values()
    assert {r["Properties"].get("RoleName") for r in home_roles} >= {
        Names.of(manifest).serving_cfn_role("staging")
    }
    assert name not in {r["Properties"].get("RoleName") for r in home_roles}


def test_the_home_hooks_have_fixed_names_the_prod_roles_can_trust(cross_account: Any) -> None:
    manifest = cross_account.product().manifest
    for name in (Names.of(manifest).deployer_role(), Names.of(manifest).verifier_role()):
        role_named(cross_account, "delivery", name)


def test_the_pipeline_deploys_and_verifies_prod_through_the_prod_roles(cross_account: Any) -> None:
    manifest = cross_account.product().manifest
    deploy_arn = f"arn:aws:iam::{PROD_ACCOUNT}:role/{Names.of(manifest).deploy_role('prod')}"
    verify_arn = f"arn:aws:iam::{PROD_ACCOUNT}:role/{Names.of(manifest).verify_role('prod')}"
    assert user_parameters(cross_account, "UpdateServingProd")["role_arn"] == deploy_arn
    assert user_parameters(cross_account, "CheckEndpointProd")["role_arn"] == verify_arn
    # Staging is at home: no role to assume.
    assert "role_arn" not in user_parameters(cross_account, "UpdateServingStaging")
    assert "role_arn" not in user_parameters(cross_account, "CheckEndpointStaging")
    deployer = statements(cross_account, "delivery", Names.of(manifest).deployer_role())
    assumes = [s["Resource"] for s in deployer if s["Action"] == "sts:AssumeRole"]
    assert assumes == [deploy_arn]
    updates = [s["Resource"] for s in deployer if "cloudformation:UpdateStack" in s["Action"]]
    assert updates == [
        f"arn:aws:cloudformation:{REGION}:{HOME}:stack/mlgate-{PRODUCT}-staging-serving/*"
    ]
    verifier = statements(cross_account, "delivery", Names.of(manifest).verifier_role())
    assert [s["Resource"] for s in verifier if s["Action"] == "sts:AssumeRole"] == [verify_arn]


def test_home_shares_released_versions_with_the_prod_model_and_monitor_roles_only(
    cross_account: Any,
) -> None:
    manifest = cross_account.product().manifest
    readers = {
        "ArnEquals": {
            "aws:PrincipalArn": [
                f"arn:aws:iam::{PROD_ACCOUNT}:role/{Names.of(manifest).model_role('prod')}",
                f"arn:aws:iam::{PROD_ACCOUNT}:role/{Names.of(manifest).monitor_role('prod')}",
            ]
        }
    }
    principal = {"AWS": f"arn:aws:iam::{PROD_ACCOUNT}:root"}
    home = template(cross_account, "foundation")
    (policy,) = home.find_resources(
        "AWS::S3::BucketPolicy",
        {"Properties": {"PolicyDocument": {"Statement": Match.array_with(
            [Match.object_like({"Sid": "ProdReadsReleasedVersions"})])}}},
    ).values()  # fmt: skip
    shared = next(
        s for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "ProdReadsReleasedVersions"
    )  # fmt: skip
    assert shared["Principal"] == principal
    assert shared["Condition"] == readers
    assert shared["Action"] == "s3:GetObject"
    # The released copies only (issue 29): never a training run.
    assert shared["Resource"]["Fn::Join"][1][-1] == f"/released/{PRODUCT}/*"
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert f"/training/{PRODUCT}" not in json.dumps(
        [s for s in statements if s.get("Principal") == principal]
    )
    (key,) = home.find_resources("AWS::KMS::Key").values()
    decrypt = next(
        s for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "ProdDecryptsReleasedVersions"
    )  # fmt: skip
    assert decrypt["Principal"] == principal
    # With the bucket's S3 Bucket Key, the encryption context is the bucket's ARN.
    assert decrypt["Condition"] == {
        **readers,
        "StringEquals": {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": (
                f"arn:aws:s3:::mlgate-{PRODUCT}-artifacts-{HOME}-{REGION}"
            ),
        },
    }
    assert decrypt["Action"] == "kms:Decrypt"


def test_prod_roles_read_home_artifacts_through_the_home_key_policy(cross_account: Any) -> None:
    manifest = cross_account.product().manifest
    for stack, name in (
        ("serving-prod", Names.of(manifest).model_role("prod")),
        ("monitoring-prod", Names.of(manifest).monitor_role("prod")),
    ):
        allowed = statements(cross_account, stack, name)
        home_bucket = f"arn:aws:s3:::mlgate-{PRODUCT}-artifacts-{HOME}-{REGION}"
        released = f"{home_bucket}/released/{PRODUCT}/"
        # CDK merges statements of one action: the grant may name other prefixes too, and a
        # role may read less than every released file (the monitor: baselines only).
        assert any(
            s["Effect"] == "Allow"
            and s["Action"] == "s3:GetObject"
            and any(
                r.startswith(released)
                for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
                if isinstance(r, str)
            )
            for s in allowed
        ), (stack, name)
        # Never a training run of the home bucket (issue 29; the monitor role's reads are
        # mlgate/infra/constructs/evidently.py's and model_monitor.py's).
        assert f"{home_bucket}/training/" not in json.dumps(allowed), (stack, name)
        assert {
            "Action": "kms:Decrypt",
            # No alias condition: KMS documents none for a key in another account. The home
            # key's policy, which alone names the prod roles, decides which key they may use.
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": f"s3.{REGION}.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": (
                        f"arn:aws:s3:::mlgate-{PRODUCT}-artifacts-{HOME}-{REGION}"
                    ),
                },
            },
            "Effect": "Allow",
            "Resource": f"arn:aws:kms:{REGION}:{HOME}:key/*",
        } in allowed


def test_the_registry_lets_only_the_prod_monitor_describe_versions(cross_account: Any) -> None:
    """Prod serves the released copy of a version (ModelDataUrl), so no prod role creates a
    model from the registry: the group's policy names the one role that reads it (the
    Evidently monitor, for its baseline dataset), by aws:PrincipalArn, never the account."""
    manifest = cross_account.product().manifest
    (group,) = resources(cross_account, "training", "AWS::SageMaker::ModelPackageGroup").values()
    policy = group["Properties"]["ModelPackageGroupPolicy"]
    assert policy["Statement"] == [
        {
            "Sid": "ProdMonitorDescribesVersions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{PROD_ACCOUNT}:root"},
            "Action": ["sagemaker:DescribeModelPackage"],
            "Resource": f"arn:aws:sagemaker:{REGION}:{HOME}:model-package/mlgate-{PRODUCT}/*",
            "Condition": {
                "ArnEquals": {
                    "aws:PrincipalArn": (
                        f"arn:aws:iam::{PROD_ACCOUNT}:role/"
                        f"{Names.of(manifest).monitor_role('prod')}"
                    )
                }
            },
        }
    ]
    text = json.dumps(policy)
    for never in ("sagemaker:CreateModel", "sagemaker:UpdateModelPackage", "ListModelPackages"):
        assert never not in text


def test_the_registry_policy_names_no_role_under_model_monitor() -> None:
    """Model Monitor reads the baseline from the stack's parameters: no prod role needs the
    registry, and the group's policy is left out."""
    from mlgate.infra.stacks.training import registry_readers
    from mlgate.manifest import MonitoringEngine

    manifest = REMOTE.model_copy(
        update={
            "monitoring": REMOTE.monitoring.model_copy(
                update={"engine": MonitoringEngine.MODEL_MONITOR}
            )
        }
    )
    assert registry_readers(manifest, "prod") == []
    assert registry_readers(REMOTE, "prod") == [Names.of(REMOTE).monitor_role("prod")]


def test_prod_drift_starts_home_retraining_through_the_retrain_role(cross_account: Any) -> None:
    manifest = cross_account.product().manifest
    retrain = Names.of(manifest).retrain_role("prod")
    role = role_named(cross_account, "training", retrain)
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        trust(PROD_ACCOUNT, Names.of(manifest).drift_role("prod"))
    ]
    assert statements(cross_account, "training", retrain) == [
        {
            "Action": ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            "Effect": "Allow",
            "Resource": f"arn:aws:sagemaker:{REGION}:{HOME}:pipeline/mlgate-{PRODUCT}-training",
        }
    ]
    (responder,) = [
        f for f in resources(cross_account, "serving-prod", "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "drift_responder.handler.handler"
    ]  # fmt: skip
    variables = responder["Properties"]["Environment"]["Variables"]
    assert variables["RETRAIN_ROLE_ARN"] == f"arn:aws:iam::{HOME}:role/{retrain}"
    drift = statements(cross_account, "serving-prod", Names.of(manifest).drift_role("prod"))
    assert not any("sagemaker:StartPipelineExecution" in s["Action"] for s in drift)


def test_the_prod_dashboard_shows_what_runs_in_prod_and_home_keeps_the_rest(
    cross_account: Any,
) -> None:
    def body(env: str) -> str:
        (dashboard,) = resources(
            cross_account, f"observability-{env}", "AWS::CloudWatch::Dashboard"
        ).values()
        return json.dumps(dashboard["Properties"]["DashboardBody"])

    prod, staging = body("prod"), body("staging")
    for home_only in ("Training pipeline executions", "Glue mlgate-", "Hook release"):
        assert home_only not in prod, home_only
        assert home_only in staging, home_only
    assert "Hook drift_responder" in prod
    # The gate-timeout alarm lives with the release pipeline, at home: shown with every alarm
    # of the staging dashboard, and no part of "model unhealthy" (a waiting gate is not a
    # sick model).
    assert "gate-waiting-too-long" in staging
    assert "gate-waiting-too-long" not in prod
    (composite,) = resources(
        cross_account, "observability-staging", "AWS::CloudWatch::CompositeAlarm"
    ).values()
    assert "gate-waiting-too-long" not in json.dumps(composite["Properties"]["AlarmRule"])


def test_each_environment_serves_in_its_own_account(cross_account: Any) -> None:
    for env in ENV_NAMES:
        stack = cross_account.product().extra[f"serving-{env}"]
        assert stack.account == (PROD_ACCOUNT if env == "prod" else HOME)


def test_no_policy_conditions_a_key_on_an_alias(synth: Any) -> None:
    """Alias conditions (kms:ResourceAliases, kms:RequestAlias) are not documented for a key in
    another account, where the cross-account grants need them: no template may rest on one."""
    for path in synth.template_files:
        text = path.read_text()
        assert "kms:ResourceAliases" not in text, path.name
        assert "kms:RequestAlias" not in text, path.name
