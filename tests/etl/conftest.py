"""The local Spark session (tests/spark_session.py), shared with tests/ml."""

from __future__ import annotations

from ..spark_session import spark

__all__ = ["spark"]
