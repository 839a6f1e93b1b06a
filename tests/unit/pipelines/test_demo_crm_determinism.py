"""Same settings → byte-identical files; a different seed → different data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipelines.demo_crm import GeneratorConfig, generate, write_generated

pytestmark = pytest.mark.unit


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _write(tmp: Path, name: str, file_format: str = "parquet", **settings) -> dict[str, bytes]:
    config = GeneratorConfig(end_date=date(2026, 10, 31), **{"leads": 3000, **settings})
    write_generated(generate(config), tmp / name, file_format)
    return _files(tmp / name)


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_generate__same_seed_gives_byte_identical_files(tmp_path: Path, file_format: str):
    first = _write(tmp_path, "a", file_format, seed=5, invalid_share=0.02)
    second = _write(tmp_path, "b", file_format, seed=5, invalid_share=0.02)
    assert len(first) == 10  # manifest, four tables, five truth tables
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


def test_generate__different_seed_gives_different_data(tmp_path: Path):
    first = _write(tmp_path, "a", seed=5)
    second = _write(tmp_path, "b", seed=6)
    same_when_empty = {"manifest.json", "truth/injected_invalid.parquet"}
    for name in first.keys() - same_when_empty:
        assert first[name] != second[name], name


def test_generate__injection_does_not_change_what_is_drawn(tmp_path: Path):
    clean = generate(GeneratorConfig(leads=3000, seed=5, end_date=date(2026, 10, 31)))
    dirty = generate(
        GeneratorConfig(leads=3000, seed=5, end_date=date(2026, 10, 31), invalid_share=0.05)
    )
    for name, frame in clean.tables.items():
        assert frame.shape == dirty.tables[name].shape
        assert frame.index.equals(dirty.tables[name].index)
    assert clean.truth["leads"].equals(dirty.truth["leads"])
