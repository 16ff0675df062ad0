"""Synth tuning: `cdk synth` faster on a small machine, and nothing else.

app.py makes two calls: `tune()` before aws_cdk loads, and `synthesize(app, build)`. Every
lever keeps templates and assets byte-identical (tests/test_synth_tuning.py synthesizes every
example with tuning on and off and compares them):

- Python's cyclic garbage collector stays off in this short-lived process (it ran ~430 times
  over the modules being imported; a synth makes almost no cyclic garbage). MLGATE_PYTHON_GC=on.
- jsii's node runs as mlgate/synth_tuning/jsii-node starts it (jsii_node.py): no V8 helper
  threads, jsii's kernel on Python's own pipes, a V8 code cache, modules loaded ahead and CDK's
  validation engine on a worker thread with its reports kept (jsii-preload.cjs).
- jsii's runtime type checks are skipped in synth (jsii_checks.py): mypy checks the stacks and
  the tests build every stack with them on.
- mlgate's manifest models are imported on a thread while node loads aws-cdk-lib.
- CDK's CloudFormation validation engine is built while Python builds the app
  (validation_engine.py), and the process exits without the interpreter's teardown once the
  cloud assembly is written.

MLGATE_FAST_SYNTH=off turns all of it off. So does a version of jsii, aws-cdk-lib, cdk-nag or
node other than versions.SUPPORTED: tuning then prints one line and stock CDK runs. Each lever
has its own switch too (bench/synth_time.py measures each; its notes keep the figures).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

_state: dict[str, Any] = {}


def enabled() -> bool:
    """Whether tune() applied the tuning in this process."""
    return bool(_state.get("tuned"))


def tune() -> bool:
    """Before `import aws_cdk`: apply every lever, unless MLGATE_FAST_SYNTH=off or a version
    moved (then one line on stderr). Returns whether tuning is on."""
    if os.environ.get("MLGATE_FAST_SYNTH") == "off" or "aws_cdk" in sys.modules:
        return False
    from mlgate.synth_tuning.versions import moved

    changed = moved()
    if changed:
        print(f"mlgate: synth tuning stands down, stock CDK runs: {'; '.join(changed)} "
              "(mlgate/synth_tuning/versions.py)", file=sys.stderr)  # fmt: skip
        return False
    if os.environ.get("MLGATE_PYTHON_GC") != "on":
        gc.disable()
    from mlgate.synth_tuning.jsii_checks import skip_jsii_type_checks
    from mlgate.synth_tuning.jsii_node import use_tuned_node

    use_tuned_node()
    skip_jsii_type_checks()

    def import_manifest_models() -> None:
        with contextlib.suppress(BaseException):  # the app's own import reports a failure
            importlib.import_module("mlgate.manifest")

    # aws-cdk-lib's import mostly waits, the GIL released, while node loads its assembly:
    # the manifest models (pydantic, no CDK) import meanwhile; Python's import locks keep the
    # two apart.
    thread = threading.Thread(target=import_manifest_models, name="import", daemon=True)
    thread.start()
    import aws_cdk  # noqa: F401
    import cdk_nag  # noqa: F401  (its assembly loads before the validation engine starts)

    _state.update(tuned=True, manifest_import=thread)
    return True


def synthesize(app: Any, build: Callable[[], object]) -> None:
    """Build the app (`build()`) and write its cloud assembly. Tuned, CDK's validation engine
    is built meanwhile, and the process exits once the assembly is written."""
    if not enabled():
        build()
        app.synth()
        return
    from mlgate.synth_tuning.validation_engine import start_validation_engine

    engine = start_validation_engine()
    _state["manifest_import"].join()
    try:
        build()
    except BaseException:
        engine.wait()  # jsii's pipe back as it was before the error is reported
        raise
    engine.register(app)
    app.synth()
    # tests/test_determinism.py runs app.py as `cdk` does and compares what it wrote, byte for
    # byte, with an in-process synthesis: nothing written may be lost to the early exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
