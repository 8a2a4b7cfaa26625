"""mlwright: the whole machine-learning loop on tabular data.

    >>> import mlwright as mw
    >>> df = mw.load("churn.csv")
    >>> report = mw.profile(df, target="churn")
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from mlwright.exceptions import MlwrightError

try:
    __version__ = version("mlwright")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# Public names, resolved on first use so that `import mlwright` stays light (serving and
# the CLI's --help must not pay for scikit-learn, LightGBM or Plotly).
_LAZY = {
    "load": "mlwright.data.sources",
    "profile": "mlwright.data.profile",
    "learn_contract": "mlwright.data.contract",
    "validate": "mlwright.data.contract",
    "Contract": "mlwright.data.contract",
    "fingerprint": "mlwright.data.fingerprint",
    "load_config": "mlwright.config",
    "train": "mlwright.api",
    "TrainResult": "mlwright.run",
    "AutoClassifier": "mlwright.search.estimators",
    "AutoRegressor": "mlwright.search.estimators",
    "evaluate": "mlwright.evaluate.report",
    "Evaluation": "mlwright.evaluate.report",
    "load_model": "mlwright.registry.core",
    "explain": "mlwright.evaluate.explain",
    "global_explanation": "mlwright.evaluate.explain",
}

__all__ = ["MlwrightError", "__version__", *_LAZY]

if TYPE_CHECKING:
    from mlwright.api import train
    from mlwright.config import load_config
    from mlwright.data.contract import Contract, learn_contract
    from mlwright.data.contract.validate import validate  # the function, not the submodule
    from mlwright.data.fingerprint import fingerprint
    from mlwright.data.profile import profile
    from mlwright.data.sources import load
    from mlwright.evaluate.explain import explain, global_explanation
    from mlwright.evaluate.report import Evaluation, evaluate
    from mlwright.registry.core import load_model
    from mlwright.run import TrainResult
    from mlwright.search.estimators import AutoClassifier, AutoRegressor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwright' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
