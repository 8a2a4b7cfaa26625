"""The server's middleware, one pure-ASGI class per concern.

``MIDDLEWARE`` is their order, outermost first: request metrics see every answer (the 401,
413, 429 and 500 of the layers inside included); error hiding covers everything inside it;
the deadline (408, 503) sits inside it and outside everything that waits; API keys and
their scopes are checked first, then the caller's rate limit (it needs the key), both
before the body limit reads anything.
"""

from __future__ import annotations

from mlwright.serve.middleware.api_keys import ApiKeyMiddleware
from mlwright.serve.middleware.body_limit import BodyLimitMiddleware
from mlwright.serve.middleware.deadline import DeadlineMiddleware
from mlwright.serve.middleware.errors import ErrorsMiddleware
from mlwright.serve.middleware.metrics import MetricsMiddleware
from mlwright.serve.middleware.rate_limit import RateLimitMiddleware

__all__ = ["MIDDLEWARE", "ApiKeyMiddleware", "BodyLimitMiddleware", "DeadlineMiddleware",
           "ErrorsMiddleware", "MetricsMiddleware", "RateLimitMiddleware"]

MIDDLEWARE = (MetricsMiddleware, ErrorsMiddleware, DeadlineMiddleware, ApiKeyMiddleware,
              RateLimitMiddleware,
              BodyLimitMiddleware)
