"""Which SageMaker instance types keep their volumes on instance storage.

An instance type with local NVMe storage encrypts it with a hardware module on the instance,
and SageMaker refuses a KMS key for it: "You can't request a KmsKeyId when using an instance
type with local storage ... the call to CreateEndpointConfig fails"
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html), and
the same for a training job's, a processing job's and a transform job's VolumeKmsKeyId
(API_ResourceConfig, API_ProcessingClusterConfig, API_TransformResources). mlgate passes the
product key for the volume of every other type, and none for these.

The families with instance storage follow EC2's naming: a `d` among the attributes after the
generation (m5d, c6gd, r5dn, g4dn, p4d, p3dn, x2iedn), and the accelerated families whose
every size has NVMe storage though their name carries no `d`
(https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html, "Instance store
specifications"): g5, g6, g6e, gr6, p5, p5e, p5en, trn1, trn1n, trn2, dl1. inf1 and inf2 are
EBS-only.
"""

from __future__ import annotations

import re

NVME_FAMILIES = frozenset(
    {"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn1", "trn1n", "trn2", "dl1"}
)
_FAMILY = re.compile(r"^ml\.(?P<family>(?P<kind>[a-z]+)\d+(?P<attributes>[a-z-]*))\.")


def has_instance_storage(instance_type: str) -> bool:
    """Whether `instance_type` (ml.<family>.<size>) keeps its volumes on instance storage,
    where SageMaker refuses a KMS key."""
    found = _FAMILY.match(instance_type)
    if found is None:
        return False
    return found["family"] in NVME_FAMILIES or "d" in found["attributes"]


def volume_key(instance_type: str, key_arn: str) -> str | None:
    """The KMS key for the volumes of `instance_type`: `key_arn`, or None on instance storage
    (encrypted by the instance's hardware; SageMaker refuses a key there)."""
    return None if has_instance_storage(instance_type) else key_arn
