"""A real browser for the web page's tests: Debian's Chromium driven by Playwright.

The service the page talks to runs as a real uvicorn process (`testkit.server.running_service`).
`BrowserPage` wraps one Playwright page whose context may reach only 127.0.0.1 (any other request is
aborted and recorded), and draws strokes with a mouse, a pen or a finger through Chromium's own input
pipeline (CDP `Input.*`), so the page gets trusted pointer events.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, CDPSession, Page, Route

from testkit.server import LOOPBACK_HOST
from testkit.shared_data import REPO_ROOT
from tests.e2e.digit_strokes import Point

SCREENSHOT_COPY_DIR = REPO_ROOT / "test-output" / "web"
# The machine's notes: without the background-networking flags Chromium keeps trying Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MNIST_SIZE_PIXELS = 28


@dataclass
class BrowserPage:
    """One page in its own browser context, with what it tried to reach and what went wrong in it."""

    page: Page
    context: BrowserContext
    output_dir: Path
    blocked_urls: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    _cdp: CDPSession | None = None

    async def block_everything_but_loopback(self) -> None:
        """Aborts (and records) every request whose host is not 127.0.0.1: provably no network."""

        async def route_request(route: Route) -> None:
            if urlsplit(route.request.url).hostname == LOOPBACK_HOST:
                await route.fallback()
            else:
                self.blocked_urls.append(route.request.url)
                await route.abort("internetdisconnected")

        await self.context.route("**/*", route_request)

    def record_errors(self) -> None:
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on(
            "console", lambda message: message.type == "error" and self.console_errors.append(message.text)
        )

    async def screenshot(self, name: str) -> Path:
        """Saves a full-page PNG into the test's folder and a copy into test-output/web/."""
        path = self.output_dir / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        SCREENSHOT_COPY_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOT_COPY_DIR / path.name)
        return path

    async def pad_points(self, stroke: Sequence[Point]) -> list[tuple[float, float]]:
        """(row, column) points on the 28x28 grid -> CSS pixel positions on the page's drawing pad."""
        box = await self.page.locator("#pad").bounding_box()
        assert box is not None, "the drawing pad is not rendered"
        cell_x, cell_y = box["width"] / MNIST_SIZE_PIXELS, box["height"] / MNIST_SIZE_PIXELS
        return [
            (box["x"] + (column + 0.5) * cell_x, box["y"] + (row + 0.5) * cell_y) for row, column in stroke
        ]

    async def draw(self, strokes: Sequence[Sequence[Point]], pointer_type: str) -> None:
        """Draws each stroke as one press-move-release with a "mouse", a "pen" or a "touch" finger."""
        for stroke in strokes:
            points = await self.pad_points(stroke)
            if pointer_type == "mouse":
                await self._mouse_stroke(points)
            elif pointer_type == "pen":
                await self._pen_stroke(points)
            else:
                await self._touch_stroke(points)

    async def _cdp_session(self) -> CDPSession:
        if self._cdp is None:
            self._cdp = await self.context.new_cdp_session(self.page)
        return self._cdp

    async def _mouse_stroke(self, points: list[tuple[float, float]]) -> None:
        mouse = self.page.mouse
        await mouse.move(*points[0])
        await mouse.down()
        for x, y in points[1:]:
            await mouse.move(x, y)
        await mouse.up()

    async def _pen_stroke(self, points: list[tuple[float, float]]) -> None:
        # Playwright's mouse has no pen; CDP's mouse events do, as trusted input with pointerType "pen".
        cdp = await self._cdp_session()
        (start_x, start_y), *rest = points
        common = {"button": "left", "pointerType": "pen"}
        await cdp.send(
            "Input.dispatchMouseEvent",
            {"type": "mouseMoved", "x": start_x, "y": start_y, **common, "button": "none"},
        )
        await cdp.send(
            "Input.dispatchMouseEvent",
            {"type": "mousePressed", "x": start_x, "y": start_y, "buttons": 1, "clickCount": 1, **common},
        )
        for x, y in rest:
            await cdp.send(
                "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "buttons": 1, **common}
            )
        end_x, end_y = points[-1]
        await cdp.send(
            "Input.dispatchMouseEvent",
            {"type": "mouseReleased", "x": end_x, "y": end_y, "buttons": 0, "clickCount": 1, **common},
        )

    async def _touch_stroke(self, points: list[tuple[float, float]]) -> None:
        cdp = await self._cdp_session()
        (start_x, start_y), *rest = points
        await cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": start_x, "y": start_y}]}
        )
        for x, y in rest:
            await cdp.send(
                "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
            )
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
