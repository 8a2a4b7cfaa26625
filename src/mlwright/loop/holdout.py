"""What a retrain learns from and what the comparison is scored on.

``prepare_data`` splits the world into two disjoint tables:

* **eval**: the newest ``loop.eval_share`` of the recent labelled rows (prediction log joined
  with feedback; part ``recent``) plus a seeded ``loop.holdout`` share of the source table
  (part ``holdout``). The challenger never trains on these rows. The champion may have seen
  the holdout rows when it was trained, which favours it: the comparison errs on the side of
  keeping the champion.
* **train**: the data-window policy (``loop.data_window``) applied to the rest:

  - ``all``: the source table plus every older labelled row from the log;
  - ``last:N``: the most recent N of those rows (log rows are the most recent);
  - ``days:N``: rows of the last N days (log rows by when they were scored; source rows by
    ``loop.time_column``, and none of them without it);
  - ``reference+recent[:N]``: the source table plus the labelled rows logged since the
    champion was promoted (the newest N of them with ``:N``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.exceptions import ConfigError, LoopError

__all__ = ["PART", "DataSplit", "parse_policy", "prepare_data"]

log = get_logger(__name__)
PART = "_mw_part"


def parse_policy(text: str) -> tuple[str, int | None]:
    """``"all"`` / ``"last:5000"`` / ``"days:30"`` / ``"reference+recent[:N]"``."""
    t = str(text).strip().lower()
    if t == "all":
        return "all", None
    m = re.fullmatch(r"(last|days):(\d+)", t)
    if m and int(m.group(2)) > 0:
        return m.group(1), int(m.group(2))
    m = re.fullmatch(r"reference\+recent(?::(\d+))?", t)
    if m:
        return "reference+recent", int(m.group(1)) if m.group(1) else None
    raise ConfigError(f"loop.data_window must be all, last:N, days:N or reference+recent[:N] "
                      f"(N a positive number); got {text!r}.")


@dataclass
class DataSplit:
    train: pd.DataFrame
    eval: pd.DataFrame                       # features + target + PART
    info: dict[str, Any] = field(default_factory=dict)


def _align(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Give log rows (parsed from JSON) the source's column types, so the two concatenate
    into one typed table (and write to Parquet)."""
    out = pd.DataFrame(index=frame.index)
    for col in like.columns:
        values = frame[col] if col in frame.columns else pd.Series(np.nan, index=frame.index)
        dtype = like[col].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[col] = values.astype(object)
        elif pd.api.types.is_numeric_dtype(dtype):
            out[col] = pd.to_numeric(values, errors="coerce")
        elif isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
            out[col] = pd.to_datetime(values, errors="coerce", utc=isinstance(
                dtype, pd.DatetimeTZDtype))
        else:
            out[col] = values.astype(object).where(values.notna(), np.nan)
    return out


def _load_source(config: Any) -> pd.DataFrame:
    from mlwright.data.sources import load

    d = config.data
    return load(d.source, table=d.table, query=d.query, sample=d.sample)


def _checked_labels(labels: pd.Series, feedback_ids: pd.Series, source: pd.DataFrame,
                    target: str, task: str | None) -> list[Any]:
    """The log's labels read by the contract's label rules against the source table (its
    classes, or its target range for regression), in canonical form: class ``10`` for a
    stored ``10.0``. A label the rules refuse (a poisoned ``1e308``, an unknown class, sent
    before the server checked labels) stops the retrain here, named, rather than deep in
    training."""
    from mlwright.data.contract.rules import to_label
    from mlwright.data.kinds import Task
    from mlwright.data.target import check_target

    found = check_target(source, target, None if task in (None, "auto") else task)
    rule: dict[str, Any]
    if found is Task.REGRESSION:
        values = pd.to_numeric(source[target], errors="coerce")
        rule = {"classes": None, "low": float(values.min()), "high": float(values.max())}
    else:
        distinct = source[target].dropna().unique().tolist()
        rule = {"classes": sorted({v.item() if isinstance(v, np.generic) else v
                                   for v in distinct}, key=lambda v: (str(type(v)), v))}
    out: list[Any] = []
    bad: list[str] = []
    for value, fid in zip(labels.tolist(), feedback_ids.tolist(), strict=True):
        label, why = to_label(value, **rule)
        out.append(label)
        if why is not None:
            bad.append(f"feedback {fid}: {why}")
    if bad:
        raise LoopError(
            f"{len(bad)} feedback label(s) in the prediction log break the rules for "
            f"{target!r}, so the retrain would learn from them; delete them from the feedback "
            f"table (by id) and retry. " + "; ".join(bad[:5]))
    return out


def prepare_data(config: Any, *, data: pd.DataFrame | None = None, since: float | None = None,
                 now: float | None = None, seed: int | None = None) -> DataSplit:
    """Split the source table (``data``, else ``config.data``) and the labelled log rows
    into a training table (the data-window policy) and a comparison table.

    Args:
        since: when the champion was promoted (``reference+recent``'s "recent").
    """
    from mlwright.loop.feedback import labelled_rows, to_training_frame

    target = config.data.target
    loop = config.loop
    now = time.time() if now is None else now
    seed = config.train.seed if seed is None else seed
    policy, n = parse_policy(loop.data_window)
    source = _load_source(config) if data is None else data
    if target not in source.columns:
        from mlwright.exceptions import ColumnNotFoundError

        raise ColumnNotFoundError(target, source.columns, role="target column")
    source = source[source[target].notna()].reset_index(drop=True)

    labelled = labelled_rows(config.store.database_url(), config.name)
    recent = to_training_frame(labelled, target)
    if len(recent):
        recent[target] = _checked_labels(recent[target], labelled["_mw_feedback_id"], source,
                                         target, config.train.task)
    recent = _align(recent, source) if len(recent) else source.iloc[:0].copy()
    recent_ts = labelled["_mw_ts"].to_numpy(dtype=float) if len(labelled) else np.array([])

    # Comparison rows: newest share of the log rows, a seeded share of the source.
    n_eval = round(len(recent) * loop.eval_share)
    cut = len(recent) - n_eval
    eval_recent = recent.iloc[cut:].assign(**{PART: "recent"})
    older, older_ts = recent.iloc[:cut], recent_ts[:cut]
    rng = np.random.default_rng(seed)
    holdout_mask = rng.random(len(source)) < loop.holdout
    eval_holdout = source[holdout_mask].assign(**{PART: "holdout"})
    rest = source[~holdout_mask]

    if policy == "all":
        train = pd.concat([rest, older], ignore_index=True)
    elif policy == "last":
        assert n is not None
        train = pd.concat([rest, older], ignore_index=True).iloc[-n:]
    elif policy == "days":
        assert n is not None
        start = now - n * 86400
        parts = [older[older_ts >= start]]
        col = loop.time_column
        if col:
            if col not in rest.columns:
                from mlwright.exceptions import ColumnNotFoundError

                raise ColumnNotFoundError(col, rest.columns, role="loop.time_column")
            stamps = pd.to_datetime(rest[col], errors="coerce", utc=True)
            parts.insert(0, rest[(stamps >= pd.Timestamp(start, unit="s", tz="UTC")).to_numpy()])
        train = pd.concat(parts, ignore_index=True)
    else:  # reference+recent
        keep = older if since is None else older[older_ts >= since]
        if n is not None:
            keep = keep.iloc[-n:]
        train = pd.concat([rest, keep], ignore_index=True)
    train = train.reset_index(drop=True)
    if len(train) == 0:
        raise LoopError(
            f"The data window {loop.data_window!r} leaves no rows to retrain on (source "
            f"{len(source)} rows, {len(older)} older labelled log rows). Widen "
            f"loop.data_window, or set loop.time_column for days:N.")
    eval_frame = pd.concat([eval_recent, eval_holdout], ignore_index=True)
    info = {"policy": loop.data_window, "source_rows": len(source),
            "labelled_log_rows": len(recent), "train_rows": len(train),
            "eval_recent_rows": len(eval_recent), "eval_holdout_rows": len(eval_holdout)}
    log.info("retrain data: %s", info)
    return DataSplit(train=train, eval=eval_frame, info=info)
