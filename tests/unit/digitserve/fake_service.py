"""A stand-in for the service behind an `httpx.MockTransport`: answers from a script, records requests.

Enough of the API for the client's protocol (status, `Retry-After`, batch items), none of its work:
each uploaded file named `bad...` is an item error, any other reads as the digit 7 (the number "42").
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import httpx

PREDICTION = {
    "digit": 7,
    "confidence": 0.9912,
    "probabilities": [0.0] * 7 + [0.9912, 0.0088, 0.0],
    "unsure": False,
    "reason": None,
    "alternatives": [{"digit": 7, "probability": 0.9912}, {"digit": 8, "probability": 0.0088}],
    "inverted": True,
    "model_version": "6",
}
DIGIT = {key: PREDICTION[key] for key in ("digit", "confidence", "unsure", "reason", "alternatives")}
READING = {
    "text": "42",
    "digits": [
        {**DIGIT, "digit": 4, "box": {"x": 1, "y": 2, "width": 10, "height": 20}},
        {
            **DIGIT,
            "digit": 2,
            "unsure": True,
            "reason": "low_confidence",
            "box": {"x": 12, "y": 2, "width": 9, "height": 20},
        },
    ],
    "unsure": True,
    "reason": "unsure_digit",
    "inverted": False,
    "model_version": "6",
}
ITEM_ERROR = {"status_code": 422, "error": {"code": "no_digit_found", "detail": "no ink"}}
FILENAME = re.compile(rb'filename="([^"]*)"')


@dataclass
class FakeService:
    """Answers each request with the next scripted refusal, if any, else as the service would.

    Attributes:
        refusals: (status, headers, body) answers to give first, in order, whatever the request.
        requests: every request received.
    """

    refusals: deque[tuple[int, dict[str, str], dict]] = field(default_factory=deque)
    requests: list[httpx.Request] = field(default_factory=list)

    def refuse(self, status: int, body: dict, **headers: str) -> None:
        self.refusals.append((status, headers, body))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.refusals:
            status, headers, body = self.refusals.popleft()
            return httpx.Response(status, headers=headers, json=body)
        names = [name.decode() for name in FILENAME.findall(request.content)]
        answer = READING if request.url.path.startswith("/read") else PREDICTION
        if request.url.path.endswith("/batch"):
            key = "readings" if request.url.path.startswith("/read") else "predictions"
            return httpx.Response(
                200, json={key: [ITEM_ERROR if name.startswith("bad") else answer for name in names]}
            )
        if names[0].startswith("bad"):
            return httpx.Response(422, json=ITEM_ERROR["error"])
        return httpx.Response(200, json=answer)

    def uploaded_names(self) -> list[list[str]]:
        """Per request, the names of the files it carried."""
        return [[name.decode() for name in FILENAME.findall(request.content)] for request in self.requests]
