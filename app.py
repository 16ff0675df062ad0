#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c manifest=PATH` (a product folder, its manifest.yaml, or a
folder of product folders; cdk.json names the default)."""

from mlgate import synth_tuning

# Speed only, before aws_cdk loads; MLGATE_FAST_SYNTH=off runs stock CDK (docs/contributor.md).
synth_tuning.tune()

import aws_cdk as cdk  # noqa: E402

from mlgate.infra.app import build_app, fresh_outdir, manifests_or_exit  # noqa: E402


def main() -> None:
    fresh = fresh_outdir()  # before cdk.App() creates it
    app = cdk.App()
    target = app.node.try_get_context("manifest") or "examples"
    synth_tuning.synthesize(app, lambda: build_app(app, manifests_or_exit(target, fresh)))


if __name__ == "__main__":
    main()
