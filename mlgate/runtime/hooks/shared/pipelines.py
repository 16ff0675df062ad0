"""Starting the training pipeline, shared by the pipeline starter and the drift responder."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

# SageMaker's answers for a pipeline that does not exist or a request it will never take: no
# retry changes them, so they are an answer, not a failure of the hook.
REFUSED = ("ValidationException", "ResourceNotFound")


def display_name(text: str) -> str:
    """SageMaker's execution display name: letters, digits and hyphens, at most 82."""
    return re.sub(r"[^a-zA-Z0-9-]", "-", text)[:82]


def start_if_idle(
    client: Any, pipeline: str, reason: str, token: str, display: str | None = None
) -> dict[str, str]:
    """Start `pipeline` unless an execution is running; never raises for a busy pipeline, nor
    for one SageMaker refuses to start (status "refused", with SageMaker's reason).

    `display` names the execution after what started it; a retry that finds an execution of
    that name among the recent ones answers with it instead of starting another (the start
    succeeded, something after it failed)."""
    try:
        return _start_if_idle(client, pipeline, reason, token, display)
    except ClientError as err:
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code not in REFUSED:
            raise
        return {"started": "false", "status": "refused",
                "reason": f"SageMaker refused to start {pipeline} for {reason} ({code}: "
                          f"{str(error.get('Message', ''))[:200]})"}  # fmt: skip


def _start_if_idle(
    client: Any, pipeline: str, reason: str, token: str, display: str | None
) -> dict[str, str]:
    name = display_name(display or reason)
    recent = client.list_pipeline_executions(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=20
    )["PipelineExecutionSummaries"]
    if display:
        mine = [e for e in recent if e.get("PipelineExecutionDisplayName") == name]
        if mine:
            return {"started": "true", "execution": mine[0]["PipelineExecutionArn"],
                    "reason": reason}  # fmt: skip
    busy = [e for e in recent if e.get("PipelineExecutionStatus") in ("Executing", "Stopping")]
    if busy:
        arn = busy[0]["PipelineExecutionArn"]
        return {"started": "false", "reason": f"{pipeline} is already running ({arn}); {reason} "
                "waits for the next trigger"}  # fmt: skip
    # ClientRequestToken makes SageMaker start one execution per token, whatever the retries
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StartPipelineExecution.html).
    started = client.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=name,
        PipelineExecutionDescription=reason[:3072],
        ClientRequestToken=token[:128].ljust(32, "0"),
    )
    return {"started": "true", "execution": started["PipelineExecutionArn"], "reason": reason}
