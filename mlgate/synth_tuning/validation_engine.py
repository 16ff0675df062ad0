"""CDK's CloudFormation validation engine, started while Python still has Python work to do.

(Where jsii's node runs as mlgate runs it, the engine is built on a worker thread of node from
the moment aws-cdk-lib loads, and asking for it here returns at once: jsii-preload.cjs,
part 4. What follows is what this module still does where that worker is off.)

`cdk synth` validates every template with CDK's built-in CloudFormation validation
(aws-cdk-lib's CloudFormationValidatePlugin: cfn-lint's schema checks and CDK's Rego rules,
compiled to WebAssembly). CDK builds that engine at `app.synth()`, and building it takes 1.4
to 1.7 s of node's time, in which Python only waits. Before that, Python imports mlgate and
reads the manifests for about a second, in which node only waits.

`start_validation_engine()` asks node for the engine on a thread before those imports, so
both run at once; `register(app)` hands it to the app. CDK then validates with it instead of
building its own: a CloudFormationValidatePlugin registered on the app replaces the default
one (aws-cdk-lib core/lib/private/synthesis-validation.js, `pluginsToEvaluate` and
`hasUserRegisteredCloudFormationValidatePlugin`). It is the same class with its default rules,
and the same report: the plugin's name decides how its findings are graded
(`downgradeCfnValidateErrorsToWarnings`). `CDK_VALIDATION=false`, CDK's own switch, still
turns it off (`defaultValidationEnabled`).

jsii talks to node over one pipe, one request at a time, and is not thread-safe. While the
engine is being built, any jsii request from another thread waits at a gate until it is done
(so nothing ever interleaves on the pipe); mlgate's modules make no jsii call at import
(tests/test_validation_engine.py checks), so the imports do not wait.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
from jsii._kernel import Kernel


class ValidationEngine:
    """The engine being built on a thread; `register(app)` waits for it and hands it over."""

    def __init__(self) -> None:
        self._plugin: cdk.CloudFormationValidatePlugin | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._restore: Callable[[], None] = lambda: None

    @property
    def in_background(self) -> bool:
        """Whether the engine is being built on a thread (False: it is built at register)."""
        return self._thread is not None

    def start(self) -> ValidationEngine:
        # CDK_VALIDATION=false: CDK builds no engine and neither does this. A jsii without the
        # one pipe this relies on, or MLGATE_EARLY_VALIDATION_ENGINE=off (bench/synth_time.py
        # measures the difference): CDK builds its engine at synth, as it would anyway.
        off = os.environ.get("CDK_VALIDATION") == "false" or (
            os.environ.get("MLGATE_EARLY_VALIDATION_ENGINE") == "off"
        )
        process = None if off else _node_process()
        if process is None:
            return self
        send = process.send
        worker = threading.Thread(target=self._build, name="mlgate-validation-engine", daemon=True)

        def gated_send(request: Any, response_type: Any) -> Any:
            if threading.current_thread() is not worker:
                self._done.wait()
            return send(request, response_type)

        process.send = gated_send

        def restore() -> None:
            if process.__dict__.get("send") is gated_send:
                del process.send

        self._restore = restore
        self._thread = worker
        worker.start()
        return self

    def _build(self) -> None:
        try:
            self._plugin = cdk.CloudFormationValidatePlugin()
        except BaseException as err:  # handed to the main thread at register
            self._error = err
        finally:
            self._done.set()

    def wait(self) -> None:
        """Wait for the engine, and put jsii's pipe back as it was."""
        if self._thread is not None:
            self._thread.join()
        self._restore()

    def register(self, app: cdk.App) -> None:
        """Validate the app's templates with this engine (call it once the app is built)."""
        self.wait()
        if self._error is not None:
            raise self._error
        if self._plugin is not None:
            cdk.Validations.of(app).add_plugins(self._plugin)


def start_validation_engine() -> ValidationEngine:
    """Start building the validation engine `app.synth()` will use; call it after
    `import aws_cdk` and any other jsii package's import (cdk_nag), before mlgate's imports."""
    return ValidationEngine().start()


def _node_process() -> Any:
    """jsii's node process (jsii 1.x: Kernel().provider._process, one pipe, `send`)."""
    provider = getattr(Kernel(), "provider", None)
    try:
        process = getattr(provider, "_process", None)
    except Exception:  # a provider that cannot start node: leave it to CDK
        return None
    return process if callable(getattr(process, "send", None)) else None
