"""Batch validation: every contract rule catches its violation, valid rows stay valid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts.dataset import CustomField, CustomFields, DatasetManifest, write_manifest
from data_contracts.relations import derive_helpers
from data_contracts.spec import ColumnType
from data_contracts.storage import coerce_frame, write_table
from data_contracts.tables import TABLES
from data_contracts.validation import (
    QUARANTINE_COLUMNS,
    DataValidationError,
    ValidationReport,
    ValidationSettings,
    _run_suite,
    ephemeral_context,
    gx_batch_fingerprint,
    load_valid_tables,
    validate_dataset,
)

pytestmark = pytest.mark.unit

Tables = dict[str, dict[str, list[object]]]


def base_tables() -> Tables:
    """A small, valid CRM history: 4 leads, 3 deals, 4 activities, 4 stage entries."""
    return {
        "leads": {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "name": ["Acme", "Beta", "Gamma", "Delta"],
            "created_at": [
                "2025-01-01T09:00:00", "2025-01-02T09:00:00", "2025-01-03T09:00:00",
                "2025-01-04T09:00:00",
            ],
            "source": ["website", "wechat", "referral", "phone"],
            "industry": ["technology", "retail", "finance", "other"],
            "company_size": ["size_11_50", "size_1_10", "size_51_200", "size_1000_plus"],
            "seniority": ["manager", "director", "vp", "c_level"],
            "budget": [1000.0, 0.0, None, 250000.0],
            "authority": ["decision_maker", "influencer", "end_user", "decision_maker"],
            "need": ["high", "low", "medium", "high"],
            "timeline": ["within_3_months", "over_6_months", "within_1_month", "within_6_months"],
            "owner_id": ["U1", "U2", "U1", "U2"],
            "converted_at": ["2025-01-10T09:00:00", None, None, None],
            "disqualified_at": [None, "2025-01-05T09:00:00", None, None],
        },
        "deals": {
            "deal_id": ["D1", "D2", "D3"],
            "lead_id": ["L1", "L1", None],
            "created_at": ["2025-01-10T10:00:00", "2025-01-11T10:00:00", "2025-01-12T10:00:00"],
            "owner_id": ["U1", "U1", "U2"],
            "amount": [5000.0, 1000.0, None],
            "currency": ["CNY", "CNY", "USD"],
            "product": ["pro", "basic", "pro"],
            "expected_close_date": ["2025-03-01", "2025-04-01", None],
            "closed_at": ["2025-02-20T10:00:00", None, "2025-02-01T10:00:00"],
            "outcome": ["won", "open", "lost"],
            "lost_reason": [None, None, "price"],
        },
        "activities": {
            "activity_id": ["A1", "A2", "A3", "A4"],
            "lead_id": ["L1", "L1", None, "L3"],
            "deal_id": [None, "D1", "D2", None],
            "occurred_at": [
                "2025-01-05T09:00:00", "2025-01-15T09:00:00", "2025-01-16T09:00:00",
                "2025-01-06T09:00:00",
            ],
            "activity_type": ["email_open", "close_date_changed", "call", "web_visit"],
            "new_expected_close_date": [None, "2025-03-15", None, None],
        },
        "stage_history": {
            "deal_id": ["D1", "D1", "D1", "D2"],
            "stage": ["qualification", "proposal", "won", "qualification"],
            "entered_at": [
                "2025-01-10T10:00:00", "2025-01-20T10:00:00", "2025-02-20T10:00:00",
                "2025-01-11T10:00:00",
            ],
        },
    }  # fmt: skip


def write_dataset(
    directory: Path,
    tables: Tables,
    manifest: DatasetManifest | None = None,
    *,
    raw: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write ``tables`` (typed by the contract) as a dataset; ``raw`` frames are written as
    given (CSV, all text) to test reading problems."""
    manifest = manifest or DatasetManifest(source="test")
    contract = manifest.contract()
    directory.mkdir(parents=True, exist_ok=True)
    for name, spec in contract.items():
        path = manifest.table_path(directory, name)
        if raw and name in raw:
            raw[name].to_csv(path.with_suffix(".csv"), index=False)
            continue
        frame = coerce_frame(pd.DataFrame(tables[name]), spec).frame
        write_table(frame, path)
    write_manifest(directory, manifest)
    return directory


def quarantine(report: ValidationReport, table: str) -> pd.DataFrame:
    path = report.report_dir / "quarantine" / f"{table}.csv"
    return pd.read_csv(path, dtype="str", keep_default_na=False)


def broken(report: ValidationReport, table: str) -> set[tuple[int, str, str]]:
    """(row, rule, column) of every quarantine line of ``table``."""
    q = quarantine(report, table)
    return {
        (int(r), rule, col)
        for r, rule, col in zip(q["_row"], q["_rule"], q["_column"], strict=True)
    }


def mutate(tables: Tables, table: str, row: int, **values: object) -> Tables:
    for column, value in values.items():
        tables[table][column][row] = value
    return tables


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "clean", base_tables())


def test_validate__passes_clean_dataset_and_writes_empty_quarantines(clean: Path) -> None:
    # given a valid dataset / when validated
    report = validate_dataset(clean)
    # then every table passes and every quarantine file exists with only its header
    assert report.passed, report.summary()
    for name, spec in TABLES.items():
        q = quarantine(report, name)
        assert q.empty
        assert list(q.columns) == [*QUARANTINE_COLUMNS, *spec.column_names]
    summary = json.loads((clean / "validation" / "summary.json").read_text(encoding="utf-8"))
    assert summary["passed"] is True
    assert summary["tables"]["activities"]["rows"] == 4
    assert (
        (clean / "validation" / "summary.md")
        .read_text(encoding="utf-8")
        .startswith("# Validation PASSED")
    )


# (name, table, row, {column: value}, rule, column reported)
CASES: list[tuple[str, str, int, dict[str, object], str, str]] = [
    ("not_null", "deals", 1, {"currency": None}, "not_null", "currency"),
    ("in_set", "leads", 2, {"source": "fax"}, "in_set", "source"),
    ("between", "leads", 3, {"budget": -5.0}, "between", "budget"),
    ("regex_currency", "deals", 0, {"currency": "rmb"}, "regex", "currency"),
    ("unknown_activity_type", "activities", 0, {"activity_type": "fax_sent"}, "in_set",
     "activity_type"),
    ("unknown_stage", "stage_history", 3, {"stage": "contract_signed"}, "in_set", "stage"),
    ("activity_to_unknown_lead", "activities", 3, {"lead_id": "L99"}, "foreign_key", "lead_id"),
    ("activity_to_unknown_deal", "activities", 2, {"deal_id": "D99"}, "foreign_key", "deal_id"),
    ("deal_to_unknown_lead", "deals", 1, {"lead_id": "L99"}, "foreign_key", "lead_id"),
    ("stage_to_unknown_deal", "stage_history", 3, {"deal_id": "D99"}, "foreign_key", "deal_id"),
    ("lead_converts_before_created", "leads", 0, {"converted_at": "2024-12-31T09:00:00"},
     "order", "converted_at"),
    ("lead_disqualified_before_created", "leads", 1, {"disqualified_at": "2024-12-01T00:00:00"},
     "order", "disqualified_at"),
    ("deal_closes_before_created", "deals", 0, {"closed_at": "2025-01-09T10:00:00"}, "order",
     "closed_at"),
    ("deal_created_before_its_lead", "deals", 1, {"created_at": "2024-12-31T10:00:00"}, "order",
     "created_at"),
    ("stage_entered_before_deal_created", "stage_history", 0,
     {"entered_at": "2025-01-09T10:00:00"}, "order", "entered_at"),
    ("won_deal_without_closed_at", "deals", 0, {"closed_at": None}, "conditional_null",
     "closed_at"),
    ("open_deal_with_closed_at", "deals", 1, {"closed_at": "2025-02-01T10:00:00"},
     "conditional_null", "closed_at"),
    ("close_date_change_without_date", "activities", 1, {"new_expected_close_date": None},
     "conditional_null", "new_expected_close_date"),
    ("new_close_date_on_other_activity", "activities", 0,
     {"new_expected_close_date": "2025-05-01"}, "conditional_null", "new_expected_close_date"),
    ("activity_without_lead_or_deal", "activities", 3, {"lead_id": None}, "at_least_one_of",
     "lead_id|deal_id"),
    ("lead_converted_and_disqualified", "leads", 0, {"disqualified_at": "2025-01-11T09:00:00"},
     "at_most_one_of", "converted_at|disqualified_at"),
    ("duplicate_lead_id", "leads", 3, {"lead_id": "L3"}, "unique", "lead_id"),
    ("duplicate_stage_entry", "stage_history", 1,
     {"stage": "qualification", "entered_at": "2025-01-10T10:00:00"}, "unique",
     "deal_id|stage|entered_at"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "row", "values", "rule", "column"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_suite__catches_each_rule_violation_and_keeps_the_valid_rows(
    tmp_path: Path, table: str, row: int, values: dict[str, object], rule: str, column: str
) -> None:
    # given a valid dataset with one row of one table broken
    directory = write_dataset(tmp_path / "ds", mutate(base_tables(), table, row, **values))
    # when validated
    report = validate_dataset(directory)
    # then that row is quarantined for that rule on that column
    lines = broken(report, table)
    assert (row, rule, column) in lines, lines
    # and the only other quarantined rows are the ones a duplicate key also drags in
    others = {r for r, _, _ in lines} - {row}
    if rule == "unique":
        assert others == {2} if table == "leads" else others == {0}
    else:
        assert others == set(), lines
    # and no other table loses a row
    for other in TABLES:
        if other != table:
            assert quarantine(report, other).empty, other
    # and the quarantine line carries the GX expectation, a reason and the row's values
    q = quarantine(report, table)
    line = q[(q["_row"] == str(row)) & (q["_rule"] == rule)].iloc[0]
    assert line["_expectation"].startswith("expect_")
    assert len(line["_reason"]) > 20
    key = TABLES[table].key[0]
    assert line[key] == str(values.get(key, base_tables()[table][key][row]))


def test_suite__catches_stage_entered_before_deal_created(tmp_path: Path) -> None:
    # given a stage entered a day before its deal was created
    tables = mutate(base_tables(), "stage_history", 3, entered_at="2025-01-10T09:59:59")
    directory = write_dataset(tmp_path / "ds", tables)
    # when validated
    report = validate_dataset(directory)
    # then the stage row breaks the order rule, checked by GX on the joined parent timestamp
    q = quarantine(report, "stage_history")
    assert list(q["_row"]) == ["3"]
    assert q["_expectation"].iloc[0] == "expect_column_pair_values_a_to_be_greater_than_b"
    assert "before its deal exists" in q["_reason"].iloc[0]


def test_parse__reports_unreadable_amount_with_its_raw_text(tmp_path: Path) -> None:
    # given a deals CSV with 'abc' in amount and a bad date
    tables = base_tables()
    deals = pd.DataFrame(tables["deals"], dtype="str")
    deals.loc[1, "amount"] = "abc"
    deals.loc[2, "created_at"] = "yesterday"
    manifest = DatasetManifest(source="test", file_format="csv")
    directory = write_dataset(tmp_path / "ds", tables, manifest, raw={"deals": deals})
    # when validated
    report = validate_dataset(directory)
    # then both values are quarantined as parse failures, once each (the null left behind
    # in required created_at is not reported again as not_null)
    assert broken(report, "deals") == {(1, "parse", "amount"), (2, "parse", "created_at")}
    q = quarantine(report, "deals")
    assert q.loc[q["_column"] == "amount", "amount"].iloc[0] == "abc"
    assert "'abc' is not a number" in q.loc[q["_column"] == "amount", "_reason"].iloc[0]
    assert q.loc[q["_column"] == "created_at", "created_at"].iloc[0] == "yesterday"
    # and the other deals rows are valid
    assert report.tables["deals"].bad_rows == 2


def test_schema__reports_missing_required_column_by_name(tmp_path: Path) -> None:
    # given an activities file without its required occurred_at column
    tables = base_tables()
    raw = pd.DataFrame(tables["activities"], dtype="str").drop(columns=["occurred_at"])
    manifest = DatasetManifest(source="test", file_format="csv")
    directory = write_dataset(tmp_path / "ds", tables, manifest, raw={"activities": raw})
    # when validated
    report = validate_dataset(directory)
    # then activities fails as a table, with a message naming the column
    table = report.tables["activities"]
    assert not table.passed and not report.passed
    assert table.issues[0].rule == "schema"
    assert "missing required column(s) ['occurred_at']" in table.issues[0].message
    assert "occurred_at" in table.message(report.report_dir)
    assert report.failing_tables == ["activities"]
    summary = json.loads(report.summary_json.read_text(encoding="utf-8"))
    assert "occurred_at" in summary["tables"]["activities"]["table_failures"][0]["message"]
    # and the other tables are still validated
    assert report.tables["stage_history"].passed


def test_schema__reports_unknown_column_by_name(tmp_path: Path) -> None:
    # given a leads file with a column the contract does not know
    tables = base_tables()
    raw = pd.DataFrame(tables["leads"], dtype="str").assign(favourite_colour="blue")
    manifest = DatasetManifest(source="test", file_format="csv")
    directory = write_dataset(tmp_path / "ds", tables, manifest, raw={"leads": raw})
    # when validated
    report = validate_dataset(directory)
    # then leads fails naming the column; children cannot check their lead foreign keys and
    # say so as warnings rather than quarantining every row
    leads = report.tables["leads"]
    assert not leads.passed
    assert "unknown column(s) ['favourite_colour']" in leads.issues[0].message
    deals = report.tables["deals"]
    assert deals.bad_rows == 0
    assert any("leads" in w.message and not w.blocking for w in deals.issues)


def test_schema__reports_missing_table_file(tmp_path: Path) -> None:
    # given a dataset without its stage history file
    directory = write_dataset(tmp_path / "ds", base_tables())
    (directory / "stage_history.parquet").unlink()
    # when validated / then the table fails and says which file is missing
    report = validate_dataset(directory)
    assert report.failing_tables == ["stage_history"]
    assert "stage_history.parquet not found" in report.tables["stage_history"].issues[0].message


def test_custom_fields__get_the_same_rules(tmp_path: Path) -> None:
    # given a manifest with typed custom fields on leads and deals
    manifest = DatasetManifest(
        source="test",
        custom_fields=CustomFields(
            leads=(
                CustomField(name="erp_system", type=ColumnType.STRING, allowed=("sap", "kingdee")),
                CustomField(name="employees", type=ColumnType.INTEGER, minimum=1, maximum=10**6),
            ),
            deals=(
                CustomField(name="discount", type=ColumnType.FLOAT, nullable=False),
                CustomField(name="strategic", type=ColumnType.BOOLEAN),
            ),
        ),
    )
    tables = base_tables()
    tables["leads"]["erp_system"] = ["sap", "oracle", None, "kingdee"]
    tables["leads"]["employees"] = [10, 20, 0, None]
    tables["deals"]["discount"] = [0.1, None, 0.0]
    tables["deals"]["strategic"] = [True, None, False]
    directory = write_dataset(tmp_path / "ds", tables, manifest)
    # when validated
    report = validate_dataset(directory)
    # then each custom rule catches its row
    assert broken(report, "leads") == {(1, "in_set", "erp_system"), (2, "between", "employees")}
    assert broken(report, "deals") == {(1, "not_null", "discount")}
    # and the column types storage produced satisfy the type expectations of every type
    assert all(not t.issues for t in report.tables.values())


def test_type__a_column_of_the_wrong_dtype_fails_the_table() -> None:
    # given a stage history frame whose entered_at is text instead of datetime
    frame = pd.DataFrame(
        {
            "deal_id": pd.Series(["D1"], dtype="str"),
            "stage": pd.Series(["won"], dtype="str"),
            "entered_at": pd.Series(["2025-01-01"], dtype="str"),
            "__fk__deal_id": [True],
            "__parent__deals__created_at": pd.Series([pd.NaT], dtype="datetime64[us]"),
        }
    )
    # when the suite runs on it
    failures, issues = _run_suite(ephemeral_context(), TABLES["stage_history"], frame)
    # then the table has a type failure naming the column, the order check that cannot
    # compare text with times says so, and no row is blamed for either
    assert [(i.rule, i.column, i.expectation) for i in issues] == [
        ("type", "entered_at", "expect_column_values_to_be_of_type"),
        ("order", "entered_at", "expect_column_pair_values_a_to_be_greater_than_b"),
    ]
    assert "entered_at is not stored as datetime" in issues[0].message
    assert "the check could not run" in issues[1].message
    assert all(i.blocking for i in issues)
    assert failures.empty


def test_threshold__passes_when_bad_share_is_within_max_bad_share(clean: Path) -> None:
    # given one bad lead out of four (25 %)
    tables = mutate(base_tables(), "leads", 2, source="fax")
    directory = write_dataset(clean.parent / "one_bad", tables)
    # when validated with a 30 % and a 20 % allowance
    lenient = validate_dataset(directory, ValidationSettings(max_bad_share=0.3))
    strict = validate_dataset(directory, ValidationSettings(max_bad_share=0.2))
    # then the first passes with the row still quarantined, the second fails on leads
    assert lenient.passed and lenient.quarantined_rows == 1
    assert "passed with 1 of 4 rows (25.00%) quarantined" in lenient.tables["leads"].message(
        lenient.report_dir
    )
    assert not strict.passed and strict.failing_tables == ["leads"]
    assert strict.tables["leads"].bad_share == pytest.approx(0.25)


def test_report_dir__is_configurable(clean: Path, tmp_path: Path) -> None:
    # given a report directory outside the dataset / when validated
    validate_dataset(clean, ValidationSettings(report_dir=tmp_path / "reports"))
    # then the summaries and quarantine go there
    assert (tmp_path / "reports" / "summary.json").is_file()
    assert (tmp_path / "reports" / "quarantine" / "leads.csv").is_file()
    assert not (clean / "validation").exists()


def test_settings__are_strict() -> None:
    with pytest.raises(ValueError, match="max_bad_share"):
        ValidationSettings(max_bad_share=1.5)
    with pytest.raises(ValueError, match="extra"):
        ValidationSettings(max_bad_shares=0.1)  # type: ignore[call-arg]


def test_validate__rejects_a_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a Leadcast dataset"):
        validate_dataset(tmp_path)


def test_load_valid_tables__returns_typed_frames_minus_quarantined_rows(tmp_path: Path) -> None:
    # given two bad activities (rows 0 and 3) and one bad deal
    tables = mutate(base_tables(), "activities", 0, activity_type="fax_sent")
    mutate(tables, "activities", 3, lead_id="L99")
    mutate(tables, "deals", 2, currency="usd")
    directory = write_dataset(tmp_path / "ds", tables)
    # when loaded without requiring a pass
    result = load_valid_tables(directory, require_pass=False)
    # then the bad rows are gone, the index is the file position, the types are the contract's
    activities = result.tables["activities"]
    assert list(activities.index) == [1, 2]
    assert list(activities["activity_id"]) == ["A2", "A3"]
    assert activities["occurred_at"].dtype == "datetime64[us]"
    assert list(result.tables["deals"]["deal_id"]) == ["D1", "D2"]
    assert len(result.tables["leads"]) == 4
    # and the bad rows are exactly those of the quarantine
    assert result.report.quarantined_rows == 3


def test_load_valid_tables__refuses_a_failing_dataset_by_default(tmp_path: Path) -> None:
    tables = mutate(base_tables(), "activities", 0, activity_type="fax_sent")
    directory = write_dataset(tmp_path / "ds", tables)
    with pytest.raises(DataValidationError, match=r"activities: FAILED: 1 of 4 rows \(25\.00%\)"):
        load_valid_tables(directory)


def test_validate__never_modifies_the_dataset_files(clean: Path) -> None:
    before = {p.name: p.read_bytes() for p in clean.iterdir() if p.is_file()}
    validate_dataset(clean)
    after = {p.name: p.read_bytes() for p in clean.iterdir() if p.is_file()}
    assert before == after


def test_gx_batch_fingerprint__is_restored_after_validation(clean: Path) -> None:
    from great_expectations.execution_engine import pandas_execution_engine as engine

    before = engine.HASH_THRESHOLD
    with gx_batch_fingerprint(False):
        assert engine.HASH_THRESHOLD == 0
    assert before == engine.HASH_THRESHOLD
    validate_dataset(clean)
    assert before == engine.HASH_THRESHOLD


def test_relations__join_parent_timestamps_through_the_foreign_key() -> None:
    # given deals referencing a known, an unknown and no lead
    leads = pd.DataFrame(
        {"lead_id": pd.Series(["L1", "L2"], dtype="str"),
         "created_at": pd.to_datetime(["2025-01-01", "2025-02-01"]).astype("datetime64[us]")}
    )  # fmt: skip
    deals = coerce_frame(
        pd.DataFrame(
            {"deal_id": ["D1", "D2", "D3"], "lead_id": ["L2", "L9", None],
             "created_at": ["2025-03-01"] * 3, "currency": ["CNY"] * 3, "outcome": ["open"] * 3}
        ),
        TABLES["deals"],
    ).frame  # fmt: skip
    # when helpers are derived
    out, unchecked = derive_helpers(deals, TABLES["deals"], {"leads": leads})
    # then the foreign-key helper flags only the unknown lead and the parent time is joined
    assert list(out["__fk__lead_id"]) == [True, False, True]
    joined = out["__parent__leads__created_at"]
    assert joined.iloc[0] == pd.Timestamp("2025-02-01")
    assert joined.iloc[1:].isna().all()
    assert unchecked == []
    # and the input frame is untouched
    assert not any(c.startswith("__") for c in deals.columns)


def test_quarantine__lists_a_row_once_per_rule_it_breaks(tmp_path: Path) -> None:
    # given a lead with a bad source and a negative budget
    tables = mutate(base_tables(), "leads", 1, source="fax", budget=-1.0)
    directory = write_dataset(tmp_path / "ds", tables)
    report = validate_dataset(directory)
    # then two quarantine lines, one bad row
    assert broken(report, "leads") == {(1, "in_set", "source"), (1, "between", "budget")}
    assert report.tables["leads"].bad_rows == 1
    counts = json.loads(report.summary_json.read_text(encoding="utf-8"))["tables"]["leads"]
    assert counts["failures_by_rule"] == {"between": 1, "in_set": 1}
    assert counts["failures_by_column"] == {"budget": 1, "source": 1}


def test_quarantine__row_is_the_position_in_the_file(tmp_path: Path) -> None:
    # given 300 leads of which every 50th has a bad source
    n = 300
    positions = np.arange(n)
    leads = {
        "lead_id": [f"L{i:04d}" for i in positions],
        "created_at": ["2025-01-01T00:00:00"] * n,
        "source": ["fax" if i % 50 == 7 else "website" for i in positions],
    }
    tables = base_tables()
    tables["leads"] = leads
    tables["deals"]["lead_id"] = [None, None, None]
    tables["activities"]["lead_id"] = [None, None, None, None]
    tables["activities"]["deal_id"] = ["D1", "D1", "D2", "D3"]
    directory = write_dataset(tmp_path / "ds", tables)
    report = validate_dataset(directory)
    q = quarantine(report, "leads")
    assert [int(r) for r in q["_row"]] == [i for i in range(n) if i % 50 == 7]
    assert list(q["lead_id"]) == [f"L{i:04d}" for i in range(n) if i % 50 == 7]
