"""Glue 5.0 entry point of the curation job: read arguments, read raw, call the transforms.

Only this file imports awsglue (it exists on Glue's workers, not locally); everything it does
besides I/O lives in mlgate/etl/transforms.py, which Glue receives as an extra Python file.
Job bookmarks make each run read only the raw files that arrived since the last one.
"""

import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from transforms import curate

args = getResolvedOptions(
    sys.argv, ["JOB_NAME", "raw_path", "curated_path", "quarantine_path", "window_seconds"]
)
glue = GlueContext(SparkContext.getOrCreate())
spark = glue.spark_session
spark.conf.set("spark.sql.session.timeZone", "UTC")
job = Job(glue)
job.init(args["JOB_NAME"], args)

raw = glue.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args["raw_path"]], "recurse": True},
    format="csv",
    format_options={"withHeader": True},
    transformation_ctx="raw",
).toDF()
curated, quarantined = curate(raw, int(args["window_seconds"]))
curated = curated.withColumn("event_date", curated["event_time"].cast("date"))
curated.write.mode("append").partitionBy("event_date").parquet(args["curated_path"])
quarantined.cache()
count = quarantined.count()
if count:
    quarantined.write.mode("append").json(args["quarantine_path"])
print(f"mlgate: quarantined {count} malformed rows to {args['quarantine_path']}")
job.commit()
