"""The column-spec language that every Leadcast table is defined in.

A :class:`TableSpec` is the single definition of a table. The great-expectations suite
(batch validation, ``data_contracts.expectations``) and the pydantic models (request
validation, ``data_contracts.payloads``) are both *built* from it, so the two can never
disagree about what a valid row is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class ColumnType(StrEnum):
    """Logical column types. Storage: string → pandas ``str``, integer → ``Int64``,
    float → ``float64``, boolean → ``boolean``, datetime/date → ``datetime64[us]`` (naive UTC)."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"


TEMPORAL_TYPES = frozenset({ColumnType.DATETIME, ColumnType.DATE})


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    ``allowed`` restricts values to a closed vocabulary (codes are English snake_case);
    ``minimum``/``maximum`` are inclusive bounds for numeric columns; ``regex`` constrains
    strings. ``outcome`` marks columns that record what happened after the fact (labels):
    they are excluded from request payloads and must never be used as features.
    """

    name: str
    dtype: ColumnType
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    regex: str | None = None
    unique: bool = False
    outcome: bool = False
    label_en: str = ""
    label_zh: str = ""
    description: str = ""
    custom: bool = False


@dataclass(frozen=True)
class OrderRule:
    """``later`` must not be before ``earlier`` (equal allowed) when both are present.

    ``earlier`` may name a column of a parent table as ``"table.column"``; the parent is
    joined through the table's foreign key before the rule is checked.
    """

    earlier: str
    later: str
    description: str = ""


@dataclass(frozen=True)
class ForeignKey:
    """``column`` must hold a key of ``parent`` (rows with a null ``column`` are not checked)."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class ConditionalNull:
    """``column`` must be non-null exactly when ``when_column`` takes one of ``values``
    (``required_iff``), or must be null when it takes one of them (``null_when``)."""

    column: str
    when_column: str
    values: tuple[str, ...]
    mode: str  # "required_iff" | "null_when"
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A contract table: its columns, key, relations and row-level rules."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    order_rules: tuple[OrderRule, ...] = ()
    conditional_nulls: tuple[ConditionalNull, ...] = ()
    at_least_one_of: tuple[tuple[str, ...], ...] = ()
    at_most_one_of: tuple[tuple[str, ...], ...] = ()
    description: str = ""
    custom_fields_allowed: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}; columns: {self.column_names}")

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]

    @property
    def custom_columns(self) -> list[Column]:
        return [c for c in self.columns if c.custom]

    def with_custom_fields(self, fields: tuple[Column, ...] | list[Column]) -> TableSpec:
        """Return this spec extended by custom columns (e.g. from a dataset manifest).

        Raises ``ValueError`` when the table takes no custom fields or a name collides.
        """
        if not fields:
            return self
        if not self.custom_fields_allowed:
            raise ValueError(
                f"table {self.name!r} does not take custom fields; declare them on leads or deals"
            )
        taken = set(self.column_names)
        for f in fields:
            if f.name in taken:
                raise ValueError(
                    f"custom field {f.name!r} on {self.name!r} collides with an existing column;"
                    " rename it in the custom-field config"
                )
            taken.add(f.name)
        return replace(self, columns=self.columns + tuple(replace(f, custom=True) for f in fields))
