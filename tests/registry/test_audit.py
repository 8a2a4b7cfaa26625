from __future__ import annotations

from pathlib import Path

from mlwright.registry.audit import AuditLog


def test_record_and_read_back_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'project.db').as_posix()}"
    log = AuditLog(url)
    first = log.record("promote", "churn", "2", from_version="1", actor="cli",
                       reason="better AUC", evidence={"auc": [0.81, 0.84]})
    log.record("refuse", "other", "5", actor="loop", reason="worse on slice gender=F")
    log.record("rollback", "churn", "1", from_version="2", actor="loop")
    assert first >= 1
    churn = AuditLog(url).entries("churn")  # a second handle sees the same table
    assert [e["action"] for e in churn] == ["promote", "rollback"]
    assert churn[0]["evidence"] == {"auc": [0.81, 0.84]}
    assert churn[0]["from_version"] == "1" and churn[0]["reason"] == "better AUC"
    assert churn[1]["evidence"] is None
    assert len(log.entries()) == 3
    assert [e["action"] for e in log.entries(limit=1)] == ["rollback"]


def test_evidence_is_strict_json(tmp_path: Path) -> None:
    """A non-finite live score (a poisoned label) is stored as null, not Infinity/NaN."""
    import json
    import sqlite3

    db = tmp_path / "project.db"
    log = AuditLog(f"sqlite:///{db.as_posix()}")
    log.record("keep", "prices", "1", evidence={"live": float("inf"), "drop": float("nan")})
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("select evidence from audit").fetchone()

    def refuse(token: str) -> None:
        raise ValueError(token)

    assert json.loads(text, parse_constant=refuse) == {"live": None, "drop": None}


def test_pages_come_newest_first_with_the_total(tmp_path: Path) -> None:
    """The dashboard's audit log: the database skips and limits, and a time range filters."""
    from mlwright.store import audit, open_database

    url = f"sqlite:///{(tmp_path / 'project.db').as_posix()}"
    log = AuditLog(url)
    for i in range(7):
        log.record("promote", "churn", str(i), actor="cli")
    log.record("promote", "other", "1", actor="cli")
    with open_database(url).begin() as conn:  # spread them in time: entry i at ts 1000 + i
        for i, row in enumerate(AuditLog(url).entries("churn")):
            conn.execute(audit.update().where(audit.c.id == row["id"]).values(ts=1000.0 + i))
    rows, total = log.page("churn", offset=0, limit=3)
    assert total == 7 and [r["version"] for r in rows] == ["6", "5", "4"]
    rows, total = log.page("churn", offset=6, limit=3)
    assert total == 7 and [r["version"] for r in rows] == ["0"]
    assert [r["version"] for r in log.entries("churn", since=1002, until=1004)] == \
        ["2", "3", "4"]
    rows, total = log.page("churn", limit=10, since=1005)
    assert total == 2 and [r["version"] for r in rows] == ["6", "5"]
    assert [r["version"] for r in log.entries("churn", limit=2)] == ["5", "6"]
