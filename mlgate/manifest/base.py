"""Shared pieces of the manifest model: the strict base model, text and name types, regions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
)

from mlgate.manifest import schedules

# Regions where SageMaker, Glue and CodePipeline are all generally available.
AWS_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1",
        "sa-east-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2", "ap-south-1", "ap-south-2", "ap-southeast-1",
        "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-east-1", "me-south-1", "me-central-1", "il-central-1", "af-south-1",
    }
)  # fmt: skip


Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$", strip_whitespace=True)
]


Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


GlueSchedule = Annotated[str, AfterValidator(schedules.glue)]


EventBridgeSchedule = Annotated[str, AfterValidator(schedules.eventbridge)]


MonitorSchedule = Annotated[str, AfterValidator(schedules.model_monitor)]


InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )


# A path inside the product's folder: no absolute path, no `..`.
RELATIVE_PATH = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*(\.[A-Za-z0-9]+)?$"


RelativePath = Annotated[str, StringConstraints(pattern=RELATIVE_PATH)]


IMAGE_URI = r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/\S+$"


EnvName = Literal["staging", "prod"]


ENV_NAMES: tuple[EnvName, ...] = ("staging", "prod")


def _duplicates(problems: list[tuple[str, str]], path: str, values: list[str], key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            problems.append((f"{path}[{i}].{key}", f"'{value}' is used twice; {key}s are unique"))
        seen.add(value)


class _CrossFieldErrors(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems
