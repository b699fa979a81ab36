"""GET /docs, GET /redoc and GET /docs/static/{asset_name}: the API's documentation, whole from this service.

Swagger UI and ReDoc are the files of the `fastapi-offline` package (pinned in pyproject.toml, so
installed with the service like any dependency; its `FastAPIOffline` factory is not used), served by
a plain route with an allow-list of names, as the web page's assets are. Nothing comes from a CDN: the
pages work on an air-gapped network, and the scripts that receive the API key a user types in change
only with a release of this service.

Each page carries a Content-Security-Policy that lets the browser run scripts from this origin only,
plus Swagger UI's one inline start-up script, allowed by its SHA-256 hash (taken from the page as
served, so that it follows FastAPI's template). Styles may be inline, since both UIs set element
styles at run time; a style runs no code, and with images and connections limited to this origin it
sends nothing elsewhere. ReDoc's search runs in a worker that it builds from a `blob:` URL; the
Redocly logo in ReDoc's footer points at a CDN, so the policy blocks it (ReDoc then hides the image).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_DIR = Path(str(resources.files("fastapi_offline") / "static"))
ASSETS_PATH = "/docs/static"
ASSET_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Swagger UI's default validator badge is an image loaded from validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# `data:` images are the icons inlined in both UIs' style sheets.
BASE_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# The assets' names are stable across releases of the package: the browser revalidates them (ETag).
COMMON_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(tags=["docs"])


def content_security_policy(page: bytes, extra_directives: str = "") -> str:
    """The policy of a docs page: scripts from this origin, and the page's inline scripts by hash.

    Args:
        page: the HTML as sent; each `<script>` without `src` is allowed by its SHA-256 hash.
        extra_directives: directives one page needs beyond the common ones, e.g. "worker-src blob:".

    Returns:
        The `Content-Security-Policy` header's value.
    """
    script_sources = ["'self'"]
    for script in INLINE_SCRIPT.findall(page.decode()):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        script_sources.append(f"'sha256-{digest}'")
    directives = [BASE_POLICY, "script-src " + " ".join(script_sources), extra_directives]
    return "; ".join(directive for directive in directives if directive)


def add_security_headers(page: HTMLResponse, extra_directives: str = "") -> HTMLResponse:
    """Adds the page's Content-Security-Policy and the common headers to a docs page."""
    page.headers.update(COMMON_HEADERS)
    page.headers["Content-Security-Policy"] = content_security_policy(page.body, extra_directives)
    return page


def local_url(request: Request, path: str) -> str:
    """`path` under the prefix a proxy serves the app at (`root_path`), as FastAPI's own docs do."""
    return request.scope.get("root_path", "").rstrip("/") + path


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: every operation with its schemas, and "Try it out" (with a key, under Authorize)."""
    page = get_swagger_ui_html(
        openapi_url=local_url(request, request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=local_url(request, f"{ASSETS_PATH}/swagger-ui-bundle.js"),
        swagger_css_url=local_url(request, f"{ASSETS_PATH}/swagger-ui.css"),
        swagger_favicon_url=local_url(request, f"{ASSETS_PATH}/favicon.png"),
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )
    return add_security_headers(page)


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the same document as one readable page, with search."""
    page = get_redoc_html(
        openapi_url=local_url(request, request.app.openapi_url),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=local_url(request, f"{ASSETS_PATH}/redoc.standalone.js"),
        redoc_favicon_url=local_url(request, f"{ASSETS_PATH}/favicon.png"),
        with_google_fonts=False,
    )
    return add_security_headers(page, "worker-src blob:")


@router.get(ASSETS_PATH + "/{asset_name}", include_in_schema=False)
async def docs_asset(asset_name: str) -> FileResponse:
    """The two UIs' scripts, Swagger UI's style sheet and the icon; any other name is a 404."""
    media_type = ASSET_MEDIA_TYPES.get(asset_name)
    if media_type is None:
        raise HTTPException(status_code=404)
    return FileResponse(ASSETS_DIR / asset_name, media_type=media_type, headers=COMMON_HEADERS)
