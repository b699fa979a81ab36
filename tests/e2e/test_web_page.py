"""The web page at / in a real headless Chromium, against the real service (uvicorn, a real model).

MNIST test digits are redrawn on the page's pad stroke by stroke with a mouse, a pen and a finger;
a photo-like JPEG and broken files are uploaded through the file picker (or dropped); the page is
used from the keyboard and on a phone-sized screen; a photo and a drawing replace each other, and the
result names the one it was read from. In number mode, a number written from MNIST test digits
(`testkit.written_numbers`) is uploaded, and three digits are redrawn side by side on the wide pad.
The browser may reach 127.0.0.1 only: every other request is aborted and fails the test.
Screenshots go to the test's tmp_path and to test-output/web/.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, Page

from testkit.images import encode_jpeg, encode_png
from testkit.photo_like import render_photo_like
from testkit.two_digit_numbers import DigitPool
from testkit.written_numbers import load_digit_pool, write_number
from tests.e2e.digit_strokes import Point, strokes_of_digit
from tests.e2e.page_probes import (
    ANSWER_TIMEOUT_MS,
    assert_consistent_answer,
    assert_number_shown_as_answered,
    broken_images,
    chosen_file_names,
    drop_file,
    ink_pixel_count,
    predict_drawing,
    read_drawing,
    seen_image_pixels,
    shown_answer,
    shown_number,
    shown_source,
    tab_to,
    text_contrast,
    wait_for_answer,
)
from tests.e2e.web_browser import MNIST_SIZE_PIXELS, SCREENSHOT_COPY_DIR, BrowserPage

pytestmark = pytest.mark.e2e

PAGE_MAX_BYTES = 30_000
POINTER_TYPES = ("mouse", "pen", "touch")
MIN_DRAWN_DIGITS_READ = 8
MIN_TEXT_CONTRAST = 4.5
DESKTOP_VIEWPORT = {"width": 1280, "height": 900}
PHONE_VIEWPORT = {"width": 375, "height": 667}
# MNIST test image 0 (a 7), as the photo and as the phone drawing: fixed in advance, not by result.
PHOTO_INDEX = 0
PHOTO_SEED = 0
# The uploaded number: 4 digits of the first 2000 MNIST test digits, seed fixed in advance.
NUMBER_POOL_SIZE = 2000
NUMBER_DIGIT_COUNT = 4
NUMBER_SEED = 0
# More digits in a row than the service reads in one number (DIGITSERVE_READ_MAX_DIGITS, 20).
TOO_LONG_NUMBER_DIGIT_COUNT = 22
# The drawn number: MNIST test images 0, 1 and 2 (7, 2, 1), side by side on the 3:1 pad.
DRAWN_NUMBER_INDICES = (0, 1, 2)
MIN_DRAWN_NUMBER_DIGITS_READ = 2
WIDE_PAD_SIZE_PIXELS = (840, 280)


# --- the service, the browser and the page ---------------------------------------------------------


OpenPage = Callable[..., AbstractAsyncContextManager[BrowserPage]]


@pytest.fixture
def open_page(browser: Browser, base_url: str, tmp_path: Path) -> OpenPage:
    """Opens / in a fresh context (desktop unless told); checks on exit that nothing left loopback."""

    @asynccontextmanager
    async def open_(**context_options) -> AsyncIterator[BrowserPage]:
        options = {"viewport": DESKTOP_VIEWPORT, "has_touch": True, **context_options}
        context = await browser.new_context(**options)
        web = BrowserPage(page=await context.new_page(), context=context, output_dir=tmp_path)
        try:
            await web.block_everything_but_loopback()
            web.record_errors()
            await web.page.goto(f"{base_url}/")
            await web.page.evaluate(RECORD_POINTER_TYPES)
            yield web
            assert web.blocked_urls == [], "the page tried to leave 127.0.0.1"
            assert web.page_errors == [], "uncaught errors in the page's script"
            # Chromium logs each 4xx answer to fetch as "Failed to load resource"; nothing else is allowed.
            unexpected = [
                text for text in web.console_errors if not text.startswith("Failed to load resource")
            ]
            assert unexpected == [], "errors in the browser console"
        finally:
            await context.close()

    return open_


RECORD_POINTER_TYPES = """() => {
  window.pointerTypesSeen = [];
  document.getElementById("pad").addEventListener("pointerdown", (event) => {
    if (event.isTrusted) window.pointerTypesSeen.push(event.pointerType);
  });
}"""


@pytest.fixture(scope="module")
def digit_pool() -> DigitPool:
    return load_digit_pool("mnist", "test", limit=NUMBER_POOL_SIZE)


def write_number_file(pool: DigitPool, digit_count: int, folder: Path) -> tuple[Path, int]:
    """A scanned number of `digit_count` digits of `pool` as a PNG file, and its width in pixels."""
    number = write_number(pool, digit_count, np.random.default_rng(NUMBER_SEED), rendering="scan")
    path = folder / f"number-{number.text}.png"
    path.write_bytes(encode_png(number.image))
    return path, number.image.shape[1]


@pytest.fixture(scope="module")
def number_upload(digit_pool: DigitPool, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return write_number_file(digit_pool, NUMBER_DIGIT_COUNT, tmp_path_factory.mktemp("number"))


def read_by_the_api(base_url: str, path: Path) -> dict:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        files = {"file": (path.name, path.read_bytes(), "image/png")}
        response = client.post("/read", params={"include_model_view": "true"}, files=files)
    assert response.status_code == 200, response.text
    return response.json()


def side_by_side(digits_strokes: list[list[list[Point]]]) -> list[list[tuple[float, float]]]:
    """Each digit's strokes on its own square of a pad as wide as the digits are many, left to right.

    `BrowserPage.draw` maps (row, column) on a 28x28 grid onto the whole pad; on a pad n times as wide
    as high, column c of the k-th square is column (28 k + c + 0.5) / n - 0.5 of that grid.
    """
    count = len(digits_strokes)
    return [
        [(row, (position * MNIST_SIZE_PIXELS + column + 0.5) / count - 0.5) for row, column in stroke]
        for position, strokes in enumerate(digits_strokes)
        for stroke in strokes
    ]


async def pad_size(page: Page) -> tuple[int, int]:
    """The drawing pad's buffer: (width, height) in canvas pixels."""
    width, height = await page.evaluate("(pad => [pad.width, pad.height])(document.getElementById('pad'))")
    return width, height


def first_index_of_each_digit(labels: np.ndarray) -> list[int]:
    """The first MNIST test image of each digit 0-9: chosen by position, never by result."""
    return [int(np.flatnonzero(labels == digit)[0]) for digit in range(10)]


# --- the tests -----------------------------------------------------------------------------------


def test_page_and_assets_are_small_self_contained_and_served_by_the_app(base_url: str):
    with httpx.Client(base_url=base_url, timeout=10) as client:
        page = client.get("/")
        assets = {path: client.get(path) for path in ("/static/app.js", "/static/style.css")}
        unknown = client.get("/static/main.py")
        metrics = client.get("/metrics").text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for path, response in assets.items():
        assert response.status_code == 200, path
    assert assets["/static/app.js"].headers["content-type"].startswith("text/javascript")
    assert assets["/static/style.css"].headers["content-type"].startswith("text/css")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    total_bytes = len(page.content) + sum(len(response.content) for response in assets.values())
    assert total_bytes < PAGE_MAX_BYTES
    # Nothing from elsewhere: no absolute or protocol-relative URL in the page or its assets.
    for text in (page.text, *(response.text for response in assets.values())):
        assert not re.search(r"https?://|[\"'(]//", text)
    assert 'route="/"' in metrics and 'route="/static/{asset_name}"' in metrics


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css"])
def test_head_answers_like_get_without_a_body(base_url: str, path: str):
    with httpx.Client(base_url=base_url, timeout=10) as client:
        full, head = client.get(path), client.head(path)
    assert (head.status_code, head.content) == (200, b"")
    for header in ("content-type", "content-length", "content-security-policy", "cache-control", "etag"):
        assert head.headers.get(header) == full.headers.get(header), header
    assert int(head.headers["content-length"]) == len(full.content) > 0


async def test_drawn_mnist_digits_are_read(open_page: OpenPage, mnist_test_samples, tmp_path: Path):
    images, labels = mnist_test_samples
    results = []
    async with open_page() as web:
        for position, index in enumerate(first_index_of_each_digit(labels)):
            pointer_type = POINTER_TYPES[position % len(POINTER_TYPES)]
            await web.page.get_by_role("button", name="Clear").click()
            await web.draw(strokes_of_digit(images[index]), pointer_type)
            await predict_drawing(web.page)
            answer = await shown_answer(web.page)
            assert_consistent_answer(answer)
            results.append(
                {
                    "mnist_index": index,
                    "label": int(labels[index]),
                    "pointer": pointer_type,
                    "shown": answer["digit"],
                }
            )
            await web.screenshot(f"drawn-{labels[index]}-{pointer_type}")
        pointer_types_seen = set(await web.page.evaluate("window.pointerTypesSeen"))
    report = json.dumps(results, indent=1)
    (tmp_path / "drawn_digits.json").write_text(report)
    (SCREENSHOT_COPY_DIR / "drawn_digits.json").write_text(report)
    print(report)
    assert pointer_types_seen == set(POINTER_TYPES)
    read = [result for result in results if result["shown"] == str(result["label"])]
    assert len(read) >= MIN_DRAWN_DIGITS_READ, f"only {len(read)} of {len(results)} read:\n{report}"


async def test_uploaded_photo_is_read_like_the_api_reads_it(
    open_page: OpenPage, mnist_test_samples, base_url: str, tmp_path: Path
):
    images, labels = mnist_test_samples
    photo = encode_jpeg(render_photo_like(images[PHOTO_INDEX], np.random.default_rng(PHOTO_SEED)))
    photo_path = tmp_path / "digit-photo.jpg"
    photo_path.write_bytes(photo)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        expected = client.post("/predict", files={"file": ("digit-photo.jpg", photo, "image/jpeg")}).json()
        seen_png = client.post(
            "/preprocess", files={"file": ("digit-photo.jpg", photo, "image/jpeg")}
        ).content
    async with open_page() as web:
        async with web.page.expect_response(lambda response: response.url.endswith("/predict")):
            await web.page.get_by_label("Choose a photo of one digit").set_input_files(photo_path)
        await wait_for_answer(web.page)
        answer = await shown_answer(web.page)
        assert_consistent_answer(answer)
        shown_pixels = await seen_image_pixels(web.page)
        assert await web.page.get_by_role("img", name="The chosen photo").is_visible()
        assert await shown_source(web.page) == "Read from digit-photo.jpg"
        await web.screenshot("uploaded-photo")
    assert answer["digit"] == str(expected["digit"]) == str(labels[PHOTO_INDEX])
    assert answer["confidence"] == f"{expected['confidence'] * 100:.1f} % sure"
    assert expected["inverted"] is True and "inverted" in answer["polarity"]
    assert (answer["unsure"] is None) is (expected["unsure"] is False)  # the notice only when unsure
    api_pixels = cv2.imdecode(np.frombuffer(seen_png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(shown_pixels, api_pixels)


async def test_errors_are_shown_in_plain_words(open_page: OpenPage, tmp_path: Path):
    blank_path = tmp_path / "blank.png"
    cv2.imwrite(str(blank_path), np.full((200, 200), 255, dtype=np.uint8))
    text_path = tmp_path / "notes.txt"
    text_path.write_text("this is a shopping list, not a digit\n")
    async with open_page() as web:
        page, error = web.page, web.page.get_by_role("alert")
        file_input = page.get_by_label("Choose a photo of one digit")

        await file_input.set_input_files(blank_path)
        await wait_for_answer(page)
        await error.filter(has_text="No digit found").wait_for(timeout=ANSWER_TIMEOUT_MS)
        assert await page.locator("#answer").is_hidden()
        await web.screenshot("error-no-digit")
        assert await text_contrast(page, "#error") >= MIN_TEXT_CONTRAST

        await file_input.set_input_files(text_path)
        await wait_for_answer(page)
        await error.filter(has_text="not an image the service can read").wait_for(timeout=ANSWER_TIMEOUT_MS)
        # The file the browser cannot draw gets no preview, so no broken-image icon; no result is named.
        assert await page.locator("#photo").is_hidden()
        assert await broken_images(page) == [] and await shown_source(page) is None
        await web.screenshot("error-not-an-image")

        await page.get_by_role("button", name="Predict").click()
        await error.filter(has_text="Draw a digit first").wait_for(timeout=ANSWER_TIMEOUT_MS)

        # The service is unreachable: the page says so instead of failing silently.
        await page.route("**/predict", lambda route: route.abort("connectionrefused"))
        await web.draw([[(10, 14), (18, 14)]], "mouse")
        await page.get_by_role("button", name="Predict").click()
        await wait_for_answer(page)
        await error.filter(has_text="Could not reach the service").wait_for(timeout=ANSWER_TIMEOUT_MS)
        await web.screenshot("error-unreachable")


async def test_one_input_at_a_time_and_the_result_names_what_it_was_read_from(
    open_page: OpenPage, mnist_test_samples, tmp_path: Path
):
    images, _ = mnist_test_samples
    photo = encode_jpeg(render_photo_like(images[PHOTO_INDEX], np.random.default_rng(PHOTO_SEED)))
    photo_path = tmp_path / "digit-photo.jpg"
    photo_path.write_bytes(photo)
    async with open_page() as web:
        page = web.page
        photo_preview = page.get_by_role("img", name="The chosen photo")
        await web.draw(strokes_of_digit(images[PHOTO_INDEX]), "mouse")
        await predict_drawing(page)
        assert await shown_source(page) == "Read from your drawing"

        # Choosing a photo clears the drawing: the answer is the photo's alone.
        async with page.expect_response(lambda response: response.url.endswith("/predict")):
            await page.get_by_label("Choose a photo of one digit").set_input_files(photo_path)
        await wait_for_answer(page)
        assert await ink_pixel_count(page) == 0
        assert await shown_source(page) == "Read from digit-photo.jpg"
        await photo_preview.wait_for()
        await web.screenshot("one-input-photo")

        # Drawing clears the photo, from the first stroke on; the photo's answer stays named as such
        # until the drawing's comes.
        await web.draw([[(5, 14), (22, 14)]], "mouse")
        assert await photo_preview.is_hidden() and await chosen_file_names(page) == []
        assert await shown_source(page) == "Read from digit-photo.jpg"
        await predict_drawing(page)
        assert await shown_source(page) == "Read from your drawing"
        await web.screenshot("one-input-drawing")

        # A photo dropped on the page clears the drawing too, and the picker names it.
        async with page.expect_response(lambda response: response.url.endswith("/predict")):
            await drop_file(page, "#drop-zone", "dropped.jpg", photo, "image/jpeg")
        await wait_for_answer(page)
        assert await ink_pixel_count(page) == 0 and await chosen_file_names(page) == ["dropped.jpg"]
        assert await shown_source(page) == "Read from dropped.jpg"
        assert_consistent_answer(await shown_answer(page))


async def test_keyboard_reaches_every_control_and_clears_the_pad(open_page: OpenPage):
    async with open_page() as web:
        page = web.page
        focused = []
        for _ in range(8):
            await page.keyboard.press("Tab")
            focused.append(await page.evaluate("document.activeElement.id"))
        assert [control for control in focused if control in {"clear", "predict", "file"}][:3] == [
            "clear",
            "predict",
            "file",
        ]
        for key in ("Enter", "Space"):
            await web.draw([[(6, 8), (20, 20)], [(6, 20), (20, 8)]], "mouse")
            assert await ink_pixel_count(page) > 0
            await tab_to(page, "clear")
            # Keyboard focus is visible: the focused button draws an outline.
            assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
            await page.keyboard.press(key)
            assert await ink_pixel_count(page) == 0, f"{key} on Clear left ink on the pad"
        await tab_to(page, "predict")
        await page.keyboard.press("Enter")
        await page.get_by_role("alert").filter(has_text="Draw a digit first").wait_for()
        for selector in ("h1", "header p", ".hint", "button#clear", "button#predict", "label"):
            assert await text_contrast(page, selector) >= MIN_TEXT_CONTRAST, selector
        assert await page.get_by_role("img", name=re.compile("Drawing area")).is_visible()


async def test_phone_screen_fits_and_a_finger_drawing_is_read_on_its_own(
    open_page: OpenPage, mnist_test_samples
):
    images, labels = mnist_test_samples
    async with open_page(viewport=PHONE_VIEWPORT, is_mobile=True, device_scale_factor=2) as web:
        page = web.page
        widths = await page.evaluate(
            "({scroll: document.documentElement.scrollWidth, viewport: window.innerWidth})"
        )
        assert widths["scroll"] <= widths["viewport"], "the page scrolls sideways on a phone"
        pad = await page.locator("#pad").bounding_box()
        assert pad is not None and pad["x"] >= 0 and pad["x"] + pad["width"] <= PHONE_VIEWPORT["width"]
        assert pad["y"] + pad["height"] <= PHONE_VIEWPORT["height"], "the pad is not on the first screen"
        result = await page.locator("#result").bounding_box()
        photo_picker = await page.locator("#drop-zone").bounding_box()
        assert pad["y"] < result["y"] < photo_picker["y"], "on a phone the answer belongs under the pad"
        await web.draw(strokes_of_digit(images[PHOTO_INDEX]), "touch")
        # No button press: the page predicts by itself once the finger has been lifted for a moment.
        async with page.expect_request(lambda request: request.url.endswith("/predict"), timeout=10_000):
            pass
        await wait_for_answer(page)
        answer = await shown_answer(page)
        assert_consistent_answer(answer)
        await web.screenshot("phone-drawn-touch")
        assert answer["digit"] == str(labels[PHOTO_INDEX])
        assert await page.evaluate("window.scrollX") == 0


async def test_an_unsure_answer_says_so_plainly_with_the_likely_digits_and_why(
    open_page: OpenPage, mnist_test_samples, tmp_path: Path
):
    images, labels = mnist_test_samples
    four, nine = (int(np.flatnonzero(labels == digit)[0]) for digit in (4, 9))
    # A number written in one image: the service answers several_digits.
    number = np.concatenate([images[four], np.zeros((28, 10), np.uint8), images[nine]], axis=1)
    number_path = tmp_path / "forty-nine.png"
    cv2.imwrite(str(number_path), cv2.resize(255 - number, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC))
    async with open_page() as web:
        page = web.page
        async with page.expect_response(lambda response: response.url.endswith("/predict")) as answered:
            await page.get_by_label("Choose a photo of one digit").set_input_files(number_path)
        await wait_for_answer(page)
        api_answer = await (await answered.value).json()
        shown = await shown_answer(page)
        assert api_answer["unsure"] is True and api_answer["reason"] == "several_digits"
        assert shown["unsure"]["title"] == "Not sure — several digits."
        assert "several digits side by side" in shown["unsure"]["why"]
        await web.screenshot("unsure-several-digits")

        # Between a 4 and a 9: the service's real answer for a drawn 4, with its belief split.
        async def split_belief(route):
            answer = await (await route.fetch()).json()
            probabilities = [0.0] * 10
            probabilities[4], probabilities[9], probabilities[7] = 0.55, 0.41, 0.04
            answer.update(
                digit=4,
                confidence=0.55,
                probabilities=probabilities,
                unsure=True,
                reason="low_confidence",
                alternatives=[{"digit": d, "probability": probabilities[d]} for d in (4, 9, 7)],
            )
            await route.fulfill(json=answer)

        await page.route("**/predict", split_belief)
        await page.get_by_role("button", name="Clear").click()
        await web.draw(strokes_of_digit(images[four]), "mouse")
        await predict_drawing(page)
        shown = await shown_answer(page)
        assert_consistent_answer(shown)
        assert shown["digit"] == "4" and shown["unsure"]["title"] == "Not sure — 4 or 9?"
        assert "more than one way" in shown["unsure"]["why"]
        assert await text_contrast(page, "#unsure") >= MIN_TEXT_CONTRAST
        await web.screenshot("unsure-four-or-nine")
        await page.unroute("**/predict")


async def test_an_uploaded_number_is_read_like_the_api_reads_it(
    open_page: OpenPage, number_upload: tuple[Path, int], base_url: str
):
    number_path, image_width_pixels = number_upload
    expected = read_by_the_api(base_url, number_path)
    async with open_page() as web:
        page = web.page
        requested = []
        page.on(
            "request",
            lambda request: (
                request.url.startswith(base_url) and requested.append(request.url.removeprefix(base_url))
            ),
        )
        await page.get_by_role("radio", name="A number").check()
        async with page.expect_response(lambda response: "/read?" in response.url):
            await page.get_by_label("Choose a photo of a number").set_input_files(number_path)
        await wait_for_answer(page)
        shown = await shown_number(page)
        source = await shown_source(page)
        await web.screenshot("number-uploaded")
    assert_number_shown_as_answered(shown, expected, image_width_pixels)
    assert source == f"Read from {number_path.name}"
    assert len(expected["text"]) == NUMBER_DIGIT_COUNT
    assert requested == ["/read?include_model_view=true"], "number mode asks /read only"


async def test_a_number_drawn_on_the_wide_pad_is_read(open_page: OpenPage, mnist_test_samples):
    images, labels = mnist_test_samples
    truth = "".join(str(labels[index]) for index in DRAWN_NUMBER_INDICES)
    async with open_page() as web:
        page = web.page
        await page.get_by_role("radio", name="A number").check()
        assert await pad_size(page) == WIDE_PAD_SIZE_PIXELS
        pad = await page.locator("#pad").bounding_box()
        assert pad["width"] == pytest.approx(3 * pad["height"], abs=1.0)
        digits_strokes = [strokes_of_digit(images[index]) for index in DRAWN_NUMBER_INDICES]
        await web.draw(side_by_side(digits_strokes), "mouse")
        async with page.expect_response(lambda response: "/read?" in response.url) as answered:
            await read_drawing(page)
        answer = await (await answered.value).json()
        shown = await shown_number(page)
        assert await shown_source(page) == "Read from your drawing"
        await web.screenshot("number-drawn-mouse")
    print(f"drawn {truth}, read {shown['text']}")
    assert_number_shown_as_answered(shown, answer, WIDE_PAD_SIZE_PIXELS[0])
    assert len(shown["text"]) == len(truth), f"drew {truth}, the page shows {shown['text']}"
    # Each box lies over the square its digit was drawn on.
    for position, box in enumerate(shown["boxes"]):
        center_x = (box["x"] + box["width"] / 2) / shown["imageWidth"]
        assert position / 3 < center_x < (position + 1) / 3, f"box {position} is not over its digit"
    right = sum(shown_digit == drawn for shown_digit, drawn in zip(shown["text"], truth, strict=True))
    assert right >= MIN_DRAWN_NUMBER_DIGITS_READ, f"drew {truth}, the page shows {shown['text']}"


async def test_number_mode_fits_a_phone_and_one_digit_mode_works_again_after_it(
    open_page: OpenPage, number_upload: tuple[Path, int], base_url: str, mnist_test_samples
):
    images, labels = mnist_test_samples
    number_path, image_width_pixels = number_upload
    expected = read_by_the_api(base_url, number_path)
    async with open_page(viewport=PHONE_VIEWPORT, is_mobile=True, device_scale_factor=2) as web:
        page = web.page
        for choice in ("One digit", "A number"):
            box = await page.locator(".mode label", has_text=choice).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE_VIEWPORT["width"], choice
        await page.get_by_role("radio", name="A number").tap()
        pad = await page.locator("#pad").bounding_box()
        assert pad["x"] >= 0 and pad["x"] + pad["width"] <= PHONE_VIEWPORT["width"]
        assert pad["width"] == pytest.approx(3 * pad["height"], abs=1.0)
        await page.get_by_label("Choose a photo of a number").set_input_files(number_path)
        await wait_for_answer(page)
        assert_number_shown_as_answered(await shown_number(page), expected, image_width_pixels)
        widths = await page.evaluate(
            "({scroll: document.documentElement.scrollWidth, viewport: window.innerWidth})"
        )
        assert widths["scroll"] <= widths["viewport"], "the page scrolls sideways on a phone"
        await web.screenshot("phone-number-uploaded")

        # Back to one digit from the keyboard: the arrow keys move between the two radio buttons.
        await page.get_by_role("radio", name="A number").focus()
        await page.keyboard.press("ArrowLeft")
        assert await page.get_by_role("radio", name="One digit").is_checked()
        assert await pad_size(page) == (280, 280) and await ink_pixel_count(page) == 0
        assert await page.locator("#reading").is_hidden()
        assert await page.get_by_label("Choose a photo of one digit").is_visible()
        await web.draw(strokes_of_digit(images[PHOTO_INDEX]), "touch")
        async with page.expect_request(lambda request: request.url.endswith("/predict"), timeout=10_000):
            pass
        await wait_for_answer(page)
        answer = await shown_answer(page)
        assert_consistent_answer(answer)
        await web.screenshot("phone-one-digit-after-number")
        assert answer["digit"] == str(labels[PHOTO_INDEX])


async def test_number_mode_errors_are_shown_in_plain_words(
    open_page: OpenPage, digit_pool: DigitPool, tmp_path: Path
):
    too_long_path, _ = write_number_file(digit_pool, TOO_LONG_NUMBER_DIGIT_COUNT, tmp_path)
    blank_path = tmp_path / "blank.png"
    cv2.imwrite(str(blank_path), np.full((200, 600), 255, dtype=np.uint8))
    async with open_page() as web:
        page, error = web.page, web.page.get_by_role("alert")
        await page.get_by_role("radio", name="A number").check()
        file_input = page.get_by_label("Choose a photo of a number")
        await file_input.set_input_files(blank_path)
        await wait_for_answer(page)
        await error.filter(has_text="No digits found").wait_for(timeout=ANSWER_TIMEOUT_MS)

        await page.get_by_role("button", name="Predict").click()
        await error.filter(has_text="Draw a number first").wait_for(timeout=ANSWER_TIMEOUT_MS)

        async with page.expect_response(lambda response: "/read?" in response.url) as answered:
            await file_input.set_input_files(too_long_path)
        await wait_for_answer(page)
        assert (await (await answered.value).json())["code"] == "too_many_digits"
        await error.filter(has_text="more digits than the service reads").wait_for(timeout=ANSWER_TIMEOUT_MS)
        assert await page.locator("#reading").is_hidden()
        await web.screenshot("number-error-too-many-digits")


async def test_an_unsure_number_says_which_digits_to_check_and_why(
    open_page: OpenPage, number_upload: tuple[Path, int], base_url: str, tmp_path: Path
):
    number_path, _ = number_upload
    # The picker fires no change for the file it already holds: the second upload is a copy.
    copy_path = tmp_path / f"copy-of-{number_path.name}"
    copy_path.write_bytes(number_path.read_bytes())
    # The service's real answer, with the 2nd digit's belief split between it and the next digit up.
    # (Chromium does not hand an uploaded file's bytes to `route.fetch`, so the answer is asked first.)
    answer = read_by_the_api(base_url, number_path)
    second = answer["digits"][1]
    digit, other = second["digit"], (second["digit"] + 1) % 10
    alternatives = [(digit, 0.55), (other, 0.41), ((digit + 2) % 10, 0.04)]
    second.update(
        confidence=0.55,
        unsure=True,
        reason="low_confidence",
        alternatives=[{"digit": digit, "probability": p} for digit, p in alternatives],
    )
    reasons = iter(["unsure_digit", "doubtful_segmentation"])

    async def answer_unsure(route):
        await route.fulfill(json={**answer, "unsure": True, "reason": next(reasons)})

    check = f"the 2nd digit ({digit} or {other}?)"
    async with open_page() as web:
        page = web.page
        await page.route("**/read?*", answer_unsure)
        await page.get_by_role("radio", name="A number").check()
        file_input = page.get_by_label("Choose a photo of a number")
        await file_input.set_input_files(number_path)
        await wait_for_answer(page)
        shown = await shown_number(page)
        assert shown["unsure"] == {
            "title": "Not sure — a digit could be read more than one way.",
            "why": f"A person should check {check}.",
        }
        unsure_boxes = await page.locator("#marked .box.is-unsure").all_text_contents()
        assert unsure_boxes == [f"{digit} 55.0 %"]
        assert await text_contrast(page, "#number-unsure") >= MIN_TEXT_CONTRAST
        await web.screenshot("number-unsure-digit")

        await file_input.set_input_files(copy_path)
        await wait_for_answer(page)
        await page.get_by_text("Not sure — check how the digits were cut.").wait_for()
        shown = await shown_number(page)
        assert "may touch or be broken" in shown["unsure"]["why"] and check in shown["unsure"]["why"]
        await web.screenshot("number-unsure-cut")
        await page.unroute("**/read?*")
