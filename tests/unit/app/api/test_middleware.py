"""Request IDs: a caller's safe ID is kept; anything else is replaced by a fresh uuid4 hex."""

from __future__ import annotations

import pytest

from app.api.middleware import accept_or_generate_request_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("incoming", [b"abc", b"0af7651916cd43dd8448eb211c80319c", b"a.b_c:d-e", b"x" * 128])
def test_safe_request_ids_are_kept(incoming):
    assert accept_or_generate_request_id(incoming) == incoming.decode()


@pytest.mark.parametrize("incoming", [None, b"", b"x" * 129, b"a b", b"a\r\nb", b"a=b", b'"a"', b"\xc3\xa9"])
def test_unsafe_or_missing_request_ids_are_replaced_by_uuid4_hex(incoming):
    generated = accept_or_generate_request_id(incoming)
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert generated != accept_or_generate_request_id(incoming)
