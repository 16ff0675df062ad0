"""Slack: request signatures (https://api.slack.com/authentication/verifying-requests-from-slack)
and posting Block Kit messages to an incoming webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.request
from typing import Any

MAX_AGE_SECONDS = 300
# Slack's v0 signature: "v0=" and a hex HMAC-SHA256. Anything else is refused before the
# comparison (hmac.compare_digest raises TypeError on non-ASCII text).
SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SignatureError(ValueError):
    """The request is not provably from Slack, or is too old: a forgery or a replay."""


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def check_fresh(timestamp: str | None, signature: str | None, now: float) -> tuple[str, str]:
    """What can be refused without the signing secret: missing or malformed headers, a stale
    timestamp. Run first, so a junk request costs no secret lookup."""
    if not timestamp or not signature:
        raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature header")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureError(f"timestamp {timestamp[:20]!r} is not a number")
    age = abs(now - int(timestamp))
    if age > MAX_AGE_SECONDS:
        raise SignatureError(
            f"request is {int(age)} s old (more than {MAX_AGE_SECONDS} s): refused as a replay"
        )
    if not SIGNATURE.fullmatch(signature):
        raise SignatureError("signature does not match: it is not a Slack v0 signature")
    return timestamp, signature


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: str, now: float
) -> None:
    stamp, signed = check_fresh(timestamp, signature, now)
    if not hmac.compare_digest(sign(secret, stamp, body).encode(), signed.encode()):
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
