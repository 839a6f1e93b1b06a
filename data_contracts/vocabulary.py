"""Closed vocabularies of the contract, with an English and a Simplified Chinese label per code.

Codes are English snake_case and are what is stored; labels are for people.
"""

from __future__ import annotations

from typing import Final, Literal

Labels = dict[str, tuple[str, str]]
#: the languages every label, reason and page is written in
Lang = Literal["en", "zh"]

SOURCES: Final[Labels] = {
    "website": ("Website", "官网"),
    "wechat": ("WeChat", "微信"),
    "trade_show": ("Trade show", "展会"),
    "phone": ("Phone", "电话"),
    "third_party_platform": ("Third-party platform", "第三方平台"),
    "referral": ("Referral", "转介绍"),
    "email": ("Email campaign", "邮件营销"),
    "social": ("Social media", "社交媒体"),
    "paid_search": ("Paid search", "付费搜索"),
    "organic_search": ("Organic search", "自然搜索"),
    "other": ("Other", "其他"),
}

INDUSTRIES: Final[Labels] = {
    "manufacturing": ("Manufacturing", "制造业"),
    "retail": ("Retail", "零售"),
    "technology": ("Technology", "科技"),
    "healthcare": ("Healthcare", "医疗"),
    "education": ("Education", "教育"),
    "finance": ("Finance", "金融"),
    "logistics": ("Logistics", "物流"),
    "construction": ("Construction", "建筑"),
    "hospitality": ("Hospitality", "酒店餐饮"),
    "other": ("Other", "其他"),
}

COMPANY_SIZES: Final[Labels] = {
    "size_1_10": ("1–10 employees", "1–10人"),
    "size_11_50": ("11–50 employees", "11–50人"),
    "size_51_200": ("51–200 employees", "51–200人"),
    "size_201_1000": ("201–1,000 employees", "201–1000人"),
    "size_1000_plus": ("Over 1,000 employees", "1000人以上"),
}

SENIORITIES: Final[Labels] = {
    "c_level": ("C-level", "高管"),
    "vp": ("Vice president", "副总裁"),
    "director": ("Director", "总监"),
    "manager": ("Manager", "经理"),
    "individual_contributor": ("Individual contributor", "专员"),
}

AUTHORITIES: Final[Labels] = {
    "decision_maker": ("Decision maker", "决策者"),
    "influencer": ("Influencer", "影响者"),
    "end_user": ("End user", "使用者"),
}

NEEDS: Final[Labels] = {
    "high": ("High need", "需求强烈"),
    "medium": ("Medium need", "需求一般"),
    "low": ("Low need", "需求较弱"),
}

TIMELINES: Final[Labels] = {
    "within_1_month": ("Buying within 1 month", "1个月内采购"),
    "within_3_months": ("Buying within 3 months", "3个月内采购"),
    "within_6_months": ("Buying within 6 months", "6个月内采购"),
    "over_6_months": ("Buying in over 6 months", "6个月以上"),
}

ACTIVITY_TYPES: Final[Labels] = {
    "email_sent": ("Email sent", "发送邮件"),
    "email_open": ("Email opened", "打开邮件"),
    "email_click": ("Email link clicked", "点击邮件链接"),
    "web_visit": ("Website visit", "访问官网"),
    "form_submit": ("Form submitted", "提交表单"),
    "wechat_message": ("WeChat message", "微信沟通"),
    "call": ("Call", "电话沟通"),
    "meeting": ("Meeting", "会议"),
    "demo": ("Product demo", "产品演示"),
    "quote_sent": ("Quote sent", "发送报价"),
    "close_date_changed": ("Expected close date changed", "预计成交日期变更"),
}

STAGES: Final[Labels] = {
    "qualification": ("Qualification", "资格确认"),
    "needs_analysis": ("Needs analysis", "需求分析"),
    "proposal": ("Proposal / quote", "方案报价"),
    "negotiation": ("Negotiation", "商务谈判"),
    "won": ("Won", "赢单"),
    "lost": ("Lost", "输单"),
}

#: Open stages in funnel order; ``won`` and ``lost`` are terminal.
OPEN_STAGES: Final[tuple[str, ...]] = ("qualification", "needs_analysis", "proposal", "negotiation")
TERMINAL_STAGES: Final[tuple[str, ...]] = ("won", "lost")

OUTCOMES: Final[Labels] = {
    "open": ("Open", "进行中"),
    "won": ("Won", "赢单"),
    "lost": ("Lost", "输单"),
}


def codes(labels: Labels) -> tuple[str, ...]:
    """The codes of a vocabulary, in declaration order."""
    return tuple(labels)


def label(labels: Labels, code: str, lang: Lang = "en") -> str:
    """The label of ``code`` in ``lang`` (``en`` or ``zh``); the code itself when unknown."""
    pair = labels.get(code)
    if pair is None:
        return code
    return pair[1] if lang == "zh" else pair[0]
