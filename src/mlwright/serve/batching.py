"""Micro-batching: requests that passed validation, gathered into one model call per batch.

One :class:`MicroBatcher` per slot (champion, challenger). A member's fixed cost per call
(~0.2 ms each for XGBoost and CatBoost, a Python pass over each column) is paid once for the
requests that queued while the model thread was busy, and a lone request never waits for
company: there is no fixed delay, a batch leaves when the model thread is free. Validation
stays per request, before batching, so a refused record never reaches a batch; should the
batched call itself fail, each request of it is predicted alone (in the same booking of the
model thread), so only the culprit gets the error. A batch uses the one model the slot held
when it left: a hot swap never mixes versions within a call, and each request learns which
version answered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import ServingError
from mlwright.serve.runtime import Active, Predictor, Slot

__all__ = ["MicroBatcher", "predict_parts"]

log = get_logger(__name__)

Answer = tuple[list[Any], list[list[float]] | None]


@dataclass
class _Pending:
    records: list[dict[str, Any]]
    future: asyncio.Future[tuple[Active, list[Any], list[list[float]] | None]]


def predict_parts(predict: Predictor, parts: list[list[dict[str, Any]]]
                  ) -> tuple[list[Answer | Exception], float]:
    """Each part's answer from one call over all of them; when that call fails, each part
    alone (its answer or its own exception). Runs on the model thread. Also returns the
    seconds the one call took there: the model's own time, without the wait for the thread
    (which would make a fast model look slow to the inline path's condition)."""
    records = parts[0] if len(parts) == 1 else [r for part in parts for r in part]
    started = time.perf_counter()
    try:
        preds, proba = predict(records)
    except Exception as exc:
        if len(parts) == 1:
            return [exc], time.perf_counter() - started
        log.warning("a batch of %d requests failed (%s); predicting each alone", len(parts),
                    exc)
        out: list[Answer | Exception] = []
        for part in parts:
            try:
                out.append(predict(part))
            except Exception as alone:
                out.append(alone)
        return out, time.perf_counter() - started
    seconds = time.perf_counter() - started
    if len(parts) == 1:
        return [(preds, proba)], seconds
    answers: list[Answer | Exception] = []
    start = 0
    for part in parts:
        end = start + len(part)
        answers.append((preds[start:end], None if proba is None else proba[start:end]))
        start = end
    return answers, seconds


class MicroBatcher:
    """Gathers concurrent requests for one slot into one model call.

    Adaptive: a batch leaves as soon as no other request is on its way (``arriving`` counts
    requests between arrival and submission), so a lone request never waits; under load,
    requests that queue while the model is busy go together in the next call, up to
    ``max_batch`` rows or ``max_wait`` seconds after the first. ``max_batch`` 0 or 1: no
    gathering, each request is a call of its own.
    """

    # A lone request of at most this many rows is predicted on the event loop itself: the hop
    # to the model thread and back is ~0.5 ms, as long as the whole prediction of a fast
    # model. "Lone": no other request arrived since the last prediction started (under load
    # many do, and they are batched), and the model answers such requests in < 5 ms (a
    # moving average over them, so one slow call, a GC pause say, does not end it).
    inline_rows = 4
    inline_limit_s = 0.005
    # A request of more rows goes to the model in parts of this many, one after another:
    # a request queued meanwhile waits for one part (~10 ms on the telco champion), not for
    # the whole request (10,000 rows: ~0.1-0.3 s).
    part_rows = 256

    def __init__(self, slot: Slot, executor: Executor, *, max_batch: int, max_wait: float,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        self.slot = slot
        self.executor = executor
        self.gather = max_batch > 1
        self.max_batch = max(max_batch, 1)
        self.max_wait = max_wait
        self.on_batch = on_batch  # (rows, requests) of each model call
        self.arriving = 0
        self.arrived = 0  # requests ever counted by arriving(); compared between predictions
        self._arrived_at_start = 0
        self._small_s = 0.0  # moving average of the model's time on small batches
        self._inline_for: Active | None = None  # the model _small_s was measured on
        self._queue: asyncio.Queue[_Pending] | None = None
        self._carry: _Pending | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.Event | None = None  # set while no batch is with the model thread
        self._holding = False  # the batcher task holds a request waiting for the model thread

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Answer everything queued, then stop."""
        if self._task is None or self._queue is None or self._idle is None:
            return
        while not self._queue.empty() or self._carry is not None or self._holding:
            await asyncio.sleep(0.005)
        await self._idle.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, records: list[dict[str, Any]]
                     ) -> tuple[Active, list[Any], list[list[float]] | None]:
        """The model's predictions (and probabilities) for ``records``, and the model."""
        size = min(self.part_rows, self.max_batch) if self.gather else self.part_rows
        if len(records) <= size:
            return await self._submit(records)
        for _ in range(3):
            parts = [await self._submit(records[start:start + size])
                     for start in range(0, len(records), size)]
            active = parts[0][0]
            if all(part[0] is active for part in parts):  # one model answers the request
                preds = [p for part in parts for p in part[1]]
                proba = None if parts[0][2] is None else [
                    p for part in parts for p in part[2] or ()]
                return active, preds, proba
        raise ServingError(f"The {self.slot.role} model was swapped three times while this "
                           f"request was predicted; retry it.")

    def _free(self) -> bool:
        """Nothing queued, held or with the model thread, and no request on its way."""
        assert self._queue is not None and self._idle is not None
        return (self._idle.is_set() and self._queue.empty() and self._carry is None
                and not self._holding and self.arriving <= 0)

    async def _submit(self, records: list[dict[str, Any]]
                      ) -> tuple[Active, list[Any], list[list[float]] | None]:
        assert self._queue is not None and self._idle is not None, "the batcher was not started"
        if self._free():
            active = self.slot.active
            if active is not self._inline_for:  # a new model (hot swap) is measured anew
                self._inline_for, self._small_s = active, 0.0
            if (active is not None and self._small_s < self.inline_limit_s
                    and len(records) <= self.inline_rows
                    and self.arrived - self._arrived_at_start <= 1):
                # One turn of the event loop lets requests already on the wire arrive; if
                # any did, this one is not alone and goes to the batcher with them.
                mark = self.arrived
                await asyncio.sleep(0)
                if (self.arrived == mark and self._idle.is_set() and self._queue.empty()
                        and self._carry is None and not self._holding
                        and self.slot.active is active):
                    self._arrived_at_start = self.arrived
                    if self.on_batch is not None:
                        self.on_batch(len(records), 1)
                    started = time.perf_counter()
                    preds, proba = active.predict(records)
                    self._timed(active, len(records), time.perf_counter() - started)
                    return active, preds, proba
        future = asyncio.get_running_loop().create_future()
        if self._free():
            # Nothing to gather: straight to the model thread, skipping the batcher's own
            # task (two event-loop hops); requests arriving meanwhile queue for the next batch.
            await self._dispatch([_Pending(records, future)], len(records))
            return await future
        self._queue.put_nowait(_Pending(records, future))
        return await future

    def _timed(self, active: Active, rows: int, seconds: float) -> None:
        """Track the model's time on small batches (the inline path's condition)."""
        if rows <= self.inline_rows and active is self._inline_for:
            self._small_s += 0.1 * (seconds - self._small_s)

    async def _next(self, timeout: float | None) -> _Pending | None:
        assert self._queue is not None
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if timeout is None:
            return await self._queue.get()
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if timeout <= 0 or self.arriving <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            assert first is not None and self._idle is not None
            # While the model thread is busy, requests pile up: they all go in the next batch.
            self._holding = True
            await self._idle.wait()
            self._idle.clear()
            self._holding = False
            batch = [first]
            rows = len(first.records)
            deadline = loop.time() + self.max_wait
            while self.gather and rows < self.max_batch:
                item = await self._next(deadline - loop.time())
                if item is None:
                    break
                if rows + len(item.records) > self.max_batch:
                    self._carry = item
                    break
                batch.append(item)
                rows += len(item.records)
            await self._dispatch(batch, rows)

    async def _dispatch(self, batch: list[_Pending], rows: int) -> None:
        assert self._idle is not None
        idle = self._idle
        idle.clear()
        self._arrived_at_start = self.arrived
        call: asyncio.Future[tuple[list[Answer | Exception], float]] | None = None
        try:
            active = self.slot.active  # one model for the whole batch
            if active is None:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(ServingError(
                            f"No {self.slot.role} model is loaded."))
                return
            if self.on_batch is not None:
                self.on_batch(rows, len(batch))
            call = asyncio.get_running_loop().run_in_executor(
                self.executor, predict_parts, active.predict, [item.records for item in batch])
            # The model thread is free when the call ends, not when its caller stops
            # waiting (a request cancelled by its time limit): no second call overlaps it.
            call.add_done_callback(lambda _: idle.set())
            await self._answer(batch, rows, active, call)
        finally:
            if call is None:
                idle.set()

    async def _answer(self, batch: list[_Pending], rows: int, active: Active,
                      call: asyncio.Future[tuple[list[Answer | Exception], float]]) -> None:
        try:
            answers, seconds = await asyncio.shield(call)
        except Exception as exc:  # the executor itself failed (shut down): nobody answered
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self._timed(active, rows, seconds)
        for item, answer in zip(batch, answers, strict=True):
            if item.future.done():  # a cancelled request (client gone) is skipped
                continue
            if isinstance(answer, Exception):
                log.error("%s model %s failed on a request of %d rows", self.slot.role,
                          active.version, len(item.records), exc_info=answer)
                item.future.set_exception(answer)
            else:
                item.future.set_result((active, answer[0], answer[1]))
