"""Import an analyst's CRM export: read the files a mapping names, build the contract tables,
write a dataset directory, validate it.

The transformation itself is pure and lives in :mod:`data_contracts.mapping`; this module
does the reading and writing around it::

    mapping.yaml ─┐
    source files ─┴─> transform() ─> DIR/{leads,deals,activities,stage_history}.parquet
                                      DIR/manifest.json (source "import:<name>")
                                      DIR/import_issues.csv (values that could not be read)
                                    ─> validation (quarantine, counts, pass/fail)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from data_contracts.dataset import IMPORT_ISSUES_FILE as ISSUES_FILE
from data_contracts.dataset import MANIFEST_FILE, DatasetManifest, write_manifest
from data_contracts.mapping import (
    ImportMapping,
    ImportResult,
    MappingError,
    Problem,
    SourceFile,
    parse_mapping,
    transform,
)
from data_contracts.storage import write_table
from data_contracts.tables import TABLES

if TYPE_CHECKING:
    from data_contracts.validation import ValidationReport


@dataclass
class ImportReport:
    """What an import did: where it wrote, the row counts, the problems and the validation."""

    out_dir: Path
    mapping_name: str
    rows: dict[str, int]
    problems: list[Problem]
    parse_issues: int
    manifest: DatasetManifest
    validation: ValidationReport | None = None  # None when not validated
    validation_skipped: str | None = None  # why validation did not run
    #: per table, rows with a value the mapping could not read that validation did not
    #: quarantine (it reads the typed files, where those values are already null)
    unquarantined_issue_rows: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """Validation's verdict, also failing a table whose bad rows *plus* its unreadable
        values exceed the threshold; ``None`` when validation did not run."""
        if self.validation is None:
            return None
        if not self.validation.passed:
            return False
        for table, extra in self.unquarantined_issue_rows.items():
            t = self.validation.tables[table]
            if t.rows and (t.bad_rows + extra) / t.rows > t.max_bad_share:
                return False
        return True


def load_mapping(path: Path) -> ImportMapping:
    """Read and check a mapping file; :class:`MappingError` says what to fix, and where."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"mapping file {path} not found; see examples/mappings/README.md for the format"
        )
    return parse_mapping(path.read_text(encoding="utf-8"), origin=str(path))


def read_source(name: str, spec: SourceFile, source_dir: Path) -> pd.DataFrame:
    """Read one source file as the mapping describes it. CSV cells are read as text (blank →
    missing, nothing else guessed); Parquet keeps its types."""
    path = Path(source_dir) / spec.path
    if not path.is_file():
        raise FileNotFoundError(
            f"source {name!r}: file {path} not found (path {spec.path!r} is relative to the "
            f"source directory {Path(source_dir)}; pass --source-dir to point elsewhere)"
        )
    if spec.file_format == "parquet":
        return pd.read_parquet(path)
    try:
        return pd.read_csv(
            path,
            dtype="str",
            sep=spec.delimiter,
            quotechar=spec.quotechar,
            encoding=spec.encoding,
            skiprows=spec.skip_rows,
            keep_default_na=False,
            na_values=["", *spec.na_values],
        )
    except UnicodeDecodeError as exc:
        raise MappingError(
            f"source {name!r}: file {path} is not {spec.encoding!r} text ({exc.reason} at byte "
            f"{exc.start}); set sources.{name}.encoding, e.g. 'gb18030' for Chinese Excel exports"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MappingError(
            f"source {name!r}: file {path} cannot be read as CSV with delimiter "
            f"{spec.delimiter!r}: {exc}; check sources.{name}.delimiter/quotechar/skip_rows"
        ) from None


def read_sources(mapping: ImportMapping, source_dir: Path) -> dict[str, pd.DataFrame]:
    """Every source of ``mapping``, read from ``source_dir``."""
    return {name: read_source(name, spec, source_dir) for name, spec in mapping.sources.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file; give a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST_FILE).is_file():
            raise FileExistsError(
                f"--out {out_dir} is not empty and not a Leadcast dataset; give a new or empty "
                "directory"
            )
        if not overwrite:
            raise FileExistsError(
                f"--out {out_dir} already holds a dataset; pass --overwrite to replace it"
            )
        stale = [MANIFEST_FILE, ISSUES_FILE] + [
            f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")
        ]
        for name in stale:
            (out_dir / name).unlink(missing_ok=True)


def write_dataset(
    result: ImportResult,
    mapping: ImportMapping,
    out_dir: Path,
    *,
    file_format: Literal["parquet", "csv"] = "parquet",
    provenance: dict[str, Any] | None = None,
) -> DatasetManifest:
    """Write the tables, the manifest and (when there are any) the unreadable values."""
    manifest = DatasetManifest(
        file_format=file_format,
        currency=mapping.currency,
        custom_fields=result.custom_fields,
        source=f"import:{mapping.name}",
        has_truth=False,
        provenance=provenance or {},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for table, frame in result.tables.items():
        write_table(frame, manifest.table_path(out_dir, table))
    issues = [
        {"table": t, "row": i.row, "column": i.column, "value": i.value, "reason": i.reason}
        for t, found in result.issues.items()
        for i in found
    ]
    if issues:
        pd.DataFrame(issues).to_csv(out_dir / ISSUES_FILE, index=False)
    write_manifest(out_dir, manifest)
    return manifest


def run_import(
    mapping_path: Path,
    out_dir: Path,
    *,
    source_dir: Path | None = None,
    file_format: Literal["parquet", "csv"] = "parquet",
    overwrite: bool = False,
    validate: bool = True,
    max_bad_share: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import the files ``mapping_path`` names into the dataset directory ``out_dir``.

    ``source_dir`` defaults to the mapping file's directory. Raises :class:`MappingError`
    (bad mapping, columns the files lack, unmapped values under ``unmapped: error``) and
    ``FileNotFoundError``/``FileExistsError`` before anything is written. Validation
    (``data_contracts.validation``: quarantine and summaries under ``DIR/validation``) runs
    on the written dataset unless ``validate`` is false; ``max_bad_share`` overrides its
    threshold of quarantined rows.
    """
    say = progress or (lambda _msg: None)
    mapping_path = Path(mapping_path)
    out_dir = Path(out_dir)
    mapping = load_mapping(mapping_path)
    source_dir = Path(source_dir) if source_dir is not None else mapping_path.parent
    say(f"reading {len(mapping.sources)} source file(s) from {source_dir}")
    sources = read_sources(mapping, source_dir)
    say("mapping to the contract tables")
    result = transform(mapping, sources)
    if not result.ok:
        raise MappingError(
            f"{mapping_path}: the mapping does not cover the data:\n"
            + "\n".join(f"  - {p}" for p in result.errors)
        )
    _prepare_out_dir(out_dir, overwrite)
    provenance = {
        "mapping": {"path": str(mapping_path), "sha256": _sha256(mapping_path)},
        "sources": {
            name: {
                "path": spec.path,
                "sha256": _sha256(source_dir / spec.path),
                "rows": result.source_rows[name],
            }
            for name, spec in mapping.sources.items()
        },
        "unreadable_values": sum(len(v) for v in result.issues.values()),
    }
    say(f"writing {out_dir}")
    manifest = write_dataset(
        result, mapping, out_dir, file_format=file_format, provenance=provenance
    )
    report = ImportReport(
        out_dir=out_dir,
        mapping_name=mapping.name,
        rows={t: len(f) for t, f in result.tables.items()},
        problems=result.problems,
        parse_issues=sum(len(v) for v in result.issues.values()),
        manifest=manifest,
    )
    if not validate:
        report.validation_skipped = "not requested (--no-validate)"
        return report
    say("validating")
    report.validation, report.unquarantined_issue_rows = _validate(out_dir, result, max_bad_share)
    return report


def _validate(
    out_dir: Path, result: ImportResult, max_bad_share: float | None
) -> tuple[Any, dict[str, int]]:
    """Validate the written dataset; also count the unreadable values validation missed.

    Validation reads the typed table files, where a value the mapping could not read is
    already null; those cells are listed in ``ISSUES_FILE``. Rows of it that validation did
    not quarantine are returned per table and count against the threshold here.
    """
    from data_contracts.validation import ValidationSettings, validate_dataset

    settings = (
        ValidationSettings()
        if max_bad_share is None
        else ValidationSettings(max_bad_share=max_bad_share)
    )
    report = validate_dataset(out_dir, settings)
    missed: dict[str, int] = {}
    for table, issues in result.issues.items():
        if not issues or table not in report.tables:
            continue
        quarantined = set(report.tables[table].bad_positions.tolist())
        rows = {i.row for i in issues}
        if rows - quarantined:
            missed[table] = len(rows - quarantined)
    return report, missed
