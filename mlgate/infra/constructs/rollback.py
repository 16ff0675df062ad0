"""The role `python -m mlgate rollback` runs as (mlgate/cli/rollback.py), in the home account.

Who may roll back is two locks, one in each system: IAM decides who may assume this role (it
trusts the home account, whose administrators grant sts:AssumeRole on it to the people on call
for the product), and the command refuses anyone the manifest's delivery.rollback_approvers
does not name, recording both the contact and the caller's AWS identity. The role may do what a
rollback does and nothing else: read and write its own audit items ("rollback#" keys) and the
"served" records, read the release pipeline's state, and in each environment what the deployer
and the verifier may (the same statements in the home account; their roles in another, whose
trust names this role beside the hook's: mlgate/infra/stacks/foundation.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.alarms import AlarmFactory
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import AuditTrail, FailureRouting, HookFunction
from mlgate.infra.constructs.release_hooks import EnvironmentAccess, grant_environment_access
from mlgate.infra.naming import Names

# A rollback's lock outlives its rollout by this much (mlgate/runtime/hooks/shared/rollback.py);
# the state machine looks at the update this often.
LOCK_MARGIN_MINUTES = 30
POLL_SECONDS = 60

# Its own items: the lock, its events and the chat's offers ("rollback#", read back by Query);
# the served records it reads, and writes for the version it restores ("served#").
AUDIT_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query")
SERVED_ACTIONS = ("dynamodb:Query", "dynamodb:PutItem")


@dataclass(frozen=True)
class RollbackProps:
    role_name: str
    home_account: str
    pipeline_arn: str
    deploy: tuple[EnvironmentAccess, ...]
    verify: tuple[EnvironmentAccess, ...]
    product: str


class RollbackRole(Construct):
    def __init__(
        self, scope: Construct, id: str, *, props: RollbackProps, audit: AuditTrail
    ) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=props.role_name,
            assumed_by=iam.AccountPrincipal(props.home_account),
            description=f"mlgate rollback of {props.product}: puts an environment back on a "
            "version it served, through its Serving stack (python -m mlgate rollback)",
            # A rollback that waits longer resumes: the same command again (mlgate/cli/rollback.py).
            max_session_duration=durations.hours(1),
        )
        audit.grant_append(self.role, ["rollback"], *AUDIT_ACTIONS)
        audit.grant_append(self.role, ["served"], *SERVED_ACTIONS)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["codepipeline:GetPipelineState"], resources=[props.pipeline_arn]
            )
        )
        grant_environment_access(self.role, (*props.deploy, *props.verify))


@dataclass(frozen=True)
class RollbackHookProps:
    """The chat's Roll back button: `context` (JSON: mlgate/infra/gates.py rollback_context)
    says what the hook acts on, `offer_stages` which verify stages' success posts the button,
    `longest_minutes` the longest rollback any environment's rollout allows (its
    max_execution_timeout_minutes, after which the lock expires)."""

    names: Names
    context: str
    offer_stages: tuple[str, ...]
    longest_minutes: int


class RollbackHook(HookFunction):
    """Posts "prod serves version N" with a Roll back button when a release is verified, and
    runs the rollback an approver's click asks for (mlgate/runtime/hooks/rollback), step by
    step in a state machine that waits between looks at the update."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: RollbackHookProps,
        key: kms.IKey,
        alarms: AlarmFactory,
        role: RollbackRole,
        webhook: secretsmanager.ISecret,
    ) -> None:
        names = props.names
        super().__init__(
            scope,
            id,
            hook="rollback",
            description="Posts the Roll back button of a verified release and runs the "
            "rollbacks its approvers ask for",
            environment={
                "ROLLBACK_CONTEXT": props.context,
                "AUDIT_TABLE": names.audit_table(),
                "RELEASE_PIPELINE": names.release_pipeline(),
                "SLACK_WEBHOOK_SECRET_ARN": webhook.secret_arn,
                "ROLLBACK_ROLE_ARN": role.role.role_arn,
            },
            # A step reads the stack, the pipeline and the trail through assumed roles.
            timeout=durations.seconds(60),
            # The verified-release rule invokes it asynchronously.
            failures=FailureRouting.of("rollback", key=key, alarms=alarms),
        )
        # Everything but the chat secret is done as the rollback role: what a rollback from the
        # command line may do, nothing more.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role.role.role_arn])
        )
        self.read_secret(webhook, key)
        self.offer_rule = WatchedRule(
            self,
            "Verified",
            rule_name=names.rule("release-verified"),
            description="A release was verified in an environment: post its Roll back button",
            event_pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=["CodePipeline Action Execution State Change"],
                detail={
                    "pipeline": [names.release_pipeline()],
                    "stage": list(props.offer_stages),
                    "state": ["SUCCEEDED"],
                },
            ),
        )
        self.offer_rule.add_target(targets.LambdaFunction(self.function, retry_attempts=2))
        self.machine = self._machine(props.longest_minutes)

    def _machine(self, longest_minutes: int) -> sfn.StateMachine:
        """start -> (running: wait, poll)* -> completed | refused | failed. A step that fails
        (a throttle, a 5xx the hook's clients gave up on) is retried: each step is made once
        (the hook's docstring)."""

        def step(id: str, payload: sfn.TaskInput | None = None) -> tasks.LambdaInvoke:
            task = tasks.LambdaInvoke(
                self,
                id,
                lambda_function=self.function,
                payload=payload,
                payload_response_only=True,
                retry_on_service_exceptions=True,
            )
            task.add_retry(
                errors=["States.TaskFailed", "States.Timeout"],
                interval=durations.seconds(10),
                max_attempts=4,
                backoff_rate=2,
            )
            return task

        start = step(
            "Start",
            sfn.TaskInput.from_object(
                {
                    "step": "start",
                    "offer": sfn.JsonPath.string_at("$.offer"),
                    "slack_user": sfn.JsonPath.string_at("$.slack_user"),
                    "rollback_id": sfn.JsonPath.string_at("$$.Execution.Name"),
                }
            ),
        )
        # The state (the start's answer, then the last poll's) is the poll's payload as it is.
        poll = step("Poll")
        wait = sfn.Wait(self, "Bake", time=sfn.WaitTime.duration(durations.seconds(POLL_SECONDS)))
        done = sfn.Succeed(self, "Done", comment="rolled back, or refused (posted to chat)")
        failed = sfn.Fail(self, "Failed", error="RollbackFailed", cause="posted to chat")

        def route(id: str) -> sfn.Choice:
            return (
                sfn.Choice(self, id)
                .when(sfn.Condition.string_equals("$.state", "running"), wait)
                .when(sfn.Condition.string_equals("$.state", "failed"), failed)
                .otherwise(done)
            )

        wait.next(poll)
        poll.next(route("AfterPoll"))
        logs_group = logs.LogGroup(
            self,
            "MachineLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        machine = sfn.StateMachine(
            self,
            "Machine",
            # No custom name: CloudFormation could not replace it under one; the callback
            # finds it by the ARN in its environment.
            definition_body=sfn.DefinitionBody.from_chainable(start.next(route("AfterStart"))),
            # The lock expires LOCK_MARGIN_MINUTES after the longest rollout: no execution
            # outlives the rollback it runs.
            timeout=durations.minutes(longest_minutes + LOCK_MARGIN_MINUTES + 10),
            logs=sfn.LogOptions(destination=logs_group, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
        )
        policy = machine.role.node.find_child("DefaultPolicy")
        stack = Stack.of(self)
        logical = stack.get_logical_id(self.function.node.default_child)  # type: ignore[arg-type]
        acknowledge_each(
            policy,
            {
                f"AwsSolutions-IAM5[Resource::<{logical}.Arn>:*]": "The rollback state "
                "machine invokes the rollback hook only; Step Functions grants its versions "
                "and aliases (<arn>:*) with it.",
                "AwsSolutions-IAM5[Resource::*]": "CloudWatch Logs' log delivery and X-Ray's "
                "PutTraceSegments/PutTelemetryRecords, which the rollback state machine's "
                "logging and tracing need, take no resource ARN "
                "(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).",
            },
        )
        return machine
