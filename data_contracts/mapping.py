"""Import mappings: how an analyst's CRM export becomes the four contract tables.

A mapping is a hand-written YAML file (format and a full annotated example:
``examples/mappings/README.md``). It names the source files and, per contract table, the
base source, optional left joins and row filters, and where each contract column comes
from: a source ``column`` (optionally through a value map or a date format), a
``constant``, or ``if_present`` (one code when a source value is there, another when not).

This module is pure: :func:`parse_mapping` reads YAML *text* into an :class:`ImportMapping`,
and :func:`transform` turns source *frames* into typed contract tables plus a list of
:class:`Problem`. Reading files and writing the dataset is ``pipelines.importing``.

Nothing is coerced silently. A raw value missing from a value map is an error unless the
mapping says otherwise (``unmapped: keep`` passes it through for the contract to flag,
``unmapped: null`` drops it with a count); a value that cannot be read as its column's type
becomes null *and* a :class:`~data_contracts.storage.ParseIssue`, so validation can
quarantine the row.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Final, Literal, Union, get_args, get_origin

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from data_contracts.dataset import CustomField, CustomFields
from data_contracts.spec import TEMPORAL_TYPES, Column, ColumnType, TableSpec
from data_contracts.storage import ParseIssue, coerce_frame
from data_contracts.tables import CURRENCY, DEALS, TABLES

Scalar = str | int | float | bool
UnmappedPolicy = Literal["error", "keep", "null"]

#: the value-map key that matches missing or blank source values
BLANK_KEY: Final = ""

#: contract columns the importer fills itself (table → column → where from)
AUTOMATIC_COLUMNS: Final[dict[str, dict[str, str]]] = {
    DEALS.name: {CURRENCY: "the mapping's top-level 'currency'"},
}

_EXAMPLES = 3  # example source rows quoted per problem
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_LISTED_VALUES = 20  # unmapped raw values listed one by one; the rest are summed up


class MappingError(ValueError):
    """The mapping cannot be applied as written; the message says where and what to change."""


# --------------------------------------------------------------------------------------
# The mapping model
# --------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceFile(_Strict):
    """One source file, relative to the source directory. CSV options apply to ``.csv``."""

    path: str = Field(min_length=1)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = Field(default="utf-8-sig", description="utf-8 with or without a BOM")
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    skip_rows: int = Field(default=0, ge=0, description="lines to skip before the header")
    na_values: tuple[str, ...] = Field(
        default=(), description="extra strings that mean 'missing' (blank always does)"
    )

    @field_validator("path")
    @classmethod
    def _suffix(cls, value: str) -> str:
        if not value.lower().endswith((".parquet", *_CSV_SUFFIXES)):
            raise ValueError(
                f"{value!r}: unsupported file type; use .csv (.tsv/.txt with a delimiter, "
                ".csv.gz) or .parquet"
            )
        return value

    @property
    def file_format(self) -> Literal["csv", "parquet"]:
        return "parquet" if self.path.lower().endswith(".parquet") else "csv"


class Join(_Strict):
    """A left join of another source: each base row gets the one row whose key matches."""

    source: str
    on: str | None = Field(default=None, description="key column, same name on both sides")
    left_on: str | None = None
    right_on: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Join:
        if self.on is not None and (self.left_on or self.right_on):
            raise ValueError("give either 'on' or both 'left_on' and 'right_on', not both")
        if self.on is None and not (self.left_on and self.right_on):
            raise ValueError("a join needs 'on' (same key name) or both 'left_on' and 'right_on'")
        return self

    @property
    def left_key(self) -> str:
        return self.on or self.left_on or ""

    @property
    def right_key(self) -> str:
        return self.on or self.right_on or ""


class RowFilter(_Strict):
    """Keep only the rows where ``column`` is present / absent, or is (not) one of values."""

    column: str
    present: bool | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    not_in: tuple[str, ...] | None = None

    @field_validator("in_", "not_in", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(_key_text(v) for v in value)
        return value

    @model_validator(mode="after")
    def _check(self) -> RowFilter:
        given = [
            k
            for k, v in (("present", self.present), ("in", self.in_), ("not_in", self.not_in))
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"filter on {self.column!r}: give exactly one of 'present', 'in', 'not_in'"
                f" (got {given or 'none'})"
            )
        return self

    def describe(self) -> str:
        if self.present is not None:
            return f"{self.column} {'present' if self.present else 'missing'}"
        if self.in_ is not None:
            return f"{self.column} in {list(self.in_)}"
        return f"{self.column} not in {list(self.not_in or ())}"


class ColumnMap(_Strict):
    """Where one contract column comes from. A bare string is shorthand for ``{column: …}``.

    Exactly one of ``column``, ``constant``, ``if_present``. With ``column``: ``values``
    (raw → code; the key ``""`` matches blank/missing values) with ``unmapped`` deciding
    what happens to raw values the map lacks, ``format`` (strftime) and ``timezone``
    (IANA name) for dates, ``default`` for blank source values (not for dates).
    """

    column: str | None = None
    constant: Scalar | None = None
    if_present: str | None = None
    then: Scalar | None = None
    otherwise: Scalar | None = None
    values: dict[str, Scalar | None] | None = None
    unmapped: UnmappedPolicy = "error"
    format: str | None = None
    timezone: str | None = None
    default: Scalar | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        return data

    @field_validator("values", mode="before")
    @classmethod
    def _value_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_key_text(k): v for k, v in value.items()}
        return value

    @field_validator("unmapped", mode="before")
    @classmethod
    def _null_policy(cls, value: Any) -> Any:
        return "null" if value is None else value  # YAML reads a bare `null` as None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"date format {value!r} has no % directive; e.g. '%Y-%m-%d %H:%M:%S'")
        return value

    @model_validator(mode="after")
    def _check(self) -> ColumnMap:
        kinds = [k for k in ("column", "constant", "if_present") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"give exactly one of 'column', 'constant', 'if_present' (got {kinds or 'none'})"
            )
        if self.if_present is None and (self.then is not None or self.otherwise is not None):
            raise ValueError("'then'/'otherwise' belong to 'if_present'")
        if self.if_present is not None and self.then is None:
            raise ValueError("'if_present' needs 'then' (the value when the source is present)")
        if self.column is None:
            extras = [k for k in ("values", "default") if getattr(self, k) is not None]
            if extras:
                raise ValueError(f"{extras} apply to a source 'column' only")
        if "unmapped" in self.model_fields_set and self.values is None:
            raise ValueError("'unmapped' needs a value map ('values')")
        return self

    @property
    def references(self) -> list[str]:
        """Source columns this mapping reads."""
        return [r for r in (self.column, self.if_present) if r is not None]

    def targets(self) -> list[Scalar]:
        """The contract values this mapping can produce without reading a source column."""
        out: list[Scalar | None] = [self.constant, self.then, self.otherwise, self.default]
        if self.values is not None:
            out.extend(self.values.values())
        return [v for v in out if v is not None]


class CustomFieldMap(ColumnMap):
    """A custom field: its declaration (type, allowed values, labels) and where it comes from."""

    type: ColumnType
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    label_en: str = ""
    label_zh: str = ""
    description: str = ""

    def declaration(self, name: str) -> CustomField:
        return CustomField(
            name=name,
            type=self.type,
            nullable=self.nullable,
            allowed=self.allowed,
            minimum=self.minimum,
            maximum=self.maximum,
            label_en=self.label_en,
            label_zh=self.label_zh,
            description=self.description,
        )


class TableMap(_Strict):
    """How one contract table is built: base source, left joins, filters, columns."""

    from_: str = Field(alias="from", description="the base source: one output row per its row")
    join: tuple[Join, ...] = ()
    filter: tuple[RowFilter, ...] = ()
    columns: dict[str, ColumnMap]
    custom_fields: dict[str, CustomFieldMap] = Field(default_factory=dict)

    def all_columns(self) -> dict[str, ColumnMap]:
        return {**self.columns, **self.custom_fields}

    def sources(self) -> list[str]:
        return [self.from_, *(j.source for j in self.join)]


class ImportMapping(_Strict):
    """A whole mapping file. See ``examples/mappings/README.md``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="recorded as import:<name>")
    description: str = ""
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code of all amounts")
    timezone: str = Field(
        default="UTC", description="IANA zone of source timestamps without an offset"
    )
    sources: dict[str, SourceFile] = Field(min_length=1)
    tables: dict[str, TableMap] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _check(self) -> ImportMapping:
        problems: list[str] = []
        for table, tmap in self.tables.items():
            if table not in TABLES:
                problems.append(f"tables.{table}: not a contract table; use one of {list(TABLES)}")
                continue
            problems.extend(self._check_table(table, tmap))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check_table(self, table: str, tmap: TableMap) -> list[str]:
        where = f"tables.{table}"
        out: list[str] = []
        repeated = sorted({s for s in tmap.sources() if tmap.sources().count(s) > 1})
        if repeated:
            out.append(
                f"{where}: source(s) {repeated} appear more than once among 'from' and 'join'; "
                "declare a second source with the same path to join a file to itself"
            )
        for src in tmap.sources():
            if src not in self.sources:
                out.append(
                    f"{where}: source {src!r} is not declared; sources: {list(self.sources)}"
                )
        base = TABLES[table]
        auto = AUTOMATIC_COLUMNS.get(table, {})
        for name in tmap.columns:
            if name in auto:
                out.append(
                    f"{where}.columns.{name}: filled from {auto[name]}; remove it from the mapping"
                )
            elif name not in base.column_names:
                out.append(
                    f"{where}.columns.{name}: not a column of the {table!r} contract; declare it "
                    f"under {where}.custom_fields or use one of {base.column_names}"
                )
        missing = [c for c in base.required_columns if c not in tmap.columns and c not in auto]
        if missing:
            out.append(
                f"{where}: required contract column(s) {missing} are not mapped; add each under "
                f"{where}.columns as a source 'column', a 'constant' or 'if_present'"
            )
        if tmap.custom_fields:
            try:
                declared = [f.declaration(n) for n, f in tmap.custom_fields.items()]
                base.with_custom_fields([d.to_column() for d in declared])
            except (ValueError, ValidationError) as exc:
                out.append(f"{where}.custom_fields: {_one_line(exc)}")
                return out
        spec = self.contract_spec(table, tmap)
        for name, cmap in tmap.all_columns().items():
            if name not in spec.column_names:
                continue
            block = "custom_fields" if name in tmap.custom_fields else "columns"
            out.extend(_check_column(f"{where}.{block}.{name}", spec.column(name), cmap))
        return out

    @staticmethod
    def contract_spec(table: str, tmap: TableMap | None) -> TableSpec:
        """The contract of ``table`` extended by the custom fields this mapping declares."""
        base = TABLES[table]
        if tmap is None or not tmap.custom_fields:
            return base
        return base.with_custom_fields(
            [f.declaration(n).to_column() for n, f in tmap.custom_fields.items()]
        )

    def custom_fields(self) -> CustomFields:
        """The custom-field declarations for the dataset manifest."""
        found: dict[str, tuple[CustomField, ...]] = {}
        for table in ("leads", "deals"):
            tmap = self.tables.get(table)
            found[table] = tuple(
                f.declaration(n) for n, f in (tmap.custom_fields.items() if tmap else ())
            )
        return CustomFields(**found)


def _check_column(where: str, column: Column, cmap: ColumnMap) -> list[str]:
    out: list[str] = []
    temporal = column.dtype in TEMPORAL_TYPES
    if not temporal and (cmap.format or cmap.timezone):
        out.append(
            f"{where}: 'format'/'timezone' apply to date columns; {column.name} is "
            f"{column.dtype.value}"
        )
    if column.dtype is ColumnType.DATE and cmap.timezone:
        out.append(f"{where}: {column.name} is a calendar date; a 'timezone' does not apply")
    if temporal and cmap.default is not None:
        out.append(f"{where}: a 'default' date would be invented data; leave blanks null")
    if column.allowed is not None:
        bad = sorted({str(v) for v in cmap.targets() if str(v) not in column.allowed})
        if bad:
            out.append(
                f"{where}: {bad} not allowed in {column.name}; allowed codes: "
                f"{list(column.allowed)}"
            )
    return out


def _check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {value!r}; use an IANA name such as 'Asia/Shanghai' or 'UTC'"
        ) from exc
    return value


def _key_text(value: Any) -> str:
    """The text a YAML scalar stands for when compared with source values."""
    if value is None:
        return BLANK_KEY
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(e["msg"] for e in exc.errors(include_url=False))
    return str(exc)


# --------------------------------------------------------------------------------------
# Parsing YAML text
# --------------------------------------------------------------------------------------


class _MappingLoader(yaml.SafeLoader):
    """Safe YAML with two traps removed: ``yes``/``no``/``on``/``off`` stay strings (value
    maps of CRM exports are full of them) and a key given twice is an error, not last-wins."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML itself rejects it with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key!r} is given twice (first on line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_MappingLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MappingLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_mapping(text: str, origin: str = "<mapping>") -> ImportMapping:
    """Parse and check mapping YAML; :class:`MappingError` names each wrong key and the fix.

    ``origin`` (usually the file name) prefixes the messages.
    """
    try:
        data = yaml.load(text, Loader=_MappingLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise MappingError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(
            f"{origin}: a mapping file is a YAML mapping with 'name', 'currency', "
            "'sources' and 'tables'"
        )
    try:
        return ImportMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{origin}: invalid mapping:\n" + _explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            allowed = _allowed_keys(err["loc"])
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            hint += f"; allowed keys here: {allowed}" if allowed else ""
            lines.append(f"  - {loc}: unknown key {key!r}{hint}")
        elif err["type"] == "missing":
            lines.append(f"  - {loc}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if loc:
                lines.append(f"  - {loc}: {msg}")
            else:  # checks across the whole mapping name their own location
                lines.extend(f"  - {line}" for line in msg.splitlines())
    return "\n".join(dict.fromkeys(lines))


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at ``loc[:-1]`` accepts, for 'unknown key' messages."""
    node: Any = ImportMapping
    for part in loc[:-1]:
        if isinstance(node, type) and issubclass(node, BaseModel):
            info = next((f for n, f in node.model_fields.items() if part in (n, f.alias)), None)
            if info is None:
                return []
            node = info.annotation
        else:  # a dict key or tuple index: step into the item type
            args = [a for a in get_args(node) if a not in (type(None), Ellipsis)]
            node = args[-1] if args else None
        args = [a for a in get_args(node) if a is not type(None)]
        if get_origin(node) in (Union, UnionType) and len(args) == 1:
            node = args[0]
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


# --------------------------------------------------------------------------------------
# The transformation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something the import found. ``error`` stops the import; ``warning`` and ``info`` are
    reported with their row ``count``. ``examples`` are 1-based source row numbers."""

    severity: Literal["error", "warning", "info"]
    table: str
    column: str
    message: str
    count: int = 0
    examples: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = f" (e.g. source rows {', '.join(map(str, self.examples))})" if self.examples else ""
        return f"{self.severity}: {where}: {self.message}{rows}"


@dataclass
class ImportResult:
    """The four typed contract tables, the values that could not be read, and the problems."""

    tables: dict[str, pd.DataFrame]
    issues: dict[str, list[ParseIssue]]
    problems: list[Problem]
    custom_fields: CustomFields
    source_rows: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class _Scope:
    """The working frame of one table: base rows with joined columns beside them."""

    table: str
    frame: pd.DataFrame  # columns named "<source>.<column>"
    columns: dict[str, list[str]]  # source → its columns
    order: tuple[str, ...]  # base first
    rows: np.ndarray  # 0-based base-source row of each working row

    def resolve(self, ref: str) -> str:
        src, dot, col = ref.partition(".")
        if dot and src in self.columns and col in self.columns[src]:
            return ref
        owners = [s for s in self.order if ref in self.columns[s]]
        if not owners:
            raise MappingError(f"tables.{self.table}: no source in scope has a column {ref!r}")
        if owners[0] == self.order[0]:
            return f"{owners[0]}.{ref}"
        if len(owners) == 1:
            return f"{owners[0]}.{ref}"
        raise MappingError(
            f"tables.{self.table}: column {ref!r} is in several joined sources {owners}; "
            f"write it as '<source>.{ref}', e.g. '{owners[0]}.{ref}'"
        )

    def examples(self, where: np.ndarray) -> tuple[int, ...]:
        """1-based base-source rows of the first working rows in ``where`` (mask or positions)."""
        positions = np.flatnonzero(where) if where.dtype == bool else where
        return tuple(int(r) + 1 for r in self.rows[positions[:_EXAMPLES]])


def transform(mapping: ImportMapping, sources: Mapping[str, pd.DataFrame]) -> ImportResult:
    """Build the four contract tables from raw source frames, as ``mapping`` says.

    ``sources`` maps each source name of the mapping to its frame as read (CSV: all text,
    blanks as missing). Returns typed tables in contract column order (tables the mapping
    omits are empty with the right columns), the :class:`ParseIssue` of every value that
    could not be read (null in the table, to be quarantined by validation) and the
    problems found (raw values a value map lacks under ``unmapped: error`` are ``error``
    problems: the caller must not write the tables). Raises :class:`MappingError` when the
    mapping references a source or column that the frames do not have, or a join key
    matches more than one row. Does not mutate ``sources``.
    """
    _check_references(mapping, sources)
    tables: dict[str, pd.DataFrame] = {}
    issues: dict[str, list[ParseIssue]] = {}
    problems: list[Problem] = []
    for name in TABLES:
        tmap = mapping.tables.get(name)
        spec = mapping.contract_spec(name, tmap)
        if tmap is None:
            empty = pd.DataFrame({c: pd.Series([], dtype="str") for c in spec.column_names})
            tables[name] = coerce_frame(empty, spec).frame
            issues[name] = []
            continue
        frame, table_issues, table_problems = _build_table(mapping, name, tmap, spec, sources)
        tables[name], issues[name] = frame, table_issues
        problems.extend(table_problems)
    return ImportResult(
        tables=tables,
        issues=issues,
        problems=problems,
        custom_fields=mapping.custom_fields(),
        source_rows={n: len(f) for n, f in sources.items()},
    )


def _check_references(mapping: ImportMapping, sources: Mapping[str, pd.DataFrame]) -> None:
    absent = [n for n in mapping.sources if n not in sources]
    if absent:
        raise MappingError(f"no frame given for source(s) {absent}")
    wanted: dict[str, dict[str, list[str]]] = {}  # source → column → where used

    def need(source: str, column: str, where: str) -> None:
        wanted.setdefault(source, {}).setdefault(column, []).append(where)

    for table, tmap in mapping.tables.items():
        scope_cols = {s: list(map(str, sources[s].columns)) for s in tmap.sources()}
        for j in tmap.join:
            need(tmap.from_, j.left_key, f"tables.{table}.join")
            need(j.source, j.right_key, f"tables.{table}.join")
        refs = [(f.column, f"tables.{table}.filter") for f in tmap.filter]
        refs += [
            (r, f"tables.{table}.{block}.{n}")
            for block, cmaps in (("columns", tmap.columns), ("custom_fields", tmap.custom_fields))
            for n, c in cmaps.items()
            for r in c.references
        ]
        for ref, where in refs:
            src, dot, col = ref.partition(".")
            if dot and src in scope_cols:
                need(src, col, where)
            elif not any(ref in cols for cols in scope_cols.values()):
                need(tmap.from_, ref, where)
    lines = []
    for source, cols in wanted.items():
        have = list(map(str, sources[source].columns))
        missing = {c: w for c, w in cols.items() if c not in have}
        if missing:
            used = "; ".join(f"{c!r} in {', '.join(dict.fromkeys(w))}" for c, w in missing.items())
            lines.append(
                f"source {source!r} (file {mapping.sources[source].path}) has no column(s) "
                f"{list(missing)} referenced by the mapping ({used}); the file has columns "
                f"{have}"
            )
    if lines:
        raise MappingError("\n".join(lines))


def _build_table(
    mapping: ImportMapping,
    table: str,
    tmap: TableMap,
    spec: TableSpec,
    sources: Mapping[str, pd.DataFrame],
) -> tuple[pd.DataFrame, list[ParseIssue], list[Problem]]:
    problems: list[Problem] = []
    scope = _scope(mapping, table, tmap, sources)
    if tmap.filter:
        keep = np.ones(len(scope.frame), dtype=bool)
        for f in tmap.filter:
            keep &= _filter_mask(scope.frame[scope.resolve(f.column)], f)
        described = " and ".join(f.describe() for f in tmap.filter)
        problems.append(
            Problem(
                "info",
                table,
                "",
                f"filter ({described}) kept {int(keep.sum()):,} of "
                f"{len(keep):,} rows of source {tmap.from_!r}",
                int(keep.sum()),
            )
        )
        scope = _Scope(
            table,
            scope.frame.loc[keep].reset_index(drop=True),
            scope.columns,
            scope.order,
            scope.rows[keep],
        )
    raw: dict[str, pd.Series] = {}
    issues: list[ParseIssue] = []
    for name, cmap in tmap.all_columns().items():
        column = spec.column(name)
        values, col_issues, col_problems = _map_column(mapping, scope, column, cmap)
        raw[name] = values
        issues.extend(col_issues)
        problems.extend(col_problems)
    if table == DEALS.name:
        raw[CURRENCY] = pd.Series(mapping.currency, index=scope.frame.index, dtype="str")
    ordered = pd.DataFrame(
        {c: raw[c] for c in spec.column_names if c in raw}, index=scope.frame.index
    )
    loaded = coerce_frame(ordered, spec)
    issues.extend(loaded.issues)
    for issue_column, group in _group_issues(loaded.issues).items():
        problems.append(
            Problem(
                "warning",
                table,
                issue_column,
                f"{len(group):,} value(s) could not be read as "
                f"{spec.column(issue_column).dtype.value}"
                f" (e.g. {[i.value for i in group[:_EXAMPLES]]}); they are null and will be "
                "quarantined by validation",
                len(group),
                scope.examples(np.array([i.row for i in group[:_EXAMPLES]])),
            )
        )
    return loaded.frame, sorted(issues, key=lambda i: (i.row, i.column)), problems


def _group_issues(issues: list[ParseIssue]) -> dict[str, list[ParseIssue]]:
    out: dict[str, list[ParseIssue]] = {}
    for issue in issues:
        out.setdefault(issue.column, []).append(issue)
    return out


def _scope(
    mapping: ImportMapping, table: str, tmap: TableMap, sources: Mapping[str, pd.DataFrame]
) -> _Scope:
    base = sources[tmap.from_].reset_index(drop=True)
    frame = base.add_prefix(f"{tmap.from_}.")
    columns = {tmap.from_: list(map(str, base.columns))}
    for j in tmap.join:
        right = sources[j.source].reset_index(drop=True)
        right_keys = _as_text(right[j.right_key])
        dup = right_keys.notna() & right_keys.duplicated(keep=False)
        if dup.any():
            examples = list(dict.fromkeys(right_keys[dup]))[:_EXAMPLES]
            raise MappingError(
                f"tables.{table}.join: key {j.right_key!r} of source {j.source!r} (file "
                f"{mapping.sources[j.source].path}) matches more than one row for "
                f"{right_keys[dup].nunique():,} key(s), e.g. {examples}; a left join must match "
                "at most one row: deduplicate the export or join on a unique key"
            )
        position = pd.Series(np.arange(len(right)), index=right_keys.to_numpy())
        position = position[right_keys.notna().to_numpy()]
        left_keys = _as_text(frame[f"{tmap.from_}.{j.left_key}"])
        hit = left_keys.map(position)
        take = hit.fillna(-1).astype(np.int64).to_numpy()
        matched = take >= 0
        joined = (
            right.iloc[np.where(matched, take, 0)]
            if len(right)
            else right.reindex(range(len(frame)))
        )
        joined = joined.reset_index(drop=True).where(pd.Series(matched), other=pd.NA)
        joined = joined.add_prefix(f"{j.source}.")
        frame = pd.concat([frame, joined], axis=1)
        columns[j.source] = list(map(str, right.columns))
    return _Scope(table, frame, columns, tuple(columns), np.arange(len(base)))


def _filter_mask(values: pd.Series, f: RowFilter) -> np.ndarray:
    text = _as_text(values)
    present = text.notna().to_numpy()
    if f.present is not None:
        return present if f.present else ~present
    if f.in_ is not None:
        return text.isin(f.in_).fillna(False).to_numpy(dtype=bool)
    return ~text.isin(f.not_in or ()).fillna(False).to_numpy(dtype=bool)


def _as_text(values: pd.Series) -> pd.Series:
    """Source values as stripped text; missing and blank become NA."""
    if pd.api.types.is_bool_dtype(values.dtype):
        values = values.map({True: "true", False: "false"})
    text = values.astype("str").str.strip()
    return text.where(text.notna() & (text != ""))


def _map_column(
    mapping: ImportMapping, scope: _Scope, column: Column, cmap: ColumnMap
) -> tuple[pd.Series, list[ParseIssue], list[Problem]]:
    index = scope.frame.index
    problems: list[Problem] = []
    table = scope.table
    if cmap.constant is not None:
        out = pd.Series([cmap.constant] * len(index), index=index, dtype=object)
    elif cmap.if_present is not None:
        present = _as_text(scope.frame[scope.resolve(cmap.if_present)]).notna().to_numpy()
        out = pd.Series([cmap.otherwise] * len(index), index=index, dtype=object)
        out[present] = cmap.then
    else:
        assert cmap.column is not None
        source = scope.frame[scope.resolve(cmap.column)]
        blank = _as_text(source).isna()
        out = source.where(~blank)
        if cmap.values is not None:
            out, value_problems = _apply_values(scope, column, cmap, source)
            problems.extend(value_problems)
        if cmap.default is not None:
            fill = blank & out.isna()
            if fill.any():
                out = out.astype(object).where(~fill, cmap.default)
                problems.append(
                    Problem(
                        "info",
                        table,
                        column.name,
                        f"{int(fill.sum()):,} blank value(s) set to the default {cmap.default!r}",
                        int(fill.sum()),
                    )
                )
    if column.dtype in TEMPORAL_TYPES:
        return _parse_dates(mapping, scope, column, cmap, out, problems)
    return out, [], problems


def _apply_values(
    scope: _Scope, column: Column, cmap: ColumnMap, source: pd.Series
) -> tuple[pd.Series, list[Problem]]:
    values = cmap.values or {}
    text = _as_text(source)
    blank = text.isna().to_numpy()
    known = text.isin(list(values)).fillna(False).to_numpy(dtype=bool)
    out = text.astype(object).map(values).where(pd.Series(known, index=text.index))
    if BLANK_KEY in values:
        out = out.where(~pd.Series(blank, index=text.index), values[BLANK_KEY])
    problems: list[Problem] = []
    to_null = sorted(k for k, v in values.items() if v is None)
    if to_null:
        nulled = {k: int((text == k).sum()) if k else int(blank.sum()) for k in to_null}
        nulled = {k: n for k, n in nulled.items() if n}
        if nulled:
            shown = ", ".join(f"{repr(k) if k else '(blank)'}: {n:,}" for k, n in nulled.items())
            problems.append(
                Problem(
                    "info",
                    scope.table,
                    column.name,
                    f"{sum(nulled.values()):,} value(s) mapped to null by the value map ({shown})",
                    sum(nulled.values()),
                )
            )
    miss = ~blank & ~known
    if not miss.any():
        return out, problems
    counts = text[miss].value_counts(sort=True)
    severity: Literal["error", "warning", "info"] = (
        "error" if cmap.unmapped == "error" else "warning"
    )
    outcome = {
        "error": "add it under values (to a code, or to null), or set unmapped: keep|null",
        "keep": "kept as is (unmapped: keep); validation flags it if the contract does not "
        "allow it",
        "null": "set to null (unmapped: null)",
    }[cmap.unmapped]
    for raw_value, count in counts.iloc[:_LISTED_VALUES].items():
        rows = (text == raw_value).fillna(False).to_numpy(dtype=bool)
        problems.append(
            Problem(
                severity,
                scope.table,
                column.name,
                f"raw value {raw_value!r} ({count:,} rows) is not in the value map: {outcome}",
                int(count),
                scope.examples(rows),
            )
        )
    rest = counts.iloc[_LISTED_VALUES:]
    if len(rest):
        problems.append(
            Problem(
                severity,
                scope.table,
                column.name,
                f"{len(rest):,} more raw values ({int(rest.sum()):,} rows) are not in the value "
                f"map, e.g. {list(rest.index[:_EXAMPLES])}: {outcome}",
                int(rest.sum()),
            )
        )
    if cmap.unmapped == "keep":
        out = out.where(~pd.Series(miss, index=text.index), text)
    return out, problems


_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")


def _parse_dates(
    mapping: ImportMapping,
    scope: _Scope,
    column: Column,
    cmap: ColumnMap,
    values: pd.Series,
    problems: list[Problem],
) -> tuple[pd.Series, list[ParseIssue], list[Problem]]:
    """Read ``values`` as timestamps and return them as naive UTC ``datetime64[us]``.

    Text is parsed with the column's strftime ``format`` (ISO 8601 when none); values without
    an offset are wall-clock times in the column's (else the mapping's) timezone; daylight-
    saving gaps shift forward and repeated hours take the first (earlier) instant.
    """
    zone = None if column.dtype is ColumnType.DATE else (cmap.timezone or mapping.timezone)
    index = values.index
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
        text = values.astype("str")
        unread = np.zeros(len(values), dtype=bool)
    else:
        text = _as_text(values)
        parsed = _to_datetime(text, cmap.format)
        unread = (parsed.isna() & text.notna()).to_numpy()
    if getattr(parsed.dt, "tz", None) is None and zone not in (None, "UTC"):
        probe = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        shifted = (probe.isna() & parsed.notna()).to_numpy()
        if shifted.any():
            problems.append(
                Problem(
                    "info",
                    scope.table,
                    column.name,
                    f"{int(shifted.sum()):,} local time(s) fell in a daylight-saving change of "
                    f"{zone}: gaps shifted forward, repeated hours read as the earlier instant",
                    int(shifted.sum()),
                    scope.examples(shifted),
                )
            )
        parsed = parsed.dt.tz_localize(
            zone, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="shift_forward"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    out = parsed.astype("datetime64[us]")
    if column.dtype is ColumnType.DATE:
        out = out.dt.normalize()
    issues: list[ParseIssue] = []
    if unread.any():
        expected = f"the format {cmap.format!r}" if cmap.format else "ISO 8601 (or set 'format')"
        reason = f"does not match {expected} given in the mapping"
        positions = np.flatnonzero(unread)
        issues = [ParseIssue(int(p), column.name, str(text.iloc[p]), reason) for p in positions]
        problems.append(
            Problem(
                "warning",
                scope.table,
                column.name,
                f"{len(positions):,} value(s) do not match {expected} (e.g. "
                f"{[str(text.iloc[p]) for p in positions[:_EXAMPLES]]}); they are null and will be "
                "quarantined by validation",
                len(positions),
                scope.examples(unread),
            )
        )
    return pd.Series(out.to_numpy(), index=index), issues, problems


def _to_datetime(text: pd.Series, fmt: str | None) -> pd.Series:
    options: dict[str, Any] = {"format": fmt or "ISO8601", "errors": "coerce"}
    try:
        return pd.to_datetime(text, **options)
    except ValueError:  # offsets that differ between rows
        pass
    aware = text.str.contains(_OFFSET, na=False)
    naive = int((~aware & text.notna()).sum())
    if naive:
        raise MappingError(
            f"{int(aware.sum()):,} timestamp(s) carry a UTC offset and {naive:,} do not; export "
            "all of a column with an offset, or all as wall-clock times with a 'timezone'"
        )
    return pd.to_datetime(text, utc=True, **options)
