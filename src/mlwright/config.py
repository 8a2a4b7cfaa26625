"""The ``mlwright.toml`` model: what a project trains on, how, and where it keeps things."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlwright.exceptions import ConfigError

__all__ = ["DataConfig", "EvaluateConfig", "LoopConfig", "MonitorConfig", "ProjectConfig",
           "ServeConfig", "StoreConfig", "TrainConfig", "load_config", "render_config"]

CONFIG_FILE = "mlwright.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    source: str = Field(description="path, SQLAlchemy URL or duckdb:/// URL of the training table")
    target: str = Field(description="the column to predict")
    table: str | None = Field(None, description="table name, for SQL and DuckDB sources")
    query: str | None = Field(None, description="SELECT statement, for SQL and DuckDB sources")
    sample: int | None = Field(None, gt=0, description="read a random sample of this many rows")


class TrainConfig(_Section):
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    metric: str = Field("auto", description="'auto' or a scikit-learn scorer name")
    time_budget: float = Field(60.0, gt=0, description="seconds for fit, ensembling and refit")
    seed: int = 0


class StoreConfig(_Section):
    root: Path = Field(Path(".mlwright"), description="the project's store folder")
    url: str | None = Field(
        None, description="one database URL for everything the project shares, e.g. "
        "postgresql://user@host/mlwright: the prediction log, feedback, keys, alerts, audit "
        "and loop state, and MLflow's runs and registry (in its own schema, mlflow); "
        "default: sqlite files in root")
    artifacts: str | None = Field(
        None, description="where MLflow keeps model files (a folder or URI every host "
        "reaches, e.g. a shared mount or s3://bucket/mlwright); default: root/artifacts")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: url, else MLFLOW_TRACKING_URI, else "
        "sqlite in root")
    database: str | None = Field(
        None, description="SQLAlchemy URL of the prediction log, feedback, events and audit "
        "tables; default: url, else sqlite in root")

    @field_validator("root")
    @classmethod
    def _not_empty(cls, v: Path) -> Path:
        if str(v).strip() == "":
            raise ValueError("store.root must be a folder path")
        return v

    @field_validator("url")
    @classmethod
    def _a_url(cls, v: str | None) -> str | None:
        if v is not None and "://" not in v:
            raise ValueError("store.url must be a database URL such as "
                             "postgresql://user@host:5432/mlwright (a folder goes in "
                             "store.root)")
        return v

    def with_option(self, store: str | Path | None) -> StoreConfig:
        """The store a command's ``--store`` names: a database URL (``postgresql://...``:
        everything shared goes there) or a folder (the sqlite store in it)."""
        if store is None or str(store) == "":
            return self
        if "://" in str(store):
            return self.model_copy(update={"url": str(store), "tracking_uri": None,
                                           "database": None})
        return self.model_copy(update={"root": Path(store), "url": None,
                                       "tracking_uri": None, "database": None})

    def resolved_tracking_uri(self) -> str:
        """The config's URI, else ``url`` (MLflow in its schema there), else
        ``MLFLOW_TRACKING_URI``, else ``sqlite:///ROOT/mlflow.db``."""
        import os

        if self.tracking_uri:
            return self.tracking_uri
        if self.url:
            from mlwright.store import mlflow_uri

            return mlflow_uri(self.url)
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{(self.root / 'mlflow.db').resolve().as_posix()}"

    def artifact_location(self) -> str:
        """Where MLflow keeps artifacts: ``artifacts``, else ROOT/artifacts."""
        if self.artifacts:
            return self.artifacts if "://" in self.artifacts else \
                Path(self.artifacts).resolve().as_uri()
        return (self.root / "artifacts").resolve().as_uri()

    def database_url(self) -> str:
        from mlwright.store import database_url

        return database_url(self.root, self.database or self.url)


class EvaluateConfig(_Section):
    test: str | None = Field(None, description="a held-out test table to score the model on")
    sensitive: list[str] = Field(default_factory=list,
                                 description="columns to report fairness slices for")
    fairness_threshold: float = Field(
        0.8, gt=0, le=1, description="flag a disparity ratio below this (the 4/5 rule)")
    bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for 95% intervals")


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    # Rows per model call: a member's fixed cost per call (~0.2 ms each for XGBoost and
    # CatBoost) is paid once for several queued 100-row requests (1.8x the rows/s at c=32
    # with 1024 instead of 64), while a lone request still goes at once.
    max_batch: int = Field(1024, ge=0, description="rows gathered into one model call "
                           "(micro-batch); 0 or 1: each request is a call of its own")
    max_wait_ms: float = Field(2.0, ge=0, description="longest wait to fill a micro-batch")
    max_body_mb: float = Field(10.0, gt=0, description="larger request bodies get 413")
    # Bounded work per request (issue 16): what one request may cost the others.
    max_records: int = Field(
        10_000, ge=1, description="records per JSON request; more get 413 (upload a table "
        "to /v1/predict/batch instead)")
    max_upload_rows: int = Field(
        1_000_000, ge=1, description="rows per /v1/predict/batch upload; more get 413")
    request_timeout_s: float = Field(
        30.0, gt=0, description="a request not answered by then gets 503 (a streamed "
        "answer, once started, is not cut)")
    body_timeout_s: float = Field(
        20.0, gt=0, description="a request body not fully received by then gets 408")
    header_timeout_s: float = Field(
        10.0, gt=0, description="a request head (request line and headers) not received "
        "within this long of its first byte, or of the connection, gets 408 and the "
        "connection is closed (slow-header clients)")
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="on SIGTERM, in-flight requests get this long to finish "
        "(then they are cancelled); the prediction log is flushed either way")
    require_api_key: bool | None = Field(
        None, description="default: required whenever host is not loopback")
    cors_origins: list[str] = Field(default_factory=list, description="CORS is off when empty")
    challenger_share: float = Field(
        0.0, ge=0, le=1, description="A/B: share of requests the challenger answers")
    shadow: bool = Field(False, description="the challenger predicts on every request, logged")
    sticky_key: str | None = Field(
        None, description="record field or header that keeps a caller on one A/B arm")
    rate_limit: str | None = Field(
        None, description="each API key's rate limit, e.g. '100/second' (a key's own --rate "
        "replaces it); none by default")
    anonymous_rate_limit: str | None = Field(
        None, description="rate limit per client address when no API key is required")
    runtime: Literal["python", "onnx"] = Field(
        "python", description="what predicts: the compiled Python predictor, or the model "
        "exported to ONNX run by onnxruntime (its logged export, else exported at start, "
        "parity checked; needs mlwright[onnx])")
    rate_limit_strategy: Literal["fixed-window", "moving-window"] = Field(
        "fixed-window", description="fixed-window: constant cost per request; moving-window: "
        "no burst at a window's edge, a cost that grows with the limit")


class MonitorConfig(_Section):
    window: str = Field("5000", description="a row count (5000) or a duration (1d, 6h)")
    drift_share: float = Field(0.5, gt=0, le=1,
                               description="dataset drift when this share of features drift")
    p_value: float = Field(0.05, gt=0, lt=1, description="threshold of the statistical tests")
    psi_threshold: float = Field(0.2, gt=0, description="PSI above this is drift")
    numeric_detector: str = Field(
        "auto", description="auto (ks on small windows, wasserstein on large), ks, "
        "wasserstein or psi")
    categorical_detector: str = Field(
        "auto", description="auto (chisquare on small windows, jensenshannon on large), "
        "chisquare, jensenshannon or psi")
    small_window: int = Field(
        1000, ge=1, description="windows up to this many rows use statistical tests")
    distance_threshold: float = Field(
        0.1, gt=0, description="normed Wasserstein and Jensen-Shannon above this is drift")
    correction: Literal["holm", "bonferroni", "none"] = Field(
        "holm", description="multiple-comparison correction of a window's p-values")
    sample_rows: int = Field(
        100_000, ge=1000, description="larger windows compare a uniform sample of this "
        "many records' inputs")
    webhook: str | None = Field(None, description="URL that alerts are POSTed to")
    min_performance: float | None = Field(
        None, description="alert when the live metric falls below this")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="alert above this error rate")


class LoopConfig(_Section):
    triggers: list[str] = Field(
        default_factory=lambda: ["drift", "performance"],
        description="drift, performance, schedule, new_data, webhook")
    schedule: str | None = Field(None, description="retrain every interval, e.g. 7d or 12h")
    new_data: str | None = Field(None, description="file glob or SQL table watched for rows")
    data_window: str = Field("all", description="all, last:N rows, days:N, or reference+recent")
    margin: float = Field(0.0, ge=0, description="promote only when better by this much")
    guarded_slices: list[str] = Field(
        default_factory=list, description="columns whose slices must not get worse")
    min_feedback: int = Field(200, ge=1, description="labelled rows needed to compare")
    on_refuse: Literal["shadow", "discard"] = "shadow"
    rollback_window: int = Field(
        500, ge=1, description="labelled rows after promotion that decide a rollback")
    time_budget: float | None = Field(None, gt=0, description="retrain budget (default train's)")
    watermark: str | None = Field(
        None, description="with new_data naming a SQL table: its increasing column")
    time_column: str | None = Field(
        None, description="the source's time column, for data_window = days:N")
    performance_drop: float = Field(
        0.05, ge=0, description="retrain when the live metric is this much below validation")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the comparison")
    slice_tolerance: float = Field(
        0.02, ge=0, description="a guarded slice may get worse by at most this much")
    min_slice_rows: int = Field(30, ge=1, description="smaller slices are reported, not guarded")
    eval_share: float = Field(
        0.5, gt=0, lt=1, description="share of recent labelled rows kept for the comparison")
    holdout: float = Field(
        0.2, ge=0, lt=1, description="share of source rows held out of retraining to compare on")
    bootstrap: int = Field(1000, ge=100, description="paired bootstrap resamples")
    check_every: str = Field("5m", description="mlwright run: time between passes")


class ProjectConfig(_Section):
    name: str = Field(description="project name; also the registered model's name")
    cluster: str | None = Field(
        None, description="Dask scheduler address (tcp://HOST:8786): trials and "
        "'mlwright predict' run on its workers; default: everything runs here")
    data: DataConfig
    train: TrainConfig = TrainConfig()
    store: StoreConfig = StoreConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    serve: ServeConfig = ServeConfig()
    monitor: MonitorConfig = MonitorConfig()
    loop: LoopConfig = LoopConfig()


def load_config(path: str | Path = CONFIG_FILE) -> ProjectConfig:
    """Read and validate an ``mlwright.toml``; errors name the field and what it expects."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"No config file at {str(path)!r}. Create one with "
            f"'mlwright init DATA --target COLUMN'."
        )
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{str(path)!r} is not valid TOML: {exc}.") from exc
    project = raw.pop("project", {})
    try:
        return ProjectConfig(**project, **raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"{str(path)!r} has invalid settings: {problems}.") from exc


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Path):
        value = value.as_posix()
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(config: ProjectConfig) -> str:
    """A commented ``mlwright.toml`` for ``config`` (what ``mlwright init`` writes)."""
    lines = [
        "# mlwright project configuration; `mlwright run` carries it out.",
        "# Every setting is documented in docs/configuration.md.",
        "",
        "[project]",
        "# Also the name of the registered model.",
        f"name = {_toml_value(config.name)}",
        f"# {ProjectConfig.model_fields['cluster'].description}",
        f"cluster = {_toml_value(config.cluster)}" if config.cluster else "# cluster = ",
        "",
    ]
    for section in ("data", "train", "store", "evaluate", "serve", "monitor", "loop"):
        model = getattr(config, section)
        lines.append(f"[{section}]")
        for field_name, field in type(model).model_fields.items():
            value = getattr(model, field_name)
            if field.description:
                lines.append(f"# {field.description}")
            if value is None:
                lines.append(f"# {field_name} = ")
            else:
                lines.append(f"{field_name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
