"""The scoring service end to end: real ``bentoml serve`` processes over HTTP.

One server per situation: a champion in the registry (scores, errors, auth, caps,
parity with offline scoring), an empty store (rules), a corrupt champion bundle (refused,
rules), an unreachable registry (the verified local cache serves), tight traffic limits
(504, 429) and two workers (a reload in one is followed by the other).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from pydantic import BaseModel

from models import registry as R
from models.bundle import load_bundle
from models.conversion import ConversionModel
from serving.lead_scoring import parse_valid_body
from serving.model_store import ServedModel

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AS_OF = "2026-10-31T12:00:00"
KIND = "lead-conversion"


@pytest.fixture(scope="module")
def trained_home(
    tmp_path_factory: pytest.TempPathFactory,
    demo_dataset: Path,
    cli: Callable[[list[str], Path], tuple[int, str, str]],
) -> Path:
    home = tmp_path_factory.mktemp("svc") / "home"
    code, _, err = cli(["train", "conversion", "--data", str(demo_dataset), "--json"], home)
    assert code == 0, err
    return home


@pytest.fixture(scope="module")
def server(start_server, trained_home: Path, demo_dataset: Path) -> Iterator[Any]:
    s = start_server(
        trained_home,
        LEADCAST_MAX_BATCH="50",
        LEADCAST_MAX_BODY_BYTES="200000",
        LEADCAST_DATA=str(demo_dataset),
    )
    yield s
    s.stop()


def _leads(demo_dataset: Path, n: int) -> list[dict[str, Any]]:
    leads = pd.read_parquet(demo_dataset / "leads.parquet")
    leads = leads[leads["created_at"] < pd.Timestamp(AS_OF)].tail(n)
    body = leads.drop(columns=["converted_at", "disqualified_at"])
    records: list[dict[str, Any]] = json.loads(body.to_json(orient="records", date_format="iso"))
    return records


def test_scores_valid_leads_and_reports_each_invalid_field(server, demo_dataset) -> None:
    leads = _leads(demo_dataset, 3)
    bad = [
        {**leads[0], "lead_id": "BAD1", "budget": "lots"},
        {**leads[0], "lead_id": "BAD2", "converted_at": "2026-01-01T00:00:00"},
        {"lead_id": "BAD3"},
    ]
    body = {"leads": [leads[0], bad[0], leads[1], bad[1], leads[2], bad[2]], "as_of": AS_OF}
    r = server.post("/v1/leads/score", {**body, "reasons": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["index"] for x in out["results"]] == [0, 2, 4]
    for x in out["results"]:
        assert 0.0 < x["probability"] < 1.0 and x["grade"] in "ABCD"
        assert x["scored_by"] == "model" and x["fallback_reason"] is None
        assert x["model_version"] == 1
        assert x["reasons"]["positive"] or x["reasons"]["negative"]
    r = server.post("/v1/leads/score", {**body, "reasons": True, "lang": "zh"})
    assert r.status_code == 200, r.text
    for x, y in zip(r.json()["results"], out["results"], strict=True):
        assert x["probability"] == y["probability"]
        assert [g["text"] for g in x["reasons"]["positive"]] == [
            g["text_zh"] for g in y["reasons"]["positive"]
        ]
    errors = {(e["index"], e["field"]) for e in out["errors"]}
    assert (1, "budget") in errors and (3, "converted_at") in errors
    assert any(i == 5 and f == "created_at" for i, f in errors)
    assert all(e["message"] for e in out["errors"])


def test_an_all_valid_batch_scores_as_it_would_beside_invalid_records(server, demo_dataset) -> None:
    # an all-valid body is parsed straight into lead records; one invalid record sends the
    # whole body down the general path (dicts, then per-record validation): same results
    leads = _leads(demo_dataset, 12)
    late = {**leads[0], "lead_id": "LATE", "created_at": "2026-11-30T00:00:00"}
    for options in ({}, {"reasons": True, "lang": "en"}):
        fast = server.post("/v1/leads/score", {"leads": [*leads, late], "as_of": AS_OF, **options})
        general = server.post(
            "/v1/leads/score",
            {"leads": [*leads, late, {"lead_id": "BAD"}], "as_of": AS_OF, **options},
        )
        assert fast.status_code == general.status_code == 200, (fast.text, general.text)
        assert fast.json()["results"] == general.json()["results"]
        assert len(fast.json()["results"]) == len(leads)
        # the checks after validation hold on both paths: created after the scoring time
        assert [(e["index"], e["field"]) for e in fast.json()["errors"]] == [(12, "created_at")]
        assert (12, "created_at") in {(e["index"], e["field"]) for e in general.json()["errors"]}
    rules = server.post("/v1/leads/score", {"leads": leads, "as_of": AS_OF, "rules": True})
    assert {x["scored_by"] for x in rules.json()["results"]} == {"rules"}


def test_only_a_body_of_valid_leads_without_activities_is_parsed_into_records(
    trained_home, demo_dataset
) -> None:
    # the service's typed parse (the fast path of the test above); anything else must be
    # left to the general path, which reports the errors
    registry = R.RegistrySettings(home=trained_home)
    model = ConversionModel.load(R.download_bundle(registry, KIND, 1, trained_home / "typed"))
    served = ServedModel(KIND, model, 1)

    class Options(BaseModel):
        reasons: bool = False

    def parse(body: dict[str, Any], to: ServedModel[ConversionModel] = served) -> Any:
        return parse_valid_body(json.dumps(body).encode(), to, Options)

    leads = _leads(demo_dataset, 3)
    parsed = parse({"leads": leads, "reasons": True})
    assert parsed is not None and parsed.reasons and len(parsed.leads) == 3
    assert parsed.leads[0].lead_id == leads[0]["lead_id"]
    for odd in ({"activities": []}, {"budget": "lots"}, {"colour": "red"}, {"lead_id": None}):
        assert parse({"leads": [*leads, {**leads[0], **odd}]}) is None, odd
    assert parse({"leads": [*leads, 7]}) is None
    assert parse({"leads": leads}, ServedModel(KIND, None)) is None  # rules serve


def test_served_scores_equal_offline_scores(server, trained_home, demo_dataset) -> None:
    leads = _leads(demo_dataset, 20)
    r = server.post("/v1/leads/score", {"leads": leads, "as_of": AS_OF})
    served = {x["lead_id"]: x["probability"] for x in r.json()["results"]}
    registry = R.RegistrySettings(home=trained_home)
    model = ConversionModel.load(R.download_bundle(registry, KIND, 1, trained_home / "offline"))
    frame = pd.read_parquet(demo_dataset / "leads.parquet").set_index("lead_id")
    frame = frame.loc[[x["lead_id"] for x in leads]].reset_index()
    acts = pd.read_parquet(demo_dataset / "activities.parquet").iloc[0:0]
    snaps = frame.assign(as_of=pd.Timestamp(AS_OF))
    offline, _ = model.score(snaps, acts)
    for lead_id, p in zip(frame["lead_id"], offline["probability"], strict=True):
        assert served[lead_id] == pytest.approx(p, abs=1e-12)


def test_auth_content_type_and_size_guards(server, demo_dataset) -> None:
    body = {"leads": _leads(demo_dataset, 1)}
    assert server.post("/v1/leads/score", body, headers={}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    r = server.post("/v1/leads/score", body, headers=wrong)
    assert r.status_code == 401 and "Authorization" in r.json()["message"]
    r = httpx.post(
        f"{server.url}/v1/leads/score",
        content=b"\x80\x04pickle",
        headers={**AUTH, "Content-Type": "application/python-pickle"},
    )
    assert r.status_code == 415 and "application/json" in r.json()["message"]
    r = httpx.post(
        f"{server.url}/v1/leads/score",
        content=b"leads=1",
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    big = {"leads": [{"lead_id": "x" * 1000, "name": "y" * 5000}] * 45}
    r = server.post("/v1/leads/score", big)
    assert r.status_code == 413 and "bytes" in r.json()["message"]
    r = server.post("/v1/leads/score", {"leads": _leads(demo_dataset, 1) * 51})
    assert r.status_code == 413 and "at most 50" in r.json()["message"]
    r = httpx.post(
        f"{server.url}/v1/leads/score",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert httpx.get(f"{server.url}/livez").status_code == 200  # probes need no token
    assert httpx.get(f"{server.url}/").status_code == 200  # the Swagger UI is public docs


def test_models_and_readiness_say_what_serves(server) -> None:
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["ready"] is True
    assert ready["models"][KIND]["serving"] == "model"
    assert ready["models"][KIND]["source"] == "registry"
    r = httpx.get(f"{server.url}/v1/models", headers=AUTH)
    assert r.status_code == 200
    report = r.json()
    assert report["serving"][KIND]["version"] == 1
    assert report["registry"][KIND]["versions"][0]["is_champion"] is True
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    reloaded = server.post("/v1/models/reload", {})
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["changed"] == {KIND: False, "deal-close-time": False}
    assert reloaded.json()["serving"][KIND]["version"] == 1


def test_forecast_falls_back_to_stage_weighted_and_says_why(server) -> None:
    body = {"period_start": "2026-11-01", "period_end": "2026-11-30", "target": 1e6}
    r = server.post("/v1/forecast", body)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["method"] == "stage_weighted" and "close-time" in f["fallback_reason"]
    assert f["p10"] <= f["p50"] <= f["p90"] and 0.0 <= f["p_target"] <= 1.0
    assert f["baseline"]["method"] == "stage_weighted"
    bad = server.post("/v1/forecast", {"period_start": "2026-11-30", "period_end": "2026-11-01"})
    assert bad.status_code == 422 and bad.json()["error"] == "bad_period"
    far = server.post("/v1/forecast", {"period_start": "2020-01-01", "period_end": "2020-01-31"})
    assert far.status_code == 422 and "already booked" in far.json()["message"]


def test_deal_outlook_without_a_close_time_model_uses_stage_rates(server, demo_dataset) -> None:
    deals = pd.read_parquet(demo_dataset / "deals.parquet")
    deal = deals[deals["outcome"] == "open"].iloc[0]
    body = json.loads(
        deal.drop(["closed_at", "outcome", "lost_reason"])
        .to_frame()
        .T.to_json(orient="records", date_format="iso")
    )[0]
    body["stage_history"] = [{"stage": "proposal", "entered_at": "2026-10-01T09:00:00"}]
    bad = {**body, "deal_id": "BAD", "stage_history": [{"stage": "nope", "entered_at": "x"}]}
    r = server.post("/v1/deals/outlook", {"deals": [body, bad], "as_of": AS_OF})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["index"] for x in out["results"]] == [0]
    x = out["results"][0]
    assert x["scored_by"] == "stage_rates" and x["current_stage"] == "proposal"
    assert 0.0 < x["p_win"] < 1.0 and x["fallback_reason"]
    assert x["ignored_fields"] == ["competitor_involved"]  # a custom field, set aside
    fields = {e["field"] for e in out["errors"] if e["index"] == 1}
    assert {"stage_history[0].stage", "stage_history[0].entered_at"} <= fields


def test_without_a_model_rules_serve_and_every_response_says_so(
    start_server, tmp_path, demo_dataset
) -> None:
    s = start_server(tmp_path / "empty-home")
    try:
        ready = httpx.get(f"{s.url}/readyz").json()
        assert ready["models"][KIND]["serving"] == "rules"
        r = s.post("/v1/leads/score", {"leads": _leads(demo_dataset, 2), "reasons": True})
        out = r.json()
        assert r.status_code == 200 and len(out["results"]) == 2
        for x in out["results"]:
            assert x["scored_by"] == "rules" and "train" in x["fallback_reason"]
            assert len(x["reasons"]) == 4  # one per BANT factor
        assert out["serving"]["serving"] == "rules"
        body = {"leads": _leads(demo_dataset, 1), "reasons": True, "lang": "en"}
        reason = s.post("/v1/leads/score", body).json()["results"][0]["reasons"][0]
        assert reason["text"].startswith(reason["label"]) and "text_zh" not in reason
        r = s.post("/v1/forecast", {"period_start": "2026-11-01", "period_end": "2026-11-30"})
        assert r.status_code == 409 and "LEADCAST_DATA" in r.json()["message"]
    finally:
        s.stop()


def test_a_corrupt_champion_is_refused_and_rules_serve(
    start_server, tmp_path, trained_home, demo_dataset
) -> None:
    """The registry's copy of the champion's LightGBM file is damaged (and restored after):
    a server without a cached copy downloads it, the checksum check refuses it, rules
    serve and say why."""
    home = tmp_path / "corrupt-home"  # same registry (its paths are absolute), no cache
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("serving-cache"))
    boosters = list((trained_home / "mlartifacts").rglob("bundle/*.txt"))
    assert boosters, "the champion's LightGBM file was not found"
    saved = {p: p.read_bytes() for p in boosters}
    try:
        for path in boosters:
            path.write_bytes(saved[path].replace(b"tree", b"tr3e", 5))
        s = start_server(home)
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
    try:
        status = httpx.get(f"{s.url}/readyz").json()["models"][KIND]
        assert status["serving"] == "rules" and "refused" in status["reason"]
        x = s.post("/v1/leads/score", {"leads": _leads(demo_dataset, 1)}).json()["results"][0]
        assert x["scored_by"] == "rules" and "refused" in x["fallback_reason"]
    finally:
        s.stop()


def test_registry_down_the_verified_cache_serves(
    start_server, server, trained_home, demo_dataset
) -> None:
    assert (trained_home / "serving-cache" / KIND / "v1").is_dir()  # filled by `server`
    s = start_server(
        trained_home,
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="3",
    )
    try:
        status = httpx.get(f"{s.url}/readyz").json()["models"][KIND]
        assert status["serving"] == "model" and status["source"] == "cache"
        assert "unreachable" in status["reason"]
        body = {"leads": _leads(demo_dataset, 3), "as_of": AS_OF}
        cached = s.post("/v1/leads/score", body).json()["results"]
        live = server.post("/v1/leads/score", body).json()["results"]
        assert [x["probability"] for x in cached] == [x["probability"] for x in live]
    finally:
        s.stop()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, tmp_path) -> None:
    """Over 1,000 requests generated from /docs.json: no 5xx, every documented response
    matches its schema."""
    st = Path(sys.executable).parent / "st"
    proc = subprocess.run(
        [
            str(st),
            "run",
            f"{server.url}/docs.json",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "350",
            "--phases",
            "coverage,fuzzing",
            "--seed",
            "20261128",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    found = re.search(r"(\d+) generated, (\d+) passed", proc.stdout)
    assert found, tail
    generated, passed = int(found.group(1)), int(found.group(2))
    assert generated >= 1000 and passed == generated, tail


def test_bentoml_build_works_from_the_repository(tmp_path) -> None:
    root = Path(__file__).resolve().parents[2]
    bentoml = Path(sys.executable).parent / "bentoml"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml-home")}
    proc = subprocess.run(
        [str(bentoml), "build", "."], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    built = [
        b
        for b in (tmp_path / "bentoml-home" / "bentos" / "leadcast").iterdir()
        if (b / "bento.yaml").is_file()
    ]
    assert built
    # every module of ours the service imports (lazily too) and the review page's
    # templates are in the bento, or the bento fails where the repository works
    probe = (
        "import importlib, pkgutil, sys, serving, pipelines.training\n"
        "for m in pkgutil.walk_packages(serving.__path__, 'serving.'):\n"
        "    importlib.import_module(m.name)\n"
        "import models.review.render\n"
        "ours = ('serving', 'models', 'features', 'data_contracts', 'pipelines')\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] in ours and getattr(mod, '__file__', None):\n"
        "        print(mod.__file__)\n"
    )
    env["LEADCAST_API_TOKEN"] = "probe"
    files = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True
    )
    assert files.returncode == 0, files.stderr[-2000:]
    needed = [Path(f).resolve().relative_to(root) for f in files.stdout.split()]
    needed += [p.relative_to(root) for p in (root / "models/review/templates").iterdir()]
    src = built[0] / "src"
    missing = [str(p) for p in needed if not (src / p).is_file()]
    assert not missing, f"not in the bento: {missing}"


def test_a_slow_request_times_out_with_504_and_a_full_server_refuses_with_429(
    start_server, trained_home, demo_dataset
) -> None:
    """One worker, one request in flight at most, 0.1 s each: a forecast with 100,000
    draws takes longer (about 0.3 s here) and gets 504; of six sent at once, those that
    find the slot taken get 429. Afterwards the server answers again."""
    s = start_server(
        trained_home,
        LEADCAST_DATA=str(demo_dataset),
        LEADCAST_TIMEOUT_SECONDS="0.1",
        LEADCAST_MAX_CONCURRENCY="1",
    )
    slow = {"period_start": "2026-11-01", "period_end": "2026-11-30", "draws": 100_000}
    body = {"leads": _leads(demo_dataset, 1), "as_of": AS_OF}
    try:
        timed_out = s.post("/v1/forecast", slow)
        assert timed_out.status_code == 504, timed_out.text[:300]
        assert "0.1 seconds" in timed_out.json()["error"]
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: s.post("/v1/forecast", slow), range(6)))
        statuses = [r.status_code for r in answers]
        assert 429 in statuses and 504 in statuses, statuses
        assert set(statuses) <= {429, 504}, statuses
        deadline = time.monotonic() + 60  # the abandoned forecasts may still hold the CPU
        while (r := s.post("/v1/leads/score", body)).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        assert r.json()["results"][0]["scored_by"] == "model"
    finally:
        s.stop()


def test_a_reload_in_one_worker_is_followed_by_the_other(
    start_server, tmp_path, trained_home, demo_dataset
) -> None:
    """Two workers; v2 becomes the champion and one worker is told to reload: within the
    poll interval every answer, whichever worker gives it, says v2 serves. Which worker
    answered is its ``worker_pid``: a run of answers from one worker alone proves nothing
    about the other."""
    home = tmp_path / "reload-home"  # its own registry database (same artifact store)
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("serving-cache"))
    registry = R.RegistrySettings(home=home)
    s = start_server(home, LEADCAST_WORKERS="2", LEADCAST_RELOAD_POLL_SECONDS="0.5")
    try:
        bundle = R.download_bundle(registry, KIND, 1, tmp_path / "v1")
        payload = load_bundle(bundle).payload
        v2 = R.log_training_run(
            registry,
            kind=KIND,
            bundle_dir=bundle,
            params={},
            metrics={"roc_auc": float(payload["metrics"]["roc_auc"])},
            data_fingerprint=payload["fingerprint"],
        )
        R.promote(registry, KIND, v2.version, reason="e2e: reload across workers")
        r = s.post("/v1/models/reload", {})
        assert r.status_code == 200 and r.json()["changed"][KIND] is True
        assert r.json()["serving"][KIND]["version"] == v2.version

        def answer() -> tuple[int, int]:  # a fresh connection each time: either worker
            served = httpx.get(f"{s.url}/v1/models", headers=AUTH, timeout=30).json()
            return int(served["worker_pid"]), int(served["serving"][KIND]["version"])

        latest: dict[int, int] = {}  # worker pid -> the version it last said it serves
        deadline = time.monotonic() + 60
        while len(latest) < 2 or set(latest.values()) != {v2.version}:
            assert time.monotonic() < deadline, f"not both workers serve v2: {latest}"
            pid, served_version = answer()
            latest[pid] = served_version
            time.sleep(0.1)
        assert {answer()[1] for _ in range(20)} == {v2.version}
        results = s.post("/v1/leads/score", {"leads": _leads(demo_dataset, 2)}).json()
        assert {x["model_version"] for x in results["results"]} == {v2.version}
    finally:
        s.stop()
