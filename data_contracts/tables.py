"""The four contract tables of DESIGN.md §1.

``leads``, ``activities``, ``deals`` and ``stage_history``.

Every column name used anywhere in Leadcast is defined here once. Timestamps are naive UTC.

Point-in-time note: a deal's ``expected_close_date`` is the date the rep entered when the
deal was created; later changes are ``activities`` rows of type ``close_date_changed``
carrying ``new_expected_close_date``. This keeps the history replayable: a feature at
``as_of`` sees only the changes stamped before it.
"""

from __future__ import annotations

from typing import Final

from data_contracts.spec import (
    Column,
    ColumnType,
    ConditionalNull,
    ForeignKey,
    OrderRule,
    TableSpec,
)
from data_contracts.vocabulary import (
    ACTIVITY_TYPES,
    AUTHORITIES,
    COMPANY_SIZES,
    INDUSTRIES,
    NEEDS,
    OUTCOMES,
    SENIORITIES,
    SOURCES,
    STAGES,
    TIMELINES,
    codes,
)

S, I, F, B, DT, D = (
    ColumnType.STRING,
    ColumnType.INTEGER,
    ColumnType.FLOAT,
    ColumnType.BOOLEAN,
    ColumnType.DATETIME,
    ColumnType.DATE,
)

# Column names, defined once. Import these instead of writing the strings.
LEAD_ID: Final = "lead_id"
DEAL_ID: Final = "deal_id"
ACTIVITY_ID: Final = "activity_id"
CREATED_AT: Final = "created_at"
OWNER_ID: Final = "owner_id"
CONVERTED_AT: Final = "converted_at"
DISQUALIFIED_AT: Final = "disqualified_at"
OCCURRED_AT: Final = "occurred_at"
ACTIVITY_TYPE: Final = "activity_type"
NEW_EXPECTED_CLOSE_DATE: Final = "new_expected_close_date"
AMOUNT: Final = "amount"
CURRENCY: Final = "currency"
PRODUCT: Final = "product"
EXPECTED_CLOSE_DATE: Final = "expected_close_date"
CLOSED_AT: Final = "closed_at"
OUTCOME: Final = "outcome"
LOST_REASON: Final = "lost_reason"
STAGE: Final = "stage"
ENTERED_AT: Final = "entered_at"

LEADS = TableSpec(
    name="leads",
    description="One row per lead.",
    key=(LEAD_ID,),
    custom_fields_allowed=True,
    columns=(
        Column(LEAD_ID, S, nullable=False, unique=True, label_en="Lead", label_zh="线索"),
        Column("name", S, label_en="Contact or company name", label_zh="联系人/公司名称"),
        Column(CREATED_AT, DT, nullable=False, label_en="Created", label_zh="创建时间"),
        Column("source", S, allowed=codes(SOURCES), label_en="Source", label_zh="来源"),
        Column("industry", S, allowed=codes(INDUSTRIES), label_en="Industry", label_zh="行业"),
        Column("region", S, label_en="Region", label_zh="地区"),
        Column(
            "company_size",
            S,
            allowed=codes(COMPANY_SIZES),
            label_en="Company size",
            label_zh="公司规模",
        ),
        Column("job_title", S, label_en="Job title", label_zh="职位"),
        Column("seniority", S, allowed=codes(SENIORITIES), label_en="Seniority", label_zh="职级"),
        Column(
            "budget",
            F,
            minimum=0.0,
            label_en="Declared budget",
            label_zh="预算",
            description="BANT Budget: the budget the lead declared, in the dataset currency.",
        ),
        Column(
            "authority",
            S,
            allowed=codes(AUTHORITIES),
            label_en="Authority",
            label_zh="决策权",
        ),
        Column("need", S, allowed=codes(NEEDS), label_en="Need", label_zh="需求"),
        Column("timeline", S, allowed=codes(TIMELINES), label_en="Timeline", label_zh="采购时间"),
        Column(OWNER_ID, S, label_en="Owner", label_zh="负责人"),
        Column(
            CONVERTED_AT,
            DT,
            outcome=True,
            label_en="Converted",
            label_zh="转化时间",
            description="When the lead became an opportunity (deal); null while not converted.",
        ),
        Column(
            DISQUALIFIED_AT,
            DT,
            outcome=True,
            label_en="Disqualified",
            label_zh="无效时间",
        ),
    ),
    order_rules=(
        OrderRule(CREATED_AT, CONVERTED_AT, "a lead cannot convert before it is created"),
        OrderRule(
            CREATED_AT, DISQUALIFIED_AT, "a lead cannot be disqualified before it is created"
        ),
    ),
    at_most_one_of=((CONVERTED_AT, DISQUALIFIED_AT),),
)

ACTIVITIES = TableSpec(
    name="activities",
    description="One row per touch (engagement event) on a lead and/or a deal.",
    key=(ACTIVITY_ID,),
    columns=(
        Column(ACTIVITY_ID, S, nullable=False, unique=True, label_en="Activity", label_zh="活动"),
        Column(LEAD_ID, S, label_en="Lead", label_zh="线索"),
        Column(DEAL_ID, S, label_en="Deal", label_zh="商机"),
        Column(OCCURRED_AT, DT, nullable=False, label_en="Occurred", label_zh="发生时间"),
        Column(
            ACTIVITY_TYPE,
            S,
            nullable=False,
            allowed=codes(ACTIVITY_TYPES),
            label_en="Activity type",
            label_zh="活动类型",
        ),
        Column(
            NEW_EXPECTED_CLOSE_DATE,
            D,
            label_en="New expected close date",
            label_zh="新的预计成交日期",
            description="Set exactly on close_date_changed activities.",
        ),
    ),
    foreign_keys=(
        ForeignKey(LEAD_ID, "leads", LEAD_ID),
        ForeignKey(DEAL_ID, "deals", DEAL_ID),
    ),
    conditional_nulls=(
        ConditionalNull(
            NEW_EXPECTED_CLOSE_DATE,
            ACTIVITY_TYPE,
            ("close_date_changed",),
            "required_iff",
            "new_expected_close_date is set exactly on close_date_changed activities",
        ),
    ),
    at_least_one_of=((LEAD_ID, DEAL_ID),),
)

DEALS = TableSpec(
    name="deals",
    description="One row per opportunity.",
    key=(DEAL_ID,),
    custom_fields_allowed=True,
    columns=(
        Column(DEAL_ID, S, nullable=False, unique=True, label_en="Deal", label_zh="商机"),
        Column(LEAD_ID, S, label_en="Lead", label_zh="线索"),
        Column(CREATED_AT, DT, nullable=False, label_en="Created", label_zh="创建时间"),
        Column(OWNER_ID, S, label_en="Owner", label_zh="负责人"),
        Column(AMOUNT, F, minimum=0.0, label_en="Amount", label_zh="金额"),
        Column(
            CURRENCY, S, nullable=False, regex=r"^[A-Z]{3}$", label_en="Currency", label_zh="币种"
        ),
        Column(PRODUCT, S, label_en="Product", label_zh="产品"),
        Column(
            EXPECTED_CLOSE_DATE,
            D,
            label_en="Expected close date",
            label_zh="预计成交日期",
            description="As first entered by the rep; changes are close_date_changed activities.",
        ),
        Column(CLOSED_AT, DT, outcome=True, label_en="Closed", label_zh="结束时间"),
        Column(
            OUTCOME,
            S,
            nullable=False,
            allowed=codes(OUTCOMES),
            outcome=True,
            label_en="Outcome",
            label_zh="结果",
        ),
        Column(LOST_REASON, S, outcome=True, label_en="Lost reason", label_zh="输单原因"),
    ),
    foreign_keys=(ForeignKey(LEAD_ID, "leads", LEAD_ID),),
    order_rules=(
        OrderRule(CREATED_AT, CLOSED_AT, "a deal cannot close before it is created"),
        OrderRule("leads.created_at", CREATED_AT, "a deal cannot be created before its lead"),
    ),
    conditional_nulls=(
        ConditionalNull(
            CLOSED_AT,
            OUTCOME,
            ("won", "lost"),
            "required_iff",
            "closed_at is set exactly when the outcome is won or lost",
        ),
    ),
)

STAGE_HISTORY = TableSpec(
    name="stage_history",
    description="One row per stage entry of a deal.",
    key=(DEAL_ID, STAGE, ENTERED_AT),
    columns=(
        Column(DEAL_ID, S, nullable=False, label_en="Deal", label_zh="商机"),
        Column(STAGE, S, nullable=False, allowed=codes(STAGES), label_en="Stage", label_zh="阶段"),
        Column(ENTERED_AT, DT, nullable=False, label_en="Entered", label_zh="进入时间"),
    ),
    foreign_keys=(ForeignKey(DEAL_ID, "deals", DEAL_ID),),
    order_rules=(
        OrderRule(
            "deals.created_at", ENTERED_AT, "a stage cannot be entered before its deal exists"
        ),
    ),
)

#: All contract tables, parents before children.
TABLES: Final[dict[str, TableSpec]] = {t.name: t for t in (LEADS, DEALS, ACTIVITIES, STAGE_HISTORY)}
