"""Batch validation of a dataset directory: GX suites, quarantine, summary, pass/fail.

:func:`validate_dataset` reads ``manifest.json`` and the four tables (typed by
``storage.read_table``), derives the helper columns cross-table rules need
(``relations``), runs each table's great-expectations suite (``expectations``) and writes::

    REPORT_DIR/quarantine/<table>.csv   one line per (bad row, broken rule)
    REPORT_DIR/summary.json             per table: rows, bad rows, share, counts, pass/fail
    REPORT_DIR/summary.md               the same for people

``REPORT_DIR`` defaults to ``DIR/validation``. Quarantine lines hold ``_row`` (0-based
position in the table file), ``_column``, ``_rule`` (``expectations.Rule``), ``_expectation``
(the GX expectation type), ``_reason`` (what is wrong and what to do), then the row's values
as read (an unreadable value appears as its raw text). Nothing is dropped silently: every
row any rule rejects is in the quarantine, and :func:`load_valid_tables` returns the typed
frames minus exactly those rows.

A table *passes* when its share of bad rows is at most ``max_bad_share`` and it has no
table-level failure (file missing or unreadable, missing required or unknown columns, a
column of the wrong type, a GX expectation that errored). Foreign keys are checked against
every row of the parent file, quarantined or not.

GX runs in an ephemeral context (in memory: no project directory is written, analytics
off, no progress bars; GX 1.24 has no usage-statistics sender and its PyPI version check is
never called) with a pandas data source and whole-dataframe batch definitions. Each table's
suite runs with ``Batch.validate`` on frames of only the columns each group of expectations
reads (:func:`column_groups`), without GX's batch fingerprint (:func:`gx_batch_fingerprint`).
Both choices come from measurements on a 1 M-lead dataset; see those functions. (A
``ValidationDefinition`` was tried: it also stores every result in the context's store,
which costs more than it gives here.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from pydantic import BaseModel, ConfigDict, Field

from data_contracts.dataset import (
    DEFAULT_MAX_BAD_SHARE,
    IMPORT_ISSUES_FILE,
    DatasetManifest,
    read_manifest,
)
from data_contracts.expectations import Rule, build_suite
from data_contracts.relations import (
    UncheckedRelation,
    derive_helpers,
    is_helper,
    parent_columns_needed,
)
from data_contracts.spec import TableSpec
from data_contracts.storage import (
    LoadedTable,
    ParseIssue,
    SchemaError,
    coerce_frame,
    read_table,
)
from data_contracts.tables import TABLES

REPORT_DIR: Final = "validation"
QUARANTINE_DIR: Final = "quarantine"
SUMMARY_JSON: Final = "summary.json"
SUMMARY_MD: Final = "summary.md"

ROW: Final = "_row"
COLUMN: Final = "_column"
RULE: Final = "_rule"
EXPECTATION: Final = "_expectation"
REASON: Final = "_reason"
QUARANTINE_COLUMNS: Final = (ROW, COLUMN, RULE, EXPECTATION, REASON)

#: the GX expectation a value that storage could not read as its column's type breaks
PARSE_EXPECTATION: Final = "expect_column_values_to_be_of_type"
#: the GX expectation missing/unknown columns (storage.SchemaError) correspond to
SCHEMA_EXPECTATION: Final = "expect_table_columns_to_match_set"

#: COMPLETE so map expectations list every failing row's index; the failing *values* and
#: the index query are not needed (the quarantine takes values from the frame) and would
#: cost time and memory on millions of rows.
RESULT_FORMAT: Final[dict[str, Any]] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class ValidationSettings(BaseModel):
    """How strict validation is and where it reports.

    ``max_bad_share``: a table fails when more than this share of its rows is quarantined
    (0.01 = 1 %). ``report_dir``: where the quarantine and summaries go (default
    ``DIR/validation``). ``gx_batch_fingerprint``: see :func:`gx_batch_fingerprint`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bad_share: float = Field(default=DEFAULT_MAX_BAD_SHARE, ge=0.0, le=1.0)
    report_dir: Path | None = None
    gx_batch_fingerprint: bool = Field(
        default=False,
        description="let GX hash every batch for its batch_markers metadata (slow; unused here)",
    )

    def report_path(self, directory: Path) -> Path:
        return (
            Path(self.report_dir) if self.report_dir is not None else Path(directory) / REPORT_DIR
        )


@dataclass(frozen=True)
class TableIssue:
    """A failure (``blocking``) or warning that concerns a table as a whole, not rows."""

    rule: str
    column: str
    expectation: str
    message: str
    blocking: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "expectation": self.expectation,
            "message": self.message,
            "blocking": self.blocking,
        }


@dataclass
class TableReport:
    """What validation found in one table. ``failures`` has the quarantine's ``_`` columns."""

    table: str
    file: Path
    rows: int
    bad_rows: int
    max_bad_share: float
    failures: pd.DataFrame
    issues: list[TableIssue] = field(default_factory=list)
    quarantine_file: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bad_share(self) -> float:
        return self.bad_rows / self.rows if self.rows else 0.0

    @property
    def blocking_issues(self) -> list[TableIssue]:
        return [i for i in self.issues if i.blocking]

    @property
    def passed(self) -> bool:
        return not self.blocking_issues and self.bad_share <= self.max_bad_share

    @property
    def bad_positions(self) -> np.ndarray:
        """Sorted 0-based file positions of the quarantined rows."""
        return np.unique(self.failures[ROW].to_numpy(dtype=np.int64))

    def counts_by(self, column: str) -> dict[str, int]:
        counts = self.failures[column].value_counts(sort=False)
        return {str(k): int(v) for k, v in sorted(counts.items())}

    def rule_groups(self) -> list[dict[str, Any]]:
        """One entry per (rule, column, expectation): how many rows, and the reason."""
        if self.failures.empty:
            return []
        keys = [RULE, COLUMN, EXPECTATION]
        grouped = self.failures.groupby(keys, sort=True, dropna=False)
        sizes = grouped.size()
        first_reason = grouped[REASON].first()
        return [
            {
                "rule": rule,
                "column": column,
                "expectation": expectation,
                "rows": int(sizes[(rule, column, expectation)]),
                "reason": str(first_reason[(rule, column, expectation)]),
            }
            for rule, column, expectation in sizes.index
        ]

    def message(self, report_dir: Path) -> str:
        """One sentence: how the table did and where to look."""
        where = f"see {report_dir / SUMMARY_MD}"
        if self.quarantine_file is not None and self.bad_rows:
            where += f" and {self.quarantine_file}"
        if self.blocking_issues:
            first = self.blocking_issues[0].message
            more = len(self.blocking_issues) - 1
            extra = f" (and {more} more table-level problem(s))" if more else ""
            return f"{self.table}: FAILED: {first}{extra}; {where}"
        share = f"{self.bad_rows:,} of {self.rows:,} rows ({self.bad_share:.2%})"
        if not self.passed:
            return (
                f"{self.table}: FAILED: {share} broke contract rules, more than the allowed "
                f"{self.max_bad_share:.2%}; {where}"
            )
        if self.bad_rows:
            return (
                f"{self.table}: passed with {share} quarantined (within the allowed "
                f"{self.max_bad_share:.2%}); they are left out of training; {where}"
            )
        return f"{self.table}: passed, all {self.rows:,} rows valid"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "bad_share": self.bad_share,
            "max_bad_share": self.max_bad_share,
            "passed": self.passed,
            "failures_by_rule": self.counts_by(RULE),
            "failures_by_column": self.counts_by(COLUMN),
            "failures": self.rule_groups(),
            "table_failures": [i.to_dict() for i in self.issues if i.blocking],
            "warnings": [i.to_dict() for i in self.issues if not i.blocking],
            "quarantine": str(self.quarantine_file) if self.quarantine_file else None,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


@dataclass
class ValidationReport:
    """The outcome of validating a dataset directory."""

    directory: Path
    report_dir: Path
    max_bad_share: float
    tables: dict[str, TableReport]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tables.values())

    @property
    def failing_tables(self) -> list[str]:
        return [name for name, t in self.tables.items() if not t.passed]

    @property
    def quarantined_rows(self) -> int:
        return sum(t.bad_rows for t in self.tables.values())

    @property
    def summary_json(self) -> Path:
        return self.report_dir / SUMMARY_JSON

    @property
    def summary_md(self) -> Path:
        return self.report_dir / SUMMARY_MD

    def messages(self) -> list[str]:
        """One sentence per table (failing tables first)."""
        ordered = sorted(self.tables.values(), key=lambda t: t.passed)
        return [t.message(self.report_dir) for t in ordered]

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return "\n".join([f"validation {verdict}: {self.directory}", *self.messages()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": str(self.directory),
            "report_dir": str(self.report_dir),
            "passed": self.passed,
            "max_bad_share": self.max_bad_share,
            "failing_tables": self.failing_tables,
            "quarantined_rows": self.quarantined_rows,
            "messages": self.messages(),
            "seconds": round(self.seconds, 3),
            "great_expectations_version": gx.__version__,
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
        }


@dataclass
class ValidDataset:
    """Typed frames minus quarantined rows (index = 0-based row position in the file)."""

    tables: dict[str, pd.DataFrame]
    report: ValidationReport


class DataValidationError(ValueError):
    """The dataset failed validation and the caller asked for a passing one."""


def ephemeral_context() -> Any:
    """An in-memory GX data context: no project directory, no analytics, no progress bars."""
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@contextmanager
def gx_batch_fingerprint(enabled: bool) -> Iterator[None]:
    """Turn GX's pandas batch fingerprint on or off for the duration of the block.

    On every batch load GX 1.24 md5-hashes ``pandas.util.hash_pandas_object(frame)`` into
    the batch's ``batch_markers`` when the frame is under ``HASH_THRESHOLD`` (1e9) bytes.
    The fingerprint is metadata only (no check reads it) yet it was ≈2/3 of GX's time on
    the 6.5 M-row activities table (18 of 26 s; pyarrow string hashing). Lowering the
    module's threshold to 0 is how GX itself skips it for large frames. If a GX version
    drops the attribute this does nothing (only the speed-up is lost).
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    previous = getattr(engine, "HASH_THRESHOLD", None)
    if enabled or previous is None:
        yield
        return
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = previous


def _parse_failures(issues: list[ParseIssue]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            ROW: np.array([i.row for i in issues], dtype=np.int64),
            COLUMN: [i.column for i in issues],
            RULE: Rule.PARSE.value,
            EXPECTATION: PARSE_EXPECTATION,
            REASON: [
                f"{i.column}: {i.value!r} is {i.reason}; correct it in the source or give the "
                "format in the import mapping"
                for i in issues
            ],
        }
    )


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ROW: np.array([], dtype=np.int64),
            COLUMN: pd.Series([], dtype=object),
            RULE: pd.Series([], dtype=object),
            EXPECTATION: pd.Series([], dtype=object),
            REASON: pd.Series([], dtype=object),
        }
    )


def _exception_message(info: Any) -> str | None:
    """The first exception message in a GX result's ``exception_info`` (flat or per metric)."""
    if not info:
        return None
    if isinstance(info, dict) and "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    if isinstance(info, dict):
        for value in info.values():
            message = _exception_message(value)
            if message:
                return message
    return None


def _columns_of(expectation: Any) -> tuple[str, ...]:
    kwargs = expectation.configuration.kwargs
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    return tuple(kwargs.get("column_list", ()))


def column_groups(suite: gx.ExpectationSuite, frame: pd.DataFrame) -> list[tuple[list[str], list]]:
    """Split ``suite`` into (columns, expectations) groups, one per set of columns read.

    Why: GX's pandas map metrics filter the *whole* batch frame (every column) several
    times per expectation (``df[df[col].notnull()]``, then again for the unexpected index
    list), so on a wide frame the cost of each expectation grows with the number of columns
    — measured ≈0.3 s of CPU per expectation on the 1 M-row, 17-column leads frame. Running
    each group on a frame of just its columns makes the cost per expectation depend on its
    own columns only. Cheap boolean helper columns share one group.
    """
    groups: dict[tuple[str, ...], list] = {}
    helpers = tuple(c for c in frame.columns if is_helper(c))
    for expectation in suite.expectations:
        columns = _columns_of(expectation)
        key = helpers if columns and all(is_helper(c) for c in columns) else columns
        groups.setdefault(key, []).append(expectation)
    return [([c for c in key if c in frame.columns], exps) for key, exps in groups.items()]


def _run_suite(
    context: Any, spec: TableSpec, frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[TableIssue]]:
    """Validate ``frame`` (typed + helpers, RangeIndex) with the table's suite in GX.

    The suite runs group by group (:func:`column_groups`), each group on a whole-dataframe
    batch of its columns; results are the same as on one batch of the whole frame.
    """
    batch_definition = (
        context.data_sources.add_pandas(f"leadcast.{spec.name}")
        .add_dataframe_asset(spec.name)
        .add_batch_definition_whole_dataframe("whole")
    )
    results = []
    for i, (columns, expectations) in enumerate(column_groups(build_suite(spec), frame)):
        suite = gx.ExpectationSuite(name=f"leadcast.{spec.name}.{i}", expectations=expectations)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame[columns]})
        results.extend(batch.validate(suite, result_format=RESULT_FORMAT).results)
    parts: list[pd.DataFrame] = []
    issues: list[TableIssue] = []
    for r in results:
        config = r.expectation_config
        meta = config.meta or {}
        rule, column, reason = (
            meta.get("rule", "?"),
            meta.get("column", "?"),
            meta.get("reason", ""),
        )
        error = _exception_message(r.exception_info)
        if error:
            issues.append(
                TableIssue(rule, column, config.type, f"{spec.name}.{column}: {reason} "
                           f"(the check could not run: {error})")
            )  # fmt: skip
            continue
        if r.success:
            continue
        index = (r.result or {}).get("unexpected_index_list")
        if index is None:
            observed = (r.result or {}).get("observed_value")
            seen = f" (found {observed})" if observed is not None else ""
            issues.append(TableIssue(rule, column, config.type, f"{spec.name}: {reason}{seen}"))
            continue
        parts.append(
            pd.DataFrame(
                {
                    ROW: np.asarray(index, dtype=np.int64),
                    COLUMN: column,
                    RULE: rule,
                    EXPECTATION: config.type,
                    REASON: reason,
                }
            )
        )
    failures = pd.concat(parts, ignore_index=True) if parts else _empty_failures()
    return failures, issues


def _drop_consequences(failures: pd.DataFrame, parse: pd.DataFrame) -> pd.DataFrame:
    """Drop GX failures on cells storage already reported as unreadable: the value became
    null because it could not be read, so e.g. a ``not_null`` failure there is a consequence,
    not a second problem."""
    if parse.empty or failures.empty:
        return failures
    unreadable = pd.MultiIndex.from_frame(parse[[ROW, COLUMN]])
    cells = pd.MultiIndex.from_frame(failures[[ROW, COLUMN]])
    return failures[~cells.isin(unreadable)]


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            out[name] = values.dt.strftime(_TIME_FORMAT).astype(object)
        else:
            out[name] = values.astype(object)
        out[name] = out[name].where(values.notna(), None)
    return pd.DataFrame(out, index=frame.index)


def _quarantine(
    frame: pd.DataFrame, failures: pd.DataFrame, issues: list[ParseIssue], spec: TableSpec
) -> pd.DataFrame:
    """Quarantine lines: failures sorted by row, then the rows' values as read."""
    failures = failures.sort_values([ROW, RULE, COLUMN], kind="stable").reset_index(drop=True)
    positions = np.unique(failures[ROW].to_numpy(dtype=np.int64))
    columns = [c for c in spec.column_names if c in frame.columns]
    values = _as_text(frame.iloc[positions][columns])
    if issues:  # the null storage left behind → the raw text that was in the file
        raw = pd.DataFrame([(i.row, i.column, i.value) for i in issues], columns=["r", "c", "v"])
        for column, group in raw.groupby("c", sort=False):
            values.loc[group["r"].to_numpy(), column] = group["v"].to_numpy(dtype=object)
    return pd.concat(
        [failures, values.loc[failures[ROW].to_numpy()].reset_index(drop=True)], axis=1
    )


def _write_quarantine(lines: pd.DataFrame, columns: list[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if lines.empty:
        lines = pd.DataFrame(columns=[*QUARANTINE_COLUMNS, *columns])
    lines.to_csv(path, index=False)
    return path


def _read(path: Path, spec: TableSpec) -> tuple[LoadedTable | None, TableIssue | None]:
    try:
        return read_table(path, spec), None
    except SchemaError as exc:
        return None, TableIssue(Rule.SCHEMA.value, "*", SCHEMA_EXPECTATION, str(exc))
    except FileNotFoundError:
        return None, TableIssue(
            Rule.SCHEMA.value, "*", SCHEMA_EXPECTATION,
            f"table {spec.name!r}: file {path} not found; every dataset has the four tables "
            "(an empty table is a file with only the header)",
        )  # fmt: skip
    except (OSError, ValueError) as exc:  # unreadable Parquet/CSV (pyarrow errors are ValueError)
        return None, TableIssue(
            Rule.SCHEMA.value, "*", SCHEMA_EXPECTATION,
            f"table {spec.name!r}: {path} could not be read ({exc}); re-export the file",
        )  # fmt: skip


def _import_issues(directory: Path, table: str) -> list[ParseIssue]:
    path = Path(directory) / IMPORT_ISSUES_FILE
    if not path.is_file():
        return []
    found = pd.read_csv(path, dtype="str", keep_default_na=False)
    mine = found[found["table"] == table]
    return [
        ParseIssue(int(r["row"]), r["column"], r["value"], f"import: {r['reason']}")
        for _, r in mine.iterrows()
    ]


def _unchecked_issue(u: UncheckedRelation) -> TableIssue:
    return TableIssue(u.rule, u.column, "-", f"{u.table}: {u.message}", blocking=False)


def _validate_table(
    context: Any,
    directory: Path,
    manifest: DatasetManifest,
    spec: TableSpec,
    parents: Mapping[str, pd.DataFrame | None],
    settings: ValidationSettings,
    quarantine_dir: Path,
) -> tuple[TableReport, pd.DataFrame | None]:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    path = manifest.table_path(directory, spec.name)
    loaded, read_issue = _read(path, spec)
    seconds["read"] = time.perf_counter() - start
    quarantine_file = quarantine_dir / f"{spec.name}.csv"
    if loaded is None:
        assert read_issue is not None
        quarantine_file.unlink(missing_ok=True)  # a stale quarantine would mislead
        report = TableReport(
            spec.name, path, 0, 0, settings.max_bad_share, _empty_failures(), [read_issue],
            None, seconds,
        )  # fmt: skip
        return report, None
    loaded.issues.extend(_import_issues(directory, spec.name))
    frame = loaded.frame
    start = time.perf_counter()
    checked, unchecked = derive_helpers(frame, spec, parents)
    seconds["relations"] = time.perf_counter() - start
    start = time.perf_counter()
    failures, issues = _run_suite(context, spec, checked)
    del checked
    seconds["great_expectations"] = time.perf_counter() - start
    start = time.perf_counter()
    parse = _parse_failures(loaded.issues) if loaded.issues else _empty_failures()
    failures = pd.concat([parse, _drop_consequences(failures, parse)], ignore_index=True)
    failures = failures.drop_duplicates([ROW, COLUMN, RULE], ignore_index=True)
    lines = _quarantine(frame, failures, loaded.issues, spec)
    _write_quarantine(lines, spec.column_names, quarantine_file)
    seconds["quarantine"] = time.perf_counter() - start
    report = TableReport(
        table=spec.name,
        file=path,
        rows=len(frame),
        bad_rows=int(failures[ROW].nunique()),
        max_bad_share=settings.max_bad_share,
        failures=lines[list(QUARANTINE_COLUMNS)],
        issues=[*issues, *(_unchecked_issue(u) for u in unchecked)],
        quarantine_file=quarantine_file,
        seconds=seconds,
    )
    return report, frame


def _run(
    directory: Path, settings: ValidationSettings, keep_frames: bool
) -> tuple[ValidationReport, dict[str, pd.DataFrame | None]]:
    start = time.perf_counter()
    directory = Path(directory)
    manifest = read_manifest(directory)
    contract = manifest.contract()
    report_dir = settings.report_path(directory)
    quarantine_dir = report_dir / QUARANTINE_DIR
    needed = parent_columns_needed(contract)
    context = ephemeral_context()
    parents: dict[str, pd.DataFrame | None] = {}
    frames: dict[str, pd.DataFrame | None] = {}
    reports: dict[str, TableReport] = {}
    with gx_batch_fingerprint(settings.gx_batch_fingerprint):
        for name in TABLES:  # parents before children
            spec = contract[name]
            table_report, frame = _validate_table(
                context, directory, manifest, spec, parents, settings, quarantine_dir
            )
            reports[name] = table_report
            if name in needed:
                parents[name] = frame[needed[name]] if frame is not None else None
            if keep_frames:
                frames[name] = frame
    report = ValidationReport(
        directory, report_dir, settings.max_bad_share, reports, time.perf_counter() - start
    )
    write_summaries(report)
    return report, frames


def validate_dataset(
    directory: Path, settings: ValidationSettings | None = None
) -> ValidationReport:
    """Validate the dataset in ``directory`` against its contract (custom fields included).

    Writes the quarantine files and ``summary.json``/``summary.md`` under the report
    directory and returns the report; ``report.passed`` is false when any table has more
    than ``max_bad_share`` bad rows or a table-level failure. Raises ``FileNotFoundError``
    when ``directory`` is not a dataset (no ``manifest.json``) and pydantic's
    ``ValidationError`` when the manifest is malformed.
    """
    report, _ = _run(Path(directory), settings or ValidationSettings(), keep_frames=False)
    return report


def valid_rows(frame: pd.DataFrame, table: TableReport) -> pd.DataFrame:
    """``frame`` (typed, as read) minus the rows ``table`` quarantined; keeps the index."""
    keep = np.ones(len(frame), dtype=bool)
    keep[table.bad_positions] = False
    return frame.iloc[keep]


def load_valid_tables(
    directory: Path, settings: ValidationSettings | None = None, *, require_pass: bool = True
) -> ValidDataset:
    """Validate ``directory`` and return the typed frames minus quarantined rows.

    Each frame's index is the row's 0-based position in its file, so rows trace back to the
    quarantine and the source. A table that could not be read comes back empty (typed, with
    the contract's columns). With ``require_pass`` (the default) a failing dataset raises
    :class:`DataValidationError` naming the failing tables; pass ``False`` to get the valid
    rows anyway and decide from ``result.report``.
    """
    settings = settings or ValidationSettings()
    report, frames = _run(Path(directory), settings, keep_frames=True)
    if require_pass and not report.passed:
        raise DataValidationError(
            "dataset failed validation: " + "; ".join(
                report.tables[t].message(report.report_dir) for t in report.failing_tables
            )
        )  # fmt: skip
    contract = read_manifest(Path(directory)).contract()
    tables: dict[str, pd.DataFrame] = {}
    for name, frame in frames.items():
        if frame is None:
            empty = pd.DataFrame({c: [] for c in contract[name].column_names})
            tables[name] = coerce_frame(empty, contract[name]).frame
        else:
            tables[name] = valid_rows(frame, report.tables[name])
    return ValidDataset(tables, report)


def _markdown(report: ValidationReport) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    lines = [
        f"# Validation {verdict}: `{report.directory}`",
        "",
        f"A table fails when more than {report.max_bad_share:.2%} of its rows break contract "
        "rules or when it has a table-level failure. Quarantined rows are listed, one line "
        f"per broken rule, in `{report.report_dir / QUARANTINE_DIR}/<table>.csv` and are left "
        "out of training.",
        "",
        "| table | rows | bad rows | bad share | status |",
        "|---|---:|---:|---:|---|",
    ]
    for name, t in report.tables.items():
        status = "passed" if t.passed else "**FAILED**"
        lines.append(f"| {name} | {t.rows:,} | {t.bad_rows:,} | {t.bad_share:.2%} | {status} |")
    lines += ["", *[f"- {m}" for m in report.messages()]]
    for name, t in report.tables.items():
        if not t.issues and t.failures.empty:
            continue
        lines += ["", f"## {name}", ""]
        for issue in t.issues:
            kind = "table-level failure" if issue.blocking else "warning"
            lines.append(f"- **{kind}** ({issue.rule}): {issue.message}")
        groups = t.rule_groups()
        if groups:
            if t.issues:
                lines.append("")
            lines += [
                "| rule | column | rows | what is wrong and what to do |",
                "|---|---|---:|---|",
            ]
            for g in groups:
                reason = g["reason"].replace("|", "\\|")
                column = g["column"].replace("|", "\\|")
                lines.append(f"| {g['rule']} | {column} | {g['rows']:,} | {reason} |")
    lines += ["", f"Seconds: {report.seconds:.1f}. great_expectations {gx.__version__}.", ""]
    return "\n".join(lines)


def write_summaries(report: ValidationReport) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into the report directory."""
    report.report_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    report.summary_json.write_text(payload, encoding="utf-8")
    report.summary_md.write_text(_markdown(report), encoding="utf-8")
    return report.summary_json, report.summary_md


__all__ = [
    "QUARANTINE_COLUMNS",
    "DataValidationError",
    "TableIssue",
    "TableReport",
    "ValidDataset",
    "ValidationReport",
    "ValidationSettings",
    "load_valid_tables",
    "valid_rows",
    "validate_dataset",
]
