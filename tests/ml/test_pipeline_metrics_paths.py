# owned by the lead: to be reworked with the pipeline
"""Moved verbatim from test_scripts.py: the paths the pipeline's condition steps read exist in
the evaluation report (its `workdir` fixture is gone with the old test_scripts.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlgate.ml.pipeline import definition, metric_json_path


def json_gets(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["Std:JsonGet"]["Path"]] if "Std:JsonGet" in node else []
        return found + [p for v in node.values() for p in json_gets(v)]
    if isinstance(node, list):
        return [p for v in node for p in json_gets(v)]
    return []


def test_every_path_the_pipeline_reads_exists_in_the_evaluation_report(
    workdir: Path, manifest: Any, settings: Any
) -> None:
    report = json.loads((workdir / "evaluation" / "evaluation.json").read_text())
    paths = set(json_gets(definition(manifest, settings)))
    assert paths == {metric_json_path(m.name.value) for m in manifest.metrics.model_metrics}
    for path in paths:
        node: Any = report
        for key in path.split("."):
            node = node[key]
        assert isinstance(node, float), path
