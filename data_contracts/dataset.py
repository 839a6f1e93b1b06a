"""A dataset directory: the four tables plus ``manifest.json`` that says how to read them.

Layout of a dataset directory::

    DIR/manifest.json          # DatasetManifest: format, currency, custom fields, provenance
    DIR/leads.parquet          # or .csv, one file per contract table
    DIR/activities.parquet
    DIR/deals.parquet
    DIR/stage_history.parquet
    DIR/truth/...              # generated data only: the laws outcomes were drawn from
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_contracts.spec import Column, ColumnType, TableSpec
from data_contracts.tables import TABLES

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
#: values an import mapping could not read (written by ``leadcast import``); they are null in
#: the table files, so validation reads this list to quarantine their rows
IMPORT_ISSUES_FILE = "import_issues.csv"
#: a table fails validation when more than this share of its rows is quarantined
DEFAULT_MAX_BAD_SHARE = 0.01


class CustomField(BaseModel):
    """A typed extra column that a CRM carries on leads or deals (declared in config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: ColumnType
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    label_en: str = ""
    label_zh: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> CustomField:
        if self.allowed is not None and self.type is not ColumnType.STRING:
            raise ValueError(f"custom field {self.name!r}: 'allowed' needs type 'string'")
        numeric = (ColumnType.INTEGER, ColumnType.FLOAT)
        if (self.minimum is not None or self.maximum is not None) and self.type not in numeric:
            raise ValueError(f"custom field {self.name!r}: minimum/maximum need a numeric type")
        return self

    def to_column(self) -> Column:
        return Column(
            name=self.name,
            dtype=self.type,
            nullable=self.nullable,
            allowed=self.allowed,
            minimum=self.minimum,
            maximum=self.maximum,
            label_en=self.label_en or self.name.replace("_", " ").capitalize(),
            label_zh=self.label_zh or self.label_en or self.name,
            description=self.description,
            custom=True,
        )


class CustomFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    leads: tuple[CustomField, ...] = ()
    deals: tuple[CustomField, ...] = ()


class DatasetManifest(BaseModel):
    """What a dataset directory holds and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    file_format: Literal["parquet", "csv"] = "parquet"
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    custom_fields: CustomFields = CustomFields()
    source: str = Field(default="unknown", description="'generator', 'import:<mapping>', …")
    has_truth: bool = False
    provenance: dict[str, Any] = Field(default_factory=dict)

    def contract(self) -> dict[str, TableSpec]:
        """The contract tables of this dataset, extended by its custom fields."""
        out = dict(TABLES)
        out["leads"] = TABLES["leads"].with_custom_fields(
            [f.to_column() for f in self.custom_fields.leads]
        )
        out["deals"] = TABLES["deals"].with_custom_fields(
            [f.to_column() for f in self.custom_fields.deals]
        )
        return out

    def table_path(self, directory: Path, table: str) -> Path:
        return Path(directory) / f"{table}.{self.file_format}"


def read_manifest(directory: Path) -> DatasetManifest:
    """Read ``DIR/manifest.json``; a clear ``FileNotFoundError`` when it is not a dataset."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {directory} is not a Leadcast dataset. Create one with "
            "'leadcast generate --out DIR' or 'leadcast import --mapping FILE.yaml --out DIR'."
        )
    return DatasetManifest.model_validate_json(path.read_text(encoding="utf-8"))


def write_manifest(directory: Path, manifest: DatasetManifest) -> Path:
    path = Path(directory) / MANIFEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = manifest.model_dump(mode="json")
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
