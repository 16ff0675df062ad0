"""Delivery stack: the release pipeline carries the manifest's gates, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mlgate.infra import naming
from mlgate.manifest import GateKind, GatePlacement


def delivery(synth: Any, product: Any) -> Any:
    return synth.template(product.extra["delivery"])


def batch_checks(manifest: Any, env: str) -> dict[str, Any]:
    """What a batch environment's release checks read (UserParameters' `batch`): its batch_run
    function, its artifact bucket, its live parameters and the manifest's sample and limits."""
    name, site = manifest.product.name, manifest.environment(env)
    batch = manifest.env_serving(env).batch_settings
    return {
        "function": f"mlgate-{name}-{env}-batch-run",
        "bucket": f"mlgate-{name}-artifacts-{site.account}-{site.region}",
        "sample_rows": batch.sample_rows,
        "max_run_minutes": batch.max_run_minutes,
        "max_prediction_shift": batch.max_prediction_shift,
        "max_failure_rate": batch.max_failure_rate,
        "max_run_time_ratio": batch.max_run_time_ratio,
        "model_parameter": f"/mlgate/{name}/{env}/live-model-name",
        "model_package_parameter": f"/mlgate/{name}/{env}/live-model-package",
    }


def checked(manifest: Any, env: str) -> dict[str, Any]:
    """What a release check names of an environment: its endpoint, or its batch runs."""
    if manifest.is_batch(env):
        return {"batch": batch_checks(manifest, env)}
    return {"endpoint": f"mlgate-{manifest.product.name}-{env}"}


def stages(synth: Any, product: Any) -> list[dict[str, Any]]:
    pipelines = delivery(synth, product).find_resources("AWS::CodePipeline::Pipeline")
    (pipeline,) = pipelines.values()
    return list(pipeline["Properties"]["Stages"])


def test_pipeline_is_v2_and_queues_releases(synth: Any, product: Any) -> None:
    delivery(synth, product).has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "PipelineType": "V2",
            "ExecutionMode": "QUEUED",
            "Name": f"mlgate-{product.manifest.product.name}-release",
        },
    )


def test_stages_follow_the_release_flow_and_the_manifest_gates_in_order(
    synth: Any, product: Any
) -> None:
    manifest = product.manifest
    names = [s["Name"] for s in stages(synth, product)]
    # Prod's shadow test runs before the gates that lead to prod (their briefs show its
    # verdict), or right before its deploy when none does; staging's right before its deploy.
    gates: list[str] = []
    shadowed = manifest.serving.prod.shadow is not None
    for gate in manifest.pipeline_gates:
        if shadowed and gate.placement is GatePlacement.BEFORE_PROD and "ShadowProd" not in gates:
            gates.append("ShadowProd")
        gates.append(naming.pascal(gate.name))
    if shadowed and "ShadowProd" not in gates:
        gates.append("ShadowProd")
    staging = ["ShadowStaging"] if manifest.serving.staging.shadow else []
    assert names == [
        "Source", *staging, "DeployStaging", "VerifyStaging", *gates, "DeployProd", "VerifyProd",
    ]  # fmt: skip
    if shadowed:  # the examples differ: fraud-detection's go-live gate comes after it
        assert names.index("ShadowProd") < names.index("DeployProd")


def test_a_shadow_test_adds_the_shadow_judges_it_then_removes_it_and_passes_the_verdict(
    synth: Any, product: Any
) -> None:
    """The Shadow stage's three actions in order, each with its hook and parameters; the
    verifier judges by the manifest's thresholds on the environment's own capture; the deployer
    reads the verdict (GetItem on "shadow#" keys) where the verifier writes it. Without a
    shadow test: no Shadow stage at all."""
    manifest = product.manifest
    by_name = {s["Name"]: s for s in stages(synth, product)}
    for env in ("staging", "prod"):
        test = manifest.env_serving(env).shadow
        stage = by_name.get(f"Shadow{env.capitalize()}")
        if test is None:
            assert stage is None
            continue
        assert stage is not None
        actions = sorted(stage["Actions"], key=lambda a: a["RunOrder"])
        assert [a["RunOrder"] for a in actions] == [1, 2, 3]
        params = [json.loads(a["Configuration"]["UserParameters"]) for a in actions]
        assert params[0]["shadow"] == "start"
        assert params[2]["shadow"] == "stop"
        judged = params[1]["shadow"]
        assert judged["minutes"] == test.minutes
        assert judged["sampling_percent"] == test.sampling_percent
        assert judged["thresholds"]["max_prediction_shift"] == test.max_prediction_shift
        assert judged["capture_uri"].endswith(f"/datacapture/{env}")
        deploy = by_name[f"Deploy{env.capitalize()}"]["Actions"][0]
        assert (
            actions[0]["Configuration"]["FunctionName"] == deploy["Configuration"]["FunctionName"]
        )
        assert (
            actions[2]["Configuration"]["FunctionName"] == deploy["Configuration"]["FunctionName"]
        )


def test_the_automated_gate_runs_the_quality_gate_hook_on_staging(synth: Any, product: Any) -> None:
    manifest = product.manifest
    automated = [g for g in manifest.pipeline_gates if g.kind is GateKind.AUTOMATED]
    handlers = [
        f["Properties"]["Handler"]
        for f in delivery(synth, product).find_resources("AWS::Lambda::Function").values()
    ]
    if not automated:
        # No automated gate in the manifest: no quality gate hook deployed to sit idle.
        assert "quality_gate.handler.handler" not in handlers
        return
    by_name = {s["Name"]: s for s in stages(synth, product)}
    (action,) = by_name[naming.pascal(automated[0].name)]["Actions"]
    assert action["ActionTypeId"]["Provider"] == "Lambda"
    assert json.loads(action["Configuration"]["UserParameters"]) == {
        **checked(manifest, "staging"),
        "execution": "#{codepipeline.PipelineExecutionId}",
    }
    delivery(synth, product).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "quality_gate.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MLGATE_THRESHOLDS": Match.string_like_regexp(
                            manifest.metrics.model_metrics[0].name.value
                        ),
                        "SMOKE_REQUESTS": str(manifest.serving.smoke_requests),
                    }
                )
            },
        },
    )


def test_the_quality_gate_loads_only_the_staging_endpoint_with_only_test_splits(
    synth: Any, product: Any
) -> None:
    if product.extra["delivery"].quality_gate is None:
        pytest.skip("no automated gate in this product's manifest")
    home = product.manifest.environments.staging
    name = product.manifest.product.name
    statements = policy_statements(delivery(synth, product), "quality_gate")
    by_action: dict[str, list[Any]] = {}
    for s in statements:
        for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
            by_action.setdefault(action, []).extend(
                s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            )
    bucket = f"arn:aws:s3:::mlgate-{name}-artifacts-{home.account}-{home.region}"
    if product.manifest.is_batch("staging"):
        # No endpoint and no smoke load: the verifier's sample run of staging (its record and
        # both sides' outputs), never the test split, never a parameter or the hook itself.
        assert not [a for a in by_action if "Endpoint" in a]
        assert by_action["s3:GetObject"] == [f"{bucket}/batch/staging/runs/*"]
        assert by_action["s3:ListBucket"] == [bucket]
        for absent in ("s3:PutObject", "ssm:GetParameter", "lambda:InvokeFunction",
                       "cloudwatch:GetMetricData"):  # fmt: skip
            assert absent not in by_action, absent
        return
    endpoint = f"arn:aws:sagemaker:{home.region}:{home.account}:endpoint/mlgate-{name}-staging"
    assert by_action["sagemaker:InvokeEndpoint"] == [endpoint]
    assert by_action["sagemaker:DescribeEndpoint"] == [endpoint]
    reads = [f"{bucket}/training/{name}/*/test/test.csv"]
    if product.manifest.serving.staging.mode == "async":
        # An async staging endpoint takes the smoke load as queued requests: their results.
        reads += [f"{bucket}/async/staging/failures/*", f"{bucket}/async/staging/output/*"]
        assert by_action["sagemaker:InvokeEndpointAsync"] == [endpoint]
        assert by_action["s3:PutObject"] == [f"{bucket}/async/staging/input/*"]
    else:
        assert "sagemaker:InvokeEndpointAsync" not in by_action
        assert "s3:PutObject" not in by_action
    assert sorted(by_action["s3:GetObject"]) == sorted(reads)
    assert "cloudwatch:GetMetricData" not in by_action


def test_every_gate_topic_reaches_the_notifier(synth: Any, product: Any) -> None:
    template = delivery(synth, product)
    subscriptions = template.find_resources(
        "AWS::SNS::Subscription", {"Properties": {"Protocol": "lambda"}}
    )
    topics = template.find_resources("AWS::SNS::Topic")
    subscribed = {
        topics[s["Properties"]["TopicArn"]["Ref"]]["Properties"]["TopicName"]
        for s in subscriptions.values()
    }
    manifest = product.manifest
    manual = [g.name for g in manifest.pipeline_gates if g.kind is GateKind.MANUAL]
    assert subscribed == {f"mlgate-{manifest.product.name}-gate-{g}" for g in manual}


def test_the_callback_is_a_public_url_guarded_by_slack_signatures(synth: Any, product: Any) -> None:
    template = delivery(synth, product)
    template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "NONE"})
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "gate_callback.handler.handler",
            "Environment": {
                "Variables": Match.object_like({"SLACK_SIGNING_SECRET_ARN": Match.any_value()})
            },
        },
    )


def test_release_rule_matches_approved_versions_of_this_product_only(
    synth: Any, product: Any
) -> None:
    delivery(synth, product).has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {
                    "ModelPackageGroupName": [f"mlgate-{product.manifest.product.name}"],
                    "ModelApprovalStatus": ["Approved"],
                },
            }
        },
    )


def test_the_verifier_sends_a_record_in_the_payload_layout(synth: Any, product: Any) -> None:
    """The sample request comes from the product (its sample file, or its schema), and has
    one value per payload column, as the endpoint expects."""
    manifest = product.manifest
    (verifier,) = [
        f
        for f in delivery(synth, product).find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "deploy_verifier.handler.handler"
    ]
    record = verifier["Properties"]["Environment"]["Variables"]["SAMPLE_PAYLOAD"]
    assert record == manifest.sample_record
    assert len(record.split(",")) == len(manifest.payload_columns)


def test_the_verifier_may_record_what_each_environment_served_and_nothing_else(
    synth: Any, product: Any
) -> None:
    """Its served records (issue 34's rollback reads them): the audit table named, with the
    manifest's retention, and PutItem on "served#" keys only; without AUDIT_TABLE it would
    write none and a rollback would find no version to go back to."""
    manifest = product.manifest
    template = delivery(synth, product)
    resources = template.to_json()["Resources"]
    ((logical, verifier),) = [
        (k, f)
        for k, f in resources.items()
        if f["Type"] == "AWS::Lambda::Function"
        and f["Properties"]["Handler"] == "deploy_verifier.handler.handler"
    ]
    variables = verifier["Properties"]["Environment"]["Variables"]
    assert variables["AUDIT_TABLE"] == naming.Names.of(manifest).audit_table()
    assert variables["AUDIT_RETENTION_DAYS"] == str(manifest.retention.audit)
    role = verifier["Properties"]["Role"]["Fn::GetAtt"][0]
    writes = [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "dynamodb" in json.dumps(statement["Action"])
    ]
    expected = [
        ("dynamodb:PutItem", {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["served#*"]}})
    ]
    if any(manifest.env_serving(env).shadow for env in ("staging", "prod")):
        # And its shadow test's verdict, read back on a retry.
        shadow = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["shadow#*"]}}
        expected.append((["dynamodb:GetItem", "dynamodb:PutItem"], shadow))
    assert [(w["Action"], w["Condition"]) for w in writes] == expected, logical


def test_source_is_release_json_in_a_versioned_bucket_started_by_the_release_hook(
    synth: Any, product: Any
) -> None:
    source = stages(synth, product)[0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "S3"
    assert source["Configuration"]["S3ObjectKey"] == "release.json"
    assert source["Configuration"]["PollForSourceChanges"] is False


def test_every_manual_gate_has_its_own_topic_summary_and_timeout(synth: Any, product: Any) -> None:
    by_name = {s["Name"]: s for s in stages(synth, product)}
    topics = delivery(synth, product).find_resources("AWS::SNS::Topic")
    topic_names = {logical: t["Properties"].get("TopicName") for logical, t in topics.items()}
    for gate in product.manifest.pipeline_gates:
        if gate.kind is not GateKind.MANUAL:
            continue
        (action,) = by_name[naming.pascal(gate.name)]["Actions"]
        assert action["ActionTypeId"]["Category"] == "Approval"
        assert action["TimeoutInMinutes"] == gate.timeout_hours * 60
        custom = action["Configuration"]["CustomData"]
        assert custom.startswith(f"{gate.name}: {gate.description}")
        assert len(custom) <= 500
        topic_logical = action["Configuration"]["NotificationArn"]["Ref"]
        assert (
            topic_names[topic_logical] == f"mlgate-{product.manifest.product.name}-gate-{gate.name}"
        )


def test_each_gate_brief_is_mailed_to_that_gate_s_approvers_only(synth: Any, product: Any) -> None:
    template = delivery(synth, product)
    subscriptions = template.find_resources(
        "AWS::SNS::Subscription", {"Properties": {"Protocol": "email"}}
    )
    topics = template.find_resources("AWS::SNS::Topic")
    mailed: dict[str, set[str]] = {}
    for sub in subscriptions.values():
        name = topics[sub["Properties"]["TopicArn"]["Ref"]]["Properties"]["TopicName"]
        mailed.setdefault(name, set()).add(sub["Properties"]["Endpoint"])
    for gate in product.manifest.pipeline_gates:
        if gate.kind is GateKind.MANUAL:
            expected = {product.manifest.contact(a).email for a in gate.approvers}
            assert mailed[f"mlgate-{product.manifest.product.name}-brief-{gate.name}"] == expected


def test_deploy_stages_update_each_environment_s_serving_stack(synth: Any, product: Any) -> None:
    by_name = {s["Name"]: s for s in stages(synth, product)}
    for env in ("staging", "prod"):
        (action,) = by_name[f"Deploy{env.capitalize()}"]["Actions"]
        assert action["ActionTypeId"]["Provider"] == "Lambda"
        params = json.loads(action["Configuration"]["UserParameters"])
        manifest = product.manifest
        name = manifest.product.name
        account = manifest.environment(env).account
        # The deployer passes the Serving stack's own CloudFormation service role (issue 29).
        expected = {
            "environment": env,
            "stack": f"mlgate-{name}-{env}-serving",
            "service_role": f"arn:aws:iam::{account}:role/mlgate-{name}-{env}-serving-cfn",
        }
        if manifest.is_remote(env):
            # In an account of its own, the deployer acts through that account's deploy role.
            account = manifest.environment(env).account
            expected["role_arn"] = f"arn:aws:iam::{account}:role/mlgate-{name}-{env}-deploy"
        assert params == expected
        (verify,) = by_name[f"Verify{env.capitalize()}"]["Actions"]
        verified = {"environment": env, **checked(manifest, env)}
        if manifest.is_remote(env):
            account = manifest.environment(env).account
            verified["role_arn"] = f"arn:aws:iam::{account}:role/mlgate-{name}-{env}-verify"
        assert json.loads(verify["Configuration"]["UserParameters"]) == verified


def test_deployer_may_update_only_the_home_serving_stacks(synth: Any, product: Any) -> None:
    """Serving stacks in the home account; one in another account is reached through that
    account's deploy role (tests/stacks/test_cross_account.py)."""
    manifest = product.manifest
    home = manifest.environments.staging
    local = sorted(env for env in ("prod", "staging") if not manifest.is_remote(env))  # type: ignore[arg-type]
    delivery(synth, product).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": [
                                "cloudformation:DescribeStackEvents",
                                "cloudformation:DescribeStacks",
                                "cloudformation:UpdateStack",
                            ],
                            "Effect": "Allow",
                            "Resource": [
                                f"arn:aws:cloudformation:{home.region}:{home.account}:stack/"
                                f"mlgate-{manifest.product.name}-{env}-serving/*"
                                for env in local
                            ]
                            if len(local) > 1
                            else f"arn:aws:cloudformation:{home.region}:{home.account}:stack/"
                            f"mlgate-{manifest.product.name}-{local[0]}-serving/*",
                        }
                    ]
                )
            }
        },
    )


def test_deployer_may_pass_only_the_home_serving_cfn_roles(synth: Any, product: Any) -> None:
    """Not CDK's bootstrap execution role (issue 29): whoever runs as the deployer could submit
    any template with it; only to CloudFormation. The rollback command's role (which updates
    the same stacks the same way) is held to the same, and no other role may pass them."""
    manifest = product.manifest
    home = manifest.environments.staging
    local = sorted(env for env in ("prod", "staging") if not manifest.is_remote(env))  # type: ignore[arg-type]
    template = delivery(synth, product).to_json()
    resources = template["Resources"]
    passes = {
        resources[resource["Properties"]["Roles"][0]["Ref"]]["Properties"]["RoleName"]: statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "iam:PassRole" in statement["Action"]
        and "serving-cfn" in json.dumps(statement["Resource"])
    }
    roles = [
        f"arn:aws:iam::{home.account}:role/mlgate-{manifest.product.name}-{env}-serving-cfn"
        for env in local
    ]
    names = naming.Names.of(manifest)
    expected = {
        "Action": "iam:PassRole",
        "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        "Effect": "Allow",
        "Resource": roles if len(roles) > 1 else roles[0],
    }
    assert passes == {names.deployer_role(): expected, names.rollback_role(): expected}
    assert "cfn-exec-role" not in json.dumps(template)


def test_audit_trail_is_encrypted_recoverable_and_retained(synth: Any, product: Any) -> None:
    delivery(synth, product).has_resource(
        "AWS::DynamoDB::GlobalTable",
        {
            "Properties": Match.object_like(
                {
                    "TableName": f"mlgate-{product.manifest.product.name}-audit",
                    "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
                    "Replicas": [
                        Match.object_like(
                            {
                                "PointInTimeRecoverySpecification": {
                                    "PointInTimeRecoveryEnabled": True
                                },
                                "DeletionProtectionEnabled": True,
                            }
                        )
                    ],
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )


def foundation(synth: Any, product: Any) -> Any:
    return synth.template(product.foundation)


def test_the_idempotency_table_is_the_product_s_encrypted_recoverable_ttl_table(
    synth: Any, product: Any
) -> None:
    foundation(synth, product).has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "TableName": f"mlgate-{product.manifest.product.name}-idempotency",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "Replicas": [
                Match.object_like(
                    {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}
                )
            ],
        },
    )


def policy_statements(template: Any, hook: str) -> list[dict[str, Any]]:
    """Statements of the policies attached to the role of `hook`'s function."""
    functions = template.find_resources("AWS::Lambda::Function")
    (role,) = [
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in functions.values()
        if f["Properties"]["Handler"] == f"{hook}.handler.handler"
    ]
    return [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def leading_keys(statements: list[dict[str, Any]], action: str) -> list[list[str]]:
    return [
        s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for s in statements
        if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


def test_each_hook_writes_only_its_own_key_prefixes(synth: Any, product: Any) -> None:
    template = delivery(synth, product)
    expected = {
        "release": [["gate#*"], ["release#*", "release.*"]],
        "quality_gate": [["gate#*"], ["quality_gate#*", "quality_gate.*"]],
        "gate_notifier": [["request#*"], ["gate#*"], ["gate_notifier#*", "gate_notifier.*"]],
        "gate_callback": [["gate#*"]],
    }
    if product.extra["delivery"].quality_gate is None:
        del expected["quality_gate"]
    for hook, prefixes in expected.items():
        statements = policy_statements(template, hook)
        found = leading_keys(statements, "dynamodb:PutItem")
        assert sorted(found) == sorted(prefixes), hook
        # The audit trail's events are appended, never changed (issue 29): IAM holds it.
        for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem"):
            assert not any("gate#*" in keys for keys in leading_keys(statements, action)), hook


def test_asynchronous_hooks_send_failed_events_to_an_encrypted_queue_watched_by_on_call(
    synth: Any, product: Any
) -> None:
    template = delivery(synth, product)
    configs = template.find_resources("AWS::Lambda::EventInvokeConfig")
    # deployer, verifier, notifier, release, the callback (for the GateExpired rule), the model
    # card hook, the rollback hook (for the verified-release rule), and the quality gate where
    # there is one
    has_gate = product.extra["delivery"].quality_gate is not None
    assert len(configs) == 7 + has_gate
    for config in configs.values():
        target = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        assert "Fn::GetAtt" in target
    template.has_resource_properties(
        "AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value(), "MessageRetentionPeriod": 1209600}
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": naming.Names.home(product.manifest).alarm(
                "system", "hook-release-failed", "critical"
            ),
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Threshold": 0,
            "AlarmActions": [Match.any_value()],
        },
    )


def test_the_public_callback_reserves_concurrency_only_where_the_manifest_asks(
    synth: Any, product: Any
) -> None:
    """Lambda refuses a reservation that leaves fewer than 100 executions unreserved, which a
    new account's limit cannot: none by default, the manifest's where it asks."""
    (callback,) = [
        f["Properties"]
        for f in delivery(synth, product).find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "gate_callback.handler.handler"
    ]
    asked = product.manifest.delivery.callback_reserved_concurrency
    assert callback.get("ReservedConcurrentExecutions") == asked


def test_the_callback_s_expired_gate_events_have_an_on_failure_destination(
    synth: Any, product: Any
) -> None:
    """The GateExpired rule invokes the callback asynchronously: an event Lambda gave up on
    lands in a dead-letter queue whose alarm tells on-call, as for every hook EventBridge
    invokes."""
    template = delivery(synth, product)
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "gate_callback.handler.handler"}}
    )
    (logical,) = functions
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": logical},
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": Match.string_like_regexp("/system/hook-gate-callback-failed/"),
            "MetricName": "ApproximateNumberOfMessagesVisible",
        },
    )


def test_the_notifier_serves_this_product_s_release_pipeline_only(synth: Any, product: Any) -> None:
    delivery(synth, product).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "gate_notifier.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"RELEASE_PIPELINE": f"mlgate-{product.manifest.product.name}-release"}
                )
            },
        },
    )


def test_a_remote_prod_drift_responder_keeps_its_records_in_its_own_account(
    cross_account: Any,
) -> None:
    product = cross_account.products[0]
    name = product.manifest.product.name
    prod = next(s for s in product.all if s.stack_name == f"mlgate-{name}-prod-foundation")
    assert prod.account == product.manifest.environments.prod.account
    cross_account.template(prod).has_resource_properties(
        "AWS::DynamoDB::GlobalTable", {"TableName": f"mlgate-{name}-prod-idempotency"}
    )


def test_the_gate_wait_alarm_counts_expired_gates_not_rejections(synth: Any, product: Any) -> None:
    template = delivery(synth, product)
    release = f"mlgate-{product.manifest.product.name}-release"
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": Match.string_like_regexp("gate-waiting-too-long"),
            "Namespace": "mlgate/gates",
            "MetricName": "GateExpired",
            "Dimensions": [{"Name": "Pipeline", "Value": release}],
            "Statistic": "Sum",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )
    # The failed-approval events go to the gate callback, which tells expiry from rejection.
    (rule,) = [
        r
        for r in template.find_resources("AWS::Events::Rule").values()
        if r["Properties"].get("Name") == f"mlgate-{product.manifest.product.name}-gate-expired"
    ]
    ((target,),) = [rule["Properties"]["Targets"]]
    assert "GateCallback" in json.dumps(target["Arn"])


def test_each_brief_links_the_staging_monitoring_reports(synth: Any, product: Any) -> None:
    """The version under review serves staging: its brief links that environment's reports,
    in the home artifact bucket, under the engine's reports prefix."""
    from mlgate.infra.naming import Names
    from mlgate.manifest import MonitoringEngine

    m = product.manifest
    home = m.environments.staging
    notifier = next(
        f
        for f in delivery(synth, product).find_resources("AWS::Lambda::Function").values()
        if "MLGATE_CONTEXT" in f["Properties"].get("Environment", {}).get("Variables", {})
    )
    value = notifier["Properties"]["Environment"]["Variables"]["MLGATE_CONTEXT"]
    if isinstance(value, dict):  # Fn::Join around the topic ARNs, which sit inside strings
        value = "".join(p if isinstance(p, str) else "token" for p in value["Fn::Join"][1])
    context = json.loads(value)
    names = Names.of(m, "staging")
    bucket = Names.of(m).bucket("artifacts", home.account, home.region)
    evidently = m.monitoring.engine is MonitoringEngine.EVIDENTLY
    assert context["monitoring_url"] == (
        f"https://s3.console.aws.amazon.com/s3/buckets/{bucket}?region={home.region}"
        f"&prefix={names.monitoring_reports(evidently)}/&showversions=false"
    )


def test_every_action_configuration_value_fits_codepipeline(synth: Any, product: Any) -> None:
    """CodePipeline refuses an action configuration value over 1,000 characters when the
    pipeline is created or updated: each example's every value fits, with room for a longer
    product name."""
    from mlgate.infra.constructs.release_pipeline import USER_PARAMETERS_LIMIT

    (pipeline,) = delivery(synth, product).find_resources("AWS::CodePipeline::Pipeline").values()
    values = {
        f"{stage['Name']}/{action['Name']}/{key}": value
        for stage in pipeline["Properties"]["Stages"]
        for action in stage["Actions"]
        for key, value in action.get("Configuration", {}).items()
        if isinstance(value, str)
    }
    assert any(key.endswith("/UserParameters") for key in values)
    assert {k: len(v) for k, v in values.items() if len(v) > USER_PARAMETERS_LIMIT * 0.8} == {}


def test_user_parameters_too_long_for_codepipeline_stop_the_synth_naming_the_action() -> None:
    from mlgate.infra.constructs.release_pipeline import user_parameters

    assert user_parameters("CheckEndpointProd", {"b": 1, "a": "x"}) == '{"a": "x", "b": 1}'
    long = {"environment": "prod", "batch": {"function": "f" * 990}}
    with pytest.raises(ValueError, match=r"CheckBatchProd action would pass 1\d{3} characters"):
        user_parameters("CheckBatchProd", long)
    with pytest.raises(ValueError, match="its longest part: 'batch'"):
        user_parameters("CheckBatchProd", long)
