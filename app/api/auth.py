"""Request headers -> pass or 401 `unauthorized`: optional API keys on the prediction endpoints.

Off unless `DIGITSERVE_API_KEYS` holds keys. When on, `POST /predict`, `/predict/batch` and
`/preprocess` (and `GET /metrics` with `DIGITSERVE_METRICS_REQUIRE_API_KEY`) need a key in `X-API-Key`
or in `Authorization: Bearer <key>`; the probes, the web page and the API docs stay open.

A pure ASGI middleware rather than a FastAPI dependency: FastAPI parses a multipart body before it
resolves dependencies, so a dependency would let a client without a key make the service read and
spool megabytes. Here the request is refused from its headers alone.

Keys are compared in constant time: both sides are hashed with SHA-256 first (fixed length, so the
length of a key does not leak either) and compared with `secrets.compare_digest` against every key,
without stopping at a match. Keys are never logged; a refusal logs the path and whether a key was sent.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Collection, Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.error_handlers import render_domain_error
from app.api.middleware import route_template
from app.observability.metrics import Metrics
from digits.errors import UnauthorizedError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
HOW_TO_SEND_A_KEY = f"send it in {API_KEY_HEADER} or as Authorization: Bearer <key>"
UNAUTHORIZED_EXAMPLE_DETAIL = f"an API key is required: {HOW_TO_SEND_A_KEY}"
BEARER_SCHEME = "bearer"


def read_presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """Returns the key a request presents: `X-API-Key` if sent, else an `Authorization: Bearer` token."""
    header_values = dict(headers)
    api_key = header_values.get(b"x-api-key")
    if api_key is not None:
        return api_key.strip()
    scheme, _, token = header_values.get(b"authorization", b"").strip().partition(b" ")
    if scheme.lower() == BEARER_SCHEME.encode() and token.strip():
        return token.strip()
    return None


class ApiKeyVerifier:
    """Checks a presented key against the configured ones in time independent of the keys' content.

    Args:
        api_keys: the accepted keys (at least one).
    """

    def __init__(self, api_keys: Collection[SecretStr]) -> None:
        if not api_keys:
            raise ValueError("an ApiKeyVerifier needs at least one key")
        self._key_digests = tuple(
            hashlib.sha256(key.get_secret_value().encode()).digest() for key in api_keys
        )

    def is_valid(self, presented: bytes) -> bool:
        """Whether `presented` equals one of the keys (every key is compared, match or not)."""
        presented_digest = hashlib.sha256(presented).digest()
        is_match = False
        for key_digest in self._key_digests:
            is_match |= secrets.compare_digest(presented_digest, key_digest)
        return is_match


class ApiKeyMiddleware:
    """Answers 401 `unauthorized` + `WWW-Authenticate` to a protected route's requests without a valid key.

    Args:
        app: the next ASGI layer.
        verifier: the key check.
        protected_paths: route templates that need a key, e.g. {"/predict"}.
        metrics: counts refusals as `digitserve_rejected_requests_total{reason="unauthorized"}`.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: ApiKeyVerifier,
        protected_paths: Collection[str],
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.protected_paths = frozenset(protected_paths)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_template(scope) not in self.protected_paths:
            await self.app(scope, receive, send)
            return
        presented = read_presented_key(scope["headers"])
        if presented is not None and self.verifier.is_valid(presented):
            await self.app(scope, receive, send)
            return
        self.metrics.rejected_requests.labels(reason=UnauthorizedError.code).inc()
        credential = "missing" if presented is None else "invalid"
        fields = {"code": UnauthorizedError.code, "path": scope["path"], "credential": credential}
        logger.info("request refused: %s API key", credential, extra={"fields": fields})
        wanted = "an API key is required" if presented is None else "a valid API key is required"
        error = UnauthorizedError(f"{wanted}: {HOW_TO_SEND_A_KEY}")
        await render_domain_error(error)(scope, receive, send)


def document_api_key_security(app: FastAPI, protected_paths: Collection[str]) -> None:
    """Declares the key in the app's OpenAPI document, so that /docs offers an "Authorize" button.

    Args:
        app: the app whose `openapi()` is extended (once, on its first call).
        protected_paths: the route templates that need a key.
    """
    build_openapi = app.openapi

    def openapi_with_security() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build_openapi()
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["ApiKeyHeader"] = {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
            schemes["BearerKey"] = {"type": "http", "scheme": BEARER_SCHEME}
            example = {"detail": UNAUTHORIZED_EXAMPLE_DETAIL, "code": UnauthorizedError.code}
            unauthorized = {
                "description": "Error; `code` is `unauthorized`: no API key, or a wrong one",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorResponse"},
                        "examples": {"unauthorized": {"summary": "unauthorized", "value": example}},
                    }
                },
            }
            for path in protected_paths:
                for operation in document["paths"].get(path, {}).values():
                    operation["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
                    operation["responses"]["401"] = unauthorized
        return app.openapi_schema

    app.openapi = openapi_with_security
