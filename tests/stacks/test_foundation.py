"""Foundation stack: the product key, the artifact bucket and the on-call topic."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match


def foundation(synth: Any, product: Any) -> Any:
    return synth.template(product.foundation)


def test_product_key_rotates_and_is_retained(synth: Any, product: Any) -> None:
    template = foundation(synth, product)
    template.has_resource(
        "AWS::KMS::Key",
        {"Properties": {"EnableKeyRotation": True}, "DeletionPolicy": "Retain"},
    )
    template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": f"alias/mlgate/{product.manifest.product.name}"}
    )


def test_artifact_bucket_is_encrypted_versioned_logged_and_retained(
    synth: Any, product: Any
) -> None:
    template = foundation(synth, product)
    template.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LoggingConfiguration": {
                    "DestinationBucketName": Match.any_value(),
                    "LogFilePrefix": "artifacts/",
                },
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_every_bucket_refuses_plain_http(synth: Any, product: Any) -> None:
    template = foundation(synth, product)
    buckets = template.find_resources("AWS::S3::Bucket")
    policies = template.find_resources("AWS::S3::BucketPolicy")
    denied = {
        p["Properties"]["Bucket"]["Ref"]
        for p in policies.values()
        if any(
            s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    assert denied == set(buckets)


def test_on_call_topic_is_encrypted_and_mails_the_on_call_contact(synth: Any, product: Any) -> None:
    manifest = product.manifest
    on_call = manifest.contact(manifest.product.owners.on_call)
    template = foundation(synth, product)
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": f"mlgate-{product.manifest.product.name}-on-call",
            "KmsMasterKeyId": Match.any_value(),
        },
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": on_call.email}
    )


def test_stacks_are_tagged_with_product_and_owner(synth: Any, product: Any) -> None:
    manifest = product.manifest
    owner = manifest.contact(manifest.product.owners.product_manager).email
    template = foundation(synth, product)
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "Tags": Match.array_with(
                [
                    {"Key": "mlgate:owner", "Value": owner},
                    {"Key": "mlgate:product", "Value": product.manifest.product.name},
                ]
            )
        },
    )


def test_each_home_environment_has_a_serving_cfn_role_trusting_cloudformation_here_only(
    synth: Any, product: Any
) -> None:
    """The role the deployer passes to CloudFormation (UpdateStack's RoleARN, issue 29): in the
    foundation of the environment's account, trusted by CloudFormation of that account only,
    never an administrator (tests/test_service_rules.py holds what it may pass)."""
    from mlgate.infra.naming import Names

    manifest = product.manifest
    template = foundation(synth, product).to_json()
    roles = {
        r["Properties"].get("RoleName"): (logical, r["Properties"])
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
    }
    for env in ("staging", "prod"):
        name = Names.of(manifest, env).serving_cfn_role()
        if manifest.is_remote(env):  # in that account's own foundation
            assert name not in roles
            continue
        logical, role = roles[name]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": manifest.environment(env).account}
                },
                "Effect": "Allow",
                "Principal": {"Service": "cloudformation.amazonaws.com"},
            }
        ]
        assert "ManagedPolicyArns" not in role
        statements = [
            s
            for r in template["Resources"].values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": logical} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]
        ]
        actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                   else s["Action"])}  # fmt: skip
        target = manifest.environment(env)
        sagemaker = f"arn:aws:sagemaker:{target.region}:{target.account}"
        if manifest.is_batch(env):
            # A batch release replaces the model and rewrites the live parameters: no
            # endpoint, key grant, scaling or alarm of its own.
            assert {a.split(":")[0] for a in actions} == {"sagemaker", "iam", "ssm"}
            assert {a for a in actions if a.startswith("iam:")} == {"iam:PassRole"}
            assert {
                r
                for s in statements
                for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
                if r.startswith("arn:aws:sagemaker:")
            } == {f"{sagemaker}:model/*"}
            continue
        assert {a.split(":")[0] for a in actions} == {
            "sagemaker", "iam", "kms", "ssm", "application-autoscaling", "cloudwatch"
        }  # fmt: skip
        assert {a for a in actions if a.startswith("iam:")} == {
            "iam:PassRole", "iam:CreateServiceLinkedRole"
        }  # fmt: skip
        endpoint = Names.of(manifest, env).endpoint()
        assert any(s["Resource"] == f"{sagemaker}:endpoint/{endpoint}" for s in statements)


def idle_alarms(synth: Any) -> dict[str, dict[str, Any]]:
    """Every idle-endpoint alarm of the synthesized app: its endpoint -> its properties."""
    import json

    found = {}
    for path in synth.template_files:
        for resource in json.loads(path.read_text())["Resources"].values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::CloudWatch::Alarm" and "endpoint-idle" in str(
                props.get("AlarmName")
            ):
                endpoint = {d["Name"]: d["Value"] for d in props["Dimensions"]}["EndpointName"]
                found[endpoint] = props
    return found


def test_each_idle_alarm_counts_the_requests_its_endpoint_mode_publishes(
    synth: Any, product: Any
) -> None:
    """An async endpoint publishes no Invocations (its requests are InvocationsProcessed): an
    idle alarm on Invocations there would stay in ALARM with its missing data breaching."""

    from mlgate.infra.stacks.foundation import idle_billed, requests_metric
    from mlgate.manifest import ENV_NAMES

    m = product.manifest
    assert requests_metric(m, "staging") == (
        "InvocationsProcessed" if m.env_serving("staging").mode.value == "async" else "Invocations"
    )
    async_kept_warm = m.model_copy(deep=True)
    staging = async_kept_warm.env_serving("staging")
    object.__setattr__(staging, "mode", type(staging.mode)("async"))
    assert requests_metric(async_kept_warm, "staging") == "InvocationsProcessed"
    watched = {e: props["MetricName"] for e, props in idle_alarms(synth).items()}
    from mlgate.infra.naming import Names

    expected = {
        Names.of(m, env).endpoint(): requests_metric(m, env)
        for env in ENV_NAMES
        if idle_billed(m, env)
    }
    assert {e: watched.get(e) for e in expected} == expected


def test_an_idle_alarm_waits_out_its_environment_s_off_hours(synth: Any, product: Any) -> None:
    """An environment whose endpoint scales down outside working hours gets no request then:
    its idle alarm looks back longer than its longest stretch of them (or it would warn every
    weekend); another environment's looks back the manifest's cost.idle_endpoint_hours."""

    from mlgate.infra.naming import Names
    from mlgate.infra.stacks.foundation import idle_alarm_hours, idle_billed
    from mlgate.manifest import ENV_NAMES

    m = product.manifest
    periods = {e: (p["EvaluationPeriods"], p["Period"]) for e, p in idle_alarms(synth).items()}
    for env in ENV_NAMES:
        if not idle_billed(m, env):
            continue
        off = m.env_serving(env).off_hours
        hours = idle_alarm_hours(m, env)
        assert periods[Names.of(m, env).endpoint()] == (hours, 3600), env
        if off is None:
            assert hours == m.cost.idle_endpoint_hours, env
        else:
            assert off.longest_off_hours < hours <= 168, env
