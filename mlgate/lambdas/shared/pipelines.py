"""Starting the training pipeline, shared by the pipeline starter and the drift responder."""

from __future__ import annotations

import re
from typing import Any


def start_if_idle(client: Any, pipeline: str, reason: str, token: str) -> dict[str, str]:
    """Start `pipeline` unless an execution is running; never raises for a busy pipeline."""
    running = client.list_pipeline_executions(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=20
    )["PipelineExecutionSummaries"]
    busy = [e for e in running if e.get("PipelineExecutionStatus") in ("Executing", "Stopping")]
    if busy:
        arn = busy[0]["PipelineExecutionArn"]
        return {"started": "false", "reason": f"{pipeline} is already running ({arn}); {reason} "
                "waits for the next trigger"}  # fmt: skip
    started = client.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=re.sub(r"[^a-zA-Z0-9-]", "-", reason)[:82],
        PipelineExecutionDescription=reason[:3072],
        ClientRequestToken=token[:128].ljust(32, "0"),
    )
    return {"started": "true", "execution": started["PipelineExecutionArn"], "reason": reason}
