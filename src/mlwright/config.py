"""The ``mlwright.toml`` model: what a project trains on, how, and where it keeps things."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlwright.exceptions import ConfigError

__all__ = ["DataConfig", "ProjectConfig", "StoreConfig", "TrainConfig", "load_config",
           "render_config"]

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
    tracking_uri: str | None = Field(None, description="MLflow URI; default sqlite in root")

    @field_validator("root")
    @classmethod
    def _not_empty(cls, v: Path) -> Path:
        if str(v).strip() == "":
            raise ValueError("store.root must be a folder path")
        return v


class ProjectConfig(_Section):
    name: str = Field(description="project name; also the registered model's name")
    data: DataConfig
    train: TrainConfig = TrainConfig()
    store: StoreConfig = StoreConfig()


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
        "",
    ]
    for section in ("data", "train", "store"):
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
