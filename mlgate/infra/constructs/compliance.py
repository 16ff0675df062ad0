"""cdk-nag in every synth, and the one way mlgate acknowledges a finding."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def enable_compliance_checks(app: cdk.App) -> None:
    """Run cdk-nag AwsSolutions on every synth; an unacknowledged finding fails it."""
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on one resource, with a reason specific to it.

    Refuses an app-wide acknowledgment and a short, generic reason: an acknowledgment is
    evidence for the architecture review and has to explain this resource.
    """
    acknowledge_each(scope, {rule_id: reason})


def acknowledge_findings(scope: IConstruct, findings: list[str], reason: str) -> None:
    """Acknowledge several findings of one rule family on one resource, for one reason.

    cdk-nag 3 reports each IAM5 wildcard separately (`AwsSolutions-IAM5[Action::s3:List*]`);
    a CDK grant on one bucket produces several of them for the same cause.
    """
    acknowledge_each(scope, dict.fromkeys(findings, reason))


def acknowledge_each(scope: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge findings on one resource, each with its own reason, as `acknowledge` does
    one: in one call to CDK (each call is a round trip to node)."""
    if isinstance(scope, (cdk.App, cdk.Stage)):
        raise ValueError(f"{', '.join(reasons)}: acknowledge on the resource, not app-wide")
    for rule_id, reason in reasons.items():
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise ValueError(
                f"{rule_id} on {scope.node.path}: the reason must explain this resource "
                f"(at least {MIN_REASON_LENGTH} characters), got {reason!r}"
            )
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=rule_id, reason=reason) for rule_id, reason in reasons.items())
    )


def bucket_grant_findings(bucket_logical_id: str, *, write: bool) -> list[str]:
    """The IAM5 wildcards CDK's bucket.grant_read / grant_read_write emit for one bucket."""
    actions = ["s3:GetBucket*", "s3:GetObject*", "s3:List*"]
    if write:
        actions += ["s3:Abort*", "s3:DeleteObject*"]
    return [f"AwsSolutions-IAM5[Action::{a}]" for a in actions] + [
        f"AwsSolutions-IAM5[Resource::<{bucket_logical_id}.Arn>/*]"
    ]


KEY_GRANT_FINDINGS = [
    "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
    "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
]
