"""The registry: MLflow registered models and versions, with mlwright's aliases
(champion/challenger), promotion history for rollback, an audit log, lineage and integrity.

A version is only ever created after its artifacts are completely logged, and it is created
together with the sha256 of every file (model-version tags, one database transaction), so a
training killed at any moment leaves no version that cannot be loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import IntegrityError, RegistryError
from mlwright.registry._store import (
    alias_lock,
    database_url_for,
    local_artifact_root,
    resolve_tracking_uri,
)
from mlwright.registry._store import (
    client as _client,
)
from mlwright.registry.model import LoadedModel
from mlwright.registry.versions import (
    CHALLENGER,
    CHAMPION,
    TAG_COMPLETE,
    TAG_HISTORY,
    TAG_MANIFEST,
    TAG_RUN_PATH,
    ModelVersionInfo,
    _info,
    _mlflow_error,
    parse_ref,
)
from mlwright.run import RunFolder, TrainResult

__all__ = ["CHALLENGER", "CHAMPION", "ModelVersionInfo", "Registry", "load_model",
           "parse_ref", "resolve_version"]

log = get_logger(__name__)

def _cache_root() -> str:
    return str(Path(tempfile.gettempdir()) / "mlwright-models")


class Registry:
    """mlwright's view of an MLflow registry (any tracking URI) plus the audit log.

    Args:
        tracking_uri: MLflow URI; default ``MLFLOW_TRACKING_URI``, else mlwright.toml's
            store, else ``sqlite:///.mlwright/mlflow.db`` (artifacts in ``.mlwright/artifacts``).
        database_url: the project database holding the audit table; default beside a
            sqlite store, else ``sqlite:///.mlwright/mlwright.db``.
    """

    def __init__(self, tracking_uri: str | None = None, *,
                 database_url: str | None = None) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.database_url = database_url_for(self.tracking_uri, database_url)
        self._audit: Any = None

    # -- plumbing ------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        return _client(self.tracking_uri)

    @property
    def audit(self) -> Any:
        if self._audit is None:
            from mlwright.registry.audit import AuditLog

            self._audit = AuditLog(self.database_url)
        return self._audit

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            return str(exp.experiment_id)
        try:
            return str(client.create_experiment(
                name, artifact_location=local_artifact_root(self.tracking_uri)))
        except MlflowException:  # created by a concurrent training in between
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def _ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(
                    name, description=f"Registered by mlwright for project {name!r}.")
            except MlflowException:  # a concurrent training created it first
                self.client.get_registered_model(name)

    def _version(self, name: str, version: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            known = self._version_numbers(name)
            hint = (f"Known versions: {', '.join(known)}." if known else
                    f"No model named {name!r} is registered; train one with 'mlwright train'.")
            raise RegistryError(f"Model {name!r} has no version {version!r}. {hint}") from exc

    def _version_numbers(self, name: str) -> list[str]:
        try:
            found = self.client.search_model_versions(f"name = '{name}'")
        except Exception:
            return []
        return sorted((str(v.version) for v in found), key=int)

    def _alias_version(self, name: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def _history(self, name: str) -> list[str]:
        model = self.client.get_registered_model(name)
        raw = (model.tags or {}).get(TAG_HISTORY)
        return [str(v) for v in json.loads(raw)] if raw else []

    def _set_history(self, name: str, history: list[str]) -> None:
        self.client.set_registered_model_tag(name, TAG_HISTORY, json.dumps(history[-50:]))

    # -- registering ---------------------------------------------------------------------

    def register(self, result: TrainResult, run_folder: str | Path, *, name: str,
                 config: dict[str, Any] | None = None, data_fingerprint: str | None = None,
                 alias: str | None = None, sample: Any = None,
                 trials: Any = None) -> ModelVersionInfo:
        """Log ``result`` as an MLflow run and register its model as a new version of ``name``.

        The first version becomes ``champion``; later ones ``challenger`` unless ``alias``
        says otherwise. ``run_folder`` is the folder ``result.save`` wrote (with any report
        files); ``sample`` (a few rows of the training table) becomes the input example;
        ``trials`` is the search's trials table, for a ``result`` without its live search
        (default: ``result.search``'s).
        """
        from mlflow.exceptions import MlflowException

        from mlwright.registry.tracking import end_orphaned_runs, end_run, log_training

        started = time.monotonic()
        run_folder = Path(run_folder)
        if not RunFolder(run_folder).has(RunFolder.MODEL):
            raise RegistryError(f"{run_folder} holds no {RunFolder.MODEL}; pass the folder "
                                f"that TrainResult.save wrote.")
        if data_fingerprint is None and getattr(result, "contract", None) is not None:
            data_fingerprint = getattr(result.contract, "fingerprint", None)
        logged = None
        try:
            experiment_id = self._experiment_id(name)
            end_orphaned_runs(self.client, experiment_id)
            logged = log_training(self.client, experiment_id, result, run_folder, name=name,
                                  config=config, data_fingerprint=data_fingerprint,
                                  sample=sample, trials=trials)
            self._ensure_model(name)
            params = dict(getattr(result, "params", {}) or {})
            tags = {TAG_MANIFEST: json.dumps(logged.manifest, sort_keys=True),
                    TAG_RUN_PATH: logged.run_path, TAG_COMPLETE: "true",
                    "mlwright.task": str(getattr(result.task, "value", result.task)),
                    "mlwright.metric": str(result.metric),
                    "mlwright.cv_score": repr(float(result.cv_score)),
                    "mlwright.target": str(result.target),
                    "mlwright.data_fingerprint": data_fingerprint or "",
                    "mlwright.seed": str(params.get("seed")),
                    "mlwright.train_params": json.dumps(params, default=str)[:90_000]}
            # One transaction: the version exists with its hashes, or not at all.
            mv = self.client.create_model_version(name, logged.source, run_id=logged.run_id,
                                                  tags=tags)
        except BaseException as exc:
            if logged is not None:  # logged, but no version: the run failed
                end_run(self.client, logged.run_id, "FAILED")
            if isinstance(exc, MlflowException):
                raise _mlflow_error(exc, f"Could not register {name!r} in "
                                    f"{self.tracking_uri}") from exc
            raise
        version = str(mv.version)
        evidence = {"metric": str(result.metric), "cv_score": float(result.cv_score),
                    "run_id": logged.run_id}
        try:
            with alias_lock(self.tracking_uri):  # two first trainings: one champion, not two
                if alias is None:
                    alias = (CHAMPION if self._alias_version(name, CHAMPION) is None
                             else CHALLENGER)
                self._set_alias(name, alias, version, actor="train",
                                reason="new version" if alias != CHAMPION else "first version"
                                if version == "1" else "registered as champion",
                                evidence=evidence, action="register")
        finally:  # the version exists and loads whether or not its alias could be set
            end_run(self.client, logged.run_id, "FINISHED")
        log.info("registered %s/%s (%s) in %.2f s (logging %.2f s)", name, version, alias,
                 time.monotonic() - started, logged.seconds)
        return self.show(f"{name}/{version}")

    # -- reading -------------------------------------------------------------------------

    def list(self, name: str | None = None) -> list[ModelVersionInfo]:
        """Every version (of ``name``, or of every model), newest first per model."""
        from mlflow.exceptions import MlflowException

        try:
            names = [name] if name else sorted(
                m.name for m in self.client.search_registered_models())
            infos: list[ModelVersionInfo] = []
            for model_name in names:
                versions = self.client.search_model_versions(f"name = '{model_name}'")
                aliases: dict[str, list[str]] = {}
                model = self.client.get_registered_model(model_name)
                for alias, v in (getattr(model, "aliases", {}) or {}).items():
                    aliases.setdefault(str(v), []).append(alias)
                for mv in sorted(versions, key=lambda v: -int(v.version)):
                    info = _info(mv)
                    info.aliases = sorted(aliases.get(info.version, info.aliases))
                    infos.append(info)
            return infos
        except MlflowException as exc:
            raise _mlflow_error(exc, f"Could not list models in {self.tracking_uri}") from exc

    def resolve(self, ref: str) -> tuple[str, str]:
        """(name, version) of ``ref``."""
        name, version, alias = parse_ref(ref)
        if version is not None:
            return name, version
        assert alias is not None
        found = self._alias_version(name, alias)
        if found is None:
            known = self._version_numbers(name)
            if not known:
                raise RegistryError(
                    f"No model named {name!r} is registered in {self.tracking_uri}; train "
                    f"one with 'mlwright train DATA --target COL --name {name}', or check "
                    f"the tracking URI (MLFLOW_TRACKING_URI, --store).")
            raise RegistryError(
                f"Model {name!r} has no version with the alias {alias!r} (versions: "
                f"{', '.join(known)}). Use NAME/VERSION, or set it with 'mlwright models "
                f"promote {name} VERSION'.")
        return name, found

    def show(self, ref: str) -> ModelVersionInfo:
        name, version = self.resolve(ref)
        info = _info(self._version(name, version))
        model = self.client.get_registered_model(name)
        info.aliases = sorted(a for a, v in (getattr(model, "aliases", {}) or {}).items()
                              if str(v) == info.version)
        return info

    def run_metrics(self, info: ModelVersionInfo) -> dict[str, float]:
        if not info.run_id:
            return {}
        try:
            return dict(self.client.get_run(info.run_id).data.metrics)
        except Exception:
            return {}

    def run_folder(self, ref: str) -> Path:
        """The version's run folder on this machine (report.html, model_card.md ...)."""
        name, version = self.resolve(ref)
        return self._run_folder(self._version(name, version))

    def lineage(self, ref: str, *, contract: bool = True) -> dict[str, Any]:
        """Where a version came from: data fingerprint, contract, config, code, run
        (``contract=False``: without loading the model to summarise its contract)."""
        info = self.show(ref)
        tags = info.tags
        run: Any = None
        if info.run_id:
            try:
                run = self.client.get_run(info.run_id)
            except Exception:
                run = None
        run_tags = dict(run.data.tags) if run is not None else {}
        params = dict(run.data.params) if run is not None else {}
        contract_summary = None
        if contract:
            try:
                c = self.load(f"{info.name}/{info.version}").contract
                contract_summary = {"features": len(c.feature_names), "rows": c.n_rows,
                                    "target": c.target.name if c.target else None,
                                    "fingerprint": c.fingerprint}
            except Exception as exc:  # lineage of a broken version is still worth showing
                contract_summary = {"error": str(exc)}
        return {
            "name": info.name, "version": info.version, "aliases": info.aliases,
            "status": info.status, "run_id": info.run_id,
            "experiment_id": run.info.experiment_id if run is not None else None,
            "run_status": run.info.status if run is not None else None,
            "created": info.created, "source": info.source,
            "data_fingerprint": info.data_fingerprint,
            "target": tags.get("mlwright.target"), "task": info.task,
            "metric": info.metric, "cv_score": info.cv_score,
            "seed": tags.get("mlwright.seed"),
            "train_params": json.loads(tags.get("mlwright.train_params", "{}")),
            "config": {k.removeprefix("config."): v for k, v in params.items()
                       if k.startswith("config.")},
            "git_commit": run_tags.get("mlflow.source.git.commit"),
            "git_dirty": run_tags.get("mlwright.git_dirty"),
            "mlwright_version": run_tags.get("mlwright.version"),
            "contract": contract_summary,
        }

    def diff(self, name: str, v1: str, v2: str) -> dict[str, Any]:
        """What differs between two versions: scores, run metrics, params, data, contract."""
        a, b = self.show(f"{name}/{v1}"), self.show(f"{name}/{v2}")
        runs = []
        for info in (a, b):
            try:
                runs.append(self.client.get_run(info.run_id) if info.run_id else None)
            except Exception:
                runs.append(None)
        pa = dict(runs[0].data.params) if runs[0] is not None else {}
        pb = dict(runs[1].data.params) if runs[1] is not None else {}
        ma = dict(runs[0].data.metrics) if runs[0] is not None else {}
        mb = dict(runs[1].data.metrics) if runs[1] is not None else {}
        params = {k: (pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb))
                  if pa.get(k) != pb.get(k) and not k.startswith("train.n_")}
        metrics = {k: (ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb))
                   if not k.startswith("time_")}
        contract: dict[str, Any] = {}
        try:
            ca, cb = self.load(a.ref).contract, self.load(b.ref).contract
            fa, fb = set(ca.feature_names), set(cb.feature_names)
            contract = {"added": sorted(fb - fa), "removed": sorted(fa - fb),
                        "kind_changed": sorted(n for n in fa & fb
                                               if ca.column(n).kind != cb.column(n).kind)}
        except Exception as exc:
            contract = {"error": str(exc)}
        return {"name": name, "v1": a.to_dict(), "v2": b.to_dict(),
                "same_data": a.data_fingerprint == b.data_fingerprint,
                "params": params, "metrics": metrics, "contract": contract}

    # -- loading -------------------------------------------------------------------------

    def _run_folder(self, mv: Any) -> Path:
        """The version's run folder on this machine: in place for a local artifact store,
        else downloaded once into a cache (checked again on every load)."""
        from urllib.parse import unquote, urlparse

        run_path = mv.tags.get(TAG_RUN_PATH, "artifacts/run")
        uri = f"{mv.source.rstrip('/')}/{run_path}"
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        if parsed.scheme == "" and Path(uri).exists():
            return Path(uri)
        import mlflow.artifacts

        key = hashlib.sha1(f"{self.tracking_uri}|{mv.source}".encode()).hexdigest()[:16]
        cache = Path(_cache_root()) / key
        if cache.exists():
            return cache
        partial = cache.with_name(f"{key}.{os.getpid()}.partial")
        partial.mkdir(parents=True, exist_ok=True)
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(partial),
                                                   tracking_uri=self.tracking_uri)
        import shutil

        with contextlib.suppress(OSError):  # another process cached it first
            os.replace(path, cache)
        shutil.rmtree(partial, ignore_errors=True)
        return cache

    def load(self, ref: str) -> LoadedModel:
        """The version's model, every file checked against the hashes registered with it."""
        from mlflow.exceptions import MlflowException

        name, version = self.resolve(ref)
        mv = self._version(name, version)
        info = _info(mv)
        if info.status != "ready":
            raise RegistryError(
                f"{name}/{version} is incomplete: it has no recorded artifact hashes (it was "
                f"not registered by mlwright, or its registration did not finish). Register "
                f"it again with 'mlwright train', or delete it with 'mlwright models delete "
                f"{name} {version}'.")
        expected = json.loads(mv.tags[TAG_MANIFEST])
        model = self.client.get_registered_model(name)
        aliases = sorted(a for a, v in (getattr(model, "aliases", {}) or {}).items()
                         if str(v) == version)
        for attempt in (0, 1):
            try:
                folder = self._run_folder(mv)
            except MlflowException as exc:
                raise _mlflow_error(exc, f"Could not download {name}/{version}") from exc
            try:
                return LoadedModel.from_folder(folder, expected=expected, name=name,
                                               version=version, run_id=mv.run_id,
                                               aliases=aliases)
            except IntegrityError:
                # A downloaded copy may be stale or partial: fetch it once more, then refuse.
                if attempt or not str(folder).startswith(_cache_root()):
                    raise
                import shutil

                shutil.rmtree(folder, ignore_errors=True)
        raise AssertionError("unreachable")

    # -- aliases -------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str, *, actor: str = "",
                  reason: str = "", evidence: dict[str, Any] | None = None,
                  action: str | None = None) -> None:
        """Point ``alias`` at ``version`` (audited). A new champion remembers the previous
        one for :meth:`rollback` and stops being the challenger."""
        with alias_lock(self.tracking_uri):
            self._set_alias(name, alias, version, actor=actor, reason=reason,
                            evidence=evidence, action=action)

    def _put_alias(self, name: str, alias: str, version: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.set_registered_model_alias(name, alias, version)
        except MlflowException:
            # A store without alias_lock's file lock: a concurrent writer inserted the
            # alias between MLflow's read and its insert. The row exists now; update it.
            if self._alias_version(name, alias) is None:
                raise
            self.client.set_registered_model_alias(name, alias, version)

    def _set_alias(self, name: str, alias: str, version: str, *, actor: str,
                   reason: str, evidence: dict[str, Any] | None,
                   action: str | None) -> None:
        from mlflow.exceptions import MlflowException

        version = str(version)
        mv = self._version(name, version)
        if alias == CHAMPION and _info(mv).status != "ready":
            raise RegistryError(f"{name}/{version} is incomplete and cannot be champion.")
        previous = self._alias_version(name, alias)
        try:
            if alias == CHAMPION and previous is not None and previous != version:
                self._set_history(name, [*self._history(name), previous])
            self._put_alias(name, alias, version)
            if alias == CHAMPION and self._alias_version(name, CHALLENGER) == version:
                self.client.delete_registered_model_alias(name, CHALLENGER)
        except MlflowException as exc:
            raise _mlflow_error(exc, f"Could not set {name}@{alias} -> {version}") from exc
        self.audit.record(action or ("promote" if alias == CHAMPION else "set_alias"), name,
                          version, from_version=previous, actor=actor,
                          reason=reason or f"{alias} -> {version}",
                          evidence={"alias": alias, **(evidence or {})})

    def promote(self, name: str, version: str, *, actor: str = "cli", reason: str = "",
                evidence: dict[str, Any] | None = None) -> str | None:
        """Make ``version`` the champion; returns the previous champion (kept for rollback)."""
        with alias_lock(self.tracking_uri):
            previous = self._alias_version(name, CHAMPION)
            if previous == str(version):
                raise RegistryError(f"{name}/{version} is already the champion; nothing to do.")
            self._set_alias(name, CHAMPION, str(version), actor=actor, reason=reason,
                            evidence=evidence, action="promote")
        return previous

    def rollback(self, name: str, *, actor: str = "cli", reason: str = "",
                 evidence: dict[str, Any] | None = None) -> str:
        """Give the champion alias back to the previous champion; returns that version."""
        from mlflow.exceptions import MlflowException

        with alias_lock(self.tracking_uri):
            current = self._alias_version(name, CHAMPION)
            history = self._history(name)
            existing = set(self._version_numbers(name))
            while history and (history[-1] not in existing or history[-1] == current):
                history.pop()
            if not history:
                raise RegistryError(
                    f"Model {name!r} has no earlier champion to roll back to (champion: "
                    f"{current}). Promote a specific version with 'mlwright models promote "
                    f"{name} VERSION'.")
            target = history.pop()
            try:
                self._put_alias(name, CHAMPION, target)
                self._set_history(name, history)
            except MlflowException as exc:
                raise _mlflow_error(exc, f"Could not roll {name} back to {target}") from exc
            self.audit.record("rollback", name, target, from_version=current, actor=actor,
                              reason=reason or f"rollback from {current}",
                              evidence={"alias": CHAMPION, **(evidence or {})})
        return target

    def delete(self, name: str, version: str, *, actor: str = "cli", reason: str = "") -> None:
        """Delete a version (never the champion: promote or roll back first)."""
        from mlflow.exceptions import MlflowException

        with alias_lock(self.tracking_uri):  # never delete a version being promoted
            version = str(version)
            self._version(name, version)
            if self._alias_version(name, CHAMPION) == version:
                raise RegistryError(
                    f"{name}/{version} is the champion and is not deleted; promote another "
                    f"version first ('mlwright models promote {name} VERSION').")
            try:
                self.client.delete_model_version(name, version)
                self._set_history(name, [v for v in self._history(name) if v != version])
            except MlflowException as exc:
                raise _mlflow_error(exc, f"Could not delete {name}/{version}") from exc
            self.audit.record("delete", name, version, actor=actor, reason=reason)


_registries: dict[tuple[str, str | None], Registry] = {}


def _registry(tracking_uri: str | None) -> Registry:
    key = (resolve_tracking_uri(tracking_uri), None)
    if key not in _registries:
        _registries[key] = Registry(key[0])
    return _registries[key]


def load_model(ref: str, *, tracking_uri: str | None = None) -> LoadedModel:
    """Load ``name@alias``, ``name/3`` or ``name`` (its champion), hashes verified.

    >>> model = mw.load_model("churn@champion")
    """
    return _registry(tracking_uri).load(ref)


def resolve_version(ref: str, *, tracking_uri: str | None = None) -> str:
    """The version number ``ref`` points at now (cheap: one registry query)."""
    return _registry(tracking_uri).resolve(ref)[1]
