"""Swagger UI at /docs in a real headless Chromium: "Try it out" sends real files to every upload route.

The service runs as a real uvicorn process, and the page is used as a person would: open an
operation, press "Try it out", pick the files, press "Execute", read the answer Swagger UI shows. The
upload fields must be ones Swagger UI can send (`format: binary`; with FastAPI's own
`contentMediaType` it offered a text box, not a file picker, for each item of `files`). Each error
status of an upload route shows an example of its own, chosen from a list of its codes.
The browser may reach 127.0.0.1 only: every other request is aborted and fails the test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page

from testkit.images import encode_png
from tests.e2e.web_browser import BrowserPage

pytestmark = pytest.mark.e2e

ANSWER_TIMEOUT_MS = 30_000
UPLOAD_ROUTES = ("/predict", "/predict/batch", "/read", "/read/batch")
# MNIST test image 0 (a 7): fixed in advance, not by result.
DIGIT_INDEX = 0
NOT_AN_IMAGE = b"this is a shopping list, not a digit\n"


@pytest.fixture(scope="module")
def upload_files(mnist_test_samples, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A digit as a PNG and a text file, on disk for the file pickers."""
    images, _ = mnist_test_samples
    folder = tmp_path_factory.mktemp("swagger-uploads")
    (folder / "seven.png").write_bytes(encode_png(images[DIGIT_INDEX]))
    (folder / "notes.txt").write_bytes(NOT_AN_IMAGE)
    return {path.name: path for path in folder.iterdir()}


@asynccontextmanager
async def open_docs(browser: Browser, base_url: str, tmp_path: Path) -> AsyncIterator[Page]:
    """Opens /docs in a fresh context; checks on exit that nothing left loopback and no script failed."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    web = BrowserPage(page=await context.new_page(), context=context, output_dir=tmp_path)
    try:
        await web.block_everything_but_loopback()
        web.record_errors()
        await web.page.goto(f"{base_url}/docs")
        yield web.page
        assert web.blocked_urls == [], "the docs tried to leave 127.0.0.1"
        assert web.page_errors == [], "uncaught errors in Swagger UI"
        await web.screenshot("swagger-ui")
    finally:
        await context.close()


async def open_operation(page: Page, path: str) -> Locator:
    """Expands the POST operation of `path` and returns it."""
    operation = page.locator(f'.opblock-post:has(.opblock-summary-path[data-path="{path}"])')
    await operation.locator(".opblock-summary").click()
    return operation


async def try_it_out(page: Page, path: str, files: list[Path]) -> tuple[int, dict]:
    """Sends `files` to `path` through "Try it out" and returns the status and body Swagger UI shows."""
    operation = await open_operation(page, path)
    await operation.get_by_role("button", name="Try it out").click()
    for index, file in enumerate(files):
        if index > 0:  # a list field starts with one picker; each further file needs its own
            await operation.get_by_role("button", name="Add string item").click()
        await operation.locator("input[type=file]").nth(index).set_input_files(file)
    await operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tr.response")
    await answer.wait_for(timeout=ANSWER_TIMEOUT_MS)
    status = await answer.locator(".response-col_status").inner_text()
    body = await answer.locator(".response-col_description pre").first.inner_text()
    return int(status.strip()), json.loads(body)


def answered_by_the_api(base_url: str, path: str, files: list[Path]) -> dict:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        field = "files" if path.endswith("/batch") else "file"
        response = client.post(path, files=[(field, (file.name, file.read_bytes())) for file in files])
    return response.json()


async def test_try_it_out_on_predict_sends_a_png_and_shows_the_digit(
    browser: Browser, base_url: str, upload_files: dict[str, Path], mnist_test_samples, tmp_path: Path
):
    _, labels = mnist_test_samples
    files = [upload_files["seven.png"]]
    async with open_docs(browser, base_url, tmp_path) as page:
        status, body = await try_it_out(page, "/predict", files)
    assert status == 200
    assert body["digit"] == answered_by_the_api(base_url, "/predict", files)["digit"] == labels[DIGIT_INDEX]


@pytest.mark.parametrize(("path", "items"), [("/predict/batch", "predictions"), ("/read/batch", "readings")])
async def test_try_it_out_on_a_batch_route_sends_several_files_and_names_each_answer(
    browser: Browser, base_url: str, upload_files: dict[str, Path], tmp_path: Path, path: str, items: str
):
    files = [upload_files["seven.png"], upload_files["notes.txt"]]
    async with open_docs(browser, base_url, tmp_path) as page:
        status, body = await try_it_out(page, path, files)
    assert status == 200
    digit, text = body[items]
    assert [digit["filename"], text["filename"]] == ["seven.png", "notes.txt"]
    assert text["status_code"] == 415 and text["error"]["code"] == "unsupported_image_type"
    assert body == answered_by_the_api(base_url, path, files)


async def test_try_it_out_on_read_sends_a_png_and_shows_the_number(
    browser: Browser, base_url: str, upload_files: dict[str, Path], mnist_test_samples, tmp_path: Path
):
    _, labels = mnist_test_samples
    files = [upload_files["seven.png"]]
    async with open_docs(browser, base_url, tmp_path) as page:
        status, body = await try_it_out(page, "/read", files)
    assert status == 200
    assert body["text"] == answered_by_the_api(base_url, "/read", files)["text"] == str(labels[DIGIT_INDEX])


async def test_each_error_status_shows_its_own_codes_and_an_example_of_one(
    browser: Browser, base_url: str, tmp_path: Path
):
    async with open_docs(browser, base_url, tmp_path) as page:
        shown = {}
        for path in UPLOAD_ROUTES:
            operation = await open_operation(page, path)
            rows = operation.locator(
                ".responses-wrapper .responses-table:not(.live-responses-table) tr.response"
            )
            await rows.first.wait_for()
            for row in await rows.all():
                status = int(await row.get_attribute("data-code"))
                if status < 400:
                    continue
                listed = await row.locator(".renderedMarkdown code").all_inner_texts()
                choices = await row.locator("select.examples-select-element option").all_inner_texts()
                example = json.loads(await row.locator("pre.example").inner_text())
                shown[path, status] = {"listed": listed[1:], "choices": choices, "example": example["code"]}
    for (path, status), row in shown.items():
        assert row["choices"] == row["listed"] and row["choices"], (path, status, row)
        assert row["example"] == row["choices"][0], (path, status, row)
    assert {shown[path, 400]["example"] for path in UPLOAD_ROUTES} == {"bad_request"}
    assert all("bad_request" in shown[path, 400]["listed"] for path in UPLOAD_ROUTES)
    assert len({row["example"] for row in shown.values()}) > 5, "the statuses share one example"
