"""The contract between the product's home account and an environment in another account.

Staging's account is home: it holds the product-wide stacks (registry, training pipeline,
release pipeline, audit trail). Prod may live in another account. CDK cannot reference
resources across accounts, so both sides agree on fixed role names (`naming.Names`) and trust
each other by name: a role that trusts a role of the other account names it with
`aws:PrincipalArn` on that account's principal, which holds whichever side is deployed first.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from mlgate.manifest import ENV_NAMES, EnvName, Manifest
from mlgate.naming import Names, role_arn


def home_account(manifest: Manifest) -> str:
    return manifest.environments.staging.account


def remote_envs(manifest: Manifest) -> list[EnvName]:
    """Environments that live in another account than home."""
    return [env for env in ENV_NAMES if manifest.is_remote(env)]


def artifact_readers(manifest: Manifest, env: EnvName) -> list[str]:
    """Roles of a remote environment that read model artifacts and baselines from home."""
    names = Names.of(manifest, env)
    return [names.model_role(), names.monitor_role()]


def trusted_roles(account: str, *names: str) -> iam.IPrincipal:
    """Principal for a trust or resource policy: these named roles of `account`, and only them.

    The account principal with an `aws:PrincipalArn` condition is accepted by IAM before the
    roles exist (an ARN principal is not), so the two accounts deploy in any order."""
    arns = [role_arn(account, name) for name in names]
    return iam.AccountPrincipal(account).with_conditions(
        {"ArnEquals": {"aws:PrincipalArn": arns if len(arns) > 1 else arns[0]}}
    )


# --- what the release hooks may do in an environment -----------------------------------------
# The same statements go to the home hooks' roles for environments in the home account, and to
# the deploy and verify roles of an environment in another account.

Findings = dict[str, str]


def deploy_access(manifest: Manifest, env: EnvName) -> tuple[list[iam.PolicyStatement], Findings]:
    """Update the environment's Serving stack, and nothing else."""
    target = manifest.environment(env)
    stack = (
        f"arn:aws:cloudformation:{target.region}:{target.account}:stack/"
        f"{Names.of(manifest).serving_stack(env)}/*"
    )
    # UpdateStack runs as the role `cdk deploy` attached to the stack (the bootstrap
    # CloudFormation execution role), which the caller must be allowed to pass.
    exec_role = role_arn(
        target.account, f"cdk-hnb659fds-cfn-exec-role-{target.account}-{target.region}"
    )
    statements = [
        iam.PolicyStatement(
            actions=[
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:UpdateStack",
            ],
            resources=[stack],
        ),
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[exec_role],
            conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        ),
    ]
    findings = {
        f"AwsSolutions-IAM5[Resource::{stack}]": "A stack ARN ends in the stack id "
        "CloudFormation generates; the stack name before it is fixed, so this names exactly "
        f"the {env} Serving stack."
    }
    return statements, findings


def verify_access(manifest: Manifest, env: EnvName) -> tuple[list[iam.PolicyStatement], Findings]:
    """Describe the environment's endpoint down to its model, and invoke it once."""
    target = manifest.environment(env)
    arn = f"arn:aws:sagemaker:{target.region}:{target.account}"
    configs = [f"{arn}:endpoint-config/*", f"{arn}:model/*"]
    statements = [
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
            resources=[f"{arn}:endpoint/{Names.of(manifest).endpoint(env)}"],
        ),
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            resources=configs,
        ),
    ]
    findings = {
        f"AwsSolutions-IAM5[Resource::{resource}]": "CloudFormation names endpoint configs and "
        f"models at deploy time; only the ones the {env} endpoint points to are described."
        for resource in configs
    }
    return statements, findings
