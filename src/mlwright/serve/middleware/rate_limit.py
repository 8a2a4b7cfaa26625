"""Per-key rate limits, answered 429 with ``Retry-After`` (seconds) and a body naming the
limit.

Each API key is limited by its own rate (``mlwright keys create NAME --rate 100/second``),
else by ``serve.rate_limit`` (none by default); a key created with ``--rate unlimited`` is
exempt. Without required keys (loopback), ``serve.anonymous_rate_limit`` limits each client
address. The health checks and the API's documentation are never limited.

The counting is the limits package's (fixed or moving window, ``serve.rate_limit_strategy``)
in this process's memory: checked after the key (the caller is known) and before the body
is read, in microseconds per request (``benchmarks/api_keys.py``). With ``--workers N``
each worker counts its own requests, so a caller spread over N workers may get up to N
times its rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlwright._logging import get_logger
from mlwright.exceptions import ServingError
from mlwright.serve.keys import UNLIMITED, ApiKey, parse_rate
from mlwright.serve.middleware._base import ASGIApp, Receive, Scope, Send, reply
from mlwright.serve.middleware.api_keys import KEY_SCOPE, OPEN_PATHS
from mlwright.serve.prometheus import endpoint_label

if TYPE_CHECKING:
    from limits import RateLimitItem

    from mlwright.config import ServeConfig
    from mlwright.serve.prometheus import ServerMetrics
    from mlwright.serve.state import ServerState

__all__ = ["RateLimitMiddleware", "RateLimits", "describe"]

log = get_logger(__name__)

ANONYMOUS = "anonymous"
_MAX_BLOCKED = 10_000


class RateLimits:
    """The limits in force (by key id) and the counters behind them."""

    def __init__(self, config: ServeConfig, metrics: ServerMetrics) -> None:
        self.metrics = metrics
        self.default = (parse_rate(config.rate_limit, "serve.rate_limit")
                        if config.rate_limit else None)
        self.anonymous = (parse_rate(config.anonymous_rate_limit, "serve.anonymous_rate_limit")
                          if config.anonymous_rate_limit else None)
        self.strategy = config.rate_limit_strategy
        self.by_key: dict[str, RateLimitItem | None] = {}
        self.enabled = False
        self._limiter: Any = None
        # Who is refused until when (unix seconds): a flood over the limit is answered from
        # here, without the limiter (its answer could not change before then).
        self._blocked: dict[str, float] = {}
        self.update(())

    def update(self, keys: Iterable[ApiKey]) -> None:
        """Take the active keys' limits (at start and whenever the key list changes)."""
        by_key: dict[str, RateLimitItem | None] = {}
        shown: dict[tuple[str, str], tuple[int, int]] = {}
        for key in keys:
            item = self.default
            if key.rate == UNLIMITED:
                item = None
            elif key.rate is not None:
                try:
                    item = parse_rate(key.rate, f"The rate of API key {key.id}")
                except ServingError as exc:  # written by hand into the table: say so, go on
                    log.warning("%s; serve.rate_limit applies to it instead", exc)
            by_key[key.id] = item
            if item is not None:
                shown[(key.id, key.name)] = (item.amount, item.get_expiry())
        if self.anonymous is not None:
            shown[(ANONYMOUS, ANONYMOUS)] = (self.anonymous.amount, self.anonymous.get_expiry())
        self.by_key = by_key
        self._blocked = {}
        self.enabled = bool(shown)
        if self.enabled and self._limiter is None:
            from limits.storage import MemoryStorage
            from limits.strategies import STRATEGIES

            self._limiter = STRATEGIES[self.strategy](MemoryStorage())
        self.metrics.show_limits(shown)

    def limit_of(self, key: ApiKey) -> RateLimitItem | None:
        # Every key the server holds went through update(); the default is only a fallback.
        return self.by_key.get(key.id, self.default)

    def wait(self, item: RateLimitItem, who: str) -> int:
        """Count one request of ``who``: 0 when allowed, else the seconds until it would be."""
        blocked = self._blocked
        until = blocked.get(who)
        if until is not None:
            now = time.time()
            if now < until:
                return max(1, math.ceil(until - now))
            del blocked[who]
        limiter = self._limiter
        if limiter.hit(item, who):
            return 0
        # Fixed window: when the window ends; moving window: when its oldest request leaves.
        until = limiter.get_window_stats(item, who).reset_time
        if len(blocked) >= _MAX_BLOCKED:  # many anonymous addresses: drop the expired ones
            now = time.time()
            for gone in [w for w, t in blocked.items() if t <= now]:
                del blocked[gone]
        blocked[who] = until
        return max(1, math.ceil(until - time.time()))


def describe(item: RateLimitItem) -> str:
    """"100 requests per second", "10 requests per 2 minutes"."""
    unit = item.GRANULARITY.name
    every = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
    return f"{item.amount} request{'s' if item.amount != 1 else ''} per {every}"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.state.rate_limits
        if limits.enabled and scope["type"] == "http":
            key: ApiKey | None = scope.get(KEY_SCOPE)
            if key is not None:
                item = limits.limit_of(key)
                who = f"key:{key.id}"
            elif scope["path"] in OPEN_PATHS:
                item = None
            else:
                item = limits.anonymous
                client = scope.get("client")
                who = f"client:{client[0] if client else '?'}"
            if item is not None:
                wait = limits.wait(item, who)
                if wait:
                    await self._refuse(scope, send, key, item, who, wait)
                    return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, key: ApiKey | None,
                      item: RateLimitItem, who: str, wait: int) -> None:
        metrics = self.state.metrics
        metrics.errors.labels(endpoint_label(scope["path"]), "rate_limited").inc()
        if key is not None:
            metrics.rate_limited.labels(key.id, key.name).inc()
            source = ("its own limit (mlwright keys create NAME --rate ...)"
                      if key.rate is not None else "serve.rate_limit")
            detail = (f"Too many requests for the API key {key.name!r} (id {key.id}): it may "
                      f"send {describe(item)}, {source}. Retry after {wait} s.")
        else:
            metrics.rate_limited.labels(ANONYMOUS, ANONYMOUS).inc()
            detail = (f"Too many requests from {who.removeprefix('client:')}: a caller "
                      f"without an API key may send {describe(item)} "
                      f"(serve.anonymous_rate_limit). Retry after {wait} s.")
        await reply(send, 429, {"detail": detail, "limit": describe(item), "retry_after": wait},
                    headers=[(b"retry-after", str(wait).encode())])
