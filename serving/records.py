"""Per-record request checks shared by the scoring endpoints.

A record (a lead, a deal) may carry nested lists (its activities, its stage history). Each
list is validated against its contract table, row by row; a row's parent id is filled in
when absent and must match when given; timestamps must be before the scoring time. Every
problem is a ``(field, message)`` pair naming the nested position (``activities[2].
occurred_at``), so the endpoint reports it against the record without dropping the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from typing import Any

from data_contracts.payloads import ContractRecord, validate_records

Problem = tuple[str, str]


def split_body(
    record: Mapping[str, Any], nested: Sequence[str], known: Set[str], *, lenient: bool
) -> tuple[dict[str, Any], list[str]]:
    """The record's own fields (without the ``nested`` lists) and, when ``lenient``, the
    names of fields the contract does not know, set aside instead of rejected."""
    if any(k in record for k in nested):
        body = {k: v for k, v in record.items() if k not in nested}
    else:
        body = dict(record)  # the common case: nothing nested to take out
    if not lenient:
        return body, []
    ignored = sorted(k for k in body if k not in known)
    return {k: v for k, v in body.items() if k in known}, ignored


def nested_rows(
    record: Mapping[str, Any],
    field: str,
    model: type[ContractRecord],
    id_field: str,
    parent: tuple[str, Any],
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The valid rows of ``record[field]`` (a list, possibly absent) with the parent id set,
    and the problems of the others."""
    items = record.get(field) or []
    if not items:
        return [], []
    if not isinstance(items, list):
        return [], [(field, f"{field} must be a list of objects")]
    key, parent_id = parent
    problems: list[Problem] = []
    filled = []
    for j, item in enumerate(items):
        if isinstance(item, Mapping) and item.get(key) not in (None, parent_id):
            problems.append((f"{field}[{j}].{key}", f"is not this record's {key}"))
        filled.append({**item, key: parent_id} if isinstance(item, Mapping) else item)
    ok, errors = validate_records(model, filled, id_field)
    problems += [(f"{field}[{e.index}].{e.field}", e.message) for e in errors]
    return [r.__dict__.copy() for _, r in ok], problems  # flat: model_dump() without its cost


def not_before(
    rows: list[dict[str, Any]], field: str, stamp: str, as_of: datetime
) -> list[Problem]:
    """A problem for each row whose ``stamp`` is at or after the scoring time."""
    if not rows:
        return []
    return [
        (
            f"{field}[{j}].{stamp}",
            f"is not before the scoring time {as_of.isoformat()}; send past events only "
            "(or a later as_of)",
        )
        for j, row in enumerate(rows)
        if row.get(stamp) is not None and row[stamp] >= as_of
    ]


__all__ = ["Problem", "nested_rows", "not_before", "split_body"]
