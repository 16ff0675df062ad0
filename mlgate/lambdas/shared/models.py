"""The release path's typed inputs, parsed whole at the edge with Powertools' parser
(https://docs.powertools.aws.dev/lambda/python/latest/utilities/parser/): a hook parses what it
is given before any AWS call, and a refusal names the field.

- JobEvent: CodePipeline's Lambda invoke job (deployer, deploy verifier, quality gate), as
  https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html
  documents it; Powertools' parser ships no model of it. Its UserParameters and continuation
  token are JSON text: each hook parses them with its own model (DeployParameters, ...).
- Release: release.json, written by the release hook, read by the deployer, the deploy
  verifier and the quality gate.
- Thresholds: the quality gate's MLGATE_THRESHOLDS.

The release hook's own event model (on Powertools' EventBridgeModel) is in release/handler.py:
it alone reads it. Each model's validator is built the first time it is used (defer_build): a
hook builds only the models it reads.

Names follow the AWS API's own patterns (botocore's service models), so a name AWS would refuse
is refused here first; text that is not a name refuses control, format (right-to-left marks,
zero-width characters) and surrogate code points. Events and release.json may carry more than
the models read (AWS adds fields); the parameters and tokens mlgate writes may not.
"""

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import BaseModel, ValidationError, parse
from pydantic import AfterValidator, ConfigDict, Field, Strict, StringConstraints, model_validator

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
    """Only the job's id: whether the job can be answered at all."""

    job: JobIdentity = Field(alias="CodePipeline.job")


class S3Location(AwsModel):
    bucketName: BucketName
    objectKey: ObjectKey


class ArtifactLocation(AwsModel):
    type: Literal["S3"]
    s3Location: S3Location


class InputArtifact(AwsModel):
    location: ArtifactLocation


class ArtifactCredentials(AwsModel):
    """The session CodePipeline lends for its artifact bucket: all three keys, or none (then
    the function's own role reads the artifact)."""

    accessKeyId: Secret | None = None
    secretAccessKey: Secret | None = None
    sessionToken: Secret | None = None

    @model_validator(mode="after")
    def _whole(self) -> "ArtifactCredentials":
        given = [self.accessKeyId, self.secretAccessKey, self.sessionToken]
        if any(given) and not all(given):
            raise ValueError("needs accessKeyId, secretAccessKey and sessionToken together")
        return self


class Configuration(AwsModel):
    UserParameters: ParameterText


class ActionConfiguration(AwsModel):
    configuration: Configuration


class JobData(AwsModel):
    actionConfiguration: ActionConfiguration
    # "Number of Artifacts: 0 to 5" (the Lambda invoke action reference).
    inputArtifacts: list[InputArtifact] = Field(default=[], max_length=5)
    artifactCredentials: ArtifactCredentials | None = None
    # PutJobSuccessResult's continuationToken: 1 to 2,048 characters.
    continuationToken: ContinuationToken | None = None


class Job(AwsModel):
    id: JobId
    accountId: AccountId
    data: JobData


class JobEvent(AwsModel):
    job: Job = Field(alias="CodePipeline.job")


class DeployParameters(Model):
    """The deployer's UserParameters (mlgate/constructs/release_pipeline.py writes them)."""

    environment: EnvName
    stack: StackName
    role_arn: RoleArn | None = None


class VerifyParameters(Model):
    """The deploy verifier's UserParameters."""

    environment: EnvName
    endpoint: SageMakerName
    role_arn: RoleArn | None = None


class GateParameters(Model):
    """The quality gate's UserParameters; `execution` is CodePipeline's resolved
    #{codepipeline.PipelineExecutionId}."""

    endpoint: SageMakerName
    execution: ExecutionId | None = None


class DeployToken(Model):
    """The deployer's own continuation token: the stack it waits for (`waiting`), or the
    update it started (`model_package_arn`)."""

    stack: StackName
    waiting: Literal[True] | None = None
    model_package_arn: ModelPackageArn | None = None

    @model_validator(mode="after")
    def _one_state(self) -> "DeployToken":
        if (self.waiting is None) == (self.model_package_arn is None):
            raise ValueError("a deployer token carries either waiting or model_package_arn")
        return self


# --- release.json ------------------------------------------------------------------------------


class Release(AwsModel):
    """One approved model version and its evidence: what every later stage acts on."""

    model_package_arn: ModelPackageArn
    model_package_group: SageMakerName | None = None
    model_version: Version
    approved_by: Text = "unknown"
    approved_at: Timestamp | None = None
    metrics: dict[MetricName, Number] = Field(default={}, max_length=100)
    evaluation_report_uri: S3Uri | None = None
    baseline_statistics_uri: S3Uri | None = None
    baseline_constraints_uri: S3Uri | None = None
    manifest_sha256: Text | None = None
    code_sha256: Text | None = None
    training_execution: Text | None = None

    @model_validator(mode="after")
    def _one_version(self) -> "Release":
        if int(self.model_package_arn.rsplit("/", 1)[1]) != self.model_version:
            raise ValueError("model_version is not the version model_package_arn names")
        return self

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
    """mlgate.gates.thresholds(manifest), as the stack writes it into MLGATE_THRESHOLDS."""

    model_metrics: list[MetricThreshold] = Field(max_length=100)
    slos: list[Slo] = Field(max_length=10)
