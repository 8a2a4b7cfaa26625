"""Issue 18, point 4: the registered model scores in Spark (pyspark local mode, Java 17)
through ``mlflow.pyfunc.spark_udf(..., env_manager="local")``, equal to the pyfunc's own
predictions, as docs/cluster.md shows. Real data: telco_churn rows the model did not see
(benchmarks/cluster.py runs 100,000)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import mlwright as mw
from mlwright.datasets import load_suite
from mlwright.registry import Registry

pytestmark = pytest.mark.slow  # a JVM, and a model registered in MLflow


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession  # mlwright[spark], in the dev extra

    # Spark's Python workers run this interpreter (they import mlwright and the model's
    # libraries), on loopback.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (SparkSession.builder.master("local[1]").appName("mlwright-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.local.dir", str(tmp_path_factory.mktemp("spark")))
               .getOrCreate())
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame]:
    """(tracking URI of a registry holding churn@champion, rows it did not train on)."""
    data = load_suite("telco_churn", nrows=1600)
    result = mw.train(data.head(600), "churn", n_trials=3, families=["lightgbm", "linear"],
                      seed=0, n_jobs=1)
    root = tmp_path_factory.mktemp("spark-registry")
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    Registry(uri).register(result, result.save(root / "run"), name="churn")
    return uri, data.iloc[600:].drop(columns="churn").reset_index(drop=True)


def test_spark_udf_equals_the_pyfunc(spark, registered, monkeypatch):
    import mlflow
    import mlflow.pyfunc
    from pyspark.sql.functions import col, struct

    uri, rows = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    udf = mlflow.pyfunc.spark_udf(spark, "models:/churn@champion", env_manager="local")
    frame = spark.createDataFrame(rows)
    scored = frame.withColumn("scored", udf(struct(*[col(c) for c in rows.columns])))
    got = scored.select("scored.*").toPandas()
    expected = mlflow.pyfunc.load_model("models:/churn@champion").predict(rows)
    assert len(got) == len(rows) == 1000
    assert list(got.columns) == ["prediction", "proba_No", "proba_Yes"]
    pd.testing.assert_frame_equal(got, expected)
