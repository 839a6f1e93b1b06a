"""``leadcast import``: the real Olist funnel through examples/mappings/olist.yaml, and the
exit codes on small hand-made exports."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.dataset import MANIFEST_FILE, read_manifest
from data_contracts.storage import read_table
from pipelines.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OLIST = REPO.parent / "shared" / "data" / "olist_marketing_funnel"
OLIST_MAPPING = REPO / "examples" / "mappings" / "olist.yaml"


def read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    manifest = read_manifest(directory)
    contract = manifest.contract()
    out = {}
    for name, spec in contract.items():
        loaded = read_table(manifest.table_path(directory, name), spec)
        assert loaded.issues == []
        out[name] = loaded.frame
    return out


@pytest.fixture(scope="module")
def olist_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    if not (OLIST / "olist_marketing_qualified_leads_dataset.csv").is_file():
        pytest.skip(f"the Olist funnel data is not at {OLIST}; the Olist import test needs it")
    out = tmp_path_factory.mktemp("olist") / "dataset"
    code = main(
        ["import", "--mapping", str(OLIST_MAPPING), "--source-dir", str(OLIST), "--out", str(out)]
    )
    return code, out


def test_olist_import__8000_leads_of_which_842_converted(olist_dataset: tuple[int, Path]) -> None:
    code, out = olist_dataset
    assert code == 0
    tables = read_tables(out)
    leads = tables["leads"]
    assert len(leads) == 8_000 and leads["lead_id"].is_unique
    assert int(leads["converted_at"].notna().sum()) == 842
    assert leads["created_at"].notna().all()
    assert leads["source"].isna().sum() == 1_099 + 60  # 'unknown' and blank origins
    assert leads["landing_page_id"].notna().all()


def test_olist_import__one_open_or_won_deal_per_lead_never_lost(
    olist_dataset: tuple[int, Path],
) -> None:
    _, out = olist_dataset
    tables = read_tables(out)
    leads, deals = tables["leads"], tables["deals"]
    assert len(deals) == 8_000
    assert deals["outcome"].value_counts().to_dict() == {"open": 7_158, "won": 842}
    assert (deals["currency"] == "BRL").all()
    assert deals["owner_id"].isna().all()  # sr_id exists only for won deals: it would leak
    won = deals.set_index("deal_id").loc[deals["outcome"].eq("won").to_numpy()]
    assert won["closed_at"].notna().all()
    converted = leads.set_index("lead_id")["converted_at"]
    assert (won["closed_at"] == converted.loc[won.index]).all()
    assert deals.loc[deals["outcome"] == "open", "closed_at"].isna().all()
    assert len(tables["activities"]) == 0 and len(tables["stage_history"]) == 0


def test_olist_import__validates_and_quarantines_the_win_before_first_contact(
    olist_dataset: tuple[int, Path],
) -> None:
    _, out = olist_dataset
    summary = json.loads((out / "validation" / "summary.json").read_text(encoding="utf-8"))
    assert summary["passed"] is True
    assert {t: v["bad_rows"] for t, v in summary["tables"].items()} == {
        "leads": 1,
        "deals": 1,
        "activities": 0,
        "stage_history": 0,
    }
    for table, key, column in (
        ("leads", "lead_id", "converted_at"),
        ("deals", "deal_id", "closed_at"),
    ):
        quarantine = pd.read_csv(out / "validation" / "quarantine" / f"{table}.csv", dtype=str)
        assert quarantine[key].tolist() == ["b91cf8812365f50ff4bda4bcd6206b05"]
        assert quarantine["_rule"].tolist() == ["order"] and quarantine["_column"].tolist() == [
            column
        ]


def test_olist_import__writes_the_manifest_and_leaves_the_source_alone(
    olist_dataset: tuple[int, Path],
) -> None:
    _, out = olist_dataset
    manifest = read_manifest(out)
    assert manifest.source == "import:olist"
    assert manifest.currency == "BRL"
    assert [f.name for f in manifest.custom_fields.leads] == ["landing_page_id"]
    assert manifest.provenance["sources"]["mqls"]["rows"] == 8_000
    assert manifest.provenance["sources"]["closed_deals"]["sha256"].startswith("1433f402")
    assert not any(OLIST.glob("*.parquet")) and not (OLIST / MANIFEST_FILE).exists()


# ---- exit codes on small exports ---------------------------------------------------------

MAPPING = """\
name: tiny
currency: CNY
sources:
  crm: {path: crm.csv}
tables:
  leads:
    from: crm
    columns:
      lead_id: id
      created_at: created
      converted_at: won
      source:
        column: channel
        values: {web: website, fair: trade_show}
        unmapped: UNMAPPED
"""


def export(tmp_path: Path, rows: str, unmapped: str = "error") -> Path:
    (tmp_path / "crm.csv").write_text(textwrap.dedent(rows), encoding="utf-8")
    path = tmp_path / "tiny.yaml"
    path.write_text(MAPPING.replace("UNMAPPED", unmapped), encoding="utf-8")
    return path


def test_import_cli__exit_2_names_the_file_and_its_columns_when_one_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = export(tmp_path, "id,created,won\nL1,2024-01-01,\n")
    code = main(["import", "--mapping", str(mapping), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "crm.csv" in err and "['channel']" in err and "['id', 'created', 'won']" in err
    assert not (tmp_path / "out").exists()


def test_import_cli__exit_2_lists_unmapped_values_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "id,created,won,channel\nL1,2024-01-01,,web\nL2,2024-01-02,,tv\nL3,2024-01-02,,tv\n"
    code = main(["import", "--mapping", str(export(tmp_path, rows)), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "'tv' (2 rows" in err and "source rows 2, 3" in err
    assert not (tmp_path / "o").exists()


def test_import_cli__refuses_to_replace_a_dataset_without_overwrite(tmp_path: Path) -> None:
    rows = "id,created,won,channel\nL1,2024-01-01,,web\n"
    mapping = export(tmp_path, rows)
    args = ["import", "--mapping", str(mapping), "--out", str(tmp_path / "out"), "--no-validate"]
    assert main(args) == 0
    assert main(args) == 2
    assert main([*args, "--overwrite"]) == 0


def test_import_cli__exit_1_when_kept_unmapped_values_fail_validation(tmp_path: Path) -> None:
    rows = "id,created,won,channel\nL1,2024-01-01,,web\nL2,2024-01-02,,tv\n"
    mapping = export(tmp_path, rows, unmapped="keep")
    out = tmp_path / "out"
    assert main(["import", "--mapping", str(mapping), "--out", str(out)]) == 1
    quarantine = pd.read_csv(out / "validation" / "quarantine" / "leads.csv", dtype=str)
    assert quarantine[["lead_id", "_column", "source"]].values.tolist() == [["L2", "source", "tv"]]
    # the analyst may accept the share of bad rows explicitly
    code = main(
        [
            "import",
            "--mapping",
            str(mapping),
            "--out",
            str(out),
            "--overwrite",
            "--max-bad-share",
            "0.5",
        ]
    )
    assert code == 0


def test_import_cli__unreadable_dates_are_listed_and_count_as_bad_rows(tmp_path: Path) -> None:
    rows = "id,created,won,channel\nL1,2024-01-01,2024-02-30,web\nL2,2024-01-02,,web\n"
    out = tmp_path / "out"
    code = main(["import", "--mapping", str(export(tmp_path, rows)), "--out", str(out), "--json"])
    assert code == 1
    issues = pd.read_csv(out / "import_issues.csv", dtype=str)
    assert issues[["table", "row", "column", "value"]].values.tolist() == [
        ["leads", "0", "converted_at", "2024-02-30"]
    ]
