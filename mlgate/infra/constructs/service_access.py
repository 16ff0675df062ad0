"""A topic that AWS services publish to on this account's behalf, guarded against the confused
deputy (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).

The product key that encrypts such a topic is not guarded the same way: SNS documents the key
policy for services publishing to an encrypted topic without a condition, and no page says the
request SNS makes to KMS for them carries aws:SourceAccount, so a condition there could drop
every alarm and failure notice (mlgate/infra/stacks/foundation.py)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import IConstruct

# The services that act for a rule or an alarm of any account; each supports aws:SourceAccount.
DEPUTIES = {"events.amazonaws.com", "cloudwatch.amazonaws.com"}


def _for_this_account(scope: IConstruct, statement: iam.PolicyStatement) -> None:
    """A statement that admits EventBridge or CloudWatch admits it only for this account."""
    # Service principals are tokens until resolved (CDK picks the name per region).
    stack = Stack.of(scope)
    document = stack.resolve(statement.to_statement_json())
    principal = document.get("Principal")
    services = principal.get("Service", []) if isinstance(principal, dict) else []
    services = [services] if isinstance(services, str) else services
    conditions = str(document.get("Condition") or {})
    if DEPUTIES & set(services) and "aws:Source" not in conditions:
        statement.add_condition("StringEquals", {"aws:SourceAccount": stack.account})


class ServiceTopic(sns.Topic):
    """A topic that EventBridge rules publish to. CDK's targets.SnsTopic grants
    events.amazonaws.com sns:Publish with no condition, so a rule in any account could publish
    here; every service statement gets aws:SourceAccount, whichever stack adds it
    (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html)."""

    def add_to_resource_policy(
        self, statement: iam.PolicyStatement
    ) -> iam.AddToResourcePolicyResult:
        _for_this_account(self, statement)
        return super().add_to_resource_policy(statement)
