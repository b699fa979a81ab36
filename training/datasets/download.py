"""File name + mirror URLs + sha256 -> a verified file in the cache folder (downloaded at most once).

A cached file is trusted only if its checksum matches; a mismatching one is reported, never used, so a
half-written or tampered file cannot silently train a model. Downloads go to a temporary file in the
cache folder and are renamed into place only once verified, so an interrupted run leaves no bad file
under the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from training.datasets.digit_set import DatasetError

DOWNLOAD_TIMEOUT_SECONDS = 30.0
CHUNK_SIZE_BYTES = 1 << 20


class DownloadError(DatasetError):
    """A file is not in the cache and could not be downloaded (offline, mirrors down, downloads off).

    Loaders catch it to say which files to put in which folder.
    """


def sha256_of_file(path: Path) -> str:
    """File -> its sha256 as 64 lowercase hex digits (read in blocks by `hashlib.file_digest`)."""
    with Path(path).open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def fetch_file(
    filename: str,
    urls: Sequence[str],
    sha256: str,
    cache_dir: Path,
    *,
    allow_download: bool = True,
) -> Path:
    """Returns `cache_dir/filename` with the expected checksum, downloading it if it is not there.

    Args:
        filename: name of the file in the cache, e.g. "t10k-labels-idx1-ubyte.gz".
        urls: full URLs of the same file on different mirrors, tried in order.
        sha256: expected checksum, 64 hex digits.
        cache_dir: folder of the cache; created when a download starts.
        allow_download: False to use the cache only.

    Returns:
        Path of the verified file.

    Raises:
        DatasetError: the cached file has another checksum (delete it), or every mirror served a
            file with the wrong checksum.
        DownloadError: the file is not cached and downloads are disabled or no mirror could be
            reached.
    """
    expected = sha256.lower()
    destination = Path(cache_dir) / filename
    if destination.is_file():
        _check_cached_file(destination, expected)
        return destination
    if not allow_download:
        raise DownloadError(f"{filename} is not in {cache_dir} and downloads are disabled")
    if not urls:
        raise DownloadError(f"{filename} is not in {cache_dir} and no download URL is known")
    destination.parent.mkdir(parents=True, exist_ok=True)
    _download_from_mirrors(urls, destination, expected)
    return destination


def _check_cached_file(path: Path, expected_sha256: str) -> None:
    actual = sha256_of_file(path)
    if actual != expected_sha256:
        raise DatasetError(
            f"{path}: cached file has sha256 {actual}, expected {expected_sha256}; it is corrupt or "
            f"not the official file. Delete it to download it again, or put the right file there."
        )


def _download_from_mirrors(urls: Sequence[str], destination: Path, expected_sha256: str) -> None:
    """Tries each mirror until one serves the file with the expected checksum (see `fetch_file`)."""
    unreachable, mismatched = [], []
    for url in urls:
        try:
            actual = _download_verified(url, destination, expected_sha256)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            unreachable.append(f"{url}: {_describe_failure(error)}")
            continue
        if actual == expected_sha256:
            return
        mismatched.append(f"{url} served sha256 {actual}")
    if mismatched:
        raise DatasetError(
            f"{destination.name}: download has the wrong checksum (expected sha256 {expected_sha256}): "
            + "; ".join(mismatched + unreachable)
        )
    raise DownloadError(f"could not download {destination.name}: " + "; ".join(unreachable))


def _describe_failure(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    return str(getattr(error, "reason", error))


def _download_verified(url: str, destination: Path, expected_sha256: str) -> str:
    """Downloads `url` next to `destination` and renames it into place if its sha256 is the expected one.

    Returns:
        The sha256 of what was served; the temporary file is deleted unless it matched.
    """
    digest = hashlib.sha256()
    descriptor, temporary_name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    temporary_path = Path(temporary_name)
    try:
        with (
            os.fdopen(descriptor, "wb") as output,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        ):
            while chunk := response.read(CHUNK_SIZE_BYTES):
                digest.update(chunk)
                output.write(chunk)
        actual = digest.hexdigest()
        if actual == expected_sha256:
            # Atomic within one file system: readers see no file or the whole verified file.
            os.replace(temporary_path, destination)
        return actual
    finally:
        temporary_path.unlink(missing_ok=True)
