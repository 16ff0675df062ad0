"""`make rehearse MANIFEST=examples/<product>`: a product's whole release flow, offline, with
the real hooks, as a timeline. Given a folder of products (`MANIFEST=examples`), it rehearses
each in turn in one process (Python's imports, Spark's JVM and Evidently's import are paid
once), each product in a world of its own: its own moto, temporary folder, region, Spark
session and freshly imported hooks.

Runs under moto (no AWS account): the product's own ETL transform on local Spark (on its own
synthetic data), its training scripts (or mlgate's defaults) with a model trained locally, the
model registry, the release, deployer, verifier, quality-gate, notifier and callback hooks, and
the audit trail; an environment in another account is reached through its roles, as on AWS.
The endpoints serve the model artifact the rehearsal's training wrote, in this process, as the
framework's container serves it (tools/local_endpoint.py): the verifier, the quality gate's
smoke load and the captured traffic the monitoring job reads get the model's own answers,
each endpoint in its environment's serving mode (real-time, serverless, async: see Endpoint).
What cannot run offline (an endpoint's fleet and rollout, CloudWatch percentiles,
CodePipeline's own state machine) is simulated and the timeline says so. Then four faults, each
ending safely; the fourth releases version 2, a retrained model (tools/local_pipeline.py:
train_another_version), which goes through staging and reaches prod as the manifest's rollout
says: its canary (or linear steps) answered by version 2's model, the rest by version 1's
(tools/rehearsal_canary.py). The business KPIs the product declares stand-ins for are computed
on each scored batch of held-out rows (tools/rehearsal_kpis.py). Each product's CloudWatch data
is written to REPORTS/<product>/metrics.json (tools/rehearsal_metrics.py).

A development tool, not shipped: it needs the test dependencies (moto, pyspark, xgboost).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from mlgate.manifest import EnvName

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "mlgate" / "runtime" / "hooks"
REPORTS = Path(os.environ.get("MLGATE_REHEARSAL_REPORTS") or ROOT / "reports" / "rehearsal")
"""Each product's metrics.json (tools/rehearsal_metrics.py) and MLflow store go to
REPORTS/<product>/; MLGATE_REHEARSAL_REPORTS moves them (the tests' rehearsal writes its own)."""
REGION, ACCOUNT = "eu-west-1", "123456789012"
"""The product's home: its staging environment's region and account (set per product)."""
VARIANT = "AllTraffic"
"""The endpoint's one production variant (mlgate/infra/constructs/endpoint.py's VARIANT)."""
SIGNING_SECRET = "rehearsal-signing-secret"
TEAM_ID, APP_ID = "T0REHEARSE", "A0REHEARSE"
SIMULATED = "[simulated offline]"
SERVED = "the endpoint: the trained model artifact, served in-process as its container serves it"
ROWS = 20_000
TRAFFIC = 200
"""Requests of held-out rows sent to prod once a version serves all of its traffic."""
STEP_REQUESTS = 150
"""Requests of held-out rows sent in each step of a blue/green rollout."""
SECOND_VERSION_SEEDS = (2, 3, 4, 5)
"""The samples version 2 is trained on, tried in turn until one meets the thresholds."""
ENVS: tuple[EnvName, ...] = ("staging", "prod")
CAPTURE_BATCH = 100
"""Records per request when the monitored traffic goes through an asynchronous endpoint."""
# The release pipeline's one execution in the rehearsal (CodePipeline's execution ids are UUIDs).
EXECUTION = "5e1a2c3d-7b4f-4a60-9d2e-0c8f1b3a6e57"
SECOND_EXECUTION = "9b7c4e21-3f0a-4d8e-b6a1-2c5d7e9f0a13"
"""Version 2's release (a batch environment's sample runs are one per execution)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def say(step: str, text: str) -> None:
    wrapped = textwrap.fill(
        text, width=100, subsequent_indent=" " * 24, break_on_hyphens=False, break_long_words=False
    )
    print(f"{time.strftime('%H:%M:%S')}  {step:<12}  {wrapped}")


class Pipeline:
    """CodePipeline's API as the hooks use it (moto lacks these calls); records every call.
    The jobs it holds answer GetJobDetails (any other id: JobNotFoundException, as
    CodePipeline answers), all of the release pipeline's one execution."""

    def __init__(self, stages: list[str], revision: Any = None, name: str = "") -> None:
        self.stages = stages
        self.revision = revision
        """The source revision of the execution: release.json's S3 version id, as the S3
        source action records it."""
        self.name = name
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.execution: str | None = None
        """Another execution's id for the jobs held from now on (the shadow scenarios: a
        release of their own each); None: the release pipeline's one execution."""

    def hold(self, job: str, params: dict[str, Any], continuation: str | None) -> None:
        """A job of the release pipeline's execution, as GetJobDetails answers it."""
        data: dict[str, Any] = {
            "actionConfiguration": {"configuration": {"UserParameters": json.dumps(params)}},
            "pipelineContext": {
                "pipelineName": self.name,
                "pipelineExecutionId": self.execution or EXECUTION,
            },
        }
        if continuation is not None:
            data["continuationToken"] = continuation
        self.jobs[job] = {"id": job, "accountId": ACCOUNT, "data": data}

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            if name == "get_job_details":
                if kwargs["jobId"] not in self.jobs:
                    from botocore.exceptions import ClientError

                    error = {"Code": "JobNotFoundException", "Message": "job not found"}
                    raise ClientError({"Error": error}, "GetJobDetails")
                return {"jobDetails": self.jobs[kwargs["jobId"]]}
            if name == "start_pipeline_execution":
                return {"pipelineExecutionId": EXECUTION}
            if name == "get_pipeline_execution":
                revision = self.revision() if self.revision else "none"
                return {
                    "pipelineExecution": {
                        "pipelineExecutionId": kwargs.get("pipelineExecutionId"),
                        "status": "InProgress",
                        "artifactRevisions": [{"name": "Release", "revisionId": revision}],
                    }
                }
            if name == "get_pipeline_state":
                return {
                    "stageStates": [
                        {
                            "stageName": s,
                            "latestExecution": {"pipelineExecutionId": EXECUTION},
                        }
                        for s in self.stages
                    ]
                }
            return {}

        return call


@dataclass
class Queued:
    """One request InvokeEndpointAsync accepted: where it is, where its result or failure
    goes, when it was queued and (once the endpoint processed it) when it was done."""

    endpoint: str
    inference_id: str
    input: str
    output: str
    failure: str
    content_type: str
    accept: str
    queued_at: float
    done_at: float | None = None
    failed: bool = False


@dataclass
class ColdStart:
    """A serverless endpoint's first request after a release: a copy of the model started
    (ModelSetupTime: the container's load, measured in this process)."""

    at: float
    endpoint: str
    setup_us: float


STARTED = datetime.now(UTC)
"""When this process started: an endpoint's LastModifiedTime before any release."""


class Served(dict[str, str]):
    """What each endpoint serves (endpoint -> model artifact), and when that last changed
    (`modified`): DescribeEndpoint's LastModifiedTime, which the deploy verifier keys its
    "served" records on."""

    def __init__(self) -> None:
        super().__init__()
        self.modified: dict[str, datetime] = {}

    def __setitem__(self, endpoint: str, artifact: str) -> None:
        if self.get(endpoint) != artifact:
            self.modified[endpoint] = datetime.now(UTC)
        super().__setitem__(endpoint, artifact)


class Endpoint:
    """A SageMaker endpoint's describe and invoke answers: its model is the model artifact the
    Serving stack's ModelDataUrl names, served in this process by `host` as the framework's
    container serves it (tools/local_endpoint.py); a container's failure is SageMaker's
    ModelError. The registry's answers (DescribeModelPackage) are moto's, through `registry`.

    Each endpoint serves in its environment's mode (`modes`: endpoint name -> (environment,
    its serving settings), from the manifest): DescribeEndpointConfig answers as the Serving
    stack builds the config (mlgate/infra/constructs/endpoint.py); an asynchronous endpoint
    refuses InvokeEndpoint and queues InvokeEndpointAsync's requests in `queue` until
    `drain` processes them (reading each request object from S3, writing its result or
    failure object); a serverless endpoint's first request after a release is a cold start."""

    def __init__(self, registry: Any = None, host: Any = None, s3: Any = None,
                 modes: dict[str, tuple[str, Any]] | None = None,
                 capture_percent: int = 100,
                 components: dict[str, str] | None = None) -> None:  # fmt: skip
        self.capture_percent = capture_percent
        self.components = components or {}
        """Endpoint -> the inference component the Serving stack names on it (an environment
        with serving.<env>.inference_component): its config's variant names no model, and
        InvokeEndpoint must name the component."""
        self.serving: dict[str, str] = Served()
        self.registry = registry
        self.host = host
        self.s3 = s3
        """() -> an S3 client of moto's world, where requests and results live."""
        self.modes = modes or {}
        self.queue: list[Queued] = []
        """Every request queued on an asynchronous endpoint, processed or not."""
        self.cold_starts: list[ColdStart] = []
        self.warm: set[tuple[str, str]] = set()
        """(serverless endpoint, model artifact) pairs with a copy of the model running."""
        self.shadows: dict[str, str] = {}
        """Endpoint -> the model artifact of its shadow variant, while a shadow test runs."""

    def mode(self, endpoint: str) -> str:
        """real-time, serverless or async: the manifest's mode of the endpoint's environment."""
        if endpoint not in self.modes:
            return "real-time"
        return str(self.modes[endpoint][1].mode.value)

    def describe_model_package(self, **kwargs: Any) -> Any:
        return self.registry().describe_model_package(**kwargs)

    def _exists(self, endpoint: str) -> None:
        """A batch environment has no endpoint: SageMaker's answer for a name it does not
        know (ValidationException "Could not find endpoint")."""
        if self.mode(endpoint) == "batch":
            from botocore.exceptions import ClientError

            error = {"Code": "ValidationException",
                     "Message": f"Could not find endpoint \"{endpoint}\"."}  # fmt: skip
            raise ClientError({"Error": error}, "DescribeEndpoint")

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        self._exists(EndpointName)
        modified = getattr(self.serving, "modified", {}).get(EndpointName, STARTED)
        described = {"EndpointStatus": "InService", "EndpointConfigName":
                     f"{EndpointName}-config", "LastModifiedTime": modified}  # fmt: skip
        if EndpointName in self.shadows:
            described["ShadowProductionVariants"] = [{"VariantName": "Shadow"}]
        return described

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        """As DescribeEndpointConfig answers for the config the Serving stack builds in the
        environment's mode (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
        API_DescribeEndpointConfig.html): an AsyncInferenceConfig with its output paths under
        the environment's artifact bucket (the rehearsal's: `artifacts`), a variant's
        ServerlessConfig, or a real-time variant's instances."""
        self._exists(EndpointConfigName.removesuffix("-config"))
        endpoint = EndpointConfigName.removesuffix("-config")
        variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": endpoint,
                                   "InitialVariantWeight": 1.0}  # fmt: skip
        config: dict[str, Any] = {"EndpointConfigName": EndpointConfigName,
                                  "ProductionVariants": [variant]}  # fmt: skip
        if endpoint not in self.modes:
            return config
        env, serving = self.modes[endpoint]
        mode = serving.mode.value
        if mode == "serverless":
            capacity = serving.serverless
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": capacity.memory_mb,
                "MaxConcurrency": capacity.max_concurrency,
                **({"ProvisionedConcurrency": capacity.provisioned_concurrency}
                   if capacity.provisioned_concurrency else {}),
            }  # fmt: skip
            return config  # serverless endpoints capture no traffic and take no KMS key
        variant.update(InitialInstanceCount=serving.instance_count,
                       InstanceType=serving.instance_type)  # fmt: skip
        if endpoint in self.components:
            # Instances only: the model is the inference component's.
            del variant["ModelName"], variant["InitialVariantWeight"]
            config["ExecutionRoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/{endpoint}-model"
        key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/rehearsal-{env}"
        config["KmsKeyId"] = key
        config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": self.capture_percent,
            "DestinationS3Uri": f"s3://artifacts/datacapture/{env}",
            "KmsKeyId": key,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
        if mode == "async":
            queue = serving.async_settings
            topics = f"arn:aws:sns:{REGION}:{ACCOUNT}:{endpoint}-async"
            config["AsyncInferenceConfig"] = {
                **({"ClientConfig": {"MaxConcurrentInvocationsPerInstance":
                                     queue.max_concurrent_invocations_per_instance}}
                   if queue.max_concurrent_invocations_per_instance else {}),
                "OutputConfig": {
                    "S3OutputPath": f"s3://artifacts/async/{env}/output",
                    "S3FailurePath": f"s3://artifacts/async/{env}/failures",
                    "KmsKeyId": key,
                    "NotificationConfig": {"SuccessTopic": f"{topics}-success",
                                           "ErrorTopic": f"{topics}-error"},
                },
            }  # fmt: skip
        return config

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        served = self.serving.get(ModelName, "none")
        return {"Containers": [{"Image": "model", "ModelDataUrl": served}]}

    def list_inference_components(self, **kwargs: Any) -> dict[str, Any]:
        """The component the Serving stack names on the endpoint (EndpointNameEquals)."""
        endpoint = kwargs.get("EndpointNameEquals", "")
        names = [self.components[endpoint]] if endpoint in self.components else []
        return {"InferenceComponents": [{"InferenceComponentName": n, "EndpointName": endpoint}
                                        for n in names]}  # fmt: skip

    def describe_inference_component(self, InferenceComponentName: str) -> dict[str, Any]:
        """InService on the endpoint's model (the rolling update is simulated offline)."""
        from botocore.exceptions import ClientError

        for endpoint, name in self.components.items():
            if name == InferenceComponentName:
                return {"InferenceComponentName": name, "EndpointName": endpoint,
                        "InferenceComponentStatus": "InService",
                        "Specification": {"ModelName": endpoint}}  # fmt: skip
        error = {
            "Code": "ValidationException",
            "Message": f"Could not find inference component {InferenceComponentName}",
        }
        raise ClientError({"Error": error}, "DescribeInferenceComponent")

    def naming(self, endpoint: str) -> dict[str, str]:
        """What a client's InvokeEndpoint adds for the endpoint: the component it hosts."""
        name = self.components.get(endpoint)
        return {"InferenceComponentName": name} if name else {}

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        from tools.local_endpoint import ContainerError, model_error

        endpoint = kwargs["EndpointName"]
        mode = self.mode(endpoint)
        if mode == "async":
            # An asynchronous endpoint takes requests through InvokeEndpointAsync only.
            error = {"Code": "ValidationException",
                     "Message": f"Endpoint {endpoint} is an asynchronous inference endpoint: "
                                "use InvokeEndpointAsync"}  # fmt: skip
            raise ClientError({"Error": error}, "InvokeEndpoint")
        # An endpoint of inference components answers a request naming its component, and
        # only such an endpoint takes one (InvokeEndpoint's InferenceComponentName).
        named, hosted = kwargs.get("InferenceComponentName"), self.components.get(endpoint)
        if named != hosted:
            message = (
                f"Inference component {named} is not on endpoint {endpoint}"
                if named
                else f"Endpoint {endpoint} hosts inference components: name one "
                "(InferenceComponentName)"
            )
            raise ClientError({"Error": {"Code": "ValidationException", "Message": message}},
                              "InvokeEndpoint")  # fmt: skip
        body = kwargs["Body"]
        body = body.encode() if isinstance(body, str) else bytes(body)
        content_type = kwargs.get("ContentType", "text/csv")
        accept = kwargs.get("Accept", "text/csv")
        url = self.serving.get(endpoint, "none")
        if mode == "serverless":
            self._cold_start(endpoint, url)
        try:
            answer = self.host.invoke(endpoint, VARIANT, url, body, content_type, accept)
        except ContainerError as err:
            raise model_error(err, endpoint, REGION, ACCOUNT) from None
        return {"Body": io.BytesIO(answer), "ContentType": accept, "InvokedProductionVariant":
                VARIANT}  # fmt: skip

    def _cold_start(self, endpoint: str, url: str) -> None:
        """The first request to a serverless endpoint's model starts a copy of it (none when
        the manifest keeps provisioned concurrency warm): ModelSetupTime is the container's
        load, as this process measured it."""
        serverless = self.modes[endpoint][1].serverless
        if (endpoint, url) in self.warm:
            return
        self.warm.add((endpoint, url))
        if serverless.provisioned_concurrency:
            return
        try:
            self.host.container(url)
        except Exception:  # the request itself reports the container's failure
            return
        self.cold_starts.append(ColdStart(time.time(), endpoint, self.host.setup_us[url]))

    def invoke_endpoint_async(self, **kwargs: Any) -> dict[str, Any]:
        """InvokeEndpointAsync (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
        API_runtime_InvokeEndpointAsync.html): the request object must exist; the request is
        queued and the answer names where its result (`<S3OutputPath>/<InferenceId>.out`) or
        failure (`<S3FailurePath>/<InferenceId>-error.out`) will be
        (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-check-predictions.html)."""
        from botocore.exceptions import ClientError

        endpoint = kwargs["EndpointName"]
        config = self.describe_endpoint_config(f"{endpoint}-config")
        if "AsyncInferenceConfig" not in config:
            error = {"Code": "ValidationException",
                     "Message": f"Endpoint {endpoint} is not an asynchronous inference "
                                "endpoint"}  # fmt: skip
            raise ClientError({"Error": error}, "InvokeEndpointAsync")
        location = kwargs["InputLocation"]
        bucket, _, key = location.removeprefix("s3://").partition("/")
        self.s3().head_object(Bucket=bucket, Key=key)  # SageMaker refuses a missing input
        paths = config["AsyncInferenceConfig"]["OutputConfig"]
        inference = kwargs.get("InferenceId") or str(uuid.uuid4())
        queued = Queued(
            endpoint=endpoint, inference_id=inference, input=location,
            output=f"{paths['S3OutputPath']}/{inference}.out",
            failure=f"{paths['S3FailurePath']}/{inference}-error.out",
            content_type=kwargs.get("ContentType", "text/csv"),
            accept=kwargs.get("Accept", "text/csv"), queued_at=time.time(),
        )  # fmt: skip
        self.queue.append(queued)
        return {"InferenceId": inference, "OutputLocation": queued.output,
                "FailureLocation": queued.failure}  # fmt: skip

    def pending(self, endpoint: str) -> list[Queued]:
        return [q for q in self.queue if q.endpoint == endpoint and q.done_at is None]

    def drain(self, endpoint: str) -> list[Queued]:
        """The endpoint processes its backlog: each request object read from S3, answered by
        the model it serves, its result (or the container's error text) written where
        InvokeEndpointAsync said. The requests processed, in order."""
        from tools.local_endpoint import ContainerError, model_error

        s3, done = self.s3(), []
        for queued in self.pending(endpoint):
            bucket, _, key = queued.input.removeprefix("s3://").partition("/")
            body = bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            url = self.serving.get(endpoint, "none")
            try:
                answer = self.host.invoke(endpoint, VARIANT, url, body, queued.content_type,
                                          queued.accept)  # fmt: skip
                where, text = queued.output, answer
            except ContainerError as err:
                error = model_error(err, endpoint, REGION, ACCOUNT)
                message = error.response["Error"]["Message"]  # type: ignore[attr-defined]
                where, text, queued.failed = queued.failure, message.encode(), True
            bucket, _, key = where.removeprefix("s3://").partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=text)
            queued.done_at = time.time()
            done.append(queued)
        return done


class DirectS3:
    """The home account's S3 as moto keeps it, for the stand-ins' own objects (an asynchronous
    endpoint's requests read and results written, as SageMaker reads and writes them): the
    same objects an S3 client would read and write, without the request's round trip through
    botocore and moto's HTTP layer (most of the cost of a small object). The hooks' own S3
    calls still go through the API."""

    def _backend(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[ACCOUNT]["aws"]

    def _missing(self, operation: str, bucket: str, key: str) -> Exception:
        from botocore.exceptions import ClientError

        error = {"Code": "NoSuchKey", "Message": f"s3://{bucket}/{key} does not exist"}
        refused: Exception = ClientError(
            {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 404}}, operation
        )
        return refused

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        found = self._backend().get_object(Bucket, Key)
        if found is None:
            raise self._missing("HeadObject", Bucket, Key)
        return {"ContentLength": found.size, "LastModified": found.last_modified}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        found = self._backend().get_object(Bucket, Key)
        if found is None:
            raise self._missing("GetObject", Bucket, Key)
        return {"Body": io.BytesIO(found.value)}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "") -> None:
        self._backend().put_object(Bucket, Key, Body)


class Metrics:
    """CloudWatch for the metrics the hooks publish, kept in `published`."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def put_metric_data(self, **data: Any) -> dict[str, Any]:
        self.published.append(data)
        return {}

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        """GetMetricData over what was published: each query's statistic (Sum or Average) of
        the data points of its metric and dimensions in [StartTime, EndTime), as one value
        (the shadow judge asks for one period spanning its window)."""
        start, end = request["StartTime"], request["EndTime"]
        results = []
        for query in request["MetricDataQueries"]:
            stat = query["MetricStat"]
            metric = stat["Metric"]
            wanted = {(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])}
            values = [
                float(datum["Value"])
                for data in self.published
                if data.get("Namespace") == metric["Namespace"]
                for datum in data.get("MetricData", [])
                if datum.get("MetricName") == metric["MetricName"]
                and {(d["Name"], d["Value"]) for d in datum.get("Dimensions", [])} == wanted
                and start <= datum.get("Timestamp", start) < end
            ]
            value = sum(values) / len(values) if stat["Stat"] == "Average" else sum(values)
            results.append({"Id": query["Id"], "Values": [value] if values else []})
        return {"MetricDataResults": results}


class Quality:
    """Glue Data Quality results (moto has no Data Quality API): the ETL run's outcome; the
    rest of Glue (a batch run's partitions) is moto's, through `glue`."""

    def __init__(self, glue: Any = None) -> None:
        self.glue = glue

    def __getattr__(self, name: str) -> Any:
        if self.glue is None:
            raise AttributeError(name)
        return getattr(self.glue, name)

    def list_data_quality_results(self, **kwargs: Any) -> dict[str, Any]:
        job = kwargs["Filter"]["JobName"]
        return {
            "Results": [
                {"ResultId": "dqresult-rehearsal", "JobName": job, "StartedOn": datetime.now(UTC)}
            ]
        }

    def get_data_quality_result(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "Score": 1.0,
            "RuleResults": [{"Name": f"Rule_{i}", "Result": "PASS"} for i in range(4)],
        }


@dataclass
class LambdaContext:
    """What the hooks and Powertools read of Lambda's context (the same as
    tests/lambdas/conftest.py's): Logger logs its fields, the idempotency records expire with
    the remaining time, and the hooks EventBridge invokes trust only events of the account and
    region of invoked_function_arn."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def context_in(account: str, region: str, name: str = "hook") -> LambdaContext:
    """A fresh invocation's context of function `name` in `account` and `region`."""
    return LambdaContext(
        function_name=name,
        invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:{name}",
        aws_request_id=str(uuid.uuid4()),
    )


def lambda_context(name: str = "hook") -> LambdaContext:
    """A context of function `name` in the rehearsal's home account and region."""
    return context_in(ACCOUNT, REGION, name)


def offline(*, metrics: bool = False) -> None:
    """Hooks import as in Lambda, with fake credentials and quiet logs (also for bench/): the
    stack's settings every hook gets (mlgate/infra/constructs/hooks.py), and Powertools' Metrics off
    unless `metrics` (its EMF lines would interleave the timeline)."""
    if str(LAMBDAS) not in sys.path:
        sys.path.insert(0, str(LAMBDAS))
    for key, value in {
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_NAMESPACE": "mlgate/rehearsal",
        "POWERTOOLS_METRICS_DISABLED": "false" if metrics else "true",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
        # The hooks build their idempotency stores at import (setup() creates the table).
        "IDEMPOTENCY_TABLE": "idempotency",
    }.items():
        os.environ[key] = value


def default_jobs(products: int) -> int:
    """Products rehearsed at once unless --jobs says otherwise: one per core, at most one per
    product."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, products))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="tools/rehearsal.py", description=__doc__)
    parser.add_argument(
        "manifest", nargs="?", help="a product folder or its manifest.yaml, or a folder of products"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, metavar="N",
        help="products rehearsed at once, each in a process of its own (default: one per core, "
        "at most one per product); 1 rehearses them in turn in this process",
    )  # fmt: skip
    # A worker of a --jobs run: one product, its rehearsal's exit code, no summary.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global _own_process
    _own_process = argv is None  # run as a program, not called by a test
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from mlgate.cli.commands import default_target
    from mlgate.manifest import ManifestBatchError, load_manifests
    from mlgate.manifest.loading import manifest_paths

    target = args.manifest or default_target()
    try:
        manifests = load_manifests(target)
    except ManifestBatchError as err:
        print("\n".join(err.lines), file=sys.stderr)
        return 1
    if not manifests:
        print(f"no manifest.yaml under {target}", file=sys.stderr)
        return 1
    if args.worker:
        try:
            return max(rehearse(m) for m in manifests)
        finally:
            stop_spark()
    several = len(manifests) > 1
    jobs = args.jobs if args.jobs is not None else default_jobs(len(manifests))
    if several and jobs > 1:
        failed = rehearse_in_processes(manifest_paths(target), manifests, jobs)
    else:
        failed = rehearse_in_turn(manifests)
    if several:
        verdicts = [m.product.name for m in manifests if m.product.name not in failed]
        parts = [f"passed: {', '.join(verdicts)}"] if verdicts else []
        parts += [f"FAILED: {', '.join(failed)}"] if failed else []
        print(f"Rehearsed {len(manifests)} products: {'; '.join(parts)}", flush=True)
    if failed:
        print(f"rehearsal failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def banner(name: str, number: int, total: int) -> str:
    return f"{SECTION} {name} ({number} of {total}) {SECTION}\n"


def verdict(name: str, passed: bool) -> str:
    return f"\n{name}: rehearsal {'passed' if passed else 'FAILED'}\n"


def rehearse_in_turn(manifests: list[Any]) -> list[str]:
    """Every product in this process, one after the other (imports, Spark's JVM and
    Evidently's import paid once); the names of those that failed."""
    several = len(manifests) > 1
    failed: list[str] = []
    try:
        for number, manifest in enumerate(manifests, 1):
            name = manifest.product.name
            if several:
                print(banner(name, number, len(manifests)), flush=True)
            passed = rehearse(manifest) == 0
            if not passed:
                failed.append(name)
            if several:
                print(verdict(name, passed), flush=True)
    finally:
        stop_spark()
    return failed


def worker_command(path: Path) -> list[str]:
    """The command that rehearses the product of manifest `path` in a process of its own."""
    return [sys.executable, str(Path(__file__).resolve()), "--worker", str(path)]


DURATION_FILE = "seconds"
"""Beside a product's metrics.json: how long its last rehearsal took (wall seconds)."""


def start_order(manifests: list[Any]) -> list[int]:
    """The products to start first: the longest last time (its DURATION_FILE), so that the
    longest does not start last and run alone; one never rehearsed counts as the longest (it
    may be), then the manifests' order."""

    def last_time(manifest: Any) -> float:
        try:
            return float((REPORTS / manifest.product.name / DURATION_FILE).read_text())
        except (OSError, ValueError):
            return float("inf")

    times = [last_time(m) for m in manifests]
    return sorted(range(len(manifests)), key=lambda n: -times[n])


def rehearse_in_processes(paths: list[Path], manifests: list[Any], jobs: int) -> list[str]:
    """Every product in a process of its own, `jobs` at a time, the longest last time first
    (start_order); the names of those that failed. The output is what a run in turn prints:
    each product's section whole and in the manifests' order (the first unfinished product's
    live, the others' as soon as its turn comes), its error output after it."""
    # One library thread per worker (THREAD_LIMITS): the workers already share the cores.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in THREAD_LIMITS:
        env.setdefault(key, "1")
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
        outputs = [(Path(tmp) / f"{n}.out", Path(tmp) / f"{n}.err") for n in range(len(paths))]
        running: list[Any] = []
        started: dict[int, Any] = {}
        order = start_order(manifests)

        def top_up() -> None:
            running[:] = [p for p in running if p.poll() is None]
            while len(running) < jobs and len(started) < len(paths):
                n = order[len(started)]
                with outputs[n][0].open("wb") as out, outputs[n][1].open("wb") as err:
                    process = subprocess.Popen(
                        worker_command(paths[n]),
                        stdout=out,
                        stderr=err,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        cwd=ROOT,
                    )
                started[n] = process
                running.append(process)

        try:
            for number, manifest in enumerate(manifests, 1):
                name = manifest.product.name
                print(banner(name, number, len(manifests)), flush=True)
                top_up()
                while number - 1 not in started:  # its turn to start has not come yet
                    time.sleep(0.1)
                    top_up()
                with outputs[number - 1][0].open("rb") as section:
                    process = started[number - 1]
                    while True:
                        done = process.poll() is not None
                        chunk = section.read()
                        if chunk:
                            sys.stdout.write(chunk.decode("utf-8", "replace"))
                            sys.stdout.flush()
                        if done:
                            break
                        top_up()
                        time.sleep(0.1)
                errors = outputs[number - 1][1].read_text("utf-8", "replace")
                if errors:
                    sys.stderr.write(errors)
                    sys.stderr.flush()
                passed = process.returncode == 0
                if not passed:
                    failed.append(name)
                print(verdict(name, passed), flush=True)
        finally:
            for process in started.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return failed


SECTION = "=" * 20
"""Around a product's name in the banner that opens its section of a several-product run."""


def rehearse(manifest: Any) -> int:
    """One product's rehearsal, isolated from the products before and after it in this process:
    its own moto world and temporary folder, its region, the environment as it was before, the
    hooks imported afresh (they make their clients and read their settings at import) and
    boto3's clients unpatched after it. A failure is reported and the next product still runs."""
    import traceback
    import warnings

    import moto.iam.models
    from moto import mock_aws

    global REGION, ACCOUNT
    settle()
    REGION = manifest.environments.staging.region
    ACCOUNT = manifest.environments.staging.account
    environment = dict(os.environ)
    # Hooks imported before this product (by the caller, another product, a test in the same
    # process) hold their clients and stores from that world: they are imported afresh here.
    forget_hooks()
    offline()
    # moto answers requests signed with keys it did not issue (the hooks' own credentials) as
    # its default account: the product's home account instead, so every ARN is the manifest's.
    moto_default = moto.iam.models.DEFAULT_ACCOUNT_ID
    moto.iam.models.DEFAULT_ACCOUNT_ID = ACCOUNT
    try:
        with (
            warnings.catch_warnings(),
            mock_aws(),
            tempfile.TemporaryDirectory() as tmp,
            Rehearsal(Path(tmp), manifest) as rehearsal,
        ):
            warnings.filterwarnings("ignore")
            began = time.monotonic()
            try:
                return rehearsal.run()
            finally:
                rehearsal.write_metrics(REPORTS / manifest.product.name)
                (REPORTS / manifest.product.name / DURATION_FILE).write_text(
                    f"{time.monotonic() - began:.1f}\n"
                )
    except (Exception, SystemExit) as err:  # one product's failure ends its rehearsal only
        message = str(err) if isinstance(err, SystemExit) else f"{type(err).__name__}: {err}"
        print(f"\n{manifest.product.name}: the rehearsal stopped: {message}", flush=True)
        if not isinstance(err, SystemExit):
            print(f"{manifest.product.name}:", file=sys.stderr)
            traceback.print_exc()
        return 1
    finally:
        moto.iam.models.DEFAULT_ACCOUNT_ID = moto_default
        os.environ.clear()
        os.environ.update(environment)
        forget_hooks()


GC_THRESHOLDS = (10_000, 10, 10)
"""Allocations between the youngest generation's collections (Python's default: 700): the
rehearsal allocates millions of short-lived objects."""
_own_process = False
"""Set by main(): the garbage collector is tuned in the rehearsal's own process only, not in
a caller's (a test) that runs `rehearse` in its process."""


def settle() -> None:
    """In the rehearsal's own process, what is alive now (the imported libraries, mostly)
    leaves the garbage collector's generations (gc.freeze): its full collections walked every
    module's objects each time, now only what the rehearsal made since; and collections are
    rarer (GC_THRESHOLDS). Nothing frozen is freed: a few products' garbage at most."""
    import gc

    if _own_process:
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)


@functools.cache
def real_folder(folder: str) -> Path:
    return Path(folder).resolve()


def forget_hooks() -> None:
    """Unload the hooks' modules (and their `shared` package): the next import makes their
    clients, idempotency stores and settings again, in the next product's world. Powertools
    keeps its parameter providers (each with its client and cached secrets) process-wide:
    those go too."""
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        # Each folder resolved once: resolving every module's path took seconds per call.
        if where and (real_folder(os.path.dirname(where)) / os.path.basename(where)).is_relative_to(
            LAMBDAS
        ):
            del sys.modules[name]
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # type: ignore[no-untyped-call]


_spark: Any = None
"""The run's local Spark, started by the first product's ETL and kept for the next ones."""


def product_spark() -> Any:
    """A Spark session of the product's own (its own SQL settings, temporary views and UDFs) on
    the run's one local Spark: the JVM and its SparkContext start once per run."""
    global _spark
    if _spark is None:
        from tools.local_pipeline import local_spark
        from tools.spark_classes import driver_java_options

        # A few thousand rows: one shuffle partition, so each date partition of the curated
        # data is written as one file, not one per shuffle partition (Spark's fixed cost per
        # file is most of the write); a small-data JVM, with the class archive when built; and
        # the tests' small-data settings (tests/spark_session.py: TUNING), which the rehearsal
        # test passes through PYSPARK_SUBMIT_ARGS: no adaptive re-planning, no whole-stage code
        # generation, partition folders listed by the driver. Same results; measured here, the
        # JVM's CPU for both examples' ETL 16.3 s against 16.6 to 18.4 s without them.
        _spark = local_spark(
            shuffle_partitions=1,
            **{
                "spark.driver.extraJavaOptions": driver_java_options(),
                "spark.default.parallelism": "1",
                "spark.sql.adaptive.enabled": "false",
                "spark.sql.codegen.wholeStage": "false",
                "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
            },
        )
    return _spark.newSession()


_warming: threading.Thread | None = None
"""The monitoring job's import on a thread of its own, started once per process."""


def warm_monitoring_job() -> threading.Thread:
    """Import the monitoring job (Evidently's import: some 6 s of Python) on a thread while the
    ETL waits on Spark's JVM, so the two run on both cores; `monitor` imports it again, which
    waits for this thread (Python's per-module import locks) and then costs nothing."""
    global _warming
    if _warming is None:

        def load() -> None:
            with contextlib.suppress(Exception):  # a failed import fails again in `monitor`
                import mlgate.runtime.monitoring_job.run  # noqa: F401

        _warming = threading.Thread(target=load, name="monitoring-import", daemon=True)
        _warming.start()
    return _warming


def stop_spark() -> None:
    global _spark
    if _spark is not None:
        _spark.stop()
        _spark = None


_loaders: dict[Any, Any] = {}


def shared_loader(search_paths: Any = None) -> Any:
    """botocore's create_loader, one loader per search path for the whole process: each new
    session otherwise parses its service models and endpoints.json again."""
    import botocore.loaders

    key = tuple(search_paths) if isinstance(search_paths, list) else search_paths
    if key not in _loaders:
        _loaders[key] = botocore.loaders.create_loader(search_paths)
    return _loaders[key]


class Rehearsal:
    def __init__(self, work: Path, manifest: Any) -> None:
        import boto3

        from mlgate.infra.inference_component import component_name
        from mlgate.infra.naming import Names

        self.work = work
        self.manifest = manifest
        self.names = Names.of(manifest)
        self.group = self.names.model_package_group()
        self.release_pipeline = self.names.release_pipeline()
        # The training runs whose outputs are registered: the pipeline's <prefix>/<execution>.
        self.run_prefixes = {
            v: f"training/{manifest.product.name}/rehearsal-execution-{v}" for v in (1, 2)
        }
        self.run_prefix = self.run_prefixes[1]
        self.bases: dict[int, Path] = {}
        """Each trained version's processing folder (its splits, model and evaluation)."""
        self.kpi_points: list[dict[str, Any]] = []
        """The KPI stand-ins' values, as PutMetricData calls (tools/rehearsal_metrics.py)."""
        self.used_rows = 0
        """Held-out rows already sent as traffic: each batch takes the next ones."""
        self.stand_ins: Any = None
        """The product's KPI stand-ins (tools/rehearsal_kpis.py), loaded when the run starts."""
        self.stages = [
            self.names.gate_stage(g.name)
            for g in manifest.pipeline_gates
            if g.kind.value == "manual"
        ]
        self.boto3 = boto3
        self.pipeline = Pipeline(self.stages, self.release_revision, self.release_pipeline)
        real_client = boto3.client
        real_session_client = boto3.session.Session.client
        from mlgate.infra.ml.pipeline import script_mode
        from tools.local_endpoint import LocalHost

        made: dict[str, Any] = {}

        def home_client(service: str) -> Any:
            """boto3's own client of the home account (moto), made once per product's world:
            a client costs tens of milliseconds to make, and the endpoint's queue asks for
            one per request."""
            if service not in made:
                made[service] = real_session_client(boto3._get_default_session(), service)
            return made[service]

        def read_artifact(url: str) -> bytes:
            """A model artifact from the home account's (moto) S3."""
            bucket, _, key = url.removeprefix("s3://").partition("/")
            return bytes(home_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

        self.direct_s3 = DirectS3()
        self.host = LocalHost(
            work / "endpoint", manifest.model.algorithm.value, script_mode(manifest), read_artifact
        )
        self.endpoint = Endpoint(
            lambda: home_client("sagemaker"),
            self.host,
            lambda: self.direct_s3,
            {self.names.endpoint(env): (env, manifest.env_serving(env)) for env in ENVS},
            manifest.serving.data_capture_sampling_percent,
            # The name the Serving stack gives each environment's inference component.
            {
                self.names.endpoint(env): component_name(Names.of(manifest, env))
                for env in ENVS
                if manifest.env_serving(env).inference_component is not None
            },
        )
        self.moments: list[dict[str, str]] = []
        self.alarms: dict[str, list[list[str]]] = {}
        self.evaluation: dict[str, float] = {}
        self.metrics = Metrics()

        def fake(name: str) -> Any:
            fakes = {
                "codepipeline": self.pipeline,
                "sagemaker-runtime": self.endpoint,
                "cloudwatch": self.metrics,
                "glue": Quality(home_client("glue")),
            }
            if name in fakes:
                return fakes[name]
            if name == "lambda" and self.batch is not None:
                return self.batch  # a batch environment's batch_run, invoked by the verifier
            if name == "sagemaker" and self.endpoint_mode:
                return self.endpoint
            return None

        def client(name: str, *args: Any, **kwargs: Any) -> Any:
            return fake(name) or real_client(name, *args, **kwargs)

        def own_client(name: str) -> Any:
            """What boto3.client(name) gives in this world, for the rehearsal's own calls: a
            real one made once per product's world (the hooks still make theirs)."""
            return fake(name) or home_client(name)

        self.client = own_client

        def session_client(session: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            return fake(name) or real_session_client(session, name, *args, **kwargs)

        self.endpoint_mode = False
        self.batch: Any = None
        """A batch environment's hook and jobs (tools/rehearsal_batch.py), when one is."""
        if any(manifest.is_batch(env) for env in ENVS):
            from tools.rehearsal_batch import BatchJobs

            self.batch = BatchJobs(
                manifest,
                client=own_client,
                host=self.host,
                context=context_in,
                curated=lambda: work / "processing" / "input",
                work=work,
            )
        # The hooks' clients, in their own account or under an assumed role: moto where it
        # can host the calls, the stand-ins above where it cannot.
        boto3.client = client
        boto3.session.Session.client = session_client
        self._unpatch = (real_client, real_session_client)
        # Every botocore session of this world (the hooks', moto's, an assumed role's) reads
        # its service models through one loader: parsed once per process, not per session.
        import botocore.session

        self._real_loader = botocore.session.create_loader
        botocore.session.create_loader = shared_loader
        self._remote: dict[tuple[str, str], Any] = {}
        self.posted: list[dict[str, Any]] = []

    def close(self) -> None:
        """Give boto3 back its own client factories (a later world would wrap these fakes)."""
        self.boto3.client, self.boto3.session.Session.client = self._unpatch
        import botocore.session

        botocore.session.create_loader = self._real_loader

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def moment(self, kind: str, label: str, env: str, at: Any = None) -> None:
        """A marked moment of the run (release, canary, rollback, drift, retrain)."""
        when = at.isoformat() if at is not None else now_iso()
        self.moments.append({"time": when, "kind": kind, "label": label, "environment": env})

    def write_metrics(self, folder: Path) -> Path:
        """The run's CloudWatch data as JSON, for the dashboard previews (contract below)."""
        from tools.rehearsal_metrics import document

        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "metrics.json"
        out.write_text(json.dumps(document(self), indent=1))
        return out

    def release_revision(self) -> str:
        """The S3 version id of release.json as the release pipeline's source records it."""
        head = self.client("s3").head_object(Bucket="releases", Key="release.json")
        return str(head["VersionId"])

    def name(self, env: EnvName, what: str) -> str:
        if what == "endpoint":
            return self.names.endpoint(env)
        return self.names.serving_stack(env)

    # --- the happy path ------------------------------------------------------------------------

    def run(self) -> int:
        m = self.manifest
        print(f"mlgate release rehearsal: {m.product.display_name} ({m.product.name}), offline\n")
        homes = "; ".join(
            f"{env} in account {m.environment(env).account}, {m.environment(env).region}"
            for env in ("staging", "prod")
        )
        say("Accounts", f"as the manifest names them: {homes}.")
        for env in ENVS:
            mode = m.env_serving(env).mode.value
            how = f"{mode}, all at once" if mode == "serverless" else mode
            say("Serving", f"{env} ({how}): {m.rollout_summary(env)}.")
            if hours := m.env_serving(env).off_hours_summary():
                say("Off hours", f"{env}: {hours} [simulated offline]")
        from tools.local_endpoint import version_note

        note = version_note(m.model.algorithm.value, m.model.version)
        if note:
            say("Versions", f"the endpoint runs this machine's packages: {note}; answers may "
                            "differ slightly from the container's.")  # fmt: skip
        from tools.rehearsal_kpis import StandInError, StandIns

        try:
            self.stand_ins = StandIns(m)
        except StandInError as err:
            raise SystemExit(f"rehearsal: {err}") from None
        self.setup()
        if self.monitored():
            warm_monitoring_job()
        curated = self.etl()
        report = self.train(curated)
        arn = self.register(report)
        self.approve(arn)
        self.deploy("staging", arn)
        if not self.verify("staging"):
            say("Verify staging", "the release stops at VerifyStaging, as on AWS.")
            return 1
        if self.has_quality_gate and not self.quality_gate(kpis=True):
            return 1
        for stage in self.stages:
            request = self.brief(stage)
            self.decide_from_chat(request, stage)
        self.deploy("prod", arn)
        if not self.verify("prod"):
            return 1
        self.model_card(1)
        self.audit_trail()
        self.traffic("prod", "version 1's traffic in prod")
        if self.manifest.is_batch("staging"):
            # Staging's own runs, as the manifest starts them (after an ETL run, or scheduled).
            self.traffic("staging", "staging's run of version 1")
        from tools.rehearsal_budget import BudgetAlertError, budget_alert

        try:
            budget = budget_alert(m)
        except BudgetAlertError as err:
            say("Budget", f"FAILED: {err}")
            return 1
        for line in budget:
            say("Budget", line)
        print("\nFault scenarios\n")
        if not self.faults():
            return 1
        self.train_second(curated)
        second = self.fault_transient_release()
        if second is None:
            return 1
        print("\nVersion 2: from staging to prod through its rollout\n")
        if not self.second_version(second):
            return 1
        drifted = self.drift_loop(second)
        print("\nRoll back on demand\n")
        from tools.rehearsal_rollback import play

        if not play(self, say, SIMULATED):
            return 1
        print(
            "\nRehearsal complete: the release reached prod, every fault ended safely, version "
            + ("2 reached prod through its sample run and a switch"
               if self.manifest.is_batch("prod")
               else "2 rolled out in prod as the manifest says")
            + (", drift started retraining once" if drifted else "; no environment is "
               "monitored for drift (serverless endpoints capture no traffic)")
            + "; prod was rolled back to version 1 from chat, and the command put version 2 "
            "back."
        )  # fmt: skip
        return 0

    @property
    def has_quality_gate(self) -> bool:
        return any(g.kind.value == "automated" for g in self.manifest.pipeline_gates)

    def account_client(self, env: EnvName, service: str) -> Any:
        """A client in the environment's own account: under its deploy role when that account
        is not the home account (moto keeps accounts apart by credentials, as AWS does)."""
        from mlgate.infra.naming import role_arn

        if not self.manifest.is_remote(env):
            return self.client(service)
        if (env, service) not in self._remote:  # one role session per environment and service
            role = role_arn(self.manifest.environment(env).account, self.names.deploy_role(env))
            creds = self.client("sts").assume_role(RoleArn=role, RoleSessionName="rehearsal")
            c = creds["Credentials"]
            self._remote[env, service] = self.boto3.session.Session(
                aws_access_key_id=c["AccessKeyId"],
                aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"],
                region_name=REGION,
            ).client(service)
        return self._remote[env, service]

    def setup(self) -> None:
        # us-east-1 takes no location constraint; every other region requires one.
        where = (
            {}
            if REGION == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
        )
        for bucket in ("artifacts", "releases"):
            self.client("s3").create_bucket(Bucket=bucket, **where)
        # Versioned, as the stack makes it: each execution's source is a version of
        # release.json, and its gates' briefs read that version.
        self.client("s3").put_bucket_versioning(
            Bucket="releases", VersioningConfiguration={"Status": "Enabled"}
        )
        self.client("dynamodb").create_table(
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
        self.client("dynamodb").create_table(
            TableName="idempotency",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        sm = self.client("secretsmanager")
        webhook = sm.create_secret(Name="webhook", SecretString="https://hooks.slack.test/x")["ARN"]
        slack_app = {"signing_secret": SIGNING_SECRET, "team_id": TEAM_ID, "app_id": APP_ID}
        signing = sm.create_secret(Name="signing", SecretString=json.dumps(slack_app))["ARN"]
        topics = {
            g.name: self.client("sns").create_topic(Name=f"brief-{g.name}")["TopicArn"]
            for g in self.manifest.pipeline_gates
            if g.kind.value == "manual"
        }
        from mlgate.infra.cards import card_prefix
        from mlgate.infra.gates import encoded, gate_context, thresholds

        context = gate_context(
            self.manifest,
            brief_topics=topics,
            dashboard_url="https://console.aws.amazon.com/cloudwatch",
        )
        os.environ.update(
            {
                "MODEL_PACKAGE_GROUP": self.group,
                "ARTIFACT_BUCKET": "artifacts",
                "TRAINING_PREFIX": f"training/{self.manifest.product.name}",
                "RELEASED_PREFIX": self.names.released_prefix(),
                "RELEASE_BUCKET": "releases",
                "RELEASE_KEY": "release.json",
                "RELEASE_PIPELINE": self.release_pipeline,
                "AUDIT_TABLE": "audit",
                "MLGATE_CONTEXT": encoded(context),
                "MLGATE_THRESHOLDS": json.dumps(thresholds(self.manifest)),
                "SLACK_WEBHOOK_SECRET_ARN": webhook,
                "SLACK_SIGNING_SECRET_ARN": signing,
                "DQ_JOB": self.names.quality_job(),
                "SAMPLE_PAYLOAD": self.manifest.sample_record,
                "SMOKE_REQUESTS": str(self.manifest.serving.smoke_requests),
                "MODEL_CARD_PREFIX": card_prefix(self.manifest),
            }
        )
        template: dict[str, Any] = {
            "Parameters": {
                k: {"Type": "String"}
                for k in (
                    "ModelPackageArn",
                    "ModelDataUrl",
                    "BaselineStatisticsUri",
                    "BaselineConstraintsUri",
                )
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
        if self.batch is not None:
            self.batch.catalog()
        for env in ("staging", "prod"):
            template["Resources"]["Marker"]["Properties"]["Name"] = f"/serving/{env}"
            # The Serving stack of an environment with a shadow test takes the shadow variant.
            shadowed = self.manifest.env_serving(env).shadow is not None
            shadow = {"ShadowModelDataUrl": {"Type": "String"}} if shadowed else {}
            parameters = {**template["Parameters"], **shadow}
            self.account_client(env, "cloudformation").create_stack(
                StackName=self.name(env, "stack"),
                TemplateBody=json.dumps({**template, "Parameters": parameters}),
                Parameters=[{"ParameterKey": k, "ParameterValue": "none"} for k in parameters],
            )

    def etl(self) -> Path:
        from tools.local_pipeline import curate_locally

        spark = product_spark()
        out = self.work / "processing" / "input"
        result = curate_locally(spark, self.manifest, out, rows=ROWS, seed=42)
        reasons = ", ".join(f"{n} {r}" for r, n in result.quarantine_reasons.items()) or "none"
        sources = ", ".join(f"{s.name} ({s.format})" for s in self.manifest.data.sources)
        say(
            "ETL",
            f"Glue workflow {SIMULATED}: crawl; the product's transform "
            f"({self.manifest.data.transform}) ran for real on local Spark over {sources}: "
            f"{result.curated} rows curated, {result.quarantined} quarantined "
            f"(reasons: {reasons}); data-quality rules checked by Glue DQ {SIMULATED}.",
        )
        spark.catalog.clearCache()  # what the transform cached is the run's, not the session's
        return out

    def train(self, curated: Path) -> dict[str, Any]:
        from tools.local_pipeline import train_locally

        # The manifest's own hyper-parameters, as the training job would use them.
        with self.tracked(1):
            run = train_locally(self.manifest, curated.parent, quick=False)
        self.bases[1] = run.base
        section = self.manifest.model.problem_type.report_section
        report = run.report
        metrics = {k: round(v["value"], 4) for k, v in report[section].items()}
        model = self.manifest.model
        how = (
            f"{model.code.train} ran locally as in the {model.algorithm.value} container"
            if model.algorithm.script_mode
            else "XGBoost trained locally with the manifest's hyper-parameters"
        )
        say(
            "Training",
            f"SageMaker Pipeline {SIMULATED} with the real scripts: preprocess "
            f"({model.code.preprocess or 'mlgate default'}) split {run.counts}; {how}; "
            f"evaluate ({model.code.evaluate or 'mlgate default'}) on the test split: "
            f"{metrics}.",
        )
        for m in self.manifest.metrics.model_metrics:
            if not m.met_by(metrics[m.name.value]):
                say(
                    "Training",
                    f"{m.name.value} {metrics[m.name.value]} misses its threshold "
                    f"{m.threshold}: the pipeline's FailStep would stop here; the rehearsal "
                    "continues with the registered metrics to show the gates.",
                )
        self.show_run(1)
        self.test_split = curated.parent / "test" / "test.csv"
        self.baseline = curated.parent / "baseline" / "baseline.csv"
        self.upload_run(1, run.base, report)
        self.evaluation = {k: float(v) for k, v in metrics.items()}
        self.evaluated_at = now_iso()
        return report

    # --- experiment tracking: a local MLflow store stands in for the manifest's server --------

    def execution_of(self, version: int) -> str:
        return f"rehearsal-{self.manifest.product.name}-v{version}"

    @contextlib.contextmanager
    def tracked(self, version: int) -> Iterator[None]:
        """The training of `version` with the jobs' tracking environment (the manifest's
        `tracking`), its server a local file store under reports/rehearsal/<product>/mlruns;
        without tracking, as it was."""
        from tools import rehearsal_tracking

        if not rehearsal_tracking.declared(self.manifest):
            yield
            return
        # mlflow.autolog() (script-mode training) installs import hooks that take a lock of
        # their own inside every import: an import on another thread at that moment deadlocks
        # with it (seen with the monitoring job's import when the ETL was quick).
        if _warming is not None:
            _warming.join()
        store = REPORTS / self.manifest.product.name / "mlruns"
        if version == 1:  # this rehearsal's runs only: the last rehearsal's go
            import shutil

            shutil.rmtree(store, ignore_errors=True)
        from tools.local_pipeline import environment

        with environment(
            rehearsal_tracking.environment(self.manifest, store, self.execution_of(version))
        ):
            yield

    def show_run(self, version: int) -> None:
        from tools import rehearsal_tracking

        if not rehearsal_tracking.declared(self.manifest):
            return
        store = REPORTS / self.manifest.product.name / "mlruns"
        for line in rehearsal_tracking.summary(self.manifest, store, self.execution_of(version)):
            say("Tracking", f"version {version}: {line}")

    def run_metadata(self, version: int) -> dict[str, str]:
        from tools import rehearsal_tracking

        if not rehearsal_tracking.declared(self.manifest) or version not in self.bases:
            return {}
        return rehearsal_tracking.version_metadata(self.bases[version])

    def upload_run(self, version: int, base: Path, report: dict[str, Any]) -> None:
        """A training run's outputs where the training pipeline writes them
        (<prefix>/<execution>/): the quality gate reads the test split beside the registered
        evaluation report; the monitoring baseline (the payload columns of the training split)
        is registered with the version; the endpoint serves its model artifact."""
        prefix = self.run_prefixes[version]
        s3 = self.client("s3")
        s3.put_object(Bucket="artifacts", Key=f"{prefix}/evaluation/evaluation.json",
                      Body=json.dumps(report))  # fmt: skip
        for key in ("test/test.csv", "baseline/baseline.csv", "model/model.tar.gz"):
            s3.put_object(Bucket="artifacts", Key=f"{prefix}/{key}", Body=(base / key).read_bytes())

    def train_second(self, curated: Path) -> None:
        """Version 2, as a later training run makes it: the same training on another sample of
        the rows (tools/local_pipeline.py: train_another_version), evaluated on the same test
        split; its outputs where that run writes them."""
        from tools.local_pipeline import SECOND_VERSION_SPLITS, train_another_version

        section = self.manifest.model.problem_type.report_section
        # The pipeline's Check step registers only a run that meets every model metric's
        # threshold: a sample whose model misses one is a run stopped before registration.
        for seed in SECOND_VERSION_SEEDS:
            with self.tracked(2):
                run = train_another_version(
                    self.manifest, curated.parent, self.work / f"version-2-seed-{seed}", seed=seed
                )
            report = run.report
            metrics = {k: round(v["value"], 4) for k, v in report[section].items()}
            missed = [m.name.value for m in self.manifest.metrics.model_metrics
                      if not m.met_by(metrics[m.name.value])]  # fmt: skip
            if not missed:
                break
        self.bases[2] = run.base
        self.show_run(2)
        self.upload_run(2, run.base, report)
        tried = SECOND_VERSION_SEEDS.index(seed) + 1
        say(
            "Training",
            f"version 2, a later run {SIMULATED}: the same training on a seeded sample (seed "
            f"{seed}) of {run.counts['train']} rows of the {' and '.join(SECOND_VERSION_SPLITS)}"
            f" splits; evaluate on the same test split: {metrics} (version 1: "
            f"{self.evaluation})"
            + (f"; {tried - 1} earlier sample(s) missed a threshold and stopped at the "
               "pipeline's Check step." if tried > 1 else ".")
            + (f" It misses {', '.join(missed)}: the gates will stop it." if missed else ""),
        )  # fmt: skip

    def register(self, report: dict[str, Any]) -> str:
        self.client("sagemaker").create_model_package_group(ModelPackageGroupName=self.group)
        arn = self.register_version(1, "PendingManualApproval")
        say("Registry", f"model version registered as PendingManualApproval: {arn}")
        return arn

    def register_version(self, version: int, status: str) -> str:
        """A training run's version in the registry, as the pipeline's RegisterModel step
        registers it: its model artifact, evaluation report and monitoring baseline."""
        from mlgate.runtime.monitoring_job.sources import BASELINE_PROPERTY

        model = self.manifest.model
        prefix = self.run_prefixes[version]
        arn = self.client("sagemaker").create_model_package(
            ModelPackageGroupName=self.group,
            ModelApprovalStatus=status,
            CustomerMetadataProperties={
                BASELINE_PROPERTY: f"s3://artifacts/{prefix}/baseline/baseline.csv",
                # The run evaluate logged (mlflow-run.json), as the register step stores it.
                **(self.run_metadata(version)),
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://artifacts/{prefix}/evaluation/evaluation.json",
                    }
                }
            },
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": f"{model.algorithm.value}:{model.version}",
                        "ModelDataUrl": f"s3://artifacts/{prefix}/model/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        return str(arn)

    def approval_event(self, arn: str) -> dict[str, Any]:
        """EventBridge's "SageMaker Model Package State Change" for an approved version, from
        the account and region the version lives in (its ARN's, as moto made it)."""
        region, account = arn.split(":")[3:5]
        return {
            "version": "0",
            "id": "rehearsal-approval",
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "account": account,
            "region": region,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resources": [arn],
            "detail": {
                "ModelPackageGroupName": self.group,
                "ModelPackageVersion": 1,
                "ModelPackageArn": arn,
                "ModelApprovalStatus": "Approved",
                "LastModifiedBy": {"UserProfileName": self.manifest.product.owners.ml_lead},
            },
        }

    def approve(self, arn: str) -> None:
        from release import handler as release

        sm = self.client("sagemaker")
        # moto clears CustomerMetadataProperties on every update (AWS keeps them): pass them on.
        kept = sm.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties")
        sm.update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus="Approved",
            **({"CustomerMetadataProperties": kept} if kept else {}),
        )  # fmt: skip
        event = self.approval_event(arn)
        lead = self.manifest.contact(self.manifest.product.owners.ml_lead)
        say(
            "Approval",
            f"{lead.name} (ML lead) approves the version in the registry; EventBridge "
            "delivers 'SageMaker Model Package State Change' (Approved) to the release hook.",
        )
        result = release.handler(event, self.context_of(event, "release"))
        body = self.client("s3").get_object(Bucket="releases", Key="release.json")["Body"]
        written = json.loads(body.read())
        say(
            "Release",
            f"the version's model and baselines copied to {written['model_data_url']} and beside "
            f"it; release.json written (version {written['model_version']}, approved by "
            f"{written['approved_by']} as the registry records it, metrics "
            f"{written['metrics']}); release pipeline started "
            f"({result['execution']}) {SIMULATED} for CodePipeline itself.",
        )
        self.release = written
        again = release.handler(event, self.context_of(event, "release"))
        say("Release", f"the same approval delivered again: {again['reason']} (idempotent).")

    def job(self, continuation: str | None = None, **params: Any) -> dict[str, Any]:
        """A job of the release pipeline's execution, held by CodePipeline (the stand-in), and
        the event Lambda receives for it: the hooks read its job id only."""
        job = str(uuid.uuid4())  # CodePipeline's job ids are UUIDs
        self.pipeline.hold(job, params, continuation)
        return {
            "CodePipeline.job": {
                "id": job,
                "accountId": ACCOUNT,
                "data": {
                    "actionConfiguration": {
                        "configuration": {"UserParameters": json.dumps(params)}
                    },
                    "inputArtifacts": [
                        {
                            "name": "Release",
                            "location": {
                                "type": "S3",
                                "s3Location": {
                                    "bucketName": "releases",
                                    "objectKey": "release.json",
                                },
                            },
                        }
                    ],
                    "outputArtifacts": [],
                    "artifactCredentials": {
                        "accessKeyId": "rehearsal",
                        "secretAccessKey": "rehearsal",
                        "sessionToken": "rehearsal",
                    },
                },
            }
        }

    def roles(self, env: EnvName, task: str) -> dict[str, str]:
        """The role a release hook assumes in an environment of another account, as the
        release pipeline passes it."""
        from mlgate.infra.naming import role_arn

        if not self.manifest.is_remote(env):
            return {}
        name = self.names.deploy_role(env) if task == "deploy" else self.names.verify_role(env)
        return {"role_arn": role_arn(self.manifest.environment(env).account, name)}

    def deploy(self, env: EnvName, arn: str) -> bool:
        """The deployer hook's two jobs, then the endpoint's rollout: False when a rollback
        alarm sent the traffic back to the version before."""
        from deployer import handler as deployer

        from mlgate.infra.naming import role_arn

        stack = self.name(env, "stack")
        service_role = role_arn(self.manifest.environment(env).account,
                                self.names.serving_cfn_role(env))  # fmt: skip
        params = {"environment": env, "stack": stack, "service_role": service_role,
                  **self.roles(env, "deploy")}  # fmt: skip
        first = deployer.handler(self.job(**params), lambda_context("deployer"))
        # CodePipeline's next job carries the token the deployer reported with its success.
        event = self.job(self.continuation(), **params)
        done = deployer.handler(event, lambda_context("deployer"))
        if first["result"] != "in_progress" or done["result"] != "succeeded":
            raise SystemExit(f"rehearsal: the {env} deployment did not go through: {first}, {done}")
        described = self.account_client(env, "cloudformation").describe_stacks(StackName=stack)
        served = {
            p["ParameterKey"]: p["ParameterValue"] for p in described["Stacks"][0]["Parameters"]
        }
        where = (
            f" in account {self.manifest.environment(env).account} through its deploy role"
            if self.manifest.is_remote(env)
            else ""
        )
        if self.manifest.is_batch(env):
            url = served["ModelDataUrl"]
            model = self.batch.release(env, self.version_of(url), url, served["ModelPackageArn"])
            say(
                f"Deploy {env}",
                f"deployer hook{where}: {first['reason']}; then {done['reason']}. "
                f"CloudFormation ran for real under moto; it replaces the batch model with one "
                f"of the released artifact ({model}) and writes the live model parameters "
                f"{SIMULATED}: {self.manifest.rollout_summary(env)}.",
            )
            self.moment("release", f"{env} scores with {served['ModelDataUrl']}", env)
            return True
        endpoint = self.name(env, "endpoint")
        before = self.endpoint.serving.get(endpoint)
        new = served["ModelDataUrl"]
        played = before is not None and before != new and len(self.rollout_plan(env)) > 1
        say(
            f"Deploy {env}",
            f"deployer hook{where}: {first['reason']}; then {done['reason']}. "
            f"CloudFormation ran for real under moto; the endpoint's "
            + (
                "rollout (serverless, all at once: "
                if self.endpoint.mode(endpoint) == "serverless"
                else "rolling update ("
                if endpoint in self.endpoint.components
                else "blue/green rollout ("
            )
            + f"{self.manifest.rollout_summary(env)}) is {SIMULATED}"
            + (", its traffic played below with both versions' real models." if played else "."),
        )
        if played and before is not None and not self.roll_out(env, before, new):
            return False
        # The endpoint serves the model artifact the stack's ModelDataUrl names.
        self.endpoint.serving[endpoint] = new
        self.moment("release", f"{env} serves {new}", env)
        return True

    def continuation(self) -> str:
        """The continuation token of the last PutJobSuccessResult, as the deployer wrote it."""
        for call, kwargs in reversed(self.pipeline.calls):
            if call == "put_job_success_result":
                if "continuationToken" not in kwargs:
                    raise SystemExit(f"rehearsal: the deployer reported no continuation: {kwargs}")
                return str(kwargs["continuationToken"])
        raise SystemExit("rehearsal: the deployer reported no result to CodePipeline")

    @staticmethod
    def context_of(event: dict[str, Any], name: str) -> LambdaContext:
        """The context of a function in the account and region an EventBridge event names (the
        account and region of the rule that delivered it)."""
        return context_in(event["account"], event["region"], name)

    def verify(self, env: EnvName) -> bool:
        from deploy_verifier import handler as verifier

        if self.manifest.is_batch(env):
            return self.verify_batch(env)
        self.endpoint_mode = True
        params = {
            "environment": env,
            "endpoint": self.name(env, "endpoint"),
            **self.roles(env, "verify"),
        }
        endpoint, cold = params["endpoint"], len(self.endpoint.cold_starts)
        result: dict[str, str] = verifier.handler(
            self.job(**params), lambda_context("deploy_verifier")
        )
        if result["result"] == "in_progress":
            # An asynchronous endpoint: CodePipeline runs the action again with the token the
            # verifier left, once the endpoint has processed the queued sample.
            served = self.endpoint.serving.get(endpoint)
            say(f"Queue {env}", f"the deploy verifier checked that {endpoint} serves {served}, "
                "queued its sample (InvokeEndpointAsync) and reported in progress "
                f"({result['reason']}); CodePipeline calls it again with its continuation "
                "token.")  # fmt: skip
            self.process_queue(env)
            event = self.job(self.continuation(), **params)
            result = verifier.handler(event, lambda_context("deploy_verifier"))
        self.endpoint_mode = False
        for start in self.endpoint.cold_starts[cold:]:
            say(f"Cold start {env}", f"the first request to {endpoint} after the release "
                f"started a serverless copy of the model {SIMULATED} for the fleet: the "
                f"container loaded in {start.setup_us / 1000:.0f} ms in this process "
                "(ModelSetupTime).")  # fmt: skip
        say(
            f"Verify {env}",
            f"{result['result']}: {result['reason']} ({SERVED}).",
        )
        return result["result"] == "succeeded"

    def batch_checks(self, env: EnvName) -> dict[str, Any]:
        """A batch environment's checks, as the release pipeline passes them (the rehearsal's
        artifact bucket)."""
        from mlgate.infra.batch_settings import batch_checks

        checks = batch_checks(self.manifest, env)
        assert checks is not None  # a batch environment's
        return {**checks, "bucket": "artifacts"}

    def verify_batch(self, env: EnvName) -> bool:
        """The deploy verifier on a batch environment: it starts the release's sample run
        (batch_run, invoked), SageMaker runs its jobs (here, in this process), and the
        verifier's continuation reads the run's record."""
        from deploy_verifier import handler as verifier

        params: dict[str, Any] = {
            "environment": env,
            "batch": self.batch_checks(env),
            **self.roles(env, "verify"),
        }
        result: dict[str, str] = verifier.handler(
            self.job(**params), lambda_context("deploy_verifier")
        )
        if result["result"] == "in_progress":
            ran = self.batch.run(env)
            say(
                f"Sample run {env}",
                f"the deploy verifier started the release's sample run and reported in progress "
                f"({result['reason']}); its jobs ran here, the real code on the real model: "
                f"{', '.join(ran) or 'none'} (instances and their start-up {SIMULATED}).",
            )
            event = self.job(self.continuation(), **params)
            result = verifier.handler(event, lambda_context("deploy_verifier"))
        say(f"Verify {env}", f"{result['result']}: {result['reason']}.")
        return result["result"] == "succeeded"

    def process_queue(self, env: EnvName) -> None:
        """The environment's asynchronous endpoint processes its backlog (the stand-in's
        `drain`): woken from zero instances when the manifest scales it to zero."""
        endpoint = self.name(env, "endpoint")
        waiting = self.endpoint.pending(endpoint)
        if not waiting:
            return
        serving = self.manifest.env_serving(env)
        oldest = time.time() - min(q.queued_at for q in waiting)
        done = self.endpoint.drain(endpoint)
        failed = sum(q.failed for q in done)
        wake = (
            f"the backlog woke it from 0 instances {SIMULATED} (HasBacklogWithoutCapacity, "
            f"then 1 x {serving.instance_type} starting: minutes on AWS); "
            if serving.async_settings.scale_to_zero
            else ""
        )
        say(
            f"Queue {env}",
            f"{len(done)} request(s) queued on {endpoint}: {wake}the product's model answered "
            f"each in-process: {len(done) - failed} result object(s) written under "
            f"async/{env}/output/, {failed} failure object(s) under async/{env}/failures/ "
            f"(the oldest waited {oldest * 1000:.0f} ms here).",
        )

    def quality_gate(self, kpis: bool = False) -> bool:
        """The hook's smoke load reads the version's real test split (moto S3); the endpoint
        that answers it is the stand-in, so latencies are this machine's, not a fleet's.
        `kpis`: the KPI stand-ins are computed on its answers."""
        if self.manifest.is_batch("staging"):
            from quality_gate import handler as batch_gate

            job = self.job(batch=self.batch_checks("staging"))
            outcome: dict[str, str] = batch_gate.handler(job, lambda_context("quality_gate"))
            say("Quality gate", f"{outcome['reason']} (the sample run's outputs, scored here).")
            if kpis:
                self.batch.kpis(self, "staging", "the release's sample run")
            return outcome["result"] == "succeeded"
        self.endpoint_mode = True
        # The hook makes its SageMaker client at import: the endpoint stand-in's, in this mode.
        from quality_gate import handler as gate

        # An asynchronous staging endpoint: between two of the gate's looks for its results,
        # the endpoint processes the queued load (instead of the gate's sleep).
        gate.pause = lambda seconds: self.process_queue("staging")
        job = self.job(endpoint=self.name("staging", "endpoint"))
        mark = len(self.host.invocations)
        result: dict[str, str] = gate.handler(job, lambda_context("quality_gate"))
        self.endpoint_mode = False
        say(
            "Quality gate",
            f"{result['reason']} ({SERVED}; latencies measured in-process on this machine: the "
            "model's own code, not an instance's network or queueing).",
        )
        if not self.smoke_answers_match(self.host.invocations[mark:]):
            return False
        if kpis:
            payloads, _ = self.held_out()
            where = {p: k for k, p in enumerate(payloads)}
            answered = [i for i in self.host.invocations[mark:] if i.status == 200]
            self.score_kpis("staging", "the quality gate's smoke load",
                            [where[i.request] for i in answered],
                            [float(i.answer.split(",")[0]) for i in answered])  # fmt: skip
        return result["result"] == "succeeded"

    def smoke_answers_match(self, load: list[Any]) -> bool:
        """The smoke load's answers against the evaluation's: the same rows scored by the model
        as evaluate loads it (the serving path must give what was evaluated), and the
        answers' spread against the whole test split's predictions."""
        import numpy as np

        from mlgate.runtime.ml.scripts.evaluate import load_predictor

        answered = [i for i in load if i.status == 200]
        if not answered:
            say("Quality gate", "the smoke load got no answer to compare with the evaluation.")
            return False
        test = np.loadtxt(self.test_split, delimiter=",", ndmin=2)
        problem = self.manifest.model.problem_type.value
        predict = load_predictor(self.served_base("staging") / "model", problem)
        evaluated = np.asarray(predict(test[:, 1:]), dtype=float)
        evaluated = evaluated if evaluated.ndim == 1 else evaluated.argmax(axis=1)
        rows = {line.split(",", 1)[1]: k for k, line in enumerate(
            self.test_split.read_text().splitlines())}  # fmt: skip
        served = np.asarray([float(i.answer.split(",")[0]) for i in answered])
        expected = np.asarray([evaluated[rows[i.request]] for i in answered])
        worst = float(np.max(np.abs(served - expected)))
        tolerance = 0.01 * max(1.0, float(np.max(np.abs(expected))))
        quantiles = (10, 50, 90)

        def spread(values: Any) -> str:
            q = ", ".join(f"p{p} {np.percentile(values, p):.4g}" for p in quantiles)
            return f"mean {np.mean(values):.4g} ({q})"

        say(
            "Quality gate",
            f"the {len(served)} smoke answers: {spread(served)}; the evaluation's predictions "
            f"on the {len(evaluated)} test rows: {spread(evaluated)}; each answer against "
            f"evaluate's prediction for its row: largest difference {worst:.3g}"
            + (" (agrees)." if worst <= tolerance else f", above {tolerance:.3g}: the serving "
               "path does not answer what was evaluated."),
        )  # fmt: skip
        return worst <= tolerance

    def notification(self, stage: str, token: str | None = None) -> dict[str, Any]:
        """CodePipeline's approval notification for a gate, as SNS delivers it to the notifier.

        The Slack webhook is outside this machine: posts are kept in `self.posted`."""

        def post(webhook_url: str, message: dict[str, Any]) -> int:
            self.posted.append(message)
            return 200

        from shared import slack

        slack.post = post
        hours = next(
            g.timeout_hours
            for g in self.manifest.pipeline_gates
            if g.name.replace("-", "") == stage.lower()
            or stage == "".join(p.capitalize() for p in g.name.split("-"))
        )
        expires = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(time.time() + hours * 3600))
        message = {
            "region": REGION,
            "consoleLink": "https://console.aws.amazon.com/codepipeline",
            "approval": {
                "pipelineName": self.release_pipeline,
                "stageName": stage,
                "actionName": "Approve",
                "token": token or f"token-{stage}",
                "expires": expires,
            },
        }
        # The SNS record Lambda receives, whole, as AWS documents it
        # (https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html).
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:brief-{stage}"
        subscription = f"{topic}:{uuid.uuid5(uuid.NAMESPACE_URL, topic)}"
        sns = f"https://sns.{REGION}.amazonaws.com"
        return {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": subscription,
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": str(uuid.uuid4()),
                        "TopicArn": topic,
                        "Subject": f"APPROVAL NEEDED: AWS CodePipeline {self.release_pipeline}",
                        "Message": json.dumps(message),
                        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                        "SignatureVersion": "1",
                        "Signature": base64.b64encode(b"rehearsal-signature").decode(),
                        "SigningCertUrl": f"{sns}/SimpleNotificationService-rehearsal.pem",
                        "UnsubscribeUrl": f"{sns}/?Action=Unsubscribe&SubscriptionArn="
                        f"{subscription}",
                        "MessageAttributes": {},
                    },
                }
            ]
        }

    def brief(self, stage: str) -> str:
        from gate_notifier import handler as notifier

        result = notifier.handler(self.notification(stage), lambda_context("gate_notifier"))
        chat = self.posted[-1]["blocks"][1]["text"]["text"]
        say(
            stage,
            f"CodePipeline waits at {stage}; the gate notifier posted the evidence brief to "
            f"chat (Slack webhook {SIMULATED}) and mailed it:",
        )
        print(textwrap.indent(chat, " " * 26))
        return str(result["request_id"])

    def click(
        self, request: str, user: str, secret: str = SIGNING_SECRET, action: str = "approve"
    ) -> dict[str, Any]:
        """A signed click of a chat button (`action`: approve, reject, or rollback) whose value
        is `request`, as the gate callback's function URL receives it."""
        from gate_callback import handler as callback

        from shared import slack

        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "api_app_id": APP_ID,
            "user": {"id": user, "name": user},
            "actions": [{"action_id": action, "block_id": f"gate:{request}", "value": request}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        moment = time.time()
        now = str(int(moment))
        api = "rehearsal0callback"
        # A Lambda function URL request (payload format 2.0, as AWS documents it:
        # https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads),
        # as Slack's POST arrives.
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/x-www-form-urlencoded",
                "x-slack-request-timestamp": now,
                "x-slack-signature": slack.sign(secret, now, body),
            },
            "requestContext": {
                "accountId": "anonymous",
                "apiId": api,
                "domainName": f"{api}.lambda-url.{REGION}.on.aws",
                "domainPrefix": api,
                "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "Slackbot 1.0"},
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(moment)),
                "timeEpoch": int(moment * 1000),
            },
            "body": base64.b64encode(body.encode()).decode(),
            "isBase64Encoded": True,
        }  # fmt: skip
        return dict(callback.handler(event, lambda_context("gate_callback")))

    def gate_of(self, stage: str) -> Any:
        return next(g for g in self.manifest.gates if self.names.gate_stage(g.name) == stage)

    def decide_from_chat(self, request: str, stage: str) -> None:
        """The gate's approver clicks Approve; every one of them in turn when the gate needs
        them all (`requires: all`: CodePipeline hears only after the last)."""
        gate = self.gate_of(stage)
        clicking = gate.approvers if gate.requires == "all" else gate.approvers[:1]
        for contact in clicking:
            approver = self.manifest.contact(contact)
            answer = self.click(request, approver.slack_user_id or "")
            text = json.loads(answer["body"])["text"]
            say(
                stage,
                f"{approver.name} clicks Approve in chat; signed callback → HTTP "
                f"{answer['statusCode']}: {text}",
            )

    def model_card(self, version: int) -> None:
        """The version's SageMaker Model Card through its statuses, by the real model card hook
        (tools/rehearsal_cards.py): registered, reviewed at the first manual gate, live."""
        from tools.rehearsal_cards import play_card

        lines = play_card(self.manifest, version=version, execution=EXECUTION,
                          account=ACCOUNT, region=REGION)  # fmt: skip
        for line in lines:
            say("Model card", line)

    def audit_trail(self) -> None:
        from shared.audit import AuditTrail

        items = AuditTrail(self.client("dynamodb"), "audit").events(
            self.release_pipeline, EXECUTION
        )
        say("Audit", f"{len(items)} gate events recorded for this release:")
        for i in sorted(items, key=lambda i: i["sk"]):
            print(
                f"{'':26}{i['event']:<12} {i['gate']:<18} {i['decision'] or '-':<9} "
                f"{i['who'][:30]:<30} evidence {i['evidence_sha256'][:12] or '-'}"
            )

    # --- traffic, KPIs and the second version ---------------------------------------------------

    def held_out(self) -> tuple[list[str], Any]:
        """The test split: each row's payload as a request body, and the rows (label first)."""
        import numpy as np

        if not hasattr(self, "_held_out"):
            lines = self.test_split.read_text().splitlines()
            rows = np.loadtxt(self.test_split, delimiter=",", ndmin=2)
            self._held_out = ([line.split(",", 1)[1] for line in lines], rows)
        return self._held_out

    def next_rows(self, count: int) -> list[int]:
        """The next `count` held-out rows not yet sent as traffic (from the start again once
        all were), after the quality gate's smoke load (the split's first rows)."""
        payloads, _ = self.held_out()
        first = self.manifest.serving.smoke_requests if self.has_quality_gate else 0
        span = max(len(payloads) - first, 1)
        taken = [first + (self.used_rows + k) % span for k in range(count)]
        self.used_rows += count
        return [k % len(payloads) for k in taken]

    def version_of(self, url: str) -> int:
        """The released version whose model artifact `url` is (0: none the rehearsal made)."""
        for version in self.bases:
            if url == f"s3://artifacts/{self.names.released_prefix(version)}/model.tar.gz":
                return version
        return 0

    def served_base(self, env: EnvName) -> Path:
        """The processing folder of the version the environment's endpoint serves."""
        url = self.endpoint.serving.get(self.name(env, "endpoint"), "")
        return self.bases.get(self.version_of(url), self.bases[1])

    def score_kpis(self, env: EnvName, what: str, rows: list[int], answers: list[float]) -> None:
        """The KPI stand-ins on held-out `rows` and the model's `answers` to them: printed, and
        a point each in the KPI's series (namespace, metric_name, Product/Environment, as the
        dashboard's KPI widget reads it)."""
        from tools.rehearsal_kpis import StandInError, scored_batch

        if self.stand_ins is None or not self.stand_ins.kpis or not rows:
            return
        _, held = self.held_out()
        try:
            batch, prediction = scored_batch(self.manifest, held[rows], answers)
        except StandInError as err:
            raise SystemExit(f"rehearsal: {err}") from None
        self.report_kpis(env, f"{what} ({len(rows)} held-out rows", batch, prediction,
                         "the held-out split")  # fmt: skip

    def report_kpis(
        self, env: EnvName, what: str, batch: Any, prediction: str, source: str
    ) -> None:
        """The KPI stand-ins on a scored `batch` (`what` opens its description; `source` says
        where its rows come from): printed, and a point each in the KPI's series."""
        from tools.rehearsal_kpis import StandInError

        if self.stand_ins is None or not self.stand_ins.kpis:
            return
        try:
            values = self.stand_ins.values(batch, prediction)
        except StandInError as err:
            raise SystemExit(f"rehearsal: {err}") from None
        at = datetime.now(UTC)
        dimensions = [{"Name": "Product", "Value": self.manifest.product.name},
                      {"Name": "Environment", "Value": env}]  # fmt: skip
        shown = []
        for kpi, value in values:
            word = "at most" if kpi.direction.value == "at_most" else "at least"
            if value != value:  # NaN: the batch holds nothing to measure the KPI on
                shown.append(f"{kpi.name}: no value on this batch")
                continue
            self.kpi_points.append({"Namespace": kpi.namespace, "MetricData": [{
                "MetricName": kpi.metric_name, "Dimensions": dimensions, "Timestamp": at,
                "Value": value}]})  # fmt: skip
            shown.append(f"{kpi.name} {value:.4g} {kpi.unit} (target {word} {kpi.target:g})")
        say(
            "KPI stand-in",
            f"{env}, {what}, the model's real answers; the product's "
            f"{self.stand_ins.source}): {'; '.join(shown)} [offline, from {source}].",
        )

    def traffic(self, env: EnvName, what: str, count: int = TRAFFIC) -> None:
        """Held-out rows sent to the environment's endpoint one request each, as the product's
        clients send them; the KPI stand-ins on the answers."""
        from botocore.exceptions import ClientError
        from threadpoolctl import threadpool_limits

        from tools.rehearsal_canary import spread

        if self.manifest.is_batch(env):
            self.batch.scheduled(self, env, what)
            return
        payloads, _ = self.held_out()
        endpoint = self.name(env, "endpoint")
        self.host.container(self.endpoint.serving[endpoint])  # loaded before it is InService
        rows, answers, failed = [], [], 0
        with threadpool_limits(limits=1):  # one request at a time on one core, as measured
            for k in self.next_rows(count):
                try:
                    body = self.endpoint.invoke_endpoint(
                        EndpointName=endpoint, Body=payloads[k], ContentType="text/csv",
                        Accept="text/csv", **self.endpoint.naming(endpoint),
                    )["Body"].read()  # fmt: skip
                except ClientError:
                    failed += 1
                    continue
                rows.append(k)
                answers.append(float(body.decode().split(",")[0]))
        say(
            f"Traffic {env}",
            f"{what}: {count} requests of held-out rows, one record each ({SERVED}); "
            f"{failed} failed; answers {spread(answers)}.",
        )
        self.score_kpis(env, what, rows, answers)

    def rollout_plan(self, env: EnvName) -> list[tuple[int, float]]:
        """The release's steps: instances of a blue/green shift, or copies of an inference
        component's rolling update."""
        from tools.rehearsal_canary import component_steps, traffic_steps

        serving = self.manifest.env_serving(env)
        if serving.inference_component is not None:
            return component_steps(serving.inference_component, serving.rollout)
        return traffic_steps(serving.rollout, serving.instance_count)

    def rollout_units(self, env: EnvName) -> tuple[int, str]:
        """What the release's steps count, and how many in all."""
        serving = self.manifest.env_serving(env)
        if serving.inference_component is not None:
            return serving.inference_component.copies, "copies"
        return serving.instance_count, "instances"

    def roll_out(self, env: EnvName, blue_url: str, green_url: str) -> bool:
        """The blue/green rollout of the release on the environment's endpoint, step by step as
        the manifest's rollout says, both fleets answering with their own models
        (tools/rehearsal_canary.py); each step's KPIs on what the customers got. False when a
        rollback alarm fired (the traffic is back on the version before)."""
        from threadpoolctl import threadpool_limits

        from tools.rehearsal_canary import Fleet, Rollout, RolloutRefused, rollback_alarms, spread

        endpoint = self.name(env, "endpoint")
        rollout = self.manifest.env_serving(env).rollout
        blue_v, green_v = self.version_of(blue_url), self.version_of(green_url)
        blue = Fleet(blue_v, blue_url, f"{endpoint}-config-v{blue_v}")
        green = Fleet(green_v, green_url, f"{endpoint}-config-v{green_v}")
        play = Rollout(self.manifest, self.host, endpoint, VARIANT, blue, green)
        plan = self.rollout_plan(env)
        payloads, _ = self.held_out()
        for fleet in (blue, green):  # loaded before they take traffic
            self.host.container(fleet.url)
        started = datetime.now(UTC).replace(microsecond=0)
        with threadpool_limits(limits=1):
            completed = play.play(payloads, [self.next_rows(STEP_REQUESTS) for _ in plan], plan)
        try:
            shown = play.check(payloads)
        except RolloutRefused as err:
            raise SystemExit(f"rehearsal: the {env} rollout shows nothing: {err}") from None
        total, unit = self.rollout_units(env)
        how = "batches of copies, routing and" if unit == "copies" else "fleets, routing and"
        for n, step in enumerate(play.steps):
            first = n == 0
            if first:
                self.moment("canary", f"version {green_v} takes {step.share} % of {env} traffic "
                            f"({step.instances} of {total} {unit})", env, started)  # fmt: skip
            on_green, on_blue = step.on(green), step.on(blue)
            scores = {f: [a for _, a in step.answered(f)] for f in (green, blue)}
            green_calls = [i for i in step.invocations if i.fleet == green.config]
            _, readings = rollback_alarms(self.manifest, green_calls)
            say(
                "Canary" if first else "Rollout",
                f"{env}, step {n + 1} of {len(plan)} {SIMULATED} ({how} the "
                f"{rollout.bake_minutes} min bake): version {green_v} on {step.instances} of "
                f"{total} {unit}, {step.share} % of traffic; of {len(step.rows)} requests "
                f"version {green_v} answered {len(on_green)} "
                f"({100 * len(on_green) / max(len(step.rows), 1):.1f} %), version {blue_v} "
                f"{len(on_blue)}; scores: version {green_v} {spread(scores[green])}, version "
                f"{blue_v} {spread(scores[blue])}"
                + (f". On the same {shown['rows']} rows the two models' answers differ by up "
                   f"to {shown['max_difference']:.4g} (mean {shown['mean_difference']:.4g}): "
                   "two models, each fleet its own." if first else ".")
                + f" Rollback alarms on version {green_v}'s fleet: {readings}: "
                + (f"FIRED: {'; '.join(step.alarms)}; all traffic back on version {blue_v}."
                   if step.alarms else "quiet through the bake (in-process latencies)."),
            )  # fmt: skip
            answered = step.answered()
            self.score_kpis(
                env,
                f"rollout step {n + 1} ({step.share} % on version {green_v}), as served",
                [k for k, _ in answered],
                [a for _, a in answered],
            )
        if not completed:
            self.moment("rollback", f"a rollback alarm sent {env} back to version {blue_v}", env)
        return completed

    def second_version(self, arn: str) -> bool:
        """Version 2, released by the release hook (fault 4), through staging and into prod by
        the same hooks; prod's rollout plays the manifest's canary or linear steps."""
        body = self.client("s3").get_object(Bucket="releases", Key="release.json")["Body"]
        release = json.loads(body.read())
        if str(release.get("model_version")) != "2":
            raise SystemExit(f"rehearsal: release.json holds version {release.get('model_version')}"
                             ", not the version 2 just released")  # fmt: skip
        if self.batch is not None:
            # Version 2's release is an execution of its own: a batch environment's sample run
            # is named after it (one run per execution and environment).
            self.pipeline.execution = SECOND_EXECUTION
        if not self.deploy("staging", arn) or not self.verify("staging"):
            say("Verify staging", "version 2 stops at VerifyStaging.")
            return False
        if self.has_quality_gate and not self.quality_gate(kpis=True):
            say("Quality gate", "version 2 stops at the quality gate.")
            return False
        if self.stages:
            say(
                "Gates",
                f"{', '.join(self.stages)}: the people decide version 2 in chat as they decided "
                "version 1 (not replayed here).",
            )
        if self.manifest.env_serving("prod").shadow is not None:
            from tools.rehearsal_shadow import play as shadow_test

            print(f"\nVersion 2's shadow test in prod, before its canary {SIMULATED}\n")
            if not shadow_test(self, say, "prod", arn):
                return False
        if not self.deploy("prod", arn):
            say("Deploy prod", "version 2 was rolled back; prod serves version 1.")
            return False
        if not self.verify("prod"):
            return False
        self.model_card(2)
        self.traffic("prod", "version 2's traffic in prod, all of it on version 2")
        return True

    # --- faults ----------------------------------------------------------------------------------

    def faults(self) -> bool:
        """Each fault scenario in turn; False, naming the ones that did not end safely, when a
        fault got through (the run then fails, as the release would have gone wrong on AWS)."""
        ended_safely = {
            "Fault 1": self.fault_below_threshold(),
            "Fault 2": self.fault_forged_approval(),
            "Fault 3": self.fault_silent_rollback(),
        }
        through = [name for name, safe in ended_safely.items() if not safe]
        if through:
            say("Faults", f"{', '.join(through)} did not end safely: the rehearsal fails.")
        return not through

    def fault_below_threshold(self) -> bool:
        """A release whose registered metric misses its threshold: the quality gate stops it,
        or, for a product without an automated gate, the training pipeline's check does."""
        metric = self.manifest.metrics.model_metrics[0]
        worse = (
            metric.threshold * 0.85
            if metric.direction.value == "at_least"
            else metric.threshold * 1.25 + 0.01
        )
        name = metric.name.value
        if not self.has_quality_gate:
            say(
                "Fault 1",
                f"a model whose {name} is {worse:.4g} (needs {metric.direction.value} "
                f"{metric.threshold}): stopped by the training pipeline's Check step before "
                f"registration {SIMULATED}; this product's release has no automated gate.",
            )
            return True
        self.client("s3").put_object(
            Bucket="releases",
            Key="release.json",
            Body=json.dumps({**self.release, "metrics": {**self.release["metrics"], name: worse}}),
        )
        passed = self.quality_gate()
        say(
            "Fault 1",
            f"a model below its {name} threshold: "
            + ("NOT STOPPED" if passed else "stopped at the quality gate; prod untouched."),
        )
        return not passed

    def fault_forged_approval(self) -> bool:
        from shared.audit import AuditTrail

        audit = AuditTrail(self.client("dynamodb"), "audit")
        before = len(self.client("dynamodb").scan(TableName="audit")["Items"])
        self.pipeline.calls.clear()
        stage = self.stages[-1]
        approver = self.manifest.contact(self.gate_of(stage).approvers[0])
        request = self.brief_quiet(stage, "token-forged")
        answer = self.click(request, approver.slack_user_id or "", secret="not-the-signing-secret")
        changed = len(self.client("dynamodb").scan(TableName="audit")["Items"]) - before
        decided = audit.request(request) or {}
        sent = [c for c, _ in self.pipeline.calls if c == "put_approval_result"]
        say(
            "Fault 2",
            f"a forged approval (bad signature) → HTTP {answer['statusCode']}: "
            f"{json.loads(answer['body'])['text']}; approvals sent to CodePipeline: {len(sent)}; "
            f"decision recorded: {decided.get('decision', 'none')} (audit items added: {changed}, "
            "the brief's own request only).",
        )
        return answer["statusCode"] == 401 and not sent and "decision" not in decided

    def brief_quiet(self, stage: str, token: str) -> str:
        from gate_notifier import handler as notifier

        answer = notifier.handler(self.notification(stage, token), lambda_context("gate_notifier"))
        return str(answer["request_id"])

    def fault_silent_rollback(self) -> bool:
        if self.manifest.is_batch("prod"):
            return bool(self.batch.silent_rollback(self, say))
        endpoint = self.name("prod", "endpoint")
        serving = self.endpoint.serving[endpoint]
        self.endpoint.serving[endpoint] = (
            f"s3://artifacts/{self.names.released_prefix(0)}/model.tar.gz"
        )
        self.client("s3").put_object(
            Bucket="releases", Key="release.json", Body=json.dumps(self.release)
        )
        ok = self.verify("prod")
        self.endpoint.serving[endpoint] = serving  # on-call redeploys the release
        self.moment("rollback", "a silent rollback in prod, caught by the deploy verifier", "prod")
        say(
            "Fault 3",
            "a silent rollback in prod: "
            + (
                "NOT CAUGHT"
                if ok
                else "caught by the deploy verifier; the release is marked failed."
            ),
        )
        return not ok

    def fault_transient_release(self) -> str | None:
        """Version 2 approved, and released through a throttled CodePipeline: its ARN, or None
        when the retries did not start the pipeline exactly once (the run then fails)."""
        from botocore.exceptions import ClientError
        from release import handler as release

        arn = self.register_version(2, "Approved")
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
                release.handler(event, self.context_of(event, "release"))
                first = "released at once"
            except ClientError as err:
                first = f"failed ({err.response['Error']['Code']}), no record kept"
            # Lambda's retry of the failed invocation, then EventBridge delivering it once more.
            retried = release.handler(event, self.context_of(event, "release"))
            again = release.handler(event, self.context_of(event, "release"))
        finally:
            release.codepipeline = pipeline
        starts = [c for c, _ in pipeline.calls[before:] if c == "start_pipeline_execution"]
        say(
            "Fault 4",
            f"StartPipelineExecution throttled while releasing version 2: the release hook "
            f"{first}; Lambda's retry released it (released {retried['released']}); the same "
            f"approval again: {again['reason']}; pipeline starts for it: {len(starts)}.",
        )
        if len(starts) != 1:
            say("Faults", f"Fault 4 did not end safely: {len(starts)} pipeline starts for one "
                          "approval, not exactly one: the rehearsal fails.")  # fmt: skip
            return None
        return arn

    # --- monitoring: drift, with the real Evidently job --------------------------------------

    def monitor(self, env: EnvName, arn: str, batch: Any, now: Any) -> dict[str, Any]:
        """One scheduled run of the Evidently monitoring job, the real code with the arguments
        the Monitoring stack gives it, on `batch` captured in the last window as the endpoint
        writes capture (hour folders of JSON Lines), under moto's S3, SSM and CloudWatch."""
        from datetime import timedelta

        from mlgate.infra.monitoring_args import job_arguments
        from mlgate.infra.naming import Names

        warm_monitoring_job().join()
        from mlgate.runtime.monitoring_job import run as job

        settle()

        names = Names.of(self.manifest, env)
        capture = f"s3://artifacts/datacapture/{env}/{names.endpoint()}/AllTraffic"
        at = now - timedelta(minutes=10)
        # What the endpoint answered each captured request: the served model's own answers.
        rows = [",".join(map(str, row)) for row in batch.itertuples(index=False)]
        if self.manifest.is_batch(env):
            capture = self.batch.scored_run(env, rows, at)
        else:
            self.capture(env, rows, at, now)
        run_dir = self.work / "monitoring" / f"{now:%H%M%S}"
        local = {
            "--capture-dir": run_dir / "capture",
            "--baseline": run_dir / "baseline" / "baseline.csv",
            "--report-dir": run_dir / "report",
            "--ground-truth-dir": run_dir / "ground-truth",
        }
        args = job_arguments(self.manifest, env, capture_uri=capture)
        args = [str(local[args[i - 1]]) if i and args[i - 1] in local else a
                for i, a in enumerate(args)]  # fmt: skip
        if self.manifest.monitoring.ground_truth_s3_uri:
            bucket = self.manifest.monitoring.ground_truth_s3_uri.removeprefix("s3://")
            with contextlib.suppress(Exception):  # labels have not landed yet: an empty bucket
                self.client("s3").create_bucket(
                    Bucket=bucket.split("/")[0],
                    CreateBucketConfiguration={"LocationConstraint": REGION},
                )
        clients = {name: self.client(name) for name in ("s3", "ssm", "sagemaker")}
        summary: dict[str, Any] = job.main(
            [*args, "--now", now.isoformat()], self.client("cloudwatch"), clients
        )
        return summary

    def capture(self, env: EnvName, rows: list[str], at: Any, now: Any) -> None:
        """`rows` as the endpoint captures them, with its answers, in the hour folder of `at`."""
        from mlgate.infra.naming import Names

        names = Names.of(self.manifest, env)
        answers = self.captured_answers(env, rows, f"{now:%H%M%S}")
        lines = [
            json.dumps({
                "captureData": {
                    "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                      "data": row, "encoding": "CSV"},
                    "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                       "data": answer, "encoding": "CSV"},
                },
                "eventMetadata": {"eventId": f"e-{i}",
                                  "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "eventVersion": "0",
            })
            for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
        ]  # fmt: skip
        key = f"datacapture/{env}/{names.endpoint()}/AllTraffic/{at:%Y/%m/%d/%H}/{now:%M%S}.jsonl"
        self.client("s3").put_object(Bucket="artifacts", Key=key, Body="\n".join(lines).encode())

    def captured_answers(self, env: EnvName, rows: list[str], stamp: str) -> list[str]:
        """The endpoint's answers to captured `rows`. An asynchronous endpoint's traffic is
        captured too (the app keeps data capture on in async mode): its rows go through its
        queue, CAPTURE_BATCH records a request, and the answers are its result objects'."""
        endpoint = self.name(env, "endpoint")
        container = self.host.container(self.endpoint.serving[endpoint])
        if self.endpoint.mode(endpoint) != "async":
            return list(container.answers(rows))
        s3, queued = self.direct_s3, []
        for n, start in enumerate(range(0, len(rows), CAPTURE_BATCH)):
            key = f"async/{env}/input/capture-{stamp}-{n}.csv"
            body = "\n".join(rows[start : start + CAPTURE_BATCH]).encode()
            s3.put_object(Bucket="artifacts", Key=key, Body=body, ContentType="text/csv")
            queued.append(self.endpoint.invoke_endpoint_async(
                EndpointName=endpoint, ContentType="text/csv", InferenceId=f"capture-{stamp}-{n}",
                InputLocation=f"s3://artifacts/{key}"))  # fmt: skip
        self.endpoint.drain(endpoint)
        answers: list[str] = []
        for where in queued:
            bucket, _, key = where["OutputLocation"].removeprefix("s3://").partition("/")
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            answers += [a for a in text.replace(",", "\n").splitlines() if a.strip()]
        if len(answers) != len(rows):  # not one value per record: each row on its own
            return list(container.answers(rows))
        return answers

    def drift_alarm(self, env: EnvName, published_from: int) -> float:
        """The drift alarm's datapoint: drifted_feature_share as the job published it to
        CloudWatch (the metrics stand-in) since the `published_from`-th PutMetricData call."""
        from mlgate.infra.naming import Names

        namespace = Names.of(self.manifest, env).monitoring_namespace()
        values = [
            float(datum["Value"])
            for call in self.metrics.published[published_from:]
            if call.get("Namespace") == namespace
            for datum in call.get("MetricData", [])
            if datum.get("MetricName") == "drifted_feature_share"
            and {"Name": "Environment", "Value": env} in datum.get("Dimensions", [])
        ]
        if not values:
            raise SystemExit("rehearsal: the monitoring job published no drifted_feature_share")
        return max(values)

    def drift_alarm_name(self, env: EnvName) -> str:
        """The data-drift alarm's name, as the Monitoring stack names it (DRIFT_ALARM)."""
        from mlgate.infra.naming import Names

        return Names.of(self.manifest, env).alarm("model", "data-drift", "warning")

    def alarm_event(self, env: EnvName, value: float, now: Any) -> dict[str, Any]:
        """EventBridge's "CloudWatch Alarm State Change" of the drift alarm into ALARM, from
        the account and region of the alarm (the responder's own)."""
        name = self.drift_alarm_name(env)
        threshold = self.manifest.monitoring.drift_threshold
        where = self.manifest.environment(env)
        region, account = where.region, where.account
        return {
            "version": "0", "id": f"drift-{now:%H%M%S}", "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change", "account": account,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"],
            "detail": {
                "alarmName": name,
                "state": {
                    "value": "ALARM",
                    "reason": f"Threshold Crossed: 1 datapoint [{value}] was greater than the "
                    f"threshold ({threshold}).",
                    "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                },
                "previousState": {"value": "OK"},
            },
        }  # fmt: skip

    def monitored(self) -> list[EnvName]:
        """The environments the app monitors: those whose endpoint captures traffic, every
        mode but serverless (Manifest.monitored)."""
        return [e for e in ENVS if self.manifest.monitored(e)]

    def drift_loop(self, arn: str) -> bool:
        """On the first monitored environment (its capture, its monitoring job, its drift
        alarm and responder, in its account and region): traffic like the training data, then
        traffic whose features moved: the real job judges both, the alarm fires on the second
        only, the drift responder starts retraining, and a second alarm inside the cool-down
        does not start it again. False when no environment is monitored."""
        from datetime import UTC, datetime, timedelta

        import pandas as pd

        from mlgate.infra.naming import Names, role_arn

        monitored = self.monitored()
        if not monitored:
            say("Monitoring", "no environment captures traffic (serverless endpoints capture "
                              "none): no monitoring job, no drift alarm.")  # fmt: skip
            return False
        env = monitored[0]
        names = Names.of(self.manifest, env)
        mode = self.manifest.env_serving(env).mode.value
        share = self.manifest.serving.data_capture_sampling_percent
        watched = (
            "it reads its runs' inputs and predictions"
            if self.manifest.is_batch(env)
            else f"its endpoint captures {share} % of its traffic"
        )
        say("Monitoring", f"{env}, the first environment the app monitors ({mode}; {watched}).")
        self.client("ssm").put_parameter(
            Name=names.live_release_parameter("model-package"), Value=arn, Type="String",
            Overwrite=True,
        )  # fmt: skip
        baseline = pd.read_csv(self.baseline)
        threshold = self.manifest.monitoring.drift_threshold
        now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
        mark = len(self.metrics.published)
        calm = self.monitor(env, arn, baseline.sample(n=min(2000, len(baseline)), random_state=7),
                            now)  # fmt: skip
        share = self.drift_alarm(env, mark)
        alarm_name = self.drift_alarm_name(env)
        self.alarms.setdefault(alarm_name, []).append(
            [now.isoformat(), "OK", f"drifted share {share:.2f} not above {threshold}"]
        )
        say(
            "Monitoring",
            f"the Evidently job (real code, the Monitoring stack's arguments) on "
            f"{calm['drift']['overall']['rows']} captured rows drawn like the training data: "
            f"drifted share {share:.2f}, not above drift_threshold {threshold}: no alarm.",
        )
        if share > threshold:
            raise SystemExit("rehearsal: traffic like the baseline was judged as drift")
        # Enough features move for their share to pass drift_threshold: continuous ones by two
        # standard deviations first, then others set to their rarest value.
        continuous = [
            c
            for c in baseline.columns
            if pd.api.types.is_numeric_dtype(baseline[c]) and baseline[c].nunique() > 2
        ]
        others = [c for c in baseline.columns if c not in continuous]
        # The share counts the product's features (a one-hot column carries its feature:
        # monitoring_args.payload_feature): one column of each moved feature, enough features.
        from mlgate.infra.monitoring_args import payload_feature

        feature = {c: payload_feature(self.manifest, c) or c for c in baseline.columns}
        needed = int(threshold * len(set(feature.values()))) + 1
        moved: list[str] = []
        features: set[str] = set()
        for column in [*continuous, *others]:
            if feature[column] not in features and len(features) < needed:
                moved.append(column)
                features.add(feature[column])
        shifted = baseline.sample(n=min(2000, len(baseline)), random_state=8)
        for column in moved:
            if column in continuous:
                shifted[column] = shifted[column] + 2 * (baseline[column].std() or 1.0)
            else:
                shifted[column] = baseline[column].value_counts().idxmin()
        later = now + timedelta(hours=1)
        mark = len(self.metrics.published)
        found = self.monitor(env, arn, shifted, later)
        share = self.drift_alarm(env, mark)
        drifted = sorted(f for f, v in found["drift"]["features"].items() if v["drifted"])
        self.alarms[alarm_name].append(
            [later.isoformat(), "ALARM", f"drifted share {share:.2f} above {threshold}"]
        )
        self.moment("drift", f"{', '.join(moved)} moved: data-drift alarm", env, later)
        say(
            "Monitoring",
            f"an hour later {len(moved)} feature(s) moved ({', '.join(moved)}): the job finds "
            f"{', '.join(drifted)} drifted, share {share:.2f} above drift_threshold {threshold}:"
            f" the data-drift alarm goes to ALARM.",
        )
        if share <= threshold or not set(moved) <= set(drifted):
            raise SystemExit("rehearsal: moved features were not found drifted")
        self.client("dynamodb").create_table(
            TableName="cooldown", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )  # fmt: skip
        self.client("sagemaker").create_pipeline(
            PipelineName=names.training_pipeline(),
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/training",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        )
        topic = self.client("sns").create_topic(Name="owners")["TopicArn"]
        os.environ.update({
            "PIPELINE_NAME": names.training_pipeline(), "COOLDOWN_TABLE": "cooldown",
            "COOLDOWN_HOURS": str(self.manifest.monitoring.retrain_cooldown_hours),
            "OWNERS_TOPIC_ARN": topic, "ENDPOINT_NAME": names.endpoint(),
            "PRODUCT": self.manifest.product.name, "ENVIRONMENT": env,
            "REPORTS_URI": f"s3://artifacts/monitoring/{env}/evidently/",
            "DRIFT_ALARM": self.drift_alarm_name(env),
            # An environment in another account starts the home pipeline through the home
            # retrain role (stacks/serving.py: drift_props).
            "RETRAIN_ROLE_ARN": role_arn(self.manifest.environments.staging.account,
                                         names.retrain_role())
            if self.manifest.is_remote(env) else "",
        })  # fmt: skip
        from drift_responder import handler as drift

        alarm = self.alarm_event(env, share, later)
        started = drift.handler(alarm, self.context_of(alarm, "drift_responder"))
        say("Drift", f"the drift responder: started {started['started']}: {started['reason']}")
        if started["started"] == "true":
            self.moment("retrain", "the drift responder started retraining", env, later)
        alarm = self.alarm_event(env, share, later + timedelta(hours=1))
        again = drift.handler(alarm, self.context_of(alarm, "drift_responder"))
        say("Drift", f"the alarm again an hour later: started {again['started']}: "
                     f"{again['reason']}")  # fmt: skip
        runs = self.client("sagemaker").list_pipeline_executions(
            PipelineName=names.training_pipeline()
        )["PipelineExecutionSummaries"]
        if started["started"] != "true" or again["started"] != "false" or len(runs) != 1:
            raise SystemExit(f"rehearsal: drift should retrain exactly once, got {len(runs)}")
        return True


THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""One BLAS and OpenMP thread per process unless the caller set these, as `make test` runs
(tests/conftest.py): an idle library thread spins against the other core's work."""

if __name__ == "__main__":
    for _variable in THREAD_LIMITS:  # read by the libraries when they load: before numpy
        os.environ.setdefault(_variable, "1")
    raise SystemExit(main())
