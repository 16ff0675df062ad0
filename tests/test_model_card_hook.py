"""The model card hook (mlgate/runtime/hooks/model_card): a card per registered version, its
content from the manifest and the version's evaluation, its status following the gates
(Draft, PendingReview, Approved, Archived), each move idempotent and never backward; refusals
before any AWS call; a transient fault then Lambda's retry finishes once. Also the card's
content for every product, the go-live brief's link, the evidence pack's rendering and the
rehearsal's play (tools/rehearsal_cards.py). Under moto (which holds model cards) and botocore's
Stubber (exact calls and faults)."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from mlgate.cli.governance import cards as pack_cards
from mlgate.infra import cards
from mlgate.infra.naming import Names
from mlgate.manifest import Manifest, load_manifest, load_manifests

from .conftest import EXAMPLES, ROOT

LAMBDAS = ROOT / "mlgate" / "runtime" / "hooks"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))
# The gate notifier builds its idempotency stores at import, from the stack's settings.
os.environ.setdefault("IDEMPOTENCY_TABLE", "idempotency")

from tools.rehearsal_cards import Context, event, hook_environment, keep_unsent_fields  # noqa: E402

ACCOUNT, REGION = "123456789012", "eu-west-1"  # moto's default account; the tests' region
CONTEXT = Context(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:model-card")
MANIFESTS = {m.product.name: m for m in load_manifests(EXAMPLES)}
DEFAULT = "fraud-detection"


@pytest.fixture(scope="module")
def every_manifest(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    """Each example, and the product `python -m mlgate new` scaffolds."""
    from mlgate.cli.commands import main

    parent = tmp_path_factory.mktemp("products")
    assert main(["new", "churn-risk", "--dir", str(parent)]) == 0
    return [*MANIFESTS.values(), load_manifest(parent / "churn-risk" / "manifest.yaml")]


# --- the hook's world ----------------------------------------------------------------------------


@dataclass
class Pipeline:
    """CodePipeline's GetPipelineExecution (moto lacks it): each execution's source revision."""

    revisions: dict[str, list[str]] = field(default_factory=dict)

    def get_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        execution = kwargs["pipelineExecutionId"]
        if execution not in self.revisions:
            error = {"Code": "PipelineExecutionNotFoundException", "Message": "not found"}
            raise ClientError({"Error": error}, "GetPipelineExecution")
        revisions = [{"name": "Release", "revisionId": r} for r in self.revisions[execution]]
        return {"pipelineExecution": {"artifactRevisions": revisions}}


@dataclass
class World:
    """One product's registry, release source and model cards, under moto, and its hook."""

    manifest: Manifest
    handler: Any
    pipeline: Pipeline

    @property
    def names(self) -> Names:
        return Names.of(self.manifest)

    def evaluation(self, version: int, scale: float = 1.0) -> dict[str, float]:
        """A version's metrics: each just past its threshold, on the good side (or `scale`d)."""
        return {
            m.name.value: round(
                m.threshold * (1.02 if m.direction.value == "at_least" else 0.98) * scale, 4
            )
            for m in self.manifest.metrics.model_metrics
        }

    def register(self, version: int) -> str:
        """A version as the training pipeline registers it, its evaluation report beside it."""
        product = self.manifest.product.name
        run = f"training/{product}/execution-{version}"
        section = self.manifest.model.problem_type.report_section
        report = {section: {k: {"value": v} for k, v in self.evaluation(version).items()}}
        s3 = boto3.client("s3")
        s3.put_object(Bucket="artifacts", Key=f"{run}/evaluation.json", Body=json.dumps(report))
        arn = boto3.client("sagemaker").create_model_package(
            ModelPackageGroupName=self.names.model_package_group(),
            ModelApprovalStatus="PendingManualApproval",
            ModelMetrics={"ModelQuality": {"Statistics": {
                "ContentType": "application/json",
                "S3Uri": f"s3://artifacts/{run}/evaluation.json"}}},
            InferenceSpecification={
                "Containers": [{"Image": "image:1", "ModelDataUrl": f"s3://artifacts/{run}/m.tgz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"]},
            CustomerMetadataProperties={"mlgate:manifest-sha256": "ab" * 32},
        )["ModelPackageArn"]  # fmt: skip
        return str(arn)

    def release(self, version: int) -> str:
        """release.json of `version` written, as the execution that releases it records it."""
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{self.group}/{version}"
        document = {"model_version": version, "model_package_arn": arn}
        written = boto3.client("s3").put_object(
            Bucket="releases", Key="release.json", Body=json.dumps(document)
        )
        execution = f"00000000-0000-4000-8000-{version:012d}"
        self.pipeline.revisions[execution] = [written["VersionId"]]
        return execution

    @property
    def group(self) -> str:
        return self.names.model_package_group()

    def registered(self, version: int) -> dict[str, Any]:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{self.group}/{version}"
        detail = {"ModelPackageGroupName": self.group, "ModelPackageVersion": version,
                  "ModelPackageArn": arn,
                  "ModelApprovalStatus": "PendingManualApproval"}  # fmt: skip
        return event("SageMaker Model Package State Change", detail, account=ACCOUNT,
                     region=REGION, resource=arn)  # fmt: skip

    def pipeline_event(self, kind: str, execution: str, stage: str, state: str) -> dict[str, Any]:
        pipeline = self.names.release_pipeline()
        detail = {"pipeline": pipeline, "execution-id": execution, "stage": stage, "state": state}
        if kind == "action":
            detail["action"] = "Approve"
        kinds = {"action": "CodePipeline Action Execution State Change",
                 "stage": "CodePipeline Stage Execution State Change"}  # fmt: skip
        return event(kinds[kind], detail, account=ACCOUNT, region=REGION,
                     resource=f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{pipeline}")  # fmt: skip

    def requested(self, execution: str) -> dict[str, Any]:
        stage = self.names.gate_stage(cards.review_gate(self.manifest))
        return self.pipeline_event("action", execution, stage, "STARTED")

    def verified(self, execution: str) -> dict[str, Any]:
        return self.pipeline_event("stage", execution, cards.LIVE_STAGE, "SUCCEEDED")

    def run(self, event: dict[str, Any]) -> dict[str, str]:
        answer: dict[str, str] = self.handler.handler(event, CONTEXT)
        return answer

    def card(self, version: int) -> dict[str, Any]:
        name = self.handler.card.card_name(cards.card_prefix(self.manifest), version)
        described: dict[str, Any] = boto3.client("sagemaker").describe_model_card(
            ModelCardName=name
        )
        return described

    def status(self, version: int) -> str:
        return str(self.card(version)["ModelCardStatus"])

    def card_versions(self, version: int) -> int:
        name = self.handler.card.card_name(cards.card_prefix(self.manifest), version)
        listed = boto3.client("sagemaker").list_model_card_versions(ModelCardName=name)
        return len(listed["ModelCardVersionSummaryList"])


def environment(manifest: Manifest) -> dict[str, str]:
    """The hook's environment, as the Delivery stack sets it (mlgate/infra/constructs/
    model_cards.py)."""
    names = Names.of(manifest)
    return {
        **hook_environment(manifest),
        "MODEL_PACKAGE_GROUP": names.model_package_group(),
        "RELEASE_PIPELINE": names.release_pipeline(),
        "RELEASE_BUCKET": "releases",
        "ARTIFACT_BUCKET": "artifacts",
        "TRAINING_PREFIX": f"training/{manifest.product.name}",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    }


def hook() -> Any:
    from model_card import handler

    handler.settings.cache_clear()
    return handler


@pytest.fixture
def world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A product's world under moto (the product: the test's `name` parameter, or the
    default), its hook imported as Lambda imports it."""
    from .lambdas.conftest import moto

    manifest = MANIFESTS[getattr(request, "param", DEFAULT)]
    for key, value in environment(manifest).items():
        monkeypatch.setenv(key, value)
    with moto():
        s3 = boto3.client("s3")
        for bucket in ("artifacts", "releases"):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        s3.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Enabled"})
        boto3.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=Names.of(manifest).model_package_group()
        )
        handler = hook()
        for client in ("sagemaker", "s3"):  # made at the hook's import: this world's moto
            monkeypatch.setattr(handler, client, boto3.client(client))
        keep_unsent_fields(handler.sagemaker)
        pipeline = Pipeline()
        monkeypatch.setattr(handler, "codepipeline", pipeline)
        yield World(manifest, handler, pipeline)


# --- a card through the release ------------------------------------------------------------------


@pytest.mark.parametrize("world", sorted(MANIFESTS), indirect=True)
def test_a_card_follows_its_version_through_the_release_and_is_archived_when_superseded(
    world: World,
) -> None:
    m = world.manifest
    world.register(1)
    first = world.run(world.registered(1))
    assert (first["status"], first["changed"], first["previous"]) == ("Draft", "true", "none")
    assert first["card"] == f"{cards.card_prefix(m)}000001"
    # The content: the manifest's and the version's evaluation, as the hook wrote it.
    content = json.loads(world.card(1)["Content"])
    assert missing_from(content, m, world.evaluation(1)) == []
    assert content["model_package_details"]["model_package_version"] == 1
    # A redelivered registration changes nothing: no new card version.
    assert world.run(world.registered(1))["changed"] == "false"
    assert world.card_versions(1) == 1
    one = world.release(1)
    review = world.run(world.requested(one))
    assert (review["previous"], review["status"]) == ("Draft", "PendingReview")
    assert world.run(world.requested(one))["changed"] == "false"
    live = world.run(world.verified(one))
    assert (live["previous"], live["status"], live["archived"]) == ("PendingReview", "Approved", "")
    assert world.run(world.verified(one))["changed"] == "false"
    assert world.card_versions(1) == 3  # created, PendingReview, Approved: nothing twice
    # Version 2 goes live: its card is Approved, version 1's superseded.
    world.register(2)
    world.run(world.registered(2))
    two = world.release(2)
    world.run(world.requested(two))
    live = world.run(world.verified(two))
    assert (live["status"], live["archived"]) == ("Approved", world.card(1)["ModelCardName"])
    assert (world.status(1), world.status(2)) == ("Archived", "Approved")
    # Replays of version 1's events move nothing back.
    for replay in (world.verified(one), world.requested(one), world.registered(1)):
        assert world.run(replay)["changed"] == "false"
    assert (world.status(1), world.status(2)) == ("Archived", "Approved")
    assert json.loads(world.card(1)["Content"]) == content  # status moves kept the content


def test_a_go_live_arriving_after_a_later_version_s_archives_at_once(world: World) -> None:
    """Events can arrive out of order: version 1's go-live after version 2's is superseded."""
    for version in (1, 2):
        world.register(version)
    one, two = world.release(1), world.release(2)
    world.run(world.verified(two))
    late = world.run(world.verified(one))
    assert (late["previous"], late["status"]) == ("none", "Archived")
    assert (world.status(1), world.status(2)) == ("Archived", "Approved")


def test_a_card_moved_backwards_is_caught(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken form of the forward-only rule: with a `later` that allows any change, a
    replayed review request takes the live version's Approved card back to PendingReview,
    which the release test's replays would see."""
    world.register(1)
    one = world.release(1)
    world.run(world.verified(one))
    assert world.run(world.requested(one))["changed"] == "false"
    monkeypatch.setattr(world.handler.card, "later", lambda current, target: current != target)
    assert world.run(world.requested(one))["changed"] == "true"
    assert world.status(1) == "PendingReview"


def test_the_status_order_moves_only_forward() -> None:
    from model_card import card

    moves = {(a, b) for a in card.STATUSES for b in card.STATUSES if card.later(a, b)}
    assert moves == {
        ("Draft", "PendingReview"), ("Draft", "Approved"), ("Draft", "Archived"),
        ("PendingReview", "Approved"), ("PendingReview", "Archived"), ("Approved", "Archived"),
    }  # fmt: skip
    assert all(card.later(None, s) for s in card.STATUSES)


# --- refusals ----------------------------------------------------------------------------------


def refusals(world: World) -> dict[str, dict[str, Any]]:
    """Events the hook must refuse, each by the field it names."""
    one = world.release(1)
    good = world.registered(1)
    requested, verified = world.requested(one), world.verified(one)

    def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
        found = copy.deepcopy(base)
        *parents, last = path.split(".")
        where = found
        for part in parents:
            where = where[part]
        if value is None:
            del where[last]
        else:
            where[last] = value
        return found

    return {
        "detail.ModelPackageVersion": changed(good, "detail.ModelPackageVersion", "1"),
        "detail.ModelPackageArn": changed(good, "detail.ModelPackageArn", None),
        "detail-type": changed(good, "detail-type", "SageMaker Endpoint State Change"),
        "detail.ModelPackageGroupName": changed(good, "detail.ModelPackageGroupName", "other"),
        "account": changed(good, "account", "999999999999"),
        "region": changed(good, "region", "us-west-2"),
        "source": changed(good, "source", "my.app"),
        "resources[0]": changed(good, "resources", ["arn:aws:sagemaker:eu-west-1:1:x/y"]),
        "detail.pipeline": changed(requested, "detail.pipeline", "another-pipeline"),
        "detail.stage": changed(requested, "detail.stage", "DeployStaging"),
        "detail.state": changed(verified, "detail.state", "FAILED"),
        "detail.execution-id": changed(verified, "detail.execution-id", "../x"),
        "release.json": changed(
            verified, "detail.execution-id", "00000000-0000-4000-8000-999999999999"
        ),
    }


def test_malformed_and_foreign_events_are_refused_naming_the_field_before_any_card_call(
    world: World,
) -> None:
    world.register(1)
    cases = refusals(world)
    with Stubber(world.handler.sagemaker) as stub:  # any SageMaker call would fail the test
        for field_name, bad in cases.items():
            answer = world.run(bad)
            assert answer["status"] == "refused", field_name
            assert field_name in answer["reason"], (field_name, answer["reason"])
        stub.assert_no_pending_responses()
    # The same events, unbroken, are acted on: the refusals are the fields', not the events'.
    assert world.run(world.registered(1))["status"] == "Draft"
    assert world.run(world.verified(world.release(1)))["status"] == "Approved"


def test_aws_s_sample_registration_event_is_read_and_checked() -> None:
    """SageMaker's documented event (tests/events/model_package_state_change.json) is read
    whole and taken for the group it names, in its account and region; any other refused."""
    from dataclasses import replace

    from model_card import handler

    from shared.events import Origin

    sample = json.loads((ROOT / "tests" / "events" / "model_package_state_change.json").read_text())
    origin = Origin("aws", sample["region"], sample["account"])
    config = handler.Settings(
        context={}, prefix="p-v", review_stage="Review", live_stage="VerifyProd",
        group="versionedmp-p-idy6c3e1fiqj", pipeline="release", bucket="releases",
        key="release.json", artifacts="artifacts", training="training/p",
    )  # fmt: skip
    step = handler.step_of(handler.describe(sample), origin, config)
    assert (step.wanted, step.version) == ("Draft", 2)
    with pytest.raises(handler.EventError, match=r"detail\.ModelPackageGroupName"):
        handler.step_of(handler.describe(sample), origin, replace(config, group="another"))


def test_a_release_json_that_is_not_a_release_is_refused(world: World) -> None:
    execution = "00000000-0000-4000-8000-000000000077"
    written = boto3.client("s3").put_object(
        Bucket="releases", Key="release.json", Body=b'{"model_version": "seven"}'
    )
    world.pipeline.revisions[execution] = [written["VersionId"]]
    answer = world.run(world.verified(execution))
    assert answer["status"] == "refused"
    assert "release.json.model_version" in answer["reason"], answer["reason"]


# --- faults: exact calls with botocore's Stubber -----------------------------------------------


def throttled(stub: Stubber, operation: str) -> None:
    stub.add_client_error(operation, service_error_code="ThrottlingException", http_status_code=400)


def described(name: str, status: str) -> dict[str, Any]:
    """DescribeModelCard's answer for a card at `status`."""
    from datetime import UTC, datetime

    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/{name}"
    return {"ModelCardArn": arn, "ModelCardName": name, "ModelCardVersion": 1, "Content": "{}",
            "ModelCardStatus": status, "CreationTime": datetime.now(UTC),
            "CreatedBy": {}}  # fmt: skip


def test_a_throttled_status_change_then_the_retry_changes_the_card_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UpdateModelCard throttled (botocore's own retries spent): the invocation fails; Lambda's
    retry reads the card again and makes the one move. When the throttled call had in fact
    been applied (its answer lost), the retry sees it and changes nothing."""
    monkeypatch.setattr(world.handler, "sagemaker", boto3.client("sagemaker"))
    name = f"{cards.card_prefix(world.manifest)}000001"
    execution = world.release(1)
    for applied in (False, True):
        with Stubber(world.handler.sagemaker) as stub:
            stub.add_response("describe_model_card", described(name, "Draft"),
                              {"ModelCardName": name})  # fmt: skip
            throttled(stub, "update_model_card")
            with pytest.raises(ClientError, match="ThrottlingException"):
                world.run(world.requested(execution))
            now = "PendingReview" if applied else "Draft"
            stub.add_response("describe_model_card", described(name, now),
                              {"ModelCardName": name})  # fmt: skip
            if not applied:
                wanted = {"ModelCardName": name, "ModelCardStatus": "PendingReview"}
                stub.add_response("update_model_card", {"ModelCardArn": "arn"}, wanted)
            retry = world.run(world.requested(execution))
            stub.assert_no_pending_responses()
        assert (retry["status"], retry["changed"]) == ("PendingReview", str(not applied).lower())


def test_a_card_created_by_a_concurrent_try_is_moved_not_created_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CreateModelCard answers ConflictException (another delivery of the event created it
    meanwhile): the hook reads the card and moves it forward only if it is behind."""
    monkeypatch.setattr(world.handler, "sagemaker", boto3.client("sagemaker"))
    world.register(1)
    name = f"{cards.card_prefix(world.manifest)}000001"
    execution = world.release(1)
    package = boto3.client("sagemaker").describe_model_package(
        ModelPackageName=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{world.group}/1"
    )
    package.pop("ResponseMetadata")
    package.setdefault("ModelPackageName", world.group)  # moto leaves out this required field
    with Stubber(world.handler.sagemaker) as stub:
        stub.add_client_error("describe_model_card", "ResourceNotFound")
        stub.add_response("describe_model_package", package)
        stub.add_client_error("create_model_card", "ConflictException")
        stub.add_response("describe_model_card", described(name, "Draft"))
        stub.add_response("update_model_card", {"ModelCardArn": "arn"},
                          {"ModelCardName": name, "ModelCardStatus": "PendingReview"})  # fmt: skip
        answer = world.run(world.requested(execution))
        stub.assert_no_pending_responses()
    assert (answer["previous"], answer["status"]) == ("Draft", "PendingReview")


def test_a_status_change_sends_the_status_alone(world: World) -> None:
    """SageMaker takes either content or status in one UpdateModelCard: the hook's status
    moves send no content (they are recorded before moto's stand-in fills it in)."""
    sent: list[dict[str, Any]] = []
    world.handler.sagemaker.meta.events.register_first(
        "provide-client-params.sagemaker.UpdateModelCard",
        lambda params, **_: sent.append(dict(params)),
    )
    world.register(1)
    world.run(world.registered(1))
    world.run(world.verified(world.release(1)))
    assert sent == [{"ModelCardName": f"{cards.card_prefix(world.manifest)}000001",
                     "ModelCardStatus": "Approved"}]  # fmt: skip


# --- the content, the name, the link -----------------------------------------------------------


def missing_from(
    content: dict[str, Any], m: Manifest, metrics: dict[str, float] | None
) -> list[str]:
    """What of the manifest (objective, owners, intended use, every risk with its mitigation,
    every model metric with its threshold and owner) and of the evaluation the card lacks."""
    text = json.dumps(content, ensure_ascii=False)
    c = m.contact
    wanted = [m.product.objective[:60], c(m.product.owners.product_manager).name,
              c(m.product.owners.ml_lead).name, *m.model.features,
              m.data.curated.target_column]  # fmt: skip
    wanted += [r.id for r in m.risks] + [r.mitigation[:60] for r in m.risks]
    for metric in m.metrics.model_metrics:
        wanted += [f"{metric.name.value}", f"{metric.threshold:g}", c(metric.owner).name]
    problems = [f"lacks {w!r}" for w in wanted if w not in text]
    uses = content.get("intended_uses", {})
    if uses.get("risk_rating") not in ("High", "Medium", "Low", "Unknown"):
        problems.append(f"risk rating {uses.get('risk_rating')!r}")
    shown = {
        d["name"]: d["value"]
        for g in content["evaluation_details"][0].get("metric_groups", [])
        for d in g["metric_data"]
    }
    if metrics is not None and shown != metrics:
        problems.append(f"evaluation {shown} is not {metrics}")
    return problems


# The schema's text limits (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
# aws-properties-sagemaker-modelcard-content.html and its property types).
LIMITS = {
    ("model_overview", "model_description"): 1024, ("model_overview", "model_creator"): 1024,
    ("model_overview", "model_owner"): 1024, ("model_overview", "algorithm_type"): 1024,
    ("intended_uses", "purpose_of_model"): 2048, ("intended_uses", "intended_uses"): 2048,
    ("intended_uses", "factors_affecting_model_efficiency"): 2048,
    ("intended_uses", "explanations_for_risk_rating"): 2048,
    ("business_details", "business_problem"): 2048,
    ("business_details", "business_stakeholders"): 2048,
    ("business_details", "line_of_business"): 2048,
    ("additional_information", "caveats_and_recommendations"): 2048,
}  # fmt: skip


def test_every_product_s_card_holds_its_manifest_and_evaluation_within_the_schema(
    every_manifest: list[Manifest],
) -> None:
    for m in every_manifest:
        metrics = {x.name.value: x.threshold for x in m.metrics.model_metrics}
        content = cards.card_content(m, metrics)
        assert missing_from(content, m, metrics) == [], m.product.name
        for (section, name), most in LIMITS.items():
            assert len(content[section][name]) <= most, (m.product.name, section, name)
        assert len(json.dumps(content)) <= 100_000  # Content's own limit
        # Without an evaluation the card says so, and still holds the manifest.
        bare = cards.card_content(m, None)
        assert missing_from(bare, m, None) == []
        assert "No evaluation report" in bare["evaluation_details"][0]["evaluation_observation"]
        assert len(cards.encoded_context(m)) <= cards.MAX_CONTEXT_BYTES
    # The broken form: a card without a risk's mitigation, or with another evaluation, is caught.
    m = every_manifest[0]
    metrics = {x.name.value: x.threshold for x in m.metrics.model_metrics}
    content = cards.card_content(m, metrics)
    dropped = copy.deepcopy(content)
    risk = m.risks[0]
    dropped["intended_uses"]["explanations_for_risk_rating"] = dropped["intended_uses"][
        "explanations_for_risk_rating"
    ].replace(risk.mitigation[:60], "")
    assert missing_from(dropped, m, metrics) == [f"lacks {risk.mitigation[:60]!r}"]
    assert missing_from(content, m, {k: v + 1 for k, v in metrics.items()}) != []


def test_a_long_text_is_cut_to_the_schema_s_length() -> None:
    from model_card import card

    context = cards.card_context(MANIFESTS[DEFAULT])
    context["objective"] = "x" * 5000
    content = card.content(context)
    assert len(content["model_overview"]["model_description"]) == 1024
    assert len(content["intended_uses"]["purpose_of_model"]) == 2048


def test_card_names_are_the_product_s_own() -> None:
    """A card's name is its product's prefix and the version's six digits; another product's
    card (one whose name extends this one's with -v2) never reads as one of this product's.
    The grant's pattern on the synthesized role: tests/test_model_card_stack.py."""
    from model_card import card

    prefix = cards.card_prefix(MANIFESTS[DEFAULT])
    name = card.card_name(prefix, 7)
    assert (name, card.version_of(prefix, name)) == (f"{prefix}000007", 7)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", card.card_name(prefix, 999_999))
    for bad in (0, 1_000_000):
        with pytest.raises(ValueError, match="has no card name"):
            card.card_name(prefix, bad)
    assert card.version_of(prefix, f"{prefix}2-v000001") is None
    assert card.version_of(prefix, f"{prefix}000000") is None


def test_the_go_live_brief_links_the_version_s_card_and_no_other_brief_does() -> None:
    from gate_notifier import handler as notifier
    from model_card import card

    from mlgate.infra.gates import gate_context

    m = MANIFESTS[DEFAULT]
    context = json.loads(json.dumps(gate_context(m, brief_topics={}, dashboard_url="https://d")))
    prefix = cards.card_prefix(m)
    release = {"model_version": 3, "model_package_arn": "arn"}
    go_live = Names.of(m).gate_stage(cards.go_live_gate(m))
    for stage, gate in context["gates"].items():
        link = notifier.card_link(context, gate, release, prefix, REGION)
        if stage == go_live:
            name = card.card_name(prefix, 3)
            assert link == {"name": name, "url": card.card_url(REGION, name)}
            approval = {"expires": "x", "consoleLink": "https://c"}
            text = notifier.text(notifier.brief(context, gate, approval, release, {"status": "ok"},
                                                link))  # fmt: skip
            assert f"Model card: {name}" in text
            assert link["url"] in text
        else:
            assert link is None, stage
    gate = context["gates"][go_live]
    assert notifier.card_link(context, gate, release, "", REGION) is None  # no card hook
    assert notifier.card_link(context, gate, {"model_version": "3"}, prefix, REGION) is None


# --- the evidence pack and the rehearsal -------------------------------------------------------


def test_the_evidence_pack_renders_each_product_s_card_with_the_last_rehearsal_s_evaluation(
    every_manifest: list[Manifest], tmp_path: Path
) -> None:
    for m in every_manifest:
        notes, rows, caption = pack_cards.model_cards(m, tmp_path)
        assert "No rehearsal has run" in notes[-1]
        assert "no evaluation yet" in caption
        name = m.product.name
        metrics = {x.name.value: round(x.threshold + 0.001, 4) for x in m.metrics.model_metrics}
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"generated": "then", "metrics": [
            {"namespace": "mlgate/evaluation", "name": k, "dimensions": {"Product": name},
             "points": [["then", v]]} for k, v in metrics.items()]}))  # fmt: skip
        notes, rows, caption = pack_cards.model_cards(m, tmp_path)
        text = " ".join(notes) + json.dumps(rows, ensure_ascii=False)
        assert cards.card_prefix(m) + "000001" in text
        assert cards.review_gate(m) in text
        assert "last rehearsal's (`make rehearse`, then)" in notes[-1]
        shown = {r[1].removeprefix("metric "): r[2] for r in rows if r[1].startswith("metric ")}
        assert sorted(shown) == sorted(metrics), name
        for metric, value in metrics.items():
            assert shown[metric].startswith(f"{value:.4g} ("), (metric, shown[metric])
        for risk in m.risks:
            assert risk.mitigation[:60] in text


def test_the_rehearsal_plays_each_version_s_card_through_its_statuses(world: World) -> None:
    from tools.rehearsal_cards import play_card

    lines = []
    for version in (1, 2):
        world.register(version)
        execution = world.release(version)
        lines += play_card(world.manifest, version=version, execution=execution,
                           account=ACCOUNT, region=REGION)  # fmt: skip
    text = "\n".join(lines)
    prefix = cards.card_prefix(world.manifest)
    for version in (1, 2):
        assert f"{prefix}{version:06d} created Draft at registration" in text
        assert f"{prefix}{version:06d} Draft -> PendingReview" in text
        assert f"{prefix}{version:06d} PendingReview -> Approved" in text
    assert f"the card it supersedes, {prefix}000001: Archived" in text
    assert "CHANGED AGAIN" not in text
    assert text.count("unchanged") == 4
    assert (world.status(1), world.status(2)) == ("Archived", "Approved")


def test_the_rehearsal_stops_on_a_refused_event(world: World) -> None:
    """The broken form of the play: an event the hook refuses (here its group is not the
    stack's) stops the rehearsal, naming the refusal."""
    from tools.rehearsal_cards import play_card

    world.register(1)
    execution = world.release(1)
    os.environ["MODEL_PACKAGE_GROUP"] = "another-group"
    world.handler.settings.cache_clear()
    with pytest.raises(SystemExit, match="refused an event"):
        play_card(world.manifest, version=1, execution=execution, account=ACCOUNT, region=REGION)
