"""The GX suite built from a TableSpec: one expectation per rule, each naming its rule."""

from __future__ import annotations

from typing import Any

import great_expectations as gx
import pandas as pd
import pytest

from data_contracts.dataset import CustomField, CustomFields, DatasetManifest
from data_contracts.expectations import GX_TYPE_NAMES, Rule, build_suite
from data_contracts.relations import derive_helpers
from data_contracts.spec import ColumnType
from data_contracts.storage import coerce_frame
from data_contracts.tables import TABLES
from data_contracts.validation import RESULT_FORMAT, column_groups, ephemeral_context
from data_contracts.vocabulary import SOURCES, codes

pytestmark = pytest.mark.unit


def expectations(table: str, rule: Rule, manifest: DatasetManifest | None = None) -> list[Any]:
    spec = (manifest or DatasetManifest()).contract()[table]
    return [e for e in build_suite(spec).expectations if e.meta["rule"] == rule.value]


def by_column(items: list[Any]) -> dict[str, Any]:
    return {e.meta["column"]: e for e in items}


@pytest.mark.parametrize("table", list(TABLES))
def test_suite__every_expectation_names_a_rule_column_and_reason(table: str) -> None:
    suite = build_suite(TABLES[table])
    assert suite.name == f"leadcast.{table}"
    assert suite.expectations
    for e in suite.expectations:
        assert e.meta["rule"] in {r.value for r in Rule}
        assert e.meta["table"] == table
        assert e.meta["column"]
        # a sentence: what is wrong, then what to do
        assert ":" in e.meta["reason"] and len(e.meta["reason"]) > 30


@pytest.mark.parametrize("table", list(TABLES))
def test_suite__checks_existence_and_type_of_every_column(table: str) -> None:
    spec = TABLES[table]
    exists = by_column(expectations(table, Rule.SCHEMA))
    types = by_column(expectations(table, Rule.TYPE))
    assert set(exists) == set(types) == set(spec.column_names)
    for col in spec.columns:
        assert exists[col.name].expectation_type == "expect_column_to_exist"
        assert types[col.name].type_ == GX_TYPE_NAMES[col.dtype]


def test_suite__requires_non_nullable_columns() -> None:
    not_null = by_column(expectations("deals", Rule.NOT_NULL))
    assert set(not_null) == {"deal_id", "created_at", "currency", "outcome"}
    assert not_null["currency"].expectation_type == "expect_column_values_to_not_be_null"


def test_suite__restricts_vocabulary_columns_to_their_codes() -> None:
    in_set = by_column(expectations("leads", Rule.IN_SET))
    assert in_set["source"].value_set == list(codes(SOURCES))
    assert "fax" not in in_set["source"].value_set
    assert {"source", "industry", "company_size", "seniority", "authority"} <= set(in_set)


def test_suite__bounds_amounts_and_budgets_at_zero() -> None:
    between = by_column(expectations("deals", Rule.BETWEEN))
    assert between["amount"].min_value == 0.0 and between["amount"].max_value is None
    assert by_column(expectations("leads", Rule.BETWEEN))["budget"].min_value == 0.0


def test_suite__checks_currency_with_a_regex() -> None:
    regex = by_column(expectations("deals", Rule.REGEX))
    assert regex["currency"].regex == r"^[A-Z]{3}$"


def test_suite__checks_single_and_compound_keys_for_uniqueness() -> None:
    leads = by_column(expectations("leads", Rule.UNIQUE))
    assert leads["lead_id"].expectation_type == "expect_column_values_to_be_unique"
    stages = expectations("stage_history", Rule.UNIQUE)
    assert len(stages) == 1
    assert stages[0].expectation_type == "expect_compound_columns_to_be_unique"
    assert stages[0].column_list == ["deal_id", "stage", "entered_at"]


def test_suite__checks_order_rules_as_column_pairs_with_parents_joined() -> None:
    order = by_column(expectations("deals", Rule.ORDER))
    closes = order["closed_at"]
    assert closes.expectation_type == "expect_column_pair_values_a_to_be_greater_than_b"
    assert (closes.column_A, closes.column_B) == ("closed_at", "created_at")
    assert closes.or_equal is True and closes.ignore_row_if == "either_value_is_missing"
    after_lead = order["created_at"]
    assert (after_lead.column_A, after_lead.column_B) == (
        "created_at",
        "__parent__leads__created_at",
    )
    stage = expectations("stage_history", Rule.ORDER)[0]
    assert stage.column_B == "__parent__deals__created_at"


def test_suite__checks_foreign_keys_conditional_nulls_and_one_of_rules_on_helpers() -> None:
    fks = by_column(expectations("activities", Rule.FOREIGN_KEY))
    assert {c: e.column for c, e in fks.items()} == {
        "lead_id": "__fk__lead_id",
        "deal_id": "__fk__deal_id",
    }
    assert all(e.value_set == [True] for e in fks.values())
    cond = expectations("deals", Rule.CONDITIONAL_NULL)[0]
    assert (cond.column, cond.meta["column"]) == ("__cond__closed_at", "closed_at")
    any_of = expectations("activities", Rule.AT_LEAST_ONE_OF)[0]
    assert any_of.meta["column"] == "lead_id|deal_id"
    one_of = expectations("leads", Rule.AT_MOST_ONE_OF)[0]
    assert one_of.column == "__one__converted_at__disqualified_at"


def test_suite__gives_custom_fields_the_same_treatment() -> None:
    manifest = DatasetManifest(
        custom_fields=CustomFields(
            deals=(
                CustomField(
                    name="discount", type=ColumnType.FLOAT, nullable=False, minimum=0, maximum=1
                ),
                CustomField(name="channel", type=ColumnType.STRING, allowed=("direct", "partner")),
            )
        )
    )
    assert "discount" in by_column(expectations("deals", Rule.NOT_NULL, manifest))
    between = by_column(expectations("deals", Rule.BETWEEN, manifest))["discount"]
    assert (between.min_value, between.max_value) == (0, 1)
    assert by_column(expectations("deals", Rule.IN_SET, manifest))["channel"].value_set == [
        "direct",
        "partner",
    ]
    assert by_column(expectations("deals", Rule.TYPE, manifest))["discount"].type_ == "float64"


def _deals_frame() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3", "D3"],
            "lead_id": ["L1", "L9", None, "L1"],
            "created_at": ["2025-01-02", "2025-01-02", "2025-01-02", "2024-12-01"],
            "amount": [1.0, -1.0, None, 3.0],
            "currency": ["CNY", "cny", "USD", "CNY"],
            "closed_at": [None, None, "2025-01-01", None],
            "outcome": ["open", "open", "lost", "won"],
        }
    )
    return coerce_frame(raw, TABLES["deals"]).frame


def test_suite__runs_on_one_whole_dataframe_batch_like_validation_runs_it_by_column_group() -> None:
    # given a deals frame breaking several rules, with its helper columns
    leads = pd.DataFrame(
        {
            "lead_id": pd.Series(["L1"], dtype="str"),
            "created_at": pd.Series([pd.Timestamp("2025-01-01")], dtype="datetime64[us]"),
        }
    )
    frame, _ = derive_helpers(_deals_frame(), TABLES["deals"], {"leads": leads})
    suite = build_suite(TABLES["deals"])
    context = ephemeral_context()
    batch_definition = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("deals")
        .add_batch_definition_whole_dataframe("whole")
    )

    def failures(results: list[Any]) -> set[tuple[str, str, tuple[int, ...]]]:
        return {
            (r.expectation_config.meta["rule"], r.expectation_config.meta["column"],
             tuple(r.result["unexpected_index_list"]))
            for r in results
            if not r.success
        }  # fmt: skip

    # when the whole suite runs on one batch of the whole frame
    whole = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    one_batch = failures(whole.validate(suite, result_format=RESULT_FORMAT).results)
    # and group by group, as validation runs it
    grouped: list[Any] = []
    for i, (columns, exps) in enumerate(column_groups(suite, frame)):
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame[columns]})
        part = gx.ExpectationSuite(name=f"g{i}", expectations=exps)
        grouped.extend(batch.validate(part, result_format=RESULT_FORMAT).results)
    # then both find the same rows for the same rules
    assert one_batch == failures(grouped)
    assert one_batch == {
        ("between", "amount", (1,)),
        ("regex", "currency", (1,)),
        ("unique", "deal_id", (2, 3)),
        ("foreign_key", "lead_id", (1,)),
        ("order", "closed_at", (2,)),
        ("order", "created_at", (3,)),
        ("conditional_null", "closed_at", (3,)),
    }
