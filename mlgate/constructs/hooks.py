"""Lambda hooks: one construct decides runtime, packaging, logging and the least-privilege role."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlgate.constructs.compliance import acknowledge

LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# Powertools for AWS Lambda (Python) v3, published by AWS in every commercial region; the
# version is the one its documentation lists (bump it with the layer, it cannot be resolved
# offline).
POWERTOOLS_LAYER = (
    "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27"
)
# Runtime code shared by every hook: the asset is mlgate/lambdas, minus what never runs there.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.md", "**/.mypy_cache"]


class HookFunction(Construct):
    """A Lambda hook from mlgate/lambdas/<hook>/handler.py with its own role and log group.

    The role starts empty but for writing its own log group; the stack grants what the hook
    calls, so the role in the template is the hook's exact contract. Logs are kept for a year.
    `role_name` fixes the role's name where a role of another account trusts it by name
    (mlgate/accounts.py); otherwise CloudFormation names it.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        hook: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration | None = None,
        memory_size: int = 256,
        role_name: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not (LAMBDAS / hook / "handler.py").is_file():
            raise ValueError(f"hook '{hook}' has no mlgate/lambdas/{hook}/handler.py")
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{hook} hook: writes its logs; the stack grants what it calls",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"{hook}.handler.handler",
            code=lambda_.Code.from_asset(str(LAMBDAS), exclude=ASSET_EXCLUDES),
            description=description,
            role=self.role,
            log_group=self.log_group,
            timeout=timeout or Duration.seconds(30),
            memory_size=memory_size,
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", POWERTOOLS_LAYER.format(region=stack.region)
                )
            ],
            environment={
                "POWERTOOLS_SERVICE_NAME": hook,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"The {hook} hook runs on python3.13, the newest runtime the pinned Powertools v3 "
            "public layer is published for; it moves when the layer does.",
        )
