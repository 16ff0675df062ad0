"""Data stack: encrypted buckets, Glue 5.0 jobs, the manifest's quality rules, the workflow."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mlgate.infra.events import etl_succeeded
from mlgate.infra.naming import Names
from mlgate.infra.stacks.data import dqdl, glue_types

from ..conftest import APPS


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
    etl = product.manifest.data
    # Glue auto scaling only sizes a run between etl_workers and etl_max_workers: equal, the
    # job runs at that fixed size.
    autoscaling = etl.etl_max_workers > etl.etl_workers
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
                    "--enable-auto-scaling": str(autoscaling).lower(),
                    "--enable-metrics": "",
                    "--extra-py-files": Match.any_value(),
                }
            ),
        },
    )
    # Glue 5.0 writes <prefix>/error and <prefix>/output: both made here, encrypted, retained
    # for a while; Glue 4.0's continuous-logging arguments are gone.
    prefix = f"/aws-glue/jobs/mlgate-{product.manifest.product.name}-etl"
    for job in template.find_resources("AWS::Glue::Job").values():
        arguments = job["Properties"]["DefaultArguments"]
        assert arguments["--custom-logGroup-prefix"] == prefix
        assert not [a for a in arguments if "continuous" in a]
    groups = {
        g["Properties"]["LogGroupName"]: g["Properties"]
        for g in template.find_resources("AWS::Logs::LogGroup").values()
    }
    for stream in ("error", "output"):
        assert groups[f"{prefix}/{stream}"]["KmsKeyId"]
        assert groups[f"{prefix}/{stream}"]["RetentionInDays"] == 365


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
    # Every trigger names the crawler and the jobs by Ref: CloudFormation creates them first.
    (crawler_id,) = data(synth, product).find_resources("AWS::Glue::Crawler")
    assert crawler == {"Ref": crawler_id}
    assert all("Ref" in t["Actions"][0]["JobName"] for t in by_type["CONDITIONAL"])


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
                    "state": ["FAILED", "TIMEOUT", "STOPPED"],
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


# --- issue 29: data kept only as long as the manifest says; access logs only from our buckets --

RETENTION_CLASSES = ("raw", "curated", "capture", "reports")


def _retentions(app_name: str) -> dict[str, Any]:
    """Retention by product: each example's manifest; the scaffold's defaults."""
    from mlgate.manifest import Retention, load_manifests

    from ..conftest import EXAMPLES

    if app_name == "scaffold":
        return {"churn-risk": Retention()}
    return {m.product.name: m.retention for m in load_manifests(EXAMPLES)}


def _buckets(app: Any) -> dict[str, dict[str, Any]]:
    """Every named bucket's properties, by BucketName."""
    return {
        r.props["BucketName"]: r.props
        for r in app.resources("AWS::S3::Bucket")
        if isinstance(r.props.get("BucketName"), str)
    }


def retention_problems(app: Any, retentions: dict[str, Any]) -> list[str]:
    """Each data class's S3 lifecycle: raw and curated buckets expire whole, every artifact
    bucket expires the capture and reports prefixes, each after the manifest's days, and the
    noncurrent versions they leave behind at most 30 days later (never longer than the class)."""
    from mlgate.infra.constructs.endpoint import CAPTURE_PREFIX
    from mlgate.manifest import NONCURRENT_DAYS

    problems = []
    buckets = _buckets(app)
    for product, keep in retentions.items():
        places = {
            "raw": [(n, None) for n in buckets if n.startswith(f"mlgate-{product}-raw-")],
            "curated": [(n, None) for n in buckets if n.startswith(f"mlgate-{product}-curated-")],
            "capture": [(n, f"{CAPTURE_PREFIX}/") for n in buckets
                        if n.startswith(f"mlgate-{product}-artifacts-")],
            "reports": [(n, "monitoring/") for n in buckets
                        if n.startswith(f"mlgate-{product}-artifacts-")],
        }  # fmt: skip
        for data_class in RETENTION_CLASSES:
            days = getattr(keep, data_class)
            if not places[data_class]:
                problems.append(f"{product} {data_class}: no bucket holds it")
            for name, prefix in places[data_class]:
                rules = buckets[name].get("LifecycleConfiguration", {}).get("Rules", [])
                expected = {
                    "ExpirationInDays": days,
                    "NoncurrentVersionExpiration": {"NoncurrentDays": min(days, NONCURRENT_DAYS)},
                    "Status": "Enabled",
                }
                found = [
                    r for r in rules
                    if r.get("Prefix") == prefix
                    and {k: r.get(k) for k in expected} == expected
                ]  # fmt: skip
                if not found:
                    problems.append(
                        f"{product} {data_class}: {name} {prefix or '(whole bucket)'} has no "
                        f"rule expiring it after {days} days: {rules}"
                    )
    return problems


def log_delivery_problems(app: Any) -> list[str]:
    """Every bucket policy statement that admits S3 log delivery names the source bucket
    (aws:SourceArn) and account (aws:SourceAccount)
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html),
    and every access-logged bucket is admitted by one that names it."""
    problems = []
    admitted: set[str] = set()
    for policy in app.resources("AWS::S3::BucketPolicy"):
        for statement in policy.props["PolicyDocument"]["Statement"]:
            if statement.get("Principal") != {"Service": "logging.s3.amazonaws.com"}:
                continue
            condition = statement.get("Condition", {})
            source = condition.get("ArnLike", {}).get("aws:SourceArn")
            account = condition.get("StringEquals", {}).get("aws:SourceAccount")
            if source is None or account is None:
                problems.append(
                    f"{policy.stack.name} {policy.id}: log delivery admitted to "
                    f"{json.dumps(statement.get('Resource'))} without aws:SourceArn and "
                    "aws:SourceAccount"
                )
                continue
            if account != policy.stack.account:
                problems.append(f"{policy.stack.name}: aws:SourceAccount {account}")
            admitted.add(json.dumps(source, sort_keys=True))
    for bucket in app.resources("AWS::S3::Bucket"):
        if "LoggingConfiguration" not in bucket.props:
            continue
        name = bucket.props.get("BucketName")
        names = {json.dumps({"Fn::GetAtt": [bucket.id, "Arn"]})}
        if isinstance(name, str):
            names.add(json.dumps(f"arn:aws:s3:::{name}"))
        if not names & admitted:
            problems.append(f"{bucket.stack.name} {bucket.id}: no conditioned statement")
    return problems


def _broken(app: Any, edit: Any) -> Any:
    """A copy of `app` with `edit(resource) -> changed` applied to every resource."""
    import copy
    from dataclasses import replace

    from mlgate.infra.service_rules import App

    stacks, changed = [], False
    for stack in app.stacks:
        template = copy.deepcopy(dict(stack.template))
        for resource in template.get("Resources", {}).values():
            changed |= bool(edit(resource))
        stacks.append(replace(stack, template=template))
    assert changed, "the edit matched nothing: the broken form was not made"
    return App(stacks)


@pytest.mark.parametrize("app", APPS)
def test_every_data_class_expires_after_the_manifest_s_days(
    request: pytest.FixtureRequest, app: str
) -> None:
    assert retention_problems(request.getfixturevalue(app), _retentions(app)) == []


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("data_class", RETENTION_CLASSES)
def test_the_retention_check_fails_when_a_class_keeps_its_data_longer(
    request: pytest.FixtureRequest, app: str, data_class: str
) -> None:
    """Each class's rule stretched by a day (or, for the noncurrent versions, by a year) is
    caught, for every product."""
    retentions = _retentions(app)
    built = request.getfixturevalue(app)

    def stretch(field: str, by: int) -> Any:
        def edit(resource: dict[str, Any]) -> bool:
            if resource["Type"] != "AWS::S3::Bucket":
                return False
            name = str(resource["Properties"].get("BucketName", ""))
            prefix = {"capture": "datacapture/", "reports": "monitoring/"}.get(data_class)
            purpose = data_class if prefix is None else "artifacts"
            if f"-{purpose}-" not in name:
                return False
            changed = False
            for rule in resource["Properties"].get("LifecycleConfiguration", {}).get("Rules", []):
                if rule.get("Prefix") == prefix and field in rule:
                    if field == "ExpirationInDays":
                        rule[field] += by
                    else:
                        rule[field]["NoncurrentDays"] += by
                    changed = True
            return changed

        return edit

    for field, by in (("ExpirationInDays", 1), ("NoncurrentVersionExpiration", 365)):
        problems = retention_problems(_broken(built, stretch(field, by)), retentions)
        assert problems
        assert all(data_class in p for p in problems), problems


@pytest.mark.parametrize("app", APPS)
def test_log_delivery_is_admitted_only_from_the_product_s_own_buckets(
    request: pytest.FixtureRequest, app: str
) -> None:
    built = request.getfixturevalue(app)
    assert log_delivery_problems(built) == []

    def unconditioned(resource: dict[str, Any]) -> bool:
        changed = False
        if resource["Type"] == "AWS::S3::BucketPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement.get("Principal") == {"Service": "logging.s3.amazonaws.com"}:
                    statement.pop("Condition", None)
                    changed = True
        return changed

    broken = log_delivery_problems(_broken(built, unconditioned))
    assert broken
    assert all("without aws:SourceArn" in p or "no conditioned" in p for p in broken)
