"""What explanations compare against: the training design's mean per preprocessing style
and, for kNN / MLP members, a small background sample (attach_reference at training time)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.evaluate.explain._common import _needs_background, _unwrap

__all__ = ["attach_reference"]

log = get_logger(__name__)


def _compute_reference(ens: Any, X: pd.DataFrame, *, max_rows: int = 2000,
                       n_background: int = 30, seed: int = 0) -> dict[str, dict[str, Any]]:
    X = ens._frame(X)
    rng = np.random.default_rng(seed)
    if len(X) > max_rows:
        X = X.iloc[np.sort(rng.choice(len(X), max_rows, replace=False))]
    ref: dict[str, dict[str, Any]] = {}
    for style, prep in ens.preps.items():
        Xt = prep.transform(X)
        entry: dict[str, Any] = {"mean": np.asarray(Xt.mean(axis=0), dtype=float).ravel()}
        if _needs_background(ens, style):
            pick = np.sort(rng.choice(Xt.shape[0], min(n_background, Xt.shape[0]),
                                      replace=False))
            sub = Xt[pick]
            entry["background"] = np.asarray(sub.toarray() if hasattr(sub, "toarray")
                                             else sub, dtype=float)
        ref[style] = entry
    return ref


def attach_reference(model: Any, X: pd.DataFrame, *, max_rows: int = 2000,
                     n_background: int = 30, seed: int = 0) -> None:
    """Store what explanations compare against on the model (``explain_reference_``): the
    mean of each preprocessing style's training design (linear members) and, where a kNN or
    MLP member needs it, a small background sample of it. ``train`` calls this with the
    training rows; without it, linear members are explained against the design's centre."""
    ens, _ = _unwrap(model)
    ens.explain_reference_ = _compute_reference(ens, X, max_rows=max_rows,
                                                n_background=n_background, seed=seed)


def _reference_for(ens: Any, background: pd.DataFrame | None) -> dict[str, Any] | None:
    if background is not None:
        return _compute_reference(ens, background)
    ref = getattr(ens, "explain_reference_", None)
    if ref is None and any(m["style"] == "linear" for m in ens.members):
        log.info("the model carries no explanation reference (attach_reference): linear "
                 "members are explained against the design's centre")
    return ref

