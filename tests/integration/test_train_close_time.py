"""Train → register → promote the close-time model, and outlooks, with a real MLflow store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models import registry as R
from models.close_time import KIND
from pipelines.close_time import outlook, train_close_time

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
    demo_dataset: Path,
    cli: Callable[[list[str], Path], tuple[int, str, str]],
) -> tuple[Path, dict[str, Any]]:
    home = tmp_path_factory.mktemp("home")
    code, out, _ = cli(["train", "close-time", "--data", str(demo_dataset), "--json"], home)
    assert code == 0
    return home, json.loads(out)


def test_train__reports_model_baselines_and_oracle_on_the_same_rows(trained) -> None:
    _, result = trained
    for key in ("c_index", "brier_90d", "ece_90d", "median_close_mae_days", "n_test"):
        assert isinstance(result[key], float | int), key
    assert set(result["baselines"]) == {"km_stage", "cox", "rep_date"}
    for metrics in result["baselines"].values():
        assert {"c_index", "brier_90d", "ece_90d", "median_close_mae_days"} <= set(metrics)
    assert {"c_index", "brier_90d", "ece_90d", "n"} <= set(result["oracle"])
    # the truth is the best possible; the model learns more than the stage averages
    assert result["oracle"]["brier_90d"] < result["brier_90d"]
    assert result["brier_90d"] < result["baselines"]["km_stage"]["brier_90d"]
    assert result["c_index"] > result["baselines"]["km_stage"]["c_index"]
    assert result["model_version"] == 1 and result["promoted"] is True
    assert set(result["risk_flags"]) <= {
        "stalled",
        "silent",
        "slipped",
        "unlikely_by_expected_date",
    }
    for flag in result["risk_flags"].values():
        assert {"rate_flagged", "rate_unflagged", "same_stage"} <= set(flag)
        same = flag["same_stage"]
        assert same is None or {"n", "rate_flagged", "rate_unflagged"} == set(same)


def test_second_version_is_judged_against_the_champion_on_the_same_rows(
    trained, demo_dataset: Path
) -> None:
    home, _ = trained
    settings = R.RegistrySettings(home=home)
    outcome = train_close_time(demo_dataset, registry=settings)
    assert outcome.model_version == 2
    last = R.promotion_history(settings, KIND)[-1]
    assert last.to_version == 2 and last.champion_metrics is not None
    assert set(last.champion_metrics) == {"c_index", "brier_90d"}
    # same data and seed: the challenger ties the champion, which the rule accepts
    assert last.champion_metrics["brier_90d"] == pytest.approx(last.challenger_metrics["brier_90d"])


def test_outlook__open_deals_with_coherent_numbers_and_reasons(trained, demo_dataset, cli) -> None:
    home, _ = trained
    code, out, _ = cli(
        ["outlook", "--data", str(demo_dataset), "--as-of", "2026-09-01", "--json"], home
    )
    assert code == 0
    result = json.loads(out)
    deals = pd.DataFrame(result["deals"])
    assert len(deals) > 20 and result["model_version"] >= 1
    assert (deals["p_won_30d"] <= deals["p_won_60d"] + 1e-12).all()
    assert (deals["p_won_60d"] <= deals["p_won_90d"] + 1e-12).all()
    assert (deals["p_won_90d"] <= deals["p_win"] + 1e-12).all()
    q = deals[["close_date_p10", "close_date_p50", "close_date_p90"]].apply(pd.to_datetime)
    ok = q.notna().all(axis=1)
    assert (q.loc[ok, "close_date_p10"] <= q.loc[ok, "close_date_p50"]).all()
    assert (q.loc[ok, "close_date_p50"] <= q.loc[ok, "close_date_p90"]).all()
    assert (q.loc[ok, "close_date_p10"] >= pd.Timestamp("2026-09-01")).all()
    flags = [f for row in result["deals"] for f in row["flags"]]
    assert flags, "a few hundred open deals without a single risk flag is implausible"
    for flag in flags:
        assert flag["reason_en"] and flag["reason_zh"] and flag["threshold"] is not None


def test_outlook__uses_only_deals_open_at_the_date(trained, demo_dataset) -> None:
    home, _ = trained
    as_of = pd.Timestamp("2026-06-15")
    table, flags, version = outlook(
        demo_dataset, registry=R.RegistrySettings(home=home), as_of=as_of
    )
    deals = pd.read_parquet(demo_dataset / "deals.parquet").set_index("deal_id")
    seen = deals.loc[table["deal_id"]]
    assert (seen["created_at"] < as_of).all()
    assert (seen["closed_at"].isna() | (seen["closed_at"] > as_of)).all()
    assert len(flags) == len(table) and version >= 1


def test_outlook__without_a_model_says_what_to_do(
    tmp_path: Path, demo_dataset: Path, cli: Callable[[list[str], Path], tuple[int, str, str]]
) -> None:
    code, _, err = cli(
        ["outlook", "--data", str(demo_dataset), "--as-of", "2026-09-01"], tmp_path / "empty"
    )
    assert code == 2
    assert "deal-close-time" in err and "train close-time" in err


def test_service_outlook_equals_the_offline_outlook(trained, demo_dataset, tmp_path) -> None:
    """Deals sent as the service receives them (with their stage history and activities;
    the leads from the loaded history) get the offline outlook's numbers and flags."""
    from datetime import datetime

    from models.close_time import CloseTimeModel
    from pipelines.training import load_dataset
    from serving.deal_outlook import deal_outlook
    from serving.model_store import load_served

    home, _ = trained
    settings = R.RegistrySettings(home=home)
    served = load_served(settings, KIND, tmp_path / "cache", CloseTimeModel.from_bundle)
    assert served.ready
    as_of = pd.Timestamp("2026-09-01")
    offline, offline_flags, _ = outlook(demo_dataset, registry=settings, as_of=as_of)
    tables, *_ = load_dataset(demo_dataset)
    deals = tables["deals"].set_index("deal_id").loc[offline["deal_id"].head(25)].reset_index()
    records = []
    for _, deal in deals.iterrows():
        body = deal.drop(["closed_at", "outcome", "lost_reason"]).to_dict()
        record = {k: (None if pd.isna(v) else v) for k, v in body.items()}
        stages = tables["stage_history"]
        stages = stages[(stages["deal_id"] == deal["deal_id"]) & (stages["entered_at"] < as_of)]
        record["stage_history"] = stages[["stage", "entered_at"]].to_dict("records")
        acts = tables["activities"]
        acts = acts[(acts["deal_id"] == deal["deal_id"]) & (acts["occurred_at"] < as_of)]
        record["activities"] = [
            {k: (None if pd.isna(v) else v) for k, v in a.items() if k != "deal_id"}
            for a in acts.to_dict("records")
        ]
        records.append(record)
    batch = deal_outlook(records, served, history=tables, as_of=datetime(2026, 9, 1))
    assert batch.errors == []
    # the calibrated P(won within 90 d) and the curve's P(lost within 90 d) never sum over 1
    assert (offline["p_won_90d"] + offline["p_lost_90d"] <= 1.0 + 1e-12).all()
    for row, result in enumerate(batch.results):
        assert result["deal_id"] == offline["deal_id"].iloc[row]
        for key in ("p_win", "p_won_30d", "p_won_90d", "p_lost_90d"):
            assert result[key] == pytest.approx(offline[key].iloc[row], abs=1e-9), key
        assert [f["code"] for f in result["flags"]] == [f.code for f in offline_flags[row]]
