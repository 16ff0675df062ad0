"""The suite's boto3 clients (conftest.ClientCache): one per call site, made once per worker,
and made afresh once a test left something on it. Each check shows its broken form: a cache
without that guard hands the spoiled client out again."""

from __future__ import annotations

import contextlib
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber, UnStubbedResponseError

from ..conftest import tested as measured_with
from .conftest import THROTTLED, Cached, ClientCache, Wire, moto, shared_session


def cache_of(kind: type[ClientCache] = ClientCache) -> ClientCache:
    """A cache of its own over the suite's session (the suite's clients are left alone)."""
    session = shared_session()
    make = session.client.make if isinstance(session.client, ClientCache) else session.client
    return kind(make)


def first_site(cache: ClientCache, *args: Any, **kwargs: Any) -> Any:
    return cache(*args, **kwargs)


def second_site(cache: ClientCache, *args: Any, **kwargs: Any) -> Any:
    return cache(*args, **kwargs)


class SiteBlind(ClientCache):
    """Broken: keyed without the call site."""

    @staticmethod
    def key(site: tuple[str, int, int], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return ClientCache.key(("", 0, 0), args, kwargs)


class LineOnly(ClientCache):
    """Broken: keyed by the call's line, not its instruction."""

    @staticmethod
    def key(site: tuple[str, int, int], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return ClientCache.key((site[0], site[1], 0), args, kwargs)


class EventBlind(ClientCache):
    """Broken: does not see handlers registered on a client (a Stubber's)."""

    EVENTS = ()


class AttributeBlind(ClientCache):
    """Broken: does not see attributes set on a client."""

    @staticmethod
    def spoiled(cached: Cached) -> bool:
        return cached.spoiled


class RetryBlind(ClientCache):
    """Broken: does not see retried requests."""

    @staticmethod
    def attempt(cached: Cached, request: Any, **_: Any) -> None:
        return None


class EnvironmentBlind(ClientCache):
    """Broken: keyed without the environment."""

    @staticmethod
    def key(site: tuple[str, int, int], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return site, args, tuple(sorted(kwargs.items()))


def test_a_site_keeps_its_client_and_two_sites_never_share_one(aws: None) -> None:
    cache = cache_of()
    assert first_site(cache, "s3") is first_site(cache, "s3")
    assert first_site(cache, "s3") is not second_site(cache, "s3")
    assert first_site(cache, "s3") is not first_site(cache, "sqs")
    assert cache.made == 3
    one, other = cache("s3"), cache("s3")  # two calls on one line: two sites
    assert one is not other
    # The broken forms: one client for both sites, for both calls on the line.
    blind = cache_of(SiteBlind)
    assert first_site(blind, "s3") is second_site(blind, "s3")
    lines = cache_of(LineOnly)
    one, other = lines("s3"), lines("s3")
    assert one is other


@pytest.mark.skipif(not measured_with("moto"), reason="the shared session stands down on this moto")
def test_a_client_made_in_one_world_answers_from_the_next_world_s_empty_backends() -> None:
    """What sharing a client across tests rests on: each mock_aws() starts from empty
    backends, and moto answers a client made in an earlier one."""
    assert isinstance(shared_session().client, ClientCache)
    made = []
    for world in range(2):
        with moto():
            s3 = boto3.client("s3")
            made.append(s3)
            if world == 0:
                where = {"LocationConstraint": "eu-west-1"}
                s3.create_bucket(Bucket="kept-if-state-leaked", CreateBucketConfiguration=where)
                # The broken form (state kept): the bucket is listed while its world lasts.
                assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept-if-state-leaked"]
            else:
                assert s3.list_buckets()["Buckets"] == []
    assert made[0] is made[1]


def test_a_client_a_stubber_was_left_active_on_is_not_handed_out_again(aws: None) -> None:
    """As test_deploy_checks' helpers leave theirs: the next call gets a client moto answers."""
    cache = cache_of()
    stubbed = first_site(cache, "sagemaker")
    Stubber(stubbed).activate()
    fresh = first_site(cache, "sagemaker")
    assert fresh is not stubbed
    assert fresh.list_models()["Models"] == []
    # The broken form: the stubbed client again, answering nothing.
    blind = cache_of(EventBlind)
    stubbed = first_site(blind, "sagemaker")
    Stubber(stubbed).activate()
    assert first_site(blind, "sagemaker") is stubbed
    with pytest.raises(UnStubbedResponseError):
        first_site(blind, "sagemaker").list_models()


def test_a_client_with_an_attribute_set_on_it_is_not_handed_out_again(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = {"Buckets": [{"Name": "forged"}]}
    for kind, sees in ((ClientCache, True), (AttributeBlind, False)):
        cache = cache_of(kind)
        patched = first_site(cache, "s3")
        monkeypatch.setattr(patched, "list_buckets", lambda: forged)
        again = first_site(cache, "s3")
        assert (again is not patched) is sees
        # The broken form (not seen): the forged answer reaches the next caller.
        assert (again.list_buckets() == forged) is not sees
        monkeypatch.undo()


def spend_retry_quota(client: Any, wire: Wire) -> None:
    """Throttled on every try until botocore stops retrying: the client's quota is spent."""
    wire.fail("dynamodb.ListTables", every=THROTTLED)
    for _ in range(200):
        before = wire.count("dynamodb.ListTables")
        with pytest.raises(ClientError):
            client.list_tables()
        if wire.count("dynamodb.ListTables") - before == 1:
            return
    raise AssertionError("botocore kept retrying: no retry quota to spend")


def tries(client: Any, wire: Wire) -> int:
    before = wire.count("dynamodb.ListTables")
    with contextlib.suppress(ClientError):
        client.list_tables()
    return wire.count("dynamodb.ListTables") - before


def test_a_client_that_retried_is_not_handed_out_again(wire: Wire) -> None:
    """Standard retries spend a quota of the client's: a client with its quota spent stops
    retrying, and the next test's faults would meet one try instead of botocore's four."""
    cache = cache_of()
    spent = first_site(cache, "dynamodb")
    spend_retry_quota(spent, wire)
    assert tries(spent, wire) == 1
    fresh = first_site(cache, "dynamodb")
    assert fresh is not spent
    assert tries(fresh, wire) == 4  # DynamoDB's standard attempts
    # The broken form: the spent client again, trying once.
    blind = cache_of(RetryBlind)
    spent = first_site(blind, "dynamodb")
    spend_retry_quota(spent, wire)
    assert first_site(blind, "dynamodb") is spent
    assert tries(first_site(blind, "dynamodb"), wire) == 1


def test_a_client_is_made_for_the_environment_it_is_asked_in(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for kind, sees in ((ClientCache, True), (EnvironmentBlind, False)):
        cache = cache_of(kind)
        home = first_site(cache, "s3")
        assert home.meta.region_name == "eu-west-1"
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # The broken form (not seen): eu-west-1's client where us-east-1's was asked for.
        expected = "us-east-1" if sees else "eu-west-1"
        assert first_site(cache, "s3").meta.region_name == expected
        monkeypatch.undo()
        assert first_site(cache, "s3") is home
