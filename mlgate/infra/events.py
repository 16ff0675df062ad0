"""Events that cross stacks, defined once so the emitting and the subscribing side agree."""

from __future__ import annotations

from aws_cdk import aws_events as events

from mlgate.infra.naming import Names

GLUE_SOURCE = "aws.glue"
GLUE_JOB_STATE = "Glue Job State Change"
GLUE_CRAWLER_STATE = "Glue Crawler State Change"


def etl_succeeded(product: str) -> events.EventPattern:
    """A product's Glue workflow finished: the quality check, its last step, succeeded.

    The training stack starts the SageMaker pipeline on this pattern.
    """
    return events.EventPattern(
        source=[GLUE_SOURCE],
        detail_type=[GLUE_JOB_STATE],
        detail={"jobName": [Names(product).quality_job()], "state": ["SUCCEEDED"]},
    )


def etl_failed(product: str) -> events.EventPattern:
    """The curation job or the quality check failed, timed out or was stopped."""
    return events.EventPattern(
        source=[GLUE_SOURCE],
        detail_type=[GLUE_JOB_STATE],
        detail={
            "jobName": [Names(product).etl_job(), Names(product).quality_job()],
            # Glue Job State Change's end states besides SUCCEEDED
            # (https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html).
            "state": ["FAILED", "TIMEOUT", "STOPPED"],
        },
    )


def crawl_failed(crawler_name: str) -> events.EventPattern:
    return events.EventPattern(
        source=[GLUE_SOURCE],
        detail_type=[GLUE_CRAWLER_STATE],
        detail={"crawlerName": [crawler_name], "state": ["Failed"]},
    )
