"""Tracking and model registry on MLflow: training runs, versions, champion, promotions.

How Leadcast uses MLflow (embedded SQLite store by default, any MLflow server otherwise):

- every training run is a run in experiment ``leadcast-<kind>``: flattened params and
  metrics, ``leadcast.*`` tags, plots under ``plots/``, the data fingerprint and contract
  summary under ``data/``, and the verified bundle directory under ``bundle/``;
- the bundle is registered as a new version of registered model ``<kind>`` with
  ``source`` = the run's ``bundle`` artifact directory (a plain directory of LightGBM text
  and JSON; no MLflow flavour, no pickle). Version tags hold what ``GET /v1/models``
  shows without opening the run: metrics (JSON), training window, data and manifest
  hashes;
- the alias ``champion`` is what serves;
- every promotion decision, refused ones included, is a JSON model-version tag
  ``leadcast.decision.<sequence>`` on the version it was about (the challenger, or the
  version a rollback returns to). :func:`promotion_history` reads them back in order and
  :func:`rollback` replays them as a stack of champions.

Nothing here touches MLflow, the environment or the disk at import time: ``mlflow`` is
imported on first use, after telemetry is switched off for the process.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.bundle import verify_bundle

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

KINDS: Final = ("lead-conversion", "deal-close-time")
CHAMPION: Final = "champion"
EXPERIMENT_PREFIX: Final = "leadcast-"

TAG_KIND: Final = "leadcast.kind"
TAG_METRICS: Final = "leadcast.metrics"
TAG_DATA_SHA256: Final = "leadcast.data_sha256"
TAG_MANIFEST_SHA256: Final = "leadcast.manifest_sha256"
TAG_WINDOW_START: Final = "leadcast.window_start"
TAG_WINDOW_END: Final = "leadcast.window_end"
TAG_MODEL_VERSION: Final = "leadcast.model_version"
TAG_LAST_DECISION: Final = "leadcast.last_decision"
DECISION_TAG_PREFIX: Final = "leadcast.decision."

_KIND = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_QUIET_LOGGERS: Final = ("mlflow.store.db.utils", "mlflow.store.db", "alembic")
# MLflow's own batch limits (mlflow.utils.validation)
_MAX_METRICS_PER_BATCH: Final = 1000
_MAX_PARAMS_PER_BATCH: Final = 100


class RegistryError(ValueError):
    """A registry request cannot be done as asked (unknown version, nothing to roll back)."""


# -- settings -----------------------------------------------------------------------------


class RegistrySettings(BaseModel):
    """Where the MLflow tracking store and registry live.

    ``home`` holds the embedded store (``<home>/mlflow.db``) and artifacts
    (``<home>/mlartifacts``); relative paths resolve against the working directory when
    used. ``tracking_uri`` (an MLflow server, or another database) wins over ``home`` for
    the store; ``artifact_root`` overrides where new experiments put artifacts (by default
    ``<home>/mlartifacts``, or the server's choice when the store is an MLflow server).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path = Path(".leadcast")
    tracking_uri: str | None = None
    artifact_root: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistrySettings:
        """Settings from ``LEADCAST_HOME`` and ``MLFLOW_TRACKING_URI`` (``os.environ`` if None)."""
        env = os.environ if environ is None else environ
        return cls(
            home=Path(env.get("LEADCAST_HOME") or ".leadcast"),
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
        )

    @property
    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home.resolve() / 'mlflow.db').as_posix()}"

    @property
    def uses_server(self) -> bool:
        """Whether the store is an MLflow tracking server (which then places artifacts)."""
        return self.resolved_tracking_uri.startswith(("http://", "https://", "databricks"))

    @property
    def resolved_artifact_root(self) -> str | None:
        if self.artifact_root:
            return self.artifact_root
        if self.uses_server:
            return None
        # a database store without a server would default to ./mlruns in the CWD
        return (self.home.resolve() / "mlartifacts").as_uri()


# -- public result types ------------------------------------------------------------------


class RegisteredVersion(BaseModel):
    """One registered model version, as ``GET /v1/models`` lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    version: int
    run_id: str | None
    source: str = Field(description="artifact URI of the bundle directory")
    created_at: datetime
    is_champion: bool
    metrics: dict[str, float | None] = Field(default_factory=dict)
    training_window: dict[str, str] | None = Field(
        default=None, description="{'start': ISO time, 'end': ISO time} of the training data"
    )
    data_sha256: str | None = None
    manifest_sha256: str | None = None


class MetricCriterion(BaseModel):
    """One metric the challenger must not lose on by more than ``tolerance``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    direction: Literal["higher_is_better", "lower_is_better"]
    tolerance: float = Field(default=0.0, ge=0.0)

    def check(self, challenger: float | None, champion: float | None) -> tuple[bool, str]:
        """Return (passed, a sentence with both values)."""
        if challenger is None or champion is None or math.isnan(challenger) or math.isnan(champion):
            return False, f"{self.metric}: undefined (challenger {challenger}, champion {champion})"
        if self.direction == "higher_is_better":
            passed = challenger >= champion - self.tolerance
            rule = f"must be >= champion - {self.tolerance:g}"
        else:
            passed = challenger <= champion + self.tolerance
            rule = f"must be <= champion + {self.tolerance:g}"
        verdict = "ok" if passed else "FAILS"
        values = f"challenger {challenger:.6g} vs champion {champion:.6g}"
        return passed, f"{self.metric}: {values} ({rule}) {verdict}"


class PromotionRule(BaseModel):
    """All criteria must pass, on metrics both models got on the same held-out rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    criteria: tuple[MetricCriterion, ...] = Field(min_length=1)

    def evaluate(
        self, challenger: Mapping[str, float | None], champion: Mapping[str, float | None]
    ) -> tuple[bool, list[str]]:
        missing = [
            f"{side} lacks {c.metric!r}"
            for c in self.criteria
            for side, metrics in (("challenger", challenger), ("champion", champion))
            if c.metric not in metrics
        ]
        if missing:
            raise RegistryError(
                "cannot apply the promotion rule: "
                + "; ".join(missing)
                + ". Compute every rule metric for both models on the same held-out rows."
            )
        results = [c.check(challenger[c.metric], champion[c.metric]) for c in self.criteria]
        return all(ok for ok, _ in results), [text for _, text in results]


#: lead-conversion: AUC may drop by at most 0.005, log loss may not rise;
#: deal-close-time: concordance may drop by at most 0.005, the 90-day Brier may not rise
DEFAULT_RULES: Final[dict[str, PromotionRule]] = {
    "lead-conversion": PromotionRule(
        criteria=(
            MetricCriterion(metric="auc", direction="higher_is_better", tolerance=0.005),
            MetricCriterion(metric="log_loss", direction="lower_is_better", tolerance=0.0),
        )
    ),
    "deal-close-time": PromotionRule(
        criteria=(
            MetricCriterion(metric="c_index", direction="higher_is_better", tolerance=0.005),
            MetricCriterion(metric="brier_90d", direction="lower_is_better", tolerance=0.0),
        )
    ),
}


def default_rule(kind: str) -> PromotionRule:
    """The configured promotion rule for ``kind``; raises if there is none yet."""
    try:
        return DEFAULT_RULES[kind]
    except KeyError:
        raise RegistryError(
            f"no default promotion rule for {kind!r}; pass rule=PromotionRule(...) "
            "naming the metrics, their direction and tolerance"
        ) from None


Action = Literal["first", "rule", "forced", "manual", "rollback"]


class PromotionDecision(BaseModel):
    """One decision about the ``champion`` alias, whether or not it moved it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int = Field(description="1, 2, ... per registered model, in decision order")
    kind: str
    action: Action
    from_version: int | None = Field(description="champion before the decision")
    to_version: int = Field(description="the version decided about")
    promoted: bool = Field(description="whether champion now points at to_version")
    reason: str
    challenger_metrics: dict[str, float | None] | None = None
    champion_metrics: dict[str, float | None] | None = None
    rule: PromotionRule | None = None
    evaluated_on: str | None = Field(
        default=None, description="caller's id of the held-out data (e.g. its fingerprint)"
    )
    decided_at: datetime
    decided_by: str | None = None


# -- MLflow plumbing ----------------------------------------------------------------------


def offline_mlflow_environment() -> None:
    """Switch MLflow telemetry and progress bars off for this process, without importing it.

    Call it as early as possible in a process (CLI entry point, service start): MLflow
    starts its telemetry client when it is imported. An operator's explicit
    ``MLFLOW_DISABLE_TELEMETRY=false`` is respected. Every registry function calls it.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _prepare_mlflow() -> None:
    """Offline and quiet, then import mlflow; drop a telemetry client started earlier."""
    offline_mlflow_environment()
    from mlflow.telemetry import client as telemetry
    from mlflow.telemetry.utils import is_telemetry_disabled

    # mlflow was imported before the switch (by another module): its client saw telemetry
    # on; re-initialising makes it see the switch, so nothing is ever sent.
    if telemetry.get_telemetry_client() is not None and is_telemetry_disabled():
        telemetry.set_telemetry_client()


def _client(settings: RegistrySettings) -> MlflowClient:
    _prepare_mlflow()
    from mlflow import MlflowClient

    if not settings.tracking_uri:
        settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _error_code(exc: Exception) -> str | None:
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


def _check_kind(kind: str) -> None:
    if not _KIND.match(kind):
        raise RegistryError(
            f"model kind {kind!r} must be lower-case kebab-case (known: {', '.join(KINDS)})"
        )


def _mlflow_exception() -> type[Exception]:
    from mlflow.exceptions import MlflowException

    return MlflowException


def _registered_model(client: MlflowClient, kind: str) -> Any | None:
    try:
        return client.get_registered_model(kind)
    except _mlflow_exception() as exc:
        if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _model_version(client: MlflowClient, kind: str, version: int) -> ModelVersion:
    try:
        return client.get_model_version(kind, str(version))
    except _mlflow_exception() as exc:
        if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            known = [int(mv.version) for mv in _search_versions(client, kind)]
            raise RegistryError(
                f"{kind} has no version {version} (registered versions: "
                f"{', '.join(map(str, sorted(known))) or 'none'})"
            ) from None
        raise


def _search_versions(client: MlflowClient, kind: str) -> Iterator[ModelVersion]:
    token: str | None = None
    while True:
        page = client.search_model_versions(f"name = '{kind}'", page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _alias_version(model: Any, alias: str) -> int | None:
    value = (getattr(model, "aliases", None) or {}).get(alias)
    return None if value is None else int(value)


def _champion_number(client: MlflowClient, kind: str) -> int | None:
    model = _registered_model(client, kind)
    return None if model is None else _alias_version(model, CHAMPION)


def _to_registered(mv: ModelVersion, champion_version: int | None) -> RegisteredVersion:
    tags = dict(mv.tags or {})
    try:
        metrics = json.loads(tags.get(TAG_METRICS, "{}"))
    except ValueError:
        metrics = {}
    start, end = tags.get(TAG_WINDOW_START), tags.get(TAG_WINDOW_END)
    return RegisteredVersion(
        kind=mv.name,
        version=int(mv.version),
        run_id=mv.run_id or None,
        source=mv.source or "",
        created_at=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
        is_champion=champion_version is not None and int(mv.version) == champion_version,
        metrics=metrics,
        training_window={"start": start, "end": end} if start and end else None,
        data_sha256=tags.get(TAG_DATA_SHA256),
        manifest_sha256=tags.get(TAG_MANIFEST_SHA256),
    )


# -- metrics and params -------------------------------------------------------------------


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested metric dicts to MLflow keys: ``{"test": {"auc": 0.8}}`` -> ``test.auc``.

    ``None`` leaves are skipped (metric not available); NaN is kept (MLflow stores it);
    anything that is not a number raises ``TypeError`` naming the key.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{name}."))
        elif value is None:
            continue
        elif isinstance(value, int | float) or hasattr(value, "__float__"):
            flat[name] = float(value)
        else:
            raise TypeError(f"metric {name!r} is a {type(value).__name__}, not a number")
    return flat


def _flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_params(value, prefix=f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def _json_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) or math.isinf(v) else v) for k, v in metrics.items()}


# -- logging a training run ---------------------------------------------------------------


def _experiment_id(client: MlflowClient, settings: RegistrySettings, kind: str) -> str:
    name = f"{EXPERIMENT_PREFIX}{kind}"
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        root = settings.resolved_artifact_root
        location = f"{root.rstrip('/')}/{name}" if root else None
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except _mlflow_exception() as exc:
            if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
            assert experiment is not None  # created concurrently, just now
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def _ensure_registered_model(client: MlflowClient, kind: str) -> None:
    if _registered_model(client, kind) is not None:
        return
    try:
        client.create_registered_model(
            kind,
            tags={TAG_KIND: kind},
            description=f"Leadcast {kind} bundles (LightGBM text + bundle.json; no pickle).",
        )
    except _mlflow_exception() as exc:
        if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise


def _log_batches(
    client: MlflowClient,
    run_id: str,
    *,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
) -> None:
    from mlflow.entities import Metric, Param

    now = int(datetime.now(UTC).timestamp() * 1000)
    metric_list = [Metric(k, v, now, 0) for k, v in sorted(metrics.items())]
    for i in range(0, len(metric_list), _MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metric_list[i : i + _MAX_METRICS_PER_BATCH])
    param_list = [Param(k, v) for k, v in sorted(params.items())]
    for i in range(0, len(param_list), _MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=param_list[i : i + _MAX_PARAMS_PER_BATCH])


def _check_plots(plots: Mapping[str, Figure | Path | str]) -> None:
    for name, plot in plots.items():
        if not _ARTIFACT_NAME.match(name):
            raise ValueError(f"plot name {name!r} must be a plain file name such as calibration")
        if isinstance(plot, str | Path) and not Path(plot).is_file():
            raise FileNotFoundError(f"plot {name!r}: {plot} is not a file")


def _write_plots(plots: Mapping[str, Figure | Path | str], directory: Path) -> None:
    for name, plot in plots.items():
        if isinstance(plot, str | Path):
            source = Path(plot)
            target = directory / (name if Path(name).suffix else f"{name}{source.suffix}")
            shutil.copyfile(source, target)
        else:
            target = directory / (name if Path(name).suffix else f"{name}.png")
            plot.savefig(target, dpi=120, bbox_inches="tight")


def log_training_run(
    settings: RegistrySettings,
    *,
    kind: str,
    bundle_dir: Path,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    data_fingerprint: Mapping[str, Any],
    plots: Mapping[str, Figure | Path | str] | None = None,
    tags: Mapping[str, str] | None = None,
    contract_summary: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> RegisteredVersion:
    """Log one training run and register its bundle as a new version of ``kind``.

    Args:
        settings: where the MLflow store is.
        kind: registered model name, e.g. ``"lead-conversion"``; experiment is
            ``leadcast-<kind>``.
        bundle_dir: a bundle written by :func:`models.bundle.save_bundle`; verified first
            (a broken bundle is never registered) and its ``kind`` must match.
        params: training parameters; nested dicts become ``a.b`` keys, non-strings JSON.
        metrics: nested dicts of numbers, flattened to ``a.b`` metric keys (see
            :func:`flatten_metrics`); also stored as JSON on the model version.
        data_fingerprint: from :func:`models.bundle.fingerprint_frames`; its ``sha256`` and
            ``window`` become tags, the whole dict ``data/data_fingerprint.json``.
        plots: name -> matplotlib Figure (saved as PNG) or path to an image file; logged
            under ``plots/``.
        tags: extra run tags.
        contract_summary: data-contract results, logged as ``data/contract_summary.json``.
        run_name: MLflow run name (default ``<kind>-<UTC time>``).

    Returns:
        The new :class:`RegisteredVersion` (not champion yet: see :func:`promote_if_better`).
    """
    _check_kind(kind)
    info = verify_bundle(Path(bundle_dir))
    if info.kind != kind:
        raise RegistryError(f"bundle {bundle_dir} is a {info.kind!r} bundle, not {kind!r}")
    flat_metrics = flatten_metrics(metrics)
    _check_plots(plots or {})
    window = data_fingerprint.get("window") or {}
    leadcast_tags = {
        TAG_KIND: kind,
        TAG_MANIFEST_SHA256: info.manifest_sha256,
        **(
            {TAG_DATA_SHA256: str(data_fingerprint["sha256"])}
            if "sha256" in data_fingerprint
            else {}
        ),
        **({TAG_WINDOW_START: str(window["start"])} if window.get("start") else {}),
        **({TAG_WINDOW_END: str(window["end"])} if window.get("end") else {}),
    }

    client = _client(settings)
    experiment_id = _experiment_id(client, settings, kind)
    started = datetime.now(UTC)
    run = client.create_run(
        experiment_id,
        run_name=run_name or f"{kind}-{started:%Y%m%dT%H%M%SZ}",
        tags={**dict(tags or {}), **leadcast_tags},
    )
    run_id = run.info.run_id
    try:
        _log_batches(client, run_id, params=_flatten_params(params), metrics=flat_metrics)
        with tempfile.TemporaryDirectory(prefix="leadcast-run-") as tmp:
            plot_dir = Path(tmp) / "plots"
            plot_dir.mkdir()
            _write_plots(plots or {}, plot_dir)
            if plots:
                client.log_artifacts(run_id, str(plot_dir), "plots")
            data_dir = Path(tmp) / "data"
            data_dir.mkdir()
            (data_dir / "data_fingerprint.json").write_text(
                json.dumps(data_fingerprint, indent=2, sort_keys=True, default=str)
            )
            if contract_summary is not None:
                (data_dir / "contract_summary.json").write_text(
                    json.dumps(contract_summary, indent=2, sort_keys=True, default=str)
                )
            client.log_artifacts(run_id, str(data_dir), "data")
        client.log_artifacts(run_id, str(bundle_dir), "bundle")

        _ensure_registered_model(client, kind)
        mv = client.create_model_version(
            kind,
            source=f"{run.info.artifact_uri.rstrip('/')}/bundle",
            run_id=run_id,
            tags={**leadcast_tags, TAG_METRICS: json.dumps(_json_metrics(flat_metrics))},
            description=f"{kind} trained {started:%Y-%m-%d %H:%M} UTC, run {run_id}",
        )
        client.set_tag(run_id, TAG_MODEL_VERSION, str(mv.version))
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return _to_registered(mv, _champion_number(client, kind))


# -- backtest records ---------------------------------------------------------------------

#: Experiment (``leadcast-<name>``) of the forecast backtests; they register no model.
BACKTEST: Final = "forecast-backtest"
BACKTEST_RECORD: Final = "backtest.json"
TAG_DATASET: Final = "leadcast.dataset"
TAG_FREQ: Final = "leadcast.freq"


def log_backtest(
    settings: RegistrySettings,
    *,
    record: Mapping[str, Any],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    data_fingerprint: Mapping[str, Any],
    plots: Mapping[str, Figure | Path | str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log one forecast backtest as an MLflow run of the ``leadcast-forecast-backtest``
    experiment: flattened ``metrics``, ``params``, the whole ``record`` as
    ``backtest.json`` (what :func:`latest_backtest` returns), the data fingerprint and the
    ``plots``. Returns the run id."""
    _check_plots(plots or {})
    client = _client(settings)
    experiment_id = _experiment_id(client, settings, BACKTEST)
    started = datetime.now(UTC)
    run_tags = {
        TAG_KIND: BACKTEST,
        **(
            {TAG_DATA_SHA256: str(data_fingerprint["sha256"])}
            if "sha256" in data_fingerprint
            else {}
        ),
        **dict(tags or {}),
    }
    run = client.create_run(
        experiment_id, run_name=f"{BACKTEST}-{started:%Y%m%dT%H%M%SZ}", tags=run_tags
    )
    run_id = str(run.info.run_id)
    try:
        _log_batches(
            client, run_id, params=_flatten_params(params), metrics=flatten_metrics(metrics)
        )
        with tempfile.TemporaryDirectory(prefix="leadcast-backtest-") as tmp:
            root = Path(tmp)
            (root / BACKTEST_RECORD).write_text(
                json.dumps({**record, "run_id": run_id}, indent=2, default=str)
            )
            (root / "data_fingerprint.json").write_text(
                json.dumps(data_fingerprint, indent=2, sort_keys=True, default=str)
            )
            client.log_artifacts(run_id, str(root))
            if plots:
                plot_dir = root / "plots"
                plot_dir.mkdir()
                _write_plots(plots, plot_dir)
                client.log_artifacts(run_id, str(plot_dir), "plots")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


def latest_backtest(
    settings: RegistrySettings, *, freq: str | None = None, data_sha256: str | None = None
) -> dict[str, Any] | None:
    """The record of the newest finished backtest (of ``freq`` / on data with that
    fingerprint when given), with ``run_id`` and ``logged_at``; ``None`` when there is none."""
    import mlflow

    client = _client(settings)
    experiment = client.get_experiment_by_name(f"{EXPERIMENT_PREFIX}{BACKTEST}")
    if experiment is None:
        return None
    filters = ["attributes.status = 'FINISHED'"]
    if freq:
        filters.append(f"tags.`{TAG_FREQ}` = '{freq}'")
    if data_sha256:
        filters.append(f"tags.`{TAG_DATA_SHA256}` = '{data_sha256}'")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=" and ".join(filters),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    with tempfile.TemporaryDirectory(prefix="leadcast-backtest-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id,
            artifact_path=BACKTEST_RECORD,
            dst_path=tmp,
            tracking_uri=settings.resolved_tracking_uri,
        )
        record = dict(json.loads(Path(path).read_text()))
    record["logged_at"] = datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat()
    return record


# -- reading the registry -----------------------------------------------------------------


def get_version(settings: RegistrySettings, kind: str, version: int | str) -> RegisteredVersion:
    """A version by number (``3`` or ``"3"``) or alias (``"champion"``)."""
    _check_kind(kind)
    client = _client(settings)
    champion_version = _champion_number(client, kind)
    if isinstance(version, int) or str(version).isdigit():
        mv = _model_version(client, kind, int(version))
    elif version == CHAMPION:
        if champion_version is None:
            raise RegistryError(
                f"{kind} has no champion yet; train and register a model "
                "(leadcast train) or promote a version (leadcast promote)"
            )
        mv = _model_version(client, kind, champion_version)
    else:
        try:
            mv = client.get_model_version_by_alias(kind, str(version))
        except _mlflow_exception() as exc:
            raise RegistryError(f"{kind} has no version or alias {version!r}") from exc
    return _to_registered(mv, champion_version)


def champion(settings: RegistrySettings, kind: str) -> RegisteredVersion | None:
    """The version the ``champion`` alias points at, or ``None`` if there is none."""
    _check_kind(kind)
    client = _client(settings)
    number = _champion_number(client, kind)
    return None if number is None else _to_registered(_model_version(client, kind, number), number)


def list_versions(settings: RegistrySettings, kind: str) -> list[RegisteredVersion]:
    """All versions of ``kind``, oldest first, with metrics, window and champion flag."""
    _check_kind(kind)
    client = _client(settings)
    model = _registered_model(client, kind)
    if model is None:
        return []
    number = _alias_version(model, CHAMPION)
    versions = [_to_registered(mv, number) for mv in _search_versions(client, kind)]
    return sorted(versions, key=lambda v: v.version)


def download_bundle(settings: RegistrySettings, kind: str, version: int | str, dest: Path) -> Path:
    """Download a version's bundle to ``dest`` and verify it; returns ``dest``.

    ``version`` is a number or an alias (``"champion"``). ``dest`` must not exist or be
    empty. The download lands in a temporary sibling and is moved to ``dest`` only after
    :func:`models.bundle.verify_bundle` passed, including the manifest hash the registry
    recorded for this version; on failure ``dest`` is left untouched.
    """
    import mlflow.artifacts

    target = get_version(settings, kind, version)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not empty; choose an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=target.source,
                dst_path=str(staging),
                tracking_uri=settings.resolved_tracking_uri,
            )
        )
        info = verify_bundle(local, expected_manifest_sha256=target.manifest_sha256)
        if info.kind != kind:
            raise RegistryError(f"{kind} v{target.version} holds a {info.kind!r} bundle")
        if dest.exists():
            dest.rmdir()
        local.replace(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


# -- promotion ----------------------------------------------------------------------------


def _history(client: MlflowClient, kind: str) -> list[PromotionDecision]:
    decisions = []
    for mv in _search_versions(client, kind):
        for key, value in (mv.tags or {}).items():
            if not key.startswith(DECISION_TAG_PREFIX):
                continue
            try:
                decisions.append(PromotionDecision.model_validate_json(value))
            except ValueError as exc:
                raise RegistryError(
                    f"{kind} v{mv.version} tag {key!r} is not a Leadcast decision record "
                    f"(edited by hand?): {exc}. Restore or delete the tag in MLflow."
                ) from exc
    return sorted(decisions, key=lambda d: (d.sequence, d.decided_at))


def promotion_history(settings: RegistrySettings, kind: str) -> list[PromotionDecision]:
    """Every promotion decision for ``kind`` in order, refused ones and rollbacks included.

    ``[d.model_dump(mode="json") for d in ...]`` gives plain dicts.
    """
    _check_kind(kind)
    client = _client(settings)
    if _registered_model(client, kind) is None:
        return []
    return _history(client, kind)


def _champion_stack(history: list[PromotionDecision]) -> list[int]:
    """Replay the alias moves: promotions push, rollbacks pop."""
    stack: list[int] = []
    for decision in history:
        if not decision.promoted:
            continue
        if decision.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(decision.to_version)
    return stack


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _decide(
    client: MlflowClient,
    kind: str,
    *,
    action: Action,
    from_version: int | None,
    to_version: int,
    promoted: bool,
    reason: str,
    challenger_metrics: Mapping[str, float] | None = None,
    champion_metrics: Mapping[str, float] | None = None,
    rule: PromotionRule | None = None,
    evaluated_on: str | None = None,
) -> PromotionDecision:
    """Move the alias (if promoted), then record the decision as a version tag.

    MLflow has no transaction across calls: the alias moves first and is put back if the
    decision cannot be recorded, so the history never misses a move that happened.
    """
    history = _history(client, kind)
    decision = PromotionDecision(
        sequence=max((d.sequence for d in history), default=0) + 1,
        kind=kind,
        action=action,
        from_version=from_version,
        to_version=to_version,
        promoted=promoted,
        reason=reason,
        challenger_metrics=None
        if challenger_metrics is None
        else _json_metrics(challenger_metrics),
        champion_metrics=None if champion_metrics is None else _json_metrics(champion_metrics),
        rule=rule,
        evaluated_on=evaluated_on,
        decided_at=datetime.now(UTC),
        decided_by=_user(),
    )
    if promoted:
        client.set_registered_model_alias(kind, CHAMPION, str(to_version))
    try:
        client.set_model_version_tag(
            kind,
            str(to_version),
            f"{DECISION_TAG_PREFIX}{decision.sequence:06d}",
            decision.model_dump_json(),
        )
        verdict = "promoted" if promoted else "not promoted"
        client.set_model_version_tag(
            kind, str(to_version), TAG_LAST_DECISION, f"{verdict}: {reason}"
        )
    except BaseException:
        if promoted:
            if from_version is None:
                client.delete_registered_model_alias(kind, CHAMPION)
            else:
                client.set_registered_model_alias(kind, CHAMPION, str(from_version))
        raise
    return decision


def promote_if_better(
    settings: RegistrySettings,
    kind: str,
    version: int,
    *,
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None = None,
    rule: PromotionRule | None = None,
    force: bool = False,
    evaluated_on: str | None = None,
) -> PromotionDecision:
    """Make ``version`` champion if it passes ``rule`` against the current champion.

    The caller evaluates both the challenger and the current champion on the SAME
    held-out rows and passes both metric dicts (flat, e.g. ``{"auc": .., "log_loss": ..}``);
    ``evaluated_on`` can name those rows (e.g. their fingerprint) for the record. With no
    champion yet, the version becomes the first champion. ``force`` promotes regardless of
    the rule (the rule outcome is still recorded when champion metrics are given).
    ``rule`` defaults to :func:`default_rule` of ``kind``. Every call records a decision.
    """
    _check_kind(kind)
    client = _client(settings)
    _model_version(client, kind, version)
    current = _champion_number(client, kind)
    action: Action
    applied: PromotionRule | None = None
    if current is None:
        action, promoted = "first", True
        reason = f"no champion yet: v{version} becomes the first champion"
    elif current == version:
        action, promoted = "rule", False
        reason = f"v{version} is already the champion"
    elif champion_metrics is None:
        if not force:
            raise RegistryError(
                f"champion_metrics missing: re-evaluate the champion v{current} on the same "
                f"held-out rows as v{version} and pass its metrics (or force=True)"
            )
        action, promoted = "forced", True
        reason = f"forced: v{version} replaces v{current} without a comparison"
    else:
        applied = rule or default_rule(kind)
        passed, checks = applied.evaluate(challenger_metrics, champion_metrics)
        summary = "; ".join(checks)
        if force:
            action, promoted = "forced", True
            outcome = "would have passed" if passed else "would have failed"
            reason = f"forced: v{version} replaces v{current}; the rule {outcome} ({summary})"
        else:
            action, promoted = "rule", passed
            verdict = "passes" if passed else "does not pass"
            reason = f"v{version} {verdict} the rule against champion v{current}: {summary}"
    return _decide(
        client,
        kind,
        action=action,
        from_version=current,
        to_version=version,
        promoted=promoted,
        reason=reason,
        challenger_metrics=challenger_metrics,
        champion_metrics=champion_metrics,
        rule=applied,
        evaluated_on=evaluated_on,
    )


def promote(
    settings: RegistrySettings, kind: str, version: int, *, reason: str | None = None
) -> PromotionDecision:
    """Point ``champion`` at ``version`` by hand (an analyst's decision), recording why."""
    _check_kind(kind)
    client = _client(settings)
    _model_version(client, kind, version)
    current = _champion_number(client, kind)
    if current == version:
        return _decide(
            client,
            kind,
            action="manual",
            from_version=current,
            to_version=version,
            promoted=False,
            reason=f"v{version} is already the champion",
        )
    why = f": {reason}" if reason else ""
    return _decide(
        client,
        kind,
        action="manual",
        from_version=current,
        to_version=version,
        promoted=True,
        reason=f"manual promotion of v{version} (was {f'v{current}' if current else 'none'}){why}",
    )


def rollback(
    settings: RegistrySettings, kind: str, *, reason: str | None = None
) -> PromotionDecision:
    """Move ``champion`` back to the champion before the current one.

    Follows the promotion history as a stack: promotions push, rollbacks pop, so two
    rollbacks after promoting v1, v2, v3 return to v1 (not back and forth between v2 and
    v3). Raises :class:`RegistryError` when there is no champion, no earlier champion, or
    the alias was moved outside Leadcast (then promote a version explicitly).
    """
    _check_kind(kind)
    client = _client(settings)
    current = _champion_number(client, kind)
    if current is None:
        raise RegistryError(f"{kind} has no champion, so there is nothing to roll back")
    stack = _champion_stack(_history(client, kind))
    if not stack or stack[-1] != current:
        recorded = f"v{stack[-1]}" if stack else "no champion"
        raise RegistryError(
            f"{kind}'s champion alias points at v{current} but Leadcast's promotion history "
            f"says {recorded} (the alias was moved outside Leadcast); choose the version and "
            f"run: leadcast promote {kind} --version N"
        )
    if len(stack) < 2:
        raise RegistryError(
            f"{kind} v{current} is the first champion in the promotion history: there is no "
            f"previous champion to roll back to; promote a version explicitly with "
            f"leadcast promote {kind} --version N"
        )
    previous = stack[-2]
    _model_version(client, kind, previous)
    why = f": {reason}" if reason else ""
    return _decide(
        client,
        kind,
        action="rollback",
        from_version=current,
        to_version=previous,
        promoted=True,
        reason=f"rollback from v{current} to the previous champion v{previous}{why}",
    )
