"""Data stack: encrypted buckets, Glue 5.0 jobs, the manifest's quality rules, the workflow."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from mlgate.events import etl_succeeded, quality_job_name
from mlgate.manifest import load_manifest
from mlgate.stacks.data import dqdl

from ..conftest import DEFAULT_MANIFEST

MANIFEST = load_manifest(DEFAULT_MANIFEST)


def data(synth: Any) -> Any:
    return synth.template(synth.product().extra["data"])


def test_raw_and_curated_buckets_use_the_product_key_and_are_never_lost(synth: Any) -> None:
    buckets = data(synth).find_resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain"
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert "ImportValue" in str(sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
        assert "LoggingConfiguration" in props
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in r for r in rules)


def test_jobs_run_glue_5_with_bookmarks_logging_metrics_and_autoscaling(synth: Any) -> None:
    template = data(synth)
    template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "Name": "mlgate-fraud-detection-curate",
            "GlueVersion": "5.0",
            "WorkerType": "G.1X",
            "NumberOfWorkers": MANIFEST.data.etl_workers,
            "Timeout": MANIFEST.data.etl_timeout_minutes,
            "SecurityConfiguration": {"Ref": Match.string_like_regexp("^Encryption")},
            "Command": Match.object_like({"Name": "glueetl", "PythonVersion": "3"}),
            "DefaultArguments": Match.object_like(
                {
                    "--job-bookmark-option": "job-bookmark-enable",
                    "--enable-auto-scaling": "true",
                    "--enable-metrics": "",
                    "--enable-continuous-cloudwatch-log": "true",
                    "--extra-py-files": Match.any_value(),
                }
            ),
        },
    )


def test_security_configuration_encrypts_s3_logs_and_bookmarks(synth: Any) -> None:
    config = next(iter(data(synth).find_resources("AWS::Glue::SecurityConfiguration").values()))
    encryption = config["Properties"]["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"


def test_quality_ruleset_is_exactly_the_manifest_rules(synth: Any) -> None:
    ruleset = next(iter(data(synth).find_resources("AWS::Glue::DataQualityRuleset").values()))
    text = ruleset["Properties"]["Ruleset"]
    assert text == dqdl(MANIFEST.data.quality_rules)
    assert text.count(",\n") == len(MANIFEST.data.quality_rules) - 1
    for rule in MANIFEST.data.quality_rules:
        assert rule in text


def test_workflow_runs_crawl_then_curate_then_quality_on_the_schedule(synth: Any) -> None:
    triggers = data(synth).find_resources("AWS::Glue::Trigger")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for trigger in triggers.values():
        by_type.setdefault(trigger["Properties"]["Type"], []).append(trigger["Properties"])
    (scheduled,) = by_type["SCHEDULED"]
    assert scheduled["Schedule"] == MANIFEST.data.schedule
    crawler = scheduled["Actions"][0]["CrawlerName"]
    chain = {
        str(
            t["Predicate"]["Conditions"][0].get("CrawlerName")
            or t["Predicate"]["Conditions"][0]["JobName"]
        ): str(t["Actions"][0]["JobName"])
        for t in by_type["CONDITIONAL"]
    }
    curate = chain[str(crawler)]
    assert "CurateJob" in curate
    assert "QualityJob" in chain[curate]
    assert all(t["Properties"]["WorkflowName"] for t in triggers.values())


def test_failures_reach_on_call_and_success_is_the_training_signal(synth: Any) -> None:
    template = data(synth)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {
                    "jobName": ["mlgate-fraud-detection-curate", "mlgate-fraud-detection-quality"],
                    "state": ["FAILED", "TIMEOUT", "STOPPED", "ERROR"],
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "InputTransformer": Match.object_like(
                            {"InputTemplate": Match.string_like_regexp("Runbook: https://")}
                        )
                    }
                )
            ],
        },
    )
    pattern = etl_succeeded("fraud-detection")
    assert pattern.detail == {
        "jobName": [quality_job_name("fraud-detection")],
        "state": ["SUCCEEDED"],
    }
