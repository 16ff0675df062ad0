"""Slack: request signatures (https://api.slack.com/authentication/verifying-requests-from-slack),
the button click a gate's brief receives (a block_actions interaction payload,
https://api.slack.com/reference/interaction-payloads/block-actions), and posting Block Kit
messages to an incoming webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from shared.events import Refused, excerpt, first_problem, text
from shared.fields import Invalid, Lit, Obj, Opt, Seq, Text, check

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


# Slack lets an app regenerate its signing secret and webhook URL: a secret is cached for five
# minutes, not fetched per click or brief (what Powertools' parameters utility does, without
# its import at every cold start).
SECRET_MAX_AGE = 300
# A secret's text by ARN, with the monotonic time it is good until.
SECRETS: dict[str, tuple[float, str]] = {}


@cache
def secretsmanager() -> Any:
    """The Secrets Manager client, made when a secret is first read (not at import)."""
    import boto3

    return boto3.client("secretsmanager")


def secret(arn: str) -> str:
    """A Slack credential's SecretString (secretsmanager:GetSecretValue), cached."""
    cached = SECRETS.get(arn)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    text = secretsmanager().get_secret_value(SecretId=arn).get("SecretString")
    if not isinstance(text, str):
        raise ValueError(f"secret {arn} has no SecretString")
    SECRETS[arn] = (time.monotonic() + SECRET_MAX_AGE, text)
    return text


def post(webhook_url: str, message: dict[str, Any]) -> int:
    """POST a message to an incoming webhook; returns the HTTP status."""
    import urllib.request  # the notifier's alone: not imported by the callback's cold start

    request = urllib.request.Request(
        webhook_url,
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


# What the callback reads of a block_actions payload (checked without pydantic: shared/fields.py):
# one clicked button, who clicked, and the workspace and app the click comes from (checked
# against the signing secret's). Slack's ids: users U.../W..., workspaces T..., apps A...
# (upper-case letters and digits).
USER_ID = Text(32, r"^[UW][A-Z0-9]+$")
TEAM_ID = Text(32, r"^T[A-Z0-9]+$")
APP_ID = Text(32, r"^A[A-Z0-9]+$")
USER_NAME = text(80)
# A button's value: the brief's request id, or the rollback offer's id (its format is
# checked by the callback).
VALUE = text(64)
USER = Obj("User", {"id": USER_ID, "username": Opt(USER_NAME), "name": Opt(USER_NAME)})
TEAM = Obj("Team", {"id": TEAM_ID})
ACTION = Obj("Action", {"action_id": Lit(("approve", "reject", "rollback")), "value": VALUE})
INTERACTION = Obj(
    "Interaction",
    {
        "user": USER,
        "actions": Seq(ACTION, max_length=1, min_length=1),
        "team": Opt(TEAM),
        "api_app_id": Opt(APP_ID),
    },
)


# A click's body is a few kilobytes; the brief's own message is at most 3,000 characters.
MAX_BODY = 256 * 1024


def interaction(body: str) -> Any:
    """The payload of Slack's form-encoded POST (`payload=<JSON>`, and nothing else). Refused,
    naming the field, when the body is not form-encoded ASCII text, a percent-escape is not
    UTF-8 (a lone surrogate, %ED%A0%80), or the JSON is not a click."""
    if len(body) > MAX_BODY:
        raise Refused("body", f"body: longer than {MAX_BODY} characters")
    if not (body.isascii() and body.isprintable()):
        raise Refused("body", "body: not application/x-www-form-urlencoded text (it has "
                              "characters outside printable ASCII)")  # fmt: skip
    try:
        form = parse_qs(body, strict_parsing=True, errors="strict", max_num_fields=4)
    except UnicodeDecodeError:
        raise Refused("body", "body: a percent-escape is not UTF-8 text") from None
    except ValueError as err:
        raise Refused("body", f"body: not form-encoded ({str(err)[:60]})") from None
    if list(form) != ["payload"] or len(form["payload"]) != 1:
        raise Refused("body", f"body: it must carry one payload field and nothing else (it has "
                              f"{excerpt(', '.join(sorted(form)), 80) or 'none'})")  # fmt: skip
    try:
        return check(form["payload"][0], INTERACTION)
    except Invalid as err:
        raise Refused(*first_problem(err.errors, root="payload")) from None
