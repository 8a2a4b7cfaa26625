"""Register, load, aliases, promotion/rollback with audit, integrity (sqlite store)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from registry_helpers import sqlite_uri

import mlwright as mw
from mlwright.exceptions import IntegrityError, RegistryError
from mlwright.registry import Registry, load_model, parse_ref, resolve_version


def test_parse_ref() -> None:
    assert parse_ref("churn@champion") == ("churn", None, "champion")
    assert parse_ref("churn/3") == ("churn", "3", None)
    assert parse_ref("churn") == ("churn", None, "champion")
    assert parse_ref("models:/churn@challenger") == ("churn", None, "challenger")
    with pytest.raises(RegistryError, match="NAME@ALIAS"):
        parse_ref("churn@")


@pytest.fixture(scope="module")
def two_versions(registry: Registry, small_run):
    result, folder, _ = small_run
    v1 = registry.register(result, folder, name="churn", config={"train": {"seed": 0}})
    v2 = registry.register(result, folder, name="churn", config={"train": {"seed": 0}})
    return v1, v2


def test_first_version_champion_then_challenger(two_versions, registry: Registry) -> None:
    v1, v2 = two_versions
    assert (v1.version, v1.aliases) == ("1", ["champion"])
    assert (v2.version, v2.aliases) == ("2", ["challenger"])
    assert all(i.status == "ready" for i in registry.list("churn"))
    assert resolve_version("churn", tracking_uri=registry.tracking_uri) == "1"
    assert resolve_version("churn@challenger", tracking_uri=registry.tracking_uri) == "2"
    assert resolve_version("churn/2", tracking_uri=registry.tracking_uri) == "2"


def test_load_model_predicts_like_the_trained_model(two_versions, registry, small_run,
                                                    telco_small) -> None:
    result, _, _ = small_run
    loaded = mw.load_model("churn@champion", tracking_uri=registry.tracking_uri)
    assert (loaded.name, loaded.version, loaded.aliases) == ("churn", "1", ["champion"])
    assert loaded.run_id == two_versions[0].run_id
    X = telco_small.drop(columns="churn").head(50)
    np.testing.assert_allclose(loaded.model.predict_proba(X), result.predict_proba(X))
    assert loaded.contract.fingerprint == result.contract.fingerprint


def test_run_has_params_metrics_lineage_and_evidence(two_versions, registry) -> None:
    v1 = two_versions[0]
    run = registry.client.get_run(v1.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.seed"] == "0"
    assert run.data.params["config.train.seed"] == "0"
    assert run.data.metrics["cv_roc_auc"] == pytest.approx(v1.cv_score)
    assert run.data.tags["mlwright.data_fingerprint"].startswith("sha256:")
    names = {a.path for a in registry.client.list_artifacts(v1.run_id)}
    assert {"leaderboard.csv", "trials.csv", "contract.json", "lineage.json",
            "model"} <= names
    lineage = registry.lineage("churn/1")
    assert lineage["data_fingerprint"] == v1.data_fingerprint
    assert lineage["seed"] == "0" and lineage["target"] == "churn"
    assert lineage["contract"]["features"] == 19
    assert lineage["train_params"]["n_trials"] == 3


def test_promote_and_rollback_move_aliases_and_are_audited(two_versions, registry) -> None:
    previous = registry.promote("churn", "2", actor="tester", reason="better",
                                evidence={"auc": 0.9})
    assert previous == "1"
    assert registry.resolve("churn@champion") == ("churn", "2")
    # The new champion is no longer the challenger.
    assert registry.show("churn/2").aliases == ["champion"]
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("churn", "2")
    back = registry.rollback("churn", actor="tester", reason="regression")
    assert back == "1" and registry.resolve("churn")[1] == "1"
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback("churn", actor="tester")
    entries = registry.audit.entries("churn")
    actions = [(e["action"], e["version"], e["from_version"]) for e in entries]
    assert actions[-2:] == [("promote", "2", "1"), ("rollback", "1", "2")]
    assert entries[-2]["evidence"]["auc"] == 0.9 and entries[-2]["actor"] == "tester"
    assert [a for a, _, _ in actions[:2]] == ["register", "register"]


def test_diff_and_delete(two_versions, registry, small_run) -> None:
    d = registry.diff("churn", "1", "2")
    assert d["same_data"] is True
    assert d["contract"] == {"added": [], "removed": [], "kind_changed": []}
    assert "cv_roc_auc" in d["metrics"]
    champion = registry.resolve("churn")[1]
    with pytest.raises(RegistryError, match="is the champion"):
        registry.delete("churn", champion)
    result, folder, _ = small_run
    v3 = registry.register(result, folder, name="churn")
    registry.delete("churn", v3.version, actor="tester", reason="mistake")
    assert v3.version not in [i.version for i in registry.list("churn")]
    assert registry.audit.entries("churn")[-1]["action"] == "delete"
    with pytest.raises(RegistryError, match="has no version"):
        registry.load(f"churn/{v3.version}")


def test_tampered_artifact_is_refused(small_run, tmp_path: Path) -> None:
    result, folder, _ = small_run
    reg = Registry(sqlite_uri(tmp_path))
    info = reg.register(result, folder, name="tamper")
    stored = Path(info.source.removeprefix("file://")) / "artifacts" / "run"
    assert (stored / "model.joblib").exists()
    # Edit both the pickle and the folder's own manifest: the registry's hashes still win.
    with (stored / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    manifest = json.loads((stored / "manifest.json").read_text())
    from mlwright.run import file_sha256

    manifest["model.joblib"] = file_sha256(stored / "model.joblib")
    (stored / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"model\.joblib does not match"):
        load_model("tamper", tracking_uri=reg.tracking_uri)
    (stored / "contract.json").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        reg.load("tamper/1")


def test_version_without_hashes_is_flagged_and_refused(small_run, tmp_path: Path) -> None:
    result, folder, _ = small_run
    reg = Registry(sqlite_uri(tmp_path))
    reg.register(result, folder, name="partial")
    # A version created outside mlwright (no hashes recorded): listed, flagged, not loaded.
    good = reg.show("partial/1")
    reg.client.create_model_version("partial", good.source, run_id=good.run_id)
    status = {i.version: i.status for i in reg.list("partial")}
    assert status == {"1": "ready", "2": "incomplete"}
    with pytest.raises(RegistryError, match="incomplete"):
        reg.load("partial/2")
    with pytest.raises(RegistryError, match="incomplete and cannot be champion"):
        reg.promote("partial", "2")


def test_unknown_model_and_alias_errors(registry, two_versions) -> None:
    with pytest.raises(RegistryError, match="No model named 'nope'"):
        registry.resolve("nope")
    with pytest.raises(RegistryError, match="no version with the alias 'staging'"):
        registry.resolve("churn@staging")
    with pytest.raises(RegistryError, match="Known versions"):
        registry.show("churn/99")


def test_evaluation_json_metrics_with_intervals(small_run, tmp_path: Path) -> None:
    result, folder, _ = small_run
    run = tmp_path / "run"
    shutil.copytree(folder, run)
    (run / "evaluation.json").write_text(json.dumps(
        {"test": {"roc_auc": {"value": 0.83, "low": 0.8, "high": 0.86}},
         "accuracy": {"estimate": 0.79, "ci": [0.75, 0.82]}, "note": "text is skipped"}))
    reg = Registry(sqlite_uri(tmp_path))
    info = reg.register(result, run, name="evaluated")
    metrics = reg.client.get_run(info.run_id).data.metrics
    assert metrics["eval.test.roc_auc.value"] == pytest.approx(0.83)
    assert metrics["eval.test.roc_auc.low"] == pytest.approx(0.8)
    assert metrics["eval.accuracy.ci.high"] == pytest.approx(0.82)
    assert "evaluation.json" in {a.path for a in reg.client.list_artifacts(info.run_id)}


def test_register_with_non_finite_fold_scores(small_run, tmp_path: Path) -> None:
    """A fold scored inf (a poisoned regression label overflows the squared error) used to
    fail registration in statistics.stdev ("'float' object has no attribute 'numerator'"):
    the spread is that of the finite folds, and the inf fold is not logged."""
    import copy

    result, folder, _ = small_run
    poisoned = copy.copy(result)
    poisoned.cv_scores = [0.8, float("inf"), 0.7, float("nan")]
    registry = Registry(sqlite_uri(tmp_path))
    info = registry.register(poisoned, folder, name="churn")
    metrics = registry.run_metrics(info)
    std = [v for k, v in metrics.items() if k.endswith("_std")]
    assert std == [pytest.approx(float(np.std([0.8, 0.7], ddof=1)))]
