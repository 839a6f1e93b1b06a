"""``generate(config)``: the whole demo CRM in memory, as contract-typed frames plus truth.

The wiring of the components; each draws from its own child of ``SeedSequence(seed)`` so the
output is a pure function of the settings (same seed → same frames → byte-identical files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from data_contracts import truth as T
from data_contracts.dataset import CustomField, CustomFields, DatasetManifest
from data_contracts.spec import ColumnType
from data_contracts.tables import (
    ACTIVITY_ID,
    ACTIVITY_TYPE,
    AMOUNT,
    CLOSED_AT,
    CONVERTED_AT,
    CREATED_AT,
    CURRENCY,
    DEAL_ID,
    DISQUALIFIED_AT,
    ENTERED_AT,
    EXPECTED_CLOSE_DATE,
    LEAD_ID,
    LOST_REASON,
    NEW_EXPECTED_CLOSE_DATE,
    OCCURRED_AT,
    OUTCOME,
    OWNER_ID,
    PRODUCT,
    STAGE,
)
from data_contracts.vocabulary import OUTCOMES, STAGES, codes
from pipelines.demo_crm import parameters as P
from pipelines.demo_crm.activities import ACTIVITY_CODES, ActivityRows, draw_activities
from pipelines.demo_crm.calendar import Window, make_window, monthly_shocks
from pipelines.demo_crm.close_dates import close_date_changes, initial_close_days
from pipelines.demo_crm.config import GENERATOR_VERSION, GeneratorConfig
from pipelines.demo_crm.deals import Deals, draw_deals
from pipelines.demo_crm.frames import dates, datetimes, id_strings, take, typed_frame
from pipelines.demo_crm.inject import inject_invalid
from pipelines.demo_crm.leads import (
    CATEGORIES,
    Leads,
    convert_probabilities,
    draw_leads,
    latent_law,
)
from pipelines.demo_crm.owners import Owners, draw_owners

#: random-number streams, one per component; append new ones at the end only
COMPONENTS = (
    "calendar", "owners", "arrival", "attributes", "missing", "text", "conversion", "deals",
    "stages", "close_dates", "activities", "inject",
)  # fmt: skip
ERP_FIELD = "erp_system"
COMPETITOR_FIELD = "competitor_involved"
CUSTOM_FIELDS = CustomFields(
    leads=(
        CustomField(
            name=ERP_FIELD, type=ColumnType.STRING, allowed=P.ERP_CODES,
            label_en="ERP system", label_zh="ERP系统",
            description="The ERP the company runs (none if it runs none).",
        ),
    ),
    deals=(
        CustomField(
            name=COMPETITOR_FIELD, type=ColumnType.BOOLEAN,
            label_en="Competitor involved", label_zh="有竞争对手参与",
            description="Whether a competitor is in the deal.",
        ),
    ),
)  # fmt: skip
LEAD_ID_WIDTH, DEAL_ID_WIDTH, ACTIVITY_ID_WIDTH = 7, 6, 8


@dataclass(frozen=True)
class GeneratedCRM:
    """A generated dataset in memory: the four tables and the truth tables, by name."""

    config: GeneratorConfig
    manifest: DatasetManifest
    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(COMPONENTS))
    return {name: np.random.default_rng(s) for name, s in zip(COMPONENTS, children, strict=True)}


def _lead_frame(
    manifest: DatasetManifest, leads: Leads, lead_ids: pa.Array, owners: Owners
) -> pd.DataFrame:
    cols: dict[str, object] = {
        LEAD_ID: lead_ids,
        "name": leads.name,
        CREATED_AT: datetimes(leads.created_s),
        "budget": leads.budget,
        "job_title": leads.job_title,
        OWNER_ID: take(owners.ids, leads.owner),
        CONVERTED_AT: datetimes(leads.converted_s),
        DISQUALIFIED_AT: datetimes(leads.disqualified_s),
    }
    for field, vocab in CATEGORIES.items():
        cols[field] = take(vocab, leads.observed[field])
    return typed_frame(manifest.contract()["leads"], cols)


def _deal_frames(
    manifest: DatasetManifest,
    deals: Deals,
    deal_ids: pa.Array,
    lead_ids: pa.Array,
    owners: Owners,
    first_close_day: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(deals)
    frame = typed_frame(
        manifest.contract()["deals"],
        {
            DEAL_ID: deal_ids,
            LEAD_ID: take(lead_ids, deals.lead),
            CREATED_AT: datetimes(deals.created_s),
            OWNER_ID: take(owners.ids, deals.owner),
            AMOUNT: deals.amount_recorded,
            CURRENCY: take([P.CURRENCY], np.zeros(n, dtype=np.int64)),
            PRODUCT: take(P.PRODUCT_CODES, deals.product),
            EXPECTED_CLOSE_DATE: dates(first_close_day),
            CLOSED_AT: datetimes(deals.closed_s),
            OUTCOME: take(codes(OUTCOMES), deals.outcome.astype(np.int64)),
            LOST_REASON: take(P.LOST_REASON_CODES, deals.lost_reason.astype(np.int64)),
            COMPETITOR_FIELD: deals.competitor,
        },
    )
    rows = deals.stages
    order = np.lexsort((rows.entered_s, rows.deal))
    stages = typed_frame(
        manifest.contract()["stage_history"],
        {
            DEAL_ID: take(deal_ids, rows.deal[order]),
            STAGE: take(codes(STAGES), rows.state[order]),
            ENTERED_AT: datetimes(rows.entered_s[order]),
        },
    )
    return frame, stages


def _activity_frame(
    manifest: DatasetManifest, acts: ActivityRows, lead_ids: pa.Array, deal_ids: pa.Array
) -> pd.DataFrame:
    return typed_frame(
        manifest.contract()["activities"],
        {
            ACTIVITY_ID: id_strings("A", len(acts), ACTIVITY_ID_WIDTH),
            LEAD_ID: take(lead_ids, acts.lead),
            DEAL_ID: take(deal_ids, acts.deal),
            OCCURRED_AT: datetimes(acts.occurred_s),
            ACTIVITY_TYPE: take(ACTIVITY_CODES, acts.type.astype(np.int64)),
            NEW_EXPECTED_CLOSE_DATE: dates(acts.new_day),
        },
    )


def _truth_frames(
    config: GeneratorConfig,
    window: Window,
    shocks: np.ndarray,
    owners: Owners,
    leads: Leads,
    deals: Deals,
    lead_ids: pa.Array,
    deal_ids: pa.Array,
) -> dict[str, pd.DataFrame]:
    mean, sd = latent_law(config.shock_sd)
    n = len(leads)
    p_90d, p_ever = convert_probabilities(leads, config.shock_sd, 90.0)
    lead_truth = typed_frame(
        T.LEAD_TRUTH,
        {
            LEAD_ID: lead_ids,
            T.P_CONVERT_90D: p_90d,
            T.P_CONVERT_EVER: p_ever,
            T.LOGIT_OBS: leads.logit_obs,
            T.LATENT_MEAN: np.full(n, mean),
            T.LATENT_SD: np.full(n, sd),
            T.GAMMA_SHAPE: np.full(n, P.GAMMA_SHAPE),
            T.GAMMA_SCALE: leads.gamma_scale,
        },
    )
    deal_cols: dict[str, object] = {DEAL_ID: deal_ids}
    for k, name in enumerate(T.DEAL_RATE_COLUMNS):
        deal_cols[name] = deals.rates[:, k]
    deal_cols[T.P_WIN_AT_CREATION] = deals.p_win
    deal_cols[T.MEAN_DAYS_TO_WIN] = deals.mean_days_to_win
    months = typed_frame(
        T.MONTH_TRUTH,
        {
            T.MONTH_START: window.month_starts.astype("datetime64[us]"),
            T.SHOCK_Z: shocks,
            T.LEAD_COUNT: np.bincount(leads.month, minlength=len(shocks)),
        },
    )
    owner_frame = typed_frame(
        T.OWNER_TRUTH,
        {
            OWNER_ID: pa.array(owners.ids),
            T.SKILL: owners.skill,
            T.OPTIMISM: owners.optimism,
            T.P_MOVE_CLOSE_DATE: owners.p_move,
        },
    )
    return {
        "leads": lead_truth,
        "deals": typed_frame(T.DEAL_TRUTH, deal_cols),
        "months": months,
        "owners": owner_frame,
    }


def generate(config: GeneratorConfig) -> GeneratedCRM:
    """Generate a demo CRM history and its truth (see ``pipelines.demo_crm``), in memory.

    Output frames are typed per ``data_contracts.storage.PANDAS_DTYPES`` and sorted: leads
    and deals by creation (ids follow that order), activities by time (ids follow), stage
    history by deal then time. With ``invalid_share > 0`` rows are corrupted afterwards and
    listed in ``truth["injected_invalid"]`` (always present, possibly empty).
    """
    rngs = _streams(config.seed)
    window = make_window(config.end_date, config.years)
    shocks = monthly_shocks(rngs["calendar"], len(window.month_starts), config.shock_sd)
    owners = draw_owners(rngs["owners"], config.leads)
    leads = draw_leads(rngs, window, shocks, owners, config.leads)
    deals = draw_deals(rngs, leads, owners, window.cutoff_s)
    first_close = initial_close_days(
        rngs["close_dates"], deals.created_s, deals.mean_days_to_win, owners.optimism[deals.owner]
    )
    changes = close_date_changes(
        rngs["close_dates"], first_close, deals.closed_s, owners.p_move[deals.owner],
        window.cutoff_s,
    )  # fmt: skip
    acts = draw_activities(rngs, leads, deals, changes, window.cutoff_s)

    manifest = DatasetManifest(
        custom_fields=CUSTOM_FIELDS,
        currency=P.CURRENCY,
        source="generator",
        has_truth=True,
        provenance={
            "generator_version": GENERATOR_VERSION,
            "seed": config.seed,
            "leads": config.leads,
            "end_date": config.end_date.isoformat(),
            "years": config.years,
            "shock_sd": config.shock_sd,
            "invalid_share": config.invalid_share,
        },
    )
    lead_ids = id_strings("L", len(leads), LEAD_ID_WIDTH)
    deal_ids = id_strings("D", len(deals), DEAL_ID_WIDTH)
    deal_frame, stage_frame = _deal_frames(manifest, deals, deal_ids, lead_ids, owners, first_close)
    tables = {
        "leads": _lead_frame(manifest, leads, lead_ids, owners),
        "deals": deal_frame,
        "activities": _activity_frame(manifest, acts, lead_ids, deal_ids),
        "stage_history": stage_frame,
    }
    truth = _truth_frames(config, window, shocks, owners, leads, deals, lead_ids, deal_ids)
    tables, truth["injected_invalid"] = inject_invalid(rngs["inject"], tables, config.invalid_share)
    return GeneratedCRM(config=config, manifest=manifest, tables=tables, truth=truth)
