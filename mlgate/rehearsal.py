"""`make rehearse`: the whole release flow, offline, with the real hooks, as a timeline.

Runs under moto (no AWS account): the ETL transform on local Spark, the pipeline's preprocess
and evaluate scripts with a locally trained XGBoost model, the model registry, the release,
deployer, verifier, quality-gate, notifier and callback hooks, and the audit trail. What cannot
run offline (a SageMaker endpoint, CloudWatch percentiles, CodePipeline's own state machine)
is simulated and the timeline says so. Then four faults, each ending safely.

A development tool: it needs the test dependencies (moto, pyspark, xgboost).
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "mlgate" / "lambdas"
REGION, ACCOUNT = "eu-west-1", "123456789012"
SIGNING_SECRET = "rehearsal-signing-secret"
TEAM_ID, APP_ID = "T0REHEARSE", "A0REHEARSE"
SIMULATED = "[simulated offline]"


def say(step: str, text: str) -> None:
    wrapped = textwrap.fill(
        text, width=100, subsequent_indent=" " * 24, break_on_hyphens=False, break_long_words=False
    )
    print(f"{time.strftime('%H:%M:%S')}  {step:<12}  {wrapped}")


class Pipeline:
    """CodePipeline's API as the hooks use it (moto lacks these calls); records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            if name == "start_pipeline_execution":
                return {"pipelineExecutionId": "rehearsal-execution-1"}
            if name == "get_pipeline_state":
                return {
                    "stageStates": [
                        {
                            "stageName": s,
                            "latestExecution": {"pipelineExecutionId": "rehearsal-execution-1"},
                        }
                        for s in STAGES
                    ]
                }
            return {}

        return call


class Endpoint:
    """A SageMaker endpoint's describe and invoke answers (endpoints cannot run offline)."""

    def __init__(self) -> None:
        self.serving: dict[str, str] = {}

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointStatus": "InService", "EndpointConfigName": f"{EndpointName}-config"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {"ProductionVariants": [{"ModelName": EndpointConfigName.removesuffix("-config")}]}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        return {"Containers": [{"ModelPackageName": self.serving.get(ModelName, "none")}]}

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(b"0.0213")}


class Metrics:
    """CloudWatch GetMetricData for staging (moto computes no percentiles); metrics the hooks
    publish are kept in `published`."""

    def __init__(self, latency_ms: float, invocations: int, errors: int) -> None:
        self.published: list[dict[str, Any]] = []
        self.values = {
            "latency": [latency_ms * 1000],
            "invocations": [invocations],
            "errors5xx": [errors],
            "modelerrors": [0],
        }

    def get_metric_data(self, **query: Any) -> dict[str, Any]:
        return {
            "MetricDataResults": [
                {"Id": q["Id"], "Values": self.values[q["Id"]]} for q in query["MetricDataQueries"]
            ]
        }

    def put_metric_data(self, **data: Any) -> dict[str, Any]:
        self.published.append(data)
        return {}


class Quality:
    """Glue Data Quality results (moto has no Data Quality API): the ETL run's outcome."""

    def list_data_quality_results(self, **kwargs: Any) -> dict[str, Any]:
        return {"Results": [{"ResultId": "dqresult-rehearsal"}]}

    def get_data_quality_result(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "Score": 1.0,
            "RuleResults": [{"Name": f"Rule_{i}", "Result": "PASS"} for i in range(7)],
        }


STAGES = ["BusinessSignoff", "ComplianceReview", "GoLive"]


def offline() -> None:
    """Hooks import as in Lambda, with fake credentials and quiet logs (also for bench/)."""
    if str(LAMBDAS) not in sys.path:
        sys.path.insert(0, str(LAMBDAS))
    for key, value in {
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        # The hooks build their idempotency stores at import (setup() creates the table).
        "IDEMPOTENCY_TABLE": "idempotency",
    }.items():
        os.environ[key] = value


def main() -> int:
    offline()
    import warnings

    warnings.filterwarnings("ignore")
    from moto import mock_aws

    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        return Rehearsal(Path(tmp)).run()


class Rehearsal:
    def __init__(self, work: Path) -> None:
        import boto3

        from mlgate.manifest import load_manifest

        self.work = work
        self.manifest = load_manifest(ROOT / "manifests" / "fraud-detection.yaml")
        self.boto3 = boto3
        self.pipeline = Pipeline()
        self.endpoint = Endpoint()
        self.metrics = Metrics(latency_ms=92, invocations=4800, errors=1)
        real = boto3.client

        def client(name: str, *args: Any, **kwargs: Any) -> Any:
            fakes = {
                "codepipeline": self.pipeline,
                "sagemaker-runtime": self.endpoint,
                "cloudwatch": self.metrics,
                "glue": Quality(),
            }
            if name in fakes:
                return fakes[name]
            if name == "sagemaker" and self.endpoint_mode:
                return self.endpoint
            return real(name, *args, **kwargs)

        self.endpoint_mode = False
        boto3.client = client  # the hooks' clients: moto where it can, simulated where not
        self.posted: list[dict[str, Any]] = []

    # --- the happy path ------------------------------------------------------------------------

    def run(self) -> int:
        print(f"mlgate release rehearsal: {self.manifest.product.display_name}, offline\n")
        self.setup()
        curated = self.etl()
        report = self.train(curated)
        arn = self.register(report)
        self.approve(arn)
        self.deploy("staging", arn)
        self.verify("staging")
        if not self.quality_gate():
            return 1
        for stage in STAGES:
            request = self.brief(stage)
            self.decide_from_chat(request, stage)
        self.deploy("prod", arn)
        self.verify("prod")
        self.audit_trail()
        print("\nFault scenarios\n")
        self.fault_below_threshold()
        self.fault_forged_approval()
        self.fault_silent_rollback()
        self.fault_transient_release()
        print("\nRehearsal complete: the release reached prod and every fault ended safely.")
        return 0

    def setup(self) -> None:
        b = self.boto3
        for bucket in ("artifacts", "releases"):
            b.client("s3").create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        b.client("dynamodb").create_table(
            TableName="audit",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        b.client("dynamodb").create_table(
            TableName="idempotency",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        sm = b.client("secretsmanager")
        webhook = sm.create_secret(Name="webhook", SecretString="https://hooks.slack.test/x")["ARN"]
        slack_app = {"signing_secret": SIGNING_SECRET, "team_id": TEAM_ID, "app_id": APP_ID}
        signing = sm.create_secret(Name="signing", SecretString=json.dumps(slack_app))["ARN"]
        topics = {
            g: b.client("sns").create_topic(Name=f"brief-{g}")["TopicArn"]
            for g in ("business-signoff", "compliance-review", "go-live")
        }
        from mlgate.gates import encoded, gate_context, thresholds

        context = gate_context(
            self.manifest,
            brief_topics=topics,
            dashboard_url="https://console.aws.amazon.com/cloudwatch",
        )
        os.environ.update(
            {
                "MODEL_PACKAGE_GROUP": "mlgate-fraud-detection",
                "RELEASE_BUCKET": "releases",
                "RELEASE_KEY": "release.json",
                "RELEASE_PIPELINE": "mlgate-fraud-detection-release",
                "AUDIT_TABLE": "audit",
                "MLGATE_CONTEXT": encoded(context),
                "MLGATE_THRESHOLDS": json.dumps(thresholds(self.manifest)),
                "SLACK_WEBHOOK_SECRET_ARN": webhook,
                "SLACK_SIGNING_SECRET_ARN": signing,
                "DQ_DATABASE": "catalog",
                "DQ_TABLE": "transactions_curated",
                "SAMPLE_PAYLOAD": "120.5,0,2.1,3.4,240,3" + ",0" * 24,
            }
        )
        template: dict[str, Any] = {
            "Parameters": {
                k: {"Type": "String"}
                for k in ("ModelPackageArn", "BaselineStatisticsUri", "BaselineConstraintsUri")
            },
            "Resources": {
                "Marker": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {
                        "Name": "/serving/model",
                        "Type": "String",
                        "Value": {"Ref": "ModelPackageArn"},
                    },
                }
            },
        }
        for env in ("staging", "prod"):
            template["Resources"]["Marker"]["Properties"]["Name"] = f"/serving/{env}"
            b.client("cloudformation").create_stack(
                StackName=f"mlgate-fraud-detection-{env}-serving",
                TemplateBody=json.dumps(template),
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": "none"} for k in template["Parameters"]
                ],
            )

    def etl(self) -> Path:
        from pyspark.sql import SparkSession

        from mlgate.etl.columns import RAW_COLUMNS
        from mlgate.etl.synthetic import generate
        from mlgate.etl.transforms import curate

        raw = generate(20_000, seed=42).astype(str)
        raw.loc[7, "amount"] = "n/a"  # a malformed record, as real feeds have
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.host", "127.0.0.1")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        frame = spark.createDataFrame(
            raw.values.tolist(), ", ".join(f"{c} string" for c in RAW_COLUMNS)
        )
        curated, quarantined = curate(frame)
        out = self.work / "curated"
        rows: Any = curated.toPandas()
        rows.to_csv(out.with_suffix(".csv"), index=False)
        out.mkdir()
        (out.with_suffix(".csv")).rename(out / "part-0.csv")
        say(
            "ETL",
            f"Glue workflow {SIMULATED}: crawl; curation transform ran for real on local "
            f"Spark: {curated.count()} rows curated, {quarantined.count()} quarantined "
            f"(reason: {(quarantined.first() or {'reason': 'none'})['reason']}); "
            "data-quality rules checked by Glue DQ "
            f"{SIMULATED}.",
        )
        spark.stop()
        return out

    def train(self, curated: Path) -> dict[str, Any]:
        import numpy as np
        import xgboost as xgb

        from mlgate.ml.scripts import evaluate, preprocess

        base = self.work / "processing"
        (base / "input").mkdir(parents=True)
        (curated / "part-0.csv").rename(base / "input" / "part-0.csv")
        counts = preprocess.main(["--target", "is_fraud"], base=base)
        train = np.loadtxt(base / "train" / "train.csv", delimiter=",")
        params = {k: v for k, v in self.manifest.model.hyperparameters.items() if k != "num_round"}
        booster = xgb.train(
            params,
            xgb.DMatrix(train[:, 1:], label=train[:, 0]),
            num_boost_round=int(self.manifest.model.hyperparameters.get("num_round", 50)),
        )
        (base / "model").mkdir()
        booster.save_model(str(base / "xgboost-model"))
        with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as tar:
            tar.add(base / "xgboost-model", arcname="xgboost-model")
        names = ",".join(m.name.value for m in self.manifest.metrics.model_metrics)
        report = evaluate.main(["--metrics", names], base=base)
        metrics = {
            k: round(v["value"], 4) for k, v in report["binary_classification_metrics"].items()
        }
        say(
            "Training",
            f"SageMaker Pipeline {SIMULATED} with the real scripts: preprocess split "
            f"{counts}; XGBoost trained locally with the manifest's hyper-parameters; evaluate on "
            f"the test split: {metrics}.",
        )
        for m in self.manifest.metrics.model_metrics:
            if not m.met_by(metrics[m.name.value]):
                say(
                    "Training",
                    f"{m.name.value} {metrics[m.name.value]} misses its threshold "
                    f"{m.threshold}: the pipeline's FailStep would stop here; the rehearsal "
                    "continues with the registered metrics to show the gates.",
                )
        self.boto3.client("s3").put_object(
            Bucket="artifacts", Key="training/evaluation.json", Body=json.dumps(report)
        )
        return report

    def register(self, report: dict[str, Any]) -> str:
        sm = self.boto3.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName="mlgate-fraud-detection")
        arn = sm.create_model_package(
            ModelPackageGroupName="mlgate-fraud-detection",
            ModelApprovalStatus="PendingManualApproval",
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": "s3://artifacts/training/evaluation.json",
                    }
                }
            },
            InferenceSpecification={
                "Containers": [{"Image": "xgboost:1.7-1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        say("Registry", f"model version registered as PendingManualApproval: {arn}")
        return str(arn)

    def approval_event(self, arn: str) -> dict[str, Any]:
        """EventBridge's "SageMaker Model Package State Change" for an approved version."""
        return {
            "version": "0",
            "id": "rehearsal-approval",
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "account": ACCOUNT,
            "region": REGION,
            "detail": {
                "ModelPackageGroupName": "mlgate-fraud-detection",
                "ModelPackageVersion": 1,
                "ModelPackageArn": arn,
                "ModelApprovalStatus": "Approved",
                "LastModifiedBy": {"UserProfileName": "bruno"},
            },
        }

    def approve(self, arn: str) -> None:
        from release import handler as release

        self.boto3.client("sagemaker").update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus="Approved"
        )
        event = self.approval_event(arn)
        say(
            "Approval",
            "Bruno Okafor (ML lead) approves the version in the registry; EventBridge "
            "delivers 'SageMaker Model Package State Change' (Approved) to the release hook.",
        )
        result = release.handler(event, None)
        body = self.boto3.client("s3").get_object(Bucket="releases", Key="release.json")["Body"]
        written = json.loads(body.read())
        say(
            "Release",
            f"release.json written (version {written['model_version']}, approved by "
            f"{written['approved_by']}, metrics {written['metrics']}); release pipeline started "
            f"({result['execution']}) {SIMULATED} for CodePipeline itself.",
        )
        self.release = written
        again = release.handler(event, None)
        say("Release", f"the same approval delivered again: {again['reason']} (idempotent).")

    def job(self, **params: Any) -> dict[str, Any]:
        return {
            "CodePipeline.job": {
                "id": f"job-{time.time_ns()}",
                "data": {
                    "actionConfiguration": {
                        "configuration": {"UserParameters": json.dumps(params)}
                    },
                    "inputArtifacts": [
                        {
                            "location": {
                                "s3Location": {
                                    "bucketName": "releases",
                                    "objectKey": "release.json",
                                }
                            }
                        }
                    ],
                    "artifactCredentials": {},
                },
            }
        }

    def deploy(self, env: str, arn: str) -> None:
        from deployer import handler as deployer

        stack = f"mlgate-fraud-detection-{env}-serving"
        first = deployer.handler(self.job(environment=env, stack=stack), None)
        event = self.job(environment=env, stack=stack)
        event["CodePipeline.job"]["data"]["continuationToken"] = json.dumps(
            {"stack": stack, "model_package_arn": arn}
        )
        done = deployer.handler(event, None)
        self.endpoint.serving[f"mlgate-fraud-detection-{env}"] = arn
        rollout = self.manifest.env_serving(env).rollout  # type: ignore[arg-type]
        say(
            f"Deploy {env}",
            f"deployer hook: {first['reason']}; then {done['reason']}. "
            f"CloudFormation ran for real under moto; the endpoint's blue/green "
            f"{rollout.policy.value} shift is {SIMULATED}.",
        )

    def verify(self, env: str) -> bool:
        from deploy_verifier import handler as verifier

        self.endpoint_mode = True
        result = verifier.handler(
            self.job(environment=env, endpoint=f"mlgate-fraud-detection-{env}"), None
        )
        self.endpoint_mode = False
        say(
            f"Verify {env}",
            f"{result['result']}: {result['reason']} (endpoint answers {SIMULATED}).",
        )
        return result["result"] == "succeeded"

    def quality_gate(self) -> bool:
        from quality_gate import handler as gate

        result = gate.handler(self.job(endpoint="mlgate-fraud-detection-staging"), None)
        say("Quality gate", f"{result['reason']} (staging metrics {SIMULATED}).")
        return result["result"] == "succeeded"

    def notification(self, stage: str, token: str | None = None) -> dict[str, Any]:
        """CodePipeline's approval notification for a gate, as SNS delivers it to the notifier.

        The Slack webhook is outside this machine: posts are kept in `self.posted`."""

        def post(webhook_url: str, message: dict[str, Any]) -> int:
            self.posted.append(message)
            return 200

        from shared import slack

        slack.post = post
        message = {
            "region": REGION,
            "consoleLink": "https://console.aws.amazon.com/codepipeline",
            "approval": {
                "pipelineName": "mlgate-fraud-detection-release",
                "stageName": stage,
                "actionName": "Approve",
                "token": token or f"token-{stage}",
                "expires": "2099-01-01T00:00Z",
            },
        }
        return {"Records": [{"Sns": {"Message": json.dumps(message)}}]}

    def brief(self, stage: str) -> str:
        from gate_notifier import handler as notifier

        result = notifier.handler(self.notification(stage), None)
        chat = self.posted[-1]["blocks"][1]["text"]["text"]
        say(
            stage,
            f"CodePipeline waits at {stage}; the gate notifier posted the evidence brief to "
            f"chat (Slack webhook {SIMULATED}) and mailed it:",
        )
        print(textwrap.indent(chat, " " * 26))
        return str(result["request_id"])

    def click(self, request: str, user: str, secret: str = SIGNING_SECRET) -> dict[str, Any]:
        from gate_callback import handler as callback

        from shared import slack

        payload = {
            "team": {"id": TEAM_ID},
            "api_app_id": APP_ID,
            "user": {"id": user, "name": user},
            "actions": [{"action_id": "approve", "value": request}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        now = str(int(time.time()))
        event = {
            "version": "2.0",
            "rawPath": "/",
            "requestContext": {"stage": "$default", "http": {"method": "POST", "path": "/"}},
            "headers": {
                "x-slack-request-timestamp": now,
                "x-slack-signature": slack.sign(secret, now, body),
            },
            "body": base64.b64encode(body.encode()).decode(),
            "isBase64Encoded": True,
        }
        return dict(callback.handler(event, None))

    def decide_from_chat(self, request: str, stage: str) -> None:
        from mlgate import naming

        gate = next(g for g in self.manifest.gates if naming.pascal(g.name) == stage)
        approver = self.manifest.contact(gate.approvers[0])
        answer = self.click(request, approver.slack_user_id or "")
        text = json.loads(answer["body"])["text"]
        say(
            stage,
            f"{approver.name} clicks Approve in chat; signed callback → HTTP "
            f"{answer['statusCode']}: {text}",
        )

    def audit_trail(self) -> None:
        from shared.audit import AuditTrail

        items = AuditTrail(self.boto3.client("dynamodb"), "audit").events(
            "mlgate-fraud-detection-release", "rehearsal-execution-1"
        )
        say("Audit", f"{len(items)} gate events recorded for this release:")
        for i in sorted(items, key=lambda i: i["sk"]):
            print(
                f"{'':26}{i['event']:<12} {i['gate']:<18} {i['decision'] or '-':<9} "
                f"{i['who'][:30]:<30} evidence {i['evidence_sha256'][:12] or '-'}"
            )

    # --- faults ----------------------------------------------------------------------------------

    def fault_below_threshold(self) -> None:
        self.boto3.client("s3").put_object(
            Bucket="releases",
            Key="release.json",
            Body=json.dumps(
                {**self.release, "metrics": {**self.release["metrics"], "precision": 0.81}}
            ),
        )
        passed = self.quality_gate()
        say(
            "Fault 1",
            "a model below its precision threshold: "
            + ("NOT STOPPED" if passed else "stopped at the quality gate; prod untouched."),
        )

    def fault_forged_approval(self) -> None:
        from shared.audit import AuditTrail

        audit = AuditTrail(self.boto3.client("dynamodb"), "audit")
        before = len(self.boto3.client("dynamodb").scan(TableName="audit")["Items"])
        self.pipeline.calls.clear()
        request = self.brief_quiet("ComplianceReview", "token-forged")
        answer = self.click(request, "U01DANAS01", secret="not-the-signing-secret")
        changed = len(self.boto3.client("dynamodb").scan(TableName="audit")["Items"]) - before
        decided = audit.request(request) or {}
        sent = [c for c, _ in self.pipeline.calls if c == "put_approval_result"]
        say(
            "Fault 2",
            f"a forged approval (bad signature) → HTTP {answer['statusCode']}: "
            f"{json.loads(answer['body'])['text']}; approvals sent to CodePipeline: {len(sent)}; "
            f"decision recorded: {decided.get('decision', 'none')} (audit items added: {changed}, "
            "the brief's own request only).",
        )

    def brief_quiet(self, stage: str, token: str) -> str:
        from gate_notifier import handler as notifier

        return str(notifier.handler(self.notification(stage, token), None)["request_id"])

    def fault_silent_rollback(self) -> None:
        self.endpoint.serving["mlgate-fraud-detection-prod"] = (
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlgate-fraud-detection/0"
        )
        self.boto3.client("s3").put_object(
            Bucket="releases", Key="release.json", Body=json.dumps(self.release)
        )
        ok = self.verify("prod")
        say(
            "Fault 3",
            "a silent rollback in prod: "
            + (
                "NOT CAUGHT"
                if ok
                else "caught by the deploy verifier; the release is marked failed."
            ),
        )

    def fault_transient_release(self) -> None:
        from botocore.exceptions import ClientError
        from release import handler as release

        sm = self.boto3.client("sagemaker")
        arn = sm.create_model_package(
            ModelPackageGroupName="mlgate-fraud-detection",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "xgboost:1.7-1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        event = {**self.approval_event(arn), "id": "rehearsal-approval-2"}
        event["detail"] = {**event["detail"], "ModelPackageVersion": 2}
        pipeline, before = self.pipeline, len(self.pipeline.calls)
        throttled: list[str] = []

        class Throttled:
            """CodePipeline answering StartPipelineExecution with a throttle, once."""

            def __getattr__(self, name: str) -> Any:
                if name == "start_pipeline_execution" and not throttled:
                    throttled.append(name)
                    raise ClientError(
                        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                        "StartPipelineExecution",
                    )
                return getattr(pipeline, name)

        release.codepipeline = Throttled()
        try:
            try:
                release.handler(event, None)
                first = "released at once"
            except ClientError as err:
                first = f"failed ({err.response['Error']['Code']}), no record kept"
            retried = release.handler(event, None)  # Lambda's retry of the failed invocation
            again = release.handler(event, None)  # EventBridge delivering it once more
        finally:
            release.codepipeline = pipeline
        starts = [c for c, _ in pipeline.calls[before:] if c == "start_pipeline_execution"]
        say(
            "Fault 4",
            f"StartPipelineExecution throttled while releasing version 2: the release hook "
            f"{first}; Lambda's retry released it (released {retried['released']}); the same "
            f"approval again: {again['reason']}; pipeline starts for it: {len(starts)}.",
        )


if __name__ == "__main__":
    raise SystemExit(main())
