"""Slack request signing and the click payload, checked against Slack's documented examples."""

from __future__ import annotations

import json

import pytest

from shared import slack
from shared.events import Refused

# https://api.slack.com/authentication/verifying-requests-from-slack (worked example)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TIMESTAMP = "1531420618"
BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
    "-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F39770"
    "0885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2"
    "c447fce8b6703c"
)
SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_signature_matches_slack_s_example() -> None:
    assert slack.sign(SECRET, TIMESTAMP, BODY) == SIGNATURE
    slack.verify(SECRET, TIMESTAMP, SIGNATURE, BODY, now=int(TIMESTAMP) + 10)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "message"),
    [
        (TIMESTAMP, SIGNATURE, BODY + "&x=1", 1531420618, "signature does not match"),
        (TIMESTAMP, SIGNATURE.replace("a", "b"), BODY, 1531420618, "signature does not match"),
        (TIMESTAMP, SIGNATURE, BODY, 1531420618 + 301, "301 s old"),
        (None, SIGNATURE, BODY, 1531420618, "missing"),
        ("soon", SIGNATURE, BODY, 1531420618, "not a number"),
    ],
)
def test_forged_stale_or_incomplete_requests_are_refused(
    timestamp: str | None, signature: str, body: str, now: int, message: str
) -> None:
    with pytest.raises(slack.SignatureError, match=message):
        slack.verify(SECRET, timestamp, signature, body, now=now)


# A block_actions payload as Slack documents it
# (https://api.slack.com/reference/interaction-payloads/block-actions), trimmed to one button.
BLOCK_ACTIONS = {
    "type": "block_actions",
    "team": {"id": "T9TK3CUKW", "domain": "example"},
    "user": {"id": "UA8RXUSPL", "username": "jtorrance", "team_id": "T9TK3CUKW"},
    "api_app_id": "AABA1ABCD",
    "token": "9s8d9as89d8as9d8as989",
    "container": {"type": "message_attachment", "message_ts": "1548261231.000200"},
    "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
    "channel": {"id": "CBR2V3XEX", "name": "review-updates"},
    "response_url": "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209",
    "actions": [
        {"action_id": "approve", "block_id": "gate:0123456789abcdef01234567",
         "value": "0123456789abcdef01234567", "type": "button", "action_ts": "1548426417.840180"}
    ],
}  # fmt: skip


def test_slack_s_documented_click_is_read() -> None:
    from urllib.parse import urlencode

    click = slack.interaction(urlencode({"payload": json.dumps(BLOCK_ACTIONS)}))
    assert (click.user.id, click.user.username, click.team and click.team.id) == (
        "UA8RXUSPL", "jtorrance", "T9TK3CUKW")  # fmt: skip
    assert (click.actions[0].action_id, click.actions[0].value) == (
        "approve", "0123456789abcdef01234567")  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("payload=%ED%A0%80", "body"),  # a lone surrogate, percent-encoded
        ("payload=%7B%7D%00", "payload"),  # NUL after the JSON, percent-encoded
        ("payload=\u202e", "body"),  # not form-encoded at all
        ("payload=" + "a" * 300_000, "body"),
        ("payload=%7B%22user%22%3A%20%7B%22id%22%3A%20%22U1%E2%80%8F%22%7D%7D", "payload.user.id"),
    ],
)
def test_a_body_that_cannot_be_a_click_names_its_field(body: str, field: str) -> None:
    with pytest.raises(Refused) as refused:
        slack.interaction(body)
    assert refused.value.field == field
    assert refused.value.reason.startswith(field)
