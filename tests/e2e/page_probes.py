"""What the digitserve page shows, read through Playwright: the answer, the 28x28 image, ink, contrast.

Each probe runs a little JavaScript in the page and returns plain Python values, so the tests in
`test_web_page.py` read as statements about what a user sees.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.async_api import Page

ANSWER_TIMEOUT_MS = 30_000


async def wait_for_answer(page: Page) -> None:
    """Waits until the latest request is answered (the result region is no longer aria-busy)."""
    await page.wait_for_function(
        "() => document.getElementById('result').getAttribute('aria-busy') === 'false'",
        timeout=ANSWER_TIMEOUT_MS,
    )


async def predict_drawing(page: Page) -> None:
    async with page.expect_response(lambda response: response.url.endswith("/predict")):
        await page.get_by_role("button", name="Predict").click()
    await wait_for_answer(page)


async def shown_answer(page: Page) -> dict:
    """The answer the page shows: digit, confidence text, bar values (%), polarity text, seen image size."""
    await page.wait_for_function(
        "() => document.getElementById('seen').complete && document.getElementById('seen').naturalWidth > 0",
        timeout=ANSWER_TIMEOUT_MS,
    )
    return await page.evaluate(
        """() => ({
          isShown: !document.getElementById("answer").hidden,
          digit: document.getElementById("digit").textContent,
          confidence: document.getElementById("confidence").textContent,
          bars: [...document.querySelectorAll("#bars li")].map((item) => ({
            label: item.querySelector(".bar-digit").textContent,
            value: item.querySelector(".bar-value").textContent,
            isTop: item.classList.contains("top"),
            fillWidthPixels: item.querySelector(".bar-fill").getBoundingClientRect().width,
          })),
          polarity: document.getElementById("polarity").textContent,
          seenWidth: document.getElementById("seen").naturalWidth,
          seenHeight: document.getElementById("seen").naturalHeight,
          error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
          unsure: document.getElementById("unsure").hidden
            ? null
            : {
                title: document.getElementById("unsure-title").textContent,
                why: document.getElementById("unsure-why").textContent,
              },
        })"""
    )


def assert_consistent_answer(answer: dict) -> None:
    """Ten bars 0-9 whose percentages sum to 100, the largest one marked, and a 28x28 seen image."""
    assert answer["isShown"] and answer["error"] == ""
    assert [bar["label"] for bar in answer["bars"]] == [str(digit) for digit in range(10)]
    percentages = [float(bar["value"].rstrip(" %")) for bar in answer["bars"]]
    assert sum(percentages) == pytest.approx(100.0, abs=1.0)
    top = [bar["label"] for bar in answer["bars"] if bar["isTop"]]
    assert top == [answer["digit"]]
    assert max(answer["bars"], key=lambda bar: bar["fillWidthPixels"])["label"] == answer["digit"]
    assert re.fullmatch(r"\d{1,3}\.\d % sure", answer["confidence"])
    assert (answer["seenWidth"], answer["seenHeight"]) == (28, 28)


async def seen_image_pixels(page: Page) -> np.ndarray:
    """The 28x28 image shown as "what the model saw", read back from the page as (28, 28) uint8 gray."""
    values = await page.evaluate(
        """() => {
          const image = document.getElementById("seen");
          const canvas = document.createElement("canvas");
          canvas.width = image.naturalWidth;
          canvas.height = image.naturalHeight;
          const context = canvas.getContext("2d");
          context.drawImage(image, 0, 0);
          const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
          return Array.from({ length: rgba.length / 4 }, (_, index) => rgba[index * 4]);
        }"""
    )
    return np.array(values, dtype=np.uint8).reshape(28, 28)


async def tab_to(page: Page, element_id: str) -> None:
    """Presses Tab (a bounded number of times) until the element with `element_id` has the focus."""
    for _ in range(12):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == element_id:
            return
    pytest.fail(f"Tab never reached #{element_id}")


async def ink_pixel_count(page: Page) -> int:
    """Pixels of the drawing pad that are not white paper."""
    return await page.evaluate(
        """() => {
          const pad = document.getElementById("pad");
          const rgba = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
          let count = 0;
          for (let index = 0; index < rgba.length; index += 4) if (rgba[index] < 250) count += 1;
          return count;
        }"""
    )


async def text_contrast(page: Page, selector: str) -> float:
    """WCAG contrast ratio of an element's text colour against the first opaque background behind it."""
    foreground, background = await page.evaluate(
        """(selector) => {
          const element = document.querySelector(selector);
          let behind = element;
          while (behind && getComputedStyle(behind).backgroundColor.match(/rgba\\(.*, 0\\)$|transparent/))
            behind = behind.parentElement;
          const rgb = (text) => text.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
          const background = behind ? getComputedStyle(behind).backgroundColor : "rgb(255, 255, 255)";
          return [rgb(getComputedStyle(element).color), rgb(background)];
        }""",
        selector,
    )

    def luminance(rgb: list[float]) -> float:
        channels = [value / 255 for value in rgb]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


async def read_drawing(page: Page) -> None:
    """Presses Predict in number mode and waits for the answer of `POST /read`."""
    async with page.expect_response(lambda response: "/read?" in response.url):
        await page.get_by_role("button", name="Predict").click()
    await wait_for_answer(page)


async def shown_number(page: Page) -> dict:
    """The number the page shows: text, notice, each digit's box (CSS pixels from the image's top left,
    and the image's shown size) with its label, and each 28x28 model view with its caption."""
    await page.wait_for_function(
        """() => !document.getElementById("reading").hidden &&
          [...document.querySelectorAll("#views img")].every((view) => view.complete && view.naturalWidth)""",
        timeout=ANSWER_TIMEOUT_MS,
    )
    return await page.evaluate(
        """() => {
          const image = document.getElementById("read-image").getBoundingClientRect();
          const byId = (id) => document.getElementById(id);
          return {
            text: byId("number").textContent,
            imageWidth: image.width,
            imageHeight: image.height,
            boxes: [...document.querySelectorAll("#marked .box")].map((box) => {
              const rect = box.getBoundingClientRect();
              return {
                label: box.textContent,
                x: rect.left - image.left,
                y: rect.top - image.top,
                width: rect.width,
                height: rect.height,
              };
            }),
            views: [...document.querySelectorAll("#views li")].map((item) => ({
              src: item.querySelector("img").src,
              width: item.querySelector("img").naturalWidth,
              height: item.querySelector("img").naturalHeight,
              caption: item.textContent,
            })),
            error: byId("error").hidden ? "" : byId("error").textContent,
            unsure: byId("number-unsure").hidden
              ? null
              : {
                  title: byId("number-unsure-title").textContent,
                  why: byId("number-unsure-why").textContent,
                },
          };
        }"""
    )


def assert_number_shown_as_answered(shown: dict, answer: dict, image_width_pixels: int) -> None:
    """The page shows the API's `answer` to `POST /read`: its text, one labelled box in place per digit,
    one 28x28 model view per digit, and the notice exactly when the answer is unsure."""
    assert shown["error"] == "" and shown["text"] == answer["text"]
    labels = [f"{digit['digit']} {digit['confidence'] * 100:.1f} %" for digit in answer["digits"]]
    assert [box["label"] for box in shown["boxes"]] == labels
    assert [view["caption"] for view in shown["views"]] == labels
    assert all((view["width"], view["height"]) == (28, 28) for view in shown["views"])
    assert [view["src"] for view in shown["views"]] == [
        f"data:image/png;base64,{digit['model_view']}" for digit in answer["digits"]
    ]
    scale = shown["imageWidth"] / image_width_pixels
    for box, digit in zip(shown["boxes"], answer["digits"], strict=True):
        expected = [digit["box"][side] * scale for side in ("x", "y", "width", "height")]
        assert [box[side] for side in ("x", "y", "width", "height")] == pytest.approx(expected, abs=1.0)
    assert (shown["unsure"] is None) is (answer["unsure"] is False)


async def shown_source(page: Page) -> str | None:
    """What the shown result says it was read from ("Read from your drawing"); None when it says nothing."""
    return await page.evaluate(
        "() => (source => source.hidden ? null : source.textContent)(document.getElementById('source'))"
    )


async def chosen_file_names(page: Page) -> list[str]:
    """The names of the files the photo picker holds."""
    return await page.evaluate("() => [...document.getElementById('file').files].map((file) => file.name)")


async def broken_images(page: Page) -> list[str]:
    """The visible images the browser could not draw (a broken-image icon), by id or alt text."""
    return await page.evaluate(
        """() => [...document.images]
          .filter((image) => image.checkVisibility() && image.complete && image.naturalWidth === 0)
          .map((image) => image.id || image.alt)"""
    )


async def drop_file(page: Page, selector: str, name: str, data: bytes, media_type: str) -> None:
    """Drops a file named `name` onto the element, as a drag from the desktop would."""
    transfer = await page.evaluate_handle(
        """([name, bytes, type]) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([new Uint8Array(bytes)], name, { type }));
          return transfer;
        }""",
        [name, list(data), media_type],
    )
    await page.dispatch_event(selector, "drop", {"dataTransfer": transfer})
