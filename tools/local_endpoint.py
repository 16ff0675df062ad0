"""The rehearsal's SageMaker endpoint: the model artifact a training run wrote, served in this
process the way the framework's SageMaker container serves it.

- Built-in XGBoost (algorithm mode): the Booster in the artifact; a text/csv body without a
  header, one record a line; the answer is the scores joined by commas, as the container's
  /invocations answers text/csv. A body that does not parse as numbers is the container's 415
  ("Loading csv data failed with Exception, ..."), a record whose width is neither the model's
  nor one less is its 400 ("Unable to evaluate payload provided: Feature size of csv inference
  data ..."): https://github.com/aws/sagemaker-xgboost-container/blob/master/src/
  sagemaker_xgboost_container/algorithm_mode/serve.py
- Script mode (scikit-learn, XGBoost framework): the product's entry module imported from the
  artifact's code/ folder (SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code, where mlgate's
  script-mode entry copies it), then model_fn once and input_fn -> predict_fn -> output_fn per
  request; where the product leaves one out, the container's default (scikit-learn container:
  input_fn decodes CSV to float32 numpy, predict_fn is model.predict, output_fn encodes CSV one
  value a line, and there is no default model_fn:
  https://github.com/aws/sagemaker-scikit-learn-container/blob/master/src/
  sagemaker_sklearn_container/serving.py). An exception in a product function is the
  container's 500 naming the function and the error.

Every failure reaches the caller as SageMaker answers a container's non-2xx: botocore's
ClientError ModelError (HTTP 424) with OriginalStatusCode and the message "Received client
error (4xx) / server error (5xx) from primary with message ..."
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html).

The local xgboost and scikit-learn are this machine's, not the manifest's framework_version
container's: `version_note` says where they differ. Latency is measured in this process
(`Invocation.latency_us`): what the model's own code takes here, not a fleet's ModelLatency.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

CSV = "text/csv"

# The versions in each framework container of the manifest's framework_version (the
# containers' documented framework versions: https://docs.aws.amazon.com/sagemaker/latest/dg/
# xgboost.html#xgboost-supported-versions and https://docs.aws.amazon.com/sagemaker/latest/dg/
# sklearn.html).
CONTAINER_PACKAGES = {"xgboost": "xgboost", "xgboost-script": "xgboost", "sklearn": "scikit-learn"}


class ContainerError(Exception):
    """The model container's non-2xx answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def model_error(err: ContainerError, endpoint: str, region: str, account: str) -> Exception:
    """SageMaker's answer to a container's non-2xx: ModelError (424), as botocore raises it."""
    from botocore.exceptions import ClientError

    side = "client" if err.status < 500 else "server"
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    message = (
        f'Received {side} error ({err.status}) from primary with message "{err.message}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group={group} in account {account} for more information."
    )
    error: Exception = ClientError(
        {
            "Error": {"Code": "ModelError", "Message": message},
            "OriginalStatusCode": err.status,
            "OriginalMessage": err.message,
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}",
            "ResponseMetadata": {"HTTPStatusCode": 424},
        },
        "InvokeEndpoint",
    )
    return error


def version_note(algorithm: str, framework_version: str) -> str | None:
    """Where the local package differs from the framework_version container's, or None."""
    from importlib.metadata import PackageNotFoundError, version

    package = CONTAINER_PACKAGES.get(algorithm)
    if package is None:
        return None
    try:
        local = version(package)
    except PackageNotFoundError:
        return f"{package} is not installed here"
    # The containers' versions are <framework version>-<container build>: 1.7-1 is xgboost 1.7,
    # 1.2-1 scikit-learn 1.2.
    wanted = framework_version.split("-")[0]
    if local == wanted or local.startswith(f"{wanted}."):
        return None
    return f"local {package} {local}, the {algorithm} {framework_version} container's {wanted}"


def _csv_floats(text: str) -> Any:
    """The built-in container's text/csv parse: one record a line, every field a number."""
    import numpy as np

    lines = [line for line in text.strip().splitlines() if line.strip()]
    try:
        rows = [[float(v) if v.strip() else np.nan for v in line.split(",")] for line in lines]
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise ValueError(f"records of {sorted(widths)} fields in one body")
        return np.asarray(rows, dtype=float)
    except ValueError as e:
        raise ContainerError(
            415,
            "Loading csv data failed with Exception, please ensure data is in csv format:\n"
            f" {type(e)}\n {e}",
        ) from None


@dataclass
class Invocation:
    """One request the local endpoint answered (or failed)."""

    at: float
    endpoint: str
    variant: str
    latency_us: float
    status: int
    """200, or the container's status (4xx: a model error, 5xx: a server error)."""
    rows: int
    request: str
    answer: str
    """The answer's body, or the container's error message."""
    fleet: str = ""
    """During a blue/green rollout, the EndpointConfigName of the fleet that answered (the
    old, blue, or the new, green); empty otherwise."""


class Container:
    """One model artifact, loaded as its framework's serving container loads it."""

    def __init__(self, artifact: bytes, folder: Path, algorithm: str, program: str | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
        self.folder = folder
        self.algorithm = algorithm
        self.module: ModuleType | None = None
        if algorithm == "xgboost":
            import xgboost as xgb

            files = sorted(p for p in folder.iterdir() if p.is_file())
            if not files:
                raise ContainerError(500, "Unable to load model: the artifact holds no file")
            self.model: Any = xgb.Booster()
            try:
                self.model.load_model(str(files[0]))
            except Exception as e:
                raise ContainerError(500, f"Unable to load model: {e}") from None
            self.model.set_param("nthread", "1")
            return
        if program is None:
            raise ContainerError(500, f"{algorithm}: no serving program to import")
        code = folder / "code"
        entry = code / program
        if not entry.is_file():
            raise ContainerError(
                500, f"No module named '{Path(program).stem}': {program} is not in code/"
            )
        name = f"rehearsal_serving_{abs(hash(folder))}"
        spec = importlib.util.spec_from_file_location(name, entry)
        if spec is None or spec.loader is None:
            raise ContainerError(500, f"cannot import {program}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(code))  # the container puts the submit directory on sys.path
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(code))
        self.module = module
        self.model = self._call("model_fn", self._default_model_fn, str(folder))

    # --- the framework container's defaults --------------------------------------------------

    def _default_model_fn(self, model_dir: str) -> Any:
        if self.algorithm == "sklearn":
            raise NotImplementedError("Please provide a model_fn implementation.")
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(sorted(p for p in Path(model_dir).iterdir() if p.is_file())[0]))
        return booster

    def _default_input_fn(self, body: bytes | str, content_type: str) -> Any:
        import numpy as np

        if content_type.split(";")[0].strip() != CSV:
            raise ValueError(f"Content type {content_type} is not supported by this framework.")
        text = body.decode() if isinstance(body, bytes) else body
        rows = np.genfromtxt(io.StringIO(text), delimiter=",", ndmin=2).astype(np.float32)
        if self.algorithm == "xgboost-script":
            import xgboost as xgb

            return xgb.DMatrix(rows)
        return rows

    @staticmethod
    def _default_predict_fn(data: Any, model: Any) -> Any:
        return model.predict(data)

    @staticmethod
    def _default_output_fn(prediction: Any, accept: str) -> str:
        import numpy as np

        stream = io.StringIO()
        np.savetxt(stream, np.asarray(prediction), delimiter=",", fmt="%s")
        return stream.getvalue()

    def _call(self, name: str, default: Any, *args: Any) -> Any:
        function = getattr(self.module, name, None) or default
        try:
            return function(*args)
        except Exception as e:
            where = name if function is not default else f"{name} (the container's default)"
            raise ContainerError(500, f"{where} raised {type(e).__name__}: {e}") from None

    # --- requests ----------------------------------------------------------------------------

    def invoke(self, body: bytes, content_type: str = CSV, accept: str = CSV) -> bytes:
        """The container's answer to one request, or ContainerError."""
        if self.module is None:
            import xgboost as xgb

            if content_type.split(";")[0].strip().lower() != CSV:
                raise ContainerError(415, f"Content-type {content_type} not supported.")
            rows = _csv_floats(body.decode("utf-8", "replace"))
            expected, got = self.model.num_features(), rows.shape[1]
            if not (expected == got or expected == got + 1):
                raise ContainerError(
                    400,
                    "Unable to evaluate payload provided: Feature size of csv inference data "
                    f"{got} is not consistent with feature size of trained model {expected}",
                )
            # One thread, as the model's nthread: DMatrix's default is every core, which costs
            # a one-record request more in thread start-up than in scoring.
            scores = self.model.predict(xgb.DMatrix(rows, nthread=1), validate_features=False)
            return ",".join(map(str, scores.tolist())).encode()
        data = self._call("input_fn", self._default_input_fn, body, content_type)
        prediction = self._call("predict_fn", self._default_predict_fn, data, self.model)
        answer = self._call("output_fn", self._default_output_fn, prediction, accept)
        if isinstance(answer, tuple):  # (body, content type), as the toolkit allows
            answer = answer[0]
        return answer.encode() if isinstance(answer, str) else bytes(answer)

    def answers(self, rows: list[str]) -> list[str]:
        """Each row's answer as a one-row request gets it (the first field of the output),
        computed in one request when the container answers row for row, else row by row."""
        if not rows:
            return []
        try:
            joined = self.invoke("\n".join(rows).encode()).decode()
            lines = [line for line in joined.replace(",", "\n").splitlines() if line.strip()]
            if len(lines) == len(rows) and (self.module is None or "," not in joined):
                return lines
        except ContainerError:
            pass
        return [self.invoke(r.encode()).decode().split(",")[0].strip() for r in rows]


@dataclass
class LocalHost:
    """Endpoints of the rehearsal: each (endpoint, variant) serves the container of the model
    artifact it names (during a blue/green rollout, the `fleet` a request went to names its
    own); each request is recorded in `invocations`."""

    folder: Path
    algorithm: str
    program: str | None
    read_artifact: Any
    """s3 URL -> the artifact's bytes (the rehearsal reads moto's S3)."""
    containers: dict[str, Container] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    setup_us: dict[str, float] = field(default_factory=dict)
    """How long each artifact's container took to load (read, unpack, model_fn), in this
    process: a serverless cold start's ModelSetupTime."""

    def container(self, url: str) -> Container:
        if url not in self.containers:
            where = self.folder / f"model-{len(self.containers)}"
            started = time.perf_counter()
            self.containers[url] = Container(
                self.read_artifact(url), where, self.algorithm, self.program
            )
            self.setup_us[url] = (time.perf_counter() - started) * 1e6
        return self.containers[url]

    def invoke(self, endpoint: str, variant: str, url: str, body: bytes, content_type: str,
               accept: str, fleet: str = "") -> bytes:  # fmt: skip
        started = time.perf_counter()
        status, answer = 200, b""
        try:
            # Loaded before the clock starts, as a container loads its model before it is
            # InService: ModelLatency is the request's time only.
            container = self.container(url)
            started = time.perf_counter()
            answer = container.invoke(body, content_type, accept)
            return answer
        except ContainerError as err:
            status, answer = err.status, err.message.encode()
            raise
        finally:
            latency = (time.perf_counter() - started) * 1e6
            text = body.decode("utf-8", "replace")
            self.invocations.append(
                Invocation(time.time(), endpoint, variant, latency, status,
                           len(text.strip().splitlines()), text, answer.decode("utf-8", "replace"),
                           fleet)
            )  # fmt: skip
