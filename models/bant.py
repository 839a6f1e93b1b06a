"""BANT rules: a transparent fallback lead scorer (DESIGN.md §4).

Each lead gets points for its Budget, Authority, Need and Timeline answers from a YAML
config (the default ships as ``models/bant_rules.yaml``), and the total is mapped to a
probability-like score::

    total = points_budget + points_authority + points_need + points_timeline
    score = sigmoid(mapping.intercept + mapping.slope · total)

then graded A–D with :mod:`models.grades`. The score is **not calibrated** unless the
mapping was fitted on history with :func:`fit_mapping` (the config then says
``mapping.fitted: true``); until then it ranks leads and spreads them over the grades, but
"0.62" is not a 62% conversion probability. Rules are used when no model is available,
when a segment has too little history, or on request; every result says
``scored_by = "rules"`` and gives one reason per factor, in English and Simplified Chinese
("Decision maker: +25 points" / "决策者：+25分").

Answers are the contract codes (``data_contracts.vocabulary``); a missing answer (null /
NaN) takes the factor's ``missing`` points. A code outside the vocabulary is an error that
names the field and the value — never silently zero.

Entry points: :func:`score_frame` (vectorised, a batch of leads), :func:`explain` (one
lead, pure Python, for the request path), :func:`fit_mapping`, :func:`load_config` /
:func:`load_default_config`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from data_contracts.tables import LEAD_ID, LEADS
from data_contracts.vocabulary import AUTHORITIES, NEEDS, TIMELINES, Labels
from models.calibration import fit_logistic, sigmoid
from models.grades import GradeCutoffs, grade, grade_array

# The BANT columns of the leads contract. data_contracts.tables names them only inside
# LEADS, so they are looked up there (KeyError at import if the contract renames them).
BUDGET: Final = LEADS.column("budget").name
AUTHORITY: Final = LEADS.column("authority").name
NEED: Final = LEADS.column("need").name
TIMELINE: Final = LEADS.column("timeline").name
FACTORS: Final[tuple[str, str, str, str]] = (BUDGET, AUTHORITY, NEED, TIMELINE)

#: The answer code of a lead that did not answer (also the config key of its points).
MISSING: Final = "missing"
SCORED_BY: Final = "rules"

# Output columns of score_frame.
SCORE: Final = "score"
GRADE: Final = "grade"
POINTS_TOTAL: Final = "points_total"
SCORED_BY_COLUMN: Final = "scored_by"
POINTS_COLUMNS: Final = {f: f"points_{f}" for f in FACTORS}
ANSWER_COLUMNS: Final = {f: f"answer_{f}" for f in FACTORS}

_VOCABULARIES: Final[dict[str, Labels]] = {
    AUTHORITY: AUTHORITIES,
    NEED: NEEDS,
    TIMELINE: TIMELINES,
}
DEFAULT_CONFIG_RESOURCE: Final = "bant_rules.yaml"


# --- config -----------------------------------------------------------------------------


class BantConfigError(ValueError):
    """The BANT rules config is invalid; the message names the file and every bad key."""


class BudgetBand(BaseModel):
    """Budgets of at least ``min_amount`` (and below the next band up) get ``points``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_amount: FiniteFloat = Field(ge=0.0)
    points: FiniteFloat
    code: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_]*$")
    label_en: str | None = None
    label_zh: str | None = None


class BudgetRule(BaseModel):
    """Budget points by amount band. ``bands`` are listed from the highest ``min_amount``
    down, strictly decreasing, the last one at 0; amounts are in ``currency``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    bands: tuple[BudgetBand, ...] = Field(min_length=1)
    missing: FiniteFloat

    @field_validator("bands")
    @classmethod
    def _check_bands(cls, bands: tuple[BudgetBand, ...]) -> tuple[BudgetBand, ...]:
        minimums = [b.min_amount for b in bands]
        for i in range(1, len(minimums)):
            if not minimums[i] < minimums[i - 1]:
                raise ValueError(
                    f"band {i} (min_amount {minimums[i]:g}) must be below band {i - 1} "
                    f"(min_amount {minimums[i - 1]:g}): list bands from the highest down"
                )
        if minimums[-1] != 0:
            raise ValueError(
                f"the last band must start at min_amount 0 (got {minimums[-1]:g}) so that "
                "every declared budget falls in a band"
            )
        codes = [c for c in (b.code for b in bands) if c is not None]
        if len(codes) != len(set(codes)) or MISSING in codes:
            raise ValueError(f"band codes must be unique and not {MISSING!r}; got {codes}")
        return bands


class LogisticMapping(BaseModel):
    """score = sigmoid(intercept + slope · total_points). Not calibrated unless ``fitted``
    (by :func:`fit_mapping`); ``fitted_rows`` / ``fitted_positives`` record its data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["logistic"] = "logistic"
    intercept: FiniteFloat
    slope: FiniteFloat = Field(gt=0.0, description="> 0: more points, higher score")
    fitted: bool = False
    fitted_rows: int | None = Field(default=None, ge=1)
    fitted_positives: int | None = Field(default=None, ge=1)

    def score(self, total_points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The score of each total (vectorised)."""
        points = np.asarray(total_points, dtype=np.float64)
        return sigmoid(self.intercept + self.slope * points)


class BantConfig(BaseModel):
    """Points per answer for each BANT factor, the score mapping and the grade cut-offs.

    ``authority``, ``need`` and ``timeline`` map every code of their contract vocabulary,
    plus ``missing``, to points.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    budget: BudgetRule
    authority: dict[str, FiniteFloat]
    need: dict[str, FiniteFloat]
    timeline: dict[str, FiniteFloat]
    mapping: LogisticMapping
    grades: GradeCutoffs = GradeCutoffs()

    @field_validator(AUTHORITY, NEED, TIMELINE)
    @classmethod
    def _check_answers(cls, points: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        factor = str(info.field_name)
        expected = [*_VOCABULARIES[factor], MISSING]
        unknown = [k for k in points if k not in expected]
        absent = [k for k in expected if k not in points]
        problems = []
        if unknown:
            problems.append(f"unknown answer code(s) {unknown}")
        if absent:
            problems.append(f"no points for {absent}")
        if problems:
            raise ValueError(f"{'; '.join(problems)}; the {factor} answers are {expected}")
        return {k: points[k] for k in expected}

    @cached_property
    def rules(self) -> dict[str, FactorRules]:
        """Per factor, the answer codes, their points and their reasons (built once per
        config, used by :func:`score_frame` and :func:`explain`)."""
        return {f: _factor_rules(self, f) for f in FACTORS}

    def with_mapping(self, mapping: LogisticMapping) -> BantConfig:
        """A copy of this config with another score mapping."""
        return BantConfig.model_validate(self.model_dump() | {"mapping": mapping.model_dump()})

    def points_table(self, factor: str) -> dict[str, float]:
        """Answer code → points for ``authority``, ``need`` or ``timeline``."""
        if factor not in _VOCABULARIES:
            raise KeyError(f"{factor!r} is not a categorical factor; use {list(_VOCABULARIES)}")
        table: dict[str, float] = getattr(self, factor)
        return table

    @property
    def max_points(self) -> float:
        """The largest total a lead can reach."""
        budget = max([b.points for b in self.budget.bands] + [self.budget.missing])
        return budget + sum(max(self.points_table(f).values()) for f in _VOCABULARIES)

    @property
    def min_points(self) -> float:
        """The smallest total a lead can reach."""
        budget = min([b.points for b in self.budget.bands] + [self.budget.missing])
        return budget + sum(min(self.points_table(f).values()) for f in _VOCABULARIES)


def parse_config(data: Any, source: str = "<config>") -> BantConfig:
    """Validate a parsed config (a mapping, e.g. from YAML or JSON). Raises
    :class:`BantConfigError` listing every bad key as ``dotted.path: problem``."""
    if not isinstance(data, Mapping):
        raise BantConfigError(
            f"{source}: the BANT rules config must be a mapping of budget/authority/need/"
            f"timeline/mapping/grades; got {type(data).__name__}"
        )
    try:
        return BantConfig.model_validate(dict(data))
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"  - {where}: {message}")
        raise BantConfigError(
            f"{source}: invalid BANT rules config ({len(lines)} problem(s)):\n" + "\n".join(lines)
        ) from None


def load_config(path: str | Path | None = None) -> BantConfig:
    """Read and validate a BANT rules YAML file; ``None`` reads the shipped default."""
    if path is None:
        return load_default_config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BantConfigError(f"cannot read BANT rules config {path}: {exc}") from exc
    return _parse_yaml(text, str(path))


@cache
def load_default_config() -> BantConfig:
    """The default rules shipped in the package (``models/bant_rules.yaml``), read once."""
    text = resources.files("models").joinpath(DEFAULT_CONFIG_RESOURCE).read_text("utf-8")
    return _parse_yaml(text, f"models/{DEFAULT_CONFIG_RESOURCE}")


def _parse_yaml(text: str, source: str) -> BantConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BantConfigError(f"{source}: not valid YAML: {exc}") from exc
    return parse_config(data, source)


def dump_config(config: BantConfig) -> str:
    """The config as YAML text (e.g. to save a fitted config beside a model run)."""
    data = config.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --- labels and reasons -----------------------------------------------------------------


def _amount_en(amount: float) -> str:
    return f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"


def _amount_zh(amount: float) -> str:
    for unit, size in (("亿", 1e8), ("万", 1e4)):
        if amount >= size and (amount / size * 100).is_integer():
            return f"{amount / size:g}{unit}"
    return _amount_en(amount)


def _currency_zh(currency: str) -> str:
    return "元" if currency == "CNY" else f" {currency}"


def _band_code(bands: Sequence[BudgetBand], i: int) -> str:
    band = bands[i]
    if band.code is not None:
        return band.code
    low = f"{band.min_amount:.0f}"
    if i == 0:
        return f"ge_{low}"
    high = f"{bands[i - 1].min_amount:.0f}"
    return f"lt_{high}" if band.min_amount == 0 else f"{low}_to_{high}"


def _band_labels(rule: BudgetRule, i: int) -> tuple[str, str]:
    band = rule.bands[i]
    cur, cur_zh = rule.currency, _currency_zh(rule.currency)
    low_en, low_zh = _amount_en(band.min_amount), _amount_zh(band.min_amount)
    if len(rule.bands) == 1:
        en, zh = "Budget declared", "已填写预算"
    elif i == 0:
        en, zh = f"Budget of {low_en} {cur} or more", f"预算{low_zh}{cur_zh}及以上"
    else:
        above = rule.bands[i - 1].min_amount
        high_en, high_zh = _amount_en(above), _amount_zh(above)
        if band.min_amount == 0:
            en, zh = f"Budget under {high_en} {cur}", f"预算{high_zh}{cur_zh}以下"
        else:
            en = f"Budget of {low_en}–{high_en} {cur}"
            zh = f"预算{low_zh}–{high_zh}{cur_zh}"
    return band.label_en or en, band.label_zh or zh


def _signed(points: float) -> str:
    text = f"{points + 0.0:+.2f}".rstrip("0").rstrip(".")
    return "+0" if text in ("+0", "-0") else text


class BantReason(BaseModel):
    """Why one factor contributed what it did, in English and Simplified Chinese."""

    model_config = ConfigDict(frozen=True)

    factor: str
    answer: str = Field(description="answer code, budget band code, or 'missing'")
    points: float
    label_en: str
    label_zh: str
    text_en: str
    text_zh: str


def _make_reason(factor: str, answer: str, points: float, labels: tuple[str, str]) -> BantReason:
    label_en, label_zh = labels
    unit = "point" if abs(points) == 1 else "points"
    return BantReason(
        factor=factor,
        answer=answer,
        points=points,
        label_en=label_en,
        label_zh=label_zh,
        text_en=f"{label_en}: {_signed(points)} {unit}",
        text_zh=f"{label_zh}：{_signed(points)}分",
    )


@dataclass(frozen=True)
class FactorRules:
    """One factor of a config, compiled: answer codes (``missing`` last), their points
    (aligned) and their reasons; for the budget, the band minimums (descending, aligned
    with the band codes)."""

    factor: str
    answers: tuple[str, ...]
    points: npt.NDArray[np.float64]
    reasons: Mapping[str, BantReason]
    minimums: tuple[float, ...] = ()


def _factor_rules(config: BantConfig, factor: str) -> FactorRules:
    column = LEADS.column(factor)
    missing_labels = (f"{column.label_en} not given", f"{column.label_zh}未填写")
    if factor == BUDGET:
        rule = config.budget
        codes = [_band_code(rule.bands, i) for i in range(len(rule.bands))]
        labels = [_band_labels(rule, i) for i in range(len(rule.bands))]
        points = [b.points for b in rule.bands]
        minimums = tuple(b.min_amount for b in rule.bands)
        missing_points = rule.missing
    else:
        vocabulary = _VOCABULARIES[factor]
        table = config.points_table(factor)
        codes = list(vocabulary)
        labels = [vocabulary[c] for c in codes]
        points = [table[c] for c in codes]
        minimums = ()
        missing_points = table[MISSING]
    codes.append(MISSING)
    labels.append(missing_labels)
    points.append(missing_points)
    return FactorRules(
        factor=factor,
        answers=tuple(codes),
        points=np.asarray(points, dtype=np.float64),
        reasons={
            c: _make_reason(factor, c, p, lab)
            for c, p, lab in zip(codes, points, labels, strict=True)
        },
        minimums=minimums,
    )


def reason_for(config: BantConfig, factor: str, answer: str) -> BantReason:
    """The reason for one answer of one factor, e.g. ``reason_for(cfg, "authority",
    "decision_maker").text_zh == "决策者：+25分"``. ``answer`` is a code as in the
    ``answer_*`` columns of :func:`score_frame` (budget band code, or ``missing``)."""
    rules = config.rules.get(factor)
    if rules is None:
        raise ValueError(f"{factor!r} is not a BANT factor; use one of {list(FACTORS)}")
    reason = rules.reasons.get(answer)
    if reason is None:
        raise ValueError(f"{factor}: unknown answer {answer!r}; expected one of {rules.answers}")
    return reason


class BantScore(BaseModel):
    """The rule score of one lead with its reasons (one per factor, in BANT order)."""

    model_config = ConfigDict(frozen=True)

    score: float
    grade: str
    scored_by: Literal["rules"] = SCORED_BY
    calibrated: bool = Field(description="whether the score mapping was fitted on history")
    total_points: float
    points: dict[str, float]
    reasons: tuple[BantReason, ...]


# --- scoring ----------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _budget_answer(rules: FactorRules, amount: Any, currency: str, where: str) -> str:
    if _is_missing(amount):
        return MISSING
    if isinstance(amount, bool | np.bool_) or not isinstance(amount, int | float | np.number):
        raise ValueError(
            f"{where}budget: {amount!r} is not a number; give the declared amount in "
            f"{currency}, or leave it empty"
        )
    value = float(amount)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}budget: {value!r} must be a finite amount ≥ 0")
    for code, minimum in zip(rules.answers, rules.minimums, strict=False):
        if value >= minimum:
            return code
    raise AssertionError("the last budget band starts at 0")  # pragma: no cover


def _logistic(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def explain(lead: Mapping[str, Any], config: BantConfig | None = None) -> BantScore:
    """Score one lead (a mapping with any of ``budget``, ``authority``, ``need``,
    ``timeline``; absent keys and None/NaN count as not given) and say why.

    Pure Python for the request path (no pandas); gives the same score as
    :func:`score_frame`. Raises ``ValueError`` naming the field and the value for an
    unknown answer code or a budget that is not a non-negative number.
    """
    config = config or load_default_config()
    rules = config.rules
    lead_id = lead.get(LEAD_ID)
    where = f"lead {lead_id!r}: " if lead_id is not None else ""
    reasons = [
        rules[BUDGET].reasons[
            _budget_answer(rules[BUDGET], lead.get(BUDGET), config.budget.currency, where)
        ]
    ]
    for factor in _VOCABULARIES:
        value = lead.get(factor)
        if _is_missing(value):
            reasons.append(rules[factor].reasons[MISSING])
            continue
        reason = rules[factor].reasons.get(value) if isinstance(value, str) else None
        if reason is None or value == MISSING:
            raise ValueError(
                f"{where}{factor}: unknown answer code {value!r}; expected one of "
                f"{list(_VOCABULARIES[factor])}, or empty when the lead did not answer"
            )
        reasons.append(reason)
    total = math.fsum(r.points for r in reasons)
    score = _logistic(config.mapping.intercept + config.mapping.slope * total)
    return BantScore.model_construct(
        score=score,
        grade=grade(score, config.grades),
        scored_by=SCORED_BY,
        calibrated=config.mapping.fitted,
        total_points=total,
        points={r.factor: r.points for r in reasons},
        reasons=tuple(reasons),
    )


def _describe_rows(leads: pd.DataFrame, mask: npt.NDArray[np.bool_], limit: int = 5) -> str:
    rows = np.flatnonzero(mask)[:limit]
    more = ", …" if int(mask.sum()) > limit else ""
    text = ", ".join(str(leads.index[i]) for i in rows) + more
    if LEAD_ID in leads.columns:
        ids = ", ".join(str(leads[LEAD_ID].iloc[i]) for i in rows)
        text += f" ({LEAD_ID} {ids}{more})"
    return text


def _categorical_answers(leads: pd.DataFrame, rules: FactorRules) -> npt.NDArray[np.int64]:
    """Index into ``rules.answers`` of each lead's answer (missing → the last)."""
    factor = rules.factor
    codes, uniques = pd.factorize(leads[factor], use_na_sentinel=True)
    position = {code: i for i, code in enumerate(rules.answers[:-1])}
    lookup = np.array([position.get(u, -1) if isinstance(u, str) else -1 for u in uniques])
    if (lookup < 0).any():
        bad_uniques = np.flatnonzero(lookup < 0)
        bad_mask = np.isin(codes, bad_uniques)
        shown = ", ".join(repr(uniques[i]) for i in bad_uniques[:5])
        raise ValueError(
            f"{factor}: unknown answer code(s) {shown} in {int(bad_mask.sum())} row(s) "
            f"(index {_describe_rows(leads, bad_mask)}); expected one of "
            f"{list(rules.answers[:-1])}, or empty when the lead did not answer"
        )
    missing_index = len(rules.answers) - 1
    return np.where(codes < 0, missing_index, lookup[np.maximum(codes, 0)] if lookup.size else 0)


def _budget_answers(
    leads: pd.DataFrame, rules: FactorRules, currency: str
) -> npt.NDArray[np.int64]:
    """Index into ``rules.answers`` (the bands, then missing) of each lead's budget."""
    column = leads[BUDGET]
    missing = column.isna().to_numpy(dtype=bool)
    numeric = pd.api.types.is_numeric_dtype(column.dtype)
    if pd.api.types.is_bool_dtype(column.dtype) or not (numeric or column.dtype == object):
        raise ValueError(
            f"budget: column has dtype {column.dtype}; it must hold numbers (the declared "
            f"amount in {currency}) or be empty"
        )
    if not numeric:
        values = column.to_numpy(dtype=object)
        not_number = np.array(
            [
                not m
                and (isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number))
                for v, m in zip(values, missing, strict=True)
            ],
            dtype=bool,
        )
        if not_number.any():
            first = values[int(np.argmax(not_number))]
            raise ValueError(
                f"budget: {first!r} is not a number, in {int(not_number.sum())} row(s) "
                f"(index {_describe_rows(leads, not_number)}); give amounts in {currency}, "
                "or leave them empty"
            )
    amounts = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~missing & (~np.isfinite(amounts) | (amounts < 0))
    if bad.any():
        raise ValueError(
            f"budget: {float(amounts[bad][0])!r} is not a finite amount ≥ 0, in "
            f"{int(bad.sum())} row(s) (index {_describe_rows(leads, bad)})"
        )
    n_bands = len(rules.minimums)
    ascending = np.asarray(rules.minimums[::-1], dtype=np.float64)
    reached = np.searchsorted(ascending, np.where(missing, 0.0, amounts), side="right")
    return np.where(missing, n_bands, n_bands - reached)


def score_frame(leads: pd.DataFrame, config: BantConfig | None = None) -> pd.DataFrame:
    """Score a batch of leads by the rules (vectorised).

    Input: a frame with the columns ``budget`` (number ≥ 0 or null), ``authority``,
    ``need`` and ``timeline`` (contract codes or null); other columns are ignored and the
    frame is not modified. A missing *column* is an error (a whole factor silently scored
    as "not given" is more likely a mapping mistake than a batch of unanswered leads).

    Output, on the same index: ``score`` (probability-like; calibrated only if
    ``config.mapping.fitted``), ``grade`` (A–D), ``points_total``, ``points_budget``,
    ``points_authority``, ``points_need``, ``points_timeline``, ``answer_budget`` (band
    code or ``missing``), ``answer_authority``, ``answer_need``, ``answer_timeline``
    (answer code or ``missing``; the answer columns are categoricals) and ``scored_by``
    (``"rules"``). :func:`reason_for` turns an answer into its reason text.

    Raises ``ValueError`` naming the field, the bad values and the rows for an unknown
    code or an invalid budget.
    """
    config = config or load_default_config()
    absent = [f for f in FACTORS if f not in leads.columns]
    if absent:
        raise ValueError(
            f"leads frame has no column(s) {absent}; BANT scoring needs {list(FACTORS)} "
            "(null values are fine: they score as 'not given')"
        )
    rules = config.rules
    answer_index = {BUDGET: _budget_answers(leads, rules[BUDGET], config.budget.currency)}
    for factor in _VOCABULARIES:
        answer_index[factor] = _categorical_answers(leads, rules[factor])
    points = {f: rules[f].points[answer_index[f]] for f in FACTORS}
    total = points[BUDGET] + points[AUTHORITY] + points[NEED] + points[TIMELINE]
    score = config.mapping.score(total)
    columns: dict[str, Any] = {
        SCORE: score,
        GRADE: grade_array(score, config.grades),
        POINTS_TOTAL: total,
    }
    columns |= {POINTS_COLUMNS[f]: points[f] for f in FACTORS}
    columns |= {
        ANSWER_COLUMNS[f]: pd.Categorical.from_codes(answer_index[f], categories=rules[f].answers)
        for f in FACTORS
    }
    columns[SCORED_BY_COLUMN] = np.full(len(leads), SCORED_BY, dtype=object)
    return pd.DataFrame(columns, index=leads.index)


def total_points(leads: pd.DataFrame, config: BantConfig | None = None) -> npt.NDArray[np.float64]:
    """The total BANT points of each lead (the input of :func:`fit_mapping`)."""
    return score_frame(leads, config)[POINTS_TOTAL].to_numpy(dtype=np.float64)


def fit_mapping(
    points: npt.ArrayLike | pd.DataFrame,
    labels: npt.ArrayLike,
    config: BantConfig | None = None,
) -> BantConfig:
    """Fit the logistic map from total points to probability on labelled history, so the
    rule score becomes a calibrated baseline. Returns ``config`` (default: the shipped
    one) with ``mapping`` replaced by the fitted one (``fitted: true``); the points per
    answer are not changed.

    ``points``: total points per lead — an array, or the frame returned by
    :func:`score_frame` (its ``points_total`` column) — computed with the same ``config``.
    ``labels``: 1 = converted (within the horizon), 0 = not, aligned by position.

    Leakage: fit on training rows only (time-ordered: leads before the evaluation period)
    and measure on later rows; a mapping fitted on the rows it is judged on looks better
    than it is. Raises ``ValueError`` when the labels hold one class only, or when the fit
    gives a slope ≤ 0 (more points would mean a lower score: the points themselves need
    revisiting, which a mapping cannot fix).
    """
    config = config or load_default_config()
    if isinstance(points, pd.DataFrame):
        if POINTS_TOTAL not in points.columns:
            raise ValueError(
                f"fit_mapping got a frame without {POINTS_TOTAL!r}; pass the output of "
                "score_frame, or an array of total points"
            )
        x = points[POINTS_TOTAL].to_numpy(dtype=np.float64)
    else:
        x = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(
            f"points and labels must be 1-D and equally long; got {x.shape} and {y.shape}"
        )
    slope, intercept = fit_logistic(x, y)
    if slope <= 0:
        raise ValueError(
            f"the BANT points do not rank these outcomes (fitted slope {slope:.3g} ≤ 0 on "
            f"{x.size} rows): more points would mean a lower score. Revisit the points per "
            "answer before fitting the mapping."
        )
    positives = int(np.asarray(y, dtype=np.float64).sum())
    mapping = LogisticMapping(
        intercept=intercept,
        slope=slope,
        fitted=True,
        fitted_rows=int(x.size),
        fitted_positives=positives,
    )
    return config.with_mapping(mapping)
