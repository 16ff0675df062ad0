"""The shadow test in the rehearsal (issue 34): before version 2's canary in an environment
with a shadow test (serving.<env>.shadow), two releases of the Shadow stage, each with its own
pipeline execution:

1. **Failing:** version 2 behind a serving bug (its requests reach the model in the wrong
   unit: every number a hundred times what it is, as a cents-for-euros mistake would). Its
   predictions move away from production's, the verdict fails, the shadow variant is removed
   and the stage fails: no traffic moved.
2. **Passing:** version 2 itself, within the thresholds: the shadow is removed and the release
   goes on to its canary.

Real where it can be here: the deployer's and the verifier's own code run the stage (moto's
CloudFormation holds the ShadowModelDataUrl parameter; the verdict is in the audit table);
production's answers come from version 1's model and the shadow's from version 2's, each
served in this process by the framework's container logic (tools/local_endpoint.py), on
held-out rows copied to the shadow as SageMaker copies them (`sampling_percent` of the
requests); the latency is each request's, measured in this process. Simulated: the wait (the
test's minutes pass at once: the verifier's clock is set past them), and SageMaker's own
publishing: the measured invocations, errors and latencies are put to moto's CloudWatch, and
both variants' answers are written where data capture writes them.
A developer tool, not shipped.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from mlgate.manifest import EnvName

MARGIN = 1.25
"""Production answers enough held-out rows that the copied share clears the test's
min_requests by this margin (the evidence the verdict needs)."""


def scaled(field: str) -> str:
    """A number a hundred times what it is; any other field as it is."""
    try:
        return repr(float(field) * 100)
    except ValueError:
        return field


def judged(rehearsal: Any, env: EnvName) -> dict[str, Any]:
    """The verifier's shadow parameters as the delivery stack builds them, with the rehearsal's
    capture bucket."""
    from mlgate.infra.stacks.delivery import shadow_judged

    found = shadow_judged(rehearsal.manifest, env)
    assert found is not None
    return {**found, "capture_uri": f"s3://artifacts/datacapture/{env}"}


def copied_traffic(
    rehearsal: Any, env: EnvName, production: str, shadow: str, since: float, broken: bool
) -> tuple[list[tuple[float, float, int]], list[tuple[float, float, int]], list[str], list[str]]:
    """Held-out rows answered by production (every one) and by the shadow (the copied share),
    each (when, latency µs, errors), and each variant's answers."""
    from tools.local_endpoint import ContainerError

    test = rehearsal.manifest.env_serving(env).shadow
    payloads, _ = rehearsal.held_out()
    host = rehearsal.host
    ours, theirs = host.container(production), host.container(shadow)
    minutes = test.minutes
    prod_calls, shadow_calls, prod_answers, shadow_answers = [], [], [], []
    every = max(1, round(100 / test.sampling_percent))
    requests = math.ceil(test.min_requests * every * MARGIN)
    for n, k in enumerate(rehearsal.next_rows(requests)):
        at = since + (n + 0.5) * minutes * 60 / requests
        text = str(payloads[k])
        body = text.encode()
        started = time.perf_counter()
        answer = ours.invoke(body, "text/csv", "text/csv")
        prod_calls.append((at, (time.perf_counter() - started) * 1e6, 0))
        prod_answers.append(answer.decode().split(",")[0].strip())
        if n % every:
            continue
        copied = body
        if broken:  # the serving bug: every number a hundred times what it is
            copied = ",".join(scaled(field) for field in text.strip().split(",")).encode()
        started = time.perf_counter()
        try:
            answer = theirs.invoke(copied, "text/csv", "text/csv")
            shadow_answers.append(answer.decode().split(",")[0].strip())
            errors = 0
        except ContainerError:
            errors = 1
        shadow_calls.append((at, (time.perf_counter() - started) * 1e6, errors))
    return prod_calls, shadow_calls, prod_answers, shadow_answers


def publish(rehearsal: Any, env: EnvName, variant: str, calls: list[Any],
            answers: list[str]) -> None:  # fmt: skip
    """What SageMaker would publish for the variant: its CloudWatch statistics and its
    captured answers (hour folders of JSON Lines)."""
    endpoint = rehearsal.name(env, "endpoint")
    dimensions = [{"Name": "EndpointName", "Value": endpoint},
                  {"Name": "VariantName", "Value": variant}]  # fmt: skip
    data = []
    for at, latency, errors in calls:
        when = datetime.fromtimestamp(at, UTC)
        data += [
            {"MetricName": "Invocations", "Value": 1, "Timestamp": when, "Dimensions": dimensions},
            {"MetricName": "Invocation5XXErrors", "Value": errors, "Timestamp": when,
             "Dimensions": dimensions},
            {"MetricName": "ModelLatency", "Value": latency, "Timestamp": when,
             "Dimensions": dimensions, "Unit": "Microseconds"},
        ]  # fmt: skip
    cloudwatch = rehearsal.client("cloudwatch")
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[start : start + 500])
    if not calls:
        return
    hour = datetime.fromtimestamp(calls[0][0], UTC)
    lines = [
        json.dumps({
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                  "data": "", "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                   "data": answer, "encoding": "CSV"}},
            "eventMetadata": {"eventId": f"{variant}-{i}",
                              "inferenceTime": hour.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0"})
        for i, answer in enumerate(answers)
    ]  # fmt: skip
    name = f"shadow-{uuid.uuid4().hex[:8]}.jsonl"
    key = f"datacapture/{env}/{endpoint}/{variant}/{hour:%Y/%m/%d/%H}/{name}"
    rehearsal.client("s3").put_object(Bucket="artifacts", Key=key, Body="\n".join(lines).encode())


def stage(rehearsal: Any, say: Any, env: EnvName, arn: str, broken: bool, since: float) -> bool:
    """One Shadow stage, as CodePipeline runs its three actions, its test's window starting
    at `since`; True when it passed."""
    from deploy_verifier import handler as verifier
    from deployer import handler as deployer

    from mlgate.infra.naming import role_arn
    from shared.served import NO_SHADOW, SHADOW, stack_parameters
    from tools.rehearsal import SIMULATED, lambda_context

    title = "Shadow " + env
    test = rehearsal.manifest.env_serving(env).shadow
    rehearsal.pipeline.execution = str(uuid.uuid4())  # a release execution of its own
    stack = rehearsal.name(env, "stack")
    endpoint = rehearsal.name(env, "endpoint")
    service_role = role_arn(rehearsal.manifest.environment(env).account,
                            rehearsal.names.serving_cfn_role(env))  # fmt: skip
    deploy = {"environment": env, "stack": stack, "service_role": service_role,
              **rehearsal.roles(env, "deploy")}  # fmt: skip
    first = deployer.handler(rehearsal.job(**deploy, shadow="start"), lambda_context("deployer"))
    done = deployer.handler(rehearsal.job(rehearsal.continuation(), **deploy, shadow="start"),
                            lambda_context("deployer"))  # fmt: skip
    cfn = rehearsal.account_client(env, "cloudformation")

    def parameters() -> dict[str, str | None]:
        return stack_parameters(cfn.describe_stacks(StackName=stack)["Stacks"][0])

    shadow_url = str(parameters()[SHADOW])
    rehearsal.endpoint.shadows[endpoint] = shadow_url
    say(title, f"AddShadow{env.capitalize()}: {first['reason']}; then {done['reason']} "
        f"({test.instance_count} x {rehearsal.manifest.env_serving(env).shadow_instance_type()}, "
        f"{test.sampling_percent} % of the requests copied)" + (
            "; the version is packaged with a serving bug (every number in its requests a "
            "hundred times what it is)"
            if broken else ""))  # fmt: skip
    judge = {"environment": env, "endpoint": endpoint, "shadow": judged(rehearsal, env),
             **rehearsal.roles(env, "verify")}  # fmt: skip
    real_now, metrics = verifier.now, rehearsal.metrics
    # The test's own CloudWatch: its data points (an hour ago) stay out of the rehearsal's
    # metrics, which the dashboards draw.
    rehearsal.metrics = type(metrics)()
    rehearsal.endpoint_mode = True  # the verifier's SageMaker is the endpoint stand-in
    try:
        verifier.now = lambda: since
        started = verifier.handler(rehearsal.job(**judge), lambda_context("deploy_verifier"))
        production = rehearsal.endpoint.serving[endpoint]
        prod_calls, shadow_calls, ours, theirs = copied_traffic(
            rehearsal, env, production, shadow_url, since, broken
        )
        publish(rehearsal, env, "AllTraffic", prod_calls, ours)
        publish(rehearsal, env, "Shadow", shadow_calls, theirs)
        verifier.now = lambda: since + test.minutes * 60 + 60
        verdict = verifier.handler(rehearsal.job(rehearsal.continuation(), **judge),
                                   lambda_context("deploy_verifier"))  # fmt: skip
    finally:
        verifier.now = real_now
        rehearsal.metrics = metrics
        rehearsal.endpoint_mode = False
    if started["result"] != "in_progress" or verdict["result"] != "succeeded":
        raise SystemExit(f"rehearsal: the shadow judge did not run: {started}, {verdict}")
    say(title, f"JudgeShadow{env.capitalize()}: {started['reason']}; {len(prod_calls)} requests "
        f"answered by production, {len(shadow_calls)} copied to the shadow (model latency "
        f"measured in this process); after the test's {test.minutes} min "
        f"{SIMULATED}: {verdict['reason']}")  # fmt: skip
    stop = deployer.handler(rehearsal.job(**deploy, shadow="stop"), lambda_context("deployer"))
    end = deployer.handler(rehearsal.job(rehearsal.continuation(), **deploy, shadow="stop"),
                           lambda_context("deployer"))  # fmt: skip
    rehearsal.endpoint.shadows.pop(endpoint, None)
    say(title, f"RemoveShadow{env.capitalize()}: {stop['reason']}; then {end['result']}: "
        f"{end['reason']}")  # fmt: skip
    params = parameters()
    if params[SHADOW] != NO_SHADOW or rehearsal.endpoint.serving[endpoint] != production:
        raise SystemExit(f"rehearsal: the Shadow stage left {stack} with {params}")
    return bool(end["result"] == "succeeded")


def play(rehearsal: Any, say: Any, env: EnvName, arn: str) -> bool:
    """Both scenarios; False when either ends otherwise than it should."""
    # Each test's window is in the past, the first one's before the second's (CloudWatch's
    # data points of one do not count in the other's).
    window = (rehearsal.manifest.env_serving(env).shadow.minutes + 5) * 60
    now = time.time()
    failed = stage(rehearsal, say, env, arn, broken=True, since=now - 2 * window)
    if failed:
        say("Shadow " + env, "FAILED: a version with a serving bug passed its shadow test")
        return False
    say("Shadow " + env, "the release with the serving bug stops here: no traffic moved, "
        f"{env} still serves version 1.")  # fmt: skip
    passed = stage(rehearsal, say, env, arn, broken=False, since=now - window)
    if not passed:
        say("Shadow " + env, "FAILED: version 2 did not pass its shadow test")
    rehearsal.pipeline.execution = None
    return passed
