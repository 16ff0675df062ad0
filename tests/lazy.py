"""Deferred imports for test modules whose imports are heavy but whose tests run on one xdist
worker only (a group in tests/conftest.py): every worker imports every test module to collect
it, so an import at the top of such a module is paid by both workers (Evidently's import alone
is about 5 s of CPU)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class Lazy:
    """Stands for the module `name` and imports it at the first read of a public attribute,
    which happens in a test, on the worker that runs it. Private and dunder names are not
    forwarded: pytest's collection probes every object in a test module for them
    (`_mock_name`, `__wrapped__`), and the standard library's LazyLoader would load the module
    right there."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
