"""``mlwright report``: rebuild a run's HTML report and model card (issue 4)."""
