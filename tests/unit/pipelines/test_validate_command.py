"""``leadcast validate``: exit codes, messages, JSON output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.dataset import DatasetManifest, write_manifest
from data_contracts.storage import coerce_frame, write_table
from data_contracts.tables import TABLES
from pipelines.commands import validate

pytestmark = pytest.mark.unit


def run(argv: list[str]) -> int:
    """Parse ``argv`` with a parser holding only ``validate`` and run it."""
    parser = argparse.ArgumentParser(prog="leadcast")
    validate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def write_dataset(directory: Path, bad_sources: int = 0, leads: int = 20) -> Path:
    """``leads`` leads (the first ``bad_sources`` with an unknown source), one deal, one
    activity and one stage entry; optional columns left out."""
    created = "2025-01-01T00:00:00"
    tables = {
        "leads": {
            "lead_id": [f"L{i}" for i in range(leads)],
            "created_at": [created] * leads,
            "source": ["fax"] * bad_sources + ["website"] * (leads - bad_sources),
        },
        "deals": {
            "deal_id": ["D1"], "lead_id": ["L1"], "created_at": ["2025-01-02T00:00:00"],
            "currency": ["CNY"], "outcome": ["open"],
        },
        "activities": {
            "activity_id": ["A1"], "lead_id": ["L1"], "occurred_at": [created],
            "activity_type": ["call"],
        },
        "stage_history": {
            "deal_id": ["D1"], "stage": ["qualification"], "entered_at": ["2025-01-02T00:00:00"],
        },
    }  # fmt: skip
    manifest = DatasetManifest(source="test")
    directory.mkdir(parents=True, exist_ok=True)
    for name, spec in TABLES.items():
        frame = coerce_frame(pd.DataFrame(tables[name]), spec).frame
        write_table(frame, manifest.table_path(directory, name))
    write_manifest(directory, manifest)
    return directory


def test_validate__exits_0_on_clean_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = write_dataset(tmp_path / "ds")
    assert run(["validate", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "validation passed" in out
    assert str(directory / "validation" / "summary.md") in out


def test_validate__exits_0_and_says_so_when_bad_rows_are_within_the_share(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given 1 bad lead in 20 (5 %) and an allowance of 10 %
    directory = write_dataset(tmp_path / "ds", bad_sources=1)
    assert run(["validate", str(directory), "--max-bad-share", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "1 row(s) quarantined and left out of training" in out
    assert "leads: passed with 1 of 20 rows (5.00%) quarantined" in out


def test_validate__exits_1_over_threshold_naming_table_rows_share_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given 3 bad leads in 20 (15 %) and the default allowance of 1 %
    directory = write_dataset(tmp_path / "ds", bad_sources=3)
    assert run(["validate", str(directory)]) == 1
    out = capsys.readouterr().out
    report = directory / "validation"
    assert (
        f"leads: FAILED: 3 of 20 rows (15.00%) broke contract rules, more than the allowed "
        f"1.00%; see {report / 'summary.md'} and {report / 'quarantine' / 'leads.csv'}"
    ) in out
    assert "validation FAILED for leads" in out


def test_validate__writes_to_report_dir_and_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    directory = write_dataset(tmp_path / "ds", bad_sources=3)
    reports = tmp_path / "reports"
    code = run(["validate", str(directory), "--report-dir", str(reports), "--json"])
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert code == 1
    assert payload["ok"] is False and payload["exit_code"] == 1
    assert payload["failing_tables"] == ["leads"]
    assert payload["tables"]["leads"]["bad_rows"] == 3
    assert payload["tables"]["leads"]["failures_by_rule"] == {"in_set": 3}
    assert (reports / "quarantine" / "leads.csv").is_file()
    assert "leads: FAILED" in captured.err


def test_validate__exits_2_on_a_directory_that_is_not_a_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run(["validate", str(tmp_path)]) == 2
    assert "is not a Leadcast dataset" in capsys.readouterr().err
    assert run(["validate", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_validate__exits_2_on_a_malformed_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "manifest.json").write_text('{"format_version": 1, "colour": "red"}')
    assert run(["validate", str(tmp_path)]) == 2
    assert "not a valid manifest" in capsys.readouterr().err


def test_validate__rejects_a_share_outside_0_1(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["validate", str(tmp_path), "--max-bad-share", "5"])
    assert exc.value.code == 2


def test_cli__wires_validate_into_leadcast(tmp_path: Path) -> None:
    from pipelines.cli import main

    assert main(["validate", str(write_dataset(tmp_path / "ds"))]) == 0
    assert main(["validate", str(tmp_path / "nothing")]) == 2


def test_validate__quarantines_exactly_the_rows_the_generator_made_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from pipelines.cli import main

    # given two generated datasets: clean, and with 2 % of each table's rows made invalid
    common = ["generate", "--leads", "3000", "--seed", "7", "--end-date", "2026-10-31"]
    assert main([*common, "--out", str(tmp_path / "clean")]) == 0
    assert main([*common, "--invalid-share", "0.02", "--out", str(tmp_path / "bad")]) == 0
    capsys.readouterr()
    # when validated / then the clean one passes and the other fails
    assert main(["validate", str(tmp_path / "clean")]) == 0
    assert main(["validate", str(tmp_path / "bad")]) == 1
    # and the quarantine holds exactly the injected (table, row, rule, column)s
    injected = pd.read_parquet(tmp_path / "bad" / "truth" / "injected_invalid.parquet")
    lines = pd.concat(
        pd.read_csv(tmp_path / "bad" / "validation" / "quarantine" / f"{t}.csv").assign(table=t)
        for t in TABLES
    )
    assert len(injected) > 0
    assert set(
        zip(lines["table"], lines["_row"], lines["_rule"], lines["_column"], strict=True)
    ) == set(
        zip(injected["table"], injected["row"], injected["rule"], injected["column"], strict=True)
    )
    assert len(lines) == len(injected)
