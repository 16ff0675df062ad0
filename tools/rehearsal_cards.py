"""The rehearsal's model cards: a version's SageMaker Model Card played through its statuses by
the real model card hook (mlgate/runtime/hooks/model_card), under moto, from the events AWS
would deliver it: the version's registration, the request of the release's first manual gate,
prod verified; then the go-live delivered again, which changes nothing.

`play_card(manifest, version=..., execution=..., account=..., region=...)` returns the lines to
print. It expects the rehearsal's world: moto holding the registry's version (with its
evaluation report in the artifact bucket), release.json of `execution` in the release bucket,
CodePipeline's GetPipelineExecution answered (the rehearsal's Pipeline stand-in, or
`codepipeline`), and the release hooks' environment (MODEL_PACKAGE_GROUP, RELEASE_PIPELINE,
RELEASE_BUCKET, ARTIFACT_BUCKET, TRAINING_PREFIX); it adds the model card hook's own.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from mlgate.infra import cards
from mlgate.infra.cards import LIVE_STAGE
from mlgate.infra.naming import Names


def keep_unsent_fields(client: Any) -> None:
    """moto 5.2.5's UpdateModelCard replaces a card's content and status with what the call
    sends, blanking the one it leaves out; SageMaker keeps it (an update sends either:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelCard.html). On
    this client (botocore's public event hooks, moto's world only) the field left out is
    filled in from the card as it stands, so moto keeps it too."""

    def fill(params: dict[str, Any], **_: Any) -> dict[str, Any]:
        current = client.describe_model_card(ModelCardName=params["ModelCardName"])
        kept = {"Content": current.get("Content"), "ModelCardStatus": current["ModelCardStatus"]}
        return {**{k: v for k, v in kept.items() if v is not None}, **params}

    client.meta.events.register("provide-client-params.sagemaker.UpdateModelCard", fill)


@dataclass(frozen=True)
class Context:
    """What the hook reads of Lambda's context: the function's ARN (its account and region)."""

    invoked_function_arn: str
    function_name: str = "model-card"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "rehearsal"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def hook_environment(manifest: Any) -> dict[str, str]:
    """The model card hook's own settings, as the Delivery stack sets them."""
    names = Names.of(manifest)
    return {
        "MODEL_CARD_CONTEXT": cards.encoded_context(manifest),
        "MODEL_CARD_PREFIX": cards.card_prefix(manifest),
        "MODEL_CARD_REVIEW_STAGE": names.gate_stage(cards.review_gate(manifest)),
        "MODEL_CARD_LIVE_STAGE": LIVE_STAGE,
    }


def event(kind: str, detail: dict[str, Any], *, account: str, region: str,
          resource: str) -> dict[str, Any]:  # fmt: skip
    """An EventBridge event as AWS delivers it."""
    source = "aws.sagemaker" if kind.startswith("SageMaker") else "aws.codepipeline"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": kind,
        "source": source,
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [resource],
        "detail": detail,
    }


def play_card(
    manifest: Any,
    *,
    version: int,
    execution: str,
    account: str,
    region: str,
    codepipeline: Any = None,
) -> list[str]:
    """Version `version`'s card through Draft, PendingReview and Approved (archiving the card
    of the version it supersedes), by the real hook; the lines to print."""
    os.environ.update(hook_environment(manifest))
    from model_card import handler

    if codepipeline is not None:
        handler.codepipeline = codepipeline
    if not getattr(handler.sagemaker, "_mlgate_keeps_fields", False):
        keep_unsent_fields(handler.sagemaker)
        handler.sagemaker._mlgate_keeps_fields = True
    names = Names.of(manifest)
    group = names.model_package_group()
    pipeline = names.release_pipeline()
    arn = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{version}"
    pipeline_arn = f"arn:aws:codepipeline:{region}:{account}:{pipeline}"
    context = Context(f"arn:aws:lambda:{region}:{account}:function:model-card")
    where = {"account": account, "region": region}
    review = names.gate_stage(cards.review_gate(manifest))
    registered = event(
        "SageMaker Model Package State Change",
        {"ModelPackageGroupName": group, "ModelPackageVersion": version, "ModelPackageArn": arn,
         "ModelApprovalStatus": "PendingManualApproval"},
        resource=arn, **where,
    )  # fmt: skip
    requested = event(
        "CodePipeline Action Execution State Change",
        {"pipeline": pipeline, "execution-id": execution, "stage": review, "action": "Approve",
         "state": "STARTED", "type": {"owner": "AWS", "provider": "Manual",
                                      "category": "Approval", "version": "1"}},
        resource=pipeline_arn, **where,
    )  # fmt: skip
    verified = event(
        "CodePipeline Stage Execution State Change",
        {"pipeline": pipeline, "execution-id": execution, "stage": LIVE_STAGE,
         "state": "SUCCEEDED"},
        resource=pipeline_arn, **where,
    )  # fmt: skip

    def run(delivered: dict[str, Any]) -> dict[str, str]:
        answer: dict[str, str] = handler.handler(delivered, context)
        if answer.get("status") == "refused":
            raise SystemExit(f"rehearsal: the model card hook refused an event: {answer['reason']}")
        return answer

    lines = [
        f"version {version}'s events reach the model card hook in their order (its registration, "
        "the first manual gate's request, prod verified), replayed here at once; the card's "
        "changes are SageMaker's (moto's):"
    ]
    first = run(registered)
    lines.append(created(first, manifest, handler, region))
    again = run(registered)
    lines.append(f"the registration delivered again: {unchanged(again)}.")
    review_answer = run(requested)
    gate = cards.review_gate(manifest)
    lines.append(f"{status(review_answer)}: the first manual gate ({gate}) asks its approvers; "
                 "EventBridge delivers its request ('CodePipeline Action Execution State "
                 "Change', STARTED) to the model card hook.")  # fmt: skip
    live = run(verified)
    superseded = (f"; the card it supersedes, {live['archived']}: Archived"
                  if live.get("archived") else "")  # fmt: skip
    lines.append(f"{status(live)}: {LIVE_STAGE} succeeded ('CodePipeline Stage Execution State "
                 f"Change'), version {version} is live in prod{superseded}.")  # fmt: skip
    replay = run(verified)
    lines.append(f"the go-live delivered again: {unchanged(replay)} (idempotent; a card is "
                 "never moved back).")  # fmt: skip
    return lines


def status(answer: dict[str, str]) -> str:
    return f"{answer['card']} {answer['previous']} -> {answer['status']}"


def unchanged(answer: dict[str, str]) -> str:
    said = "unchanged" if answer.get("changed") == "false" else "CHANGED AGAIN"
    return f"{said} ({answer.get('status')})"


def created(answer: dict[str, str], manifest: Any, handler: Any, region: str) -> str:
    """The card as the hook created it: what its content says, read back from SageMaker."""
    from model_card import card

    described = handler.sagemaker.describe_model_card(ModelCardName=answer["card"])
    content = json.loads(described["Content"])
    uses = content["intended_uses"]
    metrics = [
        f"{m['name']} {m['value']:.4g}"
        for group in content["evaluation_details"][0].get("metric_groups", [])
        for m in group["metric_data"]
    ]
    sections = ", ".join(content)
    return (
        f"{answer['card']} created {answer['status']} at registration (version "
        f"{answer['version']}, 'SageMaker Model Package State Change'): its sections "
        f"{sections}; risk rating {uses['risk_rating']} from the manifest's "
        f"{len(manifest.risks)} risks with their mitigations; the evaluation "
        f"{', '.join(metrics) or 'not registered'} against the manifest's thresholds and their "
        f"owners; {card.card_url(region, answer['card'])}"
    )
