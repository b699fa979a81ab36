"""The curl examples of the README work as written against the service (routes, field names, methods)."""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

import numpy as np
import pytest

from testkit.images import encode_jpeg, encode_png
from testkit.photo_like import render_photo_like
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

README = REPO_ROOT / "README.md"


def curl_commands() -> list[list[str]]:
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith("curl ")]
    return [shlex.split(line, comments=True) for line in lines]


def url_path(arguments: list[str]) -> str:
    url = arguments[-1]
    return urlsplit(url if "://" in url else f"http://{url}").path


def upload_for(filename: str, digit: np.ndarray) -> bytes:
    if filename.endswith(".jpg"):
        return encode_jpeg(render_photo_like(digit, np.random.default_rng(0)))
    return encode_png(digit)


def test_readme_has_examples_for_every_upload_route():
    paths = {url_path(arguments) for arguments in curl_commands()}
    assert {
        "/predict",
        "/predict/batch",
        "/read",
        "/read/batch",
        "/preprocess",
        "/readyz",
        "/metrics",
    } <= paths


@pytest.mark.parametrize("arguments", curl_commands(), ids=url_path)
async def test_readme_curl_example_succeeds(service, mnist_test_samples, arguments):
    images, _ = mnist_test_samples
    fields = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "-F"]
    files = []
    for field in fields:
        name, _, reference = field.partition("=@")
        files.append((name, (reference, upload_for(reference, images[len(files)]))))
    headers = dict(
        arguments[i + 1].split(": ", 1) for i, argument in enumerate(arguments) if argument == "-H"
    )  # the test service has no API keys: a key header is accepted and ignored
    path = url_path(arguments)
    if files:
        response = await service.client.post(path, files=files, headers=headers)
    else:
        response = await service.client.get(path, headers=headers)
    assert response.status_code == 200, response.text
