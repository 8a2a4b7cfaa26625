"""The one window parser (monitor and loop) and the records a window selects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlwright.exceptions import ConfigError
from mlwright.store import WindowSpec, open_database, parse_window, predictions, window_filter


@pytest.mark.parametrize(("given", "rows", "seconds"), [
    (5000, 5000, None), ("5000", 5000, None), (" 200 ", 200, None),
    ("1d", None, 86400.0), ("12h", None, 43200.0), ("30m", None, 1800.0),
    ("45s", None, 45.0), ("2w", None, 1209600.0), ("1.5h", None, 5400.0), ("6 h", None, 21600.0),
])
def test_counts_and_durations(given: str | int, rows: int | None, seconds: float | None
                              ) -> None:
    spec = parse_window(given)
    assert (spec.rows, spec.seconds) == (rows, seconds)
    assert spec.text == str(given).strip()
    assert parse_window(spec) is spec


@pytest.mark.parametrize("bad", ["0", 0, "-5", "0h", "1x", "", "1 day", "h", "1e3", "5000.5"])
def test_bad_windows_say_what_is_expected(bad: str | int) -> None:
    with pytest.raises(ConfigError) as err:
        parse_window(bad)
    message = str(err.value)
    assert "monitor.window must be a positive row count (5000) or a duration" in message
    assert f"got {bad!r}" in message


def test_the_error_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^loop\.window must be"):
        parse_window("soon", field="loop.window")


def _count(engine: object, where: list[object] | None) -> int:
    assert where is not None
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).where(*where)).scalar())


def test_a_row_window_holds_exactly_n_records_and_a_duration_ends_at_the_last_record(
        tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{(tmp_path / 'w.db').as_posix()}")
    rows = []
    for k in range(10):  # ten 3-record requests, one a minute; a shadow copy of each
        for role in ("champion", "shadow"):
            rows += [{"request_id": f"r{k}", "row": r, "ts": 1000.0 + 60 * k, "model": "m",
                      "version": "1", "role": role, "inputs": "{}", "status": 200}
                     for r in range(3)]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    # Exactly N records (issue 14: a window of 10 read 51), the latest by time then log id.
    for n in (1, 4, 10, 30):
        assert _count(engine, window_filter(engine, "m", parse_window(n))) == n
    assert _count(engine, window_filter(engine, "m", parse_window(100))) == 30
    assert _count(engine, window_filter(engine, "m", parse_window("3m"))) == 9
    assert _count(engine, window_filter(engine, "m", parse_window("3m"), end=1000.0 + 120)) == 9
    assert window_filter(engine, "other", parse_window("1d")) is None
    assert _count(engine, window_filter(engine, "m", WindowSpec("4", rows=4),
                                        roles=("shadow",))) == 4
