"""HTTP connections: a request's head (its request line and headers) must arrive within
``serve.header_timeout_s`` of its first byte, and a new connection must send one within as
long. uvicorn times out idle keep-alive connections, but not a head trickled a byte at a
time (slowloris) nor a connection that never sends anything: each would hold a socket
for as long as its client likes.

One sweep a second over the server's open connections, not a timer per request (the
deadline middleware's reason: timers cost the single-row path a quarter of its
throughput). A connection whose head is late is answered 408 (head started) or closed
(nothing sent); the bodies' own limit is the deadline middleware's.
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlwright._logging import get_logger

__all__ = ["HeadTimeoutProtocol", "from_environment", "protocol_for"]

log = get_logger(__name__)

SWEEP_S = 1.0  # how late a connection may be closed


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a time limit on request heads."""

    head_timeout_s = 10.0  # set per server by protocol_for()
    _head_since: float | None = None   # loop time the pending head began; None: no head due
    _head_begun = False                # some bytes of the pending head arrived

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_since = self.loop.time()
        state: Any = self.server_state  # the sweep's timer handle is kept on it
        if getattr(state, "mlwright_sweep", None) is None:
            state.mlwright_sweep = self.loop.call_later(SWEEP_S, _sweep, self.loop, state,
                                                         self.head_timeout_s)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_since is None:
            self._head_since = self.loop.time()
        self._head_begun = True

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._head_begun = False
        super().on_headers_complete()

    def head_late(self) -> None:
        """Answer 408 (or just close, when nothing was sent) and drop the connection."""
        self._head_since = None
        if self.transport.is_closing():
            return
        if self._head_begun:
            detail = (f"The request head (request line and headers) was not received within "
                      f"{self.head_timeout_s:g} s (serve.header_timeout_s).").encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: " + str(len(detail)).encode() +
                b"\r\n\r\n" + detail)
        self.transport.close()


def _sweep(loop: Any, state: Any, timeout: float) -> None:
    """Close the connections whose head is late; again in a second while any are open."""
    now = loop.time()
    late = [c for c in state.connections
            if getattr(c, "_head_since", None) is not None and now - c._head_since >= timeout]
    for connection in late:
        connection.head_late()
    if late:
        log.info("closed %d connections whose request head was late", len(late))
    state.mlwright_sweep = (loop.call_later(SWEEP_S, _sweep, loop, state, timeout)
                            if state.connections else None)


def protocol_for(head_timeout_s: float) -> type[HeadTimeoutProtocol]:
    """The protocol class uvicorn's ``http`` option takes, with this head time limit."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,),
                {"head_timeout_s": head_timeout_s})


_worker_class: type[HeadTimeoutProtocol] | None = None


def from_environment(**kwargs: Any) -> HeadTimeoutProtocol:
    """The protocol of each ``--workers`` process (uvicorn needs an import path): its time
    limit from the server spec that run_server puts in the environment."""
    global _worker_class
    if _worker_class is None:
        import orjson

        from mlwright.config import ServeConfig

        spec = orjson.loads(os.environ["MLWRIGHT_SERVE_SPEC"])
        _worker_class = protocol_for(ServeConfig(**spec["config"]).header_timeout_s)
    return _worker_class(**kwargs)
