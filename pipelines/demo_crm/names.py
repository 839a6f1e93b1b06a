"""Fake contact/company names and job titles (free text, Chinese and English).

Names are drawn independently of everything that drives outcomes, so they carry no signal
beyond the region (international leads get English names); job titles follow the contact's
seniority, which is itself a lead column.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CITIES = (
    "杭州", "上海", "深圳", "苏州", "广州", "北京", "成都", "武汉", "南京", "宁波",
    "青岛", "东莞", "佛山", "天津", "重庆", "西安", "长沙", "郑州", "合肥", "厦门",
)  # fmt: skip
BRANDS = (
    "恒信", "华泰", "鼎盛", "瑞丰", "联创", "金桥", "远航", "明达", "新锐", "天成",
    "宏图", "中科", "顺达", "永利", "博远", "智联", "嘉禾", "安泰", "光华", "万通",
)  # fmt: skip
TRADES = (
    "科技", "制造", "贸易", "物流", "医疗器械", "教育科技", "建设", "餐饮管理", "电子",
    "信息技术",
)  # fmt: skip
SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周",
    "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高",
)  # fmt: skip
GIVEN = (
    "伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "勇",
    "军", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平", "刚",
)  # fmt: skip
EN_FIRST = (
    "James", "Anna", "Mohammed", "Priya", "Lukas", "Sofia", "Kenji", "Maria", "David", "Emma",
)  # fmt: skip
EN_LAST = (
    "Smith", "Müller", "Tanaka", "Kumar", "Garcia", "Rossi", "Kim", "Nguyen", "Silva", "Brown",
)  # fmt: skip
EN_BRANDS = (
    "Apex", "Nordic", "Pacific", "Vertex", "Summit", "Blue River", "Orion", "Atlas",
    "Meridian", "Crescent",
)  # fmt: skip
EN_TRADES = (
    "Industries", "Trading", "Logistics", "Systems", "Foods", "Medical", "Solutions",
    "Manufacturing",
)  # fmt: skip
EN_FORMS = ("Ltd.", "GmbH", "Inc.", "Pte. Ltd.", "S.A.")

#: job titles by seniority code (vocabulary order)
JOB_TITLES: tuple[tuple[str, ...], ...] = (
    ("CEO", "总经理", "董事长", "Founder & CEO", "CFO", "CTO", "创始人", "首席信息官"),
    ("VP Sales", "副总经理", "销售副总裁", "VP of Operations", "运营副总裁", "VP Marketing"),
    ("IT Director", "销售总监", "市场总监", "采购总监", "信息化总监", "Director of Operations",
     "财务总监"),
    ("Sales Manager", "IT经理", "采购经理", "运营经理", "市场经理", "Project Manager",
     "客服经理", "销售经理"),
    ("销售专员", "采购专员", "IT Specialist", "行政助理", "Analyst", "市场专员", "客服专员",
     "Engineer", "工程师"),
)  # fmt: skip


def _combinations(*parts: tuple[str, ...]) -> list[str]:
    return ["".join(words) for words in itertools.product(*parts)]


_ZH_CONTACTS = _combinations(SURNAMES, GIVEN)
_ZH_COMPANIES = _combinations(CITIES, BRANDS, TRADES, ("有限公司",))
_EN_CONTACTS = _combinations(EN_FIRST, (" ",), EN_LAST)
_EN_COMPANIES = _combinations(EN_BRANDS, (" ",), EN_TRADES, (" ",), EN_FORMS)


_SEPARATOR = pa.scalar(" - ", pa.large_string())


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pa.Array:
    return pa.array(words, type=pa.large_string()).take(
        pa.array(rng.integers(0, len(words), size=n))
    )


def contact_names(rng: np.random.Generator, english: np.ndarray) -> pa.Array:
    """``"<contact> - <company>"`` per lead; English names where ``english`` is true."""
    n = len(english)
    zh = pc.binary_join_element_wise(
        _pick(rng, _ZH_CONTACTS, n), _pick(rng, _ZH_COMPANIES, n), _SEPARATOR
    )
    en = pc.binary_join_element_wise(
        _pick(rng, _EN_CONTACTS, n), _pick(rng, _EN_COMPANIES, n), _SEPARATOR
    )
    return pc.if_else(pa.array(english), en, zh)


def job_titles(rng: np.random.Generator, seniority: np.ndarray) -> pa.Array:
    """A free-text title per contact drawn from its (true) seniority's titles."""
    flat = [t for titles in JOB_TITLES for t in titles]
    offsets = np.cumsum([0] + [len(t) for t in JOB_TITLES])
    sizes = np.diff(offsets)
    pick = offsets[seniority] + (rng.random(len(seniority)) * sizes[seniority]).astype(int)
    return pa.array(flat, type=pa.large_string()).take(pa.array(pick))
