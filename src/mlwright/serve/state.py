"""The server's state in one object: model slots and the A/B router, the micro-batchers,
the prediction-log writer, the record validator, Prometheus metrics, API keys with their
rate limits, and settings.

``create_app`` builds one :class:`ServerState` and stores it on ``app.state.server``; routes
and middleware read it from there (or are handed it), so nothing lives in closures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlwright._logging import get_logger
from mlwright.config import ServeConfig
from mlwright.exceptions import MlwrightError, ServingError
from mlwright.serve.batching import MicroBatcher
from mlwright.serve.bodies import BodyWorker
from mlwright.serve.keys import ApiKey, active_keys
from mlwright.serve.logwriter import LogWriter
from mlwright.serve.middleware.rate_limit import RateLimits
from mlwright.serve.prometheus import ServerMetrics
from mlwright.serve.records import RecordValidator
from mlwright.serve.runtime import (
    Active,
    Router,
    Slot,
    is_registry_ref,
    load_source,
    make_predictor,
    resolve,
)
from mlwright.store import open_database

__all__ = ["ServerState", "one_thread_kernels", "settle_heap"]

log = get_logger(__name__)


def one_thread_kernels() -> None:
    """One OpenMP / BLAS thread for the calling thread's model calls. A server spreads
    requests over its cores already; a kernel's own thread team on a busy machine waits at
    its barriers (a one-row kNN prediction: 100 ms instead of 1 ms). OpenMP's setting is
    per thread, so each thread that predicts calls this."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def settle_heap() -> None:
    """Move everything allocated so far (modules, the loaded models) out of the garbage
    collector's way, for the life of the process. A full collection walks every tracked
    object: with a registered model loaded, the soak's server spent 0.3-0.8 s of CPU in
    each, on the event loop's thread (every 15-50 s under hostile load, every ~3 s at
    800 req/s); after this, ~0. Called by run_server once the app is built (not by
    create_app: a process embedding the app keeps its own heap), and again once a hot
    swap's old model is no longer in use (its cycles collected first)."""
    gc.collect()
    gc.freeze()


def _resettle() -> None:
    gc.unfreeze()  # the frozen old model's cycles are collectable again
    settle_heap()


class ServerState:
    """Everything one app holds: slots, batchers, the log, keys, settings."""

    def __init__(self, champion: Any, *, challenger: Any, config: ServeConfig,
                 database_url: str, tracking_uri: str | None, require_key: bool,
                 poll_interval: float) -> None:
        self.config = config
        self.tracking_uri = tracking_uri
        self.poll_interval = poll_interval
        self.max_body = int(config.max_body_mb * 1024 * 1024)
        self.metrics = ServerMetrics()
        self.database_url = database_url
        self.engine = open_database(database_url)
        self.require_key = require_key
        self.open_paths: set[str] = set()  # paths an extension serves without a key
        self.keys: dict[str, ApiKey] = {}  # the active API keys by hash
        if require_key:
            self.keys = active_keys(self.engine)
            if not self.keys:
                raise ServingError(
                    f"This server requires API keys (it binds to a non-loopback address, or "
                    f"serve.require_api_key is true) but {database_url} holds no active key. "
                    f"Create one with 'mlwright keys create NAME', or bind to 127.0.0.1.")
        self.rate_limits = RateLimits(config, self.metrics)
        self.rate_limits.update(self.keys.values())
        champion_source = None if not isinstance(champion, str) else champion
        loaded = load_source(champion, tracking_uri=tracking_uri)
        self.validator = RecordValidator(loaded.contract)
        self.contract = loaded.contract
        self.warm_record = {c.name: c.fill for c in self.validator.columns}
        self.champion = Slot("champion", champion_source, self._activate(loaded))
        challenger_source = challenger if isinstance(challenger, str) else None
        if challenger is None and champion_source and is_registry_ref(champion_source) \
                and "@" in champion_source and (config.challenger_share > 0 or config.shadow):
            challenger_source = champion_source.rsplit("@", 1)[0] + "@challenger"
        self.challenger = Slot("challenger", challenger_source, None)
        if challenger is not None and not isinstance(challenger, str):
            self.challenger.active = self._activate(load_source(challenger))
        elif challenger_source is not None:
            with contextlib.suppress(MlwrightError):
                self.challenger.active = self._activate(
                    load_source(challenger_source, tracking_uri=tracking_uri))
        self.router = Router(config.challenger_share)
        self.shadow = config.shadow
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="mlwright-predict",
                                           initializer=one_thread_kernels)
        self.heavy = ThreadPoolExecutor(1, thread_name_prefix="mlwright-batch",
                                        initializer=one_thread_kernels)
        # Requests of many records are validated here, one at a time, off the event loop;
        # large bodies are parsed and validated in a worker process (serve/bodies.py).
        self.validating = ThreadPoolExecutor(1, thread_name_prefix="mlwright-validate")
        self.bodies = BodyWorker(loaded.contract, config.max_records, config.sticky_key)
        wait = config.max_wait_ms / 1000
        self.batchers = {
            slot.role: MicroBatcher(slot, self.executor, max_batch=config.max_batch,
                                    max_wait=wait, on_batch=self.metrics.batch_observer(slot.role))
            for slot in (self.champion, self.challenger)}
        self.log = LogWriter(self.engine)
        self.metrics.log_queue.set_function(lambda: self.log.depth)
        self.ready = False
        self.database_error: str | None = None  # the last failed probe, None while it answers
        self.background: set[asyncio.Task[Any]] = set()
        self.tasks: list[asyncio.Task[Any]] = []

    def arriving(self, delta: int) -> None:
        """Count requests between arrival and submission (the batchers wait for them)."""
        for batcher in self.batchers.values():
            batcher.arriving += delta
            if delta > 0:
                batcher.arrived += delta

    def champion_folder(self) -> str:
        """The answering champion's run folder (it changes with hot swaps)."""
        active = self.champion.active
        return str(active.loaded.source) if active is not None else ""

    def _activate(self, loaded: Any) -> Active:
        active = Active(loaded, make_predictor(loaded, runtime=self.config.runtime,
                                                tracking_uri=self.tracking_uri))
        if hasattr(self, "warm_record"):
            active.predict([dict(self.warm_record)])  # first call pays one-off costs here
        return active

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        one_thread_kernels()  # lone requests are predicted on the event loop's thread
        for batcher in self.batchers.values():
            batcher.start()
        self.log.start()
        await self.bodies.start()
        loop = asyncio.get_running_loop()
        if self.champion.watchable or self.challenger.watchable:
            self.tasks.append(loop.create_task(self._watch()))
        if self.require_key:
            self.tasks.append(loop.create_task(self._refresh_keys()))
        self.tasks.append(loop.create_task(self._probe_database()))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for batcher in self.batchers.values():
            await batcher.stop()
        if self.background:  # shadow predictions still running: they are logged too
            await asyncio.gather(*self.background, return_exceptions=True)
        await self.log.close()
        self.executor.shutdown(wait=True)
        self.heavy.shutdown(wait=True)
        self.validating.shutdown(wait=True)
        self.bodies.stop()

    def database_problem(self) -> str | None:
        """Why the project database cannot take the log now (the log writer's failing
        writes, or the last probe), None while it can."""
        if self.log.down is not None:
            return self.log.down[1]
        return self.database_error

    async def _probe_database(self, every: float = 1.0) -> None:
        """``SELECT 1`` every second, so /readyz reports a database that went down even
        while no request is being logged."""
        from sqlalchemy import text

        def probe() -> None:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, probe)
                self.database_error = None
            except Exception as exc:
                from mlwright.serve.logwriter import _describe

                self.database_error = _describe(exc)
            await asyncio.sleep(every)

    async def _refresh_keys(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(5.0)
            try:
                keys = await loop.run_in_executor(None, active_keys, self.engine)
                if keys != self.keys:
                    self.keys = keys
                    self.rate_limits.update(keys.values())
            except Exception:  # keep the last known keys when the database hiccups
                log.exception("could not refresh API keys")

    async def _watch(self) -> None:
        """Hot swap: follow each slot's alias; load a new version off the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_interval)
            for slot in (self.champion, self.challenger):
                if not slot.watchable or slot.source is None:
                    continue
                source: str = slot.source
                try:
                    version = await loop.run_in_executor(
                        None, functools.partial(resolve, source, tracking_uri=self.tracking_uri))
                    current = slot.active.version if slot.active is not None else None
                    if version == current:
                        continue
                    if version is None:
                        if slot.role == "challenger":
                            slot.swap(None)
                        continue
                    loaded = await loop.run_in_executor(
                        None, functools.partial(load_source, source,
                                                tracking_uri=self.tracking_uri))
                    active = await loop.run_in_executor(None, self._activate, loaded)
                    slot.swap(active)
                    self.metrics.swaps.labels(slot.role).inc()
                    if gc.get_freeze_count():  # the old model goes once its last batch has
                        loop.call_later(self.config.request_timeout_s, _resettle)
                    log.info("%s now serves %s version %s (was %s)", slot.role,
                             active.name, active.version, current)
                except Exception:  # a bad new version must not take the server down
                    log.exception("could not follow %s", slot.source)
