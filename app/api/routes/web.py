"""GET / and GET /static/{asset_name}: the web page (draw or upload a digit) and its two assets.

Both also answer HEAD, with the headers a GET gets and no body: uptime checks and link checkers ask
a page with HEAD, and a 405 there reads as a broken site.

The page is three static files in `app/web/` (no build step, nothing from a CDN), served by plain
routes rather than a mounted `StaticFiles`: the metrics label every request with a route template,
and an allow-list of names leaves nothing else on disk reachable. The page's Content-Security-Policy
lets it load and call only this origin, so a browser that opens it makes no request elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
ASSET_MEDIA_TYPES = {"app.js": "text/javascript", "style.css": "text/css"}
# `blob:` is the 28x28 image fetched from /preprocess; `data:` the empty favicon.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Small files that change with each release: the browser revalidates them (ETag) on every load.
COMMON_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

# FastAPI adds HEAD to no route by itself; a FileResponse sends only the headers for it.
PAGE_METHODS = ["GET", "HEAD"]

router = APIRouter(tags=["web"])


@router.api_route("/", methods=PAGE_METHODS, include_in_schema=False)
async def index() -> FileResponse:
    """The page: a drawing pad, a photo picker, and the prediction with what the model saw."""
    headers = {**COMMON_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=headers)


@router.api_route("/static/{asset_name}", methods=PAGE_METHODS, include_in_schema=False)
async def asset(asset_name: str) -> FileResponse:
    """The page's script and style sheet; any other name is a 404."""
    media_type = ASSET_MEDIA_TYPES.get(asset_name)
    if media_type is None:
        raise HTTPException(status_code=404)
    return FileResponse(
        WEB_DIR / asset_name, media_type=f"{media_type}; charset=utf-8", headers=COMMON_HEADERS
    )
