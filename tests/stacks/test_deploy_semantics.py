"""What the release hooks meet when they update a Serving stack for real."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_serving_stacks_need_no_ssm_read_to_update(synth: Any, product: Any, env: str) -> None:
    """CDK's BootstrapVersion parameter is an SSM parameter type, resolved with the caller's
    permissions on every update: the deploy hooks update Serving stacks, so those carry none."""
    template = synth.template(product.extra[f"serving-{env}"]).to_json()
    assert "BootstrapVersion" not in template.get("Parameters", {})
    assert "CheckBootstrapVersion" not in template.get("Rules", {})


def test_stacks_deployed_only_by_cdk_keep_the_bootstrap_check(synth: Any, product: Any) -> None:
    template = synth.template(product.extra["data"]).to_json()
    assert "BootstrapVersion" in template["Parameters"]
