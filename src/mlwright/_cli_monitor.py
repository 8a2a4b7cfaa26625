"""``mlwright monitor``: drift, data quality and live performance (issue 7)."""
