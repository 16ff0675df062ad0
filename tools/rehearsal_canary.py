"""A new version's blue/green rollout on a prod endpoint, as the manifest's rollout says, played
offline with both versions' real models.

SageMaker's blue/green update provisions a new (green) fleet beside the old (blue) one and
moves traffic to it in steps: canary, the first step's share then the rest; linear, equal
steps; each step bakes while the rollback alarms watch, and any alarm sends all traffic back to
blue (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html).
Both fleets serve the one production variant; SageMaker shifts traffic in whole instances
(Rollout.first_step).

Here the fleets, the routing and the bake are simulated: each request of a step goes to green
with the step's share as its probability (a seeded draw), and the alarms judge the step's
requests on green against the manifest's SLOs (latency measured in-process). The answers are
real: each fleet is the container of its own model artifact (tools/local_endpoint.py). A
rollout whose two fleets answer alike on every row is refused: it would compare a model with
itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

CSV = "text/csv"
SAME = 1e-12
"""Two answers closer than this are the same answer."""


@dataclass(frozen=True)
class Fleet:
    """One fleet of a blue/green rollout: the version it serves and its endpoint config."""

    version: int
    url: str
    """The model artifact its containers load."""
    config: str
    """Its EndpointConfigName."""


def traffic_steps(rollout: Any, instances: int) -> list[tuple[int, float]]:
    """(instances on green, share of traffic on green in %) at each step of the rollout, the
    last all of them: canary, its first step then all; linear, the first step's size again
    and again; all at once, one step."""
    first, share = rollout.first_step(instances)
    policy = rollout.policy.value
    if policy == "all_at_once" or first >= instances:
        return [(instances, 100.0)]
    if policy == "canary":
        return [(first, share), (instances, 100.0)]
    on = [min(k * first, instances) for k in range(1, math.ceil(instances / first) + 1)]
    return [(n, round(100 * n / instances, 1)) for n in on]


def component_steps(component: Any, rollout: Any) -> list[tuple[int, float]]:
    """(copies on the new version, share of traffic in %) at each batch of an inference
    component's rolling update (mlgate/manifest/serving.py: its batch for the rollout), the
    last all of them."""
    copies = component.copies
    batch = -(-copies * component.batch_percent(rollout) // 100)
    on = [min(k * batch, copies) for k in range(1, math.ceil(copies / batch) + 1)]
    return [(n, round(100 * n / copies, 1)) for n in on]


@dataclass
class Step:
    instances: int
    share: float
    """Declared share of traffic on green, %."""
    rows: list[int] = field(default_factory=list)
    """The held-out rows sent, one request each."""
    fleets: list[Fleet] = field(default_factory=list)
    """The fleet that answered each request."""
    answers: list[float | None] = field(default_factory=list)
    """Each request's answer (its first field), None when the container failed it."""
    invocations: list[Any] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    """The rollback alarms that fired in this step's bake (empty: quiet)."""

    def on(self, fleet: Fleet) -> list[int]:
        return [k for k, f in enumerate(self.fleets) if f == fleet]

    def answered(self, fleet: Fleet | None = None) -> list[tuple[int, float]]:
        """(held-out row, answer) of each request answered, by `fleet` or by either."""
        return [
            (self.rows[j], a)
            for j, a in enumerate(self.answers)
            if a is not None and fleet in (None, self.fleets[j])
        ]


def tolerance(share: float, requests: int) -> float:
    """How far a step's observed share on green may be from its declared one, % (four binomial
    standard deviations, and one request)."""
    p = share / 100
    return 100 * (4 * math.sqrt(p * (1 - p) / max(requests, 1)) + 1 / max(requests, 1))


def rollback_alarms(manifest: Any, invocations: list[Any]) -> tuple[list[str], str]:
    """The manifest's SLOs judged on one fleet's requests: those that would fire, and each
    SLO's reading."""
    import numpy as np

    fired: list[str] = []
    readings: list[str] = []
    if not invocations:
        return fired, "no request"
    ok = [i for i in invocations if i.status == 200]
    for slo in manifest.metrics.slos:
        name = slo.name.value
        if name == "latency_p99_ms":
            value = float(np.percentile([i.latency_us / 1000 for i in ok], 99)) if ok else 0.0
            reading = f"{name} p99 {value:.3g} ms (at most {slo.threshold:g})"
        elif name == "error_rate_5xx":
            value = sum(i.status >= 500 for i in invocations) / len(invocations)
            reading = f"{name} {value:.3g} (at most {slo.threshold:g})"
        else:
            value = sum(i.status != 200 for i in invocations) / len(invocations)
            reading = f"{name} {value:.3g} (at most {slo.threshold:g})"
        readings.append(reading)
        if value > slo.threshold:
            fired.append(reading)
    return fired, "; ".join(readings)


@dataclass
class Rollout:
    """One rollout of `green` over `blue` on `endpoint` of `host` (a LocalHost)."""

    manifest: Any
    host: Any
    endpoint: str
    variant: str
    blue: Fleet
    green: Fleet
    seed: int = 2
    steps: list[Step] = field(default_factory=list)

    def play(self, payloads: list[str], rows: list[list[int]], plan: list[tuple[int, float]]
             ) -> bool:  # fmt: skip
        """Each step of `plan` sends its rows of `payloads` (one request each) to the fleets
        in the step's proportion, then its bake: False when a rollback alarm fired (all
        traffic is back on blue), True when green took all traffic."""
        import numpy as np

        from tools.local_endpoint import ContainerError

        rng = np.random.default_rng(self.seed)
        for (instances, share), step_rows in zip(plan, rows, strict=True):
            step = Step(instances, share)
            self.steps.append(step)
            for k in step_rows:
                fleet = self.green if rng.random() < share / 100 else self.blue
                mark = len(self.host.invocations)
                try:
                    answer = self.host.invoke(
                        self.endpoint,
                        self.variant,
                        fleet.url,
                        payloads[k].encode(),
                        CSV,
                        CSV,
                        fleet.config,
                    )
                    value: float | None = float(answer.decode().split(",")[0])
                except ContainerError:
                    value = None
                step.rows.append(k)
                step.fleets.append(fleet)
                step.answers.append(value)
                step.invocations.extend(self.host.invocations[mark:])
            green = [i for i in step.invocations if i.fleet == self.green.config]
            step.alarms, _ = rollback_alarms(self.manifest, green)
            if step.alarms:
                return False
        return True

    def check(self, payloads: list[str]) -> dict[str, Any]:
        """What the rollout shows, refused when it shows nothing: each step's share on green
        against the declared one; each fleet's answers its own model's (the same rows scored by
        both containers directly); and the two models differing on the rows of the first step,
        the canary."""
        import numpy as np

        canary = self.steps[0]
        blue = self.host.container(self.blue.url)
        green = self.host.container(self.green.url)
        sent = [payloads[k] for k in canary.rows]
        by_blue = np.asarray([float(a) for a in blue.answers(sent)])
        by_green = np.asarray([float(a) for a in green.answers(sent)])
        difference = np.abs(by_green - by_blue)
        if not len(difference) or float(difference.max()) <= SAME:
            raise RolloutRefused(
                f"version {self.green.version} answers exactly as version {self.blue.version} "
                f"on all {len(sent)} rows of the canary: both fleets serve the same model, and "
                "the canary compares it with itself"
            )
        for step in self.steps:
            observed = 100 * len(step.on(self.green)) / max(len(step.rows), 1)
            allowed = tolerance(step.share, len(step.rows)) if step.share < 100 else 0.0
            if abs(observed - step.share) > allowed:
                raise RolloutRefused(
                    f"the step of {step.share} % sent {observed:.1f} % of its {len(step.rows)} "
                    f"requests to version {self.green.version} (allowed {step.share} ± "
                    f"{allowed:.1f} %)"
                )
        for fleet, direct in ((self.blue, by_blue), (self.green, by_green)):
            for j in canary.on(fleet):
                served = canary.answers[j]
                if served is not None and abs(served - direct[j]) > 1e-6 * max(1, abs(direct[j])):
                    raise RolloutRefused(
                        f"version {fleet.version}'s fleet answered {served} to a canary row its "
                        f"own model scores {direct[j]}"
                    )
        return {
            "max_difference": float(difference.max()),
            "mean_difference": float(difference.mean()),
            "rows": len(sent),
        }


class RolloutRefused(Exception):
    """A rollout that shows nothing of the new version (the message says why)."""


def spread(values: list[float]) -> str:
    """A score distribution in one phrase: mean and p10/p50/p90."""
    import numpy as np

    if not values:
        return "no answer"
    q = ", ".join(f"p{p} {np.percentile(values, p):.4g}" for p in (10, 50, 90))
    return f"mean {np.mean(values):.4g} ({q})"
