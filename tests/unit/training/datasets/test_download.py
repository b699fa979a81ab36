"""fetch_file downloads a file once, verifies its sha256, and never uses or keeps a wrong one.

Downloads are served by a local HTTP server on 127.0.0.1 or by file:// URLs; no test reaches the internet.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testkit.server import free_port
from training.datasets.digit_set import DatasetError
from training.datasets.download import DownloadError, fetch_file, sha256_of_file

pytestmark = pytest.mark.unit

CONTENT = b"pretend this is t10k-labels-idx1-ubyte.gz" * 100
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()
FILENAME = "t10k-labels-idx1-ubyte.gz"


class _RecordingHandler(SimpleHTTPRequestHandler):
    requested_paths: list[str]

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        self.requested_paths.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keeps pytest output clean
        pass


@pytest.fixture
def mirror_dir(tmp_path) -> Path:
    """A folder served as a mirror, holding FILENAME."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / FILENAME).write_bytes(CONTENT)
    return folder


@pytest.fixture
def http_mirror(mirror_dir) -> Iterator[tuple[str, list[str]]]:
    """(base URL of a local HTTP server over `mirror_dir`, list of the paths requested from it)."""
    requested_paths: list[str] = []
    handler = type("Handler", (_RecordingHandler,), {"requested_paths": requested_paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(mirror_dir)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested_paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}/{FILENAME}"


def test_fetch_file_downloads_verifies_and_caches(tmp_path, http_mirror):
    base_url, requested_paths = http_mirror
    cache_dir = tmp_path / "cache" / "mnist"

    path = fetch_file(FILENAME, [base_url + FILENAME], CONTENT_SHA256, cache_dir)

    assert path == cache_dir / FILENAME and path.read_bytes() == CONTENT
    assert requested_paths == [f"/{FILENAME}"]
    assert sorted(cache_dir.iterdir()) == [path]  # no temporary file left behind


def test_fetch_file_uses_verified_cache_without_downloading_again(tmp_path, http_mirror):
    base_url, requested_paths = http_mirror
    fetch_file(FILENAME, [base_url + FILENAME], CONTENT_SHA256, tmp_path)
    fetch_file(FILENAME, [base_url + FILENAME], CONTENT_SHA256, tmp_path)
    assert len(requested_paths) == 1


def test_fetch_file_accepts_file_urls(tmp_path, mirror_dir):
    path = fetch_file(FILENAME, [(mirror_dir / FILENAME).as_uri()], CONTENT_SHA256, tmp_path / "cache")
    assert sha256_of_file(path) == CONTENT_SHA256


def test_fetch_file_rejects_download_with_wrong_checksum_and_deletes_it(tmp_path, mirror_dir):
    wrong_sha256 = "0" * 64
    cache_dir = tmp_path / "cache"
    with pytest.raises(
        DatasetError, match=rf"expected sha256 {wrong_sha256}.*served sha256 {CONTENT_SHA256}"
    ):
        fetch_file(FILENAME, [(mirror_dir / FILENAME).as_uri()], wrong_sha256, cache_dir)
    assert list(cache_dir.iterdir()) == []


def test_fetch_file_reports_corrupt_cached_file_and_says_to_delete_it(tmp_path, http_mirror):
    base_url, requested_paths = http_mirror
    (tmp_path / FILENAME).write_bytes(CONTENT[:-1])
    with pytest.raises(DatasetError, match=r"cached file has sha256 .* expected .*Delete it") as caught:
        fetch_file(FILENAME, [base_url + FILENAME], CONTENT_SHA256, tmp_path)
    assert not isinstance(caught.value, DownloadError)
    assert requested_paths == []  # never silently replaced either
    assert (tmp_path / FILENAME).read_bytes() == CONTENT[:-1]


def test_fetch_file_falls_back_to_the_next_mirror(tmp_path, http_mirror, closed_port_url):
    base_url, requested_paths = http_mirror
    urls = [closed_port_url, base_url + "missing/" + FILENAME, base_url + FILENAME]
    path = fetch_file(FILENAME, urls, CONTENT_SHA256, tmp_path)
    assert path.read_bytes() == CONTENT
    assert requested_paths == [f"/missing/{FILENAME}", f"/{FILENAME}"]


def test_fetch_file_reports_unreachable_mirrors_with_each_url(tmp_path, http_mirror, closed_port_url):
    base_url, _ = http_mirror
    urls = [closed_port_url, base_url + "missing/" + FILENAME]
    with pytest.raises(
        DownloadError,
        match=rf"could not download {FILENAME}:.*Connection refused.*missing/{FILENAME}: HTTP 404",
    ):
        fetch_file(FILENAME, urls, CONTENT_SHA256, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_file_without_download_permission_fails_on_a_cache_miss(tmp_path, mirror_dir):
    with pytest.raises(DownloadError, match=r"not in .* and downloads are disabled"):
        fetch_file(
            FILENAME, [(mirror_dir / FILENAME).as_uri()], CONTENT_SHA256, tmp_path, allow_download=False
        )
    assert not (tmp_path / FILENAME).exists()


def test_fetch_file_without_download_permission_still_uses_the_cache(tmp_path):
    (tmp_path / FILENAME).write_bytes(CONTENT)
    assert fetch_file(FILENAME, [], CONTENT_SHA256, tmp_path, allow_download=False) == tmp_path / FILENAME
