"""Model bundles: a directory of LightGBM text models plus ``bundle.json``, no pickle.

Layout::

    <bundle>/
        bundle.json        format_version, kind, created_at, lightgbm_version,
                           boosters {name: file}, files {file: sha256}, payload {...}
        <booster>.txt      one LightGBM text model per booster (Booster.model_to_string)

``payload`` is whatever JSON the model code needs to score again: feature spec and
encoders, calibrator parameters, grade cut-offs, the training-data fingerprint
(:func:`fingerprint_frames`), metrics. The bundle code does not interpret it.

Loading verifies before it trusts: the format version must be known, every file in the
directory must be listed in ``files`` and every listed file must be present with the
recorded sha256. Only then are the model texts handed to LightGBM, from the very bytes
that were hashed (a corrupt LightGBM file can crash the process, and re-reading the file
after hashing would let it change in between).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import lightgbm
    import pandas as pd

FORMAT_VERSION: Final = 1
SUPPORTED_FORMAT_VERSIONS: Final = frozenset({1})
MANIFEST: Final = "bundle.json"
#: bundle.json larger than this is refused before parsing (feature specs are kilobytes)
MAX_MANIFEST_BYTES: Final = 64 * 1024 * 1024

_BOOSTER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WHAT_TO_DO = (
    "Do not use this bundle: re-download the model version from the registry "
    "(leadcast models download / download_bundle) or retrain it."
)


class BundleIntegrityError(ValueError):
    """A bundle failed verification; nothing in it was given to LightGBM.

    ``file`` is the offending file (``None`` when the problem is the directory itself),
    ``expected``/``actual`` the sha256 values when the problem is a checksum mismatch.
    """

    def __init__(
        self,
        directory: Path,
        problem: str,
        *,
        file: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self.directory = directory
        self.file = file
        self.expected = expected
        self.actual = actual
        where = f"bundle {directory}" + (f", file {file!r}" if file else "")
        super().__init__(f"{where}: {problem}. {_WHAT_TO_DO}")


class BundleInfo(BaseModel):
    """What :func:`save_bundle` wrote and :func:`verify_bundle` checked.

    ``manifest_sha256`` is the sha256 of ``bundle.json`` itself: the registry records it
    so a downloaded bundle can be matched to the version it claims to be.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    directory: Path
    kind: str
    format_version: int
    created_at: datetime
    lightgbm_version: str
    boosters: dict[str, str] = Field(description="booster name -> file name")
    files: dict[str, str] = Field(description="file name -> sha256 (hex)")
    manifest_sha256: str


@dataclass(frozen=True)
class LoadedBundle:
    """A verified bundle: LightGBM boosters by name plus the JSON payload as saved."""

    info: BundleInfo
    boosters: dict[str, lightgbm.Booster]
    payload: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.info.kind


class _Manifest(BaseModel):
    """The schema of ``bundle.json`` (format version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    kind: str
    created_at: datetime
    lightgbm_version: str
    boosters: dict[str, str]
    files: dict[str, str]
    payload: dict[str, Any]


# -- saving -------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """Convert NumPy/pandas values to plain JSON; anything else is refused."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime):  # pandas.Timestamp included
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(
        f"bundle payload holds a {type(value).__name__}, which is not JSON; "
        "convert it to lists, dicts, strings and numbers (no pickle, no objects)"
    )


def _strict_json(value: Any, path: str) -> Any:
    """NaN becomes null (an undefined metric); infinities are refused (they carry meaning)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        raise ValueError(
            f"bundle payload {path} is {value}, which strict JSON cannot hold; "
            "store a finite bound or a string such as 'inf' and convert it back when loading"
        )
    if isinstance(value, dict):
        return {key: _strict_json(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    # Round-trip through the NumPy-aware encoder first so the checks see plain JSON values.
    plain = _strict_json(json.loads(json.dumps(manifest, default=_json_default)), "bundle.json")
    text = json.dumps(plain, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_bundle(
    directory: Path,
    *,
    kind: str,
    boosters: Mapping[str, lightgbm.Booster],
    payload: Mapping[str, Any],
) -> BundleInfo:
    """Write a bundle to ``directory`` (which must not exist, or be empty).

    Args:
        directory: where the bundle goes; written via a temporary sibling directory and
            renamed into place, so a crash never leaves a half-written bundle there.
        kind: model kind, e.g. ``"lead-conversion"`` or ``"deal-close-time"``.
        boosters: name -> trained booster; each is saved as ``<name>.txt`` (LightGBM text,
            all iterations up to ``best_iteration`` when early stopping set one). Names are
            lower-case ``[a-z][a-z0-9_]*``.
        payload: JSON-able dict the model code needs back (feature spec and encoders,
            calibrator, grade cut-offs, data fingerprint, metrics). NumPy scalars/arrays and
            datetimes are converted, NaN is stored as null (an undefined metric); infinities
            and non-JSON objects are refused. Dict keys become strings.

    Returns:
        The :class:`BundleInfo` of what was written (file hashes, manifest hash).
    """
    import lightgbm  # lazily: importing it takes seconds, and `leadcast --help` needs none

    if not _KIND.match(kind):
        raise ValueError(
            f"bundle kind {kind!r} must be lower-case kebab-case, e.g. lead-conversion"
        )
    if not boosters:
        raise ValueError("a bundle needs at least one booster")
    for name in boosters:
        if not _BOOSTER_NAME.match(name):
            raise ValueError(
                f"booster name {name!r} must match [a-z][a-z0-9_]* (it becomes a file name)"
            )
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(
            f"{directory} already exists and is not an empty directory; "
            "choose a new directory for the bundle (bundles are never overwritten)"
        )

    texts = {
        f"{name}.txt": booster.model_to_string().encode("utf-8")
        for name, booster in boosters.items()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(),
        "lightgbm_version": lightgbm.__version__,
        "boosters": {name: f"{name}.txt" for name in boosters},
        "files": {file: _sha256(data) for file, data in texts.items()},
        "payload": dict(payload),
    }
    manifest_data = _manifest_bytes(manifest)

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes 0700; the serving user must be able to read it
        for file, data in texts.items():
            (staging / file).write_bytes(data)
        (staging / MANIFEST).write_bytes(manifest_data)
        if directory.exists():
            directory.rmdir()  # empty, checked above
        staging.replace(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return verify_bundle(directory)


# -- loading ------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _read_manifest(directory: Path) -> tuple[_Manifest, str]:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise BundleIntegrityError(directory, "the bundle directory does not exist")
    if path.is_symlink() or not path.is_file():
        raise BundleIntegrityError(directory, "bundle.json is missing", file=MANIFEST)
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleIntegrityError(
            directory, f"bundle.json is larger than {MAX_MANIFEST_BYTES} bytes", file=MANIFEST
        )
    data = path.read_bytes()
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleIntegrityError(
            directory, f"bundle.json is not valid JSON ({exc})", file=MANIFEST
        ) from exc
    if not isinstance(raw, dict):
        raise BundleIntegrityError(directory, "bundle.json is not a JSON object", file=MANIFEST)
    version = raw.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_FORMAT_VERSIONS))
        raise BundleIntegrityError(
            directory,
            f"format_version {version!r} is not one this Leadcast reads (supported: {supported}); "
            "upgrade Leadcast if the bundle is newer",
            file=MANIFEST,
        )
    try:
        manifest = _Manifest.model_validate(raw)
    except ValueError as exc:
        raise BundleIntegrityError(
            directory, f"bundle.json does not follow format {version}: {exc}", file=MANIFEST
        ) from exc
    return manifest, _sha256(data)


def _verify(
    directory: Path, expected_manifest_sha256: str | None
) -> tuple[_Manifest, BundleInfo, dict[str, bytes]]:
    """Check everything; return the manifest, its info and the verified bytes of each file."""
    directory = Path(directory)
    manifest, manifest_sha = _read_manifest(directory)
    if expected_manifest_sha256 is not None and manifest_sha != expected_manifest_sha256:
        raise BundleIntegrityError(
            directory,
            f"bundle.json has sha256 {manifest_sha} but the registry recorded "
            f"{expected_manifest_sha256} for this version",
            file=MANIFEST,
            expected=expected_manifest_sha256,
            actual=manifest_sha,
        )
    for file, digest in manifest.files.items():
        if file == MANIFEST or not _FILE_NAME.match(file) or ".." in file:
            raise BundleIntegrityError(
                directory, "bundle.json lists an invalid file name", file=file
            )
        if not _SHA256.match(digest):
            raise BundleIntegrityError(
                directory, f"bundle.json lists {digest!r}, which is not a sha256", file=file
            )
    for name, file in manifest.boosters.items():
        if file not in manifest.files:
            raise BundleIntegrityError(
                directory,
                f"booster {name!r} is stored in a file bundle.json does not list",
                file=file,
            )

    for entry in sorted(directory.iterdir()):
        if entry.name == MANIFEST:
            continue
        if entry.name not in manifest.files:
            raise BundleIntegrityError(
                directory,
                "this file is not listed in bundle.json, so its origin is unknown",
                file=entry.name,
            )
        if entry.is_symlink() or not entry.is_file():
            raise BundleIntegrityError(
                directory,
                "listed file is not a regular file (symlink or directory)",
                file=entry.name,
            )

    verified: dict[str, bytes] = {}
    for file, expected in manifest.files.items():
        path = directory / file
        if not path.is_file():
            raise BundleIntegrityError(
                directory,
                f"file is missing (expected sha256 {expected})",
                file=file,
                expected=expected,
            )
        data = path.read_bytes()
        actual = _sha256(data)
        if actual != expected:
            raise BundleIntegrityError(
                directory,
                f"sha256 mismatch: bundle.json expects {expected}, the file has {actual}; "
                "the file is corrupt or was altered",
                file=file,
                expected=expected,
                actual=actual,
            )
        verified[file] = data

    info = BundleInfo(
        directory=directory,
        kind=manifest.kind,
        format_version=manifest.format_version,
        created_at=manifest.created_at,
        lightgbm_version=manifest.lightgbm_version,
        boosters=dict(manifest.boosters),
        files=dict(manifest.files),
        manifest_sha256=manifest_sha,
    )
    return manifest, info, verified


def verify_bundle(directory: Path, *, expected_manifest_sha256: str | None = None) -> BundleInfo:
    """Verify a bundle without loading any model: format, file list and every sha256.

    ``expected_manifest_sha256`` (from the registry) additionally pins ``bundle.json``.
    Raises :class:`BundleIntegrityError` naming the file, the expected and actual hash.
    """
    _, info, _ = _verify(directory, expected_manifest_sha256)
    return info


def load_bundle(directory: Path, *, expected_manifest_sha256: str | None = None) -> LoadedBundle:
    """Verify a bundle, then load its boosters from the verified bytes.

    Nothing reaches LightGBM unless every check of :func:`verify_bundle` passed.
    """
    manifest, info, verified = _verify(directory, expected_manifest_sha256)
    import lightgbm  # only now: every byte it will parse has been verified

    boosters = {
        name: lightgbm.Booster(model_str=verified[file].decode("utf-8"))
        for name, file in info.boosters.items()
    }
    return LoadedBundle(info=info, boosters=boosters, payload=dict(manifest.payload))


# -- training-data fingerprint -----------------------------------------------------------


def _frame_digest(frame: pd.DataFrame) -> str:
    import pandas as pd

    columns = sorted(frame.columns, key=str)
    ordered = frame[columns]
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in columns]).encode("utf-8"))
    if len(ordered.columns):
        rows = pd.util.hash_pandas_object(ordered, index=False).to_numpy(dtype=np.uint64)
        digest.update(np.sort(rows).astype("<u8").tobytes())
    return digest.hexdigest()


def fingerprint_frames(
    frames: Mapping[str, pd.DataFrame],
    *,
    window: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """Deterministic fingerprint of training data.

    Per table: row count, column count and a sha256 over the column names and the sorted
    per-row hashes from ``pandas.util.hash_pandas_object(index=False)`` with columns in
    name order. Row order, column order and the index therefore do not change the
    fingerprint; any changed value, added or removed row or column does. ``window`` is the
    training time window (start, end) and is part of the combined hash.

    Returns a JSON-able dict: ``{"sha256", "method", "tables": {name: {"rows", "columns",
    "sha256"}}, "window": {"start", "end"} | None}``.
    """
    import pandas as pd

    tables = {
        name: {
            "rows": len(frame),
            "columns": int(frame.shape[1]),
            "sha256": _frame_digest(frame),
        }
        for name, frame in sorted(frames.items())
    }
    window_json = (
        None
        if window is None
        else {
            "start": pd.Timestamp(window[0]).isoformat(),
            "end": pd.Timestamp(window[1]).isoformat(),
        }
    )
    combined = hashlib.sha256(
        json.dumps({"tables": tables, "window": window_json}, sort_keys=True).encode("utf-8")
    ).hexdigest()
    return {
        "sha256": combined,
        "method": "sha256 of sorted pandas.util.hash_pandas_object(index=False) row hashes",
        "tables": tables,
        "window": window_json,
    }
