"""What the end-to-end tests share: a real ``bentoml serve`` process and a real headless
Chromium (Debian's, installed by ``make test``; Playwright drives it, nothing downloaded)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.commands.serve import service_command

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: flags that keep Chromium off the network on a closed machine (and root-safe)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: screenshots and other artifacts of the browser tests
ARTIFACTS = Path(os.environ.get("LEADCAST_TEST_ARTIFACTS", "test-artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``bentoml serve`` of the Leadcast service on a free loopback port, ready on return."""

    def __init__(self, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("LEADCAST_")}
        full.pop("MLFLOW_TRACKING_URI", None)
        full |= {
            "LEADCAST_HOME": str(home),
            "LEADCAST_API_TOKEN": TOKEN,
            "LEADCAST_WORKERS": "1",
            **env,
        }
        self.log = home.parent / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            service_command("127.0.0.1", self.port),
            env=full,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"server not ready in time: {self.log.read_text()[-3000:]}")

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.url}{path}", json=body, headers=AUTH if headers is None else headers, timeout=60
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def chromium_path() -> str:
    """Debian's Chromium; a clear failure (not a skip) when it is missing, because CI must
    run the browser tests. ``LEADCAST_SKIP_BROWSER=1`` skips them on a developer box."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("LEADCAST_SKIP_BROWSER") == "1":
        pytest.skip("LEADCAST_SKIP_BROWSER=1: browser tests skipped")
    pytest.fail(
        "Chromium is not installed: run `make browser` (as root it installs Debian's "
        "chromium and a Chinese font), or set LEADCAST_SKIP_BROWSER=1 to skip these tests"
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (the machine's binary, never a download)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def start_server() -> type[Server]:
    """``start_server(home, **env)`` starts a served Leadcast (stop it with ``.stop()``)."""
    return Server


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots (``LEADCAST_TEST_ARTIFACTS``, default
    ``./test-artifacts``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
