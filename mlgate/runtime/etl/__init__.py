"""Glue ETL: pure PySpark transforms, a thin Glue entry point, and a synthetic dataset."""
