"""Every word on the review page, in English and Simplified Chinese.

:data:`STRINGS` maps a key to its ``(en, zh)`` pair; the sentence functions return such a
pair with the figures filled in. The page renders both languages and a switch shows one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from data_contracts import vocabulary as V
from models.review.formatting import money, number, percent
from models.size_calibration import warned_bands

Pair = tuple[str, str]

STRINGS: Final[dict[str, Pair]] = {
    "title": ("Leadcast forecast review", "Leadcast 预测复盘"),
    "as_of": ("as of", "数据截至"),
    "period": ("Period", "期间"),
    "this_month": ("This month", "本月"),
    "this_quarter": ("This quarter", "本季度"),
    "custom": ("Custom", "自定义"),
    "from": ("From", "从"),
    "to": ("to", "至"),
    "target": ("Target (quota)", "目标（配额）"),
    "update": ("Update", "更新"),
    "static_note": (
        "A static report: to see another period or target, run leadcast report again.",
        "静态报告：如需其他期间或目标，请重新运行 leadcast report。",
    ),
    "bookings": ("Bookings forecast", "成交额预测"),
    "median": ("Most likely (P50)", "中位数（P50）"),
    "mean": ("Expected (mean)", "期望值（均值）"),
    "range80": ("80% range (P10–P90)", "80% 区间（P10–P90）"),
    "no_target": (
        "Enter a target to see the chance of reaching it.",
        "输入目标即可查看达成概率。",
    ),
    "legend_density": (
        "Shaded: 80% range (light) and 50% range (dark); solid line: P50; dotted: P10 and "
        "P90; dashed red: the target.",
        "阴影：80% 区间（浅）与 50% 区间（深）；实线：P50；点线：P10 与 P90；红色虚线：目标。",
    ),
    "method": ("Method", "方法"),
    "method_model": ("close-time model", "成交时间模型"),
    "method_stage": ("stage-weighted rule (fallback)", "阶段加权规则（后备）"),
    "baseline": ("Stage-weighted baseline P50", "阶段加权基线 P50"),
    "breakdown": ("Where the number comes from", "预测构成"),
    "part": ("Part", "组成"),
    "closed": ("Already won", "已成交"),
    "open": ("Open pipeline", "在途商机"),
    "new": ("New deals", "新增商机"),
    "expected": ("Expected", "期望"),
    "deals": ("Deals", "商机数"),
    "by_stage": ("By stage", "按阶段"),
    "by_owner": ("By owner", "按负责人"),
    "by_product": ("By product", "按产品"),
    "stage": ("Stage", "阶段"),
    "owner": ("Owner", "负责人"),
    "product": ("Product", "产品"),
    "n_open": ("Open", "在途"),
    "n_closed": ("Won", "已成交"),
    "drivers": ("Deals carrying the forecast", "支撑预测的商机"),
    "drivers_note": (
        "The open deals with the largest expected contribution (chance × amount). Click a "
        "column to sort.",
        "期望贡献（概率 × 金额）最大的在途商机。点击列标题排序。",
    ),
    "at_risk": ("At-risk deals", "风险商机"),
    "deal": ("Deal", "商机"),
    "amount": ("Amount", "金额"),
    "p_won": ("Chance to win in period", "期内赢单概率"),
    "share": ("Share of forecast", "占预测比例"),
    "flags": ("Flags", "风险标记"),
    "confidence": ("How far to trust it", "可信度"),
    "no_backtest": (
        "No backtest has been run on this data yet, so the forecast's track record is "
        "unknown. Run: leadcast backtest --data DIR",
        "该数据尚未进行回测，预测的历史准确度未知。请运行：leadcast backtest --data DIR",
    ),
    "coverage80": ("Inside the 80% band", "落在 80% 区间内"),
    "coverage50": ("Inside the 50% band", "落在 50% 区间内"),
    "accuracy": ("Accuracy (HubSpot)", "准确度（HubSpot 口径）"),
    "mape": ("Error of P50 (MAPE)", "P50 误差（MAPE）"),
    "skill": ("CRPS better than stage-weighted", "CRPS 优于阶段加权"),
    "legend_backtest": (
        "Each point is one past period forecast as it was known then: the bands are the "
        "80% and 50% ranges, the line the P50, the dashed line the stage-weighted P50; "
        "black dots: actual bookings inside the 80% band, hollow: outside.",
        "每个点是一个过去期间、按当时已知数据做出的预测：色带为 80% 与 50% 区间，实线为 P50，"
        "虚线为阶段加权 P50；黑点：实际成交落在 80% 区间内，空心点：落在区间外。",
    ),
    "health": ("Model health", "模型状态"),
    "kind": ("Model", "模型"),
    "serving": ("Serving", "服务方式"),
    "version": ("Version", "版本"),
    "trained": ("Trained", "训练时间"),
    "window": ("Training data", "训练数据区间"),
    "source": ("Loaded from", "加载来源"),
    "by_model": ("model", "模型"),
    "by_rules": ("BANT rules (fallback)", "BANT 规则（后备）"),
    "reports": ("Sales reports", "销售报表"),
    "lang": ("中文", "English"),
    "notes": ("Notes", "说明"),
    "lead-conversion": ("Lead conversion", "线索转化"),
    "deal-close-time": ("Deal close time", "商机成交时间"),
    "none": ("(none)", "（无）"),
    "reports_window": ("Leads and deals created", "统计范围：创建于"),
    "funnel": ("Stage funnel", "阶段漏斗"),
    "reached": ("Reached", "到达数"),
    "to_next": ("To next stage", "进入下一阶段"),
    "won_rate_closed": ("Won (of closed)", "赢单率（已结束）"),
    "median_days": ("Median days in stage", "阶段停留中位天数"),
    "by_source": ("Conversion and revenue by lead source", "按线索来源的转化与收入"),
    "lead_source": ("Source", "来源"),
    "leads": ("Leads", "线索数"),
    "conversion": ("Conversion", "转化率"),
    "won_deals": ("Won deals", "赢单数"),
    "revenue": ("Won revenue", "赢单收入"),
    "avg_deal": ("Average won deal", "平均赢单金额"),
    "follow_up": ("Follow-up efficiency per owner", "负责人跟进效率"),
    "first_touch": ("Median hours to first touch", "首次跟进中位小时数"),
    "untouched": ("Never touched", "从未跟进"),
    "touches": ("Touches per lead", "人均跟进次数"),
    "cycle": ("Median cycle (days)", "销售周期中位天数"),
    "grades": ("Lead grades and what they became", "线索等级与实际转化"),
    "grade": ("Grade", "等级"),
    "observed": ("Converted within 90 days (95% interval)", "90天内转化率（95% 区间）"),
    "predicted": ("Mean predicted", "平均预测值"),
    "grades_note": (
        "Leads created after the conversion model's training data, scored as they were "
        "when created, against what happened in their next 90 days.",
        "训练数据之后创建的线索，按创建时的信息评分，并与其后90天的实际结果对比。",
    ),
    "monotone_yes": (
        "Higher grades converted more often: A > B > C > D.",
        "等级越高，转化越多：A > B > C > D。",
    ),
    "monotone_no": (
        "The observed conversion does not fall with every grade step here: see the counts "
        "and intervals (small grades are noisy).",
        "此处观察到的转化率并非逐级下降：请结合样本数与区间判断（样本少的等级波动大）。",
    ),
    "no_model_grades": (
        "No conversion model serves, so there are no grades to check. Train one: "
        "leadcast train conversion --data DIR",
        "暂无线索转化模型，无法检验等级。请训练：leadcast train conversion --data DIR",
    ),
}

FLAGS: Final[dict[str, Pair]] = {
    "stalled": ("stalled", "停滞"),
    "silent": ("silent", "无跟进"),
    "slipped": ("slipped", "延期"),
    "unlikely_by_expected_date": ("unlikely by its date", "预计日期前难成交"),
}


def source_label(code: str | None) -> Pair:
    if code is None:
        return STRINGS["none"]
    return V.label(V.SOURCES, code, "en"), V.label(V.SOURCES, code, "zh")


def stage_label(code: str | None) -> Pair:
    if code is None:
        return STRINGS["none"]
    return V.label(V.STAGES, code, "en"), V.label(V.STAGES, code, "zh")


def chance_sentence(p_target: float, target: float, currency: str) -> Pair:
    """ "62% chance to reach ¥1.2M" in both languages."""
    return (
        f"{percent(p_target)} chance to reach {money(target, currency, 'en')}",
        f"达到 {money(target, currency, 'zh')} 的概率为 {percent(p_target)}",
    )


def range_sentence(p10: float, p90: float, currency: str) -> Pair:
    return (
        f"8 times in 10, bookings land between {money(p10, currency, 'en')} and "
        f"{money(p90, currency, 'en')}",
        f"十次中有八次，成交额落在 {money(p10, currency, 'zh')} 至 "
        f"{money(p90, currency, 'zh')} 之间",
    )


def coverage_sentence(
    n_periods: int, inside: int, freq: str, check: dict[str, Any] | None = None
) -> Pair:
    """The 80% band's track record; with the backtest's ``coverage_check["80"]``
    (:func:`models.backtest.coverage_check`) it also says how loosely so few periods pin
    the rate down."""
    en_unit = "quarter" if freq == "quarter" else "month"
    zh_unit = "个季度" if freq == "quarter" else "个月"
    share = inside / n_periods if n_periods else float("nan")
    en = (
        f"Over the last {n_periods} {en_unit}s, forecast as they were known then, actual "
        f"bookings fell inside the 80% band {inside} times ({percent(share)}; a "
        "well-calibrated forecast does so about 80% of the time)."
    )
    zh = (
        f"在过去 {n_periods} {zh_unit}（按当时已知数据预测）中，实际成交有 {inside} 次落在 "
        f"80% 区间内（{percent(share)}；校准良好的预测约为 80%）。"
    )
    if check and check.get("low_95") is not None and check.get("high_95") is not None:
        low, high = percent(check["low_95"]), percent(check["high_95"])
        en += (
            f" From {n_periods} {en_unit}s the true rate can only be placed between {low} "
            f"and {high} (95% interval)."
        )
        zh += f"仅凭 {n_periods} {zh_unit}，真实命中率只能确定在 {low} 到 {high} 之间（95% 区间）。"
    return en, zh


def size_sentences(open_by_size: Mapping[str, Any] | None, freq: str, currency: str) -> list[Pair]:
    """A warning per size of deal whose wins over the backtest's recent periods were at
    least two spreads off what their chances expected
    (:func:`models.size_calibration.warned_bands`); none when the record has none."""
    sizes = open_by_size or {}
    n = sizes.get("recent_periods")
    en_unit = "quarter" if freq == "quarter" else "month"
    zh_unit = "个季度" if freq == "quarter" else "个月"
    out: list[Pair] = []
    for _, b in warned_bands(sizes):
        over = b["z"] < 0
        lo_en, hi_en = (
            money(b["min_amount"], currency, "en"),
            money(b["max_amount"], currency, "en"),
        )
        lo_zh, hi_zh = (
            money(b["min_amount"], currency, "zh"),
            money(b["max_amount"], currency, "zh"),
        )
        ratio = percent(b["wins_over_expected"])
        wins, expected = number(b["wins"]), number(b["expected_wins"], 1)
        out.append(
            (
                f"Over the last {n} {en_unit}{'' if n == 1 else 's'}, open deals of "
                f"{lo_en}–{hi_en} won {ratio} of "
                f"what their chances expected ({wins} wins where {expected} were expected): "
                f"the part of this forecast they carry may run {'high' if over else 'low'}.",
                f"在过去 {n} {zh_unit}中，金额 {lo_zh}–{hi_zh} 的在途商机赢单数为其概率预期的 "
                f"{ratio}（预期 {expected} 单，实际 {wins} 单）：本预测中这部分可能"
                f"{'偏高' if over else '偏低'}。",
            )
        )
    return out


def track_sentence(n_periods: int, inside: int, freq: str) -> Pair:
    """The headline's short track record: "the 80% band held in 21 of 26 past months"."""
    en_unit = "quarters" if freq == "quarter" else "months"
    zh_unit = "个季度" if freq == "quarter" else "个月"
    return (
        f"Track record: the 80% band held in {inside} of {n_periods} past {en_unit}",
        f"历史表现：过去 {n_periods} {zh_unit}中，80% 区间命中 {inside} 次",
    )


__all__ = [
    "FLAGS",
    "STRINGS",
    "Pair",
    "chance_sentence",
    "coverage_sentence",
    "range_sentence",
    "size_sentences",
    "source_label",
    "stage_label",
    "track_sentence",
]
