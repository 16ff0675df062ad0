"""Glue 5.0 entry point of every product's curation job: read each raw source in its format, run
the product's transform, hold its output to the curated schema, write partitioned Parquet.

Only this file imports awsglue (it exists on Glue's workers, not locally; tests give it a
stand-in). The product's code reaches Glue as one zip in --extra-py-files, which Glue puts on
sys.path, so `import <transform module>` works whatever name the zip was uploaded under:
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html
Job bookmarks make each run read only the raw files of an incremental source that arrived
since the last successful run: Glue tracks a source by its transformation_ctx, so a source read
whole each run (reference data, `incremental: false`) is read without one
(https://docs.aws.amazon.com/glue/latest/dg/monitor-continuations.html).
"""

import importlib
import json
import sys
from typing import Any

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark import StorageLevel
from pyspark.context import SparkContext
from pyspark.sql import functions as F

args = getResolvedOptions(
    sys.argv,
    ["JOB_NAME", "sources", "transform_module", "params", "schema", "curated_path",
     "quarantine_path", "catalog_database", "catalog_table", "catalog_region"],
)  # fmt: skip
glue = GlueContext(SparkContext.getOrCreate())
spark = glue.spark_session
spark.conf.set("spark.sql.session.timeZone", "UTC")
job = Job(glue)
job.init(args["JOB_NAME"], args)


def register_partitions(written: Any, keys: list[str]) -> None:
    """The partitions this run wrote, added to the curated table in the Data Catalog, so that
    what reads the table (Athena, a Data Quality run on the table) sees their rows: Spark's
    writer adds none. Each partition's values as Spark wrote them in its folder names (the
    string cast, nulls as Hive's default partition), its location that folder; a partition an
    earlier run or try added is left as it is, so a retry adds each once."""
    if not keys:
        return
    import boto3

    escape = spark._jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils.escapePathName
    rows = written.select(*[F.col(k).cast("string").alias(k) for k in keys]).distinct().collect()
    glue_client = boto3.client("glue", region_name=args["catalog_region"])
    database, table = args["catalog_database"], args["catalog_table"]
    descriptor = glue_client.get_table(DatabaseName=database, Name=table)["Table"][
        "StorageDescriptor"
    ]
    base = args["curated_path"].rstrip("/")
    partitions = []
    for row in rows:
        values = [HIVE_DEFAULT if row[k] is None else row[k] for k in keys]
        folder = "/".join(f"{escape(k)}={escape(v)}" for k, v in zip(keys, values, strict=True))
        partitions.append(
            {"Values": values, "StorageDescriptor": {**descriptor, "Location": f"{base}/{folder}/"}}
        )
    for start in range(0, len(partitions), PARTITIONS_PER_CALL):
        answer = glue_client.batch_create_partition(
            DatabaseName=database,
            TableName=table,
            PartitionInputList=partitions[start : start + PARTITIONS_PER_CALL],
        )
        errors = [
            e for e in answer.get("Errors", [])
            if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
        ]  # fmt: skip
        if errors:
            raise RuntimeError(f"the Data Catalog refused partitions of {table}: {errors[:3]}")
    print(f"mlgate: {len(partitions)} partition(s) of {database}.{table} registered or present")


# https://docs.aws.amazon.com/glue/latest/webapi/API_BatchCreatePartition.html: 100 at most.
PARTITIONS_PER_CALL = 100
HIVE_DEFAULT = "__HIVE_DEFAULT_PARTITION__"
"""The folder Spark writes rows with a null partition key to."""

# Glue's reader options per format: csv with a header row, JSON Lines, Parquet.
FORMAT_OPTIONS = {"csv": {"withHeader": True}, "json": {}, "parquet": {}}
sources = {}
for name, source in json.loads(args["sources"]).items():
    sources[name] = glue.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [source["path"]], "recurse": True},
        format=source["format"],
        format_options=FORMAT_OPTIONS[source["format"]],
        # No context, no bookmark: the whole source, every run.
        transformation_ctx=f"source_{name}" if source["incremental"] else "",
    ).toDF()

schema = json.loads(args["schema"])
module = importlib.import_module(args["transform_module"])
curated, quarantined = module.transform(spark, sources, json.loads(args["params"]))
missing = [c["name"] for c in schema["columns"] if c["name"] not in curated.columns]
if missing:
    raise ValueError(
        f"the product's transform returned no column(s) {missing}; data.curated.columns "
        f"declares {[c['name'] for c in schema['columns']]}"
    )
# The curated table's types, as the manifest declares them: a transform's drift in types
# would otherwise surface as unreadable Parquet in training.
curated = curated.select(*[F.col(c["name"]).cast(c["type"]) for c in schema["columns"]])
# Kept for the partitions' registration below, which would otherwise run the transform again.
curated.persist(StorageLevel.MEMORY_AND_DISK)
writer = curated.write.mode("append")
if schema["partition_keys"]:
    writer = writer.partitionBy(*schema["partition_keys"])
writer.parquet(args["curated_path"])
register_partitions(curated, schema["partition_keys"])
curated.unpersist()
quarantined.cache()
count = quarantined.count()
if count:
    quarantined.write.mode("append").json(args["quarantine_path"])
print(f"mlgate: quarantined {count} malformed rows to {args['quarantine_path']}")
job.commit()
