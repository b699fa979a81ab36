"""API keys: which header carries the key, and a comparison that checks every key whatever matches."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

from app.api.auth import ApiKeyVerifier, read_presented_key

pytestmark = pytest.mark.unit

KEYS = [SecretStr("first-key-0123456789"), SecretStr("second-key-987654321")]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"x-api-key", b"abc")], b"abc"),
        ([(b"x-api-key", b"  abc ")], b"abc"),
        ([(b"authorization", b"Bearer abc")], b"abc"),
        ([(b"authorization", b"bearer   abc  ")], b"abc"),
        ([(b"x-api-key", b"from-header"), (b"authorization", b"Bearer from-bearer")], b"from-header"),
        ([(b"authorization", b"Basic dXNlcjpwYXNz")], None),
        ([(b"authorization", b"Bearer")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"content-type", b"image/png")], None),
        ([], None),
    ],
)
def test_read_presented_key_prefers_x_api_key_then_a_bearer_token(headers, expected):
    assert read_presented_key(headers) == expected


@pytest.mark.parametrize("key", [b"first-key-0123456789", b"second-key-987654321"])
def test_verifier_accepts_each_configured_key(key):
    assert ApiKeyVerifier(KEYS).is_valid(key)


@pytest.mark.parametrize(
    "presented",
    [b"", b"first-key-012345678", b"first-key-01234567890", b"FIRST-KEY-0123456789", b"\xff" * 20],
)
def test_verifier_refuses_near_misses(presented):
    assert not ApiKeyVerifier(KEYS).is_valid(presented)


def test_verifier_compares_against_every_key_even_after_a_match(monkeypatch):
    calls = []
    real_compare = secrets.compare_digest

    def counting_compare(left, right):
        calls.append(len(left))
        return real_compare(left, right)

    monkeypatch.setattr("app.api.auth.secrets.compare_digest", counting_compare)
    assert ApiKeyVerifier(KEYS).is_valid(b"first-key-0123456789")
    assert not ApiKeyVerifier(KEYS).is_valid(b"x")
    # Two keys, two calls each time; always 32-byte digests, so the key length does not leak.
    assert calls == [32, 32, 32, 32]


def test_verifier_needs_a_key():
    with pytest.raises(ValueError, match="at least one key"):
        ApiKeyVerifier([])
