"""Service settings, from the environment (``LEADCAST_*``), read once at start."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: at most this many workers by default: each holds its own copy of the models and history
MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """One worker per CPU this process may use (scoring is single-threaded per request),
    at least 1 and at most :data:`MAX_DEFAULT_WORKERS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


class ServiceSettings(BaseSettings):
    """``LEADCAST_API_TOKEN`` (required to serve), ``LEADCAST_HOME`` (the local store and
    the model cache), ``LEADCAST_DATA`` (the history the forecast reads), and the caps:
    ``LEADCAST_MAX_BATCH`` records per request,
    ``LEADCAST_MAX_BODY_BYTES``, ``LEADCAST_TIMEOUT_SECONDS`` (504 beyond it) and
    ``LEADCAST_MAX_CONCURRENCY`` requests in flight in the service, shared out between
    the workers (429 beyond it).
    ``LEADCAST_WORKERS`` worker processes (default: one per CPU, see
    :func:`default_workers`); ``LEADCAST_RELOAD_POLL_SECONDS`` how often each worker
    checks whether another one reloaded the models; ``LEADCAST_ACCESS_LOG`` one log line
    per request (off: it costs CPU on every request); ``LEADCAST_TRACE_SCORING`` an
    OpenTelemetry span per ``POST /v1/leads/score`` request (off: BentoML makes one per
    request even with no exporter configured, a quarter of a single-lead request's
    serving overhead; turn it on with a tracing exporter in BentoML's configuration)."""

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
    workers: int = Field(default_factory=default_workers, ge=1)
    reload_poll_seconds: float = Field(default=2.0, gt=0)
    access_log: bool = False
    trace_scoring: bool = False

    @property
    def untraced_urls(self) -> list[str]:
        """URL patterns BentoML's OpenTelemetry middleware skips."""
        return [] if self.trace_scoring else ["/v1/leads/score$"]

    @property
    def cache_dir(self) -> Path:
        return self.home / "serving-cache"

    @property
    def reload_stamp(self) -> Path:
        """Touched by the worker that reloaded the models; the others follow it."""
        return self.cache_dir / "reload-stamp"
