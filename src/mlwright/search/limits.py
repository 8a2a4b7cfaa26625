"""``--max-latency-ms`` and ``--max-size-mb``: an ensemble within a serving budget, measured
on the compiled predictor (:func:`mlwright.search.latency.measure`, one record per call, as
the server predicts), never estimated. Decision 0034.

1. *Candidates.* A trial whose own fold-0 model, alone, measures over the budget is not a
   candidate of greedy selection. Singles are measured lazily: selection runs, the members it
   picked are measured alone, those over the budget leave the pool and selection runs again,
   until every member fits alone. Only trials that kept their fold models (the search keeps
   those of its best trials) can be measured, so only they are candidates. Measuring
   candidates alone stops after ``MEASURE_SECONDS``; a candidate not measured by then is not
   used.
2. *No candidate fits alone*: :class:`ServingBudgetError`, naming the fastest and the
   smallest measured, before anything is refit, saved or registered.
3. *The ensemble* (after ``--trim``), as a stand-in of its members' fold-0 models, is
   measured; while it is over the budget one member goes: of those whose own measured cost
   covers the excess, the one whose removal costs least CV loss; when none does, the member
   costliest alone (relative to the budget). The ensemble is measured again after each drop;
   the weights of the others are renormalised.
4. *The refit model* is measured itself (a refit on all rows grows other trees than the
   fold models: hpc_jobs' LightGBM members were 50% larger), and members go by the same rule
   while it is over the budget. ``api.train`` measures the model that ships once more, as the
   server compiles it (with its contract), for the record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright._logging import get_logger
from mlwright.exceptions import ConfigError, ServingBudgetError
from mlwright.scoring import Metric
from mlwright.search.records import TrialRecord

if TYPE_CHECKING:
    from mlwright.search.session import _Search

__all__ = ["MEASURE_SECONDS", "REPEAT", "Limited", "Limits", "Meter", "fit_ensemble",
           "fit_refit", "fitting_candidates", "without"]

log = get_logger(__name__)

#: Seconds spent at most measuring candidates alone (the ensembles are always measured).
MEASURE_SECONDS = 30.0
#: One-record calls per measurement, and the fold-0 validation rows they take in turn.
REPEAT = 200
ROWS = 100


def _check(name: str, value: Any, unit: str, flag: str) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise ConfigError(f"{name} must be a positive number of {unit}, got {value!r}; "
                          f"e.g. {flag} 5.")
    return float(value)


@dataclass(frozen=True)
class Limits:
    """A serving budget: single-record p50 latency in milliseconds, joblib size in MB."""

    max_latency_ms: float | None = None
    max_size_mb: float | None = None

    @classmethod
    def of(cls, max_latency_ms: Any = None, max_size_mb: Any = None, *,
           python: bool = True) -> Limits | None:
        """The budget, or None when neither is given; ConfigError for a value that is not a
        positive number (named as the Python argument, or the command-line option)."""
        names = (("max_latency_ms", "max_size_mb") if python
                 else ("--max-latency-ms", "--max-size-mb"))
        flags = ("max_latency_ms=", "max_size_mb=") if python else names
        latency = _check(names[0], max_latency_ms, "milliseconds", flags[0])
        size = _check(names[1], max_size_mb, "megabytes", flags[1])
        if latency is None and size is None:
            return None
        return cls(latency, size)

    def ratios(self, fig: dict[str, float]) -> dict[str, float]:
        """Measured figure / budget, for each budget given ("latency", "size")."""
        out = {}
        if self.max_latency_ms is not None:
            out["latency"] = fig["p50_ms"] / self.max_latency_ms
        if self.max_size_mb is not None:
            out["size"] = fig["size_mb"] / self.max_size_mb
        return out

    def over(self, fig: dict[str, float]) -> bool:
        return any(r > 1.0 for r in self.ratios(fig).values())

    def budget(self, dim: str) -> float:
        value = self.max_latency_ms if dim == "latency" else self.max_size_mb
        assert value is not None
        return value

    def text(self, fig: dict[str, float]) -> str:
        """``latency 0.31 ms p50 (budget 0.5 ms), size 2.1 MB (budget 5 MB)``."""
        parts = [f"latency {fig['p50_ms']:.3g} ms p50"
                 + (f" (budget {self.max_latency_ms:g} ms)" if self.max_latency_ms else ""),
                 f"size {fig['size_mb']:.3g} MB"
                 + (f" (budget {self.max_size_mb:g} MB)" if self.max_size_mb else "")]
        return ", ".join(parts)


def figures(measured: dict[str, float]) -> dict[str, float]:
    """:func:`measure`'s microseconds as the budget's milliseconds."""
    return {"p50_ms": measured["p50_us"] / 1000, "p90_ms": measured["p90_us"] / 1000,
            "size_mb": measured["size_mb"]}


_DIM_KEY = {"latency": "p50_ms", "size": "size_mb"}


class Meter:
    """Measures stand-ins of fold-0 models (one trial alone, cached; or an ensemble) on the
    search's fold-0 validation rows, and keeps the time it took."""

    def __init__(self, s: _Search, limits: Limits, classes: list[Any] | None,
                 columns: list[str], *, cap: float | None = None) -> None:
        self.s, self.limits, self.classes, self.columns = s, limits, classes, columns
        self.cap = MEASURE_SECONDS if cap is None else cap
        self.rows = s.X.iloc[s.splits.folds[0][1][:ROWS]]
        self.alone: dict[int, dict[str, float]] = {}
        self.failed: dict[int, str] = {}
        self.seconds = 0.0  # everything measured here
        self.alone_seconds = 0.0  # candidates alone (capped)
        self.capped = False

    def measurable(self, rec: TrialRecord) -> bool:
        return bool(rec.fold_models) if self.s.refits else rec.estimator is not None

    def _measure(self, recs: list[TrialRecord], weights: dict[int, float]
                 ) -> dict[str, float]:
        from mlwright.search.latency import measure
        from mlwright.search.refit import fold_ensemble

        stand_in, missing = fold_ensemble(self.s, recs, weights, 0, self.classes,
                                          self.columns)
        if stand_in is None or missing:
            raise RuntimeError(f"trials {missing} kept no fold models")
        t0 = time.monotonic()
        try:
            return figures(measure(stand_in, self.rows, repeat=REPEAT))
        finally:
            self.seconds += time.monotonic() - t0

    def single(self, rec: TrialRecord) -> dict[str, float] | None:
        """``rec``'s fold-0 model alone; None when it could not be measured (the cap on
        measuring candidates reached, or the measurement failed)."""
        if rec.number in self.alone:
            return self.alone[rec.number]
        if rec.number in self.failed:
            return None
        if self.alone_seconds >= self.cap:
            self.capped = True
            self.failed[rec.number] = (f"not measured: the {self.cap:g} s spent measuring "
                                       f"candidates alone ran out")
            return None
        t0 = time.monotonic()
        try:
            fig = self._measure([rec], {rec.number: 1.0})
        except Exception as exc:  # a model that cannot be measured cannot be vouched for
            self.failed[rec.number] = f"not measured: {type(exc).__name__}: {exc}"
            return None
        finally:
            self.alone_seconds += time.monotonic() - t0
        self.alone[rec.number] = fig
        return fig

    def ensemble(self, recs: list[TrialRecord], weights: dict[int, float]
                 ) -> dict[str, float]:
        return self._measure(recs, weights)

    def model(self, model: Any) -> dict[str, float]:
        """A built model (the refit one) on the same rows."""
        from mlwright.search.latency import measure

        t0 = time.monotonic()
        try:
            return figures(measure(model, self.rows, repeat=REPEAT))
        finally:
            self.seconds += time.monotonic() - t0


@dataclass
class Limited:
    """What the serving budget decided (``TrainResult.limits``)."""

    limits: Limits
    excluded: list[dict[str, Any]] = field(default_factory=list)  # candidates left out
    unmeasurable: list[int] = field(default_factory=list)  # candidates without fold models
    before: dict[str, float] = field(default_factory=dict)  # the selected ensemble
    after: dict[str, float] = field(default_factory=dict)  # after the drops
    dropped: list[dict[str, Any]] = field(default_factory=list)
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    weights: dict[int, float] = field(default_factory=dict)
    alone: dict[int, dict[str, float]] = field(default_factory=dict)  # measured singles
    families: dict[int, str] = field(default_factory=dict)  # trial -> family, of members
    seconds: float = 0.0
    capped: bool = False
    cap_seconds: float = MEASURE_SECONDS
    # The refit model as first measured, and members dropped from it (fit_refit).
    refit: dict[str, float] = field(default_factory=dict)
    refit_after: dict[str, float] = field(default_factory=dict)
    refit_dropped: list[dict[str, Any]] = field(default_factory=list)
    # The model that ships, measured after the refit (api.train).
    shipped: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, metric: Metric) -> dict[str, Any]:
        return {"max_latency_ms": self.limits.max_latency_ms,
                "max_size_mb": self.limits.max_size_mb,
                "on": "fold-0 models", "repeat": REPEAT,
                "alone": {str(k): v for k, v in self.alone.items()},
                "excluded": self.excluded, "unmeasurable": self.unmeasurable,
                "before": self.before, "after": self.after,
                "dropped": self.dropped,
                "refit": self.refit, "refit_after": self.refit_after,
                "refit_dropped": self.refit_dropped,
                "cv_before": metric.to_score(self.loss_before),
                "cv_after": metric.to_score(self.loss_after),
                "kept": {str(k): v for k, v in self.weights.items()},
                "within": (not self.limits.over(self.refit_after or self.after)
                           if self.after else None),
                "measuring_seconds": self.seconds, "capped": self.capped,
                "measure_cap_seconds": self.cap_seconds,
                "shipped": self.shipped}


def _row(rec: TrialRecord, fig: dict[str, float] | None, why: str) -> dict[str, Any]:
    out: dict[str, Any] = {"trial": rec.number, "family": rec.family, "why": why}
    if fig is not None:
        out.update(p50_ms=fig["p50_ms"], size_mb=fig["size_mb"])
    return out


def fitting_candidates(meter: Meter, candidates: list[TrialRecord],
                       select: Callable[[list[TrialRecord]], dict[int, float]],
                       limited: Limited) -> tuple[list[TrialRecord], dict[int, float]]:
    """Greedy selection (``select``: pool -> {position: weight}) over the candidates that fit
    the budget alone, measuring only the members it picks. Raises ServingBudgetError when no
    candidate fits alone."""
    limits = meter.limits
    pool = []
    for rec in candidates:
        if meter.measurable(rec):
            pool.append(rec)
        else:  # its fold models were not kept (outside the search's best trials)
            limited.unmeasurable.append(rec.number)
    while pool:
        weights = select(pool)
        out = []
        for i in weights:
            fig = meter.single(pool[i])
            if fig is None:
                out.append(i)
                limited.excluded.append(_row(pool[i], None, meter.failed[pool[i].number]))
            elif limits.over(fig):
                out.append(i)
                limited.excluded.append(_row(pool[i], fig, "over the budget alone"))
        if not out:
            limited.capped, limited.alone = meter.capped, dict(meter.alone)
            limited.cap_seconds = meter.cap
            return pool, weights
        pool = [rec for i, rec in enumerate(pool) if i not in out]
    limited.capped, limited.alone = meter.capped, dict(meter.alone)
    raise ServingBudgetError(_nothing_fits(meter, candidates))


def _nothing_fits(meter: Meter, candidates: list[TrialRecord]) -> str:
    limits = meter.limits
    by_number = {r.number: r for r in candidates}
    measured = {t: f for t, f in meter.alone.items() if t in by_number}
    wanted = " and ".join(
        ([f"--max-latency-ms {limits.max_latency_ms:g}"] if limits.max_latency_ms else [])
        + ([f"--max-size-mb {limits.max_size_mb:g}"] if limits.max_size_mb else []))
    if not measured:
        why = "; ".join(sorted(set(meter.failed.values()))) or "no candidate could be measured"
        return (f"No model could be checked against {wanted}: {why}. Train with more time "
                f"or fewer trials, or drop the budget options.")
    parts = []
    for dim, flag, unit in (("latency", "--max-latency-ms", "ms p50"),
                            ("size", "--max-size-mb", "MB")):
        if (limits.max_latency_ms if dim == "latency" else limits.max_size_mb) is None:
            continue
        key = _DIM_KEY[dim]
        best = min(measured, key=lambda t: measured[t][key])
        value = measured[best][key]
        name = "fastest" if dim == "latency" else "smallest"
        parts.append(f"the {name}, {by_number[best].family} (trial {best}), measured "
                     f"{value:.3g} {unit} alone; {flag} {_round_up(value * 1.5)} would "
                     f"admit it")
    skipped = len(candidates) - len(measured)
    note = (f" ({skipped} candidate(s) not measured: "
            f"{'; '.join(sorted(set(meter.failed.values())))})"
            if skipped and meter.failed else "")
    return (f"No model fits {wanted} on its own, so no ensemble can: "
            f"{'; '.join(parts)}{note}. Raise the budget, or train cheaper families "
            f"(e.g. --families lightgbm,linear). Nothing was saved or registered.")


def _round_up(value: float) -> str:
    """A budget a little above ``value``, in two significant digits."""
    if value <= 0:
        return "1"
    digits = 1 - math.floor(math.log10(value))
    step = 10.0 ** -digits
    return f"{math.ceil(value / step) * step:.{max(digits, 0)}f}"


def _blend(oofs: dict[int, np.ndarray], weights: dict[int, float]) -> np.ndarray:
    total = sum(weights.values())
    return sum((oofs[t] * (w / total) for t, w in weights.items()),
               start=np.zeros_like(next(iter(oofs.values())), dtype=float))


def _pick(limits: Limits, fig: dict[str, float], kept: dict[int, float],
          alone: dict[int, dict[str, float]], oofs: dict[int, np.ndarray], y: np.ndarray,
          metric: Metric, mask: np.ndarray, scale: dict[str, float] | None = None
          ) -> tuple[int, float]:
    """The member to drop from ``kept`` (measured ``fig``, over the budget) and the CV loss
    of the rest: of the members whose own cost alone (times ``scale``, per figure) covers
    the excess, the one whose removal costs least; else the costliest alone."""
    ratios = limits.ratios(fig)
    excess = {d: fig[_DIM_KEY[d]] - limits.budget(d) for d, r in ratios.items() if r > 1}
    options = []
    # Ties go to the lighter member (then the later trial): deterministic.
    for t in sorted(kept, key=lambda t: (kept[t], -t)):
        rest = {u: w for u, w in kept.items() if u != t}
        loss = metric.loss(y[mask], _blend(oofs, rest)[mask])
        own = {d: alone[t][_DIM_KEY[d]] * (scale or {}).get(d, 1.0) for d in excess}
        covers = all(own[d] >= e for d, e in excess.items())
        cost = max(own[d] / limits.budget(d) for d in excess)
        options.append((t, loss, covers, cost))
    covering = [o for o in options if o[2]]
    if covering:
        pick, loss, _, _ = min(covering, key=lambda o: o[1])
    else:
        pick, loss, _, _ = max(options, key=lambda o: o[3])
    return pick, loss


def fit_ensemble(meter: Meter, members: list[TrialRecord], weights: dict[int, float],
                 oofs: dict[int, np.ndarray], y: np.ndarray, metric: Metric,
                 mask: np.ndarray, limited: Limited) -> dict[int, float]:
    """Drop members of ``weights`` (trial -> weight) while the measured ensemble is over the
    budget (see the module docstring); returns the weights kept, renormalised."""
    limits = meter.limits
    recs = {r.number: r for r in members}
    limited.families = {r.number: r.family for r in members}
    kept = dict(weights)
    limited.loss_before = limited.loss_after = metric.loss(
        y[mask], _blend(oofs, kept)[mask])
    fig = meter.ensemble([recs[t] for t in kept], kept)
    limited.before = fig
    while limits.over(fig) and len(kept) > 1:
        pick, loss = _pick(limits, fig, kept, meter.alone, oofs, y, metric, mask)
        del kept[pick]
        fig = meter.ensemble([recs[t] for t in kept], kept)
        limited.loss_after = loss
        limited.dropped.append({"trial": pick, "family": recs[pick].family,
                                "weight": weights[pick],
                                "alone_p50_ms": meter.alone[pick]["p50_ms"],
                                "alone_size_mb": meter.alone[pick]["size_mb"],
                                "p50_ms": fig["p50_ms"], "size_mb": fig["size_mb"],
                                "cv_after": metric.to_score(loss)})
    limited.after = fig
    if limits.over(fig):
        # Its one member fitted alone when measured earlier: this measurement is slower.
        log.warning("the ensemble measures over the serving budget (%s) although its member "
                    "fitted alone when measured before; the machine is busier now, or the "
                    "budget is close to the model's latency", limits.text(fig))
    total = sum(kept.values())
    limited.weights = {t: w / total for t, w in kept.items()}
    return limited.weights


def without(model: Any, trial: int) -> Any:
    """``model`` (an Ensemble) without ``trial``'s members (a bagged member is several), the
    others' weights renormalised, preprocessing no member uses left out."""
    from mlwright.search.ensemble import Ensemble

    members = [dict(m) for m in model.members if m["trial"] != trial]
    total = sum(m["weight"] for m in members)
    for m in members:
        m["weight"] = m["weight"] / total
    styles = dict.fromkeys(m["style"] for m in members)
    return Ensemble({k: model.preps[k] for k in styles}, members, model.task, model.classes,
                    model.feature_names, model.threshold)


def fit_refit(meter: Meter, model: Any, weights: dict[int, float],
              oofs: dict[int, np.ndarray], y: np.ndarray, metric: Metric, mask: np.ndarray,
              limited: Limited) -> tuple[Any, dict[int, float]]:
    """The refit model measured itself; while over the budget (a refit on all rows grows
    other, often larger trees than the fold models the ensemble was measured as), members
    go by the same rule, their own costs scaled by refit / stand-in, measured again after
    each drop. Returns the model and its weights (trial -> weight)."""
    limits = meter.limits
    measured = meter.model
    kept = dict(weights)
    fig = limited.refit = measured(model)
    stand_in = limited.after
    scale = {d: fig[k] / stand_in[k] if stand_in.get(k) else 1.0
             for d, k in _DIM_KEY.items()}
    while limits.over(fig) and len(kept) > 1:
        pick, loss = _pick(limits, fig, kept, meter.alone, oofs, y, metric, mask, scale)
        del kept[pick]
        model = without(model, pick)
        fig = measured(model)
        limited.loss_after = loss
        limited.refit_dropped.append({"trial": pick, "family": limited.families.get(pick, ""),
                                      "weight": weights[pick], "p50_ms": fig["p50_ms"],
                                      "size_mb": fig["size_mb"],
                                      "cv_after": metric.to_score(loss)})
    limited.refit_after = fig
    if limits.over(fig):
        log.warning("the refit model measures over the serving budget (%s) with one member "
                    "left; its fold-0 model measured %s", limits.text(fig),
                    limits.text(stand_in))
    total = sum(kept.values())
    limited.weights = {t: w / total for t, w in kept.items()}
    return model, limited.weights

