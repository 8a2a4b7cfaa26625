"""``mlwright models`` and ``mlwright reproduce``: the MLflow-backed registry (issue 5)."""
