"""Pipeline settings shared by the ML tests (placeholders: nothing here reaches AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from mlgate.manifest import load_manifest

from ..conftest import DEFAULT_MANIFEST


@pytest.fixture(scope="session")
def manifest() -> Any:
    return load_manifest(DEFAULT_MANIFEST)


@pytest.fixture(scope="session")
def settings() -> Any:
    from mlgate.ml.pipeline import PipelineSettings

    return PipelineSettings(
        region="eu-west-1",
        role_arn="arn:aws:iam::111111111111:role/training",
        bucket="artifacts-bucket",
        prefix="training/fraud-detection",
        kms_key_arn="arn:aws:kms:eu-west-1:111111111111:key/test",
        curated_s3_uri="s3://curated-bucket/transactions/",
        preprocess_code_uri="s3://artifacts-bucket/code/preprocess.py",
        evaluate_code_uri="s3://artifacts-bucket/code/evaluate.py",
        model_package_group="mlgate-fraud-detection",
        manifest_sha256="0" * 64,
        code_sha256="1" * 64,
    )
