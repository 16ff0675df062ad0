"""BatchScoring: a batch environment's model version scoring the curated data with SageMaker
Batch Transform, run by the batch_run hook (mlgate/runtime/hooks/batch_run), and its
predictions registered in the Glue catalog for Athena.

A run (a schedule's, or one after each successful ETL job run) is three steps, each started by
the hook when the previous one's state-change event arrives
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html):
a Processing job writes the curated rows as the model's payload (mlgate's preprocess.py in its
`--batch-input` mode, in the image that runs the product's preprocess), a Transform job scores
them with the live model (the id column kept out of the model's input and joined back to its
output: https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html),
and the hook writes the run's record, publishes its metrics and adds the run's partition to
the `predictions` table. Every job runs as the model role, the one role that reads released
versions and the data this environment scores; its output is encrypted with the environment's
key. The model is built from the released artifact, as an endpoint's is, and exists from the
first release (`has_model`); the live model's name is an SSM parameter the hook and the
deploy verifier read.

Alarms (the environment's factory): a failed run, a late run (still going after
max_run_minutes: the hook's watch rule looks every 15 minutes), an empty run (no prediction
written). A run that never starts shows as its rule's failed invocations (WatchedRule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import CfnCondition, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mlgate.infra import durations
from mlgate.infra.batch_settings import (
    BatchRun,
    batch_function_name,
    batch_rule,
    hook_environment,
    job_prefix,
)
from mlgate.infra.constructs.alarms import CRITICAL, AlarmFactory
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import FailureRouting, HookFunction, IdempotencyTable
from mlgate.infra.constructs.sagemaker_access import (
    ReleasedVersions,
    decrypt_released_versions,
    pull_images,
    released_model,
    write_job_logs,
)
from mlgate.infra.constructs.storage import grant_volume_keys
from mlgate.infra.naming import EnvName, Names

BATCH_METRICS_NAMESPACE = "mlgate/batch"
BATCH_RUN_COUNTS = ("BatchRunsSucceeded", "BatchRunsFailed", "BatchRunsEmpty", "BatchRunsLate")
"""The batch_run hook's count of runs by how they ended (late: still going)."""
WATCH_MINUTES = 15
"""How often the hook looks for late runs."""
NO_MODEL_NAME = "none"
"""The live model name parameter's value before the first release."""


def batch_metric(
    names: Names, name: str, statistic: str = "Sum", minutes: int = 5
) -> cloudwatch.Metric:
    """One of the batch_run hook's run metrics, by Product and Environment (BatchRunsSucceeded,
    BatchRunsFailed, BatchRunsEmpty, BatchRunsLate, BatchRowsScored, BatchRunMinutes)."""
    return cloudwatch.Metric(
        namespace=BATCH_METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"Product": names.product, "Environment": str(names.env)},
        statistic=statistic,
        period=durations.minutes(minutes),
    )


def batch_prefix(env: EnvName) -> str:
    """Everything a batch environment's runs write, in its artifact bucket (the layout of
    mlgate/runtime/hooks/shared/batch.py)."""
    return f"batch/{env}"


@dataclass(frozen=True)
class BatchProps:
    """What a batch environment runs: its `names` (the environment's), its runs (`run`,
    mlgate/infra/batch_settings.py), the serving container's `environment`, and where
    released versions are read from."""

    names: Names
    run: BatchRun
    environment: Mapping[str, str]
    released: ReleasedVersions


class BatchScoring(Construct):
    """The model, its role, the batch_run hook and its rules, the predictions table and the
    runs' alarms of one batch environment (keyword-only inputs)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: BatchProps,
        model_data: str,
        has_model: CfnCondition,
        key: kms.IKey,
        artifacts_bucket: str,
        home_artifacts_arn: str,
        image: str,
        prepare_code: assets.Asset,
        contract: assets.Asset,
        alarms: AlarmFactory,
        idempotency: IdempotencyTable,
    ) -> None:
        super().__init__(scope, id)
        names = props.names
        if names.env is None:
            raise ValueError("a batch environment's names are those of its environment")
        run = props.run
        if (run.schedule is None) == (run.etl_job is None):
            raise ValueError("a batch environment starts on a schedule or after its ETL job")
        if run.payload not in ("encoded", "raw"):
            raise ValueError(f"payload '{run.payload}' is neither encoded nor raw")
        self.props, self.names, self.key = props, names, key
        self.env: EnvName = names.env
        stack = Stack.of(self)
        self._region, self._account = stack.region, stack.account
        self.bucket = artifacts_bucket
        self.image = image
        self.prefix = batch_prefix(self.env)
        self.model_role = self._model_role(home_artifacts_arn, image, prepare_code, contract)
        self.model = released_model(
            self,
            "Model",
            role=self.model_role,
            image=image,
            model_data=model_data,
            environment=dict(props.environment),
            # Batch Transform stages the input and output itself: the container needs no
            # network (https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html).
            isolated=True,
        )
        self.model.cfn_options.condition = has_model
        self.model_parameter = ssm.StringParameter(
            self,
            "LiveModelName",
            parameter_name=names.live_release_parameter("model-name"),
            string_value=Fn.condition_if(
                has_model.logical_id, self.model.attr_model_name, NO_MODEL_NAME
            ).to_string(),
            description=f"The model {names.env}'s batch runs score with; none before a release",
        )
        self.table_name = f"predictions_{self.env}"
        self.table = self._table(props)
        self.hook = self._hook(props, idempotency, prepare_code, contract, alarms)
        self.rules = self._rules(props.run)
        self.alarm_names = self._alarms(alarms)

    # --- the model role ----------------------------------------------------------------

    def _model_role(
        self,
        home_artifacts: str,
        image: str,
        prepare_code: assets.Asset,
        contract: assets.Asset,
    ) -> iam.Role:
        """Hosts the model in each transform job and runs each prepare job: reads released
        versions, the scored data and the prepare script; writes only under the
        environment's batch prefix."""
        names, props = self.names, self.props
        released = f"{home_artifacts}/{names.released_prefix()}/*"
        runs = f"arn:aws:s3:::{self.bucket}/{self.prefix}/*"
        bucket_arn = f"arn:aws:s3:::{props.run.input_bucket}"
        data = f"{bucket_arn}/{props.run.input_uri.split('/', 3)[3]}*"
        role = iam.Role(
            self,
            "ModelRole",
            role_name=names.model_role(),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Scores the approved model in batch: reads released versions, the data "
            "it scores and its scripts; writes its runs only",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[released]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[runs],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:aws:s3:::{self.bucket}"],
                conditions={"StringLike": {"s3:prefix": [f"{self.prefix}/*"]}},
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[data]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn]))
        findings: dict[str, str] = {}
        if props.run.reference_for is not None:
            # Staging's sample runs score their rows with prod's model too (the reference
            # job): its transform runs as this role, reading staging's prepared input and
            # writing beside it.
            other = f"arn:aws:s3:::{self.bucket}/batch/{props.run.reference_for}/runs/*"
            role.add_to_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{other}/input/*"])
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[f"{other}/reference/*"],
                )
            )
            for what in ("input", "reference"):
                findings[f"AwsSolutions-IAM5[Resource::{other}/{what}/*]"] = (
                    f"{props.run.reference_for}'s release sample runs score their rows with this "
                    f"environment's model as the reference: it reads their {what} only"
                    if what == "input"
                    else f"{props.run.reference_for}'s release sample runs' reference outputs, "
                    "written by this environment's model; object names carry the run id."
                )
        # The prepare job's two inputs from CDK's asset bucket, these objects only (CDK's
        # grant_read would read every asset of the account); an S3Prefix input is listed
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createprocessingjob-perms).
        scripts = (prepare_code, contract)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:aws:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in scripts],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:aws:s3:::{prepare_code.s3_bucket_name}"],
                conditions={"StringLike": {"s3:prefix": [a.s3_object_key for a in scripts]}},
            )
        )
        pull_images(role, [image])
        decrypt_released_versions(role, released=props.released, key=self.key)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            )
        )
        grant_volume_keys(role, self.key)
        logs = [write_job_logs(role, groups) for groups in ("ProcessingJobs:*", "TransformJobs:*")]
        policy = role.node.find_child("DefaultPolicy")
        acknowledge_each(
            policy,
            {
                **findings,
                f"AwsSolutions-IAM5[Resource::{released}]": (
                    "The batch model role reads the released copies of approved versions of "
                    "this product only (released/<product>/<version>/); never a training run."
                ),
                f"AwsSolutions-IAM5[Resource::{runs}]": (
                    "Prepare and transform jobs write each run's input, predictions and record "
                    "under this environment's batch prefix only; object names carry the run id."
                ),
                f"AwsSolutions-IAM5[Resource::{data}]": (
                    "Prepare jobs read the data this environment scores, under its prefix only; "
                    "object names are the ETL's partitions."
                ),
                "AwsSolutions-IAM5[Resource::*]": (
                    "The model role pulls its container image; ecr:GetAuthorizationToken supports "
                    "no resource-level permission (the image repository itself is named)."
                ),
                **{
                    f"AwsSolutions-IAM5[Resource::{arn}]": (
                        "SageMaker jobs write their logs into log groups SageMaker names per job "
                        "kind under /aws/sagemaker/."
                    )
                    for arn in logs
                },
            },
        )
        return role

    # --- the predictions table ----------------------------------------------------------

    def _table(self, props: BatchProps) -> glue.CfnTable:
        """Scheduled runs' predictions as CSV, one partition per successful run (the hook adds
        it: a run that failed or wrote nothing never shows in Athena). Encrypted objects are
        read with the reader's access to the key
        (https://docs.aws.amazon.com/athena/latest/ug/encryption.html)."""
        location = f"s3://{self.bucket}/{self.prefix}/predictions/"
        return glue.CfnTable(
            self,
            "Predictions",
            catalog_id=self._account,
            database_name=props.run.database,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description=f"Batch predictions of {self.env}: the scored row (id first) and "
                "its prediction, one partition per run",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "csv", "has_encrypted_data": "true"},
                partition_keys=[
                    glue.CfnTable.ColumnProperty(
                        name="run", type="string", comment="The run id (shared/batch.py)"
                    )
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                        parameters={"field.delim": ","},
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=kind)
                        for name, kind in props.run.table_columns
                    ],
                ),
            ),
        )

    # --- the hook and its rules -------------------------------------------------------

    def _hook(
        self,
        props: BatchProps,
        idempotency: IdempotencyTable,
        prepare_code: assets.Asset,
        contract: assets.Asset,
        alarms: AlarmFactory,
    ) -> HookFunction:
        names, env = self.names, self.env
        environment = hook_environment(
            props.run,
            names,
            bucket=self.bucket,
            key_arn=self.key.key_arn,
            image=self.image,
            prepare_code_uri=prepare_code.s3_object_url,
            contract_uri=contract.s3_object_url,
            role_arn=self.model_role.role_arn,
            table=self.table_name,
        )
        hook = HookFunction(
            self,
            "BatchRun",
            hook="batch_run",
            description=f"Runs {env}'s batch scoring: prepare, transform, record",
            timeout=durations.minutes(5),
            memory_size=512,
            metrics_namespace=BATCH_METRICS_NAMESPACE,
            failures=FailureRouting(key=self.key, alarms=alarms),
            environment=dict(environment),
        )
        function = hook.function.node.default_child
        function.add_property_override("FunctionName", batch_function_name(names))  # type: ignore[union-attr]
        hook.make_idempotent(idempotency)
        self._grant(hook, props.run, environment)
        return hook

    def rule_name(self, what: str) -> str:
        return batch_rule(self.names, what)

    def _grant(self, hook: HookFunction, run: BatchRun, environment: Mapping[str, str]) -> None:
        """What the hook calls (its module docstring's list): this environment's jobs by name,
        passing the model role to SageMaker only, its parameters, its runs' objects, the
        predictions table's partitions."""
        role, names = hook.role, self.names
        sagemaker_arn = f"arn:aws:sagemaker:{self._region}:{self._account}"
        prefix = job_prefix(names)
        jobs = [
            f"{sagemaker_arn}:processing-job/{prefix}*",
            f"{sagemaker_arn}:transform-job/{prefix}*",
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=jobs,
            )
        )
        # CreateTransformJob is authorized on the transform job (its model is not a resource of
        # the action); the List calls take no resource
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListProcessingJobs", "sagemaker:ListTransformJobs"],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.model_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        parameters = [
            environment[name]
            for name in ("MODEL_PARAMETER", "MODEL_PACKAGE_PARAMETER", "REFERENCE_MODEL_PARAMETER")
            if name in environment
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    f"arn:aws:ssm:{self._region}:{self._account}:parameter{name}"
                    for name in parameters
                ],
            )
        )
        runs = f"arn:aws:s3:::{self.bucket}/{self.prefix}/*"
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[runs])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:aws:s3:::{self.bucket}"],
                conditions={"StringLike": {"s3:prefix": [f"{self.prefix}/*"]}},
            )
        )
        hook.use_key(self.key, "kms:Decrypt", "kms:GenerateDataKey", via=("s3",))
        glue_arn = f"arn:aws:glue:{self._region}:{self._account}"
        # GetTable for the storage descriptor a partition copies; an existing partition is
        # CreatePartition's AlreadyExistsException, never read (GetPartition).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:CreatePartition"],
                resources=[
                    f"{glue_arn}:catalog",
                    f"{glue_arn}:database/{run.database}",
                    f"{glue_arn}:table/{run.database}/{self.table_name}",
                ],
            )
        )
        acknowledge_each(
            hook.policy,
            {
                **{
                    f"AwsSolutions-IAM5[Resource::{job}]": (
                        "The batch hook starts and reads this environment's batch jobs only: "
                        "their names start with <product>-<env>-b- and end in the run id."
                    )
                    for job in jobs
                },
                "AwsSolutions-IAM5[Resource::*]": (
                    "ListProcessingJobs and ListTransformJobs take no resource; the hook lists "
                    "this environment's jobs by name prefix to find late runs."
                ),
                f"AwsSolutions-IAM5[Resource::{runs}]": (
                    "The batch hook reads and writes each run's rows count and record under "
                    "this environment's batch prefix only."
                ),
            },
        )

    def _rules(self, run: BatchRun) -> list[WatchedRule]:
        """What calls the hook: the start (schedule or the ETL job's success), its jobs' state
        changes, and the watch for late runs. Each target retries twice, then the hook's
        dead-letter queue keeps the event."""
        target = targets.LambdaFunction(self.hook.function, retry_attempts=2)
        env, prefix = self.env, job_prefix(self.names)
        rules: list[WatchedRule] = []
        if run.schedule is not None:
            rules.append(
                WatchedRule(
                    self,
                    "Schedule",
                    rule_name=self.rule_name("schedule"),
                    description=f"Starts {env}'s batch run: {run.schedule} (UTC)",
                    schedule=events.Schedule.expression(run.schedule),
                    targets=[target],
                )
            )
        else:
            # https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html
            rules.append(
                WatchedRule(
                    self,
                    "AfterEtl",
                    rule_name=self.rule_name("after-etl"),
                    description=f"Starts {env}'s batch run after each successful ETL run",
                    event_pattern=events.EventPattern(
                        source=["aws.glue"],
                        detail_type=["Glue Job State Change"],
                        detail={"jobName": [run.etl_job], "state": ["SUCCEEDED"]},
                    ),
                    targets=[target],
                )
            )
        for what, kind, field, status in (
            (
                "processing",
                "SageMaker Processing Job State Change",
                "ProcessingJobName",
                "ProcessingJobStatus",
            ),
            (
                "transform",
                "SageMaker Transform Job State Change",
                "TransformJobName",
                "TransformJobStatus",
            ),
        ):
            rules.append(
                WatchedRule(
                    self,
                    f"{what.title()}Jobs",
                    rule_name=self.rule_name(f"{what}-jobs"),
                    description=f"{env}'s batch {what} jobs changing state: the next step",
                    event_pattern=events.EventPattern(
                        source=["aws.sagemaker"],
                        detail_type=[kind],
                        # The hook acts on a job's end only.
                        detail={
                            field: [{"prefix": prefix}],
                            status: ["Completed", "Failed", "Stopped"],
                        },
                    ),
                    targets=[target],
                )
            )
        rules.append(
            WatchedRule(
                self,
                "Watch",
                rule_name=self.rule_name("watch"),
                description=f"Looks for {env}'s late batch runs every {WATCH_MINUTES} minutes",
                schedule=events.Schedule.rate(durations.minutes(WATCH_MINUTES)),
                targets=[target],
            )
        )
        return rules

    def metric(self, name: str) -> cloudwatch.Metric:
        return batch_metric(self.names, name)

    def _alarms(self, factory: AlarmFactory) -> list[str]:
        """A failed, late or empty run pages on-call."""
        found: list[str] = []
        for what, metric, meaning, checks in (
            (
                "batch-run-failed",
                "BatchRunsFailed",
                "A batch run failed: a prepare or transform job ended Failed or Stopped.",
                (
                    "the run's record.json under batch/<env>/runs/ (its reason)",
                    "the job's CloudWatch log under /aws/sagemaker/",
                    "the live model parameter and the input the run read",
                ),
            ),
            (
                "batch-run-late",
                "BatchRunsLate",
                f"A batch run has gone longer than {self.props.run.max_run_minutes} min.",
                (
                    "the run's jobs in the SageMaker console (still in progress?)",
                    "the input's size against the last runs' rows scored",
                    "the transform's instance type and count",
                ),
            ),
            (
                "batch-run-empty",
                "BatchRunsEmpty",
                "A batch run wrote no prediction: nothing reached the model.",
                (
                    "the run's meta/rows.json (rows prepared)",
                    "the ETL's last run and the curated table",
                    "the batch input prefix in the manifest",
                ),
            ),
        ):
            factory.alarm(
                self,
                what.title().replace("-", ""),
                tier="system",
                what=what,
                severity=CRITICAL,
                meaning=meaning,
                checks=checks,
                metric=self.metric(metric),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            found.append(factory.name("system", what, CRITICAL))
        return found
