"""Start jsii's node with V8's garbage collector on node's own thread.

jsii runs every CDK call in one node process, started at `import aws_cdk` from `$JSII_NODE`
(or `node`), with no way to pass V8 flags: NODE_OPTIONS refuses `--single-threaded-gc`.
`use_tuned_node()`, called before that import, points JSII_NODE at mlgate/jsii-node, which
runs the same node with that flag.

Why: by default V8 collects garbage on helper threads beside node's main thread. A synth on
two cores has Python building constructs on one while node works on the other, and the helper
threads take CPU from both: node's CloudFormation validation engine starts in 1.5 to 1.7 s by
default and in 1.1 to 1.3 s with the flag, and the default product's synth took 7.8 s with it
against 9.4 s without (bench/synth_time.py, same run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent / "jsii-node"


def use_tuned_node() -> None:
    """Before `import aws_cdk`: jsii's node is the same one, started with the flag. Does
    nothing where a shell script cannot stand in for node (Windows), or when
    MLGATE_NODE_TUNING=off (bench/synth_time.py measures the difference)."""
    if os.name != "posix" or os.environ.get("MLGATE_NODE_TUNING") == "off":
        return
    if os.environ.get("JSII_NODE") == str(LAUNCHER):
        return  # set up already (a subprocess inherits it, with MLGATE_JSII_NODE)
    node = os.environ.get("JSII_NODE") or shutil.which("node")
    if node is None:
        return  # jsii will say it found no node
    os.environ["MLGATE_JSII_NODE"] = node
    os.environ["JSII_NODE"] = str(LAUNCHER)
