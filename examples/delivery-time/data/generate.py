"""Synthetic food-delivery orders and the couriers who deliver them, deterministic for a seed.

Delivery time is learnable: it grows with the restaurant's preparation time, the distance (a
bicycle is slower per km than a scooter or a car, and a car loses minutes parking), the
number of items, lunch and dinner peaks and the city's traffic, and shrinks with the
courier's experience; the rest is noise of about 3 minutes. A few orders are malformed on
purpose (no id, an unreadable time, a drop-off off the globe, a negative duration, a courier
nobody knows) so the transform's quarantine has something to catch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CITIES = np.array(["austin", "boston", "chicago", "denver"])
CITY_CENTRES = np.array([[30.27, -97.74], [42.36, -71.06], [41.88, -87.63], [39.74, -104.99]])
CITY_TRAFFIC_MINUTES = np.array([1.0, 4.0, 3.0, 0.0])
VEHICLES = np.array(["bicycle", "scooter", "car"])
MINUTES_PER_KM = np.array([4.0, 2.6, 2.2])
PARKING_MINUTES = np.array([0.0, 0.5, 4.0])
START = np.datetime64("2026-03-02T00:00:00")
KM_PER_DEGREE = 111.2


def couriers(count: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    return pd.DataFrame(
        {
            "courier_id": [f"k{seed:02d}-{i:05d}" for i in range(count)],
            "vehicle": VEHICLES[rng.choice(3, size=count, p=[0.35, 0.4, 0.25])],
            "experience_months": rng.integers(0, 60, size=count).astype("int64"),
        }
    )


def orders(rows: int, fleet: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.integers(0, len(CITIES), size=rows)
    courier = rng.integers(0, len(fleet), size=rows)
    vehicle = pd.Index(VEHICLES).get_indexer(fleet["vehicle"])[courier]
    experience = fleet["experience_months"].to_numpy()[courier]
    # Lunch and dinner peaks: most orders land around 12:00 and 19:00.
    lunch = rng.random(rows) < 0.5
    hour = np.where(lunch, rng.normal(12.5, 1.2, rows), rng.normal(19.5, 1.5, rows))
    seconds = (rng.integers(0, 28, size=rows) * 86400 + np.clip(hour, 0, 23.99) * 3600).astype(
        "int64"
    )
    distance = np.clip(rng.lognormal(1.0, 0.5, size=rows), 0.3, 15.0)
    bearing = rng.uniform(0, 2 * np.pi, size=rows)
    pickup = CITY_CENTRES[city] + rng.normal(0, 0.03, size=(rows, 2))
    # A drop-off `distance` km away along `bearing` (flat-earth offsets: a few km only).
    dlat = distance * np.cos(bearing) / KM_PER_DEGREE
    dlon = distance * np.sin(bearing) / (KM_PER_DEGREE * np.cos(np.radians(pickup[:, 0])))
    prep = np.round(rng.gamma(4.0, 3.0, size=rows), 1)
    items = rng.integers(1, 8, size=rows)
    hour_of_day = (seconds % 86400) // 3600
    peak = np.isin(hour_of_day, [11, 12, 13, 18, 19, 20])
    minutes = (
        prep
        + distance * MINUTES_PER_KM[vehicle]
        + PARKING_MINUTES[vehicle]
        + 0.6 * items
        + 5.0 * peak
        + CITY_TRAFFIC_MINUTES[city]
        - 0.08 * experience
        + 6.0
        + rng.normal(0, 3.0, size=rows)
    )
    order = np.argsort(seconds, kind="stable")
    frame = pd.DataFrame(
        {
            "order_id": [f"o{seed:03d}-{i:08d}" for i in range(rows)],
            "courier_id": fleet["courier_id"].to_numpy()[courier[order]],
            "city": CITIES[city[order]],
            "ordered_at": np.datetime_as_string(
                START + seconds[order].astype("timedelta64[s]"), unit="s"
            ),
            "pickup_lat": np.round(pickup[order, 0], 5),
            "pickup_lon": np.round(pickup[order, 1], 5),
            "dropoff_lat": np.round(pickup[order, 0] + dlat[order], 5),
            "dropoff_lon": np.round(pickup[order, 1] + dlon[order], 5),
            "prep_minutes": prep[order],
            "items": items[order].astype("int64"),
            "delivery_minutes": np.round(np.maximum(minutes[order], 5.0), 1),
        }
    )
    frame["ordered_at"] = frame["ordered_at"] + "Z"
    return _spoil(frame)


def _spoil(frame: pd.DataFrame) -> pd.DataFrame:
    """A handful of malformed orders, at fixed rows, for the quarantine to catch."""
    if len(frame) < 50:
        return frame
    frame = frame.astype({"order_id": object, "ordered_at": object})
    frame.loc[3, "order_id"] = None
    frame.loc[11, "ordered_at"] = "last tuesday"
    frame.loc[19, "dropoff_lat"] = 123.4
    frame.loc[27, "delivery_minutes"] = -4.0
    frame.loc[35, "courier_id"] = "k-nobody"
    return frame


def sources(rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """mlgate's entry point: raw data for each of the manifest's sources, by source name."""
    fleet = couriers(max(5, rows // 50), seed)
    return {"orders": orders(rows, fleet, seed), "couriers": fleet}
