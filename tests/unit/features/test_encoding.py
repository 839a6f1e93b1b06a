"""The encoder's dictionary path: bit-identical to the pandas path it replaced, and the
request columns give the training frame's matrix."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from data_contracts import tables as T
from features.encoding import FeatureEncoder
from features.lead_features import (
    AS_OF,
    OwnerHistory,
    activity_columns_from_records,
    build_lead_features,
    lead_columns_from_records,
    lead_feature_arrays,
    lead_feature_encoder,
)
from pipelines.demo_crm import GeneratorConfig, generate

pytestmark = pytest.mark.unit


def _previous_transform(encoder: FeatureEncoder, frame: pd.DataFrame) -> np.ndarray:
    """The encoding as it was before the dictionaries (pandas per column), the reference."""
    out = np.empty((len(frame), len(encoder.feature_names)), dtype=np.float64)
    for j, name in enumerate(encoder.numeric):
        out[:, j] = pd.to_numeric(frame[name], errors="raise").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    offset = len(encoder.numeric)
    for j, name in enumerate(encoder.categorical):
        values = frame[name]
        codes = pd.Index(encoder.levels_[name]).get_indexer(
            values.astype("str").where(values.notna(), None)
        )
        col = codes.astype(np.float64)
        col[codes < 0] = np.nan
        out[:, offset + j] = col
    return out


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    crm = generate(GeneratorConfig(leads=1_500, seed=5, end_date=date(2026, 10, 31)))
    leads, acts = crm.tables["leads"], crm.tables["activities"]
    snaps = leads.assign(**{AS_OF: pd.Timestamp("2026-06-01")})
    snaps = snaps[snaps[T.CREATED_AT] < snaps[AS_OF]].reset_index(drop=True)
    return snaps, acts, leads


def test_encode__gives_the_previous_matrix_bit_for_bit_with_unseen_and_missing_levels(
    generated: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    snaps, acts, leads = generated
    feats = build_lead_features(snaps, acts, OwnerHistory.from_leads(leads))
    encoder = lead_feature_encoder().fit(feats, min_count=30)
    mixed = feats.copy()
    mixed.loc[mixed.index[::7], "source"] = "never_seen_in_training"
    mixed.loc[mixed.index[::5], "industry"] = None
    mixed.loc[mixed.index[::3], "region"] = np.nan
    mixed.loc[mixed.index[::4], "budget"] = np.nan
    reference = _previous_transform(encoder, mixed)
    fast = FeatureEncoder.from_dict(encoder.to_dict()).transform(mixed)
    assert np.isnan(reference[:, encoder.categorical_indices]).any()
    assert reference.tobytes() == fast.tobytes()


def test_request_records__give_the_training_frame_matrix(
    generated: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    """Serving builds columns from validated records, training from frames: one feature
    function, the same matrix."""
    snaps, acts, leads = generated
    history = OwnerHistory.from_leads(leads).aggregate(pd.Timestamp("2026-05-01"))
    as_of = pd.Timestamp("2026-06-01")
    sample = snaps.head(200)
    feats = build_lead_features(sample, acts, history)
    encoder = lead_feature_encoder().fit(feats, min_count=5)
    records = [
        {k: (None if pd.isna(v) else v.to_pydatetime() if isinstance(v, pd.Timestamp) else v)
         for k, v in row.items()}
        for row in sample.drop(columns=[AS_OF]).to_dict(orient="records")
    ]  # fmt: skip
    ids = set(sample[T.LEAD_ID])
    act_rows = acts[acts[T.LEAD_ID].isin(ids) & (acts[T.OCCURRED_AT] < as_of)]
    act_records = [
        {T.LEAD_ID: r[T.LEAD_ID], T.ACTIVITY_TYPE: r[T.ACTIVITY_TYPE],
         T.OCCURRED_AT: r[T.OCCURRED_AT].to_pydatetime()}
        for r in act_rows.to_dict(orient="records")
    ]  # fmt: skip
    served = encoder.encode(
        lead_feature_arrays(
            lead_columns_from_records(records, as_of.to_pydatetime()),
            activity_columns_from_records(act_records),
            history,
        )
    )
    assert act_records and served.tobytes() == encoder.transform(feats).tobytes()


def test_lead_columns_from_records__timestamps_missing_and_dates() -> None:
    as_of = datetime(2026, 6, 1)
    columns = lead_columns_from_records(
        [
            {T.LEAD_ID: "a", T.CREATED_AT: datetime(2026, 5, 1, 12, 30, 1, 7)},
            {T.LEAD_ID: "b", T.CREATED_AT: None},
            {T.LEAD_ID: "c"},
        ],
        as_of,
    )
    created = columns[T.CREATED_AT]
    assert created.dtype == np.dtype("datetime64[us]")
    assert created[0] == np.datetime64("2026-05-01T12:30:01.000007")
    assert np.isnat(created[1:]).all()
    # anything but a naive datetime (here a date) takes numpy's own conversion
    dated = lead_columns_from_records([{T.LEAD_ID: "d", T.CREATED_AT: date(2026, 5, 2)}], as_of)
    assert dated[T.CREATED_AT][0] == np.datetime64("2026-05-02T00:00:00.000000")
