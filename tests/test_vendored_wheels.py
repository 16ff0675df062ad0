"""The wheel sets mlgate ships (mlgate/infra/wheelsets.py) are what the tests run, and install with
no network: the hooks' Powertools layer is built from requirements-dev.txt's Powertools, the
Evidently job installs from its own wheelhouse only, hash-checked, and synth never downloads."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from mlgate.infra import wheelsets
from mlgate.infra.constructs import evidently, hooks
from mlgate.infra.ml.images import MONITORING_FRAMEWORK
from mlgate.infra.wheelsets import MONITORING, POWERTOOLS, MissingWheelSet, WheelSet, dev_pin, pins
from mlgate.manifest import ENV_NAMES
from tools import wheels

from .conftest import ROOT, Synth, python_code

PUBLIC_LAYER = re.compile(r"arn:aws[a-z-]*:lambda:[^\"]*:layer:")
UNREACHABLE = "http://127.0.0.1:9/simple"
"""The discard port, closed: any attempt to use it fails at once."""


def asset_key(wheel_set: WheelSet) -> str:
    """The S3 key CDK gives an asset with a custom hash: the sha256 of that hash."""
    return hashlib.sha256(wheel_set.key.encode()).hexdigest() + ".zip"


def network_off() -> list[str]:
    """A command prefix that runs without any network: a new network namespace (only a
    loopback that is down) when this machine allows one, else nothing (the caller then points
    every index and proxy at a closed port)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


# --- (a) the layer is the Powertools the tests run ------------------------------------------


def test_the_layer_carries_requirements_dev_powertools() -> None:
    with zipfile.ZipFile(POWERTOOLS.built()) as layer:
        names = layer.namelist()
        version_py = layer.read("python/aws_lambda_powertools/shared/version.py").decode()
    (version,) = re.findall(r'^VERSION = "([^"]+)"$', version_py, re.MULTILINE)
    relock = "relock the layer: `python tools/wheels.py lock powertools`, then `make wheels`"
    assert version == dev_pin("aws-lambda-powertools"), relock
    assert version == metadata.version("aws-lambda-powertools"), relock
    # Lambda's layout for Python (python/ on the path); no console scripts. Its bytecode is the
    # runtime's own (tests/test_layer_bytecode.py).
    assert all(n.startswith("python/") for n in names)
    assert not [n for n in names if n.endswith(".pyc") and "cpython-313" not in n]
    assert not [n for n in names if n.startswith("python/bin/")]


def test_every_package_of_the_layer_is_at_the_version_the_tests_run() -> None:
    """The layer's closure too (jmespath, typing-extensions, pydantic and its own): the lock
    holds them to this virtualenv's versions, and a drift of either side fails here."""
    stale = "requirements-powertools.lock is stale: run `python tools/wheels.py lock powertools`"
    assert POWERTOOLS.pins["aws-lambda-powertools"] == dev_pin("aws-lambda-powertools"), stale
    installed = {name: metadata.version(name) for name in POWERTOOLS.pins}
    assert installed == POWERTOOLS.pins, stale
    with zipfile.ZipFile(POWERTOOLS.built()) as layer:
        dist_infos = {n.split("/")[1] for n in layer.namelist() if ".dist-info/" in n}
    shipped = dict(d.removesuffix(".dist-info").rsplit("-", 1) for d in dist_infos)
    assert {wheelsets.canonical(n): v for n, v in shipped.items()} == POWERTOOLS.pins


def test_the_layer_carries_the_parser_and_pydantic_core_built_for_the_runtime() -> None:
    """Powertools' parser (the hooks read their events with it) needs pydantic, whose core is
    compiled: the layer must carry the build for CPython 3.13 on x86_64 Linux, the hooks'
    runtime, whatever machine built the layer, and the pydantic the tests run."""
    assert "parser" in wheelsets.POWERTOOLS_EXTRAS
    with zipfile.ZipFile(POWERTOOLS.built()) as layer:
        names = layer.namelist()
        (wheel,) = [n for n in names if re.fullmatch(r"python/pydantic_core-[^/]+/WHEEL", n)]
        tags = re.findall(r"^Tag: (.+)$", layer.read(wheel).decode(), re.MULTILINE)
    python = f"cp{POWERTOOLS.python.replace('.', '')}"
    version = POWERTOOLS.python.replace(".", "")
    assert f"python/pydantic_core/_pydantic_core.cpython-{version}-x86_64-linux-gnu.so" in names
    assert tags
    assert all(t.startswith(f"{python}-{python}-manylinux") for t in tags), tags
    assert all(t.endswith("_x86_64") for t in tags), tags
    assert (
        POWERTOOLS.pins["pydantic"]
        == metadata.version("pydantic")
        == pins(ROOT / "requirements.txt")["pydantic"]
    )
    assert POWERTOOLS.pins["pydantic-core"] == metadata.version("pydantic-core")


def test_the_hooks_use_mlgates_layer_not_a_public_one(synth: Synth) -> None:
    """Every hook (a function Powertools configures) takes the layer of its own stack, built
    from the powertools set's zip; no template names a layer ARN."""
    hooks_seen = 0
    for path in synth.template_files:
        text = path.read_text()
        assert not PUBLIC_LAYER.search(text), f"{path.name} names a layer by ARN"
        resources = json.loads(text).get("Resources", {})
        layers = {
            logical: r["Properties"]
            for logical, r in resources.items()
            if r["Type"] == "AWS::Lambda::LayerVersion"
        }
        functions = {
            logical: r["Properties"]
            for logical, r in resources.items()
            if r["Type"] == "AWS::Lambda::Function"
        }
        for logical, props in functions.items():
            if "POWERTOOLS_SERVICE_NAME" not in props.get("Environment", {}).get("Variables", {}):
                continue  # not a hook (CDK's own handlers)
            hooks_seen += 1
            (layer,) = props["Layers"]
            content = layers[layer["Ref"]]
            assert content["Content"]["S3Key"] == asset_key(POWERTOOLS), logical
            assert content["CompatibleRuntimes"] == [props["Runtime"]]
        assert len(layers) <= 1, f"{path.name}: one layer per stack, shared by its hooks"
    assert hooks_seen
    assert (synth.outdir / f"asset.{asset_key(POWERTOOLS)}").is_file()


def test_every_hook_skips_pydantics_plugin_scan_and_the_release_hooks_name_their_metrics(
    synth: Synth,
) -> None:
    """The layer's pydantic looks for plugins in every installed distribution at the first
    model unless told there are none; the release path's hooks publish EMF metrics, whose
    namespace Powertools reads from POWERTOOLS_METRICS_NAMESPACE (a flush without one raises)."""
    release_path = {"release", "deployer", "deploy_verifier", "quality_gate"}
    seen = set()
    for path in synth.template_files:
        for fn in json.loads(path.read_text()).get("Resources", {}).values():
            if fn["Type"] != "AWS::Lambda::Function":
                continue
            env = fn["Properties"].get("Environment", {}).get("Variables", {})
            if "POWERTOOLS_SERVICE_NAME" not in env:
                continue
            assert env["PYDANTIC_DISABLE_PLUGINS"] == "__all__", path.name
            hook = fn["Properties"]["Handler"].split(".")[0]
            if hook in release_path:
                seen.add(hook)
                assert re.fullmatch(
                    r"mlgate/[a-z0-9-]+/release", env["POWERTOOLS_METRICS_NAMESPACE"]
                )
    assert seen == release_path


def test_synth_links_the_sets_into_the_assembly_rather_than_copying_them(synth: Synth) -> None:
    """CDK stages nothing that is in the cloud assembly already: each set is there as a hard
    link to the cache (the same bytes, no 200 MB copy per synth) where the file system allows."""
    for wheel_set in wheelsets.SETS.values():
        staged = synth.outdir / f"asset.{asset_key(wheel_set)}"
        cached = wheel_set.built()
        if staged.stat().st_dev == cached.stat().st_dev:
            assert staged.samefile(cached)
        else:
            assert staged.read_bytes() == cached.read_bytes()


def test_each_set_targets_where_it_runs() -> None:
    assert hooks.runtime().name == f"python{POWERTOOLS.python}"
    assert hooks.architecture().name == "x86_64"
    assert MONITORING_FRAMEWORK.endswith(f"py{MONITORING.python.replace('.', '')}")


# --- (d) the locks agree with the pins -------------------------------------------------------


def test_the_monitoring_lock_pins_exactly_requirements_monitoring() -> None:
    assert MONITORING.pins == pins(ROOT / "requirements-monitoring.txt"), (
        "requirements-monitoring.lock is stale: run `python tools/wheels.py lock monitoring`"
    )
    assert all(len(w.hashes) >= 1 for w in MONITORING.wheels)


def test_a_lock_line_without_its_hash_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("six==1.17.0 \\\n    --hash=sha256:" + "0" * 64 + "\nnumpy==2.4.6\n")
    with pytest.raises(ValueError, match=re.escape("hashed requirement: 'numpy==2.4.6'")):
        _ = WheelSet("x", lock, "x", "3.12", 39, "wheelhouse", "x").wheels


def test_the_key_moves_with_the_wheels_not_with_comments(tmp_path: Path) -> None:
    def key(text: str) -> str:
        lock = tmp_path / f"{hashlib.sha256(text.encode()).hexdigest()}.lock"
        lock.write_text(text)
        return WheelSet("x", lock, "x", "3.12", 39, "wheelhouse", "x").key

    line = "six==1.17.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert key(line) == key("# a comment\n" + line)
    assert key(line) != key(line.replace("0" * 64, "1" * 64))
    assert key(line) != key(line.replace("1.17.0", "1.16.0"))


# --- (b) the wheelhouse installs with the network off ---------------------------------------


def offline_install(wheelhouse: Path, lock: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """pip resolving `lock` for the job's image from `wheelhouse` alone, hash-checked, with no
    network: first a probe that pypi.org cannot be reached, then the install (a dry run with
    the image's platform; its report lists what it would install)."""
    probe = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection(('pypi.org', 443), timeout=5)\n"
        "except OSError:\n"
        "    sys.exit(0)\n"
        "sys.exit('the network is on')\n"
    )
    install = [
        sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check",
        "--quiet", "--dry-run", "--ignore-installed", "--report", str(target / "report.json"),
        "--no-index", "--find-links", str(wheelhouse), "--require-hashes",
        *wheels.target_flags(MONITORING), "--target", str(target / "site"), "-r", str(lock),
    ]  # fmt: skip
    script = 'set -e; python3 -c "$1"; shift; exec "$@"'
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(target),
        # Where no network namespace can be made, every way to the internet is a closed port.
        "PIP_INDEX_URL": UNREACHABLE,
        "HTTP_PROXY": UNREACHABLE,
        "HTTPS_PROXY": UNREACHABLE,
        "http_proxy": UNREACHABLE,
        "https_proxy": UNREACHABLE,
    }
    off = network_off()
    if not off:  # the probe then proves nothing: a proxy setting does not stop a socket
        probe = "pass"
    return subprocess.run(
        [*off, "/bin/sh", "-c", script, "offline", probe, *install],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped wheelhouse, unpacked as the job unpacks it."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    with zipfile.ZipFile(MONITORING.built()) as archive:
        archive.extractall(folder)
    return folder


def test_the_wheelhouse_installs_the_lock_with_the_network_off(
    wheelhouse: Path, tmp_path: Path
) -> None:
    run = offline_install(wheelhouse, MONITORING.lock, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())["install"]
    got = {wheelsets.canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in report}
    assert got == MONITORING.pins
    assert all(i["download_info"]["url"].startswith("file://") for i in report)
    assert len(list(wheelhouse.glob("*.whl"))) == len(MONITORING.wheels)


def test_the_stage_and_publish_steps_install_boto3_s_whole_closure_offline(
    wheelhouse: Path, tmp_path: Path
) -> None:
    """The networked steps install boto3 and nothing else of the lock, by hash: pip with
    --require-hashes refuses a dependency the subset leaves unpinned, so this fails the day
    boto3 needs a package evidently.AWS_CLIENT does not list."""
    subset = tmp_path / evidently.AWS_CLIENT_REQUIREMENTS
    subset.write_text(evidently.lock_subset(MONITORING.lock.read_text(), evidently.AWS_CLIENT))
    run = offline_install(wheelhouse, subset, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())["install"]
    got = {wheelsets.canonical(i["metadata"]["name"]) for i in report}
    assert got == {wheelsets.canonical(n) for n in evidently.AWS_CLIENT}
    assert "evidently" not in subset.read_text()


def test_a_subset_missing_a_dependency_is_refused(wheelhouse: Path, tmp_path: Path) -> None:
    """The broken form of the closure: boto3 without botocore does not install by hash."""
    subset = tmp_path / "partial.txt"
    subset.write_text(evidently.lock_subset(MONITORING.lock.read_text(), ("boto3",)))
    run = offline_install(wheelhouse, subset, tmp_path)
    assert run.returncode != 0
    assert "hash" in run.stderr.lower()


def test_a_wheel_that_is_not_the_locked_one_is_refused(wheelhouse: Path, tmp_path: Path) -> None:
    """--require-hashes at work: a locked pin whose hash is not its wheel's does not install."""
    (six,) = [w for w in MONITORING.wheels if w.name == "six"]
    assert "0" * 64 not in six.hashes
    lock = tmp_path / "tampered.txt"
    lock.write_text(f"six=={six.version} --hash=sha256:{'0' * 64}\n")
    run = offline_install(wheelhouse, lock, tmp_path)
    assert run.returncode != 0
    assert "DO NOT MATCH THE HASHES" in run.stderr


# --- (c) the job installs from the wheelhouse alone ------------------------------------------


def jobs(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The Processing requests of every step of the Evidently pipeline."""
    (pipeline,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"
    ]
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in body["Fn::Join"][1])
    return [step["Arguments"] for step in json.loads(text)["Steps"]]


def install_problems(command: str) -> list[str]:
    """What is wrong with a step's pip install: an index, a missing --no-index or
    --require-hashes, or a requirement not from the wheelhouse."""
    installs = [part for part in command.split(" && ") if "pip install" in part]
    problems = [] if installs else ["no pip install"]
    for install in installs:
        words = install.split()
        problems += [
            f"no {flag}" for flag in ("--no-index", "--require-hashes") if flag not in words
        ]
        if f"--find-links {evidently.WHEELHOUSE}" not in install:
            problems.append("not from the wheelhouse")
    if re.search(r"--index-url|--extra-index-url|\s-i\s|https?://", command):
        problems.append("an index")
    return problems


@pytest.mark.parametrize(
    "broken",
    [
        evidently.ENTRYPOINT.replace(" --require-hashes", ""),
        evidently.ENTRYPOINT.replace(" --no-index", ""),
        evidently.ENTRYPOINT.replace("--no-index", "--index-url https://pypi.org/simple"),
        evidently.STAGE_ENTRYPOINT.replace(" --require-hashes", ""),
    ],
)
def test_the_install_check_fails_on_an_unhashed_or_indexed_install(broken: str) -> None:
    assert install_problems(broken)


@pytest.mark.parametrize("env", ENV_NAMES)
def test_the_job_installs_from_its_wheelhouse_with_hashes_and_no_index(
    synth: Synth, env: str
) -> None:
    for path in synth.outdir.glob(f"*-{env}-monitoring.template.json"):
        template = json.loads(path.read_text())
        requests = jobs(template)
        assert len(requests) == 3
        for request in requests:
            command = request["AppSpecification"]["ContainerEntrypoint"][2]
            assert install_problems(command) == [], command
            assert f"-e {evidently.WHEELS_INPUT}/*.zip {evidently.WHEELHOUSE}" in command
            inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
            assert inputs["wheels"]["LocalPath"] == evidently.WHEELS_INPUT
            assert inputs["wheels"]["S3Uri"].endswith(f"/{asset_key(MONITORING)}")
        # The monitor role reads that object (and nothing else of the asset bucket but the source).
        policies = json.dumps(
            [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
        )
        assert asset_key(MONITORING) in policies, path.name
    assert (synth.outdir / f"asset.{asset_key(MONITORING)}").is_file()


def test_the_job_source_ships_the_lock_as_its_requirements(synth: Synth) -> None:
    import tarfile

    built = sorted(synth.outdir.glob("mlgate-build/*/*/monitoring-sourcedir.tar.gz"))
    assert built
    for path in built:
        with tarfile.open(path) as tar:
            requirements = tar.extractfile("requirements.txt").read()  # type: ignore[union-attr]
        assert requirements == MONITORING.lock.read_bytes()


# --- synth never downloads --------------------------------------------------------------------


def test_synth_stops_in_one_line_when_a_set_is_not_built(tmp_path: Path) -> None:
    """app.py as `cdk synth` runs it, with an empty wheel cache: exit 1, one line naming the
    command that builds the set, and nothing downloaded."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    with pytest.raises(subprocess.CalledProcessError) as failed:
        python_code(
            "import runpy; runpy.run_path('app.py', run_name='__main__')",
            MLGATE_WHEEL_CACHE=str(tmp_path / "empty"),
            CDK_OUTDIR=str(tmp_path / "out"),
            CDK_CONTEXT_JSON=json.dumps(context),
        )
    assert failed.value.returncode == 1
    lines = failed.value.stderr.strip().splitlines()
    assert len(lines) == 1, failed.value.stderr
    assert "wheel set" in lines[0]
    assert f"run `{wheelsets.BUILD_COMMAND}`" in lines[0]
    assert not (tmp_path / "empty").exists()


def test_a_built_set_is_not_downloaded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: str) -> None:
        raise AssertionError(f"pip ran: {args}")

    monkeypatch.setattr(wheels, "pip", no_pip)
    for wheel_set in wheelsets.SETS.values():
        assert wheels.build(wheel_set) == wheel_set.built()


def test_missing_wheel_set_is_a_one_line_exit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(wheelsets, "CACHE", tmp_path)
    with pytest.raises(MissingWheelSet) as missing:
        POWERTOOLS.built()
    assert "\n" not in str(missing.value.code)
    assert "requirements-powertools.lock" in str(missing.value.code)
