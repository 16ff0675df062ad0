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

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import functions as F

args = getResolvedOptions(
    sys.argv,
    ["JOB_NAME", "sources", "transform_module", "params", "schema", "curated_path",
     "quarantine_path"],
)  # fmt: skip
glue = GlueContext(SparkContext.getOrCreate())
spark = glue.spark_session
spark.conf.set("spark.sql.session.timeZone", "UTC")
job = Job(glue)
job.init(args["JOB_NAME"], args)

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
writer = curated.write.mode("append")
if schema["partition_keys"]:
    writer = writer.partitionBy(*schema["partition_keys"])
writer.parquet(args["curated_path"])
quarantined.cache()
count = quarantined.count()
if count:
    quarantined.write.mode("append").json(args["quarantine_path"])
print(f"mlgate: quarantined {count} malformed rows to {args['quarantine_path']}")
job.commit()
