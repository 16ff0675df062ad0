"""The Glue jobs as Glue runs them, for every example product, on local Spark.

The job scripts and the product's code are taken exactly as `cdk.out` stages them for upload
(found through the data stack's template and asset manifest), laid out the way Glue loads them:
the entry script runs as __main__ and every --extra-py-files zip is put on sys.path
(https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html). Only
`awsglue` is a stand-in (it exists on Glue's workers alone). Then the quality job runs on what
the curation job wrote, and must see every curated row.
"""

from __future__ import annotations

import json
import re
import runpy
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import PRODUCTS, Synth

ASSET_KEY = re.compile(r"/([0-9a-f]{64}\.[a-z.]+)")


def resolve(value: Any, s3_root: Path) -> str:
    """A template value as a string: Refs and attributes become names, s3:// a local folder."""
    if isinstance(value, str):
        return value.replace("s3://", f"{s3_root}/")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolve(p, s3_root) for p in parts)
    if "Ref" in value:
        return f"ref-{value['Ref']}"
    if "Fn::Sub" in value:
        return str(value["Fn::Sub"]).replace("${", "").replace("}", "")
    if "Fn::GetAtt" in value:
        return "-".join(value["Fn::GetAtt"])
    raise ValueError(f"cannot resolve {value}")


def staged(outdir: Path, stack: str, location: Any) -> Path:
    """The file cdk.out stages for the asset a template value points at."""
    (key,) = ASSET_KEY.findall(json.dumps(location))
    assets = json.loads((outdir / f"{stack}.assets.json").read_text())["files"]
    (entry,) = [a for a in assets.values() if any(
        d["objectKey"] == key for d in a["destinations"].values())]  # fmt: skip
    return outdir / entry["source"]["path"]


def job_arguments(props: dict[str, Any], s3_root: Path) -> dict[str, str]:
    """A Glue job's DefaultArguments as the run gets them (template values resolved)."""
    return {k: resolve(v, s3_root) for k, v in props["DefaultArguments"].items()}


def glue_job(synth: Synth, product: str, job: str) -> tuple[str, dict[str, Any]]:
    stack = f"mlgate-{product}-data"
    template = json.loads((synth.outdir / f"{stack}.template.json").read_text())
    (props,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Glue::Job" and r["Properties"]["Name"] == f"mlgate-{product}-{job}"
    ]
    return stack, props


class StandIn:
    """What the job scripts use of awsglue and awsgluedq, backed by local Spark."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self.evaluated: list[Any] = []
        self.committed = 0
        # Glue's job bookmarks, kept as Glue keeps them: per transformation_ctx, the files a
        # run read, saved by job.commit(); a read without a context is not bookmarked.
        self.bookmarks: dict[str, set[str]] = {}
        self.pending: dict[str, set[str]] = {}

    def modules(self) -> dict[str, types.ModuleType]:
        stand_in = self

        class Frame:
            def __init__(self, df: Any) -> None:
                self.df = df

            def toDF(self) -> Any:
                return self.df

            @staticmethod
            def fromDF(df: Any, glue: Any, name: str) -> Frame:
                return Frame(df)

        class Reader:
            def from_options(self, connection_type: str, connection_options: dict[str, Any],
                             format: str, format_options: dict[str, Any],
                             transformation_ctx: str) -> Frame:  # fmt: skip
                assert connection_type == "s3"
                assert connection_options["recurse"] is True
                (path,) = connection_options["paths"]
                files = sorted(str(f) for f in Path(path).rglob("*") if f.is_file())
                if transformation_ctx:
                    seen = stand_in.bookmarks.setdefault(transformation_ctx, set())
                    files = [f for f in files if f not in seen]
                    stand_in.pending[transformation_ctx] = set(files)
                if not files:  # what a bookmark leaves of a source with no new file
                    return Frame(stand_in.spark.createDataFrame([], "unread string"))
                reader = stand_in.spark.read
                if format == "csv":
                    assert format_options == {"withHeader": True}
                    return Frame(reader.option("header", True).csv(files))
                if format == "parquet":
                    return Frame(reader.parquet(*files))
                return Frame(reader.json(files))

        class GlueContext:
            def __init__(self, context: Any) -> None:
                self.spark_session = stand_in.spark
                self.create_dynamic_frame = Reader()

        class Job:
            def __init__(self, glue: Any) -> None:
                pass

            def init(self, name: str, args: dict[str, str]) -> None:
                pass

            def commit(self) -> None:
                stand_in.committed += 1
                for context, read in stand_in.pending.items():
                    stand_in.bookmarks.setdefault(context, set()).update(read)
                stand_in.pending.clear()

        class EvaluateDataQuality:
            def process_rows(self, frame: Frame, ruleset: str, publishing_options: Any) -> Any:
                stand_in.evaluated.append(frame.toDF())
                rows = [{"Rule": r, "Outcome": "Passed"} for r in ruleset.split("\n")[1:-1]]
                return {"ruleOutcomes": Frame(stand_in.spark.createDataFrame(rows))}

        def resolved_options(argv: list[str], names: list[str]) -> dict[str, str]:
            given = dict(zip(argv[1::2], argv[2::2], strict=False))
            return {n: given[f"--{n}"] for n in names}

        found = {
            "awsglue": types.ModuleType("awsglue"),
            "awsglue.context": types.ModuleType("awsglue.context"),
            "awsglue.job": types.ModuleType("awsglue.job"),
            "awsglue.utils": types.ModuleType("awsglue.utils"),
            "awsglue.dynamicframe": types.ModuleType("awsglue.dynamicframe"),
            "awsgluedq": types.ModuleType("awsgluedq"),
            "awsgluedq.transforms": types.ModuleType("awsgluedq.transforms"),
        }
        found["awsglue.context"].GlueContext = GlueContext  # type: ignore[attr-defined]
        found["awsglue.job"].Job = Job  # type: ignore[attr-defined]
        found["awsglue.utils"].getResolvedOptions = resolved_options  # type: ignore[attr-defined]
        found["awsglue.dynamicframe"].DynamicFrame = Frame  # type: ignore[attr-defined]
        found["awsgluedq.transforms"].EvaluateDataQuality = EvaluateDataQuality  # type: ignore[attr-defined]
        return found


def run_job(
    synth: Synth, product: str, job: str, stand_in: StandIn, s3_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:  # fmt: skip
    """Run one Glue job's staged script with its template arguments, as Glue does."""
    stack, props = glue_job(synth, product, job)
    script = staged(synth.outdir, stack, props["Command"]["ScriptLocation"])
    arguments = job_arguments(props, s3_root)
    for key in resolve(arguments.get("--extra-py-files", ""), s3_root).split(","):
        if key:
            monkeypatch.syspath_prepend(str(staged(synth.outdir, stack, key)))
    for name, module in stand_in.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    argv = [str(script), "--JOB_NAME", props["Name"]]
    for key, value in arguments.items():
        argv += [key, value]
    monkeypatch.setattr(sys, "argv", argv)
    # Each Glue job run is a process of its own: modules one product's zip brought (every
    # product may call its module `transform`) must not be found by the next job.
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "")).startswith(str(synth.outdir)):
                del sys.modules[name]
    return arguments


@contextmanager
def data_catalog(curate: dict[str, Any], s3_root: Path) -> Iterator[Any]:
    """The curated table in a Data Catalog (moto), as the data stack makes it: its database,
    its name and its partition keys from the job's arguments."""
    import boto3
    from moto import mock_aws

    arguments = job_arguments(curate, s3_root)
    keys = json.loads(arguments["--schema"])["partition_keys"]
    with mock_aws():
        glue = boto3.client("glue", region_name=arguments["--catalog_region"])
        glue.create_database(DatabaseInput={"Name": arguments["--catalog_database"]})
        glue.create_table(
            DatabaseName=arguments["--catalog_database"],
            TableInput={
                "Name": arguments["--catalog_table"],
                "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
                "StorageDescriptor": {"Location": arguments["--curated_path"], "Columns": []},
            },
        )
        yield glue


def registered(glue: Any, curate: dict[str, Any], s3_root: Path) -> dict[str, list[str]]:
    """The curated table's partitions in the catalog: location -> values."""
    arguments = job_arguments(curate, s3_root)
    found = glue.get_partitions(
        DatabaseName=arguments["--catalog_database"], TableName=arguments["--catalog_table"]
    )["Partitions"]
    return {p["StorageDescriptor"]["Location"]: p["Values"] for p in found}


def written_folders(curated: Path) -> set[str]:
    """The partition folders Spark wrote Parquet into, as s3-style locations."""
    return {f"{p.parent}/" for p in curated.rglob("*.parquet")}


def write_raw(manifest: Any, sources: dict[str, Any], *, rows: int) -> None:
    """The product generator's raw data in the raw bucket under each source's prefix, in the
    source's format, as part-0.<format>."""
    from mlgate.infra.product_code import generator_module

    frames = generator_module(manifest).sources(rows, seed=11)
    for source in manifest.data.sources:
        folder = Path(sources[source.name]["path"])
        folder.mkdir(parents=True)
        frame = frames[source.name]
        if source.format == "csv":
            frame.to_csv(folder / "part-0.csv", index=False)
        elif source.format == "json":
            frame.to_json(folder / "part-0.json", orient="records", lines=True)
        else:
            frame.to_parquet(folder / "part-0.parquet", index=False)
        assert sources[source.name]["format"] == source.format


@pytest.mark.spark
@pytest.mark.parametrize("product", PRODUCTS)
def test_a_second_run_curates_new_files_against_reference_data_read_whole(
    synth: Synth, product: str, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's bookmarks read only an incremental source's new files; a reference source
    (`incremental: false`) is read whole every run. New files that repeat the first run's
    rows curate and quarantine as the first run's did; a bookmarked reference source would
    be empty on the second run, and every new row joined to it would go to quarantine."""
    manifest = synth.product(product).manifest
    _, curate = glue_job(synth, product, "curate")
    sources = json.loads(resolve(curate["DefaultArguments"]["--sources"], tmp_path))
    assert {n: s["incremental"] for n, s in sources.items()} == {
        s.name: s.incremental for s in manifest.data.sources
    }
    write_raw(manifest, sources, rows=1_000)
    stand_in = StandIn(spark)

    def totals(arguments: dict[str, str]) -> tuple[int, int]:
        curated = spark.read.option("basePath", arguments["--curated_path"])
        quarantine = Path(arguments["--quarantine_path"])
        return (
            curated.parquet(arguments["--curated_path"]).count(),
            spark.read.json(str(quarantine)).count() if quarantine.exists() else 0,
        )

    with data_catalog(curate, tmp_path) as glue:
        first = totals(run_job(synth, product, "curate", stand_in, tmp_path, monkeypatch))
        assert first[0] > 0
        partitions = registered(glue, curate, tmp_path)
        for source in manifest.data.sources:
            if source.incremental:  # new files arrive; the reference data stays as it was
                folder = Path(sources[source.name]["path"])
                (new,) = folder.glob("part-0.*")
                (folder / new.name.replace("part-0", "part-1")).write_bytes(new.read_bytes())
        both = totals(run_job(synth, product, "curate", stand_in, tmp_path, monkeypatch))
        # The second run's partitions are the first's: each was added once, kept as it was.
        assert registered(glue, curate, tmp_path) == partitions
    assert both == (2 * first[0], 2 * first[1])
    assert stand_in.committed == 2


@pytest.mark.spark
@pytest.mark.parametrize("product", ["fraud-detection", "delivery-time"])
def test_curation_then_quality_as_glue_runs_them(
    synth: Synth, product: str, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = synth.product(product).manifest
    _, curate = glue_job(synth, product, "curate")
    sources = json.loads(resolve(curate["DefaultArguments"]["--sources"], tmp_path))
    assert set(sources) == {s.name for s in manifest.data.sources}
    write_raw(manifest, sources, rows=3_000)

    stand_in = StandIn(spark)
    with data_catalog(curate, tmp_path) as glue:
        arguments = run_job(synth, product, "curate", stand_in, tmp_path, monkeypatch)
        partitions = registered(glue, curate, tmp_path)
    curated_path = arguments["--curated_path"]
    # Every folder the run wrote is a partition of the curated table, with its values.
    assert set(partitions) == written_folders(Path(curated_path))
    for location, values in partitions.items():
        folders = location.rstrip("/").split("/")[-len(values) :]
        assert [f.split("=", 1)[1] for f in folders] == values
    written = spark.read.option("basePath", curated_path).parquet(curated_path)
    schema = manifest.data.curated
    assert sorted(written.columns) == sorted(schema.names)
    rows = written.count()  # counted once: the quality job below writes nothing there
    assert rows > 2_000
    for key in schema.partition_keys:
        assert any(p.name.startswith(f"{key}=") for p in Path(curated_path).iterdir())

    run_job(synth, product, "quality", stand_in, tmp_path, monkeypatch)
    (evaluated,) = stand_in.evaluated
    assert evaluated.count() == rows, "the quality job must see every curated row"
    assert stand_in.committed == 2
