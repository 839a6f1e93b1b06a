"""Reading and writing contract tables with their declared types.

Values that cannot be read as their column's type are never coerced silently: they become
null in the frame *and* are reported as :class:`ParseIssue` rows (row position, column,
raw value, reason), which validation turns into quarantined rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.spec import ColumnType, TableSpec

PANDAS_DTYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "str",
    ColumnType.INTEGER: "Int64",
    ColumnType.FLOAT: "float64",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATETIME: "datetime64[us]",
    ColumnType.DATE: "datetime64[us]",
}

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class SchemaError(ValueError):
    """A table's columns do not match its contract (missing required or unknown columns)."""


@dataclass(frozen=True)
class ParseIssue:
    """A value that could not be read as its column's type."""

    row: int
    column: str
    value: str
    reason: str


@dataclass
class LoadedTable:
    """A typed frame plus what could not be read. ``absent_columns`` were optional and missing."""

    frame: pd.DataFrame
    issues: list[ParseIssue] = field(default_factory=list)
    absent_columns: list[str] = field(default_factory=list)


def _is_blank(raw: pd.Series) -> pd.Series:
    """Null, or text that is empty after stripping (only text can be blank: typed Parquet
    columns skip the string conversion, which costs seconds on millions of timestamps)."""
    if not (pd.api.types.is_object_dtype(raw.dtype) or pd.api.types.is_string_dtype(raw.dtype)):
        return raw.isna()
    return raw.isna() | (raw.astype("str").str.strip() == "")


def _convert(raw: pd.Series, dtype: ColumnType, column: str) -> tuple[pd.Series, list[ParseIssue]]:
    """Convert one column to ``dtype``; unreadable values become null and are reported."""
    target = PANDAS_DTYPES[dtype]
    if dtype is ColumnType.STRING:
        out = raw.astype("str").where(~_is_blank(raw))
        return out.astype(target), []
    blank = _is_blank(raw)
    if dtype in (ColumnType.DATETIME, ColumnType.DATE):
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            series = (
                raw.dt.tz_convert("UTC").dt.tz_localize(None)
                if getattr(raw.dt, "tz", None) is not None
                else raw
            )
            out = series.astype(target)
            bad = pd.Series(False, index=raw.index)
        else:
            text = raw.astype("str").where(~blank)
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
            out = parsed.dt.tz_localize(None).astype(target)
            bad = out.isna() & ~blank
        reason = f"not a valid {dtype.value} (expected ISO 8601, e.g. 2026-10-31T09:30:00)"
    elif dtype in (ColumnType.INTEGER, ColumnType.FLOAT):
        if pd.api.types.is_bool_dtype(raw.dtype):
            numeric = pd.Series(np.nan, index=raw.index)
            bad = ~blank
        else:
            numeric = pd.to_numeric(raw.where(~blank), errors="coerce")
            bad = numeric.isna() & ~blank
        if dtype is ColumnType.INTEGER:
            fractional = numeric.notna() & (numeric != np.floor(numeric.fillna(0)))
            bad = bad | fractional
            numeric = numeric.where(~fractional)
            out = numeric.astype("Float64").astype(target)
            reason = "not a whole number"
        else:
            out = numeric.astype(target)
            reason = "not a number"
    else:  # BOOLEAN
        if pd.api.types.is_bool_dtype(raw.dtype):
            out = raw.astype(target)
            bad = pd.Series(False, index=raw.index)
        else:
            text = raw.astype("str").str.strip().str.lower().where(~blank)
            out = pd.Series(pd.NA, index=raw.index, dtype=target)
            out[text.isin(_TRUE).fillna(False).to_numpy(bool)] = True
            out[text.isin(_FALSE).fillna(False).to_numpy(bool)] = False
            bad = out.isna() & ~blank
        reason = "not a boolean (use true/false)"
    positions = np.flatnonzero(bad.to_numpy(dtype=bool))
    issues = [ParseIssue(int(p), column, str(raw.iloc[p]), reason) for p in positions]
    return out, issues


def coerce_frame(raw: pd.DataFrame, spec: TableSpec, *, strict_columns: bool = True) -> LoadedTable:
    """Type ``raw`` by ``spec``: columns in contract order, unreadable values reported.

    Raises :class:`SchemaError` naming required columns that are missing and, when
    ``strict_columns``, columns the contract does not know. Does not mutate ``raw``.
    """
    missing = [c for c in spec.required_columns if c not in raw.columns]
    unknown = [c for c in raw.columns if c not in spec.column_names]
    problems = []
    if missing:
        problems.append(f"missing required column(s) {missing}")
    if unknown and strict_columns:
        problems.append(
            f"unknown column(s) {unknown} "
            "(declare them as custom fields in the manifest or mapping)"
        )
    if problems:
        raise SchemaError(
            f"table {spec.name!r}: "
            + "; ".join(problems)
            + f". Expected columns: {spec.column_names}"
        )
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    issues: list[ParseIssue] = []
    absent: list[str] = []
    for col in spec.columns:
        if col.name in raw.columns:
            values, col_issues = _convert(raw[col.name].reset_index(drop=True), col.dtype, col.name)
            issues.extend(col_issues)
        else:
            absent.append(col.name)
            values = pd.Series(index=frame.index, dtype=PANDAS_DTYPES[col.dtype])
        frame[col.name] = values
    return LoadedTable(frame=frame, issues=issues, absent_columns=absent)


def frame_from_validated(records: list[dict[str, Any]], spec: TableSpec) -> pd.DataFrame:
    """A frame in ``spec``'s columns and storage dtypes from records that the request models
    (:mod:`data_contracts.payloads`) already validated: no parsing, so it is cheap on the
    request path. Missing keys are nulls."""
    data = {}
    for col in spec.columns:
        values = [r.get(col.name) for r in records]
        dtype = PANDAS_DTYPES[col.dtype]
        if col.dtype in (ColumnType.DATETIME, ColumnType.DATE):
            data[col.name] = pd.Series(pd.to_datetime(values), dtype=dtype)
        else:
            data[col.name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)))


def read_table(path: Path, spec: TableSpec) -> LoadedTable:
    """Read a Parquet or CSV file (by suffix) and type it by ``spec``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table file {path} not found (table {spec.name!r})")
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
    elif path.suffix == ".csv":
        raw = pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""])
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .parquet or .csv")
    return coerce_frame(raw, spec)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a typed frame as Parquet or CSV (by suffix), deterministically (no index)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
    elif path.suffix == ".csv":
        out = frame.copy()
        for name in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[name].dtype):
                out[name] = out[name].dt.strftime("%Y-%m-%dT%H:%M:%S")
        out.to_csv(path, index=False)
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .parquet or .csv")
    return path
