#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c manifest=PATH` (a manifest file or a folder of them)."""

import contextlib
import gc
import importlib
import os
import shutil
import sys
import threading
from pathlib import Path

# Python's cyclic garbage collector stays off in this short-lived process: a synth makes
# almost no cyclic garbage (about 2,500 unreachable objects after building four products, and
# the same peak memory), yet the collector ran some 430 times, mostly over the modules being
# imported: 0.4 to 0.5 s of CPU, 0.1 to 0.8 s of a synth's wall time in two interleaved runs
# (bench/synth_time.py measures it). MLGATE_PYTHON_GC=on keeps it.
if os.environ.get("MLGATE_PYTHON_GC") != "on":
    gc.disable()

from mlgate.jsii_checks import skip_jsii_type_checks
from mlgate.jsii_node import use_tuned_node

use_tuned_node()  # before aws_cdk's import starts node: mlgate/jsii_node.py says why
skip_jsii_type_checks()  # before aws_cdk's import too: mlgate/jsii_checks.py says why

# The two imports below mostly wait, with the GIL released, while node loads their jsii
# assemblies (about half a second). mlgate's manifest models (pydantic; about 0.4 s of Python
# and no CDK) are imported on a thread meanwhile: 0.2 to 0.4 s less per synth
# (an interleaved A/B, 8 runs each). Python's import locks keep the two apart.


def import_manifest_models() -> None:
    with contextlib.suppress(BaseException):  # main()'s own import reports a failure, once
        importlib.import_module("mlgate.manifest")


MANIFEST_IMPORT = threading.Thread(target=import_manifest_models, name="import", daemon=True)
MANIFEST_IMPORT.start()

import aws_cdk as cdk  # noqa: E402
import cdk_nag  # noqa: E402, F401  (loads its jsii assembly now, before the engine starts)

from mlgate.validation_engine import start_validation_engine  # noqa: E402


def main() -> None:
    outdir = os.environ.get("CDK_OUTDIR")
    fresh_outdir = outdir is not None and not Path(outdir).exists()
    app = cdk.App()
    # Node builds CDK's CloudFormation validation engine while Python imports mlgate and reads
    # the manifests below (mlgate/validation_engine.py): about half a second less per synth.
    engine = start_validation_engine()
    MANIFEST_IMPORT.join()
    from mlgate.app import build_app
    from mlgate.manifest import ManifestBatchError, load_manifests

    # cdk.json names the default product; `-c manifest=PATH` (a product folder, its
    # manifest.yaml, or a folder of product folders) overrides it.
    target = app.node.try_get_context("manifest") or "examples"
    try:
        manifests = load_manifests(target)
    except ManifestBatchError as err:
        # A bad manifest stops here: nothing synthesized, no output folder left behind.
        engine.wait()
        if fresh_outdir and outdir is not None:
            shutil.rmtree(outdir, ignore_errors=True)
        print("\n".join(err.lines), file=sys.stderr)
        sys.exit(1)
    build_app(app, manifests)
    engine.register(app)
    app.synth()
    # The cloud assembly is written and closed: skip the interpreter's teardown (about a second
    # with the SDK's modules loaded). tests/test_determinism.py runs this file as `cdk` does
    # and compares what it wrote, byte for byte, with an in-process synthesis.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
