"""Service settings, from the environment (``LEADCAST_*``), read once at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """``LEADCAST_API_TOKEN`` (required to serve), ``LEADCAST_HOME`` (the local store and
    the model cache), ``LEADCAST_DATA`` (the history the forecast reads), and the caps:
    ``LEADCAST_MAX_BATCH`` records per request,
    ``LEADCAST_MAX_BODY_BYTES``, ``LEADCAST_TIMEOUT_SECONDS`` (504 beyond it) and
    ``LEADCAST_MAX_CONCURRENCY`` requests in flight per worker (429 beyond it)."""

    model_config = SettingsConfigDict(env_prefix="LEADCAST_", extra="ignore")

    api_token: str | None = None
    home: Path = Path(".leadcast")
    data: Path | None = Field(
        default=None, description="dataset directory whose history /v1/forecast uses"
    )
    max_batch: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=64, ge=1)

    @property
    def cache_dir(self) -> Path:
        return self.home / "serving-cache"
