"""Service settings: the number of workers follows the machine unless told."""

from __future__ import annotations

import os

import pytest

from serving.settings import MAX_DEFAULT_WORKERS, ServiceSettings, default_workers

pytestmark = pytest.mark.unit


def test_default_workers__one_per_usable_cpu_within_bounds() -> None:
    usable = len(os.sched_getaffinity(0))
    assert default_workers() == max(1, min(usable, MAX_DEFAULT_WORKERS))


def test_settings__take_the_workers_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LEADCAST_WORKERS", "3")
    assert ServiceSettings().workers == 3
    monkeypatch.delenv("LEADCAST_WORKERS")
    assert ServiceSettings().workers == default_workers()


def test_settings__refuse_zero_workers(monkeypatch) -> None:
    monkeypatch.setenv("LEADCAST_WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        ServiceSettings()


def test_settings__the_scoring_route_is_untraced_unless_asked(monkeypatch) -> None:
    from opentelemetry.util.http import ExcludeList

    skipped = ExcludeList(ServiceSettings().untraced_urls)
    assert skipped.url_disabled("http://127.0.0.1:3000/v1/leads/score")
    assert not skipped.url_disabled("http://127.0.0.1:3000/v1/leads/scores")
    assert not skipped.url_disabled("http://127.0.0.1:3000/v1/forecast")
    monkeypatch.setenv("LEADCAST_TRACE_SCORING", "1")
    assert ServiceSettings().untraced_urls == []
