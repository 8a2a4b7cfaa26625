"""`make quickstart`'s story, end to end, on a slice of telco_churn (about a minute).

The real commands run as subprocesses: train and register, serve on loopback, replay
traffic with labels, drift injected halfway, monitor, one pass of the loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STORY = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_the_quickstart_story_runs_to_its_end_on_a_slice(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(STORY), "--budget", "8", "--rows", "2000",
                           "--folder", "story"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    story = json.loads((tmp_path / "story" / "story.json").read_text())
    # Every live request was answered by the registered champion.
    for part in ("traffic_before", "traffic_after"):
        assert story[part]["rows"] == 400 and set(story[part]["versions"]) == {"1"}
    # Drift is found where it was injected, and only there.
    assert story["drifted_before"] == []
    assert sorted(story["drifted_after"]) == ["contract", "monthly_charges"]
    # The loop retrained and decided, with its evidence in the audit log.
    actions = [entry["action"] for entry in story["audit"]]
    assert actions[:2] == ["register", "retrain_started"]
    decision = story["audit"][-1]
    assert decision["action"] in {"promote", "refuse"} and decision["version"] == "2"
    evidence = decision["evidence"]
    assert {"comparison", "reasons"} <= set(evidence)
    # The server follows the champion alias: version 2 after a promotion, else still 1.
    assert story["served_version"] == ("2" if decision["action"] == "promote" else "1")
    for report in ("runs/v1/report.html", "runs/v1/model_card.md", "reports/profile.html",
                   "reports/monitor-before.html", "reports/monitor-after.html"):
        assert (tmp_path / "story" / report).stat().st_size > 0
