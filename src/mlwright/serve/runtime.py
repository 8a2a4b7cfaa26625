"""What answers a prediction: model slots, the micro-batcher, A/B routing and hot swap.

A :class:`Slot` holds the model of one role (champion, challenger) behind one attribute,
so a hot swap is one assignment: a batch in flight keeps the model it started with, the
next batch gets the new one, and no request is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import RegistryError, ServingError

__all__ = ["Active", "MicroBatcher", "Router", "Slot", "is_registry_ref", "load_source",
           "make_predictor"]

log = get_logger(__name__)

Predictor = Callable[[list[dict[str, Any]]], tuple[list[Any], list[list[float]] | None]]


def _pandas_predictor(loaded: Any) -> Predictor:
    """Fallback: one DataFrame per batch through the ensemble's own predict path."""
    import numpy as np
    import pandas as pd

    model = loaded.model
    names = list(loaded.contract.feature_names)
    classes = loaded.classes
    threshold = getattr(model, "threshold", None)

    def predict(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        frame = pd.DataFrame.from_records(records, columns=names)
        if classes is None:
            return np.asarray(model.predict(frame), dtype=float).tolist(), None
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        if threshold is not None and proba.shape[1] == 2:
            idx = (proba[:, 1] >= threshold).astype(int)
        else:
            idx = proba.argmax(axis=1)
        return [classes[i] for i in idx], proba.tolist()

    return predict


def _onnx_predictor(loaded: Any, tracking_uri: str | None) -> Predictor:
    """The model exported to ONNX, run by onnxruntime (one thread: the server spreads
    requests over its cores, as for the Python predictor)."""
    import numpy as np

    from mlwright.export.core import onnx_predictor

    if hasattr(loaded.model, "predict_records"):  # an .onnx file, already a session
        session = loaded.model
    else:
        registry = None
        if loaded.run_id:
            from mlwright.registry import Registry

            registry = Registry(tracking_uri)
        session = onnx_predictor(loaded, registry=registry, threads=1)

    def predict(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        preds, proba = session.predict_records(records)
        return (np.asarray(preds).tolist(),
                None if proba is None else np.asarray(proba, dtype=float).tolist())

    return predict


def make_predictor(loaded: Any, *, runtime: str = "python",
                   tracking_uri: str | None = None) -> Predictor:
    """The function a batch of validated records goes through (the one place to switch):
    the compiled Python predictor, or with ``runtime="onnx"`` the ONNX export."""
    if runtime == "onnx" or hasattr(loaded.model, "predict_records"):
        return _onnx_predictor(loaded, tracking_uri)
    try:
        from mlwright.search.predictor import compile_predictor
    except ImportError:
        return _pandas_predictor(loaded)
    compiled = compile_predictor(loaded.model, loaded.contract)

    def predict(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        import numpy as np

        preds, proba = compiled.predict_records(records)
        out = np.asarray(preds).tolist() if not isinstance(preds, list) else preds
        return out, None if proba is None else np.asarray(proba, dtype=float).tolist()

    return predict


def is_registry_ref(source: str) -> bool:
    """``NAME``, ``NAME@alias``, ``NAME/VERSION`` or ``models:/...``: anything that is not an
    existing folder is looked up in the registry."""
    return bool(source.strip()) and not Path(source).exists()


def load_source(source: Any, *, tracking_uri: str | None = None) -> Any:
    """A ``LoadedModel`` from a run folder, a registry reference, an ``.onnx`` file written
    by ``mlwright export``, or one already loaded."""
    from mlwright.registry.model import LoadedModel
    from mlwright.run import RunFolder, file_sha256

    if isinstance(source, LoadedModel):
        return source
    text = str(source)
    folder = Path(text)
    if folder.suffix.lower() == ".onnx":
        if not folder.is_file():
            raise ServingError(f"The ONNX file {text!r} does not exist; write it with "
                               f"'mlwright export NAME@alias --format onnx -o {folder.name}'.")
        return _load_onnx(folder)
    if folder.is_dir():
        # A folder has no registry version; the model file's hash names it.
        digest = file_sha256(folder / RunFolder.MODEL)[:12] if (
            folder / RunFolder.MODEL).exists() else "0"
        return LoadedModel.from_folder(folder, name=folder.resolve().name, version=digest)
    if not is_registry_ref(text):
        raise ServingError(
            f"{text!r} is neither a run folder nor a registry reference: expected a folder "
            f"written by 'mlwright train' or NAME@champion / NAME/VERSION. Check the path or "
            f"list registered models with 'mlwright models'.")
    try:
        from mlwright.registry import load_model
    except ImportError as exc:
        raise ServingError(
            f"Cannot load {text!r}: this mlwright has no model registry yet ({exc}). Serve "
            f"a run folder instead.") from exc
    return load_model(text, tracking_uri=tracking_uri)


def _load_onnx(path: Path) -> Any:
    """A ``LoadedModel`` around an ONNX file written by ``mlwright export`` (its contract,
    name and version come from the file's metadata)."""
    from mlwright.export.runtime import OnnxPredictor
    from mlwright.registry.model import LoadedModel

    predictor = OnnxPredictor(path)
    contract = predictor.contract()
    if contract is None:
        raise ServingError(
            f"{str(path)!r} holds no data contract, which scoring checks every row against; "
            f"export the model again with 'mlwright export NAME@alias --format onnx -o "
            f"{path.name}'.")
    return LoadedModel(model=predictor, contract=contract, name=predictor.name,
                       version=predictor.version, source=str(path))


def resolve(source: str, *, tracking_uri: str | None = None) -> str | None:
    """The version an alias points at now (None when it points nowhere)."""
    try:
        from mlwright.registry import resolve_version
    except ImportError:
        return None
    try:
        return str(resolve_version(source, tracking_uri=tracking_uri))
    except RegistryError:
        return None


@dataclass(frozen=True)
class Active:
    """A loaded model and its compiled predictor: swapped as one object."""

    loaded: Any
    predict: Predictor

    @property
    def version(self) -> str:
        return str(self.loaded.version)

    @property
    def name(self) -> str:
        return str(self.loaded.name)


class Slot:
    """The model of one role; ``source`` is what it is reloaded from when an alias moves."""

    def __init__(self, role: str, source: str | None, active: Active | None) -> None:
        self.role = role
        self.source = source
        self.active = active
        self.swaps = 0

    @property
    def watchable(self) -> bool:
        return self.source is not None and is_registry_ref(self.source)

    def swap(self, active: Active | None) -> None:
        self.active = active  # one assignment: atomic for every coroutine and thread
        self.swaps += 1


@dataclass
class _Pending:
    records: list[dict[str, Any]]
    future: asyncio.Future[tuple[Active, list[Any], list[list[float]] | None]]


class MicroBatcher:
    """Gathers concurrent requests for one slot into one model call.

    Adaptive: a batch leaves as soon as no other request is on its way (``arriving`` counts
    requests between arrival and submission), so a lone request never waits; under load,
    requests that queue while the model is busy go together in the next call, up to
    ``max_batch`` rows or ``max_wait`` seconds after the first.
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
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.slot = slot
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.on_batch = on_batch
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
        if self._task is None or self._queue is None:
            return
        while not self._queue.empty() or self._carry is not None:
            await asyncio.sleep(0.005)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, records: list[dict[str, Any]]
                     ) -> tuple[Active, list[Any], list[list[float]] | None]:
        """The model's predictions (and probabilities) for ``records``, and the model."""
        size = min(self.part_rows, self.max_batch)
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

    async def _submit(self, records: list[dict[str, Any]]
                      ) -> tuple[Active, list[Any], list[list[float]] | None]:
        assert self._queue is not None and self._idle is not None, "the batcher was not started"
        if self._idle.is_set() and self._queue.empty() and self._carry is None \
                and not self._holding and self.arriving <= 0:
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
                        self.on_batch(len(records))
                    started = time.perf_counter()
                    preds, proba = active.predict(records)
                    self._timed(active, len(records), time.perf_counter() - started)
                    return active, preds, proba
        if self._idle.is_set() and self._queue.empty() and self._carry is None \
                and not self._holding and self.arriving <= 0:
            # Nothing to gather: straight to the model thread, skipping the batcher's own
            # task (two event-loop hops); requests arriving meanwhile queue for the next batch.
            future = asyncio.get_running_loop().create_future()
            await self._dispatch([_Pending(records, future)], len(records))
            return await future
        future = asyncio.get_running_loop().create_future()
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
            while rows < self.max_batch:
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
        call: asyncio.Future[Any] | None = None
        try:
            active = self.slot.active
            if active is None:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(ServingError(
                            f"No {self.slot.role} model is loaded."))
                return
            records = batch[0].records if len(batch) == 1 else [
                r for item in batch for r in item.records]
            if self.on_batch is not None:
                self.on_batch(rows)
            started = time.perf_counter()
            call = asyncio.get_running_loop().run_in_executor(
                self.executor, active.predict, records)
            # The model thread is free when the call ends, not when its caller stops
            # waiting (a request cancelled by its time limit): no second call overlaps it.
            call.add_done_callback(lambda _: idle.set())
            await self._predict(batch, rows, active, call, started)
        finally:
            if call is None:
                idle.set()

    async def _predict(self, batch: list[_Pending], rows: int, active: Active,
                       call: asyncio.Future[Any], started: float) -> None:
        try:
            preds, proba = await asyncio.shield(call)
            self._timed(active, rows, time.perf_counter() - started)
        except Exception as exc:  # the model failed: every waiting request gets the error
            log.exception("%s model %s failed on a batch of %d rows", self.slot.role,
                          active.version, rows)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in batch:
            end = start + len(item.records)
            if not item.future.done():  # a cancelled request (client gone) is skipped
                item.future.set_result((active, preds[start:end],
                                        None if proba is None else proba[start:end]))
            start = end


class Router:
    """Chooses the arm of a request: challenger for ``share`` of keys, else champion.

    The split hashes the request's key (the caller's sticky key, else the request id), so one
    key always lands on the same arm and the shares hold over many keys.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self._cut = int(share * (1 << 64))

    def to_challenger(self, key: str) -> bool:
        if self._cut <= 0:
            return False
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._cut


def now() -> float:
    return time.time()
