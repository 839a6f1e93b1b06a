"""The scoring service under load, on loopback, beside a bare ASGI reference.

A conversion model is trained on a generated history (20k leads, seed 7) into a private
store. Then, for the real ``bentoml serve`` process and for the same scoring in a bare
Starlette/uvicorn app (:mod:`benchmarks.bare_asgi`):

- cold start: spawn → ``/readyz`` answers 200 (BentoML only);
- single-lead latency p50 / p99 and requests/s at concurrency 1 and 8 (``--seconds`` each),
  for leads sent alone (what the targets are checked on) and, recorded beside them, for
  the same leads each with its recorded activities (the touch features' general path);
- leads/s for 1,000-lead batches, reasons off, on in one language (``"lang": "en"``, what the
  reasons target is checked on) and on in both: the throughput with four clients per
  worker, each request on a new connection (the figure the target is checked against: a
  service's throughput is measured with its workers busy; see :func:`_batches`), and a
  single sequential client on one kept-alive connection beside it.

Each figure a target is checked on is measured in three trials (one with ``--quick``) and
the median is checked; every trial is in the JSON. On this machine one trial of the same
code moves by up to ±25% from one run to the next, which made single runs pass or fail
on noise. The bare reference runs as many uvicorn workers as the service. The load comes
from aiohttp (C-parsed HTTP) with request bodies serialised beforehand, so that the
client takes as little as it can of the two cores it shares with the server.

Targets (service issue): single-lead p50 ≤ 1.5 × the bare reference's and p99 ≤ 20 ms
at concurrency 8; ≥ 50,000 leads/s in 1,000-lead batches with reasons off and ≥ 20,000
with reasons on; cold start ≤ 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import pandas as pd

from benchmarks.harness import Result
from models.registry import RegistrySettings
from pipelines.commands.serve import service_command
from pipelines.demo_crm import GeneratorConfig, generate, write_generated
from pipelines.training import train_conversion
from serving.settings import default_workers

TOKEN = "bench-token"
#: trials of each checked figure in a full run; the median is checked (the machine's noise
#: moves one trial of the same code by ±25%), every trial is kept in the JSON
TRIALS = 3
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], limit: float = 120.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready in {limit} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _with_activities(
    records: list[dict[str, Any]], activities: pd.DataFrame
) -> list[dict[str, Any]]:
    """The leads that have recorded activities, each with them as its ``activities``."""
    acts = activities.loc[
        activities["lead_id"].isin({r["lead_id"] for r in records}),
        ["lead_id", "activity_id", "occurred_at", "activity_type"],
    ]
    acts = acts.assign(occurred_at=acts["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    by_lead = {
        lead: group.drop(columns="lead_id").to_dict("records")
        for lead, group in acts.groupby("lead_id", sort=False)
    }
    return [r | {"activities": by_lead[r["lead_id"]]} for r in records if r["lead_id"] in by_lead]


def _median_trial(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The median of each figure over the trials, with every trial beside it."""
    keys = ("p50_ms", "p99_ms", "requests_per_second")
    median = {k: round(float(np.median([r[k] for r in runs])), 3) for k in keys}
    return median | {"requests_all_trials": sum(r["requests"] for r in runs), "trials": runs}


async def _single(
    url: str, leads: list[dict[str, Any]], concurrency: int, seconds: float
) -> dict[str, float]:
    """Single-lead requests from ``concurrency`` clients for ``seconds``."""
    bodies = [json.dumps({"leads": [lead]}).encode() for lead in leads]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            async with session.post(url, data=bodies[i % len(bodies)], headers=HEADERS) as r:
                await r.read()
                latencies.append(time.perf_counter() - t)
                r.raise_for_status()
            i += concurrency

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + min(1.0, seconds)
        await asyncio.gather(*(worker(session, k) for k in range(concurrency)))  # warm-up
        latencies.clear()
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "requests_per_second": round(len(ms) / elapsed, 1),
        "requests": len(ms),
    }


async def _batches(
    url: str,
    leads: list[dict[str, Any]],
    reasons: bool,
    rounds: int,
    concurrency: int,
    lang: str | None = None,
) -> float:
    """Leads/s for 1,000-lead requests, ``rounds`` per client, ``concurrency`` clients.

    With more than one client, every request comes on a new connection, as a batch job's
    does. The workers share one listening socket, and a worker that wakes accepts every
    connection waiting; kept-alive connections opened together therefore tend to land on
    one worker and stay there (seen here: all 8 on one of 2 workers, the other idle),
    which measures the kernel's accept order, not the service. A new connection goes to a
    worker that is free to accept it."""
    body = json.dumps({"leads": leads[:1000], "reasons": reasons, "lang": lang}).encode()
    timeout = aiohttp.ClientTimeout(total=120)

    async def post(session: aiohttp.ClientSession) -> None:
        async with session.post(url, data=body, headers=HEADERS) as r:
            await r.read()
            r.raise_for_status()

    async def client(session: aiohttp.ClientSession) -> None:
        for _ in range(rounds):
            await post(session)

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=concurrency > 1)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(post(session) for _ in range(concurrency)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return round(concurrency * rounds * 1000 / elapsed, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    rounds = 5 if args.quick else 20
    trials = 1 if args.quick else TRIALS

    work = Path(tempfile.mkdtemp(prefix="leadcast-bench-service-"))
    data, home = work / "data", work / "home"
    write_generated(
        generate(GeneratorConfig(leads=20_000, seed=7, end_date=date(2026, 10, 31))), data
    )
    outcome = train_conversion(data, registry=RegistrySettings(home=home))
    assert outcome.trained, outcome.message
    leads_frame = pd.read_parquet(data / "leads.parquet").drop(
        columns=["converted_at", "disqualified_at"]
    )
    leads = leads_frame.tail(2000).to_json(orient="records", date_format="iso")
    records: list[dict[str, Any]] = json.loads(leads)
    with_activities = _with_activities(records, pd.read_parquet(data / "activities.parquet"))

    env = {**os.environ, "LEADCAST_HOME": str(home), "LEADCAST_API_TOKEN": TOKEN}
    env.pop("MLFLOW_TRACKING_URI", None)
    out: dict[str, Any] = {}
    bento_port, bare_port = _port(), _port()
    bento = subprocess.Popen(
        service_command("127.0.0.1", bento_port), env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    workers = default_workers()

    def measure(name: str, url: str) -> None:
        for c in (1, 8):
            out[f"{name}_c{c}"] = _median_trial(
                [asyncio.run(_single(url, records, c, seconds)) for _ in range(trials)]
            )
        for c in (1, 8):
            out[f"{name}_activities_c{c}"] = asyncio.run(_single(url, with_activities, c, seconds))
        levels = (
            (False, None, "batch"),
            (True, None, "batch_reasons"),
            (True, "en", "batch_reasons_en"),
        )
        for reasons, lang, key in levels:
            # throughput: four clients per worker keep every worker busy; one client alone
            # (latency-bound, one kept-alive connection) is recorded beside it
            runs = [
                asyncio.run(_batches(url, records, reasons, rounds, 4 * workers, lang))
                for _ in range(trials)
            ]
            out[f"{name}_{key}_leads_per_s"] = float(np.median(runs))
            out[f"{name}_{key}_leads_per_s_trials"] = runs
            out[f"{name}_{key}_c1_leads_per_s"] = asyncio.run(
                _batches(url, records, reasons, rounds, 1, lang)
            )

    try:
        out["cold_start_seconds"] = round(_wait(f"http://127.0.0.1:{bento_port}/readyz", bento), 2)
        measure("bentoml", f"http://127.0.0.1:{bento_port}/v1/leads/score")
    finally:
        _stop(bento)
    bare = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.bare_asgi:app", "--port", str(bare_port),
         "--workers", str(workers), "--log-level", "warning"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{bare_port}/readyz", bare)
        measure("bare", f"http://127.0.0.1:{bare_port}/score")
    finally:
        _stop(bare)

    result = Result(
        "bench_service",
        {"leads": 20_000, "seed": 7, "seconds_per_level": seconds, "workers": workers},
    )
    result.measurements |= out
    ratio = out["bentoml_c1"]["p50_ms"] / out["bare_c1"]["p50_ms"]
    result.measurements["p50_ratio_to_bare_c1"] = round(ratio, 3)
    result.check("single_p50_ratio_to_bare", ratio, at_most=1.5)
    result.check("single_p99_ms_c8", out["bentoml_c8"]["p99_ms"], at_most=20.0)
    result.check(
        "batch_leads_per_s_inverse", 1.0 / out["bentoml_batch_leads_per_s"], at_most=1 / 50_000
    )
    # the issue asks for reasons "in en or zh": checked on one language; both at once
    # (twice the text) are recorded beside it
    result.check(
        "batch_reasons_leads_per_s_inverse",
        1.0 / out["bentoml_batch_reasons_en_leads_per_s"],
        at_most=1 / 20_000,
    )
    result.check("cold_start_seconds", out["cold_start_seconds"], at_most=15.0)
    result.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
