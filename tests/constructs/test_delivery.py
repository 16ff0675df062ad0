"""The release path's constructs (release hooks, the release pipeline, the gate hooks), each
in a bare stack from hand-written props."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from mlgate.infra.constructs.gate_hooks import (
    GateCallback,
    GateCallbackProps,
    GateNotifier,
    GateNotifierProps,
    SlackSecret,
)
from mlgate.infra.constructs.hooks import AuditTrail
from mlgate.infra.constructs.release_hooks import (
    Deployer,
    DeployerProps,
    DeployVerifier,
    DeployVerifierProps,
    EnvironmentAccess,
    QualityGate,
    QualityGateProps,
    ReleaseHook,
    ReleaseProps,
)
from mlgate.infra.constructs.release_pipeline import (
    DeployTarget,
    PipelineGate,
    ReleasePipeline,
    ReleasePipelineProps,
    gate_summary,
)

from .conftest import ACCOUNT, ML_LEAD, PM, REGION, REMOTE, Kit, granted, resources

REMOTE_DEPLOY = f"arn:aws:iam::{REMOTE}:role/mlgate-churn-prod-deploy"
STAGING_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlgate-churn-staging-serving/*"


def release(k: Kit) -> ReleaseProps:
    return ReleaseProps(names=k.product_names, home_artifacts="home-artifacts")


def access() -> tuple[EnvironmentAccess, ...]:
    """Staging at home (one statement, one finding), prod in another account."""
    return (
        EnvironmentAccess(
            statements=(
                iam.PolicyStatement(
                    actions=["cloudformation:UpdateStack"], resources=[STAGING_STACK]
                ),
            ),
            findings={
                f"AwsSolutions-IAM5[Resource::{STAGING_STACK}]": (
                    "the wildcard is the stack id CloudFormation gives the Serving stack"
                )
            },
        ),
        EnvironmentAccess(role_arn=REMOTE_DEPLOY),
    )


def variables(template: Template, hook: str) -> dict[str, str]:
    (found,) = [
        f["Properties"]["Environment"]["Variables"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == f"{hook}.handler.handler"
    ]
    return dict(found)


def retention(template: Template) -> list[int]:
    return sorted(
        q["Properties"]["MessageRetentionPeriod"]
        for q in resources(template, "AWS::SQS::Queue").values()
    )


def test_the_deployer_acts_at_home_directly_and_in_another_account_through_its_role(
    home: Kit,
) -> None:
    Deployer(
        home.stack,
        "Deployer",
        props=DeployerProps(release=release(home), access=access()),
        key=home.key,
        alarms=home.alarms,
    )
    template = home.template()
    assert granted(template, "cloudformation:UpdateStack") == [STAGING_STACK]
    assert granted(template, "sts:AssumeRole") == [REMOTE_DEPLOY]
    (role,) = resources(template, "AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == "mlgate-churn-deployer"
    settings = variables(template, "deployer")
    assert settings["ARTIFACT_BUCKET"] == "home-artifacts"
    assert settings["RELEASE_PIPELINE"] == "mlgate-churn-release"
    assert settings["POWERTOOLS_METRICS_NAMESPACE"] == "mlgate/churn/release"
    # A CodePipeline job event carries credentials: its dead letter is kept one hour.
    assert retention(template) == [3600]
    (alarm,) = resources(template, "AWS::CloudWatch::Alarm").values()
    assert (
        alarm["Properties"]["AlarmName"]
        == "mlgate/churn/staging/system/hook-deployer-failed/critical"
    )


def test_the_verifier_scores_the_sample_payload(home: Kit) -> None:
    DeployVerifier(
        home.stack,
        "DeployVerifier",
        props=DeployVerifierProps(release=release(home), access=access(), sample_payload="1,2,3"),
        key=home.key,
        alarms=home.alarms,
    )
    assert variables(home.template(), "deploy_verifier")["SAMPLE_PAYLOAD"] == "1,2,3"


def test_the_quality_gate_holds_a_version_to_its_thresholds(home: Kit) -> None:
    thresholds = {"model_metrics": [{"name": "auc", "threshold": 0.8, "direction": "at_least"}],
                  "slos": [{"name": "latency_p99_ms", "threshold": 50.0}]}  # fmt: skip
    QualityGate(
        home.stack,
        "QualityGate",
        props=QualityGateProps(release=release(home), thresholds=thresholds, smoke_requests=42),
        key=home.key,
        alarms=home.alarms,
        audit=AuditTrail(home.stack, "Audit", key=home.key, table_name="audit"),
        idempotency=home.idempotency(),
    )
    template = home.template()
    settings = variables(template, "quality_gate")
    assert json.loads(settings["MLGATE_THRESHOLDS"]) == thresholds
    assert settings["SMOKE_REQUESTS"] == "42"
    endpoint = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/mlgate-churn-staging"
    assert granted(template, "sagemaker:InvokeEndpoint") == [endpoint]


def test_the_release_hook_copies_approved_versions_and_starts_the_pipeline(home: Kit) -> None:
    ReleaseHook(
        home.stack,
        "Release",
        props=release(home),
        key=home.key,
        alarms=home.alarms,
        audit=AuditTrail(home.stack, "Audit", key=home.key, table_name="audit"),
        idempotency=home.idempotency(),
        pipeline_arn="arn:aws:codepipeline:eu-west-1:111111111111:mlgate-churn-release",
    )
    template = home.template()
    assert granted(template, "codepipeline:StartPipelineExecution") == [
        "arn:aws:codepipeline:eu-west-1:111111111111:mlgate-churn-release"
    ]
    (rule,) = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"]["detail"]["ModelPackageGroupName"] == ["mlgate-churn"]
    assert retention(template) == [14 * 86400]


# --- the release pipeline and its gates -------------------------------------------------------

GATES = (
    PipelineGate("quality", "Automated checks.", manual=False),
    PipelineGate("business-signoff", "The PM signs off.", True, (PM, ML_LEAD), timeout_hours=12),
)


def pipeline_props(k: Kit, gates: tuple[PipelineGate, ...] = GATES) -> ReleasePipelineProps:
    return ReleasePipelineProps(
        names=k.product_names,
        display_name="Churn risk",
        chat_channel="#churn",
        gates=gates,
        targets={
            "staging": DeployTarget(service_role="arn:aws:iam::111111111111:role/staging-cfn"),
            "prod": DeployTarget(service_role="arn:aws:iam::222222222222:role/prod-cfn",
                                 account=REMOTE),
        },
    )  # fmt: skip


def pipeline(k: Kit, props: ReleasePipelineProps, *, quality: bool = True) -> ReleasePipeline:
    key, alarms, stack = k.key, k.alarms, k.stack
    rel = release(k)
    return ReleasePipeline(
        stack,
        "ReleasePipeline",
        props=props,
        key=key,
        releases=s3.Bucket(stack, "Releases"),
        artifacts=s3.Bucket(stack, "PipelineArtifacts"),
        deployer=Deployer(stack, "Deployer", props=DeployerProps(rel, access()), key=key,
                          alarms=alarms),
        verifier=DeployVerifier(stack, "DeployVerifier",
                                props=DeployVerifierProps(rel, access(), "1"), key=key,
                                alarms=alarms),
        quality_gate=QualityGate(
            stack, "QualityGate", props=QualityGateProps(rel, {}, 5), key=key, alarms=alarms,
            audit=AuditTrail(stack, "Audit", key=key, table_name="audit"),
            idempotency=k.idempotency(),
        ) if quality else None,
    )  # fmt: skip


def stages(template: Template) -> list[dict[str, Any]]:
    (found,) = resources(template, "AWS::CodePipeline::Pipeline").values()
    return list(found["Properties"]["Stages"])


def test_the_pipeline_deploys_staging_then_passes_each_gate_in_order_then_prod(home: Kit) -> None:
    built = pipeline(home, pipeline_props(home))
    template = home.template()
    assert [s["Name"] for s in stages(template)] == [
        "Source", "DeployStaging", "VerifyStaging", "Quality", "BusinessSignoff", "DeployProd",
        "VerifyProd",
    ]  # fmt: skip
    by_name = {s["Name"]: s["Actions"][0] for s in stages(template)}
    approval = by_name["BusinessSignoff"]["Configuration"]
    assert approval["CustomData"] == (
        "business-signoff: The PM signs off. Approvers (any one decides): Pat Manager, Mo Lead. "
        "Evidence brief in #churn and by email; decide within 12 h."
    )
    prod = json.loads(by_name["DeployProd"]["Configuration"]["UserParameters"])
    assert prod["role_arn"] == REMOTE_DEPLOY
    assert prod["service_role"] == "arn:aws:iam::222222222222:role/prod-cfn"
    staging = json.loads(by_name["DeployStaging"]["Configuration"]["UserParameters"])
    assert "role_arn" not in staging
    quality = json.loads(by_name["Quality"]["Configuration"]["UserParameters"])
    assert quality["endpoint"] == "mlgate-churn-staging"
    # Each manual gate: a request topic and a brief topic mailed to its approvers.
    assert set(built.gate_topics) == set(built.brief_topics) == {"business-signoff"}
    emails = sorted(s["Properties"]["Endpoint"] for s in
                    resources(template, "AWS::SNS::Subscription").values())  # fmt: skip
    assert emails == ["ml@example.com", "pm@example.com"]


def test_an_automated_gate_without_the_quality_gate_is_refused(home: Kit) -> None:
    with pytest.raises(ValueError, match="gate 'quality' is automated"):
        pipeline(home, pipeline_props(home), quality=False)


def test_the_gate_hooks_post_briefs_and_take_decisions(home: Kit) -> None:
    k = home
    built = pipeline(k, pipeline_props(k, gates=GATES[1:]), quality=False)
    audit = AuditTrail(k.stack, "AuditTrail", key=k.key, table_name="audit-trail")
    GateNotifier(
        k.stack,
        "GateNotifier",
        props=GateNotifierProps(names=k.product_names, context='{"product":"churn"}',
                                approval_hours=12),
        key=k.key,
        alarms=k.alarms,
        audit=audit,
        idempotency=k.idempotency(),
        pipeline=built,
        webhook=SlackSecret(k.stack, "SlackWebhook", names=k.product_names, key=k.key,
                            description="webhook"),
        quality_job="mlgate-churn-quality",
    )  # fmt: skip
    callback = GateCallback(
        k.stack,
        "GateCallback",
        props=GateCallbackProps(names=k.product_names, reserved_concurrency=7),
        key=k.key,
        alarms=k.alarms,
        audit=audit,
        pipeline=built,
        signing=SlackSecret(k.stack, "SlackSigningSecret", names=k.product_names, key=k.key,
                            description="signing"),
    )  # fmt: skip
    template = k.template()
    assert variables(template, "gate_notifier")["MLGATE_CONTEXT"] == '{"product":"churn"}'
    secrets = sorted(s["Properties"]["Name"] for s in
                     resources(template, "AWS::SecretsManager::Secret").values())  # fmt: skip
    assert secrets == ["mlgate/churn/SlackSigningSecret", "mlgate/churn/SlackWebhook"]
    (fn,) = [f for f in resources(template, "AWS::Lambda::Function").values()
             if f["Properties"]["Handler"] == "gate_callback.handler.handler"]  # fmt: skip
    assert fn["Properties"]["ReservedConcurrentExecutions"] == 7
    (url,) = resources(template, "AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "NONE"
    alarms = {a["Properties"]["AlarmName"] for a in
              resources(template, "AWS::CloudWatch::Alarm").values()}  # fmt: skip
    system = "mlgate/churn/staging/system"
    assert {f"{system}/gate-waiting-too-long/critical", f"{system}/gate-callback-refused/critical",
            f"{system}/gate-callback-throttled/critical"} <= alarms  # fmt: skip
    assert callback.wait_alarm_name == f"{system}/gate-waiting-too-long/critical"
    # The notifier's dead letters (approval tokens) live as long as the longest gate: 12 h.
    assert 12 * 3600 in retention(template)


def test_a_gate_that_needs_every_approver_says_so_beside_the_approval() -> None:
    both = PipelineGate("go-live", "Both sign.", True, (PM, ML_LEAD), requires_all=True)
    alone = PipelineGate("go-live", "One signs.", True, (PM,), requires_all=True)
    assert "Needs all of: Pat Manager, Mo Lead (approve in #churn;" in gate_summary(both, "#churn")
    # One approver is all of them: the line says nothing it need not.
    assert "Approvers (any one decides): Pat Manager." in gate_summary(alone, "#churn")
    either = PipelineGate("go-live", "Either signs.", True, (PM, ML_LEAD))
    assert "Approvers (any one decides): Pat Manager, Mo Lead." in gate_summary(either, "#churn")
