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

from aws_cdk import aws_iam as iam
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.constructs.hooks import AuditTrail
from mlgate.infra.constructs.release_hooks import EnvironmentAccess, grant_environment_access

# Its own items: the lock and its events ("rollback#"); the served records it reads, and writes
# for the version it restores ("served#").
AUDIT_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
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
