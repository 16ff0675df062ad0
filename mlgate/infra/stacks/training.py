"""Training: the model package group and the SageMaker Pipeline (authored with the sagemaker SDK
in mlgate/infra/ml/pipeline.py), started after each successful ETL run, on the manifest's schedule
and by drift, never twice at once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlgate.infra import accounts, durations, naming
from mlgate.infra import events as mlgate_events
from mlgate.infra.constructs.compliance import acknowledge_each
from mlgate.infra.constructs.event_rules import WatchedRule
from mlgate.infra.constructs.hooks import FailureRouting, HookFunction
from mlgate.infra.constructs.sagemaker_access import start_training
from mlgate.infra.constructs.storage import grant_volume_keys
from mlgate.infra.ml import pipeline as authored
from mlgate.infra.ml import tracking
from mlgate.infra.naming import CURATED_PREFIX, Names
from mlgate.infra.packaging import build_tar_gz
from mlgate.infra.product_code import training_contract
from mlgate.infra.stacks.base import ProductStack, training_pipeline_arn
from mlgate.infra.stacks.data import DataStack
from mlgate.infra.stacks.foundation import FoundationStack
from mlgate.manifest import EnvName, Manifest, MonitoringEngine

SCRIPTS = Path(__file__).resolve().parents[2] / "runtime" / "ml" / "scripts"
ENTRY = SCRIPTS.parent / "script_mode_entry.py"
TRACKING = SCRIPTS.parent / "tracking.py"


def product_code(manifest: Manifest, build_dir: Path) -> dict[str, Path]:
    """The files the pipeline's jobs run, by role: the product's scripts or mlgate's defaults,
    the training contract, (script mode) the sourcedir.tar.gz of train.py and its
    dependencies, and with tracking, mlgate's tracking entry point (also in the tar.gz)."""
    own = manifest.model.code
    files = {
        "preprocess": manifest.path(own.preprocess)
        if own.preprocess
        else SCRIPTS / "preprocess.py",
        "evaluate": manifest.path(own.evaluate) if own.evaluate else SCRIPTS / "evaluate.py",
    }
    files["contract"] = contract_file(manifest, build_dir)
    if authored.script_mode(manifest) and own.train:
        sources = {Path(own.train).name: manifest.path(own.train)}
        sources |= {Path(d).name: manifest.path(d) for d in own.dependencies}
        sources[authored.ENTRY_SCRIPT] = ENTRY
        if authored.tracked(manifest):
            sources[authored.TRACKING_MODULE] = TRACKING
        files["train"] = build_tar_gz(sources, build_dir / "sourcedir.tar.gz")
    if authored.tracked(manifest):
        files["tracking"] = TRACKING
    return files


def contract_file(manifest: Manifest, build_dir: Path) -> Path:
    """The training contract (what the scripts know of the product) as the file its jobs read,
    written into `build_dir`."""
    contract = build_dir / "contract.json"
    contract.parent.mkdir(parents=True, exist_ok=True)
    contract.write_text(json.dumps(training_contract(manifest), indent=2, sort_keys=True))
    return contract


def _extension(path: Path) -> str:
    """The extension CDK's default synthesizer keeps on an uploaded file asset's object name."""
    return path.suffix


def registry_readers(manifest: Manifest, env: EnvName) -> list[str]:
    """Roles of an environment in another account that call the registry: the Evidently
    monitor role describes the live version (its baseline dataset's location)."""
    if manifest.monitored(env) and manifest.monitoring.engine is MonitoringEngine.EVIDENTLY:
        return [Names.of(manifest, env).monitor_role()]
    return []


def digest(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()


class TrainingStack(ProductStack):
    component = "training"

    def __init__(
        self,
        scope: Construct,
        *,
        manifest: Manifest,
        foundation: FoundationStack,
        data: DataStack,
    ) -> None:
        super().__init__(
            scope,
            manifest=manifest,
            description="SageMaker training pipeline and model registry",
        )
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelRegistry",
            model_package_group_name=self.names.model_package_group(),
            model_package_group_description=(
                f"Versions of the {manifest.product.display_name} model; the ML lead approves "
                "each one before it is released"
            ),
        )
        build_dir = Path(cdk.App.of(self).outdir) / "mlgate-build" / self.product  # type: ignore[union-attr]
        code = product_code(manifest, build_dir)
        scripts = {
            name: assets.Asset(self, f"{naming.pascal(name)}Code", path=str(path))
            for name, path in code.items()
        }
        prefix = f"training/{self.product}"
        role_name = self.name("training", max_length=64)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs this product's training pipeline and its jobs, nothing else",
        )
        images = authored.image_uris(manifest, self.target.region)
        # The SDK parses S3 URIs and ARNs, so it is given stand-ins for CloudFormation values
        # (the key ARN, asset URLs) that are swapped back into the JSON after. A stand-in URL
        # ends in the asset's real object name (its hash and extension, as CDK's default
        # synthesizer uploads it): Processing downloads the script under that name, and the
        # SDK builds the job's entry point from the URL's last part.
        key_stand_in = (
            f"arn:aws:kms:{self.target.region}:{self.target.account}:key/mlgate-placeholder"
        )
        deploy_time = {key_stand_in: foundation.key.key_arn}
        stand_in: dict[str, str] = {}
        for name, asset in scripts.items():
            url = f"s3://mlgate-placeholder-code/{asset.asset_hash}{_extension(code[name])}"
            stand_in[name] = url
            deploy_time[url] = asset.s3_object_url
        uri = tracking.tracking_uri(manifest, self.target.region, self.target.account)
        settings = authored.PipelineSettings(
            region=self.target.region,
            # A literal ARN: the SDK resolves anything else through IAM, over the network.
            role_arn=f"arn:aws:iam::{self.target.account}:role/{role_name}",
            bucket=foundation.bucket_name("artifacts"),
            prefix=prefix,
            kms_key_arn=key_stand_in,
            curated_s3_uri=f"s3://{data.bucket_name('curated')}/{CURATED_PREFIX}",
            preprocess_code_uri=stand_in["preprocess"],
            evaluate_code_uri=stand_in["evaluate"],
            contract_uri=stand_in["contract"],
            train_source_uri=stand_in.get("train"),
            model_package_group=self.names.model_package_group(),
            manifest_sha256=hashlib.sha256(manifest.model_dump_json().encode()).hexdigest(),
            code_sha256=digest(*code.values()),
            tracking_uri=uri,
            tracking_code_uri=stand_in.get("tracking"),
        )
        body = json.dumps(authored.cached_definition(manifest, settings), sort_keys=True)
        for placeholder, value in deploy_time.items():
            body = body.replace(placeholder, value)
        self.definition_body = body
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=self.names.training_pipeline(),
            pipeline_display_name=f"{naming.pascal(self.product)}Training",
            pipeline_description=(
                "preprocess -> train -> evaluate -> baseline -> thresholds -> register"
            ),
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": body},
            # A plain mapping: the L1 property is untyped JSON, and a struct would be emitted in
            # camelCase, which CloudFormation rejects.
            parallelism_configuration={"MaxParallelExecutionSteps": 4},
        )
        self.pipeline.node.add_dependency(self.group)
        self._grant(foundation, data, scripts, prefix, images)
        self.tracking_server = self._track(foundation, prefix)

        schedule_rule = self.name("train-on-schedule")
        self.starter = HookFunction(
            self,
            "PipelineStarter",
            hook="pipeline_starter",
            description="Starts the training pipeline unless an execution is running",
            # What the starter checks its events against: the quality job whose success
            # starts training, and the schedule rule (by name: its ARN would make the function
            # depend on the rule that targets it).
            environment={
                "PIPELINE_NAME": self.names.training_pipeline(),
                "QUALITY_JOB": self.names.quality_job(),
                "SCHEDULE_RULE": schedule_rule,
            },
            # Product-wide: its alarm belongs to the home environment (naming.home_env).
            failures=FailureRouting(
                key=foundation.key, alarms=self.alarm_factory(foundation.on_call_topic)
            ),
        )
        self.starter.role.add_to_policy(start_training(training_pipeline_arn(manifest)))
        target = targets.LambdaFunction(self.starter.function, retry_attempts=2)
        WatchedRule(
            self,
            "AfterEtl",
            rule_name=self.name("train-after-etl"),
            description="New curated data passed its quality check: retrain",
            event_pattern=mlgate_events.etl_succeeded(self.product),
            targets=[target],
        )
        WatchedRule(
            self,
            "OnSchedule",
            rule_name=schedule_rule,
            description="Scheduled retraining from the manifest",
            schedule=events.Schedule.expression(manifest.model.retrain_schedule),
            targets=[target],
        )
        self.retrain_roles = {env: self._share_with(env) for env in accounts.remote_envs(manifest)}

    def _track(
        self, foundation: FoundationStack, prefix: str
    ) -> sagemaker.CfnMlflowTrackingServer | None:
        """The pipeline's role logs to the manifest's tracking server; a server mlgate creates
        keeps its artifacts under the training prefix, through a role of its own."""
        manifest = self.manifest
        if manifest.tracking is None:
            return None
        home = self.target
        for statement in tracking.pipeline_statements(manifest, home.region, home.account):
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(statement.actions), resources=list(statement.resources)
                )
            )
        for statement in tracking.pipeline_statements(manifest, home.region, home.account):
            wildcards = [r for r in statement.resources if r.endswith("*")]
            if wildcards:
                acknowledge_each(
                    self.role.node.find_child("DefaultPolicy"),
                    {
                        f"AwsSolutions-IAM5[Resource::{r}]": "SageMaker execution role of "
                        f"{self.product}: uploads MLflow artifacts under the tracking server's "
                        "artifact store only."
                        for r in wildcards
                    },
                )
        if not manifest.tracking.create:
            return None
        role = iam.Role(
            self,
            "TrackingServerRole",
            role_name=self.name("mlflow", max_length=64),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="The MLflow tracking server's access to its artifact store",
        )
        artifacts = foundation.bucket_arn("artifacts")
        for statement in tracking.server_statements(artifacts, prefix):
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(statement.actions), resources=list(statement.resources)
                )
            )
        foundation.key.grant_encrypt_decrypt(role)
        server = sagemaker.CfnMlflowTrackingServer(
            self,
            "TrackingServer",
            tracking_server_name=tracking.server_name(manifest),
            artifact_store_uri=tracking.artifact_store(
                manifest, foundation.bucket_name("artifacts"), prefix
            )
            or "",
            role_arn=role.role_arn,
            tracking_server_size=manifest.tracking.size.value,
            # The pipeline registers versions itself, with their evidence and approval gate.
            automatic_model_registration=False,
        )
        # The server reaches its store from the start: its role's policy comes first.
        server.node.add_dependency(role.node.find_child("DefaultPolicy"))
        self.pipeline.node.add_dependency(server)
        store = f"{artifacts}/{prefix}/{tracking.ARTIFACT_FOLDER}/*"
        acknowledge_each(
            role.node.find_child("DefaultPolicy"),
            {
                f"AwsSolutions-IAM5[Resource::{store}]": "MLflow tracking server of "
                f"{self.product}: reads and writes run artifacts under its store only.",
                "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": "MLflow tracking server of "
                f"{self.product}: encrypts its artifacts with the product key.",
                "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": "MLflow tracking server of "
                f"{self.product}: re-encrypts its artifacts under the product key.",
            },
        )
        return server

    def _share_with(self, env: EnvName) -> iam.Role:
        """An environment in another account starts retraining when its endpoint drifts: a
        retrain role lets its drift responder, and only it, start the pipeline.

        The registry's resource policy lets that environment's roles do only what they call:
        its endpoint serves the released copy of a version's artifact (ServingStack's
        ModelDataUrl), so no role there creates a model from the registry (no CreateModel, no
        List); the Evidently monitor role describes the live version to find its baseline
        dataset (mlgate/runtime/monitoring_job/sources.py), named by aws:PrincipalArn as
        accounts.trusted_roles does, never the whole account. Model Monitor's roles read
        the baseline from the stack's parameters and need no statement at all."""
        account = self.manifest.environment(env).account
        group = self.names.model_package_group()
        arn = f"arn:aws:sagemaker:{self.target.region}:{self.target.account}"
        readers = registry_readers(self.manifest, env)
        if readers:
            policy = self.group.model_package_group_policy or {"Version": "2012-10-17",
                                                               "Statement": []}  # fmt: skip
            arns = [naming.role_arn(account, name) for name in readers]
            policy["Statement"].append(
                {
                    "Sid": f"{env.capitalize()}MonitorDescribesVersions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["sagemaker:DescribeModelPackage"],
                    # A version's ARN carries its group's name in lower case.
                    "Resource": f"{arn}:model-package/{group.lower()}/*",
                    "Condition": {
                        "ArnEquals": {"aws:PrincipalArn": arns if len(arns) > 1 else arns[0]}
                    },
                }
            )
            self.group.model_package_group_policy = policy
        role = iam.Role(
            self,
            f"Retrain{env.capitalize()}",
            role_name=self.names.retrain_role(env),
            assumed_by=accounts.trusted_roles(account, self.names.drift_role(env)),
            description=f"Assumed by the {env} drift responder ({account}) to start retraining",
            max_session_duration=durations.hours(1),
        )
        role.add_to_policy(start_training(training_pipeline_arn(self.manifest)))
        return role

    def _grant(
        self,
        foundation: FoundationStack,
        data: DataStack,
        scripts: dict[str, assets.Asset],
        prefix: str,
        images: dict[str, str],
    ) -> None:
        """The execution role reaches the product's buckets under their prefixes, its key, the
        two images it runs, and SageMaker resources named after the product."""
        role = self.role
        foundation.key.grant_encrypt_decrypt(role)
        grant_volume_keys(role, foundation.key)
        curated, artifacts = data.bucket_arn("curated"), foundation.bucket_arn("artifacts")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[curated, f"{curated}/curated/*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket",
                         "s3:AbortMultipartUpload"],
                resources=[artifacts, f"{artifacts}/{prefix}/*"],
            )
        )  # fmt: skip
        for script in scripts.values():
            script.grant_read(role)
        home = self.target
        arn = f"arn:aws:sagemaker:{home.region}:{home.account}"
        product = self.product
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[
                    f"{arn}:processing-job/{product}-*",
                    f"{arn}:training-job/{product}-*",
                    f"{arn}:processing-job/pipelines-*",
                    f"{arn}:training-job/pipelines-*",
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                    "sagemaker:AddTags",
                ],
                resources=[
                    f"{arn}:model-package-group/{Names(product).model_package_group()}",
                    f"{arn}:model-package/{Names(product).model_package_group()}/*",
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        repositories = sorted(
            {
                f"arn:aws:ecr:{self.target.region}:{uri.split('.')[0]}:repository/"
                f"{uri.split('/', 1)[1].split(':')[0]}"
                for uri in images.values()
            }
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=repositories,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        logs = f"arn:aws:logs:{home.region}:{home.account}:log-group:/aws/sagemaker/*"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[logs],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        reasons = {
            "Action::s3:GetBucket*": "read the bootstrap asset bucket holding its scripts",
            "Action::s3:GetObject*": "read its scripts from the bootstrap asset bucket",
            "Action::s3:List*": "list the bootstrap asset bucket holding its scripts",
            "Action::kms:GenerateDataKey*": "encrypt job volumes and outputs with the product key",
            "Action::kms:ReEncrypt*": "re-encrypt artifacts under the product key",
            "Resource::*": "ecr:GetAuthorizationToken and namespace-conditioned PutMetricData "
            "support no resource ARN",
            f"Resource::{logs}": "SageMaker jobs write to log groups the service names",
            f"Resource::{arn}:processing-job/{product}-*": "processing jobs of this product",
            f"Resource::{arn}:training-job/{product}-*": "training jobs of this product",
            f"Resource::{arn}:processing-job/pipelines-*": "jobs the pipeline names itself",
            f"Resource::{arn}:training-job/pipelines-*": "jobs the pipeline names itself",
            f"Resource::{arn}:model-package/{Names(product).model_package_group()}/*": (
                "versions in this product's model package group"
            ),
            f"Resource::arn:aws:s3:::cdk-hnb659fds-assets-{home.account}-{home.region}/*": (
                "read the pipeline's scripts and contract CDK uploaded"
            ),
        }
        reasons[f"Resource::{curated}/curated/*"] = "read the curated data only"
        reasons[f"Resource::{artifacts}/{prefix}/*"] = "write under the training prefix"
        acknowledge_each(
            policy,
            {
                f"AwsSolutions-IAM5[{finding}]": f"SageMaker execution role of {product}: {reason}."
                for finding, reason in reasons.items()
            },
        )
