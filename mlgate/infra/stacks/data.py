"""Data: raw and curated buckets, the Glue catalog, crawler, curation job, Data Quality
ruleset and the workflow that runs crawl -> curate -> quality check on the manifest's schedule."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra import events as mlgate_events
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.storage import SecureBucket
from mlgate.infra.naming import CURATED_PREFIX
from mlgate.infra.packaging import build_zip
from mlgate.infra.stacks.foundation import FoundationStack
from mlgate.manifest import NONCURRENT_DAYS, Manifest

from .base import ProductStack

ETL = Path(__file__).resolve().parents[2] / "runtime" / "etl"
ETL_ZIP = "etl.zip"


@functools.cache
def glue_types() -> dict[str, glue.Type]:
    """The manifest's column types as Glue's. A function, not a module constant: reading them
    is a call to node, and mlgate makes none at import (mlgate/validation_engine.py)."""
    return {
        "string": glue.Schema.STRING,
        "int": glue.Schema.INTEGER,
        "bigint": glue.Schema.BIG_INT,
        "double": glue.Schema.DOUBLE,
        "float": glue.Schema.FLOAT,
        "boolean": glue.Schema.BOOLEAN,
        "date": glue.Schema.DATE,
        "timestamp": glue.Schema.TIMESTAMP,
    }


def etl_zip(manifest: Manifest, build_dir: Path) -> Path:
    """The product's ETL code (every module beside its transform) as the zip Glue loads."""
    transform = manifest.path(manifest.data.transform)
    return build_zip(transform.parent, build_dir / manifest.product.name / ETL_ZIP)


def dqdl(rules: tuple[str, ...]) -> str:
    """The manifest's data-quality rules as one DQDL ruleset."""
    return "Rules = [\n    " + ",\n    ".join(rules) + "\n]"


CURATED_TABLE = "curated"
"""The curated table's name in the product's Glue database."""


class DataStack(ProductStack):
    component = "data"

    @property
    def database_name(self) -> str:
        """Glue database names take underscores, not dashes."""
        return self.name("catalog").replace("-", "_")

    def __init__(
        self, scope: Construct, *, manifest: Manifest, foundation: FoundationStack
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            description="raw and curated data, Glue catalog, ETL and data quality",
        )
        key = foundation.key
        self.raw = SecureBucket(
            self,
            "Raw",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="raw/",
            bucket_name=self.bucket_name("raw"),
            expiration_days=manifest.retention.raw,
            expired_noncurrent_days=NONCURRENT_DAYS,
        ).bucket
        self.curated = SecureBucket(
            self,
            "Curated",
            key=key,
            access_logs=foundation.access_logs,
            log_prefix="curated/",
            bucket_name=self.bucket_name("curated"),
            expiration_days=manifest.retention.curated,
            expired_noncurrent_days=NONCURRENT_DAYS,
        ).bucket
        self.database = glue.Database(
            self,
            "Catalog",
            database_name=self.database_name,
            description=f"Raw and curated data of {manifest.product.display_name}",
        )
        schema = manifest.data.curated
        self.curated_table = glue.S3Table(
            self,
            "CuratedTable",
            database=self.database,
            table_name=CURATED_TABLE,
            # The curated bucket keeps its own encryption: the product key.
            storage=glue.S3TableStorage.from_bucket(self.curated),
            s3_prefix=CURATED_PREFIX,
            data_format=glue.DataFormat.PARQUET,
            columns=[
                glue.Column(name=c.name, type=glue_types()[c.type], comment=c.description or None)
                for c in schema.data_columns
            ],
            partition_keys=[
                glue.Column(name=k, type=glue_types()[schema.column(k).type])
                for k in schema.partition_keys
            ],
            description=f"Curated data of {manifest.product.display_name} (data.curated)",
        )
        self.security = glue.SecurityConfiguration(
            self,
            "Encryption",
            security_configuration_name=self.name("glue"),
            s3_encryption=glue.S3Encryption.kms(key),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(key),
        )
        self.role = self._glue_role(foundation)
        self.crawler = glue.CfnCrawler(
            self,
            "RawCrawler",
            name=self.name("raw-crawler"),
            role=self.role.role_arn,
            database_name=self.database.database_name,
            table_prefix="raw_",
            crawler_security_configuration=self.security.security_configuration_name,
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[
                    glue.CfnCrawler.S3TargetProperty(path=self.raw.s3_url_for_object(s.prefix))
                    for s in manifest.data.sources
                ]
            ),
            # Incremental crawls (CRAWL_NEW_FOLDERS_ONLY) only log schema changes: CreateCrawler
            # refuses any other update or delete behaviour with that recrawl policy
            # (https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html). The raw
            # tables keep the schema of their first crawl; the ETL job reads the manifest's.
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
            recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(
                recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"
            ),
        )
        # Glue 5.0 logs every job in real time to <prefix>/error (system, Spark and the Glue
        # logger) and <prefix>/output (stdout, stderr); --custom-logGroup-prefix names the
        # prefix (default /aws-glue/jobs), and the continuous-logging arguments of Glue 4.0 and
        # earlier no longer apply
        # (https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html). The two
        # groups are made here, so they carry the product key and a retention.
        self.job_log_prefix = f"/aws-glue/jobs/{self.name('etl')}"
        self.job_log_groups = [
            logs.LogGroup(
                self,
                f"JobLogs{stream.capitalize()}",
                log_group_name=f"{self.job_log_prefix}/{stream}",
                retention=logs.RetentionDays.ONE_YEAR,
                encryption_key=key,
            )
            for stream in ("error", "output")
        ]
        data = manifest.data
        # With auto scaling on, Glue reads NumberOfWorkers as the most a run may use
        # (https://docs.aws.amazon.com/glue/latest/dg/auto-scaling.html): that is the manifest's
        # etl_max_workers. A manifest whose bounds are equal asks for a fixed size.
        autoscaling = data.etl_max_workers > data.etl_workers
        workers = glue.WorkerConfiguration(
            number_of_workers=data.etl_max_workers, worker_type=glue.WorkerType.G_1X
        )
        common = {
            "role": self.role,
            "glue_version": glue.GlueVersion.V5_0,
            "security_configuration": self.security,
            "enable_metrics": True,
            "enable_observability_metrics": True,
            "continuous_logging": glue.ContinuousLoggingProps(enabled=False),
            "worker_configuration": workers,
            "timeout": durations.minutes(data.etl_timeout_minutes),
            "max_concurrent_runs": 1,
            "max_retries": 0,
        }
        build_dir = Path(cdk.App.of(self).outdir) / "mlgate-build"  # type: ignore[union-attr]
        transform = Path(data.transform)
        self.etl_job = glue.PySparkEtlJob(
            self,
            "CurateJob",
            job_name=self.names.etl_job(),
            description=f"Runs {data.transform} on every raw source into the curated table",
            script=glue.Code.from_asset(str(ETL / "curate_glue.py")),
            extra_python_files=[glue.Code.from_asset(str(etl_zip(manifest, build_dir)))],
            default_arguments={
                "--custom-logGroup-prefix": self.job_log_prefix,
                "--job-bookmark-option": "job-bookmark-enable",
                "--enable-auto-scaling": str(autoscaling).lower(),
                "--sources": json.dumps(
                    {
                        s.name: {
                            "path": self.raw.s3_url_for_object(s.prefix),
                            "format": s.format,
                            "incremental": s.incremental,
                        }
                        for s in data.sources
                    },
                    separators=(",", ":"),
                ),
                # The zip's root is the transform's folder: the module is the file's stem.
                "--transform_module": transform.stem,
                "--params": json.dumps(data.transform_params, separators=(",", ":")),
                "--schema": json.dumps(
                    {
                        "columns": [{"name": c.name, "type": c.type} for c in schema.columns],
                        "partition_keys": list(schema.partition_keys),
                    },
                    separators=(",", ":"),
                ),
                "--curated_path": self.curated.s3_url_for_object(CURATED_PREFIX),
                "--quarantine_path": self.curated.s3_url_for_object("quarantine/"),
                # Where the run registers the partitions it wrote (Spark's writer adds none).
                "--catalog_database": self.database_name,
                "--catalog_table": CURATED_TABLE,
                "--catalog_region": self.target.region,
            },
            **common,  # type: ignore[arg-type]
        )
        self.ruleset = glue.DataQualityRuleset(
            self,
            "QualityRules",
            ruleset_name=self.name("quality-rules"),
            description="The manifest's data.quality_rules on the curated table",
            dqdl=glue.Dqdl.from_string(dqdl(data.quality_rules)),
            target_table=glue.DataQualityTargetTable.from_table(self.database, self.curated_table),
        )
        self.quality_job = glue.PySparkEtlJob(
            self,
            "QualityJob",
            job_name=self.names.quality_job(),
            description="Evaluates the Data Quality ruleset on the curated data",
            script=glue.Code.from_asset(str(ETL / "quality_glue.py")),
            default_arguments={
                "--custom-logGroup-prefix": self.job_log_prefix,
                "--curated_path": self.curated.s3_url_for_object(CURATED_PREFIX),
                "--ruleset": dqdl(data.quality_rules),
                "--ruleset_name": self.name("quality-rules"),
            },
            **{
                **common,
                "worker_configuration": glue.WorkerConfiguration(  # type: ignore[arg-type]
                    number_of_workers=2, worker_type=glue.WorkerType.G_1X
                ),
            },
        )
        self.workflow = glue.Workflow(
            self,
            "Workflow",
            workflow_name=self.name("etl"),
            description="crawl raw -> curate -> data-quality check",
            max_concurrent_runs=1,
        )
        self._triggers(data.schedule)
        self._events(foundation)
        self._acknowledge_role()

    def _glue_role(self, foundation: FoundationStack) -> iam.Role:
        """Glue's role reaches the product's buckets and key, its catalog and its own logs."""
        role = iam.Role(
            self,
            "GlueRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Crawler, curation and quality jobs of this product",
        )
        self.raw.grant_read(role)
        self.curated.grant_read_write(role)
        foundation.key.grant_encrypt_decrypt(role)
        glue_arn = f"arn:aws:glue:{self.target.region}:{self.target.account}"
        catalog = [
            f"{glue_arn}:catalog",
            f"{glue_arn}:database/{self.database_name}",
            f"{glue_arn}:table/{self.database_name}/*",
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchCreatePartition",
                    "glue:BatchGetPartition",
                    "glue:UpdatePartition",
                ],
                resources=catalog,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetDataQualityRuleset", "glue:PublishDataQuality"],
                resources=[
                    f"arn:aws:glue:{self.target.region}:{self.target.account}:dataQualityRuleset/"
                    f"{self.name('quality-rules')}"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:AssociateKmsKey"],
                resources=[
                    f"arn:aws:logs:{self.target.region}:{self.target.account}:log-group:/aws-glue/*"
                ],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringEquals": {"cloudwatch:namespace": ["Glue", "Glue Data Quality"]}
                },
            )
        )
        return role

    def _triggers(self, schedule: str) -> None:
        workflow = self.workflow.workflow_name
        # The crawler by Ref, not by its name: CloudFormation then creates it before the
        # triggers that start it or wait on it (a name alone gives no order between them).
        crawler = self.crawler.ref
        glue.CfnTrigger(
            self,
            "OnSchedule",
            name=self.name("etl-start"),
            workflow_name=workflow,
            type="SCHEDULED",
            schedule=schedule,
            start_on_creation=True,
            actions=[glue.CfnTrigger.ActionProperty(crawler_name=crawler)],
        )
        self._after(
            "AfterCrawl",
            "etl-after-crawl",
            glue.CfnTrigger.ConditionProperty(
                crawler_name=crawler, crawl_state="SUCCEEDED", logical_operator="EQUALS"
            ),
            then=self.etl_job.job_name,
        )
        self._after(
            "AfterCurate",
            "etl-after-curate",
            glue.CfnTrigger.ConditionProperty(
                job_name=self.etl_job.job_name, state="SUCCEEDED", logical_operator="EQUALS"
            ),
            then=self.quality_job.job_name,
        )

    def _after(
        self, id: str, name: str, condition: glue.CfnTrigger.ConditionProperty, *, then: str
    ) -> None:
        """A workflow step: start job `then` when `condition` holds."""
        glue.CfnTrigger(
            self,
            id,
            name=self.name(name),
            workflow_name=self.workflow.workflow_name,
            type="CONDITIONAL",
            start_on_creation=True,
            predicate=glue.CfnTrigger.PredicateProperty(conditions=[condition]),
            actions=[glue.CfnTrigger.ActionProperty(job_name=then)],
        )

    def _events(self, foundation: FoundationStack) -> None:
        """Failures reach on-call as a sentence, not as raw JSON."""
        topic = foundation.on_call_topic
        runbook = self.manifest.product.runbook_url
        WatchedRule(
            self,
            "JobFailed",
            rule_name=self.name("etl-job-failed"),
            description="A curation or data-quality run failed: tell on-call",
            event_pattern=mlgate_events.etl_failed(self.product),
        ).add_target(
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"[{self.product}] Glue job {events.EventField.from_path('$.detail.jobName')} "
                    f"run {events.EventField.from_path('$.detail.jobRunId')} ended "
                    f"{events.EventField.from_path('$.detail.state')}: "
                    f"{events.EventField.from_path('$.detail.message')}. No new curated data "
                    f"reaches training until it is fixed. Runbook: {runbook}"
                ),
            )
        )
        WatchedRule(
            self,
            "CrawlFailed",
            rule_name=self.name("etl-crawl-failed"),
            description="The raw-data crawl failed: tell on-call",
            event_pattern=mlgate_events.crawl_failed(self.crawler.name or ""),
        ).add_target(
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"[{self.product}] Glue crawler "
                    f"{events.EventField.from_path('$.detail.crawlerName')} failed: "
                    f"{events.EventField.from_path('$.detail.errorMessage')}. The workflow "
                    f"stopped before curation. Runbook: {runbook}"
                ),
            )
        )

    def _acknowledge_role(self) -> None:
        policy = self.role.node.find_child("DefaultPolicy")
        raw = self.get_logical_id(self.raw.node.default_child)  # type: ignore[arg-type]
        curated = self.get_logical_id(self.curated.node.default_child)  # type: ignore[arg-type]
        region, account = self.target.region, self.target.account
        reasons = {
            "Action::s3:GetBucket*": "read the raw and curated buckets of this product",
            "Action::s3:GetObject*": "read the raw and curated buckets of this product",
            "Action::s3:List*": "list the raw and curated buckets of this product",
            "Action::s3:Abort*": "write curated Parquet files in this product's curated bucket",
            "Action::s3:DeleteObject*": "rewrite curated partitions in the curated bucket",
            f"Resource::<{raw}.Arn>/*": "read every raw file the crawler and job are given",
            f"Resource::<{curated}.Arn>/*": "write curated and quarantine prefixes",
            "Action::kms:GenerateDataKey*": "encrypt outputs, logs and bookmarks with the key",
            "Action::kms:ReEncrypt*": "re-encrypt objects under the product key",
            "Resource::*": "cloudwatch:PutMetricData has no resource ARN; namespace-conditioned",
            f"Resource::arn:aws:glue:{region}:{account}:table/{self.database_name}/*": (
                "tables of this product's database"
            ),
            f"Resource::arn:aws:logs:{region}:{account}:log-group:/aws-glue/*": (
                "Glue writes crawler and job logs under /aws-glue/, created by the service"
            ),
            f"Resource::arn:aws:s3:::cdk-hnb659fds-assets-{account}-{region}/*": (
                "read the job scripts CDK uploads to the bootstrap asset bucket"
            ),
        }
        acknowledge_each(
            policy,
            {
                f"AwsSolutions-IAM5[{finding}]": (
                    f"Glue role of {self.product}: {reason} (CDK grant or service contract)."
                )
                for finding, reason in reasons.items()
            },
        )
