"""jsii's node as mlgate runs it (mlgate/synth_tuning/: jsii-node, jsii-preload.cjs): the
kernel in the node process Python started, with no relay process between them, and a code
cache keyed by content. Both must be invisible except in time: the same answers, the same
console output, the same errors, and never a stale or another user's compiled code."""

from __future__ import annotations

import json
import os
import subprocess
from base64 import b64decode
from pathlib import Path
from typing import Any

import pytest

from mlgate.synth_tuning.jsii_node import LAUNCHER

from .conftest import python_code

ROOT = Path(__file__).resolve().parent.parent
PRELOAD = LAUNCHER.parent / "jsii-preload.cjs"

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.environ.get("JSII_NODE") != str(LAUNCHER),
    reason="jsii's node is not mlgate's here (Windows, or MLGATE_NODE_TUNING=off)",
)


def node() -> str:
    return os.environ["MLGATE_JSII_NODE"]


def test_the_kernel_runs_in_the_node_python_started() -> None:
    if os.environ.get("MLGATE_JSII_DIRECT") == "off":
        pytest.skip("MLGATE_JSII_DIRECT=off: jsii's relay is kept")
    from jsii._kernel import Kernel

    pid = Kernel().provider._process._process.pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert os.fsencode(PRELOAD) in argv
    assert argv[-2].endswith(b"/lib/program.js"), argv  # jsii's kernel, not its relay
    assert Path(f"/proc/{pid}/task/{pid}/children").read_text().split() == []
    # fd 3 reads Python's requests, fd 4 takes the answers: the pipes jsii made
    assert os.readlink(f"/proc/{pid}/fd/3").startswith("pipe:")
    assert os.readlink(f"/proc/{pid}/fd/4").startswith("pipe:")
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"


def test_messages_larger_than_a_pipe_go_both_ways() -> None:
    """A request and an answer of 3 MB each: far more than a pipe holds, so both sides must keep
    reading while the other writes."""
    import aws_cdk as cdk

    stack = cdk.Stack(cdk.App(), "Large")
    value = "".join(chr(0x41 + i % 26) for i in range(3_000_000))
    assert cdk.CfnOutput(stack, "Out", value=value).value == value


CONSOLE = """
import aws_cdk as cdk
cdk.SecretValue.plain_text("x")  # deprecated: jsii warns on node's console
try:
    cdk.Duration.minutes(1.5).to_hours()
except RuntimeError as err:
    print("error:", err)
"""


def test_console_output_and_errors_are_those_of_jsiis_relay() -> None:
    """What node writes to its console reaches Python's stderr decoded, and a JavaScript error
    reaches Python as the same exception, as with jsii's own relay."""
    direct = python_code(CONSOLE, JSII_DEPRECATED="warn")
    relay = python_code(CONSOLE, JSII_DEPRECATED="warn", MLGATE_JSII_DIRECT="off")
    assert "aws-cdk-lib.SecretValue#plainText is deprecated" in direct.stderr
    assert direct.stderr == relay.stderr
    assert "'1.5 minutes' cannot be converted into a whole number of hours" in direct.stdout
    assert direct.stdout == relay.stdout


# The code cache, in node alone: the preload is all of it (its console wrapping makes node's
# output JSON lines on stderr, which `run_node` decodes as jsii's Python side does).
def run_node(script: str, cache: Path | str) -> tuple[str, str]:
    result = subprocess.run(
        [node(), "-r", str(PRELOAD), "-e", script],
        env={**os.environ, "MLGATE_JSII_CODE_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = err = ""
    for line in result.stderr.splitlines():
        message = json.loads(line)  # every line: nothing bypassed the wrapping
        out += b64decode(message.get("stdout", "")).decode()
        err += b64decode(message.get("stderr", "")).decode()
    assert result.returncode == 0, err
    return out, err


def entries(cache: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in cache.glob("*/*")}


def package(tmp_path: Path, exports: str) -> Path:
    module = tmp_path / "node_modules" / "answer" / "index.js"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(f"module.exports = {{ value: {exports}, dir: __dirname }};\n")
    return module


def test_the_code_cache_is_filled_once_then_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    module = package(tmp_path, "41 + 1")
    show = f"const m = require({json.dumps(str(module))}); console.log(m.value, m.dir)"
    first, _ = run_node(show, cache)
    assert first == f"42 {module.parent}\n"
    written = entries(cache)
    assert len(written) == 1
    (folder,) = cache.iterdir()
    assert folder.stat().st_mode & 0o777 == 0o700
    second, _ = run_node(show, cache)
    assert second == first
    assert entries(cache) == written  # used, not made again


def test_a_changed_file_of_the_same_size_is_never_served_stale(tmp_path: Path) -> None:
    """V8 checks a cache entry against the source's length only: the key must be the content."""
    cache = tmp_path / "cache"
    module = package(tmp_path, "41 + 1")
    show = f"console.log(require({json.dumps(str(module))}).value)"
    assert run_node(show, cache)[0] == "42\n"
    package(tmp_path, "41 - 1")
    assert run_node(show, cache)[0] == "40\n"
    assert len(entries(cache)) == 2


def test_a_damaged_entry_is_rejected_and_made_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    module = package(tmp_path, "6 * 7")
    show = f"console.log(require({json.dumps(str(module))}).value)"
    run_node(show, cache)
    (entry,) = cache.glob("*/*")
    entry.write_bytes(b"\0" * 64)
    assert run_node(show, cache)[0] == "42\n"
    assert entry.stat().st_size > 64


def test_a_cache_other_users_can_write_to_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    module = package(tmp_path, "42")
    out, err = run_node(f"console.log(require({json.dumps(str(module))}).value)", cache)
    assert out == "42\n"
    assert "jsii-code-cache off" in err
    assert "not private" in err
    assert not list(cache.glob("*/*"))


def test_errors_point_at_the_same_place_with_the_cache(tmp_path: Path) -> None:
    """Minified packages are one long line: a stack trace's column on line 1 must not move by
    the wrapper the cache compiles around a module."""
    module = tmp_path / "node_modules" / "thrower" / "index.js"
    module.parent.mkdir(parents=True)
    module.write_text("const a = 1; module.exports = () => { throw new Error('here') };\n")
    show = (
        f"try {{ require({json.dumps(str(module))})() }} catch (e) "
        "{ console.log(e.stack.split('\\n')[1].trim()) }"
    )
    with_cache, _ = run_node(show, tmp_path / "cache")
    without, _ = run_node(show, "off")
    assert with_cache == without
    assert with_cache.strip().endswith("index.js:1:45)"), with_cache


# Modules loaded ahead (jsii-preload.cjs part 5): one program, run three times with its own
# cache; the third run builds less than the first two.
AHEAD = """
import os, sys
import aws_cdk as cdk
from aws_cdk import aws_sns as sns, aws_sqs as sqs
app = cdk.App(outdir=sys.argv[1])
stack = cdk.Stack(app, "Ahead")
sqs.Queue(stack, "Queue")
if not os.environ.get("SMALL"):
    sns.Topic(stack, "Topic")
app.synth()
print(open(os.path.join(sys.argv[1], "Ahead.template.json")).read())
"""


def test_modules_are_loaded_ahead_from_the_last_runs_list(tmp_path: Path) -> None:
    report = tmp_path / "report.json"

    def run(**env: str) -> tuple[str, dict[str, Any], list[str]]:
        # its own program (its folder is in its command line), so its own list; no validation
        result = python_code(
            AHEAD,
            str(tmp_path / "out"),
            MLGATE_JSII_PREFETCH_REPORT=str(report),
            CDK_VALIDATION="false",
            **env,
        )
        figures = json.loads(report.read_text())
        return result.stdout, figures, json.loads(Path(figures["list"]).read_text())

    first, figures, listed = run()
    assert figures["ahead"] == 0  # nothing listed yet
    assert figures["byCdk"] == len(listed) > 0
    assert any(name.startswith("aws-cdk-lib/aws-sns/") for name in listed)

    second, again, _ = run()
    assert second == first  # the same template
    # the same modules, most of them loaded ahead; CDK loaded those cdk.App() needs itself
    assert again["ahead"] + again["byCdk"] == figures["byCdk"]
    assert again["ahead"] > again["byCdk"]
    assert 0 < again["used"] <= again["ahead"]

    _, small, shorter = run(SMALL="1")
    assert small["ahead"] > 0
    # the topic's modules were loaded ahead, never asked for, and are listed no more
    assert not any(name.startswith("aws-cdk-lib/aws-sns/") for name in shorter)
    Path(figures["list"]).unlink()


def test_loading_ahead_can_be_turned_off(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    python_code(
        AHEAD,
        str(tmp_path / "out"),
        MLGATE_JSII_PREFETCH_REPORT=str(report),
        MLGATE_JSII_PREFETCH="off",
        CDK_VALIDATION="false",
    )
    assert (tmp_path / "out" / "Ahead.template.json").exists()
    assert not report.exists()
