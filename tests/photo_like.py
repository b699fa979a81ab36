"""Moved to `testkit.photo_like` (the renderer) and `testkit.images` (the JPEG encoder).

Re-exported here only for the test modules that still import them from `tests.photo_like`.
"""

from testkit.images import encode_jpeg as encode_jpeg
from testkit.photo_like import render_photo_like as render_photo_like
