"""`python -m app`: serves the app with uvicorn on DIGITSERVE_HOST:DIGITSERVE_PORT, one worker.

The same as `uvicorn app.main:app --host ... --port ...`, with the address taken from the settings.
One worker per process (and per container): the model and the batcher live in that process, and
batching works best when every request of the machine reaches the same queue.
"""

from __future__ import annotations

import uvicorn

from app.settings import Settings


def main() -> None:
    """Reads the settings and runs the service until SIGINT or SIGTERM."""
    settings = Settings()
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        workers=1,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
