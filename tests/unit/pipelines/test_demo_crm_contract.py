"""The generator's output matches the contract: columns, dtypes, every rule; injection is exact.

The rule checks here are plain pandas, written from ``data_contracts.tables`` independently
of the validation engine, so the two can be compared.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts import truth as T
from data_contracts.dataset import read_manifest
from data_contracts.spec import TableSpec
from data_contracts.storage import PANDAS_DTYPES, read_table
from data_contracts.tables import TABLES
from pipelines.commands import generate as generate_command
from pipelines.demo_crm import GeneratorConfig, generate, write_generated
from pipelines.demo_crm.inject import KINDS, injected_count

pytestmark = pytest.mark.unit

END = date(2026, 10, 31)
SNAPSHOT = pd.Timestamp(END) + pd.Timedelta(days=1)


def _hits(table: str, mask: pd.Series | np.ndarray, column: str, rule: str) -> pd.DataFrame:
    rows = np.flatnonzero(np.asarray(mask, dtype=bool))
    return pd.DataFrame({"table": table, "row": rows, "column": column, "rule": rule})


def _parent_lookup(tables: dict[str, pd.DataFrame], spec: TableSpec, parent: str, column: str):
    fk = next(f for f in spec.foreign_keys if f.parent == parent)
    parent_frame = tables[parent].drop_duplicates(fk.parent_column).set_index(fk.parent_column)
    child = tables[spec.name][fk.column]
    return pd.Series(parent_frame[column].reindex(child).to_numpy(), index=child.index)


def contract_violations(
    tables: dict[str, pd.DataFrame], contract: dict[str, TableSpec]
) -> pd.DataFrame:
    """Every (table, row, column, rule) a row breaks, checked with plain pandas."""
    found = []
    for name, spec in contract.items():
        f = tables[name]
        assert list(f.columns) == spec.column_names
        for col in spec.columns:
            s = f[col.name]
            if not col.nullable:
                found.append(_hits(name, s.isna(), col.name, T.RULE_NOT_NULL))
            if col.allowed is not None:
                found.append(_hits(name, s.notna() & ~s.isin(col.allowed), col.name, T.RULE_IN_SET))
            if col.minimum is not None or col.maximum is not None:
                lo = -np.inf if col.minimum is None else col.minimum
                hi = np.inf if col.maximum is None else col.maximum
                found.append(
                    _hits(name, s.notna() & ((s < lo) | (s > hi)), col.name, T.RULE_BETWEEN)
                )
            if col.regex is not None:
                bad = s.notna() & ~s.astype("str").str.fullmatch(col.regex).fillna(False)
                found.append(_hits(name, bad, col.name, T.RULE_REGEX))
            if col.unique:
                found.append(_hits(name, s.duplicated(keep=False), col.name, T.RULE_UNIQUE))
        if len(spec.key) > 1:
            found.append(
                _hits(name, f.duplicated(list(spec.key), keep=False), "|".join(spec.key), "unique")
            )
        for fk in spec.foreign_keys:
            bad = f[fk.column].notna() & ~f[fk.column].isin(tables[fk.parent][fk.parent_column])
            found.append(_hits(name, bad, fk.column, T.RULE_FOREIGN_KEY))
        for rule in spec.order_rules:
            if "." in rule.earlier:
                parent, column = rule.earlier.split(".")
                earlier = _parent_lookup(tables, spec, parent, column)
            else:
                earlier = f[rule.earlier]
            later = f[rule.later]
            bad = earlier.notna() & later.notna() & (later < earlier)
            found.append(_hits(name, bad, rule.later, T.RULE_ORDER))
        for cn in spec.conditional_nulls:
            when = f[cn.when_column].isin(cn.values)
            if cn.mode == "required_iff":
                bad = (when & f[cn.column].isna()) | (~when & f[cn.column].notna())
            else:
                bad = when & f[cn.column].notna()
            found.append(_hits(name, bad, cn.column, T.RULE_CONDITIONAL_NULL))
        for cols in spec.at_least_one_of:
            found.append(
                _hits(
                    name, f[list(cols)].isna().all(axis=1), "|".join(cols), T.RULE_AT_LEAST_ONE_OF
                )
            )
        for cols in spec.at_most_one_of:
            found.append(
                _hits(name, f[list(cols)].notna().sum(axis=1) > 1, "|".join(cols), "at_most_one_of")
            )
    return pd.concat(found, ignore_index=True).sort_values(["table", "row"], ignore_index=True)


@pytest.fixture(scope="module")
def clean():
    return generate(GeneratorConfig(leads=20_000, seed=11, end_date=END))


@pytest.fixture(scope="module")
def dirty():
    return generate(GeneratorConfig(leads=20_000, seed=11, end_date=END, invalid_share=0.02))


def test_generate__every_table_has_the_contract_columns_and_dtypes_in_order(clean):
    contract = clean.manifest.contract()
    for name, spec in contract.items():
        frame = clean.tables[name]
        assert list(frame.columns) == spec.column_names, name
        for col in spec.columns:
            assert str(frame[col.name].dtype) == str(
                pd.Series(dtype=PANDAS_DTYPES[col.dtype]).dtype
            ), (
                name,
                col.name,
            )
    for spec in T.TRUTH_TABLES.values():
        frame = clean.truth[spec.name.removeprefix("truth_")]
        assert list(frame.columns) == spec.column_names


def test_generate__declares_and_fills_the_custom_fields(clean):
    custom = clean.manifest.custom_fields
    assert [f.name for f in custom.leads] == ["erp_system"]
    assert [f.name for f in custom.deals] == ["competitor_involved"]
    assert custom.leads[0].label_zh and custom.deals[0].label_en
    erp = clean.tables["leads"]["erp_system"]
    assert set(erp.dropna()) == set(custom.leads[0].allowed)
    assert 0.1 < erp.isna().mean() < 0.4
    competitor = clean.tables["deals"]["competitor_involved"]
    assert competitor.notna().all() and 0.1 < competitor.mean() < 0.6


def test_generate__default_output_breaks_no_contract_rule(clean):
    violations = contract_violations(clean.tables, clean.manifest.contract())
    assert violations.empty, violations.groupby(["table", "column", "rule"]).size()


def test_generate__ids_and_timestamps_have_the_agreed_shapes(clean):
    leads, deals, acts = clean.tables["leads"], clean.tables["deals"], clean.tables["activities"]
    assert leads["lead_id"].str.fullmatch(r"L\d{7}").all()
    assert deals["deal_id"].str.fullmatch(r"D\d{6}").all()
    assert acts["activity_id"].str.fullmatch(r"A\d{8}").all()
    assert leads["owner_id"].dropna().str.fullmatch(r"U\d{3}").all()
    for name, frame in clean.tables.items():
        for column in frame.columns:
            if str(frame[column].dtype).startswith("datetime64"):
                values = frame[column].dropna()
                assert (values.dt.microsecond == 0).all(), (name, column)
                assert values.dt.tz is None
    for column in ("expected_close_date",):
        assert (deals[column].dropna().dt.normalize() == deals[column].dropna()).all()


def test_generate__history_is_consistent_in_time(clean):
    leads, deals = clean.tables["leads"], clean.tables["deals"]
    acts, stages = clean.tables["activities"], clean.tables["stage_history"]
    stamps = [
        leads["created_at"], leads["converted_at"], leads["disqualified_at"], deals["closed_at"],
        acts["occurred_at"], stages["entered_at"],
    ]  # fmt: skip
    assert all((s.dropna() < SNAPSHOT).all() for s in stamps)
    assert leads["created_at"].is_monotonic_increasing
    assert acts["occurred_at"].is_monotonic_increasing
    # one deal per converted lead, created at conversion by the same owner when assigned
    converted = leads.dropna(subset=["converted_at"]).set_index("lead_id")
    assert sorted(deals["lead_id"]) == sorted(converted.index)
    by_lead = deals.set_index("lead_id")
    assert (by_lead["created_at"] == converted.loc[by_lead.index, "converted_at"]).all()
    assigned = converted["owner_id"].notna()
    owners = converted.loc[assigned, "owner_id"]
    assert (by_lead.loc[owners.index, "owner_id"] == owners).all()
    # stage history starts at qualification at creation; closed deals end in their outcome
    first = stages.groupby("deal_id", sort=False).first()
    last = stages.groupby("deal_id", sort=False).last()
    d = deals.set_index("deal_id")
    assert (first["stage"] == "qualification").all()
    assert (first["entered_at"] == d.loc[first.index, "created_at"]).all()
    closed = d[d["outcome"] != "open"]
    assert (last.loc[closed.index, "stage"] == closed["outcome"]).all()
    assert (last.loc[closed.index, "entered_at"] == closed["closed_at"]).all()
    open_deals = d[d["outcome"] == "open"]
    assert last.loc[open_deals.index, "stage"].isin(["won", "lost"]).sum() == 0
    assert (d["lost_reason"].notna() == (d["outcome"] == "lost")).all()
    # deal activities happen while the deal is open
    deal_acts = acts.dropna(subset=["deal_id"])
    created = d.loc[deal_acts["deal_id"], "created_at"].to_numpy()
    closed_at = d.loc[deal_acts["deal_id"], "closed_at"].fillna(SNAPSHOT).to_numpy()
    assert (deal_acts["occurred_at"].to_numpy() >= created).all()
    assert (deal_acts["occurred_at"].to_numpy() <= closed_at).all()


def test_generate__close_date_changes_follow_a_passed_date_and_move_it_later(clean):
    acts, deals = clean.tables["activities"], clean.tables["deals"].set_index("deal_id")
    moves = acts[acts["activity_type"] == "close_date_changed"]
    assert len(moves) > 100
    assert moves["deal_id"].notna().all() and moves["lead_id"].notna().all()
    previous = moves.groupby("deal_id")["new_expected_close_date"].shift(1)
    previous = previous.fillna(
        deals.loc[moves["deal_id"], "expected_close_date"].set_axis(moves.index)
    )
    assert (moves["occurred_at"] >= previous + pd.Timedelta(days=1)).all()
    assert (moves["new_expected_close_date"] > previous).all()
    # some passed dates are left passed on deals still open at the end
    open_deals = deals[deals["outcome"] == "open"]
    never_moved = open_deals[~open_deals.index.isin(moves["deal_id"])]
    assert (never_moved["expected_close_date"] < SNAPSHOT - pd.Timedelta(days=1)).any()


@pytest.mark.parametrize("table", list(TABLES))
def test_inject__corrupts_share_times_rows_rounded_per_table(dirty, table):
    injected = dirty.truth["injected_invalid"]
    assert (injected["table"] == table).sum() == injected_count(0.02, len(dirty.tables[table]))
    kinds = {(k.column, k.rule) for k in KINDS if k.table == table}
    got = set(map(tuple, injected.loc[injected["table"] == table, ["column", "rule"]].to_numpy()))
    assert got == kinds


def _assert_violations_are_exactly_the_injected_rows(crm) -> None:
    violations = contract_violations(crm.tables, crm.manifest.contract())
    injected = crm.truth["injected_invalid"]
    expected = injected[["table", "row", "column", "rule"]].astype({"row": "int64"})
    got = violations.astype({"row": "int64"})
    assert not got.duplicated(["table", "row"]).any()
    pd.testing.assert_frame_equal(
        got.sort_values(["table", "row"], ignore_index=True).astype(str),
        expected.sort_values(["table", "row"], ignore_index=True).astype(str),
    )


def test_inject__each_injected_row_breaks_exactly_its_stated_rule_and_nothing_else(dirty):
    _assert_violations_are_exactly_the_injected_rows(dirty)


def test_inject__keys_name_the_rows_as_written(dirty):
    injected = dirty.truth["injected_invalid"]
    for table, key_col in (
        ("leads", "lead_id"),
        ("deals", "deal_id"),
        ("activities", "activity_id"),
    ):
        part = injected[injected["table"] == table]
        rows = part["row"].to_numpy(dtype=int)
        assert (dirty.tables[table][key_col].iloc[rows].to_numpy() == part["key"].to_numpy()).all()
    part = injected[injected["table"] == "stage_history"]
    sh = dirty.tables["stage_history"].iloc[part["row"].to_numpy(dtype=int)]
    keys = (
        sh["deal_id"] + "|" + sh["stage"] + "|" + sh["entered_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert (keys.to_numpy() == part["key"].to_numpy()).all()


def test_inject__leaves_the_clean_rows_identical(clean, dirty):
    injected = dirty.truth["injected_invalid"]
    for name, frame in clean.tables.items():
        bad = injected.loc[injected["table"] == name, "row"].to_numpy(dtype=int)
        keep = np.setdiff1d(np.arange(len(frame)), bad)
        pd.testing.assert_frame_equal(
            frame.iloc[keep].reset_index(drop=True),
            dirty.tables[name].iloc[keep].reset_index(drop=True),
        )
    for name in ("leads", "deals", "months", "owners"):
        pd.testing.assert_frame_equal(clean.truth[name], dirty.truth[name])


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_write_generated__files_read_back_typed_with_the_injected_rows_at_their_positions(
    dirty, tmp_path: Path, file_format: str
):
    write_generated(dirty, tmp_path, file_format)
    manifest = read_manifest(tmp_path)
    assert manifest.file_format == file_format and manifest.source == "generator"
    assert manifest.has_truth
    assert set(manifest.provenance) == {
        "seed", "leads", "end_date", "years", "shock_sd", "invalid_share", "generator_version",
    }  # fmt: skip
    contract = manifest.contract()
    loaded = {}
    for name, spec in contract.items():
        table = read_table(manifest.table_path(tmp_path, name), spec)
        assert table.issues == [] and table.absent_columns == []
        loaded[name] = table.frame
    for name, frame in loaded.items():
        pd.testing.assert_frame_equal(frame, dirty.tables[name], check_exact=True)
    injected = read_table(
        tmp_path / "truth" / f"injected_invalid.{file_format}", T.INJECTED_INVALID
    )
    violations = contract_violations(loaded, contract)
    assert len(violations) == len(injected.frame)


def test_generate_command__writes_a_dataset_and_prints_a_summary(tmp_path: Path, capsys):
    parser = argparse.ArgumentParser(prog="leadcast")
    generate_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["generate", "--leads", "2000", "--seed", "3", "--end-date", "2026-10-31",
         "--out", str(tmp_path), "--json"]
    )  # fmt: skip
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["leads"] == 2000
    assert (tmp_path / "manifest.json").is_file() and (
        tmp_path / "truth" / "leads.parquet"
    ).is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["--leads", "0"],
        ["--leads", "10", "--invalid-share", "0.9"],
        ["--leads", "10", "--years", "-1"],
    ],
)
def test_generate_command__rejects_bad_settings_with_exit_code_2(tmp_path: Path, capsys, argv):
    parser = argparse.ArgumentParser(prog="leadcast")
    generate_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["generate", "--seed", "1", "--end-date", "2026-10-31", "--out", str(tmp_path), *argv]
    )
    assert args.func(args) == 2
    assert "--" in capsys.readouterr().err
    assert not (tmp_path / "manifest.json").exists()


def test_generate__handles_a_tiny_crm_with_injection():
    crm = generate(GeneratorConfig(leads=5, seed=0, end_date=END, invalid_share=0.2))
    assert len(crm.tables["leads"]) == 5
    _assert_violations_are_exactly_the_injected_rows(crm)


@pytest.mark.slow
def test_validate_dataset__passes_clean_output_and_quarantines_exactly_the_injected_rows(
    tmp_path: Path,
):
    validation = pytest.importorskip("data_contracts.validation")
    for share, name in ((0.0, "clean"), (0.02, "dirty")):
        config = GeneratorConfig(leads=5_000, seed=13, end_date=END, invalid_share=share)
        crm = generate(config)
        write_generated(crm, tmp_path / name)
        report = validation.validate_dataset(tmp_path / name)
        assert report.passed == (share == 0.0)
        injected = crm.truth["injected_invalid"]
        for table in TABLES:
            path = tmp_path / name / "validation" / "quarantine" / f"{table}.csv"
            lines = (
                pd.read_csv(path, dtype=str, keep_default_na=False)
                if path.exists()
                else pd.DataFrame({"_row": [], "_column": [], "_rule": []})
            )
            got = set(zip(lines["_row"].astype(int), lines["_column"], lines["_rule"], strict=True))
            part = injected[injected["table"] == table]
            want = set(zip(part["row"].astype(int), part["column"], part["rule"], strict=True))
            assert got == want, table
