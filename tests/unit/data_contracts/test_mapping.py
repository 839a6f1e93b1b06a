"""The import mapping: its YAML model and the pure transformation to contract tables."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.dataset import read_manifest
from data_contracts.mapping import ImportMapping, MappingError, parse_mapping, transform
from data_contracts.storage import read_table
from data_contracts.tables import TABLES
from pipelines.importing import write_dataset

pytestmark = pytest.mark.unit


HEADER = """\
name: test
currency: CNY
timezone: {timezone}
sources:
  crm:
    path: crm.csv
tables:
  leads:
    from: crm
    columns:
"""


def mapping(
    columns: str = "lead_id: id\ncreated_at: created",
    *,
    leads: str = "",
    tables: str = "",
    timezone: str = "UTC",
) -> ImportMapping:
    """A mapping of source ``crm``: ``columns`` of leads, more ``leads`` keys, more ``tables``."""
    text = (
        HEADER.format(timezone=timezone)
        + textwrap.indent(textwrap.dedent(columns).strip() + "\n", " " * 6)
        + textwrap.indent(textwrap.dedent(leads).strip() + "\n", " " * 4)
        + textwrap.indent(textwrap.dedent(tables).strip() + "\n", " " * 2)
    )
    return parse_mapping(text, "test.yaml")


def crm(**columns: list[object]) -> dict[str, pd.DataFrame]:
    """A ``crm`` source frame read like a CSV: text, blanks missing."""
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {
        "id": [f"L{i}" for i in range(n)],
        "created": ["2024-01-01T00:00:00"] * n,
    }
    return {"crm": pd.DataFrame({**base, **columns}, dtype="str")}


ORIGIN_MAP = """
    lead_id: id
    created_at: created
    source:
      column: origin
      values: {{web: website, fair: trade_show, none: null}}
      {policy}
"""


# ---- value maps ----------------------------------------------------------------------


def test_value_map__unmapped_error_reports_each_raw_value_with_its_count() -> None:
    # given a value map without 'tv' and 'radio'
    m = mapping(ORIGIN_MAP.format(policy=""))
    frames = crm(origin=["web", "tv", "tv", "radio", "fair", "tv"])
    # when
    result = transform(m, frames)
    # then the import is refused, one error per raw value with its count and rows
    assert not result.ok
    errors = {(p.column, p.count): p for p in result.errors}
    assert set(errors) == {("source", 3), ("source", 1)}
    tv = errors[("source", 3)]
    assert "'tv'" in tv.message and "unmapped" in tv.message
    assert tv.examples == (2, 3, 6)


def test_value_map__many_unmapped_values_are_listed_then_summed_up() -> None:
    m = mapping(ORIGIN_MAP.format(policy=""))
    raw = [f"campaign_{i:02d}" for i in range(25)] + ["campaign_00"]
    result = transform(m, crm(origin=raw))
    errors = result.errors
    assert len(errors) == 21  # 20 values one by one, then the rest
    assert errors[0].message.startswith("raw value 'campaign_00' (2 rows)")
    assert errors[-1].count == 5 and "5 more raw values" in errors[-1].message


def test_value_map__unmapped_keep_passes_the_raw_value_through_with_a_warning() -> None:
    m = mapping(ORIGIN_MAP.format(policy="unmapped: keep"))
    result = transform(m, crm(origin=["web", "tv", None]))
    assert result.ok
    assert result.tables["leads"]["source"].tolist()[:2] == ["website", "tv"]
    assert pd.isna(result.tables["leads"]["source"].iloc[2])
    (warning,) = [p for p in result.problems if p.severity == "warning"]
    assert "'tv'" in warning.message and warning.count == 1


def test_value_map__unmapped_null_drops_the_value_and_counts_it() -> None:
    m = mapping(ORIGIN_MAP.format(policy="unmapped: null"))
    result = transform(m, crm(origin=["tv", "tv", "fair", "none"]))
    assert result.ok
    assert result.tables["leads"]["source"].isna().tolist() == [True, True, False, True]
    (warning,) = [p for p in result.problems if p.severity == "warning"]
    assert warning.count == 2 and "'tv'" in warning.message
    (info,) = [p for p in result.problems if "mapped to null" in p.message]
    assert info.count == 1  # the explicit none → null


def test_value_map__blank_key_maps_missing_values_explicitly() -> None:
    m = mapping(
        """
        lead_id: id
        created_at: created
        source: {column: origin, values: {web: website, "": other}}
        """
    )
    result = transform(m, crm(origin=["web", None, "  "]))
    assert result.tables["leads"]["source"].tolist() == ["website", "other", "other"]


def test_value_map__refuses_a_target_outside_the_contract_vocabulary() -> None:
    with pytest.raises(MappingError, match=r"tables\.leads\.columns\.source.*'webiste'.*allowed"):
        mapping(
            """
            lead_id: id
            created_at: created
            source: {column: origin, values: {web: webiste}}
            """
        )


def test_value_map__yaml_yes_and_no_stay_strings() -> None:
    # YAML 1.1 would read yes/no as booleans and the map would never match the export
    m = mapping(
        """
        lead_id: id
        created_at: created
        authority: {column: dm, values: {yes: decision_maker, no: influencer}}
        """
    )
    result = transform(m, crm(dm=["yes", "no"]))
    assert result.tables["leads"]["authority"].tolist() == ["decision_maker", "influencer"]


# ---- dates ---------------------------------------------------------------------------


def test_dates__format_and_timezone_give_naive_utc() -> None:
    m = mapping(
        """
        lead_id: id
        created_at: {column: created, format: "%d/%m/%Y %H:%M"}
        """,
        timezone="Asia/Shanghai",
    )
    result = transform(m, crm(created=["08/03/2018 10:30", "31/12/2023 23:00"]))
    created = result.tables["leads"]["created_at"]
    assert created.tolist() == [pd.Timestamp("2018-03-08 02:30"), pd.Timestamp("2023-12-31 15:00")]
    assert str(created.dtype) == "datetime64[us]"


def test_dates__column_timezone_overrides_and_offsets_win() -> None:
    m = mapping(
        """
        lead_id: id
        created_at: {column: created, timezone: America/New_York}
        """,
        timezone="Asia/Shanghai",
    )
    result = transform(m, crm(created=["2024-07-01T08:00:00", "2024-07-01T08:00:00", None]))
    assert result.tables["leads"]["created_at"].iloc[0] == pd.Timestamp("2024-07-01 12:00")
    offsets = crm(created=["2024-07-01T08:00:00+02:00", "2024-07-01T08:00:00Z"])
    result = transform(m, offsets)
    assert result.tables["leads"]["created_at"].tolist() == [
        pd.Timestamp("2024-07-01 06:00"),
        pd.Timestamp("2024-07-01 08:00"),
    ]


def test_dates__daylight_saving_gap_shifts_forward_and_is_reported() -> None:
    m = mapping(
        """
        lead_id: id
        created_at: {column: created, format: "%Y-%m-%d"}
        """,
        timezone="America/Sao_Paulo",
    )
    result = transform(m, crm(created=["2017-10-15", "2017-10-16"]))  # midnight did not exist
    assert result.tables["leads"]["created_at"].tolist() == [
        pd.Timestamp("2017-10-15 03:00"),  # 01:00 -02:00
        pd.Timestamp("2017-10-16 02:00"),
    ]
    assert any("daylight-saving" in p.message and p.count == 1 for p in result.problems)


def test_dates__values_off_the_format_become_parse_issues_not_silent_nulls() -> None:
    m = mapping(
        """
        lead_id: id
        created_at: created
        converted_at: {column: won, format: "%Y-%m-%d"}
        """
    )
    result = transform(m, crm(won=["2024-02-01", "01.02.2024", None]))
    leads = result.tables["leads"]
    assert leads["converted_at"].isna().tolist() == [False, True, True]
    (issue,) = result.issues["leads"]
    assert (issue.row, issue.column, issue.value) == (1, "converted_at", "01.02.2024")
    assert "%Y-%m-%d" in issue.reason
    assert any(p.severity == "warning" and p.column == "converted_at" for p in result.problems)


def test_dates__refuse_a_default_and_a_format_on_a_non_date_column() -> None:
    with pytest.raises(MappingError, match="invented data"):
        mapping("lead_id: id\ncreated_at: {column: created, default: '2024-01-01'}")
    with pytest.raises(MappingError, match=r"columns\.region.*apply to date columns"):
        mapping("lead_id: id\ncreated_at: created\nregion: {column: r, format: '%Y'}")


# ---- constants, defaults, if_present -------------------------------------------------


def test_constants__fill_every_row_and_deals_take_the_mapping_currency() -> None:
    m = mapping(
        """
        lead_id: id
        created_at: created
        region: {constant: east_china}
        """,
        tables="""
        deals:
          from: crm
          columns:
            deal_id: id
            created_at: created
            outcome: {constant: open}
        """,
    )
    result = transform(m, crm(x=["a", "b"]))
    assert result.tables["leads"]["region"].tolist() == ["east_china", "east_china"]
    assert result.tables["deals"]["outcome"].tolist() == ["open", "open"]
    assert result.tables["deals"]["currency"].tolist() == ["CNY", "CNY"]


def test_constants__deals_currency_cannot_be_mapped_per_row() -> None:
    with pytest.raises(MappingError, match=r"deals\.columns\.currency.*top-level 'currency'"):
        mapping(
            tables="""
            deals:
              from: crm
              columns: {deal_id: id, created_at: created, outcome: {constant: open}, currency: c}
            """
        )


def test_default__fills_blank_source_values_and_counts_them() -> None:
    m = mapping("lead_id: id\ncreated_at: created\nbudget: {column: b, default: 0}")
    result = transform(m, crm(b=["1200.5", None, ""]))
    assert result.tables["leads"]["budget"].tolist() == [1200.5, 0.0, 0.0]
    assert any(p.count == 2 and "default" in p.message for p in result.problems)


def test_if_present__picks_then_or_otherwise() -> None:
    m = mapping(
        tables="""
        deals:
          from: crm
          columns:
            deal_id: id
            created_at: created
            outcome: {if_present: won, then: won, otherwise: open}
            closed_at: won
        """
    )
    result = transform(m, crm(won=["2024-03-01T10:00:00", None]))
    deals = result.tables["deals"]
    assert deals["outcome"].tolist() == ["won", "open"]
    assert deals["closed_at"].isna().tolist() == [False, True]


# ---- joins and filters ---------------------------------------------------------------

JOINED = """
name: test
currency: BRL
sources:
  mqls: {path: mqls.csv}
  wins: {path: wins.csv}
tables:
  leads:
    from: mqls
    join:
      - {source: wins, left_on: mql_id, right_on: lead}
    columns:
      lead_id: mql_id
      created_at: first
      converted_at: wins.won_at
      owner_id: rep
"""


def joined_sources(wins_lead: list[str]) -> dict[str, pd.DataFrame]:
    mqls = pd.DataFrame(
        {"mql_id": ["a", "b", "c"], "first": ["2018-01-01", "2018-01-02", "2018-01-03"]}
    )
    n = len(wins_lead)
    wins = pd.DataFrame(
        {
            "lead": wins_lead,
            "won_at": ["2018-02-01T12:00:00"] * n,
            "rep": [f"r{i}" for i in range(n)],
        }
    )
    return {"mqls": mqls, "wins": wins}


def test_join__left_join_keeps_every_base_row_and_fills_matches() -> None:
    m = parse_mapping(JOINED)
    result = transform(m, joined_sources(["c", "a", "zzz"]))
    leads = result.tables["leads"]
    assert leads["lead_id"].tolist() == ["a", "b", "c"]  # base order, no row lost or added
    assert leads["converted_at"].notna().tolist() == [True, False, True]
    assert leads["owner_id"].tolist()[0] == "r1" and leads["owner_id"].tolist()[2] == "r0"
    assert pd.isna(leads["owner_id"].iloc[1])


def test_join__refuses_a_key_that_matches_several_rows() -> None:
    m = parse_mapping(JOINED)
    with pytest.raises(MappingError, match=r"wins.*wins\.csv.*more than one row.*\['a'\]"):
        transform(m, joined_sources(["a", "a", "b"]))


def test_join__ambiguous_column_must_be_qualified() -> None:
    text = JOINED.replace("owner_id: rep", "owner_id: rep").replace(
        "  wins: {path: wins.csv}", "  wins: {path: wins.csv}\n  reps: {path: reps.csv}"
    )
    text = text.replace(
        "      - {source: wins, left_on: mql_id, right_on: lead}",
        "      - {source: wins, left_on: mql_id, right_on: lead}\n"
        "      - {source: reps, left_on: mql_id, right_on: lead}",
    )
    frames = joined_sources(["a"])
    frames["reps"] = pd.DataFrame({"lead": ["a"], "rep": ["x"]})
    with pytest.raises(MappingError, match=r"'rep' is in several joined sources.*wins\.rep"):
        transform(parse_mapping(text), frames)


def test_filter__keeps_only_matching_rows_and_reports_the_count() -> None:
    m = mapping(
        tables="""
        deals:
          from: crm
          filter:
            - {column: stage, in: [won, lost]}
            - {column: amount, present: true}
          columns:
            deal_id: id
            created_at: created
            outcome: stage
            amount: amount
            closed_at: created
        """
    )
    frames = crm(stage=["won", "open", "lost", "won"], amount=["10", "20", "30", None])
    result = transform(m, frames)
    deals = result.tables["deals"]
    assert deals["deal_id"].tolist() == ["L0", "L2"]
    assert deals["amount"].tolist() == [10.0, 30.0]
    assert len(result.tables["leads"]) == 4  # the filter is per table
    assert any("kept 2 of 4" in p.message for p in result.problems)


def test_filter__not_in_excludes_values() -> None:
    m = mapping(leads="filter: [{column: origin, not_in: [spam]}]")
    result = transform(m, crm(origin=["spam", "web", None]))
    assert result.tables["leads"]["lead_id"].tolist() == ["L1", "L2"]


# ---- custom fields -------------------------------------------------------------------


def test_custom_fields__are_declared_typed_and_mapped() -> None:
    m = mapping(
        leads="""
    custom_fields:
      landing_page: {type: string, label_en: Landing page, label_zh: 落地页, column: lp}
      tier:
        type: string
        allowed: [gold, silver]
        column: t
        values: {G: gold, S: silver}
      employees: {type: integer, minimum: 0, column: emp}
        """
    )
    result = transform(m, crm(lp=["p1", None], t=["G", "S"], emp=["12", "x"]))
    leads = result.tables["leads"]
    assert leads.columns[-3:].tolist() == ["landing_page", "tier", "employees"]
    assert leads["tier"].tolist() == ["gold", "silver"]
    assert str(leads["employees"].dtype) == "Int64" and leads["employees"].iloc[0] == 12
    assert [(i.column, i.value) for i in result.issues["leads"]] == [("employees", "x")]
    declared = {f.name: f for f in result.custom_fields.leads}
    assert declared["landing_page"].label_zh == "落地页"
    assert declared["tier"].allowed == ("gold", "silver")


def test_custom_fields__refuse_a_mapped_value_outside_their_allowed_values() -> None:
    with pytest.raises(MappingError, match=r"tables\.leads\.custom_fields\.tier: \['bronze'\]"):
        mapping(
            leads="""
    custom_fields:
      tier: {type: string, allowed: [gold], column: t, values: {B: bronze}}
            """
        )


def test_custom_fields__refuse_a_name_that_collides_with_a_contract_column() -> None:
    with pytest.raises(MappingError, match="collides"):
        mapping(leads="custom_fields:\n  region: {type: string, column: r}")


# ---- errors that name the fix --------------------------------------------------------


def test_mapping__names_missing_required_column() -> None:
    with pytest.raises(MappingError) as err:
        mapping(
            tables="""
        deals:
          from: crm
          columns: {deal_id: id}
            """
        )
    message = str(err.value)
    assert "tables.deals" in message
    assert "['created_at', 'outcome']" in message


def test_mapping__names_source_file_missing_columns_and_the_columns_it_has() -> None:
    m = mapping(ORIGIN_MAP.format(policy=""))
    frames = {"crm": pd.DataFrame({"id": ["1"], "created": ["2024-01-01"], "channel": ["web"]})}
    with pytest.raises(MappingError) as err:
        transform(m, frames)
    message = str(err.value)
    assert "crm.csv" in message
    assert "['origin']" in message
    assert "tables.leads.columns.source" in message
    assert "['id', 'created', 'channel']" in message


def test_mapping__rejects_unknown_yaml_key_naming_it() -> None:
    with pytest.raises(MappingError) as err:
        mapping("lead_id: id\ncreated_at: {column: created, fromat: '%Y'}")
    message = str(err.value)
    assert "tables.leads.columns.created_at.fromat" in message
    assert "unknown key 'fromat' (did you mean 'format'?)" in message
    assert "format" in message.split("allowed keys here:")[1]


def test_mapping__rejects_unknown_top_level_key_and_table() -> None:
    with pytest.raises(MappingError, match="unknown key 'currencies'"):
        parse_mapping("name: x\ncurrencies: CNY\nsources: {}\ntables: {}\n")
    with pytest.raises(MappingError, match=r"tables\.opportunities: not a contract table"):
        mapping(tables="opportunities: {from: crm, columns: {deal_id: id}}")


def test_mapping__rejects_a_duplicate_yaml_key() -> None:
    with pytest.raises(MappingError, match="'web' is given twice"):
        mapping(
            """
            lead_id: id
            created_at: created
            source:
              column: origin
              values:
                web: website
                web: referral
            """
        )


def test_mapping__rejects_an_undeclared_source_and_a_bad_timezone() -> None:
    with pytest.raises(MappingError, match="source 'crm2' is not declared"):
        mapping(tables="deals: {from: crm2, columns: {deal_id: id}}")
    with pytest.raises(MappingError, match="unknown timezone 'China'"):
        mapping(timezone="China")


# ---- omitted tables and purity -------------------------------------------------------


def test_omitted_tables__are_written_empty_with_the_contract_columns(tmp_path: Path) -> None:
    m = mapping()
    result = transform(m, crm(x=["a"]))
    write_dataset(result, m, tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest.source == "import:test" and manifest.currency == "CNY"
    for name in ("deals", "activities", "stage_history"):
        loaded = read_table(manifest.table_path(tmp_path, name), manifest.contract()[name])
        assert len(loaded.frame) == 0
        assert loaded.frame.columns.tolist() == TABLES[name].column_names
    leads = read_table(manifest.table_path(tmp_path, "leads"), manifest.contract()["leads"])
    assert leads.frame["lead_id"].tolist() == ["L0"]


def test_transform__does_not_mutate_its_sources() -> None:
    m = parse_mapping(JOINED)
    frames = joined_sources(["a"])
    before = {n: f.copy() for n, f in frames.items()}
    transform(m, frames)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, before[name])


# ---- the documented examples stay valid ----------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mappings"


def test_examples__the_annotated_readme_mapping_parses() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    m = parse_mapping(block, "README.md")
    assert set(m.tables) == set(TABLES)
    assert [f.name for f in m.custom_fields().leads] == ["wechat_followers", "customer_tier"]


def test_examples__the_olist_mapping_parses_and_maps_no_leaking_column() -> None:
    m = parse_mapping((EXAMPLES / "olist.yaml").read_text(encoding="utf-8"), "olist.yaml")
    assert m.currency == "BRL" and set(m.tables) == {"leads", "deals"}
    leaking = {"sr_id", "sdr_id", "seller_id", "business_segment", "lead_type"}
    for tmap in m.tables.values():
        read = {r.rpartition(".")[2] for c in tmap.all_columns().values() for r in c.references}
        assert not read & leaking
