"""Risk flags on open deals, each with its measured value, its threshold and a reason in
English and Simplified Chinese.

Four flags, computed from the point-in-time deal features of
:func:`features.deal_features.build_deal_features`:

- ``stalled`` — days in the current stage above a limit learned from won deals
  (:class:`StageDwell`: ``stalled_factor`` × the ``stalled_quantile`` of the days won deals
  spent in that stage), or above ``stalled_fallback_days`` where too few won deals passed
  through the stage to learn one;
- ``silent`` — no activity on the deal for at least ``silent_days`` days, or none at all
  since it was created once it is that old;
- ``slipped`` — the expected close date pushed back at least ``slipped_min_slips`` times,
  or already passed;
- ``unlikely_by_expected_date`` — the model's P(won by the expected close date) below
  ``unlikely_threshold``.

Thresholds come from a YAML config (the default ships as ``models/risk_flags.yaml``; see
:func:`load_risk_flag_config`). A missing feature value never raises and never raises a
flag: a flag is only given on evidence. Deals whose current stage is ``won`` or ``lost``
get no flags.

Entry points: :func:`fit_stage_dwell`, :func:`flag_deals`, :func:`flag_counts`,
:func:`load_risk_flag_config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError

from data_contracts import tables as T
from data_contracts.vocabulary import OPEN_STAGES, STAGES, TERMINAL_STAGES, label

STALLED: Final = "stalled"
SILENT: Final = "silent"
SLIPPED: Final = "slipped"
UNLIKELY: Final = "unlikely_by_expected_date"
#: Flag codes, in the order flags are listed for a deal.
FLAG_CODES: Final[tuple[str, ...]] = (STALLED, SILENT, SLIPPED, UNLIKELY)
FlagCode = Literal["stalled", "silent", "slipped", "unlikely_by_expected_date"]

# The deal features read by flag_deals (names from features.deal_features).
CURRENT_STAGE: Final = "current_stage"
DAYS_IN_STAGE: Final = "days_in_stage"
DAYS_SINCE_TOUCH: Final = "days_since_last_deal_touch"
N_TOUCHES: Final = "n_deal_touches_total"
DEAL_AGE: Final = "deal_age_days"
N_SLIPS: Final = "n_close_date_slips"
DAYS_TO_EXPECTED: Final = "days_to_expected_close"
REQUIRED_FEATURES: Final[tuple[str, ...]] = (
    CURRENT_STAGE,
    DAYS_IN_STAGE,
    DAYS_SINCE_TOUCH,
    N_TOUCHES,
    DEAL_AGE,
    N_SLIPS,
    DAYS_TO_EXPECTED,
)

DEFAULT_CONFIG_RESOURCE: Final = "risk_flags.yaml"
_WON: Final = "won"
_DAY = pd.Timedelta(days=1)


# --- config -----------------------------------------------------------------------------


class RiskFlagConfigError(ValueError):
    """The risk flag config is invalid; the message names the file and every bad setting."""


class RiskFlagConfig(BaseModel):
    """Thresholds of the risk flags (see the module docstring and ``risk_flags.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stalled_quantile: FiniteFloat = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="a quantile in (0, 1], e.g. 0.9: the quantile of the days won deals "
        "spent in a stage",
    )
    stalled_factor: FiniteFloat = Field(
        default=1.0,
        gt=0.0,
        description="a number > 0, e.g. 1.0: flag when days in stage > factor × quantile",
    )
    stalled_min_won_deals: int = Field(
        default=30,
        ge=1,
        description="a whole number ≥ 1, e.g. 30: won deals a stage needs for a learned limit",
    )
    stalled_fallback_days: FiniteFloat = Field(
        default=45.0,
        gt=0.0,
        description="days > 0, e.g. 45: the stalled limit of stages without a learned one",
    )
    silent_days: FiniteFloat = Field(
        default=21.0,
        gt=0.0,
        description="days > 0, e.g. 21: flag after this many days without deal activity",
    )
    slipped_min_slips: int = Field(
        default=2,
        ge=1,
        description="a whole number ≥ 1, e.g. 2: expected close date pushed back this often",
    )
    unlikely_threshold: FiniteFloat = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="a probability in [0, 1], e.g. 0.1: flag when P(won by the expected "
        "close date) is below it (dates still ahead; a passed date is 'slipped')",
    )


def parse_risk_flag_config(data: Any, source: str = "<config>") -> RiskFlagConfig:
    """Validate a parsed config (a mapping, e.g. from YAML; empty → all defaults). Raises
    :class:`RiskFlagConfigError` naming ``source`` and listing every bad setting with what
    it must be."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RiskFlagConfigError(
            f"{source}: the risk flag config must be a mapping of settings "
            f"{list(RiskFlagConfig.model_fields)}; got {type(data).__name__}"
        )
    try:
        return RiskFlagConfig.model_validate(dict(data))
    except ValidationError as exc:
        fields = RiskFlagConfig.model_fields
        lines = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                hint = f"unknown setting; the settings are {list(fields)}"
            else:
                field = fields.get(str(err["loc"][0])) if err["loc"] else None
                expected = f"; expected {field.description}" if field is not None else ""
                hint = f"{err['msg']} (got {err.get('input')!r}){expected}"
            lines.append(f"  - {where}: {hint}")
        raise RiskFlagConfigError(
            f"{source}: invalid risk flag config ({len(lines)} problem(s)):\n" + "\n".join(lines)
        ) from None


def load_risk_flag_config(path: Path | None = None) -> RiskFlagConfig:
    """Read and validate a risk flag YAML file; ``None`` reads the shipped default
    (``models/risk_flags.yaml``). Raises :class:`RiskFlagConfigError` (a ``ValueError``)
    naming the file, the setting and what it must be."""
    if path is None:
        return _load_default_config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RiskFlagConfigError(f"cannot read risk flag config {path}: {exc}") from exc
    return _parse_yaml(text, str(path))


@cache
def _load_default_config() -> RiskFlagConfig:
    text = resources.files("models").joinpath(DEFAULT_CONFIG_RESOURCE).read_text("utf-8")
    return _parse_yaml(text, f"models/{DEFAULT_CONFIG_RESOURCE}")


def _parse_yaml(text: str, source: str) -> RiskFlagConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RiskFlagConfigError(f"{source}: not valid YAML: {exc}") from exc
    return parse_risk_flag_config(data, source)


# --- learned stage dwell ----------------------------------------------------------------


class StageDwellStat(BaseModel):
    """The quantile of the days won deals spent in one stage (per stage visit) and the
    number of won deals behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: FiniteFloat = Field(ge=0.0)
    n_won_deals: int = Field(ge=1)


class StageDwell(BaseModel):
    """Learned stalled thresholds (:func:`fit_stage_dwell`): per open stage that won deals
    closed before ``before`` passed through, the ``quantile`` of the days they spent in
    it. Stages no won deal passed through are absent. JSON-safe: :meth:`to_dict` /
    :meth:`from_dict`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantile: FiniteFloat = Field(gt=0.0, le=1.0)
    before: datetime
    stages: dict[str, StageDwellStat] = Field(default_factory=dict)

    def limit(self, stage: str, config: RiskFlagConfig) -> tuple[float, bool]:
        """The stalled limit of ``stage`` in days and whether it was learned (else it is
        ``config.stalled_fallback_days``)."""
        stat = self.stages.get(stage)
        if stat is None or stat.n_won_deals < config.stalled_min_won_deals:
            return config.stalled_fallback_days, False
        return config.stalled_factor * stat.days, True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``before`` as an ISO 8601 string)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageDwell:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` naming the bad fields."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ValueError(f"invalid stored stage dwell thresholds: {exc}") from None


def fit_stage_dwell(
    deals: pd.DataFrame,
    stage_history: pd.DataFrame,
    *,
    before: pd.Timestamp,
    config: RiskFlagConfig,
) -> StageDwell:
    """Learn the stalled thresholds from won deals.

    Inputs: the ``deals`` and ``stage_history`` contract tables. Uses only deals won with
    ``closed_at`` strictly before ``before`` and their stage entries stamped strictly
    before it (so a model fitted at ``before`` never sees later outcomes). Each entry of
    an open stage lasts until the deal's next entry (``entered_at`` of the next − of this
    one, in days); an entry with no later entry is not counted. Per open stage: the
    ``config.stalled_quantile`` of those durations (linear interpolation, one value per
    visit, so a deal that re-entered a stage counts once per visit) and the number of
    distinct won deals behind it. Inputs are not modified.
    """
    cutoff = pd.Timestamp(before)
    won = deals[(deals[T.OUTCOME] == _WON) & (deals[T.CLOSED_AT] < cutoff)]
    entries = stage_history[
        stage_history[T.DEAL_ID].isin(won[T.DEAL_ID]) & (stage_history[T.ENTERED_AT] < cutoff)
    ]
    entries = entries[[T.DEAL_ID, T.STAGE, T.ENTERED_AT]].sort_values(
        [T.DEAL_ID, T.ENTERED_AT], kind="stable"
    )
    next_entered = entries.groupby(T.DEAL_ID, sort=False)[T.ENTERED_AT].shift(-1)
    visits = pd.DataFrame(
        {
            T.DEAL_ID: entries[T.DEAL_ID],
            T.STAGE: entries[T.STAGE].astype(object),
            "days": (next_entered - entries[T.ENTERED_AT]) / _DAY,
        }
    )
    visits = visits[visits[T.STAGE].isin(OPEN_STAGES) & visits["days"].notna()]
    grouped = visits.groupby(T.STAGE, sort=False)
    days = grouped["days"].quantile(config.stalled_quantile)
    n_won = grouped[T.DEAL_ID].nunique()
    stages = {
        str(s): StageDwellStat(days=float(days[s]), n_won_deals=int(n_won[s]))
        for s in OPEN_STAGES
        if s in days.index
    }
    return StageDwell(
        quantile=config.stalled_quantile, before=cutoff.to_pydatetime(), stages=stages
    )


# --- flags ------------------------------------------------------------------------------


class RiskFlag(BaseModel):
    """One risk on one deal: what was measured (``value``), against what (``threshold``)
    and why, in English and Simplified Chinese.

    Units of ``value`` / ``threshold``: ``stalled`` days in stage / limit in days;
    ``silent`` days without activity (the deal's age when it never had any) / days;
    ``slipped`` number of slips / minimum slips, or — when the flag comes only from a
    passed expected close date — days past it / 0; ``unlikely_by_expected_date``
    probability / probability.
    """

    model_config = ConfigDict(frozen=True)

    code: FlagCode
    value: float
    threshold: float
    reason_en: str
    reason_zh: str


def flag_deals(
    features: pd.DataFrame,
    *,
    p_won_by_expected: np.ndarray | None,
    dwell: StageDwell,
    config: RiskFlagConfig,
) -> list[list[RiskFlag]]:
    """The risk flags of each deal row of ``features``.

    Inputs: ``features`` — deal features (:func:`features.deal_features.build_deal_features`;
    the columns of :data:`REQUIRED_FEATURES` must be present, values may be missing);
    ``p_won_by_expected`` — the model's P(won by the expected close date) per row, aligned
    by position (``None``: no ``unlikely_by_expected_date`` flags; NaN: none for that
    row); ``dwell`` — from :func:`fit_stage_dwell`; ``config`` — the thresholds.

    Output: one list per row, in row order, holding its flags in :data:`FLAG_CODES` order
    (empty when none). Comparisons: stalled when days in stage > limit; silent when days
    without activity ≥ ``silent_days``; slipped when slips ≥ ``slipped_min_slips`` or
    ``days_to_expected_close`` < 0; unlikely when p < ``unlikely_threshold``. A missing
    value never flags; rows in a terminal stage (won / lost) get no flags. Raises
    ``ValueError`` for absent columns or a ``p_won_by_expected`` of the wrong length.
    """
    absent = [c for c in REQUIRED_FEATURES if c not in features.columns]
    if absent:
        raise ValueError(
            f"features frame has no column(s) {absent}; risk flags need "
            f"{list(REQUIRED_FEATURES)} (build them with build_deal_features; missing values "
            "are fine and never flag)"
        )
    n = len(features)
    stage_series = features[CURRENT_STAGE].astype(object)
    has_stage = stage_series.notna().to_numpy(dtype=bool)
    stage = np.where(has_stage, stage_series.astype(str).to_numpy(dtype=object), None)
    open_ = ~stage_series.isin(TERMINAL_STAGES).to_numpy(dtype=bool)

    def numbers(column: str) -> npt.NDArray[np.float64]:
        return pd.to_numeric(features[column], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )

    # stalled: a stage's limit is looked up once per distinct stage, then broadcast
    in_stage = numbers(DAYS_IN_STAGE)
    limit = np.full(n, np.nan)
    learned = np.zeros(n, dtype=bool)
    for s in pd.unique(stage[has_stage]):
        rows = stage == s
        limit[rows], learned[rows] = dwell.limit(str(s), config)
    with np.errstate(invalid="ignore"):
        stalled = open_ & has_stage & (in_stage > limit)

    # silent: days since the last touch, or the deal's age when it never had one
    since_touch = numbers(DAYS_SINCE_TOUCH)
    never_touched = np.isnan(since_touch) & (numbers(N_TOUCHES) == 0)
    quiet_days = np.where(never_touched, numbers(DEAL_AGE), since_touch)
    with np.errstate(invalid="ignore"):
        silent = open_ & (quiet_days >= config.silent_days)

    slips = numbers(N_SLIPS)
    days_to = numbers(DAYS_TO_EXPECTED)
    with np.errstate(invalid="ignore"):
        many_slips = slips >= config.slipped_min_slips
        passed = days_to < 0
    slipped = open_ & (many_slips | passed)

    if p_won_by_expected is None:
        p = np.full(n, np.nan)
    else:
        p = np.asarray(p_won_by_expected, dtype=np.float64).reshape(-1)
        if p.shape != (n,):
            raise ValueError(
                f"p_won_by_expected has {p.size} value(s) for {n} feature row(s); give one "
                "probability per row (NaN where unknown), or None for no unlikely flags"
            )
        bad = np.isfinite(p) & ((p < 0) | (p > 1))
        if bad.any():
            raise ValueError(
                f"p_won_by_expected holds {int(bad.sum())} value(s) outside [0, 1] (first at "
                f"row {int(np.argmax(bad))}: {p[bad][0]!r}); give probabilities"
            )
    with np.errstate(invalid="ignore"):
        unlikely = open_ & (p < config.unlikely_threshold)

    out: list[list[RiskFlag]] = [[] for _ in range(n)]
    for i in np.flatnonzero(stalled | silent | slipped | unlikely):
        flags = out[i]
        if stalled[i]:
            flags.append(
                _stalled_flag(str(stage[i]), in_stage[i], limit[i], learned[i], dwell, config)
            )
        if silent[i]:
            flags.append(_silent_flag(quiet_days[i], bool(never_touched[i]), config))
        if slipped[i]:
            flags.append(_slipped_flag(slips[i], days_to[i], bool(many_slips[i]), config))
        if unlikely[i]:
            flags.append(_unlikely_flag(p[i], config))
    return out


def flag_counts(flags: Sequence[Sequence[RiskFlag]]) -> dict[str, int]:
    """How many deals carry each flag (every code present, 0 when none), in
    :data:`FLAG_CODES` order."""
    counts = dict.fromkeys(FLAG_CODES, 0)
    for deal_flags in flags:
        for code in {f.code for f in deal_flags}:
            counts[code] += 1
    return counts


# --- reasons ----------------------------------------------------------------------------


def _pair(value: float, threshold: float, scale: float = 1.0) -> tuple[str, str]:
    """``value`` and ``threshold`` (× ``scale``) with the fewest decimals (0–2) that show
    the threshold as it is and tell the two apart when they differ."""
    v, t = value * scale, threshold * scale
    for d in (0, 1, 2):
        vs, ts = f"{v:.{d}f}", f"{t:.{d}f}"
        if round(t, d) == round(t, 2) and (vs != ts or value == threshold):
            return vs, ts
    return f"{v:.2f}", f"{t:.2f}"


def _plural(text: str, unit: str) -> str:
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"


def _ordinal(quantile: float) -> str:
    pct = round(quantile * 100, 2)
    if not float(pct).is_integer():
        return f"{pct:g}th"
    n = int(pct)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _stalled_flag(
    stage: str,
    days: float,
    limit: float,
    learned: bool,
    dwell: StageDwell,
    config: RiskFlagConfig,
) -> RiskFlag:
    stage_en, stage_zh = label(STAGES, stage, "en"), label(STAGES, stage, "zh")
    v, t = _pair(days, limit)
    stat = dwell.stages.get(stage)
    n_won = stat.n_won_deals if stat is not None else 0
    pct = f"{dwell.quantile * 100:g}"
    if learned and stat is not None and config.stalled_factor == 1.0:
        en = (
            f"In {stage_en} for {_plural(v, 'day')}; won deals spent at most "
            f"{_plural(t, 'day')} there ({_ordinal(dwell.quantile)} percentile of "
            f"{n_won} won deals)."
        )
        zh = (
            f"处于{stage_zh}阶段已{v}天；赢单商机在该阶段最多停留{t}天"
            f"（{n_won}个赢单商机的第{pct}百分位数）。"
        )
    elif learned and stat is not None:
        q = _pair(stat.days, stat.days)[1]
        en = (
            f"In {stage_en} for {_plural(v, 'day')}, over the {t}-day limit "
            f"({config.stalled_factor:g} × the {_ordinal(dwell.quantile)} percentile of the "
            f"days {n_won} won deals spent there, {_plural(q, 'day')})."
        )
        zh = (
            f"处于{stage_zh}阶段已{v}天，超过{t}天的上限"
            f"（{n_won}个赢单商机在该阶段停留天数第{pct}百分位数{q}天的"
            f"{config.stalled_factor:g}倍）。"
        )
    else:
        need = config.stalled_min_won_deals
        en = (
            f"In {stage_en} for {_plural(v, 'day')}, over the default limit of "
            f"{_plural(t, 'day')} (only {n_won} won deals passed through this stage; "
            f"{need} are needed to learn a limit)."
        )
        zh = (
            f"处于{stage_zh}阶段已{v}天，超过默认上限{t}天"
            f"（经过该阶段的赢单商机仅{n_won}个，需至少{need}个才能学习阈值）。"
        )
    return RiskFlag(code=STALLED, value=days, threshold=limit, reason_en=en, reason_zh=zh)


def _silent_flag(days: float, never_touched: bool, config: RiskFlagConfig) -> RiskFlag:
    threshold = config.silent_days
    v, t = _pair(days, threshold)
    if never_touched:
        en = (
            f"No activity on this deal since it was created {_plural(v, 'day')} ago "
            f"(flagged after {_plural(t, 'day')})."
        )
        zh = f"该商机创建{v}天以来没有任何跟进活动（{t}天及以上即提示）。"
    else:
        en = (
            f"No activity on this deal for {_plural(v, 'day')} (flagged after {_plural(t, 'day')})."
        )
        zh = f"该商机已{v}天没有跟进活动（{t}天及以上即提示）。"
    return RiskFlag(code=SILENT, value=days, threshold=threshold, reason_en=en, reason_zh=zh)


def _slipped_flag(
    slips: float, days_to: float, many_slips: bool, config: RiskFlagConfig
) -> RiskFlag:
    overdue = -days_to if days_to < 0 else None
    overdue_text = _pair(overdue, 0.0)[0] if overdue is not None else ""
    if many_slips:
        n, need = f"{slips:.0f}", config.slipped_min_slips
        en = f"Expected close date pushed back {_plural(n, 'time')} (flagged at {need} or more)."
        zh = f"预计成交日期已推迟{n}次（{need}次及以上即提示）"
        if overdue is not None:
            en += f" It has also passed, {_plural(overdue_text, 'day')} ago."
            zh += f"，且已过期{overdue_text}天"
        return RiskFlag(
            code=SLIPPED,
            value=slips,
            threshold=float(need),
            reason_en=en,
            reason_zh=zh + "。",
        )
    en = f"Expected close date passed {_plural(overdue_text, 'day')} ago; the deal is still open."
    zh = f"预计成交日期已过{overdue_text}天，商机仍未结束。"
    return RiskFlag(
        code=SLIPPED, value=float(overdue or 0.0), threshold=0.0, reason_en=en, reason_zh=zh
    )


def _unlikely_flag(p: float, config: RiskFlagConfig) -> RiskFlag:
    threshold = config.unlikely_threshold
    v, t = _pair(p, threshold, scale=100.0)
    en = f"Only a {v}% chance of being won by the expected close date (flagged below {t}%)."
    zh = f"在预计成交日期前赢单的概率仅为{v}%（低于{t}%即提示）。"
    return RiskFlag(code=UNLIKELY, value=p, threshold=threshold, reason_en=en, reason_zh=zh)
