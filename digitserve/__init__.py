"""digitserve's command line and Python client: read handwritten digits and numbers through the service.

`digitserve.client.Client` (and `AsyncClient`) talk to a running service; `digitserve.cli` is the
`digitserve` command (`serve`, `predict`, `read`); `digitserve.local` reads in process with no
service. Importing the client loads neither TensorFlow nor the service.
"""

from digitserve.client import AsyncClient, Client
from digitserve.exchange import RetryPolicy
from digitserve.results import Alternative, Box, ImageError, Prediction, ReadDigit, Reading, ServiceError

__all__ = [
    "Alternative",
    "AsyncClient",
    "Box",
    "Client",
    "ImageError",
    "Prediction",
    "ReadDigit",
    "Reading",
    "RetryPolicy",
    "ServiceError",
]
