"""The server's middleware, one pure-ASGI class per concern.

``MIDDLEWARE`` is their order, outermost first: request metrics see every answer (the 401,
413 and 500 of the layers inside included); error hiding covers everything inside it; API
keys are checked before the body limit reads anything.
"""

from __future__ import annotations

from mlwright.serve.middleware.api_keys import ApiKeyMiddleware
from mlwright.serve.middleware.body_limit import BodyLimitMiddleware
from mlwright.serve.middleware.errors import ErrorsMiddleware
from mlwright.serve.middleware.metrics import MetricsMiddleware

__all__ = ["MIDDLEWARE", "ApiKeyMiddleware", "BodyLimitMiddleware", "ErrorsMiddleware",
           "MetricsMiddleware"]

MIDDLEWARE = (MetricsMiddleware, ErrorsMiddleware, ApiKeyMiddleware, BodyLimitMiddleware)
