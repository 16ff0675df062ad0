"""The SageMaker Pipeline definition: steps in order, thresholds equal to the manifest's,
registration as PendingManualApproval, and built without touching the network."""

from __future__ import annotations

from typing import Any

from mlgate.manifest import Direction
from mlgate.ml.pipeline import definition, image_uris


def flatten(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        out.append(step)
        if step["Type"] == "Condition":
            out += flatten(step["Arguments"]["IfSteps"]) + flatten(step["Arguments"]["ElseSteps"])
    return out


def test_definition_is_built_offline(no_network: list[Any], manifest: Any, settings: Any) -> None:
    body = definition(manifest, settings)
    assert body["Steps"]
    assert no_network == [], f"the SDK tried to connect to {no_network}"


def test_steps_run_preprocess_train_evaluate_baseline_then_the_checks(
    manifest: Any, settings: Any
) -> None:
    top = definition(manifest, settings)["Steps"]
    assert [(s["Name"], s["Type"]) for s in top] == [
        ("Preprocess", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("DataQualityBaseline", "QualityCheck"),
        ("CheckPrecision", "Condition"),
    ]


def test_one_check_per_manifest_metric_with_its_threshold_and_a_named_failure(
    manifest: Any, settings: Any
) -> None:
    steps = flatten(definition(manifest, settings)["Steps"])
    checks = [s for s in steps if s["Type"] == "Condition"]
    assert len(checks) == len(manifest.metrics.model_metrics)
    for metric, check in zip(manifest.metrics.model_metrics, checks, strict=True):
        (condition,) = check["Arguments"]["Conditions"]
        expected = (
            "GreaterThanOrEqualTo"
            if metric.direction is Direction.AT_LEAST
            else "LessThanOrEqualTo"
        )
        assert condition["Type"] == expected
        assert condition["RightValue"] == metric.threshold
        (fail,) = check["Arguments"]["ElseSteps"]
        assert fail["Type"] == "Fail"
        message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
        assert message[0] == f"{metric.name.value} on the test split is"
        assert str(metric.threshold) in message[2]


def test_registration_waits_for_the_ml_lead_and_carries_evidence(
    manifest: Any, settings: Any
) -> None:
    (register,) = [
        s for s in flatten(definition(manifest, settings)["Steps"]) if s["Type"] == "RegisterModel"
    ]
    args = register["Arguments"]
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    assert args["ModelPackageGroupName"] == "mlgate-fraud-detection"
    quality = args["ModelMetrics"]["ModelDataQuality"]
    assert quality["Statistics"]["S3Uri"] == {
        "Get": "Steps.DataQualityBaseline.CalculatedBaselineStatistics"
    }
    assert quality["Constraints"]["S3Uri"] == {
        "Get": "Steps.DataQualityBaseline.CalculatedBaselineConstraints"
    }
    meta = args["CustomerMetadataProperties"]
    assert meta["mlgate:manifest-sha256"] == settings.manifest_sha256
    assert meta["mlgate:code-sha256"] == settings.code_sha256
    assert meta["mlgate:threshold:precision"] == "at_least 0.95"


def test_training_uses_the_manifest_hyper_parameters_and_the_regional_image(
    manifest: Any, settings: Any
) -> None:
    train = definition(manifest, settings)["Steps"][1]["Arguments"]
    assert (
        train["AlgorithmSpecification"]["TrainingImage"]
        == image_uris("eu-west-1", "1.7-1")["xgboost"]
    )
    assert train["HyperParameters"] == {
        k: str(v) for k, v in manifest.model.hyperparameters.items()
    }
    assert train["ResourceConfig"]["InstanceType"] == manifest.model.training_instance_type
    assert train["OutputDataConfig"]["KmsKeyId"] == settings.kms_key_arn


def test_definition_is_deterministic(manifest: Any, settings: Any) -> None:
    assert definition(manifest, settings) == definition(manifest, settings)
