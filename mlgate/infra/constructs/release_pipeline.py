"""The release pipeline: release.json -> deploy and verify staging -> the manifest's gates, in
order -> deploy and verify prod."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import Owner
from mlgate.infra.constructs.compliance import (
    KEY_GRANT_FINDINGS,
    acknowledge,
    acknowledge_findings,
    bucket_grant_findings,
)
from mlgate.infra.constructs.hooks import HookFunction
from mlgate.infra.constructs.release_hooks import RELEASE_KEY, Deployer, DeployVerifier, QualityGate
from mlgate.infra.naming import EnvName, Names, role_arn


@dataclass(frozen=True)
class PipelineGate:
    """A stage gate, in pipeline order: a manual approval by `approvers` that times out after
    `timeout_hours`, or (`manual` False) the automated quality gate."""

    name: str
    description: str
    manual: bool
    approvers: tuple[Owner, ...] = ()
    timeout_hours: int = 72
    requires_all: bool = False
    """Every approver must approve (from chat), rather than the first decision deciding."""
    before_prod: bool = False
    """Placed last before prod: prod's shadow test runs before it, so its brief shows the
    verdict."""


@dataclass(frozen=True)
class DeployTarget:
    """An environment the pipeline deploys: the Serving stack's CloudFormation service role
    (`service_role`, an ARN), `account` when the environment lives in another account than
    home (None: home), and its shadow test (`shadow`: what the verifier judges it by, its
    UserParameters' `shadow`; None: no Shadow stage)."""

    service_role: str
    account: str | None = None
    shadow: Mapping[str, Any] | None = None
    batch: Mapping[str, Any] | None = None
    """A batch environment's release checks (UserParameters' `batch`): it has no endpoint."""


@dataclass(frozen=True)
class ReleasePipelineProps:
    """What the release pipeline knows of the product: its product-wide `names`, the name
    shown on its topics, the chat channel briefs go to, its gates and its two environments."""

    names: Names
    display_name: str
    chat_channel: str
    gates: tuple[PipelineGate, ...]
    targets: Mapping[EnvName, DeployTarget]


def gate_summary(gate: PipelineGate, chat_channel: str) -> str:
    """The one line CodePipeline shows beside a manual approval (at most 500 characters)."""
    names = ", ".join(a.name for a in gate.approvers)
    who = (
        f"Needs all of: {names} (approve in {chat_channel}; a decision here is one person's)."
        if gate.requires_all and len(gate.approvers) > 1
        else f"Approvers (any one decides): {names}."
    )
    line = (
        f"{gate.name}: {gate.description} {who} Evidence brief in {chat_channel} and by email; "
        f"decide within {gate.timeout_hours} h."
    )
    return line[:500]


USER_PARAMETERS_LIMIT = 1000
"""Characters in an action configuration value, UserParameters included: CodePipeline refuses
a longer one when the pipeline is created or updated, so the stack would fail on deploy
(https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ActionConfiguration.html)."""


def user_parameters(action: str, value: Mapping[str, Any]) -> str:
    """A Lambda action's UserParameters as the hook reads them (JSON, keys sorted); too long
    for CodePipeline stops the synth here, naming the action and what makes it long."""
    text = json.dumps(value, sort_keys=True)
    if len(text) > USER_PARAMETERS_LIMIT:
        longest = max(value, key=lambda k: len(json.dumps(value[k])))
        raise ValueError(
            f"the release pipeline's {action} action would pass {len(text)} characters of "
            f"UserParameters; CodePipeline takes at most {USER_PARAMETERS_LIMIT} "
            f"(its longest part: '{longest}'; shorter names in the manifest shorten it)"
        )
    return text


class ReleasePipeline(Construct):
    """The CodePipeline that carries one approved model version from staging to prod through
    the manifest's stage gates; each manual gate has its request topic and its brief topic."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: ReleasePipelineProps,
        key: kms.IKey,
        releases: s3.IBucket,
        artifacts: s3.IBucket,
        deployer: Deployer,
        verifier: DeployVerifier,
        quality_gate: QualityGate | None,
    ) -> None:
        super().__init__(scope, id)
        self.props = props
        self.names = props.names
        self.key = key
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=self.names.release_pipeline(),
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            artifact_bucket=artifacts,
            restart_execution_on_update=False,
        )
        self.source = codepipeline.Artifact("Release")
        self.pipeline.add_stage(
            stage_name="Source",
            actions=[
                actions.S3SourceAction(
                    action_name="ReleaseJson",
                    bucket=releases,
                    bucket_key=RELEASE_KEY,
                    output=self.source,
                    # The release hook starts each execution once release.json is written.
                    trigger=actions.S3Trigger.NONE,
                )
            ],
        )
        self.gate_topics: dict[str, sns.Topic] = {}
        """Per manual gate: where CodePipeline posts its approval request (to the notifier)."""
        self.brief_topics: dict[str, sns.Topic] = {}
        """Per manual gate: the evidence brief's email topic, its approvers subscribed."""
        self._shadowed: set[EnvName] = set()
        """The environments whose Shadow stage is in the pipeline already."""
        self._deploy_stage("staging", deployer, verifier)
        automated: PipelineGate | None = None
        for gate in props.gates:
            if gate.before_prod and "prod" not in self._shadowed:
                # Prod's shadow test, before the gates that lead to prod: their briefs show
                # its verdict (the gate notifier reads it from the audit trail).
                self._shadow_for("prod", deployer, verifier)
            action: codepipeline.IAction
            if gate.manual:
                action = self._approval(gate)
            else:
                if quality_gate is None:
                    raise ValueError(f"gate '{gate.name}' is automated: it needs the quality gate")
                automated = gate
                action = actions.LambdaInvokeAction(
                    action_name="Evaluate",
                    lambda_=quality_gate.function,
                    # CodePipeline resolves the variable, so the verdict joins the
                    # execution's other gate events in the audit trail.
                    user_parameters_string=user_parameters(
                        "Evaluate",
                        {
                            **self._subject("staging"),
                            "execution": "#{codepipeline.PipelineExecutionId}",
                        },
                    ),
                )
            self.pipeline.add_stage(stage_name=self.names.gate_stage(gate.name), actions=[action])
        self._deploy_stage("prod", deployer, verifier)
        invoked: dict[str, HookFunction] = {"Deploy": deployer, "Verify": verifier}
        if any(target.shadow for target in props.targets.values()):
            # A Shadow stage's actions, by their names' start (see _shadow_stage).
            invoked.update(AddShadow=deployer, JudgeShadow=verifier, RemoveShadow=deployer)
        if automated is not None and quality_gate is not None:
            invoked[self.names.gate_stage(automated.name)] = quality_gate
        self._acknowledge_grants(artifacts, invoked)

    def _parameters(self, env: EnvName) -> tuple[dict[str, str], dict[str, Any]]:
        """The deployer's and the verifier's UserParameters for `env`."""
        # The deployer passes the Serving stack's own CloudFormation service role as
        # UpdateStack's RoleARN, the one role it may pass (mlgate/infra/accounts.py, deploy_access).
        target = self.props.targets[env]
        params: dict[str, str] = {
            "environment": env,
            "stack": self.names.serving_stack(env),
            "service_role": target.service_role,
        }
        checks: dict[str, Any] = {"environment": env, **self._subject(env)}
        account = target.account
        if account is not None:
            # The hooks act in the environment's account through its deploy and verify roles.
            params["role_arn"] = role_arn(account, self.names.deploy_role(env))
            checks["role_arn"] = role_arn(account, self.names.verify_role(env))
        return params, checks

    def _subject(self, env: EnvName) -> dict[str, Any]:
        """What the release checks look at in `env`: its endpoint, or a batch environment's
        runs."""
        batch = self.props.targets[env].batch
        return {"batch": dict(batch)} if batch else {"endpoint": self.names.endpoint(env)}

    def _shadow_for(self, env: EnvName, deployer: Deployer, verifier: DeployVerifier) -> None:
        """The environment's Shadow stage, once, when it has a shadow test."""
        shadow = self.props.targets[env].shadow
        if shadow is None or env in self._shadowed:
            return
        params, checks = self._parameters(env)
        self._shadow_stage(env, params, checks, dict(shadow), deployer, verifier)
        self._shadowed.add(env)

    def _deploy_stage(self, env: EnvName, deployer: Deployer, verifier: DeployVerifier) -> None:
        params, checks = self._parameters(env)
        self._shadow_for(env, deployer, verifier)  # right before the deploy, unless done earlier
        self.pipeline.add_stage(
            stage_name=f"Deploy{env.capitalize()}",
            actions=[
                actions.LambdaInvokeAction(
                    action_name=f"UpdateServing{env.capitalize()}",
                    lambda_=deployer.function,
                    user_parameters_string=user_parameters(
                        f"UpdateServing{env.capitalize()}", params
                    ),
                )
            ],
        )
        # A batch environment's check is a sample run, not an endpoint's answer.
        check = f"Check{'Batch' if 'batch' in checks else 'Endpoint'}{env.capitalize()}"
        self.pipeline.add_stage(
            stage_name=f"Verify{env.capitalize()}",
            actions=[
                actions.LambdaInvokeAction(
                    action_name=check,
                    lambda_=verifier.function,
                    user_parameters_string=user_parameters(check, checks),
                )
            ],
        )

    def _shadow_stage(
        self,
        env: EnvName,
        params: dict[str, str],
        checks: dict[str, str],
        shadow: dict[str, Any],
        deployer: Deployer,
        verifier: DeployVerifier,
    ) -> None:
        """Before any traffic moves: the deployer adds the version as the endpoint's shadow
        variant, the verifier judges it on copied traffic (mlgate/manifest/shadow.py), then the
        deployer removes it and fails the stage unless the test passed. Each runs after the
        previous one succeeded (runOrder); the judge always succeeds once it has recorded its
        verdict, so the shadow is removed whatever the verdict."""
        title = env.capitalize()
        self.pipeline.add_stage(
            stage_name=f"Shadow{title}",
            actions=[
                actions.LambdaInvokeAction(
                    action_name=f"AddShadow{title}",
                    lambda_=deployer.function,
                    user_parameters_string=user_parameters(
                        f"AddShadow{title}", {**params, "shadow": "start"}
                    ),
                    run_order=1,
                ),
                actions.LambdaInvokeAction(
                    action_name=f"JudgeShadow{title}",
                    lambda_=verifier.function,
                    user_parameters_string=user_parameters(
                        f"JudgeShadow{title}", {**checks, "shadow": shadow}
                    ),
                    run_order=2,
                ),
                actions.LambdaInvokeAction(
                    action_name=f"RemoveShadow{title}",
                    lambda_=deployer.function,
                    user_parameters_string=user_parameters(
                        f"RemoveShadow{title}", {**params, "shadow": "stop"}
                    ),
                    run_order=3,
                ),
            ],
        )

    def _approval(self, gate: PipelineGate) -> actions.ManualApprovalAction:
        stage = self.names.gate_stage(gate.name)
        display = self.props.display_name
        topic = sns.Topic(
            self,
            f"Gate{stage}",
            topic_name=self.names.gate_topic(gate.name),
            display_name=f"{display}: {gate.name} gate",
            master_key=self.key,
            enforce_ssl=True,
        )
        brief = sns.Topic(
            self,
            f"Brief{stage}",
            topic_name=self.names.brief_topic(gate.name),
            display_name=f"{display}: {gate.name} evidence brief",
            master_key=self.key,
            enforce_ssl=True,
        )
        for approver in gate.approvers:
            brief.add_subscription(subs.EmailSubscription(approver.email))
        self.gate_topics[gate.name] = topic
        self.brief_topics[gate.name] = brief
        return actions.ManualApprovalAction(
            action_name="Approve",
            notification_topic=topic,
            additional_information=gate_summary(gate, self.props.chat_channel),
            timeout=durations.hours(gate.timeout_hours),
        )

    def _acknowledge_grants(self, artifacts: s3.IBucket, invoked: dict[str, HookFunction]) -> None:
        """CodePipeline's roles carry CDK's standard grants; each is acknowledged for its cause."""
        stack = Stack.of(self)
        bucket = stack.get_logical_id(artifacts.node.default_child)  # type: ignore[arg-type]
        functions = {
            stage: stack.get_logical_id(hook.function.node.default_child)  # type: ignore[arg-type]
            for stage, hook in invoked.items()
        }
        store = (
            "Reads and writes release artifacts in this pipeline's own artifact bucket, "
            "encrypted with the product key; CDK's grant expands into these wildcards."
        )
        for policy in self.pipeline.node.find_all():
            node = policy.node  # each read of .node is a call to node
            if node.id != "DefaultPolicy":
                continue
            path = node.path
            if "/Approve/" in path:
                acknowledge(
                    policy,
                    KEY_GRANT_FINDINGS[0],
                    "Publishes the approval request to its gate topic, which is encrypted with "
                    "the product key; kms:GenerateDataKey* is the publish grant on that key.",
                )
            elif any(f"/{stage}" in path for stage in functions):
                function = next(f for stage, f in functions.items() if f"/{stage}" in path)
                acknowledge_findings(policy, bucket_grant_findings(bucket, write=False), store)
                acknowledge(
                    policy,
                    "AwsSolutions-IAM5[Resource::*]",
                    "The Lambda action lists functions to invoke its hook; "
                    "lambda:ListFunctions supports no resource-level permission.",
                )
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::<{function}.Arn>:*]",
                    "Invokes only this action's hook, in any of its published versions.",
                )
            else:
                acknowledge_findings(
                    policy, [*bucket_grant_findings(bucket, write=True), *KEY_GRANT_FINDINGS], store
                )
