"""The one retry policy of the HTTP adapters, and the body an answer is read into."""

from __future__ import annotations

import json

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from oauth2_sync.registry.http import HttpRegistry
from oauth2_sync.registry.retry import MAX_RETRY_AFTER, RetryPolicy, parse_retry_after
from oauth2_sync.registry.session import Answer
from oauth2_sync.registry.tokens import Credentials
from oauth2_sync.secret import Secret


def http_policy() -> RetryPolicy:
    registry = HttpRegistry(
        "http://127.0.0.1:9/v1", Credentials("id", Secret("s")), retries=3
    )
    registry.close()
    return registry.policy


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        ("GET", 429, True), ("GET", 500, True), ("GET", 502, True), ("GET", 504, True),
        ("PUT", 503, True), ("DELETE", 500, True), ("GET", 404, False), ("PUT", 412, False),
        # A POST is never repeated by urllib3: the adapter decides (read back first).
        ("POST", 429, False), ("POST", 500, False), ("POST", 503, False),
    ],
)
def test_the_http_adapter_repeats_only_what_it_can_tell_apart(
    method: str, status: int, retried: bool
) -> None:
    policy = http_policy()
    assert policy.may_repeat(method, status) is retried
    assert policy.urllib3().is_retry(method, status) is retried


def test_a_413_is_repeated_only_when_it_says_when_to_come_back() -> None:
    retry = http_policy().urllib3()
    assert retry.is_retry("GET", 413, has_retry_after=True)
    assert not retry.is_retry("GET", 413)
    assert not retry.is_retry("POST", 413, has_retry_after=True)


def test_urllib3_copies_keep_the_policy() -> None:
    retry = http_policy().urllib3()
    copy = retry.new(total=1)
    assert copy.policy is retry.policy
    assert copy.is_retry("GET", 502) and not copy.is_retry("POST", 502)


def test_the_delay_grows_with_jitter_and_yields_to_retry_after() -> None:
    policy = RetryPolicy(
        3, unprocessed=frozenset({429}), maybe_executed=frozenset(),
        repeatable=frozenset({"GET"}), backoff_factor=1.0, backoff_max=6.0,
    )
    assert 0.5 <= policy.delay(0) <= 1.5
    assert 1.0 <= policy.delay(1) <= 3.0
    assert 3.0 <= policy.delay(10) <= 9.0  # capped before the jitter
    assert policy.delay(10, retry_after=0.25) == 0.25


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("junk", None), ("7", 7.0), ("-3", None),
     ("86400", MAX_RETRY_AFTER)],
)
def test_retry_after_is_read_and_bounded(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def answer(content: bytes, content_type: str | None) -> Answer:
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Answer(
        200, "OK", headers, content, requests.utils.get_encoding_from_headers(headers),
        retried=False,
    )


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (json.dumps({"name": "Café"}).encode(), "application/json"),
        ('{"name": "Café"}'.encode("utf-16"), None),
        ('{"name": "Café"}'.encode(), None),
        ('{"name": "Caf\xe9"}'.encode("latin-1"), "application/json; charset=latin-1"),
        (b'{"name": "\xff\xfe broken"}', "application/json"),
    ],
)
def test_the_body_decodes_as_requests_decodes_it(
    content: bytes, content_type: str | None
) -> None:
    # requests' own reading of the same bytes and headers is the reference.
    reference = requests.Response()
    reference.status_code = 200
    reference.headers = answer(content, content_type).headers
    reference.encoding = requests.utils.get_encoding_from_headers(reference.headers)
    reference._content = content
    assert answer(content, content_type).json() == reference.json()


def test_a_body_that_is_not_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        answer(b"<html>", "text/html").json()
    assert answer(b"", None).text() == ""
