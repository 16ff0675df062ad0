"""The garbage collector pauses while a hook's modules load, in Lambda.

Lambda imports a hook as `<hook>.handler`: the package's `__init__` runs first and pauses the
collector (`pause`); the handler module's last line (`settle`) moves every object the import
made to the permanent generation (gc.freeze: "ignore them in all the future collections",
https://docs.python.org/3/library/gc.html#gc.freeze) and resumes collecting. An import makes
hundreds of thousands of long-lived objects (boto3's service models, pydantic's schemas,
Powertools); the collections it would trigger while they load only find them alive, and each
later full collection would walk them again. Measured (bench/hooks_latency.py, python3.13 with
the layer as it ships): 20 to 60 ms less init per hook.

Only where Lambda runs the hook (AWS_LAMBDA_FUNCTION_NAME, which Lambda sets in every function's
environment: https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime):
the tests and the rehearsal import the hooks again and again, and a frozen import would keep
each copy's garbage.
"""

from __future__ import annotations

import gc
import os

_paused = False


def pause() -> None:
    """Stops collections until `settle` (in Lambda, when the collector runs)."""
    global _paused
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled():
        gc.disable()
        _paused = True


def settle() -> None:
    """The import is done: its objects are frozen and collections resume."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
