"""The MLflow registry on a real SQLite store: logging, champion, promotion rule, rollback."""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightgbm
import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from models.bundle import BundleIntegrityError, fingerprint_frames, load_bundle, save_bundle
from models.registry import (
    CHAMPION,
    RegistryError,
    RegistrySettings,
    champion,
    download_bundle,
    list_versions,
    log_training_run,
    promote,
    promote_if_better,
    promotion_history,
    rollback,
)

matplotlib.use("Agg")
pytestmark = [
    pytest.mark.integration,
    # MLflow 3.17's own SQLAlchemy mapping, not ours
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]

KIND = "lead-conversion"


@functools.cache
def _train(seed: int) -> lightgbm.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + rng.normal(size=200) > 0).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 5,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,  # OpenMP threads only slow a 200-row model down on a busy machine
    }
    return lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=5)


def _log(settings: RegistrySettings, tmp_path: Path, seed: int, auc: float) -> int:
    """Train, bundle and register one version; returns its version number."""
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(10)], "seed": seed})
    fingerprint = fingerprint_frames(
        {"leads": leads}, window=(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-06-30"))
    )
    bundle = tmp_path / f"bundle-{seed}"
    save_bundle(
        bundle,
        kind=KIND,
        boosters={"booster": _train(seed)},
        payload={"fingerprint": fingerprint, "grade_cutoffs": {"a": 0.75, "b": 0.5, "c": 0.25}},
    )
    figure = Figure()
    figure.add_subplot().plot([0, 1], [0, 1])
    registered = log_training_run(
        settings,
        kind=KIND,
        bundle_dir=bundle,
        params={"num_leaves": 5, "seed": seed, "calibration": {"method": "isotonic"}},
        metrics={"test": {"auc": auc, "log_loss": 0.5}, "valid": {"auc": auc + 0.01}},
        plots={"calibration": figure},
        tags={"leadcast.trigger": "test"},
        data_fingerprint=fingerprint,
        contract_summary={"leads": {"rows": 10, "failed": 0}},
    )
    assert registered.metrics["test.auc"] == pytest.approx(auc)
    return registered.version


def _champion_version(settings: RegistrySettings) -> int | None:
    current = champion(settings, KIND)
    return None if current is None else current.version


def test_settings__default_store_lives_in_home_and_env_can_point_elsewhere(
    tmp_path: Path,
) -> None:
    settings = RegistrySettings(home=tmp_path)
    assert settings.resolved_tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert settings.resolved_artifact_root == (tmp_path.resolve() / "mlartifacts").as_uri()
    from_env = RegistrySettings.from_env(
        {"LEADCAST_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000"}
    )
    assert from_env.resolved_tracking_uri == "http://mlflow.internal:5000"
    assert from_env.resolved_artifact_root is None  # the server decides
    assert RegistrySettings.from_env({}).home == Path(".leadcast")


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite store, built once: creating one costs seconds of migrations."""
    home = tmp_path_factory.mktemp("template")
    assert list_versions(RegistrySettings(home=home), KIND) == []
    return home / "mlflow.db"


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path
) -> RegistrySettings:
    # run from an empty working directory to catch anything MLflow writes to the CWD
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(empty_store, home / "mlflow.db")
    return RegistrySettings(home=home)


def _client(settings: RegistrySettings) -> Any:
    """A raw MLflow client on the same store, to check what landed in MLflow itself."""
    from mlflow import MlflowClient

    uri = settings.resolved_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_registry__champion_lifecycle_with_rule_rollback_and_history(
    settings: RegistrySettings, tmp_path: Path
) -> None:
    # given two registered versions and no champion
    v1 = _log(settings, tmp_path, seed=1, auc=0.80)
    v2 = _log(settings, tmp_path, seed=2, auc=0.78)
    assert (v1, v2) == (1, 2)
    assert champion(settings, KIND) is None

    # when v1 is proposed, it becomes the first champion
    first = promote_if_better(settings, KIND, v1, challenger_metrics={"auc": 0.80, "log_loss": 0.5})
    assert first.promoted and first.action == "first"
    assert _champion_version(settings) == v1

    # when a worse challenger (AUC down 0.02 on the same rows) is proposed, it is refused
    worse = promote_if_better(
        settings,
        KIND,
        v2,
        challenger_metrics={"auc": 0.78, "log_loss": 0.49},
        champion_metrics={"auc": 0.80, "log_loss": 0.50},
        evaluated_on="holdout-sha",
    )
    assert not worse.promoted
    assert "auc" in worse.reason and "FAILS" in worse.reason
    assert _champion_version(settings) == v1

    # when a better one arrives (AUC within tolerance, log loss lower), it is promoted
    v3 = _log(settings, tmp_path, seed=3, auc=0.797)
    better = promote_if_better(
        settings,
        KIND,
        v3,
        challenger_metrics={"auc": 0.797, "log_loss": 0.48},
        champion_metrics={"auc": 0.80, "log_loss": 0.50},
    )
    assert better.promoted and better.from_version == v1 and better.to_version == v3
    assert int(_client(settings).get_model_version_by_alias(KIND, CHAMPION).version) == v3

    # then a rollback returns to the previous champion, and a second one has nowhere to go
    back = rollback(settings, KIND)
    assert (back.from_version, back.to_version, back.action) == (v3, v1, "rollback")
    assert _champion_version(settings) == v1
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings, KIND)

    # and the history lists every decision in order, refused ones included
    history = promotion_history(settings, KIND)
    assert [(d.sequence, d.action, d.to_version, d.promoted) for d in history] == [
        (1, "first", v1, True),
        (2, "rule", v2, False),
        (3, "rule", v3, True),
        (4, "rollback", v1, True),
    ]
    assert history[1].evaluated_on == "holdout-sha"
    assert history[1].champion_metrics == {"auc": 0.80, "log_loss": 0.50}
    assert history[1].rule is not None and history[1].rule.criteria[0].tolerance == 0.005
    tags = _client(settings).get_model_version(KIND, str(v2)).tags
    assert json.loads(tags["leadcast.decision.000002"])["promoted"] is False
    assert tags["leadcast.last_decision"].startswith("not promoted")

    # and the working directory stayed clean (no stray mlflow.db / mlruns)
    assert list(Path.cwd().iterdir()) == []


def test_registry__rule_needs_champion_metrics_unless_forced_and_rollback_unwinds(
    settings: RegistrySettings, tmp_path: Path
) -> None:
    v1 = _log(settings, tmp_path, seed=1, auc=0.80)
    v2 = _log(settings, tmp_path, seed=2, auc=0.70)
    promote_if_better(settings, KIND, v1, challenger_metrics={"auc": 0.8, "log_loss": 0.5})
    with pytest.raises(RegistryError, match="re-evaluate the champion v1"):
        promote_if_better(settings, KIND, v2, challenger_metrics={"auc": 0.7, "log_loss": 0.6})
    forced = promote_if_better(
        settings,
        KIND,
        v2,
        challenger_metrics={"auc": 0.7, "log_loss": 0.6},
        champion_metrics={"auc": 0.8, "log_loss": 0.5},
        force=True,
    )
    assert forced.promoted and forced.action == "forced" and "would have failed" in forced.reason
    with pytest.raises(RegistryError, match="no version 9"):
        promote(settings, KIND, 9)

    # rollbacks unwind the champions like a stack: v1, v2, v1 again -> v2 -> v1 -> nothing
    promote(settings, KIND, v1, reason="v2 mis-ranks WeChat leads")
    assert rollback(settings, KIND).to_version == v2
    assert rollback(settings, KIND).to_version == v1
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings, KIND)

    # an alias moved outside Leadcast is not silently rolled back over
    _client(settings).set_registered_model_alias(KIND, CHAMPION, str(v2))
    with pytest.raises(RegistryError, match="moved outside Leadcast"):
        rollback(settings, KIND)


def test_log_training_run__records_run_and_version_metadata(
    settings: RegistrySettings, tmp_path: Path
) -> None:
    version = _log(settings, tmp_path, seed=1, auc=0.80)
    [listed] = list_versions(settings, KIND)
    assert listed.version == version and not listed.is_champion
    assert listed.metrics["test.auc"] == pytest.approx(0.80)
    assert listed.training_window == {"start": "2025-01-01T00:00:00", "end": "2025-06-30T00:00:00"}
    assert listed.data_sha256 and listed.manifest_sha256

    client = _client(settings)
    run = client.get_run(listed.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "leadcast-lead-conversion"
    assert run.info.status == "FINISHED"
    assert run.data.metrics["valid.auc"] == pytest.approx(0.81)
    assert run.data.params["calibration.method"] == "isotonic"
    assert run.data.tags["leadcast.model_version"] == str(version)
    assert run.data.tags["leadcast.trigger"] == "test"
    artifacts = {a.path for a in client.list_artifacts(listed.run_id)}
    assert artifacts == {"bundle", "data", "plots"}
    assert {a.path for a in client.list_artifacts(listed.run_id, "plots")} == {
        "plots/calibration.png"
    }
    assert listed.source.endswith("/bundle")
    # artifacts live under LEADCAST_HOME, not in the working directory
    assert (tmp_path / "home" / "mlartifacts").is_dir()
    assert (tmp_path / "home" / "mlflow.db").is_file()


def test_download_bundle__champion_loads_verified_and_tampering_is_refused(
    settings: RegistrySettings, tmp_path: Path
) -> None:
    # given a champion
    version = _log(settings, tmp_path, seed=1, auc=0.80)
    promote(settings, KIND, version, reason="first model")
    # when its bundle is downloaded by alias
    dest = download_bundle(settings, KIND, CHAMPION, tmp_path / "cache" / "champion")
    # then it loads, and predicts like the trained booster
    loaded = load_bundle(dest)
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(loaded.boosters["booster"].predict(x), _train(1).predict(x))

    # given the stored artifact is tampered with in the registry's artifact store
    [stored] = (tmp_path / "home" / "mlartifacts").rglob("bundle/booster.txt")
    stored.write_text(stored.read_text().replace("num_leaves=5", "num_leaves=6", 1))
    # then a fresh download is refused and leaves no destination behind
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch"):
        download_bundle(settings, KIND, version, tmp_path / "cache" / "again")
    assert not (tmp_path / "cache" / "again").exists()


def _run_cli(argv: Sequence[str]) -> int:
    """Through ``leadcast`` when it lists the command module, else through its own parser."""
    from pipelines import cli
    from pipelines.commands import promote as promote_command

    if "promote" in cli.COMMANDS:
        return cli.main(list(argv))
    parser = argparse.ArgumentParser(prog="leadcast")
    promote_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_cli__promote_and_rollback_move_the_champion(
    settings: RegistrySettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEADCAST_HOME", str(settings.home))
    v1 = _log(settings, tmp_path, seed=1, auc=0.80)
    v2 = _log(settings, tmp_path, seed=2, auc=0.82)

    assert _run_cli(["rollback", KIND]) == 2
    assert "no champion" in capsys.readouterr().err
    assert _run_cli(["promote", KIND, "--version", str(v1)]) == 0
    assert "champion is now v1" in capsys.readouterr().out
    assert _run_cli(["promote", KIND, "--version", str(v2), "--reason", "better", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert (decision["from_version"], decision["to_version"]) == (v1, v2)
    assert "better" in decision["reason"]
    assert _run_cli(["promote", KIND, "--version", "42"]) == 2
    assert "no version 42" in capsys.readouterr().err

    assert _run_cli(["rollback", KIND]) == 0
    assert "champion is now v1" in capsys.readouterr().out
    assert _champion_version(settings) == v1
    assert _run_cli(["rollback", KIND]) == 2
    assert "no previous champion" in capsys.readouterr().err
