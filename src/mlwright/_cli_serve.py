"""``mlwright serve`` and ``mlwright keys``: the REST API (issue 6)."""
