"""Server settings: defaults < an optional TOML file < ``BT_SERVER_*`` environment variables <
values given in code or on the command line.

Every default is chosen so that ``bt serve`` works on a fresh checkout with no configuration:
it listens on 127.0.0.1 only, keeps its state under ``data/server`` in the working directory
and reads market data from bt-data's default store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: Environment variable naming the TOML settings file (``--config`` on the command line wins).
CONFIG_ENV_VAR = "BT_SERVER_CONFIG"


def _default_workers() -> int:
    # One process per core, capped: a run is single-threaded and the API needs some CPU too.
    return max(1, min(4, os.cpu_count() or 1))


class SettingsError(ValueError):
    """The settings cannot be used (an unreadable file, an unknown key, a bad value)."""


class Settings(BaseSettings):
    """Settings of one bt-server.

    Attributes:
        host, port: where uvicorn listens (loopback unless configured).
        data_dir: run records (SQLite), result files, uploaded datasets and the token key.
        store_path: the bt-data DuckDB store for ``/data/*`` and runs on stored bars; None uses
            bt-data's default (``$BT_DATA_DB`` or ``data/backtest.duckdb``).
        workers: worker processes that execute runs.
        queue_size: jobs that may wait for a worker; a submission beyond it gets 429.
        run_timeout: the longest a run may take (seconds); a request may ask for less.
        run_memory_mb: memory a worker may add for one run; beyond it the run fails.
        max_upload_mb: the largest dataset upload; max_body_kb: the largest other request.
        max_trials: the most parameter sets one optimisation may try.
        rate_limit, rate_burst: requests per second per token (sustained) and the burst allowed.
        cors_origins: origins allowed by CORS; empty (the default) sends no CORS headers at all.
        strategy_modules, strategy_dirs: where the admin's Strategy classes live (importable
            module names, folders of ``.py`` files). Clients choose among them by id only.
        sample_dataset: offer the bundled ``examples/data/sample.csv`` to every user.
        backfill_provider, backfill_files_dir: the provider behind ``POST /data/backfill``.
        secret: key of the token hashes; by default a random key kept in ``data_dir``.
        executor: where jobs execute: ``"process"`` (local worker processes) or ``"ray"``
            (Ray tasks on the cluster at ``ray_address``, else ``$RAY_ADDRESS``, else on a
            local Ray started with ``workers`` CPUs; needs ``bt-server[ray]``).
        ray_address: the Ray cluster of ``executor = "ray"`` (e.g. ``"10.0.0.5:6379"``).
    """

    model_config = SettingsConfigDict(env_prefix="BT_SERVER_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("data/server")
    store_path: Path | None = None
    workers: int = Field(default_factory=_default_workers, ge=1, le=64)
    queue_size: int = Field(default=256, ge=1, le=100_000)
    run_timeout: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    run_memory_mb: int = Field(default=2048, ge=64)
    max_upload_mb: float = Field(default=50.0, gt=0, allow_inf_nan=False)
    max_body_kb: int = Field(default=256, ge=1)
    max_trials: int = Field(default=10_000, ge=1)
    rate_limit: float = Field(default=50.0, gt=0, allow_inf_nan=False)
    rate_burst: int = Field(default=200, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    strategy_modules: list[str] = Field(default_factory=list)
    strategy_dirs: list[Path] = Field(default_factory=list)
    sample_dataset: bool = True
    backfill_provider: Literal["none", "files", "xtdata"] = "none"
    backfill_files_dir: Path | None = None
    secret: SecretStr | None = None
    executor: Literal["process", "ray"] = "process"
    ray_address: str | None = None

    @field_validator("cors_origins")
    @classmethod
    def _strip_origins(cls, v: list[str]) -> list[str]:
        # An empty entry (a trailing comma in a list) would otherwise be an origin named "".
        return [o.strip() for o in v if o.strip()]

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kb * 1024

    @property
    def db_path(self) -> Path:
        return self.data_dir / "server.sqlite3"

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``config_file`` (else ``$BT_SERVER_CONFIG``, else none), the
        environment and ``overrides`` (None values are ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        path = config_file if config_file is not None else os.environ.get(CONFIG_ENV_VAR)
        cls_: type[Settings] = cls
        if path is not None:
            toml = Path(path)
            if not toml.is_file():
                raise SettingsError(f"settings file not found: {toml}")
            cls_ = _with_toml(cls, toml)
        try:
            return cls_(**given)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
            raise SettingsError(f"setting {where}: {first.get('msg')}") from None
        except (ValueError, OSError) as e:  # TOML syntax errors are ValueErrors
            raise SettingsError(f"cannot read settings file {path}: {e}") from None

    def worker_config(self) -> dict[str, Any]:
        """What a worker process needs (plain data: it crosses a process boundary)."""
        return {
            "data_dir": str(self.data_dir),
            "store_path": None if self.store_path is None else str(self.store_path),
            "strategy_modules": list(self.strategy_modules),
            "strategy_dirs": [str(d) for d in self.strategy_dirs],
            "memory_bytes": self.run_memory_mb * 1024 * 1024,
            "backfill_provider": self.backfill_provider,
            "backfill_files_dir": (
                None if self.backfill_files_dir is None else str(self.backfill_files_dir)
            ),
        }


def _with_toml(base: type[Settings], toml: Path) -> type[Settings]:
    class FromFile(base):  # type: ignore[valid-type,misc]
        model_config = SettingsConfigDict(toml_file=toml)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    return FromFile


__all__ = ["CONFIG_ENV_VAR", "Settings", "SettingsError"]
