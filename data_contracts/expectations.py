"""The great-expectations suite of a contract table: the contract's batch form.

:func:`build_suite` turns a :class:`~data_contracts.spec.TableSpec` (custom fields included,
see ``DatasetManifest.contract()``) into a GX 1.x ``ExpectationSuite``. Each expectation
carries ``meta``:

* ``rule`` — the rule code (:class:`Rule`), the same codes the quarantine and the demo
  generator's injected-invalid truth use;
* ``column`` — the contract column it is about (``"a|b"`` for multi-column rules);
* ``reason`` — a sentence saying what is wrong and what to do;
* ``table`` — the contract table.

Rules that need more than the row's own columns (foreign keys, parent timestamps,
conditional nulls, at-least/at-most-one-of) are checked on helper columns derived by
:mod:`data_contracts.relations`; the suite therefore validates a frame that went through
``relations.derive_helpers``. Row-level type problems are found earlier, while reading
(``storage.read_table`` turns unreadable values into nulls plus ``ParseIssue`` rows, rule
``parse``); the ``type`` expectations here check the column dtypes as a whole.

Why helper booleans rather than ``row_condition``: GX 1.24 supports
``row_condition`` (``Condition`` objects or pandas strings) on pandas, but it re-runs
``DataFrame.query`` over the whole frame for every metric of the expectation — measured
2.4–4.3 s per call on 6 M activities, about five calls per expectation — whereas a boolean
helper costs one ``isin`` (≈0.1 s).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe

from data_contracts.relations import (
    at_least_one_column,
    at_most_one_column,
    conditional_column,
    fk_column,
    order_columns,
)
from data_contracts.spec import Column, ColumnType, ConditionalNull, OrderRule, TableSpec


class Rule(StrEnum):
    """Rule codes of the contract; every failure and every expectation names one."""

    SCHEMA = "schema"
    TYPE = "type"
    PARSE = "parse"
    NOT_NULL = "not_null"
    IN_SET = "in_set"
    BETWEEN = "between"
    REGEX = "regex"
    UNIQUE = "unique"
    ORDER = "order"
    CONDITIONAL_NULL = "conditional_null"
    FOREIGN_KEY = "foreign_key"
    AT_LEAST_ONE_OF = "at_least_one_of"
    AT_MOST_ONE_OF = "at_most_one_of"


#: the scalar type name ``ExpectColumnValuesToBeOfType`` compares with ``dtype.type`` on
#: pandas; robust to pandas 3 (``str`` is ``StringDtype``, whose ``.type`` is ``str``;
#: ``Int64``/``boolean`` are extension dtypes whose ``.type`` is ``int64``/``bool``).
#: ``ExpectColumnValuesToBeInTypeList`` is not used: in GX 1.24 it compares whole dtypes and
#: rejects pandas 3's ``StringDtype(na_value=nan)`` under every type name.
GX_TYPE_NAMES: dict[ColumnType, str] = {
    ColumnType.STRING: "str",
    ColumnType.INTEGER: "int64",
    ColumnType.FLOAT: "float64",
    ColumnType.BOOLEAN: "bool",
    ColumnType.DATETIME: "datetime64",
    ColumnType.DATE: "datetime64",
}

#: vocabularies longer than this are shortened in reason sentences
_SHOWN_CODES = 8


def _meta(table: str, rule: Rule, column: str, reason: str) -> dict[str, Any]:
    return {"table": table, "rule": rule.value, "column": column, "reason": reason}


def _codes(allowed: tuple[str, ...]) -> str:
    shown = ", ".join(allowed[:_SHOWN_CODES])
    return shown + (f", … ({len(allowed)} codes)" if len(allowed) > _SHOWN_CODES else "")


def _bounds(col: Column) -> str:
    if col.minimum is not None and col.maximum is not None:
        return f"between {col.minimum:g} and {col.maximum:g}"
    if col.minimum is not None:
        return f"at least {col.minimum:g}"
    return f"at most {col.maximum:g}"


def _column_expectations(table: str, col: Column) -> list[gxe.Expectation]:
    name = col.name
    out: list[gxe.Expectation] = [
        gxe.ExpectColumnToExist(
            column=name,
            meta=_meta(
                table, Rule.SCHEMA, name,
                f"column {name} is missing from {table}: add it to the file (it may be empty "
                "unless required) or map it in the import mapping",
            ),
        ),
        gxe.ExpectColumnValuesToBeOfType(
            column=name,
            type_=GX_TYPE_NAMES[col.dtype],
            meta=_meta(
                table, Rule.TYPE, name,
                f"{name} is not stored as {col.dtype.value}: read tables with "
                "data_contracts.storage.read_table, which types every column by the contract",
            ),
        ),
    ]  # fmt: skip
    if not col.nullable:
        out.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=name,
                meta=_meta(
                    table,
                    Rule.NOT_NULL,
                    name,
                    f"{name} is empty but required: fill it in the source export or drop the row",
                ),
            )
        )
    if col.allowed is not None:
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=name,
                value_set=list(col.allowed),
                meta=_meta(
                    table,
                    Rule.IN_SET,
                    name,
                    f"{name} is not one of the allowed codes ({_codes(col.allowed)}): map the "
                    "source value to a code in the import mapping's value map",
                ),
            )
        )
    if col.minimum is not None or col.maximum is not None:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=name,
                min_value=col.minimum,
                max_value=col.maximum,
                meta=_meta(
                    table,
                    Rule.BETWEEN,
                    name,
                    f"{name} must be {_bounds(col)}: correct the value in the source",
                ),
            )
        )
    if col.regex is not None:
        out.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=name,
                regex=col.regex,
                meta=_meta(
                    table,
                    Rule.REGEX,
                    name,
                    f"{name} does not match the pattern {col.regex}: correct the value in the "
                    "source or map it in the import mapping",
                ),
            )
        )
    if col.unique:
        out.append(
            gxe.ExpectColumnValuesToBeUnique(
                column=name,
                meta=_meta(
                    table,
                    Rule.UNIQUE,
                    name,
                    f"{name} is not unique: every row sharing the value is quarantined; keep one "
                    f"row per {name} in the export",
                ),
            )
        )
    return out


def _order_expectation(spec: TableSpec, rule: OrderRule) -> gxe.Expectation:
    earlier, later = order_columns(spec, rule)
    what = rule.description or f"{rule.later} must not be before {rule.earlier}"
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later,
        column_B=earlier,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        meta=_meta(
            spec.name, Rule.ORDER, rule.later,
            f"{what}: {rule.later} is before {rule.earlier}; correct the timestamps in the source",
        ),
    )  # fmt: skip


def _conditional_expectation(table: str, rule: ConditionalNull) -> gxe.Expectation:
    values = ", ".join(rule.values)
    if rule.mode == "required_iff":
        default = f"{rule.column} is set exactly when {rule.when_column} is one of ({values})"
        todo = (
            f"fill {rule.column} when {rule.when_column} is one of ({values}), clear it otherwise"
        )
    else:
        default = f"{rule.column} is empty when {rule.when_column} is one of ({values})"
        todo = f"clear {rule.column} when {rule.when_column} is one of ({values})"
    what = rule.description or default
    return gxe.ExpectColumnValuesToBeInSet(
        column=conditional_column(rule),
        value_set=[True],
        meta=_meta(
            table, Rule.CONDITIONAL_NULL, rule.column,
            f"{rule.column} does not agree with {rule.when_column} (rule: {what}): {todo}, "
            f"or correct {rule.when_column}",
        ),
    )  # fmt: skip


def build_suite(spec: TableSpec) -> gx.ExpectationSuite:
    """The GX expectation suite of one contract table (custom columns included).

    The suite is named ``leadcast.<table>`` and validates a typed frame (``storage``)
    extended by ``relations.derive_helpers``. Map expectations report failing rows by
    index, so a frame with a ``RangeIndex`` maps failures to file row positions. The suite
    is built without a data context; add it to one (``context.suites.add``) to run it.
    """
    table = spec.name
    expectations: list[gxe.Expectation] = []
    for col in spec.columns:
        expectations.extend(_column_expectations(table, col))
    if len(spec.key) > 1:
        key = "|".join(spec.key)
        expectations.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=list(spec.key),
                meta=_meta(
                    table,
                    Rule.UNIQUE,
                    key,
                    f"the key ({', '.join(spec.key)}) is not unique: every row sharing it is "
                    "quarantined; keep one row per key in the export",
                ),
            )
        )
    for fk in spec.foreign_keys:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=fk_column(fk),
                value_set=[True],
                meta=_meta(
                    table,
                    Rule.FOREIGN_KEY,
                    fk.column,
                    f"{fk.column} names no row of {fk.parent}.{fk.parent_column}: add the "
                    f"missing {fk.parent} row to the export or clear {fk.column}",
                ),
            )
        )
    expectations.extend(_order_expectation(spec, rule) for rule in spec.order_rules)
    expectations.extend(_conditional_expectation(table, rule) for rule in spec.conditional_nulls)
    for columns in spec.at_least_one_of:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=at_least_one_column(columns),
                value_set=[True],
                meta=_meta(
                    table,
                    Rule.AT_LEAST_ONE_OF,
                    "|".join(columns),
                    f"none of {', '.join(columns)} is set: every {table} row needs at least "
                    "one of them; fill one in the source or drop the row",
                ),
            )
        )
    for columns in spec.at_most_one_of:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=at_most_one_column(columns),
                value_set=[True],
                meta=_meta(
                    table,
                    Rule.AT_MOST_ONE_OF,
                    "|".join(columns),
                    f"more than one of {', '.join(columns)} is set: at most one may be; clear "
                    "the ones that do not apply",
                ),
            )
        )
    # passed to the constructor: ``add_expectation`` would need a current data context
    return gx.ExpectationSuite(name=f"leadcast.{table}", expectations=expectations)
