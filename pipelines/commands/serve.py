"""``leadcast serve``: the scoring service (BentoML) on this machine."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

EPILOG = """\
Starts `bentoml serve serving.service:Leadcast` with the champion models of the store under
$LEADCAST_HOME (or MLFLOW_TRACKING_URI); --data loads a CRM history for POST /v1/forecast.
Requests need `Authorization: Bearer <token>`:
the token is LEADCAST_API_TOKEN, or a fresh one printed here when it is not set. Binds
127.0.0.1 unless --host says otherwise. Caps: LEADCAST_MAX_BATCH (1000 records),
LEADCAST_MAX_BODY_BYTES (8 MiB), LEADCAST_TIMEOUT_SECONDS (30), LEADCAST_MAX_CONCURRENCY.
Workers: one per CPU by default (--workers, LEADCAST_WORKERS); a reload in one worker is
followed by the others within LEADCAST_RELOAD_POLL_SECONDS (2).

Examples:
  leadcast serve
  LEADCAST_API_TOKEN=s3cret leadcast serve --port 3000
  curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
       -d '{"leads": [{"lead_id": "L1", "created_at": "2026-11-01T09:00:00"}]}' \\
       http://127.0.0.1:3000/v1/leads/score
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the HTTP scoring service (BentoML) with the champion models",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port (3000)")
    parser.add_argument(
        "--data", type=Path, help="dataset directory for POST /v1/forecast (LEADCAST_DATA)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes (LEADCAST_WORKERS; default: one per CPU, at most 8)",
    )
    parser.set_defaults(func=execute)


def service_command(host: str, port: int) -> list[str]:
    """The ``bentoml serve`` command line for the Leadcast service."""
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    return [bentoml, "serve", "serving.service:Leadcast", "--host", host, "--port", str(port)]


EXAMPLE_LEAD = (
    '{"leads": [{"lead_id": "L1", "created_at": "2026-11-01T09:00:00", "source": '
    '"referral", "budget": 500000, "authority": "decision_maker", "need": "high", '
    '"timeline": "within_3_months"}], "reasons": true}'
)


def run_service(
    host: str, port: int, *, home: Path, data: Path | None, workers: int | None = None
) -> int:
    """Serve the store under ``home`` (and the history ``data`` for the forecast) with
    ``workers`` processes (default: LEADCAST_WORKERS, else one per CPU) until interrupted,
    after printing the token (generated when LEADCAST_API_TOKEN is unset), the docs URL
    and a ``curl`` that scores a lead."""
    from serving.settings import default_workers

    env = dict(os.environ, LEADCAST_HOME=str(home.resolve()))
    if data is not None:
        env["LEADCAST_DATA"] = str(data.resolve())
    if workers is not None:
        if workers < 1:
            print("--workers must be at least 1", file=sys.stderr)
            return 2
        env["LEADCAST_WORKERS"] = str(workers)
    n_workers = env.get("LEADCAST_WORKERS") or str(default_workers())
    env.setdefault("LEADCAST_API_TOKEN", secrets.token_urlsafe(24))
    token, base = env["LEADCAST_API_TOKEN"], f"http://{host}:{port}"
    print(f"token: {token}", flush=True)
    print(f"docs:  {base}/   (OpenAPI: {base}/docs.json; readiness: {base}/readyz)")
    print(f"workers: {n_workers}")
    if data is not None:
        print(f"review page (forecast, confidence, sales reports): {base}/ui?token={token}")
    print(
        f"try:   curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: "
        f"application/json' -d '{EXAMPLE_LEAD}' {base}/v1/leads/score",
        flush=True,
    )
    try:
        return subprocess.call(service_command(host, port), env=env)
    except KeyboardInterrupt:
        return 0


def execute(args: argparse.Namespace) -> int:
    home = Path(os.environ.get("LEADCAST_HOME") or ".leadcast")
    return run_service(args.host, args.port, home=home, data=args.data, workers=args.workers)
