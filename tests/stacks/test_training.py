"""Training stack: registry, the SDK-authored pipeline, its triggers and a least-privilege role."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from mlgate.infra.ml.pipeline import image_uris


def training(synth: Any, product: Any) -> Any:
    return synth.template(product.extra["training"])


def home(product: Any) -> tuple[str, str, str]:
    """(product name, home account, home region)."""
    m = product.manifest
    return m.product.name, m.environments.staging.account, m.environments.staging.region


def pipeline_body(synth: Any, product: Any) -> dict[str, Any]:
    (pipeline,) = training(synth, product).find_resources("AWS::SageMaker::Pipeline").values()
    join = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Join"]
    text = "".join(part if isinstance(part, str) else "KMS_KEY_ARN" for part in join[1])
    return dict(json.loads(text))


def test_model_package_group_and_pipeline_are_named_for_the_product(
    synth: Any, product: Any
) -> None:
    name, _, _ = home(product)
    template = training(synth, product)
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": f"mlgate-{name}"}
    )
    template.has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {
            "PipelineName": f"mlgate-{name}-training",
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": 4},
        },
    )


def test_deployed_definition_is_the_authored_one_with_real_locations(
    synth: Any, product: Any
) -> None:
    name, account, region = home(product)
    body = pipeline_body(synth, product)
    first = product.manifest.metrics.model_metrics[0].name.value.title()
    assert [s["Name"] for s in body["Steps"]] == [
        "Preprocess",
        "Train",
        "Evaluate",
        *(["DataQualityBaseline"] if product.manifest.monitoring.engine == "model-monitor" else []),
        f"Check{first}",
    ]
    text = json.dumps(body)
    assert "placeholder" not in text
    assert f"s3://mlgate-{name}-curated-{account}-{region}/curated/" in text
    assert f"cdk-hnb659fds-assets-{account}-{region}" in text
    assert '"VolumeKmsKeyId": "KMS_KEY_ARN"' in text


def test_pipeline_starts_after_etl_and_on_the_schedule_through_the_starter(
    synth: Any, product: Any
) -> None:
    template = training(synth, product)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {
                    "jobName": [f"mlgate-{home(product)[0]}-quality"],
                    "state": ["SUCCEEDED"],
                },
            },
            "Targets": [Match.object_like({"RetryPolicy": {"MaximumRetryAttempts": 2}})],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": product.manifest.model.retrain_schedule}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "pipeline_starter.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"PIPELINE_NAME": f"mlgate-{home(product)[0]}-training"}
                )
            },
        },
    )


def statements(template: Any) -> list[dict[str, Any]]:
    return [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_execution_role_has_no_managed_full_access_and_stays_in_the_product(
    synth: Any, product: Any
) -> None:
    template = training(synth, product)
    roles = template.find_resources("AWS::IAM::Role")
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"], "no AmazonSageMakerFullAccess"
    found = statements(template)
    s3 = [s for s in found if any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    resources = {r for s in s3 for r in _list(s["Resource"]) if isinstance(r, str)}
    name, account, region = home(product)
    assert f"arn:aws:s3:::mlgate-{name}-curated-{account}-{region}/curated/*" in resources
    assert f"arn:aws:s3:::mlgate-{name}-artifacts-{account}-{region}/training/{name}/*" in resources
    ecr = next(s for s in found if "ecr:BatchGetImage" in _list(s["Action"]))
    # Exactly the images the pipeline runs: the product's model image and the baseline's.
    assert ecr["Resource"] == sorted(
        f"arn:aws:ecr:{region}:{uri.split('.')[0]}:repository/{uri.split('/', 1)[1].split(':')[0]}"
        for uri in image_uris(product.manifest, region).values()
    )
    sagemaker = {a for s in found for a in _list(s["Action"]) if str(a).startswith("sagemaker:")}
    assert "sagemaker:*" not in sagemaker
    assert "sagemaker:CreateModelPackage" in sagemaker


def test_starter_may_only_list_and_start_this_pipeline(synth: Any, product: Any) -> None:
    found = statements(training(synth, product))
    start = next(s for s in found if "sagemaker:StartPipelineExecution" in _list(s["Action"]))
    name, account, region = home(product)
    assert start["Resource"] == (
        f"arn:aws:sagemaker:{region}:{account}:pipeline/mlgate-{name}-training"
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
