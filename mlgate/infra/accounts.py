"""The contract between the product's home account and an environment in another account.

Staging's account is home: it holds the product-wide stacks (registry, training pipeline,
release pipeline, audit trail). Prod may live in another account. CDK cannot reference
resources across accounts, so both sides agree on fixed role names (`naming.Names`) and trust
each other by name: a role that trusts a role of the other account names it with
`aws:PrincipalArn` on that account's principal, which holds whichever side is deployed first.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from mlgate.infra.batch_settings import batch_function_name
from mlgate.infra.constructs.endpoint import capture_prefix
from mlgate.infra.inference_component import WAKE_FROM_ZERO as COMPONENT_WAKE
from mlgate.infra.inference_component import component_name
from mlgate.infra.naming import Names, role_arn
from mlgate.manifest import ENV_NAMES, EnvName, Manifest, ServingMode


def home_account(manifest: Manifest) -> str:
    return manifest.environments.staging.account


def remote_envs(manifest: Manifest) -> list[EnvName]:
    """Environments that live in another account than home."""
    return [env for env in ENV_NAMES if manifest.is_remote(env)]


def artifact_readers(manifest: Manifest, env: EnvName) -> list[str]:
    """Roles of a remote environment that read released versions (model artifact, baselines)
    from home: released/<product>/ of the home artifact bucket, nothing else."""
    names = Names.of(manifest, env)
    # A serverless environment captures nothing, so nothing monitors it: no monitor role.
    watched = manifest.monitored(env)
    return [names.model_role(), *([names.monitor_role()] if watched else [])]


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
    """Update the environment's Serving stack through its own CloudFormation service role, and
    nothing else.

    IAM cannot make UpdateStack keep the previous template (no condition key says
    UsePreviousTemplate), so whoever runs as the deployer may submit any template: what that
    template can do is what the role passed as RoleARN may do. The deployer passes only the
    Serving stack's service role (`serving_update_access`), never CDK's bootstrap execution
    role; CloudFormation refuses an UpdateStack whose RoleARN the caller may not pass
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html).
    """
    target = manifest.environment(env)
    stack = (
        f"arn:aws:cloudformation:{target.region}:{target.account}:stack/"
        f"{Names.of(manifest).serving_stack(env)}/*"
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
            resources=[serving_cfn_role_arn(manifest, env)],
            conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        ),
    ]
    findings = {
        f"AwsSolutions-IAM5[Resource::{stack}]": "A stack ARN ends in the stack id "
        "CloudFormation generates; the stack name before it is fixed, so this names exactly "
        f"the {env} Serving stack."
    }
    return statements, findings


def serving_cfn_role_arn(manifest: Manifest, env: EnvName) -> str:
    """The Serving stack's CloudFormation service role, in the environment's account."""
    return role_arn(manifest.environment(env).account, Names.of(manifest).serving_cfn_role(env))


SCALING_SLR = "sagemaker.application-autoscaling.amazonaws.com"
# What the Serving stack's update does to an alarm it owns (autoscaling's and mlgate's own
# scaling alarms), and to its tags where the stack creates the alarm itself.
ALARM_ACTIONS = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DescribeAlarms",
)
ALARM_TAG_ACTIONS = (
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
    "cloudwatch:ListTagsForResource",
)
# The `what` of an async endpoint's wake-from-zero alarm (mlgate/infra/constructs/endpoint.py).
WAKE_ALARM = "async-backlog-without-capacity"


def tags_only_of(manifest: Manifest, env: EnvName) -> str:
    return (
        "CloudFormation names the model and endpoint config at deploy time; only those tagged "
        f"mlgate:product={manifest.product.name} and mlgate:environment={env} (on create: the "
        "request's tags)."
    )


def serving_update_access(
    manifest: Manifest, env: EnvName, key_arn: str
) -> tuple[list[iam.PolicyStatement], Findings]:
    """What CloudFormation needs, as the Serving stack's service role, to apply a parameter
    update of that stack, and to roll it back: the resources that read the parameters or the
    HasModel condition (mlgate/infra/stacks/serving.py): the SageMaker model, endpoint config and
    endpoint, the live-release SSM parameters, the variant's Application Auto Scaling target
    and policy. The actions are the handler permissions of those resource types' CloudFormation
    schemas (create, read, update, delete; the schemas cfn-lint ships,
    https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html),
    and Application Auto Scaling's own needs on the target service
    (https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html).

    CloudFormation names the model and endpoint config at deploy time (a release replaces
    both, so they cannot carry a name of ours), so those actions hold only for resources
    tagged with this product and environment: the stack's tags on create (aws:RequestTag),
    the resource's tags after (aws:ResourceTag)
    (https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html).
    The only role it may pass is the model role, to SageMaker."""
    target = manifest.environment(env)
    names = Names.of(manifest, env)
    region, account = target.region, target.account
    sagemaker = f"arn:aws:sagemaker:{region}:{account}"
    endpoint = f"{sagemaker}:endpoint/{names.endpoint()}"
    generated = [f"{sagemaker}:model/*", f"{sagemaker}:endpoint-config/*"]
    tagged = {"mlgate:product": manifest.product.name, "mlgate:environment": env}
    parameters = f"arn:aws:ssm:{region}:{account}:parameter{names.live_release_parameter('*')}"
    scaling_alarms = (
        f"arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-endpoint/{names.endpoint()}/*"
    )
    rollback_alarms = f"arn:aws:cloudwatch:{region}:{account}:alarm:{names.alarm('*', '*', '*')}"
    # An async endpoint scaled to zero is woken by an alarm of the Serving stack
    # (mlgate/infra/constructs/endpoint.py), which a release creates: the handler permissions
    # of AWS::CloudWatch::Alarm (its CloudFormation schema) on that one alarm.
    wake_alarm = (
        f"arn:aws:cloudwatch:{region}:{account}:alarm:"
        f"{names.alarm('system', WAKE_ALARM, 'scaling')}"
    )
    scaling_role = (
        f"arn:aws:iam::{account}:role/aws-service-role/{SCALING_SLR}/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
    statements = [
        iam.PolicyStatement(
            sid="CreateTaggedModelsAndConfigs",
            actions=[
                "sagemaker:CreateModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:AddTags",
            ],
            resources=generated,
            conditions={"StringEquals": {f"aws:RequestTag/{k}": v for k, v in tagged.items()}},
        ),
        iam.PolicyStatement(
            sid="ManageTaggedModelsAndConfigs",
            actions=[
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:ListTags",
                "sagemaker:DeleteTags",
            ],
            resources=generated,
            conditions={"StringEquals": {f"aws:ResourceTag/{k}": v for k, v in tagged.items()}},
        ),
        iam.PolicyStatement(
            sid="TheEndpoint",
            actions=[
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ],
            resources=[endpoint],
        ),
        iam.PolicyStatement(
            sid="PassTheModelRoleOnly",
            actions=["iam:PassRole"],
            resources=[role_arn(account, names.model_role())],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        # SageMaker encrypts the endpoint's volumes and captured data with the environment's
        # key under a grant it creates with the caller's permissions (CreateEndpointConfig's
        # KmsKeyId: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html).
        iam.PolicyStatement(
            sid="EnvironmentKeyForSageMaker",
            actions=["kms:CreateGrant"],
            resources=[key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        iam.PolicyStatement(
            sid="DescribeEnvironmentKey", actions=["kms:DescribeKey"], resources=[key_arn]
        ),
        iam.PolicyStatement(
            sid="LiveReleaseParameters",
            actions=[
                "ssm:PutParameter",
                "ssm:GetParameters",
                "ssm:DeleteParameter",
                "ssm:AddTagsToResource",
                "ssm:RemoveTagsFromResource",
                "ssm:ListTagsForResource",
            ],
            resources=[parameters],
        ),
        iam.PolicyStatement(
            sid="VariantScaling",
            actions=[
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:DescribeScheduledActions",
                # A staging schedule (serving.<env>.off_hours) sets the target's ScheduledActions.
                "application-autoscaling:PutScheduledAction",
                "application-autoscaling:DeleteScheduledAction",
                "application-autoscaling:TagResource",
                "application-autoscaling:UntagResource",
                "application-autoscaling:ListTagsForResource",
                "cloudwatch:GetMetricData",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="ScalingAlarmsOfThisEndpoint",
            actions=list(ALARM_ACTIONS),
            resources=[scaling_alarms],
        ),
        iam.PolicyStatement(
            sid="RollbackAlarmsOfThisEnvironment",
            actions=["cloudwatch:DescribeAlarms"],
            resources=[rollback_alarms],
        ),
        iam.PolicyStatement(
            sid="ScalingServiceLinkedRole",
            actions=["iam:CreateServiceLinkedRole"],
            resources=[scaling_role],
            conditions={"StringEquals": {"iam:AWSServiceName": SCALING_SLR}},
        ),
        # The scalable target names Application Auto Scaling's service-linked role, whose
        # permissions AWS fixes and which only that service can assume.
        iam.PolicyStatement(
            sid="PassTheScalingServiceLinkedRole",
            actions=["iam:PassRole"],
            resources=[scaling_role],
        ),
    ]
    if manifest.is_batch(env):
        # A batch environment's parameter update replaces its model and rewrites the live
        # parameters (mlgate/infra/constructs/batch.py): no endpoint, config or scaling.
        kept = {"CreateTaggedModelsAndConfigs", "ManageTaggedModelsAndConfigs",
                "PassTheModelRoleOnly", "LiveReleaseParameters"}  # fmt: skip
        models = f"{sagemaker}:model/*"
        batch = [
            iam.PolicyStatement(
                sid=st.sid,
                actions=[a for a in st.actions if "EndpointConfig" not in a],
                resources=[models] if st.sid.endswith("ModelsAndConfigs") else st.resources,
                conditions=st.conditions,
            )
            for st in statements
            if st.sid in kept
        ]
        return batch, {
            f"AwsSolutions-IAM5[Resource::{models}]": tags_only_of(manifest, env),
            f"AwsSolutions-IAM5[Resource::{parameters}]": f"The {env} live-release parameters "
            "of this product only.",
        }
    component = manifest.env_serving(env).inference_component
    if component is not None:
        # The model as an inference component (mlgate/infra/constructs/endpoint.py): the
        # handler permissions of AWS::SageMaker::InferenceComponent (its CloudFormation
        # schema) on this environment's one component, and the target-tracking alarms
        # Application Auto Scaling names after it.
        ic = f"{sagemaker}:inference-component/{component_name(names)}"
        statements.append(
            iam.PolicyStatement(
                sid="TheInferenceComponent",
                actions=[
                    "sagemaker:CreateInferenceComponent",
                    "sagemaker:DescribeInferenceComponent",
                    "sagemaker:UpdateInferenceComponent",
                    "sagemaker:UpdateInferenceComponentRuntimeConfig",
                    "sagemaker:DeleteInferenceComponent",
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:ListTags",
                ],
                resources=[ic],
            )
        )
        statements.append(
            iam.PolicyStatement(
                sid="ComponentScalingAlarms",
                actions=[*ALARM_ACTIONS, *(ALARM_TAG_ACTIONS if component.min_copies == 0 else ())],
                resources=[
                    f"arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-"
                    f"inference-component/{component_name(names)}-*",
                    *(
                        [
                            f"arn:aws:cloudwatch:{region}:{account}:alarm:"
                            f"{names.alarm('system', COMPONENT_WAKE, 'scaling')}"
                        ]
                        if component.min_copies == 0
                        else []
                    ),
                ],
            )
        )
    if manifest.env_serving(env).mode is ServingMode.ASYNC:
        statements.append(
            iam.PolicyStatement(
                sid="AsyncWakeAlarm",
                actions=[*ALARM_ACTIONS, *ALARM_TAG_ACTIONS],
                resources=[wake_alarm],
            )
        )
    tags_only = tags_only_of(manifest, env)
    why = {
        **dict.fromkeys(generated, tags_only),
        "*": "Application Auto Scaling's scalable target gets its ARN when registered and its "
        "Describe calls and cloudwatch:GetMetricData take no resource ARN; only the variant "
        "of this stack's endpoint is ever registered by this stack.",
        parameters: f"The {env} live-release parameters of this product only.",
        scaling_alarms: "The target-tracking alarms Application Auto Scaling names after this "
        "endpoint's variant.",
        rollback_alarms: f"The alarms of this product's {env} environment: the endpoint's "
        "blue/green update reads its rollback alarms.",
    }
    if component is not None:
        why[
            f"arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-inference-component/"
            f"{component_name(names)}-*"
        ] = (
            "The target-tracking alarms Application Auto Scaling names after this "
            "environment's inference component."
        )
    findings = {f"AwsSolutions-IAM5[Resource::{r}]": reason for r, reason in why.items()}
    return statements, findings


def async_request_access(
    manifest: Manifest, env: EnvName, endpoint_arn: str
) -> tuple[list[iam.PolicyStatement], Findings]:
    """Queue requests on the environment's asynchronous endpoint and read their results:
    InvokeEndpointAsync on the endpoint, PutObject under async/<env>/input/, GetObject under
    async/<env>/output/ and async/<env>/failures/ of the environment's artifact bucket
    (mlgate/infra/constructs/endpoint.py: async_prefix), and the bucket's key through S3 for
    those objects only. The key is the environment's, made by another stack: named by the
    encryption context S3 gives KMS (the bucket's ARN with an S3 Bucket Key, else the
    object's: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html) and S3
    as the caller (kms:ViaService). Nothing for an endpoint of another mode."""
    if manifest.env_serving(env).mode is not ServingMode.ASYNC:
        return [], {}
    target = manifest.environment(env)
    # The artifact bucket of the environment's site: home's, or the other account's own.
    site = Names.of(manifest, env if manifest.is_remote(env) else None)
    bucket = site.bucket("artifacts", target.account, target.region)
    inputs = f"arn:aws:s3:::{bucket}/async/{env}/input/*"
    results = [f"arn:aws:s3:::{bucket}/async/{env}/{what}/*" for what in ("output", "failures")]
    keys = f"arn:aws:kms:{target.region}:{target.account}:key/*"
    statements = [
        iam.PolicyStatement(actions=["sagemaker:InvokeEndpointAsync"], resources=[endpoint_arn]),
        iam.PolicyStatement(actions=["s3:PutObject"], resources=[inputs]),
        iam.PolicyStatement(actions=["s3:GetObject"], resources=results),
        iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[keys],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{target.region}.amazonaws.com"},
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": [
                        f"arn:aws:s3:::{bucket}",
                        *(r.removesuffix("*") + "*" for r in (inputs, *results)),
                    ]
                },
            },
        ),
    ]
    why = {
        inputs: f"The async requests the release path queues on the {env} endpoint; object "
        "names are per request (the job id).",
        **dict.fromkeys(results, f"The results and failures SageMaker writes for the {env} "
                        "endpoint's async requests; object names are SageMaker's."),
        keys: f"The {env} artifact bucket's key, made by another stack: only through S3 and "
        "only for this bucket's async objects (the encryption context).",
    }  # fmt: skip
    return statements, {f"AwsSolutions-IAM5[Resource::{r}]": w for r, w in why.items()}


def shadow_judge_access(
    manifest: Manifest, env: EnvName
) -> tuple[list[iam.PolicyStatement], Findings]:
    """Judge the environment's shadow test (mlgate/runtime/hooks/deploy_verifier/shadow.py):
    CloudWatch's statistics of the endpoint's variants, and the captured answers of both
    variants under the endpoint's own capture prefix, through the bucket's key (S3 only, the
    capture objects only). Nothing without a shadow test."""
    if manifest.env_serving(env).shadow is None:
        return [], {}
    target = manifest.environment(env)
    site = Names.of(manifest, env if manifest.is_remote(env) else None)
    bucket = site.bucket("artifacts", target.account, target.region)
    captured = f"{capture_prefix(env)}/{Names.of(manifest).endpoint(env)}/"
    objects = f"arn:aws:s3:::{bucket}/{captured}*"
    keys = f"arn:aws:kms:{target.region}:{target.account}:key/*"
    statements = [
        iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]),
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[f"arn:aws:s3:::{bucket}"],
            conditions={"StringLike": {"s3:prefix": [f"{captured}*"]}},
        ),
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]),
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[keys],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{target.region}.amazonaws.com"},
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": [f"arn:aws:s3:::{bucket}", objects]
                },
            },
        ),
    ]
    why = {
        "*": "cloudwatch:GetMetricData takes no resource ARN; the shadow judge reads the "
        f"{env} endpoint's variant statistics only.",
        objects: f"The {env} endpoint's captured traffic, both variants; object names are "
        "SageMaker's (hourly folders).",
        keys: f"The {env} artifact bucket's key, made by another stack: only through S3 and "
        "only for this bucket's objects (the encryption context).",
    }
    return statements, {f"AwsSolutions-IAM5[Resource::{r}]": w for r, w in why.items()}


def batch_access(
    manifest: Manifest, env: EnvName, *, invoke: bool
) -> tuple[list[iam.PolicyStatement], Findings]:
    """A batch environment's release checks (the deploy verifier, and the quality gate in
    staging): the verifier (`invoke`) reads its live model parameters and starts its sample run
    (lambda:Invoke of its batch_run hook, mlgate/infra/constructs/batch.py); both read the
    runs' records and outputs under batch/<env>/runs/ of its artifact bucket, with the bucket's
    key through S3 for those objects only (as `async_request_access`). The gate reads the run
    the verifier started, never a parameter. A batch environment lives in the home account and
    region (the manifest's rule). Nothing for an endpoint."""
    if not manifest.is_batch(env):
        return [], {}
    target = manifest.environment(env)
    names = Names.of(manifest, env)
    bucket = Names.of(manifest).bucket("artifacts", target.account, target.region)
    runs = f"arn:aws:s3:::{bucket}/batch/{env}/runs/*"
    keys = f"arn:aws:kms:{target.region}:{target.account}:key/*"
    parameters = [
        f"arn:aws:ssm:{target.region}:{target.account}:parameter"
        f"{names.live_release_parameter(what)}"
        for what in ("model-name", "model-package")
    ]
    statements = [
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[runs]),
        # Without ListBucket, S3 answers AccessDenied, not NoSuchKey, for a record not written
        # yet (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_RequestSyntax);
        # the gate also lists each side's outputs.
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[f"arn:aws:s3:::{bucket}"],
            conditions={"StringLike": {"s3:prefix": [f"batch/{env}/runs/*"]}},
        ),
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[keys],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{target.region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"arn:aws:s3:::{bucket}"]},
            },
        ),
    ]
    if invoke:
        function = (
            f"arn:aws:lambda:{target.region}:{target.account}:function:{batch_function_name(names)}"
        )
        statements += [
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=parameters),
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function]),
        ]
    why = {
        runs: f"The {env} batch runs' records and outputs the release checks read; object "
        "names carry the run id.",
        keys: f"The {env} artifact bucket's key, made by another stack: only through S3 and "
        "only for this bucket's objects (the encryption context).",
    }
    return statements, {f"AwsSolutions-IAM5[Resource::{r}]": w for r, w in why.items()}


def verify_access(manifest: Manifest, env: EnvName) -> tuple[list[iam.PolicyStatement], Findings]:
    """Describe the environment's endpoint down to its model, and invoke it once (an async
    endpoint: queue the sample and read its result, `async_request_access`); a batch
    environment's: `batch_access`."""
    if manifest.is_batch(env):
        return batch_access(manifest, env, invoke=True)
    target = manifest.environment(env)
    arn = f"arn:aws:sagemaker:{target.region}:{target.account}"
    configs = [f"{arn}:endpoint-config/*", f"{arn}:model/*"]
    endpoint = f"{arn}:endpoint/{Names.of(manifest).endpoint(env)}"
    queued, queue_findings = async_request_access(manifest, env, endpoint)
    hosted = component_access(manifest, env)
    statements = [
        *hosted,
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
            resources=[endpoint],
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
    if hosted:
        findings["AwsSolutions-IAM5[Resource::*]"] = (
            "ListInferenceComponents takes no resource ARN: the verifier lists the components "
            f"of the {env} endpoint only (EndpointNameEquals), then describes and invokes the "
            "one the Serving stack names."
        )
    judged, judge_findings = shadow_judge_access(manifest, env)
    for rule, why in judge_findings.items():
        findings[rule] = f"{findings[rule]} And: {why}" if rule in findings else why
    return [*statements, *queued, *judged], {**findings, **queue_findings}


def component_access(manifest: Manifest, env: EnvName) -> list[iam.PolicyStatement]:
    """Find the environment's inference component (ListInferenceComponents takes no resource),
    describe it and invoke the endpoint naming it; nothing without one."""
    if manifest.env_serving(env).inference_component is None:
        return []
    target = manifest.environment(env)
    arn = f"arn:aws:sagemaker:{target.region}:{target.account}"
    ic = f"{arn}:inference-component/{component_name(Names.of(manifest, env))}"
    return [
        iam.PolicyStatement(
            actions=["sagemaker:DescribeInferenceComponent", "sagemaker:InvokeEndpoint"],
            resources=[ic],
        ),
        iam.PolicyStatement(actions=["sagemaker:ListInferenceComponents"], resources=["*"]),
    ]


def staging_queue_access(manifest: Manifest) -> tuple[list[iam.PolicyStatement], Findings]:
    """The quality gate's smoke load beyond InvokeEndpoint on the staging endpoint (staging is
    always in the home account): on an asynchronous one, `async_request_access`; on one
    hosting an inference component, `component_access`; nothing otherwise."""
    if manifest.is_batch("staging"):
        # Its sample run's record and both outputs (the verifier started the run).
        return batch_access(manifest, "staging", invoke=False)
    target = manifest.environment("staging")
    endpoint = (
        f"arn:aws:sagemaker:{target.region}:{target.account}:endpoint/"
        f"{Names.of(manifest).endpoint('staging')}"
    )
    queued, findings = async_request_access(manifest, "staging", endpoint)
    # A staging endpoint of an inference component takes the smoke load naming it.
    hosted = component_access(manifest, "staging")
    if hosted:
        findings = {
            **findings,
            "AwsSolutions-IAM5[Resource::*]": "ListInferenceComponents takes no resource ARN: "
            "the quality gate lists the components of the staging endpoint only, then loads "
            "the one the Serving stack names.",
        }
    return [*queued, *hosted], findings
