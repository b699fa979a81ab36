"""/docs and /redoc work offline: every script, style sheet and icon comes from this service, under a CSP.

The pages are where users type their API key, so they load nothing from another host (a CDN would be a
blank page on an air-gapped network, and a script that could change under us): the assets are the
pinned `fastapi-offline` package's files, served under /docs/static/, and a Content-Security-Policy
lets the browser run only those scripts and the page's one inline script, by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import tomllib

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

DOCS_PAGES = ("/docs", "/redoc")
MEDIA_TYPES_BY_SUFFIX = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}
ASSETS_PACKAGE = "fastapi-offline"
# Each URL a page loads: attributes (script, style sheet, icon, ReDoc's spec) and Swagger UI's spec URL.
REFERENCE_PATTERN = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|\burl: '([^']*)'""")
INLINE_SCRIPT_PATTERN = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def referenced_urls(html: str) -> list[str]:
    return [attribute or script_url for attribute, script_url in REFERENCE_PATTERN.findall(html)]


def policy_directives(response) -> dict[str, list[str]]:
    directives = [part.split() for part in response.headers["content-security-policy"].split(";")]
    return {words[0]: words[1:] for words in directives if words}


def script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_docs_page_references_only_this_service(service, page):
    response = await service.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = referenced_urls(response.text)
    assert urls, "no script, style sheet or spec found in the page"
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "://" not in response.text  # no absolute URL anywhere, not even in the inline script


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_every_asset_of_a_docs_page_is_served_with_its_content_type(service, page):
    html = (await service.client.get(page)).text
    for url in referenced_urls(html):
        response = await service.client.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert response.headers["content-type"].split(";")[0] == MEDIA_TYPES_BY_SUFFIX[suffix], url
        if url.startswith("/docs/static/"):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert len(response.content) > 1000  # the real bundle, not a placeholder


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_docs_page_policy_runs_only_this_service_scripts_and_its_own_inline_script(service, page):
    response = await service.client.get(page)
    directives = policy_directives(response)
    script_sources = directives["script-src"]
    assert directives["default-src"] == ["'none'"]
    assert "'self'" in script_sources
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "https:"} & set(script_sources)
    inline_scripts = INLINE_SCRIPT_PATTERN.findall(response.text)
    assert {script_hash(script) for script in inline_scripts} == {
        source for source in script_sources if source.startswith("'sha256-")
    }
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "http" not in response.headers["content-security-policy"]  # no other host, by name or scheme


async def test_swagger_ui_has_one_inline_script_and_no_online_validator(service):
    html = (await service.client.get("/docs")).text
    (inline_script,) = INLINE_SCRIPT_PATTERN.findall(html)
    # Swagger UI's default validator badge would load an image from validator.swagger.io.
    assert '"validatorUrl": null' in inline_script


async def test_only_the_listed_docs_assets_are_served(service):
    for name in ("RECORD", "..%2Fcore.py", "core.py", "swagger-ui-bundle.js.map"):
        response = await service.client.get(f"/docs/static/{name}")
        assert response.status_code == 404, name
        assert response.json()["code"] == "not_found"


async def test_docs_assets_come_from_the_pinned_package_as_installed(service):
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [line for line in dependencies if line.startswith(f"{ASSETS_PACKAGE}==")]
    assert pins == [f"{ASSETS_PACKAGE}=={importlib.metadata.version(ASSETS_PACKAGE)}"]
    installed = importlib.metadata.distribution(ASSETS_PACKAGE).locate_file(
        "fastapi_offline/static/redoc.standalone.js"
    )
    served = await service.client.get("/docs/static/redoc.standalone.js")
    assert served.content == installed.read_bytes()
