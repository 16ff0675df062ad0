"""Glue 5.0 entry point of the data-quality check: evaluate the manifest's DQDL rules on the
curated data with Glue Data Quality, publish the results, and fail the run when a rule fails
(the failure reaches on-call; success is the event training starts on).

The rules run on the Parquet files the curation job wrote, read from S3 with their partition
folders, not on the catalog table: the curation job writes new partitions that the catalog
does not know until something registers them, and a catalog read would see none of them."""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsgluedq.transforms import EvaluateDataQuality
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "curated_path", "ruleset", "ruleset_name"])
glue = GlueContext(SparkContext.getOrCreate())
job = Job(glue)
job.init(args["JOB_NAME"], args)

curated = DynamicFrame.fromDF(
    glue.spark_session.read.option("basePath", args["curated_path"]).parquet(args["curated_path"]),
    glue,
    "curated",
)
outcomes = EvaluateDataQuality().process_rows(
    frame=curated,
    ruleset=args["ruleset"],
    publishing_options={
        "dataQualityEvaluationContext": args["ruleset_name"],
        "enableDataQualityCloudWatchMetrics": True,
        "enableDataQualityResultsPublishing": True,
    },
)
rules = outcomes["ruleOutcomes"].toDF().collect()
failed = [r["Rule"] for r in rules if r["Outcome"] != "Passed"]
print(f"mlgate: {len(rules) - len(failed)} of {len(rules)} data-quality rules passed")
if failed:
    raise RuntimeError("data-quality rules failed: " + "; ".join(failed))
job.commit()
