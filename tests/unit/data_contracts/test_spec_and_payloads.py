"""The contract spec, the typed storage and the request models built from it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.dataset import CustomField, CustomFields, DatasetManifest
from data_contracts.payloads import record_model, validate_records
from data_contracts.spec import Column, ColumnType
from data_contracts.storage import (
    PANDAS_DTYPES,
    SchemaError,
    coerce_frame,
    read_table,
    write_table,
)
from data_contracts.tables import DEALS, LEADS, TABLES

pytestmark = pytest.mark.unit


def test_tables__every_key_and_relation_names_real_columns() -> None:
    for spec in TABLES.values():
        assert set(spec.key) <= set(spec.column_names)
        for fk in spec.foreign_keys:
            assert fk.column in spec.column_names
            assert fk.parent_column in TABLES[fk.parent].column_names
        for rule in spec.order_rules:
            for ref in (rule.earlier, rule.later):
                table, _, column = ref.rpartition(".")
                assert column in TABLES[table or spec.name].column_names


def test_custom_fields__extend_leads_and_refuse_collisions() -> None:
    manifest = DatasetManifest(
        custom_fields=CustomFields(
            leads=(CustomField(name="erp_system", type=ColumnType.STRING, allowed=("sap", "none")),)
        )
    )
    leads = manifest.contract()["leads"]
    assert leads.column("erp_system").custom
    with pytest.raises(ValueError, match="collides"):
        LEADS.with_custom_fields([Column("budget", ColumnType.FLOAT)])
    with pytest.raises(ValueError, match="does not take custom fields"):
        TABLES["activities"].with_custom_fields([Column("x", ColumnType.FLOAT)])


def test_custom_field__rejects_range_on_a_string() -> None:
    with pytest.raises(ValueError, match="numeric type"):
        CustomField(name="tier", type=ColumnType.STRING, minimum=0)


def test_coerce_frame__reports_unreadable_values_instead_of_coercing_them() -> None:
    raw = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c"],
            "created_at": ["2026-01-01", "2026-01-02T10:00:00+08:00", "yesterday"],
            "budget": ["1.5", "lots", ""],
        }
    )
    loaded = coerce_frame(raw, LEADS)
    assert [(i.row, i.column, i.value) for i in loaded.issues] == [
        (2, "created_at", "yesterday"),
        (1, "budget", "lots"),
    ]
    assert loaded.frame["created_at"].iloc[1] == pd.Timestamp("2026-01-02T02:00:00")
    assert pd.isna(loaded.frame["budget"].iloc[2])  # blank is null, not an issue
    assert list(loaded.frame.columns) == LEADS.column_names
    assert {c: str(t) for c, t in loaded.frame.dtypes.items()} == {
        c.name: PANDAS_DTYPES[c.dtype] for c in LEADS.columns
    }
    assert "source" in loaded.absent_columns


def test_coerce_frame__names_missing_required_and_unknown_columns() -> None:
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['created_at'\]"):
        coerce_frame(pd.DataFrame({"lead_id": ["a"]}), LEADS)
    with pytest.raises(SchemaError, match=r"unknown column.*'colour'"):
        coerce_frame(
            pd.DataFrame({"lead_id": ["a"], "created_at": ["2026-01-01"], "colour": ["red"]}), LEADS
        )


def test_coerce_frame__refuses_fractional_integers() -> None:
    spec = LEADS.with_custom_fields([Column("employees", ColumnType.INTEGER)])
    raw = pd.DataFrame(
        {"lead_id": ["a", "b"], "created_at": ["2026-01-01"] * 2, "employees": ["3", "2.5"]}
    )
    loaded = coerce_frame(raw, spec)
    assert [(i.row, i.reason) for i in loaded.issues] == [(1, "not a whole number")]
    assert loaded.frame["employees"].iloc[0] == 3


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_write_then_read__round_trips_types(tmp_path: Path, suffix: str) -> None:
    raw = pd.DataFrame(
        {
            "deal_id": ["d1", "d2"],
            "created_at": ["2026-01-01T08:00:00", "2026-01-03T09:30:00"],
            "amount": ["1000.5", ""],
            "currency": ["CNY", "CNY"],
            "outcome": ["won", "open"],
            "closed_at": ["2026-02-01T00:00:00", ""],
        }
    )
    typed = coerce_frame(raw, DEALS).frame
    path = write_table(typed, tmp_path / f"deals.{suffix}")
    again = read_table(path, DEALS)
    assert again.issues == []
    pd.testing.assert_frame_equal(again.frame, typed)


def test_record_model__leaves_outcome_fields_out_of_requests() -> None:
    model = record_model(LEADS)
    assert "converted_at" not in model.model_fields
    assert "disqualified_at" not in model.model_fields
    assert "converted_at" in record_model(LEADS, include_outcome=True).model_fields


def test_validate_records__keeps_valid_records_and_reports_each_bad_field() -> None:
    records = [
        {"lead_id": "ok", "created_at": "2026-01-01T00:00:00", "budget": 5000},
        {"lead_id": "bad", "created_at": "2026-01-01", "budget": -1, "source": "billboard"},
        {"lead_id": "str-budget", "created_at": "2026-01-01", "budget": "5000"},
    ]
    valid, errors = validate_records(record_model(LEADS), records, "lead_id")
    assert [i for i, _ in valid] == [0]
    assert valid[0][1].created_at == dt.datetime(2026, 1, 1)  # type: ignore[attr-defined]
    assert {(e.index, e.record_id, e.field) for e in errors} == {
        (1, "bad", "budget"),
        (1, "bad", "source"),
        (2, "str-budget", "budget"),
    }


def test_validate_records__applies_order_rules_within_a_record() -> None:
    model = record_model(DEALS, include_outcome=True)
    record = {
        "deal_id": "d",
        "created_at": "2026-02-01",
        "currency": "CNY",
        "outcome": "won",
        "closed_at": "2026-01-01",
    }
    _, errors = validate_records(model, [record], "deal_id")
    assert len(errors) == 1 and "closed_at is before created_at" in errors[0].message


def test_validate_records__a_mixed_batch_gives_what_one_record_at_a_time_gives() -> None:
    """The batch is validated in one call first; a failing batch must still come back
    record by record: the same valid records at the same indices, the same errors."""
    model = record_model(LEADS)
    good = {"lead_id": "g", "created_at": "2026-01-01T00:00:00", "budget": 10}
    records = [
        good,
        "not an object",
        {**good, "lead_id": "late", "budget": -5},
        {**good, "lead_id": "g2"},
        {"lead_id": "no-created-at"},
        {**good, "lead_id": "g3", "unknown": 1},
        {**good, "lead_id": "g4"},
    ]
    valid, errors = validate_records(model, records, "lead_id")
    assert [i for i, _ in valid] == [0, 3, 6]
    assert [r.lead_id for _, r in valid] == ["g", "g2", "g4"]  # type: ignore[attr-defined]
    one_by_one = [validate_records(model, [r], "lead_id")[1] for r in records]
    expected = [
        (i, e.record_id, e.field, e.message) for i, errs in enumerate(one_by_one) for e in errs
    ]
    assert [(e.index, e.record_id, e.field, e.message) for e in errors] == expected
    assert errors[0].message == "record must be a JSON object"
