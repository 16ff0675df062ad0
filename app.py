#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c manifest=PATH` (a manifest file or a folder of them)."""

import sys

import aws_cdk as cdk

from mlgate.app import build_app
from mlgate.manifest import ManifestBatchError, load_manifests


def main() -> None:
    app = cdk.App()
    target = app.node.try_get_context("manifest") or "manifests/fraud-detection.yaml"
    try:
        manifests = load_manifests(target)
    except ManifestBatchError as err:
        # A bad manifest stops here, before anything is synthesized.
        print("\n".join(err.lines), file=sys.stderr)
        sys.exit(1)
    build_app(app, manifests)
    app.synth()


if __name__ == "__main__":
    main()
