"""scikit-learn's k-nearest neighbours and multilayer perceptron as ensemble members,
called past their wrappers: the same computation, without the per-call input checks.

``KNeighborsClassifier.predict_proba`` spends most of a one-row call outside the search
(validation twice, the dispatcher's checks, the training rows' norms recomputed); the MLP's
``predict_proba`` validates its input before two matrix products. Here:

* k-NN (brute force, Euclidean, distance weights): the very ``ArgKmin.compute`` call
  ``kneighbors`` makes (the training rows' squared norms computed once, by the function
  it calls for them), then scikit-learn's own ``_get_weights`` and its vote loop;
* MLP: the estimator's own ``_forward_pass_fast`` without its check, then the wrapper's
  reshaping.

The outputs are the estimators' own, bit for bit. A matrix the wrappers would refuse or
convert (not finite, another dtype, sparse for k-NN) goes to the estimator's own predict,
which answers it (or raises) as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FORWARD_ROWS", "DistanceNeighbors", "Perceptron"]


def _plain(X: Any) -> bool:
    """A dense, finite float64 matrix: what the wrappers' checks pass through unchanged."""
    return (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
            and bool(np.isfinite(X).all()))


class DistanceNeighbors:
    """``predict_proba`` / ``predict`` of a brute-force Euclidean k-NN with distance
    weights (mlwright's k-NN family), through the search its ``kneighbors`` runs."""

    def __init__(self, est: Any, regression: bool) -> None:
        from sklearn.metrics._pairwise_distances_reduction import ArgKmin
        from sklearn.metrics._pairwise_distances_reduction._dispatcher import (
            sqeuclidean_row_norms,
        )
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
        from sklearn.neighbors._base import _get_weights
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        expected = KNeighborsRegressor if regression else KNeighborsClassifier
        if type(est) is not expected or est.weights != "distance" or \
                est._fit_method != "brute" or est.effective_metric_ != "euclidean" or \
                est.effective_metric_params_ or getattr(est, "outputs_2d_", False):
            raise TypeError(f"{type(est).__name__} {est.weights} {est._fit_method} "
                            f"{est.effective_metric_}")
        fit_X = est._fit_X
        if not (isinstance(fit_X, np.ndarray) and fit_X.dtype == np.float64
                and fit_X.flags.c_contiguous):
            raise TypeError("training rows not a C-contiguous float64 array")
        self.est = est
        self.regression = regression
        self.argkmin = ArgKmin
        self.weights_of = _get_weights
        self.fit_X = fit_X
        # The norms EuclideanArgKmin computes for Y on every call (each row on its own:
        # the same values on any number of threads).
        self.fit_norms = np.asarray(sqeuclidean_row_norms(fit_X, _openmp_effective_n_threads()))
        self.k = int(est.n_neighbors)
        self.y = est._y
        self.n_classes = 0 if regression else len(est.classes_)
        self.native = est.predict if regression else est.predict_proba
        self.path = "knn-argkmin"

    def __call__(self, X: Any) -> np.ndarray:
        if not (_plain(X) and X.shape[1] == self.fit_X.shape[1]
                and self.argkmin.is_usable_for(X, self.fit_X, "euclidean")):
            return np.asarray(self.native(X))
        X = np.ascontiguousarray(X)
        # kneighbors(X): the same call (strategy "auto"), with the norms given.
        dist, ind = self.argkmin.compute(X=X, Y=self.fit_X, k=self.k, metric="euclidean",
                                         metric_kwargs={"Y_norm_squared": self.fit_norms},
                                         strategy="auto", return_distance=True)
        weights = self.weights_of(dist, "distance")
        if self.regression:  # KNeighborsRegressor.predict, one output
            _y = self.y.reshape((-1, 1))
            out = np.empty((dist.shape[0], 1), dtype=np.float64)
            out[:, 0] = np.sum(_y[ind, 0] * weights, axis=1) / np.sum(weights, axis=1)
            return out.ravel()
        # KNeighborsClassifier.predict_proba's vote loop.
        labels = self.y[ind]
        rows = np.arange(X.shape[0])
        proba = np.zeros((X.shape[0], self.n_classes))
        for i, idx in enumerate(labels.T):
            proba[rows, idx] += weights[:, i]
        proba /= proba.sum(axis=1)[:, np.newaxis]
        return proba


#: Rows per forward pass: every hidden layer holds rows x units float64 activations at once
#: (fertility's 63,664 test rows: 124 MB in one pass, 8 MB in these).
FORWARD_ROWS = 4096


class Perceptron:
    """``MLPClassifier.predict_proba`` / ``MLPRegressor.predict``: the estimator's own
    forward pass on a matrix its check would pass unchanged."""

    def __init__(self, est: Any, regression: bool) -> None:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        expected = MLPRegressor if regression else MLPClassifier
        if type(est) is not expected or any(c.dtype != np.float64 for c in est.coefs_):
            raise TypeError(type(est).__name__)
        self.est = est
        self.regression = regression
        self.n_features = int(est.n_features_in_)
        self.native = est.predict if regression else est.predict_proba
        self.path = "mlp-forward"

    def __call__(self, X: Any) -> np.ndarray:
        if not (_plain(X) and X.shape[1] == self.n_features):
            return np.asarray(self.native(X))
        if X.shape[0] > FORWARD_ROWS:
            return np.concatenate([self(X[i:i + FORWARD_ROWS])
                                   for i in range(0, X.shape[0], FORWARD_ROWS)])
        y_pred = self.est._forward_pass_fast(X, check_input=False)
        if self.regression:
            return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred
        if self.est.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return np.vstack([1 - y_pred, y_pred]).T if y_pred.ndim == 1 else y_pred
