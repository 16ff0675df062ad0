"""preprocess.py --batch-input (a batch run's prepare job): the curated rows as the transform
job reads them, `id,<payload...>` per line with no header, in id order; --limit keeps the first
N ids; meta/rows.json counts them. For every example product, from its own manifest: the
encoded payload is the training layout (mlgate's preprocess), the raw one the columns named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgate.infra.product_code import training_contract
from mlgate.manifest import load_manifest
from mlgate.runtime.ml.scripts import preprocess

from ..conftest import EXAMPLES

MANIFESTS = sorted(EXAMPLES.glob("*/manifest.yaml"))
PRODUCTS = [pytest.param(p, id=p.parent.name) for p in MANIFESTS]
IDS = ["id-c", "id-a", "id-d", "id-b"]  # written out of order


def contract_of(path: Path) -> dict[str, Any]:
    return training_contract(load_manifest(path))


def value(feature: dict[str, Any], row: int) -> Any:
    """Row `row`'s value of a feature: numbers 1.5, 2.5, ...; categories in declared order,
    the last row a value the manifest does not declare."""
    if feature["kind"] == "numeric":
        return row + 1.5
    declared = feature["values"]
    return declared[row % len(declared)] if row < len(IDS) - 1 else "undeclared"


def curated(contract: dict[str, Any], base: Path) -> pd.DataFrame:
    """A small curated table: the id, every feature, written as parquet in a Hive partition
    (read_curated adds the partition key as a column, which nothing here names)."""
    frame = pd.DataFrame(
        {contract["id_column"]: IDS}
        | {f["name"]: [value(f, i) for i in range(len(IDS))] for f in contract["features"]}
    )
    folder = base / "input" / "event_date=2026-12-01"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet", index=False)
    (base / "contract").mkdir()
    (base / "contract" / "contract.json").write_text(json.dumps(contract))
    return frame


def encoded(contract: dict[str, Any], frame: pd.DataFrame, row: int) -> str:
    """The line the training layout gives row `row`, computed here from the contract alone."""
    fields = [frame[contract["id_column"]][row]]
    for feature in contract["features"]:
        found = frame[feature["name"]][row]
        if feature["kind"] == "numeric":
            fields.append(repr(float(found)))
            continue
        for option in [*feature["values"], "other"]:
            hit = found == option or (option == "other" and found not in feature["values"])
            fields.append("1.0" if hit else "0.0")
    return ",".join(fields)


def output(base: Path) -> tuple[list[str], dict[str, Any]]:
    lines = (base / "output" / "input" / "part-00000.csv").read_text().splitlines()
    return lines, json.loads((base / "output" / "meta" / "rows.json").read_text())


def default_layout(contract: dict[str, Any]) -> bool:
    try:
        preprocess.payload_layout(contract)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("path", PRODUCTS)
def test_encoded_input_is_the_training_layout_in_id_order(path: Path, tmp_path: Path) -> None:
    contract = training_contract(load_manifest(path))
    frame = curated(contract, tmp_path)
    if not default_layout(contract):
        # A product with its own preprocess: mlgate cannot encode its payload, and says so.
        with pytest.raises(ValueError, match="brings its own preprocess"):
            preprocess.main(["--batch-input", "--payload", "encoded"], tmp_path)
        return
    counts = preprocess.main(["--batch-input", "--payload", "encoded"], tmp_path)
    lines, meta = output(tmp_path)
    order = sorted(range(len(IDS)), key=lambda i: IDS[i])
    assert lines == [encoded(contract, frame, i) for i in order]
    assert lines[0].startswith("id-a,")
    assert not lines[0].startswith(contract["id_column"])
    assert len(lines[0].split(",")) == 1 + len(contract["payload_columns"])
    assert meta == counts == {"rows": len(IDS)}


@pytest.mark.parametrize("path", PRODUCTS)
def test_limit_keeps_the_first_ids_whatever_the_file_order(path: Path, tmp_path: Path) -> None:
    contract = training_contract(load_manifest(path))
    curated(contract, tmp_path)
    names = [f["name"] for f in contract["features"]]
    argv = ["--batch-input", "--payload", "raw", "--columns", ",".join(names), "--limit", "2"]
    assert preprocess.main(argv, tmp_path) == {"rows": 2}
    lines, meta = output(tmp_path)
    assert [line.split(",")[0] for line in lines] == ["id-a", "id-b"]
    assert meta == {"rows": 2}


# An example with mlgate's own preprocess (the built-in algorithm's layout).
BUILT_IN = next(p for p in MANIFESTS if default_layout(contract_of(p)))


def test_raw_input_keeps_the_request_columns_as_they_are(tmp_path: Path) -> None:
    """Raw: the named columns in the order named, values untouched, a comma quoted."""
    contract = contract_of(BUILT_IN)
    (tmp_path / "contract").mkdir()
    (tmp_path / "contract" / "contract.json").write_text(json.dumps(contract))
    (tmp_path / "input").mkdir()
    id_column = contract["id_column"]
    pd.DataFrame({id_column: ["b", "a"], "note": ["x, y", "plain"], "n": [2, 1]}).to_csv(
        tmp_path / "input" / "part.csv", index=False
    )
    preprocess.main(["--batch-input", "--payload", "raw", "--columns", "n,note"], tmp_path)
    assert output(tmp_path) == (["a,1,plain", 'b,2,"x, y"'], {"rows": 2})


def test_a_column_the_payload_needs_is_named_when_missing(tmp_path: Path) -> None:
    contract = contract_of(BUILT_IN)
    curated(contract, tmp_path)
    with pytest.raises(ValueError, match=r"lacks \['not_there'\]"):
        preprocess.main(["--batch-input", "--payload", "raw", "--columns", "not_there"],
                        tmp_path)  # fmt: skip


def test_no_curated_file_is_an_empty_input(tmp_path: Path) -> None:
    contract = contract_of(BUILT_IN)
    (tmp_path / "contract").mkdir()
    (tmp_path / "contract" / "contract.json").write_text(json.dumps(contract))
    (tmp_path / "input").mkdir()
    assert preprocess.main(["--batch-input"], tmp_path) == {"rows": 0}
    assert output(tmp_path) == ([], {"rows": 0})


def test_training_mode_is_unchanged_without_the_flag(tmp_path: Path) -> None:
    """No flag: the training splits from the same table (with its label and time), and no
    batch input."""
    contract = contract_of(BUILT_IN)
    frame = curated(contract, tmp_path)
    frame[contract["target_column"]] = [0, 1, 0, 1]
    if contract.get("event_time_column"):
        frame[contract["event_time_column"]] = pd.date_range("2026-12-01", periods=4, tz="UTC")
    frame.to_parquet(tmp_path / "input" / "event_date=2026-12-01" / "part-0.parquet")
    assert preprocess.main([], tmp_path) == {"train": 3, "validation": 1, "test": 0}
    assert (tmp_path / "train" / "train.csv").is_file()
    assert not (tmp_path / "output").exists()
