"""Training stack: registry, the SDK-authored pipeline, its triggers and a least-privilege role."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from mlgate.manifest import load_manifest

from ..conftest import DEFAULT_MANIFEST

MANIFEST = load_manifest(DEFAULT_MANIFEST)


def training(synth: Any) -> Any:
    return synth.template(synth.product().extra["training"])


def pipeline_body(synth: Any) -> dict[str, Any]:
    (pipeline,) = training(synth).find_resources("AWS::SageMaker::Pipeline").values()
    join = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Join"]
    text = "".join(part if isinstance(part, str) else "KMS_KEY_ARN" for part in join[1])
    return dict(json.loads(text))


def test_model_package_group_and_pipeline_are_named_for_the_product(synth: Any) -> None:
    template = training(synth)
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "mlgate-fraud-detection"}
    )
    template.has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {
            "PipelineName": "mlgate-fraud-detection-training",
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": 4},
        },
    )


def test_deployed_definition_is_the_authored_one_with_real_locations(synth: Any) -> None:
    body = pipeline_body(synth)
    assert [s["Name"] for s in body["Steps"]] == [
        "Preprocess",
        "Train",
        "Evaluate",
        "DataQualityBaseline",
        "CheckPrecision",
    ]
    text = json.dumps(body)
    assert "placeholder" not in text
    assert "s3://mlgate-fraud-detection-curated-111111111111-eu-west-1/transactions/" in text
    assert "cdk-hnb659fds-assets-111111111111-eu-west-1" in text
    assert '"VolumeKmsKeyId": "KMS_KEY_ARN"' in text


def test_pipeline_starts_after_etl_and_on_the_schedule_through_the_starter(synth: Any) -> None:
    template = training(synth)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"jobName": ["mlgate-fraud-detection-quality"], "state": ["SUCCEEDED"]},
            },
            "Targets": [Match.object_like({"RetryPolicy": {"MaximumRetryAttempts": 2}})],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": MANIFEST.model.retrain_schedule}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "pipeline_starter.handler.handler",
            "Environment": {
                "Variables": Match.object_like({"PIPELINE_NAME": "mlgate-fraud-detection-training"})
            },
        },
    )


def statements(template: Any) -> list[dict[str, Any]]:
    return [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_execution_role_has_no_managed_full_access_and_stays_in_the_product(synth: Any) -> None:
    template = training(synth)
    roles = template.find_resources("AWS::IAM::Role")
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"], "no AmazonSageMakerFullAccess"
    found = statements(template)
    s3 = [s for s in found if any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    resources = {r for s in s3 for r in _list(s["Resource"]) if isinstance(r, str)}
    assert (
        "arn:aws:s3:::mlgate-fraud-detection-curated-111111111111-eu-west-1/transactions/*"
        in resources
    )
    assert (
        "arn:aws:s3:::mlgate-fraud-detection-artifacts-111111111111-eu-west-1/training/fraud-detection/*"
        in resources
    )
    ecr = next(s for s in found if "ecr:BatchGetImage" in _list(s["Action"]))
    assert ecr["Resource"] == [
        "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-xgboost",
        "arn:aws:ecr:eu-west-1:468650794304:repository/sagemaker-model-monitor-analyzer",
    ]
    sagemaker = {a for s in found for a in _list(s["Action"]) if str(a).startswith("sagemaker:")}
    assert "sagemaker:*" not in sagemaker
    assert "sagemaker:CreateModelPackage" in sagemaker


def test_starter_may_only_list_and_start_this_pipeline(synth: Any) -> None:
    found = statements(training(synth))
    start = next(s for s in found if "sagemaker:StartPipelineExecution" in _list(s["Action"]))
    assert start["Resource"] == (
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlgate-fraud-detection-training"
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
