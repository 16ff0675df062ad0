"""Acting in an environment's own account: clients under a role assumed for one task.

The release hooks run in the product's home account; an environment in another account lets
them in through a role named for the task (mlgate/infra/accounts.py names them on both sides).
"""

from __future__ import annotations

from typing import Any

import boto3


def session(role_arn: str | None, purpose: str) -> Any:
    """The Lambda's own session without a role; otherwise one under `role_arn`, named after
    `purpose` so CloudTrail in the other account shows who came and why."""
    if not role_arn:
        return boto3
    name = "".join(c if c.isalnum() or c in "=,.@-" else "-" for c in purpose)[:64]
    creds = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
