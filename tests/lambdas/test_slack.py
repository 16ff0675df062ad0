"""Slack request signing, checked against Slack's documented example."""

from __future__ import annotations

import pytest

from shared import slack

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
