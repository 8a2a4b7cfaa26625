"""Dask execution (optional extra ``mlwright[cluster]``): a search's trials on a cluster's
workers (:class:`DaskTrials`), Parquet datasets scored partition by partition
(:func:`score_dataset`); :func:`connect` opens the client. Spark scoring needs nothing of
mlwright's own: the registered model is an MLflow pyfunc (docs/cluster.md).

Nothing here is imported unless a cluster is asked for (``--cluster``, ``cluster =``).
"""

from mlwright.cluster.client import connect
from mlwright.cluster.scoring import score_dataset
from mlwright.cluster.trials import DaskTrials

__all__ = ["DaskTrials", "connect", "score_dataset"]
