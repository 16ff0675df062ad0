"""Slack: request signatures (https://api.slack.com/authentication/verifying-requests-from-slack)
and posting Block Kit messages to an incoming webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request
from typing import Any

MAX_AGE_SECONDS = 300


class SignatureError(ValueError):
    """The request is not provably from Slack, or is too old: a forgery or a replay."""


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: str, now: float
) -> None:
    if not timestamp or not signature:
        raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature header")
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        raise SignatureError(f"timestamp {timestamp!r} is not a number") from None
    if age > MAX_AGE_SECONDS:
        raise SignatureError(
            f"request is {int(age)} s old (more than {MAX_AGE_SECONDS} s): refused as a replay"
        )
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise SignatureError("signature does not match: the request was not signed by Slack")


def post(webhook_url: str, message: dict[str, Any]) -> int:
    """POST a message to an incoming webhook; returns the HTTP status."""
    request = urllib.request.Request(
        webhook_url,
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)
