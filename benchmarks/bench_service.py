"""The scoring service under load, on loopback, beside a bare ASGI reference.

A conversion model is trained on a generated history (20k leads, seed 7) into a private
store. Then, for the real ``bentoml serve`` process and for the same scoring in a bare
Starlette/uvicorn app (:mod:`benchmarks.bare_asgi`):

- cold start: spawn → ``/readyz`` answers 200 (BentoML only);
- single-lead latency p50 / p99 and requests/s at concurrency 1 and 8 (``--seconds`` each);
- leads/s for 1,000-lead batches, reasons off and on.

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

import httpx
import numpy as np
import pandas as pd

from benchmarks.harness import Result
from models.registry import RegistrySettings
from pipelines.commands.serve import service_command
from pipelines.demo_crm import GeneratorConfig, generate, write_generated
from pipelines.training import train_conversion

TOKEN = "bench-token"
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


async def _single(
    url: str, leads: list[dict[str, Any]], concurrency: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient, k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            body = {"leads": [leads[i % len(leads)]]}
            t = time.perf_counter()
            r = await client.post(url, json=body, headers=HEADERS)
            latencies.append(time.perf_counter() - t)
            r.raise_for_status()
            i += concurrency

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client, k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "requests_per_second": round(len(ms) / elapsed, 1),
        "requests": len(ms),
    }


def _batches(url: str, leads: list[dict[str, Any]], reasons: bool, rounds: int) -> float:
    body = {"leads": leads[:1000], "reasons": reasons}
    with httpx.Client(timeout=120) as client:
        client.post(url, json=body, headers=HEADERS).raise_for_status()  # warm-up
        start = time.perf_counter()
        for _ in range(rounds):
            client.post(url, json=body, headers=HEADERS).raise_for_status()
        elapsed = time.perf_counter() - start
    return round(rounds * 1000 / elapsed, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    rounds = 3 if args.quick else 10

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

    env = {**os.environ, "LEADCAST_HOME": str(home), "LEADCAST_API_TOKEN": TOKEN}
    env.pop("MLFLOW_TRACKING_URI", None)
    out: dict[str, Any] = {}
    bento_port, bare_port = _port(), _port()
    bento = subprocess.Popen(
        service_command("127.0.0.1", bento_port), env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def measure(name: str, url: str) -> None:
        for c in (1, 8):
            out[f"{name}_c{c}"] = asyncio.run(_single(url, records, c, seconds))
        out[f"{name}_batch_leads_per_s"] = _batches(url, records, False, rounds)
        out[f"{name}_batch_reasons_leads_per_s"] = _batches(url, records, True, rounds)

    try:
        out["cold_start_seconds"] = round(_wait(f"http://127.0.0.1:{bento_port}/readyz", bento), 2)
        measure("bentoml", f"http://127.0.0.1:{bento_port}/v1/leads/score")
    finally:
        _stop(bento)
    bare = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.bare_asgi:app", "--port", str(bare_port),
         "--log-level", "warning"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{bare_port}/readyz", bare)
        measure("bare", f"http://127.0.0.1:{bare_port}/score")
    finally:
        _stop(bare)

    result = Result("bench_service", {"leads": 20_000, "seed": 7, "seconds_per_level": seconds})
    result.measurements |= out
    ratio = out["bentoml_c1"]["p50_ms"] / out["bare_c1"]["p50_ms"]
    result.measurements["p50_ratio_to_bare_c1"] = round(ratio, 3)
    result.check("single_p50_ratio_to_bare", ratio, at_most=1.5)
    result.check("single_p99_ms_c8", out["bentoml_c8"]["p99_ms"], at_most=20.0)
    result.check(
        "batch_leads_per_s_inverse", 1.0 / out["bentoml_batch_leads_per_s"], at_most=1 / 50_000
    )
    result.check(
        "batch_reasons_leads_per_s_inverse",
        1.0 / out["bentoml_batch_reasons_leads_per_s"],
        at_most=1 / 20_000,
    )
    result.check("cold_start_seconds", out["cold_start_seconds"], at_most=15.0)
    result.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
