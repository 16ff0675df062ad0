"""Delivery stack: the release pipeline carries the manifest's gates, in order."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from mlgate import naming
from mlgate.manifest import GateKind, load_manifest

from ..conftest import DEFAULT_MANIFEST

MANIFEST = load_manifest(DEFAULT_MANIFEST)


def delivery(synth: Any) -> Any:
    return synth.template(synth.product().extra["delivery"])


def stages(synth: Any) -> list[dict[str, Any]]:
    pipelines = delivery(synth).find_resources("AWS::CodePipeline::Pipeline")
    (pipeline,) = pipelines.values()
    return list(pipeline["Properties"]["Stages"])


def test_pipeline_is_v2_and_queues_releases(synth: Any) -> None:
    delivery(synth).has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "PipelineType": "V2",
            "ExecutionMode": "QUEUED",
            "Name": "mlgate-fraud-detection-release",
        },
    )


def test_stages_follow_the_release_flow_and_the_manifest_gates_in_order(synth: Any) -> None:
    gates = [naming.pascal(g.name) for g in MANIFEST.pipeline_gates]
    assert gates == ["QualityGate", "BusinessSignoff", "ComplianceReview", "GoLive"]
    names = [s["Name"] for s in stages(synth)]
    assert names == ["Source", "DeployStaging", "VerifyStaging", *gates, "DeployProd", "VerifyProd"]


def test_the_automated_gate_runs_the_quality_gate_hook_on_staging(synth: Any) -> None:
    by_name = {s["Name"]: s for s in stages(synth)}
    (action,) = by_name["QualityGate"]["Actions"]
    assert action["ActionTypeId"]["Provider"] == "Lambda"
    assert json.loads(action["Configuration"]["UserParameters"]) == {
        "endpoint": "mlgate-fraud-detection-staging",
        "window_minutes": 60,
        "execution": "#{codepipeline.PipelineExecutionId}",
    }
    delivery(synth).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "quality_gate.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"MLGATE_THRESHOLDS": Match.string_like_regexp("precision")}
                )
            },
        },
    )


def test_every_gate_topic_reaches_the_notifier(synth: Any) -> None:
    template = delivery(synth)
    subscriptions = template.find_resources(
        "AWS::SNS::Subscription", {"Properties": {"Protocol": "lambda"}}
    )
    topics = template.find_resources("AWS::SNS::Topic")
    subscribed = {
        topics[s["Properties"]["TopicArn"]["Ref"]]["Properties"]["TopicName"]
        for s in subscriptions.values()
    }
    manual = [g.name for g in MANIFEST.pipeline_gates if g.kind is GateKind.MANUAL]
    assert subscribed == {f"mlgate-fraud-detection-gate-{g}" for g in manual}


def test_the_callback_is_a_public_url_guarded_by_slack_signatures(synth: Any) -> None:
    template = delivery(synth)
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


def test_release_rule_matches_approved_versions_of_this_product_only(synth: Any) -> None:
    delivery(synth).has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {
                    "ModelPackageGroupName": ["mlgate-fraud-detection"],
                    "ModelApprovalStatus": ["Approved"],
                },
            }
        },
    )


def test_sample_record_has_the_model_s_feature_layout() -> None:
    from mlgate.ml.scripts.preprocess import feature_names
    from mlgate.stacks.delivery import SAMPLE_RECORD

    assert len(SAMPLE_RECORD.split(",")) == len(feature_names())


def test_source_is_release_json_in_a_versioned_bucket_started_by_the_release_hook(
    synth: Any,
) -> None:
    source = stages(synth)[0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "S3"
    assert source["Configuration"]["S3ObjectKey"] == "release.json"
    assert source["Configuration"]["PollForSourceChanges"] is False


def test_every_manual_gate_has_its_own_topic_summary_and_timeout(synth: Any) -> None:
    by_name = {s["Name"]: s for s in stages(synth)}
    topics = delivery(synth).find_resources("AWS::SNS::Topic")
    topic_names = {logical: t["Properties"].get("TopicName") for logical, t in topics.items()}
    for gate in MANIFEST.pipeline_gates:
        if gate.kind is not GateKind.MANUAL:
            continue
        (action,) = by_name[naming.pascal(gate.name)]["Actions"]
        assert action["ActionTypeId"]["Category"] == "Approval"
        assert action["TimeoutInMinutes"] == gate.timeout_hours * 60
        custom = action["Configuration"]["CustomData"]
        assert custom.startswith(f"{gate.name}: {gate.description}")
        assert len(custom) <= 500
        topic_logical = action["Configuration"]["NotificationArn"]["Ref"]
        assert topic_names[topic_logical] == f"mlgate-fraud-detection-gate-{gate.name}"


def test_each_gate_brief_is_mailed_to_that_gate_s_approvers_only(synth: Any) -> None:
    template = delivery(synth)
    subscriptions = template.find_resources(
        "AWS::SNS::Subscription", {"Properties": {"Protocol": "email"}}
    )
    topics = template.find_resources("AWS::SNS::Topic")
    mailed: dict[str, set[str]] = {}
    for sub in subscriptions.values():
        name = topics[sub["Properties"]["TopicArn"]["Ref"]]["Properties"]["TopicName"]
        mailed.setdefault(name, set()).add(sub["Properties"]["Endpoint"])
    for gate in MANIFEST.pipeline_gates:
        if gate.kind is GateKind.MANUAL:
            expected = {MANIFEST.contact(a).email for a in gate.approvers}
            assert mailed[f"mlgate-fraud-detection-brief-{gate.name}"] == expected


def test_deploy_stages_update_each_environment_s_serving_stack(synth: Any) -> None:
    by_name = {s["Name"]: s for s in stages(synth)}
    for env in ("staging", "prod"):
        (action,) = by_name[f"Deploy{env.capitalize()}"]["Actions"]
        assert action["ActionTypeId"]["Provider"] == "Lambda"
        params = json.loads(action["Configuration"]["UserParameters"])
        assert params == {"environment": env, "stack": f"mlgate-fraud-detection-{env}-serving"}
        (verify,) = by_name[f"Verify{env.capitalize()}"]["Actions"]
        assert json.loads(verify["Configuration"]["UserParameters"]) == {
            "environment": env,
            "endpoint": f"mlgate-fraud-detection-{env}",
        }


def test_deployer_may_update_only_the_two_serving_stacks(synth: Any) -> None:
    delivery(synth).has_resource_properties(
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
                                "arn:aws:cloudformation:eu-west-1:111111111111:stack/"
                                f"mlgate-fraud-detection-{env}-serving/*"
                                for env in ("prod", "staging")
                            ],
                        }
                    ]
                )
            }
        },
    )


def test_audit_trail_is_encrypted_recoverable_and_retained(synth: Any) -> None:
    delivery(synth).has_resource(
        "AWS::DynamoDB::GlobalTable",
        {
            "Properties": Match.object_like(
                {
                    "TableName": "mlgate-fraud-detection-audit",
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


def foundation(synth: Any) -> Any:
    return synth.template(synth.product().foundation)


def test_the_idempotency_table_is_the_product_s_encrypted_recoverable_ttl_table(
    synth: Any,
) -> None:
    foundation(synth).has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "TableName": "mlgate-fraud-detection-idempotency",
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


def test_each_hook_writes_only_its_own_key_prefixes(synth: Any) -> None:
    template = delivery(synth)
    expected = {
        "release": [["gate#*"], ["release#*", "release.*"]],
        "quality_gate": [["gate#*"], ["quality_gate#*", "quality_gate.*"]],
        "gate_notifier": [["request#*", "gate#*"], ["gate_notifier#*", "gate_notifier.*"]],
        "gate_callback": [["request#*", "gate#*"]],
    }
    for hook, prefixes in expected.items():
        found = leading_keys(policy_statements(template, hook), "dynamodb:PutItem")
        assert sorted(found) == sorted(prefixes), hook


def test_asynchronous_hooks_send_failed_events_to_an_encrypted_queue_watched_by_on_call(
    synth: Any,
) -> None:
    template = delivery(synth)
    configs = template.find_resources("AWS::Lambda::EventInvokeConfig")
    assert len(configs) == 5  # deployer, verifier, quality gate, notifier, release
    for config in configs.values():
        target = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        assert "Fn::GetAtt" in target
    template.has_resource_properties(
        "AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value(), "MessageRetentionPeriod": 1209600}
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "mlgate/fraud-detection/prod/system/release-failed/critical",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Threshold": 0,
            "AlarmActions": [Match.any_value()],
        },
    )


def test_the_public_callback_has_reserved_concurrency_and_no_failure_queue(synth: Any) -> None:
    delivery(synth).has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "gate_callback.handler.handler", "ReservedConcurrentExecutions": 5},
    )


def test_the_notifier_serves_this_product_s_release_pipeline_only(synth: Any) -> None:
    delivery(synth).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "gate_notifier.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"RELEASE_PIPELINE": "mlgate-fraud-detection-release"}
                )
            },
        },
    )


def test_a_remote_prod_drift_responder_keeps_its_records_in_its_own_account(
    cross_account: Any,
) -> None:
    from ..conftest import PROD_ACCOUNT

    product = cross_account.products[0]
    prod = next(s for s in product.all if s.stack_name == "mlgate-fraud-detection-prod-foundation")
    assert prod.account == PROD_ACCOUNT
    cross_account.template(prod).has_resource_properties(
        "AWS::DynamoDB::GlobalTable", {"TableName": "mlgate-fraud-detection-prod-idempotency"}
    )
