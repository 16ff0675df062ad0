"""The second release deploys: no resource with a name of ours has a replacement-only property
that changes between releases.

CloudFormation replaces a resource when a property in its schema's createOnlyProperties
changes, and cannot replace one with a custom physical name (the new one would need the name
the old one still holds): https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
aws-properties-name.html. What changes between releases here: stack parameters (the released
model package, its baselines) and content hashes of code assets. The schemas are the ones
cfn-lint ships, per region.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlgate.cli.reporting import stack_environments

from .conftest import Synth

ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def create_only(region: str, kind: str) -> set[str]:
    """Top-level property names a change of which replaces the resource."""
    # imported here: cfn-lint (and sympy with it) takes about 2 s to import, which the test
    # worker that does not run these tests need not pay at collection
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind).schema
    except Exception:  # custom resources and types unknown to cfn-lint have no schema
        return set()
    return {p.split("/")[2] for p in schema.get("createOnlyProperties", [])}


def changing(value: Any, parameters: set[str]) -> list[str]:
    """What in a property value changes between releases: parameter refs, asset hashes."""
    found: list[str] = []
    if isinstance(value, dict):
        if value.get("Ref") in parameters:
            found.append(f"parameter {value['Ref']}")
        for inner in value.values():
            found += changing(inner, parameters)
    elif isinstance(value, list):
        for inner in value:
            found += changing(inner, parameters)
    elif isinstance(value, str) and ASSET_HASH.search(value):
        found.append("a code asset's content hash")
    return found


def violations(template: dict[str, Any], region: str) -> list[str]:
    parameters = set(template.get("Parameters", {})) - {"BootstrapVersion"}
    found = []
    for logical, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        fixed = create_only(region, resource["Type"])
        names = sorted(p for p in fixed if p.endswith("Name") and p in props)
        if not names:
            continue
        for prop in sorted(fixed - set(names)):
            for cause in changing(props.get(prop), parameters):
                found.append(
                    f"{logical} ({resource['Type']}) is named by {', '.join(names)} but its "
                    f"replacement-only {prop} depends on {cause}"
                )
    return found


def test_no_named_resource_changes_a_replacement_only_property_between_releases(
    synth: Synth,
) -> None:
    environments = stack_environments(synth.outdir)
    found = []
    for path in synth.template_files:
        region = environments[path.name.removesuffix(".template.json")][1]
        found += [f"{path.name}: {v}" for v in violations(json.loads(path.read_text()), region)]
    assert found == []


def test_the_check_catches_a_named_job_definition_on_a_released_baseline() -> None:
    """The broken form: a fixed JobDefinitionName with the baseline a stack parameter."""
    template = {
        "Parameters": {"BaselineConstraintsUri": {"Type": "String"}},
        "Resources": {
            "Definition": {
                "Type": "AWS::SageMaker::DataQualityJobDefinition",
                "Properties": {
                    "JobDefinitionName": "mlgate-product-staging-data-quality",
                    "DataQualityBaselineConfig": {
                        "ConstraintsResource": {"S3Uri": {"Ref": "BaselineConstraintsUri"}}
                    },
                },
            }
        },
    }
    (found,) = violations(template, "eu-west-1")
    assert "DataQualityBaselineConfig depends on parameter BaselineConstraintsUri" in found
    del template["Resources"]["Definition"]["Properties"]["JobDefinitionName"]
    assert violations(template, "eu-west-1") == []


def test_glue_jobs_and_pipelines_take_new_code_without_replacement(synth: Synth) -> None:
    """Code changes every release: where it sits in a named resource, that property must be
    updatable in place (here: a Glue job's Command, a pipeline's definition)."""
    template = json.loads(next(Path(synth.outdir).glob("*-data.template.json")).read_text())
    jobs = [r for r in template["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    assert jobs
    assert "Command" not in create_only("eu-west-1", "AWS::Glue::Job")
    assert "PipelineDefinition" not in create_only("eu-west-1", "AWS::SageMaker::Pipeline")
