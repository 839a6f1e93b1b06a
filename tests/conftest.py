"""Shared fixtures: a small generated dataset, a private MLflow store, the CLI in-process."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from models.registry import RegistrySettings
from pipelines.demo_crm import GeneratorConfig, generate, write_generated


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8,000 generated leads over three years ending 2026-10-31 (seed 3), validated-clean."""
    out = tmp_path_factory.mktemp("demo") / "data"
    crm = generate(GeneratorConfig(leads=8_000, seed=3, end_date=date(2026, 10, 31)))
    write_generated(crm, out)
    return out


@pytest.fixture
def registry(tmp_path: Path) -> RegistrySettings:
    """An empty embedded MLflow store (SQLite) under the test's own directory."""
    return RegistrySettings(home=tmp_path / "leadcast-home")


CliRunner = Callable[[list[str], Path], tuple[int, str, str]]


@pytest.fixture(scope="session")
def cli() -> CliRunner:
    """Run ``leadcast ARGS`` in-process against the store under ``home``; returns
    ``(exit code, stdout, stderr)``."""

    def run(args: list[str], home: Path) -> tuple[int, str, str]:
        from pipelines.cli import main

        mp = pytest.MonkeyPatch()
        mp.setenv("LEADCAST_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(args)
        finally:
            mp.undo()
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture(scope="session")
def review_home(
    tmp_path_factory: pytest.TempPathFactory, demo_dataset: Path, cli: CliRunner
) -> Path:
    """A store with every champion and a backtest of ``demo_dataset``: what the review
    page and the static report show."""
    home = tmp_path_factory.mktemp("review") / "home"
    data = str(demo_dataset)
    for args in (
        ["train", "conversion", "--data", data, "--json"],
        ["train", "close-time", "--data", data, "--json"],
        ["backtest", "--data", data, "--draws", "1000", "--refit-months", "6", "--json"],
    ):
        code, _, err = cli(args, home)
        assert code == 0, f"leadcast {' '.join(args)} failed: {err[-2000:]}"
    return home
