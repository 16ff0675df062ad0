"""The business KPIs a product declares stand-ins for (metrics.business_kpis stand_in), computed
by the rehearsal on each batch it scores: held-out test rows with their labels and the
model's real answers. Offline there is no business data; a stand-in is the product's own
function of its columns (examples/<product>/kpis.py), never mlgate's.

A stand-in that the manifest names but whose file lacks the function is refused before the
rehearsal starts (Metrics.stand_in_problems, the manifest's own check); one that raises or
answers something other than a number is refused when it runs, naming the KPI.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

PREDICTION = "prediction"
"""The answer's column in a scored batch, unless the product has a column of that name."""


class StandInError(Exception):
    """A KPI stand-in that cannot be used: the message names the KPI."""


def prediction_column(columns: list[str]) -> str:
    """PREDICTION, or with underscores before it until no column of the batch has its name."""
    name = PREDICTION
    while name in columns:
        name = f"_{name}"
    return name


def scored_batch(manifest: Any, rows: Any, answers: list[float]) -> tuple[Any, str]:
    """Held-out rows as the test split holds them (the label first, then the payload columns)
    with the model's answer to each, as a DataFrame named by the manifest (the target column,
    the payload columns), and the answer column's name."""
    import numpy as np
    import pandas as pd

    columns = [manifest.data.curated.target_column, *manifest.payload_columns]
    rows = np.asarray(rows, dtype=float).reshape(len(answers), -1)
    if rows.shape[1] != len(columns):
        raise StandInError(
            f"the held-out rows have {rows.shape[1]} columns, the manifest names {len(columns)} "
            "(the target and the payload columns)"
        )
    batch = pd.DataFrame(rows, columns=columns)
    prediction = prediction_column(columns)
    batch[prediction] = np.asarray(answers, dtype=float)
    return batch, prediction


@dataclass
class StandIns:
    """Each KPI stand-in of a manifest, loaded once."""

    manifest: Any
    functions: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mlgate.infra.product_code import stand_in_function

        problems = self.manifest.metrics.stand_in_problems(self.manifest.folder)
        if problems:
            raise StandInError("; ".join(message for _, message in problems))
        for kpi in self.manifest.metrics.business_kpis:
            if kpi.stand_in:
                try:
                    self.functions[kpi.name] = stand_in_function(self.manifest, kpi)
                except Exception as err:  # its import failed: the product's code, named
                    raise StandInError(
                        f"the stand-in of KPI {kpi.name} ({kpi.stand_in}) could not be loaded: "
                        f"{type(err).__name__}: {err}"
                    ) from None

    @property
    def source(self) -> str:
        """The product's files the stand-ins come from."""
        files = {k.stand_in_file for k in self.kpis}
        return ", ".join(sorted(f for f in files if f))

    @property
    def kpis(self) -> list[Any]:
        return [k for k in self.manifest.metrics.business_kpis if k.name in self.functions]

    def values(self, batch: Any, prediction: str) -> list[tuple[Any, float]]:
        """Each declared KPI's value on the batch (NaN: the batch says nothing of it). A
        stand-in is given its own copy of the batch."""
        out = []
        for kpi in self.kpis:
            try:
                value = self.functions[kpi.name](batch.copy(), prediction)
            except Exception as err:
                raise StandInError(
                    f"the stand-in of KPI {kpi.name} ({kpi.stand_in}) raised "
                    f"{type(err).__name__}: {err}"
                ) from None
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise StandInError(
                    f"the stand-in of KPI {kpi.name} ({kpi.stand_in}) returned "
                    f"{type(value).__name__} {value!r}, not a number"
                )
            value = float(value)
            # PutMetricData refuses NaN and infinities (MetricDatum.Value: https://docs.aws.
            # amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html): NaN is no
            # point, as a quiet hour is; an infinity is the stand-in's error.
            if math.isinf(value):
                raise StandInError(
                    f"the stand-in of KPI {kpi.name} ({kpi.stand_in}) returned {value}: "
                    "CloudWatch takes finite values only"
                )
            out.append((kpi, value))
        return out
