"""Writing a generated CRM as a dataset directory (tables, ``manifest.json``, ``truth/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from data_contracts.dataset import write_manifest
from data_contracts.storage import write_table
from data_contracts.tables import TABLES
from data_contracts.truth import TRUTH_DIR, TRUTH_TABLES
from pipelines.demo_crm.generator import GeneratedCRM

FileFormat = Literal["parquet", "csv"]


def write_generated(
    crm: GeneratedCRM, out_dir: Path, file_format: FileFormat = "parquet"
) -> list[Path]:
    """Write the four tables, the truth tables and ``manifest.json`` under ``out_dir``.

    Files: ``out_dir/<table>.<format>``, ``out_dir/truth/<name>.<format>`` and
    ``out_dir/manifest.json`` (the manifest records ``file_format``). Rows are written in
    the frames' order, so ``truth/injected_invalid``'s row numbers are file positions.
    Returns the paths written.
    """
    if file_format not in ("parquet", "csv"):
        raise ValueError(f"file_format {file_format!r}: use 'parquet' or 'csv'")
    out = Path(out_dir)
    manifest = crm.manifest.model_copy(update={"file_format": file_format})
    paths = [write_table(crm.tables[name], manifest.table_path(out, name)) for name in TABLES]
    paths += [
        write_table(crm.truth[name], out / TRUTH_DIR / f"{name}.{file_format}")
        for name in TRUTH_TABLES
    ]
    paths.append(write_manifest(out, manifest))
    return paths
