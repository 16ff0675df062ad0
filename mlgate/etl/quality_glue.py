"""Glue 5.0 entry point of the data-quality check: evaluate the manifest's DQDL rules on the
curated table with Glue Data Quality, publish the results, and fail the run when a rule fails
(the failure reaches on-call; success is the event training starts on)."""

import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsgluedq.transforms import EvaluateDataQuality
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "database", "table", "ruleset", "ruleset_name"])
glue = GlueContext(SparkContext.getOrCreate())
job = Job(glue)
job.init(args["JOB_NAME"], args)

curated = glue.create_dynamic_frame.from_catalog(
    database=args["database"], table_name=args["table"], transformation_ctx="curated"
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
