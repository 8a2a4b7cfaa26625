"""The model-family suite: every :class:`~mlwright.search._base.ModelFamily` builds, fits and
predicts a small real slice of the public suite, for each task it supports, the way the
search engine calls it (preprocessed by its own style, early stopping on a validation part,
a trial deadline)."""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from mlwright.data.kinds import Task, infer_kinds
from mlwright.search._base import FAMILIES, FitContext, FitInfo, ModelFamily
from mlwright.search.ensemble import full_proba, predict_values

__all__ = ["SLICES", "FamilyConformance", "prepared_slice"]

#: task -> (suite table, target, rows): small and real (categoricals, NaN, 2 / 4+ classes).
SLICES: dict[Task, tuple[str, str, int]] = {
    # 600, not fewer: on 300 training rows the MLP's inner early-stopping split (30 rows,
    # scored by accuracy) stops it after ~10 epochs, no better than the prior.
    Task.BINARY: ("telco_churn", "churn", 600),
    Task.MULTICLASS: ("hpc_jobs", "class", 400),
    Task.REGRESSION: ("diamonds", "price", 400),
}
_VALID = 0.25  # share of the slice held out for early stopping and scoring


@functools.cache
def prepared_slice(task: Task, style: str) -> tuple[Any, np.ndarray, Any, np.ndarray, FitContext]:
    """(X_train, y_train, X_valid, y_valid, context) of the task's slice, preprocessed as the
    engine does for ``style`` ("tree" or "linear"); classes encoded 0..k-1."""
    from mlwright.datasets import load_suite
    from mlwright.prep import build_preprocessor, plan_columns

    name, target, rows = SLICES[task]
    df = load_suite(name, nrows=rows)
    # Shuffled: the slice keeps the table's order, and hpc_jobs is ordered by class.
    df = df.iloc[np.random.default_rng(0).permutation(len(df))].reset_index(drop=True)
    X = df.drop(columns=target)
    if task is Task.REGRESSION:
        y = df[target].to_numpy(dtype=float)
        n_classes = 0
    else:
        classes = sorted(df[target].unique())
        y = df[target].map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
        n_classes = len(classes)
    cut = int(len(df) * (1 - _VALID))
    plan = plan_columns(infer_kinds(X))
    prep = build_preprocessor(plan, style, task=task)
    Xtr = prep.fit_transform(X.iloc[:cut], y[:cut])
    Xva = prep.transform(X.iloc[cut:])
    ctx = FitContext(task=task, n_classes=n_classes, n_rows=cut, n_features=Xtr.shape[1],
                     n_ordinal=plan.n_ordinal if style == "tree" else 0,
                     sparse=sp.issparse(Xtr), has_text=plan.has_text, seed=0)
    return Xtr, y[:cut], Xva, y[cut:], ctx


def _params(family: ModelFamily, ctx: FitContext) -> dict[str, Any]:
    """The parameters of the family's first default configuration, drawn as the engine draws
    them: the configuration is a point of the Optuna space, enqueued, then suggested."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    defaults = family.default_configs(ctx)
    if defaults:
        study.enqueue_trial(dict(defaults[0]))
    return family.suggest(study.ask(), ctx)


def _predict(est: Any, X: Any, ctx: FitContext) -> np.ndarray:
    if ctx.task is Task.REGRESSION:
        return predict_values(est, X)
    return full_proba(est, X, ctx.n_classes)


def _better_than_constant(y: np.ndarray, pred: np.ndarray, y_train: np.ndarray,
                          ctx: FitContext) -> bool:
    """The model beats predicting the training prior (mean, or class shares) on log loss /
    squared error: any family that learned something does."""
    if ctx.task is Task.REGRESSION:
        return float(np.mean((y - pred) ** 2)) < float(np.mean((y - y_train.mean()) ** 2))
    prior = np.bincount(y_train, minlength=ctx.n_classes) / len(y_train)
    eps = 1e-15
    model = -np.mean(np.log(np.clip(pred[np.arange(len(y)), y], eps, 1)))
    constant = -np.mean(np.log(np.clip(prior[y], eps, 1)))
    return bool(model < constant)


class FamilyConformance:
    """Behaviour every model family must have. Needs a ``family`` fixture (an instance)."""

    def test_declares_itself(self, family: ModelFamily) -> None:
        assert isinstance(family.name, str) and family.name
        assert family.prep_style in ("tree", "linear")
        assert family.relative_cost > 0 and np.isfinite(family.relative_cost)
        if family.name in FAMILIES:  # registered under its own name
            assert isinstance(family, FAMILIES.get(family.name))

    @pytest.mark.slow
    @pytest.mark.parametrize("task", list(SLICES), ids=lambda t: t.value)
    def test_fits_and_predicts_a_real_slice(self, family: ModelFamily, task: Task) -> None:
        if not family.is_available():
            pytest.fail(f"{family.requires} is not installed: {family.name} cannot be tested "
                        f"(pip install {family.requires})")
        Xtr, ytr, Xva, yva, ctx = prepared_slice(task, family.prep_style)
        if not family.supports(ctx):
            pytest.skip(f"{family.name} does not support {task.value}")
        assert family.cost(ctx) > 0
        est = family.build(_params(family, ctx), ctx)
        assert hasattr(est, "get_params"), "build() must return a scikit-learn estimator"
        info = family.fit(est, Xtr, ytr, ctx, X_val=Xva, y_val=yva,
                          deadline=time.monotonic() + 120)
        assert isinstance(info, FitInfo)
        pred = _predict(est, Xva, ctx)
        if task is Task.REGRESSION:
            assert pred.shape == (len(yva),) and np.isfinite(pred).all()
        else:
            assert pred.shape == (len(yva), ctx.n_classes)
            assert np.allclose(pred.sum(axis=1), 1.0) and (pred >= 0).all()
            # Labels are 0..k-1 as the engine encodes them, in order.
            seen = np.asarray(est.classes_)
            assert list(seen) == sorted(set(ytr.tolist()))
        assert _better_than_constant(yva, pred, ytr, ctx), (
            f"{family.name} does no better than the training prior on {task.value}")
        # The refit on all rows gets buildable parameters from what the folds learned.
        refit = family.refit_params(_params(family, ctx), [info, info], ctx)
        assert isinstance(refit, dict)
        family.build(refit, ctx)

    def test_a_passed_deadline_still_gives_a_model(self, family: ModelFamily) -> None:
        """The engine stops trials at their deadline: a fit that starts too late must still
        return a model that predicts (with the rounds it has), not raise or hang."""
        if not family.is_available():
            pytest.fail(f"{family.requires} is not installed: {family.name} cannot be tested "
                        f"(pip install {family.requires})")
        Xtr, ytr, Xva, yva, ctx = prepared_slice(Task.BINARY, family.prep_style)
        if not family.supports(ctx):
            pytest.skip(f"{family.name} does not support binary tasks")
        est = family.build(_params(family, ctx), ctx)
        family.fit(est, Xtr, ytr, ctx, X_val=Xva, y_val=yva, deadline=0.0)
        pred = _predict(est, Xva, ctx)
        assert pred.shape == (len(yva), 2) and np.isfinite(pred).all()

    def test_search_space_draws_buildable_parameters(self, family: ModelFamily) -> None:
        import optuna

        if not family.is_available():
            pytest.fail(f"{family.requires} is not installed: {family.name} cannot be tested "
                        f"(pip install {family.requires})")
        _, _, _, _, ctx = prepared_slice(Task.BINARY, family.prep_style)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(3):
            trial = study.ask()
            params = family.suggest(trial, ctx)
            assert isinstance(params, dict)
            assert hasattr(family.build(params, ctx), "fit")
            study.tell(trial, 0.0)
        # Defaults are points of the space: the engine enqueues them, and suggest() must
        # draw exactly them.
        for config in family.default_configs(ctx):
            study.enqueue_trial(dict(config))
            trial = study.ask()
            family.suggest(trial, ctx)
            assert {k: trial.params[k] for k in config if k in trial.params} == config, (
                f"{family.name} default {config} is not what its suggest() draws")
            study.tell(trial, 0.0)
