"""``mlwright retrain`` and ``mlwright run``: the closed loop (issue 8)."""
