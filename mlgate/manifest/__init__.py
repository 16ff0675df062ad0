"""The product manifest: one typed, immutable model of a product and its infrastructure.

A manifest is the product's one-pager (objective, owners, tiered metrics, gates, risks) and the
settings every stack reads. `load_manifest` is the only way in: it rejects unknown keys, checks
cross-field rules and reports every problem at once as `ManifestError`, one line per problem.
"""

from __future__ import annotations

from mlgate.manifest.base import (
    AWS_REGIONS,
    ENV_NAMES,
    IMAGE_URI,
    RELATIVE_PATH,
    EnvName,
    EventBridgeSchedule,
    GlueSchedule,
    InstanceType,
    MonitorSchedule,
    RelativePath,
    Slug,
    Text,
)
from mlgate.manifest.data import (
    DQDL_RULE_TYPES,
    NUMERIC_TYPES,
    Column,
    ColumnName,
    ColumnType,
    Data,
    DataSource,
    Schema,
    dqdl_columns,
)
from mlgate.manifest.document import (
    Manifest,
)
from mlgate.manifest.environments import (
    ARTIFACT_PREFIXES,
    NONCURRENT_DAYS,
    Environment,
    Environments,
    Retention,
)
from mlgate.manifest.gates import (
    Gate,
    GateKind,
    GatePlacement,
    Rice,
    Risk,
)
from mlgate.manifest.loading import (
    MANIFEST_FILE,
    ManifestBatchError,
    ManifestError,
    _FastUniqueKeyLoader,
    load_manifest,
    load_manifests,
    manifest_paths,
    parse_manifest,
)
from mlgate.manifest.metrics import (
    ERROR_METRICS,
    METRICS_BY_PROBLEM,
    UNBOUNDED_METRICS,
    BusinessKpi,
    Direction,
    Metrics,
    ModelMetric,
    ModelMetricName,
    ProblemType,
    Slo,
    SloKind,
)
from mlgate.manifest.model import (
    DEFAULT_FRAMEWORK_VERSION,
    Algorithm,
    ModelCode,
    ModelSettings,
)
from mlgate.manifest.product import (
    Contact,
    Owners,
    Product,
)
from mlgate.manifest.serving import (
    Autoscaling,
    Delivery,
    EnvironmentServing,
    Monitoring,
    MonitoringEngine,
    Rollout,
    RolloutPolicy,
    Serving,
)

__all__ = [
    "ARTIFACT_PREFIXES",
    "AWS_REGIONS",
    "DEFAULT_FRAMEWORK_VERSION",
    "DQDL_RULE_TYPES",
    "ENV_NAMES",
    "ERROR_METRICS",
    "IMAGE_URI",
    "MANIFEST_FILE",
    "METRICS_BY_PROBLEM",
    "NONCURRENT_DAYS",
    "NUMERIC_TYPES",
    "RELATIVE_PATH",
    "UNBOUNDED_METRICS",
    "Algorithm",
    "Autoscaling",
    "BusinessKpi",
    "Column",
    "ColumnName",
    "ColumnType",
    "Contact",
    "Data",
    "DataSource",
    "Delivery",
    "Direction",
    "EnvName",
    "Environment",
    "EnvironmentServing",
    "Environments",
    "EventBridgeSchedule",
    "Gate",
    "GateKind",
    "GatePlacement",
    "GlueSchedule",
    "InstanceType",
    "Manifest",
    "ManifestBatchError",
    "ManifestError",
    "Metrics",
    "ModelCode",
    "ModelMetric",
    "ModelMetricName",
    "ModelSettings",
    "MonitorSchedule",
    "Monitoring",
    "MonitoringEngine",
    "Owners",
    "ProblemType",
    "Product",
    "RelativePath",
    "Retention",
    "Rice",
    "Risk",
    "Rollout",
    "RolloutPolicy",
    "Schema",
    "Serving",
    "Slo",
    "SloKind",
    "Slug",
    "Text",
    "_FastUniqueKeyLoader",
    "dqdl_columns",
    "load_manifest",
    "load_manifests",
    "manifest_paths",
    "parse_manifest",
]
