"""Data stack: encrypted buckets, Glue 5.0 jobs, the manifest's quality rules, the workflow."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from mlgate.events import etl_succeeded
from mlgate.naming import Names
from mlgate.stacks.data import dqdl, glue_types


def data(synth: Any, product: Any) -> Any:
    return synth.template(product.extra["data"])


def test_raw_and_curated_buckets_use_the_product_key_and_are_never_lost(
    synth: Any, product: Any
) -> None:
    buckets = data(synth, product).find_resources("AWS::S3::Bucket")
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


def test_jobs_run_glue_5_with_bookmarks_logging_metrics_and_autoscaling(
    synth: Any, product: Any
) -> None:
    template = data(synth, product)
    template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "Name": f"mlgate-{product.manifest.product.name}-curate",
            "GlueVersion": "5.0",
            "WorkerType": "G.1X",
            # Glue reads NumberOfWorkers as auto scaling's upper bound.
            "NumberOfWorkers": product.manifest.data.etl_max_workers,
            "Timeout": product.manifest.data.etl_timeout_minutes,
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


def test_security_configuration_encrypts_s3_logs_and_bookmarks(synth: Any, product: Any) -> None:
    config = next(
        iter(data(synth, product).find_resources("AWS::Glue::SecurityConfiguration").values())
    )
    encryption = config["Properties"]["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"


def test_quality_ruleset_is_exactly_the_manifest_rules(synth: Any, product: Any) -> None:
    ruleset = next(
        iter(data(synth, product).find_resources("AWS::Glue::DataQualityRuleset").values())
    )
    text = ruleset["Properties"]["Ruleset"]
    assert text == dqdl(product.manifest.data.quality_rules)
    assert text.count(",\n") == len(product.manifest.data.quality_rules) - 1
    for rule in product.manifest.data.quality_rules:
        assert rule in text


def test_workflow_runs_crawl_then_curate_then_quality_on_the_schedule(
    synth: Any, product: Any
) -> None:
    triggers = data(synth, product).find_resources("AWS::Glue::Trigger")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for trigger in triggers.values():
        by_type.setdefault(trigger["Properties"]["Type"], []).append(trigger["Properties"])
    (scheduled,) = by_type["SCHEDULED"]
    assert scheduled["Schedule"] == product.manifest.data.schedule
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


def test_failures_reach_on_call_and_success_is_the_training_signal(
    synth: Any, product: Any
) -> None:
    name = product.manifest.product.name
    template = data(synth, product)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {
                    "jobName": [f"mlgate-{name}-curate", f"mlgate-{name}-quality"],
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
    pattern = etl_succeeded(name)
    assert pattern.detail == {
        "jobName": [Names(name).quality_job()],
        "state": ["SUCCEEDED"],
    }


def test_the_curated_table_is_the_manifest_schema(synth: Any, product: Any) -> None:
    """Columns, types and partition keys as data.curated declares them, for any product."""
    schema = product.manifest.data.curated
    (table,) = data(synth, product).find_resources("AWS::Glue::Table").values()
    described = table["Properties"]["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in described["StorageDescriptor"]["Columns"]]
    assert columns == [(c.name, glue_types()[c.type].input_string) for c in schema.data_columns]
    keys = [(c["Name"], c["Type"]) for c in described.get("PartitionKeys", [])]
    assert keys == [
        (k, glue_types()[schema.column(k).type].input_string) for k in schema.partition_keys
    ]


def test_the_curation_job_reads_every_source_in_its_format(synth: Any, product: Any) -> None:
    import json

    manifest = product.manifest
    jobs = data(synth, product).find_resources("AWS::Glue::Job")
    (curate,) = [j for j in jobs.values() if j["Properties"]["Name"].endswith("-curate")]
    arguments = curate["Properties"]["DefaultArguments"]
    sources = arguments["--sources"]
    text = json.dumps(sources)
    for source in manifest.data.sources:
        assert source.name in text
        assert source.format in text
        assert source.prefix in text
    schema = json.loads(arguments["--schema"])
    assert [c["name"] for c in schema["columns"]] == list(manifest.data.curated.names)
    assert schema["partition_keys"] == list(manifest.data.curated.partition_keys)
    assert arguments["--transform_module"] == manifest.data.transform.rsplit("/", 1)[-1][:-3]
    assert ".zip" in json.dumps(arguments["--extra-py-files"])


def test_the_incremental_raw_crawl_only_logs_schema_changes(synth: Any, product: Any) -> None:
    """CreateCrawler refuses CRAWL_NEW_FOLDERS_ONLY with any update or delete behaviour but LOG
    (https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html): the Data stack, and
    the Delivery stack that imports its table, would never be created."""
    (crawler,) = data(synth, product).find_resources("AWS::Glue::Crawler").values()
    props = crawler["Properties"]
    assert props["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert props["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
