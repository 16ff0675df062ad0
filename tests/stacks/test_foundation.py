"""Foundation stack: the product key, the artifact bucket and the on-call topic."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from mlgate.manifest import load_manifest

from ..conftest import DEFAULT_MANIFEST


def foundation(synth: Any) -> Any:
    return synth.template(synth.product().foundation)


def test_product_key_rotates_and_is_retained(synth: Any) -> None:
    template = foundation(synth)
    template.has_resource(
        "AWS::KMS::Key",
        {"Properties": {"EnableKeyRotation": True}, "DeletionPolicy": "Retain"},
    )
    template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": "alias/mlgate/fraud-detection"}
    )


def test_artifact_bucket_is_encrypted_versioned_logged_and_retained(synth: Any) -> None:
    template = foundation(synth)
    template.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LoggingConfiguration": {
                    "DestinationBucketName": Match.any_value(),
                    "LogFilePrefix": "artifacts/",
                },
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_every_bucket_refuses_plain_http(synth: Any) -> None:
    template = foundation(synth)
    buckets = template.find_resources("AWS::S3::Bucket")
    policies = template.find_resources("AWS::S3::BucketPolicy")
    denied = {
        p["Properties"]["Bucket"]["Ref"]
        for p in policies.values()
        if any(
            s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    assert denied == set(buckets)


def test_on_call_topic_is_encrypted_and_mails_the_on_call_contact(synth: Any) -> None:
    manifest = load_manifest(DEFAULT_MANIFEST)
    on_call = manifest.contact(manifest.product.owners.on_call)
    template = foundation(synth)
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": "mlgate-fraud-detection-on-call",
            "KmsMasterKeyId": Match.any_value(),
        },
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": on_call.email}
    )


def test_stacks_are_tagged_with_product_and_owner(synth: Any) -> None:
    template = foundation(synth)
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "Tags": Match.array_with(
                [
                    {"Key": "mlgate:owner", "Value": "alice.moreau@example.com"},
                    {"Key": "mlgate:product", "Value": "fraud-detection"},
                ]
            )
        },
    )
