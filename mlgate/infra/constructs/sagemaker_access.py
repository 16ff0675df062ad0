"""What every SageMaker execution role of an environment needs to reach a released version:
its container images, and the home key its artifacts and baselines are encrypted with."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlgate.infra.constructs.compliance import acknowledge


@dataclass(frozen=True)
class ReleasedVersions:
    """Where an environment's roles read released versions from: the home account's artifact
    `bucket` in `home_account` / `home_region`, its objects encrypted with the home key;
    `remote` when the environment `env` lives in another account than home."""

    env: str
    home_account: str
    home_region: str
    bucket: str
    remote: bool


def pull_images(role: iam.Role, images: list[str]) -> None:
    """Pull exactly these ECR images (ecr:GetAuthorizationToken takes no resource)."""
    region = Stack.of(role).region
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=sorted(
                {
                    f"arn:aws:ecr:{region}:{uri.split('.')[0]}:repository/"
                    f"{uri.split('/', 1)[1].split(':')[0]}"
                    for uri in images
                }
            ),
        )
    )
    role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))


def write_job_logs(role: iam.Role, groups: str) -> str:
    """A SageMaker job writes its logs with its role, into log groups SageMaker names under
    /aws/sagemaker/; `groups` is the name pattern after it. Returns the granted ARN."""
    stack = Stack.of(role)
    logs = f"arn:aws:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/{groups}"
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[logs],
        )
    )
    return logs


def decrypt_released_versions(role: iam.Role, *, released: ReleasedVersions, key: kms.IKey) -> None:
    """Decrypt released versions (released/<product>/ in the home artifact bucket, encrypted
    with the home key) through S3, for objects of that bucket only: its S3 Bucket Key makes
    the bucket's ARN the encryption context KMS sees
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html), with
    kms:ViaService for S3 in the home region; the bucket policy (and the role's own s3:GetObject)
    hold the prefix. In the home account the key is `key`. From another account the key's id
    is not known, so the grant names the home account's keys and what KMS documents for a
    cross-account caller decides which one: a principal of another account may use a key only
    when the key policy allows it too ("Neither the key policy nor the IAM policy alone is
    sufficient",
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html),
    and only the product key's policy names this environment's roles (the home foundation
    stack), with the same conditions. No alias condition: KMS does not document
    kms:ResourceAliases for a key in another account."""
    artifacts, remote, env = released.bucket, released.remote, released.env
    keys = f"arn:aws:kms:{released.home_region}:{released.home_account}:key/*"
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[keys if remote else key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"s3.{released.home_region}.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{artifacts}",
                },
            },
        )
    )
    if not remote:
        return
    acknowledge(
        role.node.find_child("DefaultPolicy"),
        f"AwsSolutions-IAM5[Resource::{keys}]",
        f"The {env} account cannot know the home key's id; only the product key's policy "
        f"names this role, and the grant holds through S3 for the bucket {artifacts} only.",
    )


def start_training(pipeline_arn: str) -> iam.PolicyStatement:
    """May start the product's training pipeline (`pipeline_arn`, in the home account) the way
    `shared/pipelines.start_if_idle` does: look for a running execution, then start one."""
    return iam.PolicyStatement(
        actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
        resources=[pipeline_arn],
    )


def released_model(
    scope: Construct,
    id: str,
    *,
    role: iam.IRole,
    image: str,
    model_data: str,
    environment: dict[str, str],
    isolated: bool,
) -> sagemaker.CfnModel:
    """A SageMaker model of a released artifact `model_data` in the serving `image` with the
    container `environment` (none when empty), run as `role`; `isolated`: no network for the
    container (network isolation)."""
    return sagemaker.CfnModel(
        scope,
        id,
        execution_role_arn=role.role_arn,
        containers=[
            sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image, model_data_url=model_data, environment=environment or None
            )
        ],
        enable_network_isolation=isolated,
    )
