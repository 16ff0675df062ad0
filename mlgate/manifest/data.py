"""The data contract: sources, the curated schema, DQDL rules, the ETL transform."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from mlgate.manifest.base import GlueSchedule, RelativePath, Slug, Text, _CrossFieldErrors, _Model

# --- data, model, serving, monitoring ------------------------------------------------------


ColumnName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")]


class DataSource(_Model):
    name: Slug
    """Identifier of the source; the transform receives it under this name."""
    format: Literal["csv", "json", "parquet"]
    """csv (with a header row), json (JSON Lines) or parquet."""
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_/-]*/$")]
    """Prefix inside the raw bucket, ending in '/'."""
    incremental: bool = True
    """true: each ETL run reads only the files that arrived since the last successful run
    (Glue job bookmarks), and appends what it curates: data that arrives as new rows, such as
    events or orders. false: each run reads the whole source: reference data the transform
    joins new rows to (couriers, companies), which a bookmark would hide after the first run,
    sending every new row it should match to quarantine. A transform sees the new rows of its
    incremental sources only: a feature over an entity's history needs that history in a
    source read whole."""


ColumnType = Literal["string", "int", "bigint", "double", "float", "boolean", "date", "timestamp"]


NUMERIC_TYPES = frozenset({"int", "bigint", "double", "float", "boolean"})


class Column(_Model):
    """A column of the curated table."""

    name: ColumnName
    """Column name (lowercase letters, digits, underscores), as the transform writes it."""
    type: ColumnType
    """string, int, bigint, double, float, boolean, date or timestamp (Glue catalog types)."""
    description: str = ""
    """What the column holds; shown in the Glue catalog."""
    values: tuple[Text, ...] = ()
    """For a string feature: its categories, in a fixed order (the default preprocess one-hot
    encodes them, with an `other` column for anything else)."""


class Schema(_Model):
    """The curated data contract: what the product's transform writes and training reads."""

    columns: tuple[Column, ...] = Field(min_length=2)
    """Every curated column, partition keys included, in the order the transform writes them."""
    id_column: ColumnName
    """Identifies a record (de-duplication, quality rules, joining ground truth)."""
    target_column: ColumnName
    """The label the model learns."""
    event_time_column: ColumnName | None = None
    """When the record happened; when set, the default preprocess splits by time."""
    partition_keys: tuple[ColumnName, ...] = ()
    """Columns the curated table is partitioned by (written as key=value folders)."""

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def data_columns(self) -> tuple[Column, ...]:
        """Columns stored in the files (the partition keys live in the folder names)."""
        return tuple(c for c in self.columns if c.name not in self.partition_keys)

    @model_validator(mode="after")
    def _roles_are_columns(self) -> Schema:
        names = self.names
        problems = []
        for i, column in enumerate(self.columns):
            if names.index(column.name) != i:
                problems.append((f"columns[{i}].name", f"'{column.name}' is declared twice"))
            if column.values and column.type != "string":
                problems.append((f"columns[{i}].values", "only string columns have categories"))
        roles = [("id_column", self.id_column), ("target_column", self.target_column)]
        if self.event_time_column:
            roles.append(("event_time_column", self.event_time_column))
        roles += [(f"partition_keys[{i}]", key) for i, key in enumerate(self.partition_keys)]
        for path, name in roles:
            if name not in names:
                problems.append((path, _not_a_column(name, names)))
        if self.event_time_column in names and self.column(
            self.event_time_column or ""
        ).type not in ("timestamp", "date"):
            problems.append(("event_time_column", "must name a timestamp or date column"))
        if len(self.partition_keys) >= len(self.columns):
            problems.append(("partition_keys", "at least one column must not be a partition key"))
        if problems:
            raise _CrossFieldErrors(problems)
        return self


def _not_a_column(name: str, names: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{near[0]}'?" if near else f"columns: {', '.join(names)}"
    return f"'{name}' is not a column of data.curated; {hint}"


# The DQDL rule types of AWS Glue Data Quality
# (https://docs.aws.amazon.com/glue/latest/dg/dqdl-rule-types.html).
DQDL_RULE_TYPES = frozenset(
    {
        "AggregateMatch", "ColumnCorrelation", "ColumnCount", "ColumnDataType", "ColumnExists",
        "ColumnLength", "ColumnNamesMatchPattern", "ColumnValues", "Completeness", "CustomSql",
        "DataFreshness", "DatasetMatch", "DetectAnomalies", "DistinctValuesCount", "Entropy",
        "FileFreshness", "FileMatch", "FileSize", "FileUniqueness", "IsComplete",
        "IsPrimaryKey", "IsUnique", "Mean", "ReferentialIntegrity", "RowCount", "RowCountMatch",
        "SchemaMatch", "StandardDeviation", "Sum", "UniqueValueRatio", "Uniqueness",
    }
)  # fmt: skip


_DQDL_RULE = re.compile(r'^\s*(?P<type>[A-Za-z]+)(?P<columns>(?:\s+"[^"]*")*)(?P<rest>.*)$')


def dqdl_columns(rule: str) -> tuple[str, tuple[str, ...]]:
    """(rule type, the columns it names): the quoted arguments right after the rule type, as
    in `IsComplete "id"` or `ColumnCorrelation "a" "b"` (quoted values later in the rule, such
    as `in ["a", "b"]`, are not columns)."""
    match = _DQDL_RULE.match(rule)
    if match is None:
        return "", ()
    return match["type"], tuple(re.findall(r'"([^"]*)"', match["columns"]))


_CLOSERS = {")": "(", "]": "["}


def dqdl_unbalanced(rule: str) -> str | None:
    """What is left open or closed too soon in a rule, outside its quoted strings (DQDL's
    grammar nests parentheses and lists: https://docs.aws.amazon.com/glue/latest/dg/
    dqdl.html), or None when the rule is balanced. Glue would refuse the ruleset at run time;
    the manifest refuses it first."""
    opened: list[str] = []
    quoted = False
    for char in rule:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([":
            opened.append(char)
        elif char in _CLOSERS:
            if not opened or opened[-1] != _CLOSERS[char]:
                return f"'{char}' closes nothing open"
            opened.pop()
    if quoted:
        return "a quoted name is not closed"
    if opened:
        return f"'{opened[-1]}' is not closed"
    return None


class Data(_Model):
    sources: tuple[DataSource, ...] = Field(min_length=1)
    """Raw data sources: the crawler catalogs each, the ETL job reads them all."""
    curated: Schema
    """The curated table's schema: its columns and the roles of its columns."""
    transform: RelativePath
    """The product's PySpark transform module, relative to the manifest: it defines
    `transform(spark, sources, params) -> (curated, quarantined)` (see
    docs/bring-your-own-product.md)."""
    transform_params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Settings passed to the transform as they are (window lengths, cut-offs, ...)."""
    generator: RelativePath | None = None
    """The product's synthetic-data module, relative to the manifest: it defines
    `sources(rows, seed) -> {source name: pandas DataFrame}`; tests and the rehearsal use it."""
    schedule: GlueSchedule = "cron(0 2 * * ? *)"
    """When the Glue workflow runs (crawl -> ETL -> quality): a Glue cron expression."""
    quality_rules: tuple[Text, ...] = Field(min_length=1)
    """Glue Data Quality (DQDL) rules evaluated on the curated data after each ETL run; every
    column a rule names must be in the schema."""
    etl_workers: int = Field(default=2, ge=2, le=100)
    """The fewest Glue workers (G.1X) a run needs: equal to etl_max_workers, the job runs at
    that fixed size; below it, Glue auto scaling sizes each run (Glue chooses where a run
    starts)."""
    etl_max_workers: int = Field(default=10, ge=2, le=299)
    """The most Glue workers a run may use: the job's NumberOfWorkers, which Glue reads as the
    upper bound of auto scaling."""
    etl_timeout_minutes: int = Field(default=60, ge=5, le=2880)
    """The ETL job is stopped after this long."""

    @model_validator(mode="after")
    def _workers(self) -> Data:
        if self.etl_max_workers < self.etl_workers:
            raise ValueError("etl_max_workers must be at least etl_workers")
        return self

    @model_validator(mode="after")
    def _rules_name_columns(self) -> Data:
        problems = []
        names = self.curated.names
        for i, rule in enumerate(self.quality_rules):
            kind, columns = dqdl_columns(rule)
            if kind not in DQDL_RULE_TYPES:
                near = difflib.get_close_matches(kind, sorted(DQDL_RULE_TYPES), n=1)
                hint = f"did you mean '{near[0]}'?" if near else "see the DQDL rule type list"
                problems.append(
                    (f"quality_rules[{i}]", f"'{kind}' is not a DQDL rule type; {hint}")
                )
                continue
            unbalanced = dqdl_unbalanced(rule)
            if unbalanced:
                problems.append((f"quality_rules[{i}]", f"rule '{rule}': {unbalanced}"))
                continue
            for column in columns:
                if column not in names:
                    problems.append(
                        (f"quality_rules[{i}]", f"rule '{rule}': {_not_a_column(column, names)}")
                    )
        if problems:
            raise _CrossFieldErrors(problems)
        return self
