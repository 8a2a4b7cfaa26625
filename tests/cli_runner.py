"""The mlwright command run in the test's own process (``main()`` with ``sys.argv`` set), for
tests that need what it printed and its exit code without a subprocess."""

from __future__ import annotations

import sys

import pytest

from mlwright.cli import main


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str], *, columns: int = 200) -> tuple[int, str, str]:
    """(exit code, stdout, stderr with its whitespace folded to single spaces)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr(sys, "argv", ["mlwright", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())
