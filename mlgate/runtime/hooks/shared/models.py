"""The release path's typed inputs, parsed whole at the edge with Powertools' parser
(https://docs.powertools.aws.dev/lambda/python/latest/utilities/parser/): a hook parses what it
is given before any AWS call, and a refusal names the field.

- JobReference: the one field of CodePipeline's Lambda invoke event a job hook (deployer,
  deploy verifier, quality gate) reads, the job id; JobDetailsAnswer: the job as CodePipeline's
  GetJobDetails answers for that id (anyone allowed to invoke a hook can write an event, only
  CodePipeline its job). Powertools' parser ships no model of either. UserParameters and the
  continuation token are JSON text: each hook parses them with its own model.
- Release: release.json, written by the release hook, read by the deployer, the deploy
  verifier and the quality gate at their execution's source revision.
- Thresholds: the quality gate's MLGATE_THRESHOLDS.
- RunRecord: a batch run's record.json (the batch_run hook's), read by the deploy verifier and
  the quality gate of a batch environment.

The release hook's own event model (on Powertools' EventBridgeModel) is in release/handler.py:
it alone reads it. Each model's validator is built the first time it is used (defer_build): a
hook builds only the models it reads.

Names follow the AWS API's own patterns (botocore's service models), so a name AWS would refuse
is refused here first; text that is not a name refuses control, format (right-to-left marks,
zero-width characters) and surrogate code points. Events and release.json may carry more than
the models read (AWS adds fields); the parameters and tokens mlgate writes may not.
"""

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import BaseModel, ValidationError, parse
from pydantic import AfterValidator, ConfigDict, Field, Strict, StringConstraints, model_validator
from pydantic_core import InitErrorDetails

T = TypeVar("T")

# --- names, as the services' API references give their patterns ------------------------------

_PARTITION = r"aws(-[a-z]+)*"
_SAGEMAKER_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"


AccountId = Annotated[str, Strict(), StringConstraints(pattern=r"^[0-9]{12}$")]
Region = Annotated[
    str, Strict(), StringConstraints(max_length=32, pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
]
JobId = Annotated[str, Strict(), StringConstraints(pattern=_UUID)]
ExecutionId = Annotated[str, Strict(), StringConstraints(pattern=_UUID)]
SageMakerName = Annotated[
    str, Strict(), StringConstraints(max_length=63, pattern=f"^{_SAGEMAKER_NAME}$")
]
StackName = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")]
EnvName = Literal["staging", "prod"]
RoleArn = Annotated[
    str,
    Strict(),
    StringConstraints(
        max_length=2048,
        pattern=rf"^arn:{_PARTITION}:iam::[0-9]{{12}}:role/[A-Za-z0-9_+=,.@/-]{{1,512}}$",
    ),
]
# A version of a package group (SageMaker lowercases the group in the ARN).
ModelPackageArn = Annotated[
    str,
    Strict(),
    StringConstraints(
        max_length=2048,
        pattern=rf"^arn:{_PARTITION}:sagemaker:[a-z0-9-]{{9,16}}:[0-9]{{12}}:model-package/"
        rf"{_SAGEMAKER_NAME}/[0-9]{{1,10}}$",
    ),
]
BucketName = Annotated[str, Strict(), StringConstraints(pattern=f"^{_BUCKET}$")]
S3Uri = Annotated[str, Strict(), StringConstraints(pattern=rf"^s3://{_BUCKET}/[!-~]{{1,1024}}$")]
MetricName = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
Version = Annotated[int, Strict(), Field(ge=1, le=10**9)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
# Epoch milliseconds, as SageMaker sends LastModifiedTime and CreationTime, or ISO 8601 text.
EpochMillis = Annotated[int, Strict(), Field(ge=0, le=10**14)]
IsoTime = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{5,15}(Z|[+-][0-9:]{4,5})?$"),
]
Timestamp = EpochMillis | IsoTime

# Code points that are never part of a name or a sentence mlgate writes: controls (NUL
# included), format characters (right-to-left marks and overrides, zero-width characters),
# surrogates (a lone one cannot even be written to the log), private use and unassigned.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def _plain(text: str) -> str:
    for char in text:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(f"contains the control or format character U+{ord(char):04X}")
    return text


Text = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=2048), AfterValidator(_plain)
]
ObjectKey = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=1024), AfterValidator(_plain)
]
Secret = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=8192, pattern=r"^[!-~]+$")
]
ContinuationToken = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=2048)]
# ActionConfigurationValue: at most 1,000 characters (CodePipeline's API reference).
ParameterText = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1000)]


class Model(BaseModel):
    """What mlgate writes itself (parameters, tokens): nothing it does not read."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class AwsModel(BaseModel):
    """What AWS sends: fields it adds later are left alone."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


# --- refusals --------------------------------------------------------------------------------


class Refusal(ValueError):
    """Input a hook will not act on; the message names the field and what is wrong with it."""


def _safe(text: str, longest: int = 80) -> str:
    """Text for a log line and an AWS message: ASCII, escapes for the rest (a lone surrogate
    included), cut short."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return escaped if len(escaped) <= longest else escaped[: longest - 3] + "..."


def describe(err: ValidationError, where: str = "") -> str:
    """One line: the first field refused (its path, `where` first) and why, and how many more.
    The input itself is never shown: it may be a credential, 200 KB long or unprintable."""
    errors = err.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    path = ".".join(_safe(str(part), 60) for part in (where, *first["loc"]) if part != "")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path or 'the event'}: {_safe(first['msg'], 200)}{more}"


def read(data: Any, model: type[T], where: str = "") -> T:
    """Powertools' parse (a str is read as JSON), its refusal as one Refusal naming the field."""
    try:
        return parse(event=data, model=model)
    except ValidationError as err:
        raise Refusal(describe(err, where)) from None


def utc(moment: datetime) -> str:
    """EventBridge's time format (ISO 8601, UTC, seconds)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CodePipeline's job (the Lambda invoke action) ---------------------------------------------


class JobIdentity(AwsModel):
    id: JobId


class JobReference(AwsModel):
    """Only the job's id: all a hook takes from its event. Everything else of the job is read
    from CodePipeline itself (GetJobDetails: JobDetailsAnswer), never from the event."""

    job: JobIdentity = Field(alias="CodePipeline.job")


# CodePipeline's pipeline names: [A-Za-z0-9.@\-_]+, 1 to 100 characters (its API reference).
PipelineName = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9.@_-]+$")
]


class Configuration(AwsModel):
    UserParameters: ParameterText


class ActionConfiguration(AwsModel):
    configuration: Configuration


class PipelineContext(AwsModel):
    """Which pipeline, and which run of it, the job belongs to."""

    pipelineName: PipelineName
    pipelineExecutionId: ExecutionId


class PipelineOf(AwsModel):
    pipelineContext: PipelineContext


class JobOf(AwsModel):
    id: JobId
    data: PipelineOf


class JobPipeline(AwsModel):
    """GetJobDetails' answer, read only as far as whose job it is."""

    jobDetails: JobOf


class JobDetailsData(AwsModel):
    actionConfiguration: ActionConfiguration
    pipelineContext: PipelineContext
    # PutJobSuccessResult's continuationToken: 1 to 2,048 characters.
    continuationToken: ContinuationToken | None = None


class JobDetails(AwsModel):
    id: JobId
    data: JobDetailsData


class JobDetailsAnswer(AwsModel):
    """codepipeline:GetJobDetails' answer (https://docs.aws.amazon.com/codepipeline/latest/
    APIReference/API_GetJobDetails.html): the job as CodePipeline holds it."""

    jobDetails: JobDetails


class DeployParameters(Model):
    """The deployer's UserParameters (mlgate/infra/constructs/release_pipeline.py writes them):
    `service_role` is the Serving stack's own CloudFormation service role, the only role
    UpdateStack is given (RoleARN). `shadow`, in a Shadow stage: "start" adds the release's
    version as the endpoint's shadow variant, "stop" removes it and then passes on the shadow
    test's verdict."""

    environment: EnvName
    stack: StackName
    service_role: RoleArn
    role_arn: RoleArn | None = None
    shadow: Literal["start", "stop"] | None = None


class ShadowThresholds(Model):
    """The manifest's shadow-test thresholds (mlgate/manifest/shadow.py)."""

    min_requests: Annotated[int, Strict(), Field(ge=1)]
    max_latency_ratio: Annotated[float, Field(gt=1, le=10)]
    max_error_rate: Annotated[float, Field(ge=0, le=1)]
    max_prediction_shift: Annotated[float, Field(gt=0, le=1)]


class ShadowParameters(Model):
    """What the deploy verifier judges in a Shadow stage: the endpoint's shadow variant
    against its production variant, after `minutes` of copied traffic, from CloudWatch and the
    endpoint's data capture (`capture_uri`)."""

    variant: SageMakerName
    production_variant: SageMakerName
    minutes: Annotated[int, Strict(), Field(ge=1, le=1200)]
    sampling_percent: Annotated[int, Strict(), Field(ge=1, le=100)]
    capture_uri: S3Uri
    thresholds: ShadowThresholds


# A Lambda function's own name (CreateFunction's FunctionName, 64 characters at most).
FunctionName = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
# An SSM parameter's name: letters, digits, _ . - and / (PutParameter's rules; 1,011
# characters at most with its prefix).
ParameterName = Annotated[
    str, Strict(), StringConstraints(max_length=1011, pattern=r"^[a-zA-Z0-9_./-]+$")
]
Share = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]


class BatchParameters(Model):
    """A batch environment's release checks (mlgate/manifest/serving.py, `batch`), the same
    for the deploy verifier and the quality gate: the batch_run function that runs the
    release's sample run, the environment's artifact bucket where its record lands, the SSM
    parameters of its live model and model package, and the gate's thresholds."""

    function: FunctionName
    bucket: BucketName
    sample_rows: Annotated[int, Strict(), Field(ge=10, le=100_000)]
    max_run_minutes: Annotated[int, Strict(), Field(ge=10, le=2880)]
    max_prediction_shift: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)]
    max_failure_rate: Share
    max_run_time_ratio: Annotated[float, Strict(), Field(gt=1, le=100, allow_inf_nan=False)]
    model_parameter: ParameterName
    model_package_parameter: ParameterName


def _needs_endpoint(data: Any) -> Any:
    """Parameters naming neither `endpoint` nor `batch` miss the endpoint, as before batch
    environments: pydantic's own "Field required" at `endpoint` (a ValidationError raised in a
    validator is taken as its errors)."""
    if isinstance(data, dict) and data.get("endpoint") is None and data.get("batch") is None:
        missing = InitErrorDetails(type="missing", loc=("endpoint",), input=data)
        raise ValidationError.from_exception_data("parameters", [missing])
    return data


def _not_both(endpoint: str | None, batch: BatchParameters | None) -> None:
    if endpoint is not None and batch is not None:
        raise ValueError(
            "give endpoint (an endpoint environment) or batch (a batch environment), not both"
        )


class _Checked(Model):
    """What a release check looks at: an endpoint, or a batch environment (`batch`: no
    endpoint), exactly one."""

    endpoint: SageMakerName | None = None
    batch: BatchParameters | None = None

    @model_validator(mode="before")
    @classmethod
    def _endpoint_given(cls, data: Any) -> Any:
        return _needs_endpoint(data)

    @model_validator(mode="after")
    def _one_target(self) -> Any:
        _not_both(self.endpoint, self.batch)
        return self

    @property
    def endpoint_name(self) -> str:
        """The endpoint of an endpoint environment's job: the validator makes it present
        whenever `batch` is absent, and a batch job never reads it."""
        assert self.endpoint is not None, "a batch environment's job has no endpoint"
        return self.endpoint


class VerifyParameters(_Checked):
    """The deploy verifier's UserParameters; with `shadow`, it judges a shadow test instead;
    with `batch` (a batch environment: no endpoint), the release's sample run."""

    environment: EnvName
    role_arn: RoleArn | None = None
    shadow: ShadowParameters | None = None

    @model_validator(mode="after")
    def _no_batch_shadow(self) -> "VerifyParameters":
        if self.batch is not None and self.shadow is not None:
            raise ValueError("a batch environment has no endpoint to shadow")
        return self


class GateParameters(_Checked):
    """The quality gate's UserParameters; `execution` is CodePipeline's resolved
    #{codepipeline.PipelineExecutionId} (the gate records the job's own execution, from
    GetJobDetails, and refuses parameters naming another). With `batch` (a batch staging: no
    endpoint), it judges the deploy verifier's sample run instead of a smoke load."""

    execution: ExecutionId | None = None


class DeployToken(Model):
    """The deployer's own continuation token: the stack it waits for (`waiting`), or the
    update it started (`model_package_arn`; with `shadow`, the shadow variant's)."""

    stack: StackName
    waiting: Literal[True] | None = None
    model_package_arn: ModelPackageArn | None = None
    shadow: Literal["start", "stop"] | None = None

    @model_validator(mode="after")
    def _one_state(self) -> "DeployToken":
        if (self.waiting is None) == (self.model_package_arn is None):
            raise ValueError("a deployer token carries either waiting or model_package_arn")
        return self


class VerifyToken(Model):
    """The deploy verifier's own continuation token: the sample request it queued on an
    asynchronous endpoint serving `config`, where SageMaker writes its result (`output`) or its
    failure (`failure`), and when it stops waiting (`deadline`, epoch seconds)."""

    endpoint: SageMakerName
    config: SageMakerName
    output: S3Uri
    failure: S3Uri | None = None
    deadline: Annotated[int, Strict(), Field(ge=0, le=10**11)]


class ShadowToken(Model):
    """The deploy verifier's own token in a Shadow stage: the endpoint whose shadow test it
    waits for, and since when the shadow variant takes traffic (`since`, epoch seconds)."""

    endpoint: SageMakerName
    since: Annotated[int, Strict(), Field(ge=0, le=10**11)]


class BatchToken(Model):
    """The deploy verifier's own token in a batch environment: the release's sample run it
    started (shared/batch.py's sample_run of the execution and environment) and when it
    stops waiting for the run's record (`deadline`, epoch seconds)."""

    run: Annotated[str, Strict(), StringConstraints(pattern=r"^v[0-9a-f]{12}$")]
    deadline: Annotated[int, Strict(), Field(ge=0, le=10**11)]


class SmokeToken(Model):
    """The quality gate's own continuation token: the staging endpoint its queued smoke load
    went to, and when it stops waiting (`deadline`, epoch seconds). The requests themselves are
    in the gate's idempotency record of the job, not in the token."""

    endpoint: SageMakerName
    deadline: Annotated[int, Strict(), Field(ge=0, le=10**11)]


# --- release.json ------------------------------------------------------------------------------


# Where the release hook copies an approved version (mlgate.infra.naming.Names.released_prefix):
# s3://<home artifact bucket>/released/<product>/<version>/model.tar.gz, baseline/...
_RELEASED = re.compile(
    rf"^s3://(?P<bucket>{_BUCKET})/(?P<prefix>released/[a-z0-9][a-z0-9-]{{0,62}})/"
    r"(?P<version>[0-9]{1,10})/model\.tar\.gz$"
)


class Release(AwsModel):
    """One approved model version and its evidence: what every later stage acts on.

    model_data_url and the baselines are the release hook's copies under the version's released
    folder (released/<product>/<version>/ of the home artifact bucket), the one place other
    environments may read; whose bucket and product that is, each hook checks against its own
    settings (shared/jobs.py)."""

    model_package_arn: ModelPackageArn
    model_package_group: SageMakerName | None = None
    model_version: Version
    model_data_url: S3Uri
    approved_by: Text = "unknown"
    approved_at: Timestamp | None = None
    metrics: dict[MetricName, Number] = Field(default={}, max_length=100)
    evaluation_report_uri: S3Uri | None = None
    baseline_statistics_uri: S3Uri | None = None
    baseline_constraints_uri: S3Uri | None = None
    baseline_dataset_uri: S3Uri | None = None
    manifest_sha256: Text | None = None
    code_sha256: Text | None = None
    training_execution: Text | None = None
    mlflow_run_id: Text | None = None
    """The training run in MLflow (the manifest's `tracking`), or "untracked: <reason>"."""
    mlflow_experiment_id: Text | None = None
    mlflow_tracking: Text | None = None
    """The tracking server's ARN or URI."""

    @model_validator(mode="after")
    def _one_version(self) -> "Release":
        if int(self.model_package_arn.rsplit("/", 1)[1]) != self.model_version:
            raise ValueError("model_version is not the version model_package_arn names")
        found = _RELEASED.match(self.model_data_url)
        if found is None or int(found["version"]) != self.model_version:
            raise ValueError(
                "model_data_url is not s3://<bucket>/released/<product>/<model_version>/"
                "model.tar.gz: the release hook's copy of this version"
            )
        folder = self.model_data_url.removesuffix("model.tar.gz")
        for name, uri, want in (
            ("baseline_statistics_uri", self.baseline_statistics_uri, "baseline/statistics.json"),
            (
                "baseline_constraints_uri",
                self.baseline_constraints_uri,
                "baseline/constraints.json",
            ),
        ):
            if uri is not None and uri != folder + want:
                raise ValueError(f"{name} is not {want} in the version's released folder")
        dataset = self.baseline_dataset_uri
        if dataset is not None and not (
            dataset.startswith(folder + "baseline/dataset/") and ".." not in dataset
        ):
            raise ValueError(
                "baseline_dataset_uri is not under baseline/dataset/ of the version's "
                "released folder"
            )
        return self

    @property
    def released_in(self) -> tuple[str, str]:
        """(the bucket, released/<product>) the version was copied to."""
        found = _RELEASED.match(self.model_data_url)
        assert found is not None  # checked when the release was read
        return found["bucket"], found["prefix"]

    def document(self) -> dict[str, Any]:
        """release.json's content, every field written (None as null)."""
        return self.model_dump(mode="json")


# --- the quality gate's thresholds -------------------------------------------------------------

SmokeFigure = Literal["latency_p99_ms", "error_rate_5xx", "invocation_error_rate"]


class MetricThreshold(Model):
    name: MetricName
    threshold: Number
    direction: Literal["at_least", "at_most"]


class Slo(Model):
    name: SmokeFigure
    threshold: Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


class Thresholds(Model):
    """mlgate.infra.gates.thresholds(manifest), as the stack writes it into MLGATE_THRESHOLDS."""

    model_metrics: list[MetricThreshold] = Field(max_length=100)
    slos: list[Slo] = Field(max_length=10)


# --- a batch run's record ------------------------------------------------------------------

Count = Annotated[int, Strict(), Field(ge=0, le=10**12)]
# shared/batch.py's run ids: scheduled, after an ETL run, a release's sample.
RunId = Annotated[
    str, Strict(), StringConstraints(pattern=r"^(s[0-9]{8}T[0-9]{4}|[ev][0-9a-f]{12})$")
]


class RunSide(AwsModel):
    """One transform job of a run (the candidate: the environment's live model; the
    reference: prod's) as the run record gives it."""

    job: Text
    status: Text
    rows_out: Count
    unparseable: Count
    seconds: Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)] | None = None
    output_uri: S3Uri | None = None
    failure_reason: str | None = Field(default=None, max_length=4096)


class RunRecord(AwsModel):
    """A batch run's record.json (shared/batch.py's record_key), written once by the batch_run
    hook when the run ends; read by the deploy verifier and the quality gate."""

    run: RunId
    kind: Literal["scheduled", "sample"]
    status: Text
    model: Text | None = None
    model_package: Text | None = None
    reference_model: Text | None = None
    rows_in: Count
    candidate: RunSide | None = None
    reference: RunSide | None = None
    started_at: IsoTime | None = None
    finished_at: IsoTime
    reason: str | None = Field(default=None, max_length=4096)
