"""registry stage of the loop (see docs/architecture.md)."""
