"""Acting in an environment's own account: clients under a role assumed for one task.

The release hooks run in the product's home account; an environment in another account lets
them in through a role named for the task (mlgate/infra/accounts.py names them on both sides).
"""

from __future__ import annotations

from typing import Any

import boto3


def session(role_arn: str | None, purpose: str, base: Any = None) -> Any:
    """`base` (default: the Lambda's own session) without a role; otherwise a session under
    `role_arn`, assumed from `base`, named after `purpose` so CloudTrail in the other account
    shows who came and why."""
    base = base or boto3
    if not role_arn:
        return base
    name = "".join(c if c.isalnum() or c in "=,.@-" else "-" for c in purpose)[:64]
    creds = base.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
