"""Pydantic models built from the contract tables, for request validation (serving).

Batch data goes through the great-expectations suites (``data_contracts.expectations``);
single records on the request path go through these models, because GX costs tens of
milliseconds per expectation. Both are built from the same :class:`TableSpec`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from data_contracts.spec import Column, ColumnType, TableSpec


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """Contract timestamps are naive UTC: an offset given in a request is applied."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


_PY_TYPES: dict[ColumnType, Any] = {
    ColumnType.STRING: str,
    ColumnType.INTEGER: int,
    ColumnType.FLOAT: float,
    ColumnType.BOOLEAN: bool,
    ColumnType.DATETIME: Annotated[dt.datetime, AfterValidator(_naive_utc)],
    ColumnType.DATE: dt.date,
}


class ContractRecord(BaseModel):
    """Base of every generated record model: unknown fields are errors, nothing is coerced
    across types (a string is not a number, a number is not a boolean)."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    __order_rules__: tuple[tuple[str, str, str], ...] = ()

    @model_validator(mode="after")
    def _check_order(self) -> ContractRecord:
        for earlier, later, description in self.__order_rules__:
            a, b = getattr(self, earlier, None), getattr(self, later, None)
            if a is not None and b is not None and _as_datetime(b) < _as_datetime(a):
                raise ValueError(f"{later} is before {earlier}: {description}")
        return self


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return (
            value.replace(tzinfo=None)
            if value.tzinfo is None
            else value.astimezone(dt.UTC).replace(tzinfo=None)
        )
    return dt.datetime.combine(value, dt.time())


def _field(column: Column) -> tuple[Any, Any]:
    annotation: Any = _PY_TYPES[column.dtype]
    if column.allowed is not None:
        annotation = Literal[column.allowed]
    constraints: dict[str, Any] = {"description": column.description or column.label_en}
    if column.minimum is not None:
        constraints["ge"] = column.minimum
    if column.maximum is not None:
        constraints["le"] = column.maximum
    if column.regex is not None:
        constraints["pattern"] = column.regex
    if column.dtype is ColumnType.FLOAT:
        constraints["allow_inf_nan"] = False
    if column.dtype in (ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.BOOLEAN):
        constraints["strict"] = True  # "12" is not a number and 1 is not a boolean
    if column.nullable:
        return annotation | None, Field(default=None, **constraints)
    return annotation, Field(..., **constraints)


@cache
def record_model(spec: TableSpec, *, include_outcome: bool = False) -> type[ContractRecord]:
    """The pydantic model of one row of ``spec``.

    ``include_outcome=False`` (the default, for scoring requests) leaves out the columns
    that record what happened later (``converted_at``, ``outcome``, …): they are labels and
    must never reach a model as input.
    """
    columns = [c for c in spec.columns if include_outcome or not c.outcome]
    names = {c.name for c in columns}
    fields = {c.name: _field(c) for c in columns}
    rules = tuple(
        (r.earlier, r.later, r.description)
        for r in spec.order_rules
        if r.earlier in names and r.later in names
    )
    suffix = "Record" if include_outcome else "Input"
    model = create_model(  # type: ignore[call-overload]
        f"{''.join(p.capitalize() for p in spec.name.split('_'))}{suffix}",
        __base__=ContractRecord,
        **fields,
    )
    model.__order_rules__ = rules
    return model


@dataclass(frozen=True)
class RecordError:
    """Why one record of a batch was rejected: its position, its id, the field and the reason."""

    index: int
    record_id: str | None
    field: str | None
    message: str


@cache
def _batch_adapter(model: type[ContractRecord]) -> TypeAdapter[list[ContractRecord]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def validate_records(
    model: type[ContractRecord], records: Iterable[Mapping[str, Any]], id_field: str
) -> tuple[list[tuple[int, ContractRecord]], list[RecordError]]:
    """Validate each record on its own: valid ones are returned with their batch index,
    invalid ones become one :class:`RecordError` per broken field. One bad record never
    stops the others.

    The batch is first validated in one pydantic call (the common case: every record is
    valid, ~10x cheaper than a call per record); when that fails, the records it names are
    validated one by one for their errors and the rest again as one batch — the same
    results either way."""
    records = records if isinstance(records, list) else list(records)
    adapter = _batch_adapter(model)
    try:
        return list(enumerate(adapter.validate_python(records))), []
    except ValidationError as exc:
        bad = {int(e["loc"][0]) for e in exc.errors(include_url=False) if e["loc"]}
    good = [i for i in range(len(records)) if i not in bad]
    try:
        parsed = adapter.validate_python([records[i] for i in good])
    except ValidationError:  # cannot happen (items validate alone); stay correct anyway
        return _validate_each(model, records, range(len(records)), id_field)
    valid, errors = _validate_each(model, records, sorted(bad), id_field)
    valid = sorted([*zip(good, parsed, strict=True), *valid], key=lambda pair: pair[0])
    return valid, errors


def _validate_each(
    model: type[ContractRecord],
    records: list[Mapping[str, Any]],
    indices: Iterable[int],
    id_field: str,
) -> tuple[list[tuple[int, ContractRecord]], list[RecordError]]:
    valid: list[tuple[int, ContractRecord]] = []
    errors: list[RecordError] = []
    for index in indices:
        record = records[index]
        if not isinstance(record, Mapping):
            errors.append(RecordError(index, None, None, "record must be a JSON object"))
            continue
        record_id = record.get(id_field)
        rid = None if record_id is None else str(record_id)
        try:
            valid.append((index, model.model_validate(record)))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err["loc"]) or None
                errors.append(RecordError(index, rid, loc, err["msg"]))
    return valid, errors
