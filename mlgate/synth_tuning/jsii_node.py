"""Start jsii's node the way a synth on a small machine wants it.

jsii runs every CDK call in one node process, started at `import aws_cdk` from `$JSII_NODE`
(or `node`), with no way to pass V8 flags: NODE_OPTIONS refuses `--single-threaded`.
`use_tuned_node()`, called before that import, points JSII_NODE at the jsii-node script beside
this module, which runs the same node, with these changes (each has a switch, so
bench/synth_time.py measures each in the same run):

- V8 runs no helper threads (`--single-threaded`): it collects garbage and compiles optimized
  and WebAssembly code on node's main thread, not on threads that take CPU from Python, which
  builds the constructs on the other core meanwhile. `--single-threaded-gc` alone (the garbage
  collector only) was 0.6 s slower a synth (bench/synth_time.py's A/B, 8 runs each); a larger
  young generation (`--max-semi-space-size=32`) was no faster. `MLGATE_NODE_TUNING=off` turns
  off all of them.
- node runs jsii's kernel itself, on the pipes Python made (jsii-node says how), instead
  of jsii's relay: a second node process that copies each of a synth's thousands of requests
  and answers between Python and the kernel. `MLGATE_JSII_DIRECT=off` keeps the relay.
- a V8 code cache keyed by content for the 25 MB of JavaScript a synth loads
  (jsii-preload.cjs), in ~/.cache/mlgate/jsii-code-cache. `MLGATE_JSII_CODE_CACHE=off`
  turns it off, `MLGATE_JSII_CODE_CACHE=DIR` moves it.
- CDK's CloudFormation validation engine built and run on a worker thread from the moment
  aws-cdk-lib is loaded (jsii-validation-worker.cjs), with the reports it made kept by
  engine, config, options and template bytes in ~/.cache/mlgate/cfn-validation-cache: an
  unchanged template is not validated again. `MLGATE_VALIDATION_WORKER=off`,
  `MLGATE_VALIDATION_CACHE=off|DIR`.
- the aws-cdk-lib modules the previous run of the same program loaded, loaded ahead while
  app.py imports mlgate after `cdk.App()` (node would only wait then). `MLGATE_JSII_PREFETCH=off`.

bench/synth_time.py measures each change in one run (docs/contributor.md, Benchmarks).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent / "jsii-node"


def use_tuned_node() -> None:
    """Before `import aws_cdk`: jsii's node is the same one, started by the jsii-node script.
    Does nothing where a shell script cannot stand in for node (Windows), or when
    MLGATE_NODE_TUNING=off."""
    if os.name != "posix" or os.environ.get("MLGATE_NODE_TUNING") == "off":
        return
    if os.environ.get("JSII_NODE") == str(LAUNCHER):
        return  # set up already (a subprocess inherits it, with MLGATE_JSII_NODE)
    node = os.environ.get("JSII_NODE") or shutil.which("node")
    if node is None:
        return  # jsii will say it found no node
    os.environ["MLGATE_JSII_NODE"] = node
    os.environ["JSII_NODE"] = str(LAUNCHER)
