"""Request IDs: a safe caller ID is kept, others replaced; each request is matched to its route once."""

from __future__ import annotations

import os

import pytest
from starlette.routing import Route

from app.api.middleware import RouteMatchMiddleware, accept_or_generate_request_id, route_template

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("incoming", [b"abc", b"0af7651916cd43dd8448eb211c80319c", b"a.b_c:d-e", b"x" * 128])
def test_safe_request_ids_are_kept(incoming):
    assert accept_or_generate_request_id(incoming) == incoming.decode()


@pytest.mark.parametrize("incoming", [None, b"", b"x" * 129, b"a b", b"a\r\nb", b"a=b", b'"a"', b"\xc3\xa9"])
def test_unsafe_or_missing_request_ids_are_replaced_by_32_random_hex_digits(incoming):
    generated = accept_or_generate_request_id(incoming)
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert generated != accept_or_generate_request_id(incoming)


def test_generated_ids_are_neither_sequential_nor_repeated_by_a_forked_process():
    first, second = (int(accept_or_generate_request_id(None), 16) for _ in range(2))
    assert abs(second - first) > 1 << 64  # nothing to learn of the traffic from two IDs
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write_end, accept_or_generate_request_id(None).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read_end, 64).decode() != accept_or_generate_request_id(None)


def build_routes() -> list[Route]:
    async def endpoint(request):  # pragma: no cover - never called: only matched
        return None

    return [Route("/predict", endpoint, methods=["POST"]), Route("/items/{item_id}", endpoint)]


class CountingRoute(Route):
    """A route that counts how often a request is matched against it."""

    match_count = 0

    def matches(self, scope):
        CountingRoute.match_count += 1
        return super().matches(scope)


async def seen_route_template(middleware: RouteMatchMiddleware, path: str, method: str = "POST") -> str:
    seen = {}

    async def inner_app(scope, receive, send):
        seen["template"] = route_template(scope)

    middleware.app = inner_app
    await middleware({"type": "http", "path": path, "method": method}, None, None)
    return seen["template"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/predict", "/predict"), ("/items/42", "/items/{item_id}"), ("/wp-login.php", "unmatched")],
)
async def test_route_match_stores_the_route_template_for_the_inner_layers(path, expected):
    middleware = RouteMatchMiddleware(None, routes=build_routes())
    assert await seen_route_template(middleware, path) == expected


async def test_a_request_is_matched_against_the_routes_once_at_most():
    async def endpoint(request):  # pragma: no cover - never called: only matched
        return None

    middleware = RouteMatchMiddleware(None, routes=[CountingRoute("/items/{item_id}", endpoint)])
    CountingRoute.match_count = 0
    assert await seen_route_template(middleware, "/items/7") == "/items/{item_id}"
    assert CountingRoute.match_count == 1


def test_a_layer_outside_the_route_match_fails_loudly_instead_of_seeing_no_route():
    # An API-key layer that saw "unmatched" would let every request through unchecked.
    with pytest.raises(KeyError):
        route_template({"type": "http", "path": "/predict"})
