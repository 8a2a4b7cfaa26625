"""`python -m mlwright` runs the command line."""

from mlwright.cli import run

run()
