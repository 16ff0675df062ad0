"""The tests' numeric libraries run one thread each, in the workers and in the processes they
start (tests/conftest.py says why; they inherit the environment it sets): a library loaded
before conftest.py set the limits would spin threads against the other worker again."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from .conftest import THREAD_LIMITS, python_code

# Every thread pool the tests use: OpenBLAS (numpy, scipy), OpenMP (xgboost, scikit-learn).
LIBRARIES = ("numpy", "scipy.linalg", "sklearn.ensemble", "xgboost")


def load_and_list() -> list[dict[str, Any]]:
    """The process's thread pools once LIBRARIES are loaded (threadpoolctl's view)."""
    import importlib

    from threadpoolctl import threadpool_info

    for library in LIBRARIES:
        importlib.import_module(library)
    return threadpool_info()


# The same in a fresh interpreter, printed as JSON.
LOAD_AND_LIST = f"""
import json, {", ".join(LIBRARIES)}
from threadpoolctl import threadpool_info
print(json.dumps(threadpool_info()))
"""


def pools(info: list[dict[str, Any]]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for pool in info:
        found.setdefault(pool["user_api"], set()).add(pool["num_threads"])
    return found


def test_this_worker_runs_blas_and_openmp_on_one_thread() -> None:
    # Both kinds of pool are there to check, and every one of them has a single thread.
    assert pools(load_and_list()) == {"blas": {1}, "openmp": {1}}


def test_without_the_limits_the_libraries_would_use_every_core() -> None:
    """The check above can fail: a process without the variables gets a thread per core it may
    run on."""
    cores = len(os.sched_getaffinity(0))
    if cores == 1:
        pytest.skip("one core: the libraries' default is one thread too")
    unlimited = dict.fromkeys(THREAD_LIMITS, "")  # empty: the library's own default
    found = pools(json.loads(python_code(LOAD_AND_LIST, **unlimited).stdout))
    assert found == {"blas": {cores}, "openmp": {cores}}
