"""Which model the service serves, and why: registry champion → verified local cache → rules.

At start (and on reload) :func:`load_served` resolves the ``champion`` alias of a kind in the
registry, keeps a verified copy of its bundle under ``<cache>/<kind>/v<N>`` (checksums are
checked before LightGBM reads a byte, :mod:`models.bundle`), and loads it. When the
registry cannot be reached it loads the newest cached version that still verifies. When
there is no usable model the result carries ``model=None`` and the reason, and the service
scores with BANT rules and says so in ``/readyz`` and in every response.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from models import registry as R
from models.bundle import load_bundle

M = TypeVar("M")
REGISTRY: Final = "registry"
CACHE: Final = "cache"


@dataclass(frozen=True)
class ServedModel(Generic[M]):
    """A kind's served model (``None`` when rules serve), where it came from and why."""

    kind: str
    model: M | None
    version: int | None = None
    source: str | None = None  # "registry" | "cache"
    reason: str | None = None  # why no model, or why the cache was used
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "serving": "model" if self.ready else "rules",
            "version": self.version,
            "source": self.source,
            "reason": self.reason,
            **self.info,
        }


def _load_verified(path: Path, loader: Any) -> Any:
    return loader(load_bundle(path))


def _cached_versions(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith("v") and entry.name[1:].isdigit():
            found.append((int(entry.name[1:]), entry))
    return sorted(found, reverse=True)


def load_served(
    registry: R.RegistrySettings, kind: str, cache_root: Path, loader: Any
) -> ServedModel[Any]:
    """The model to serve for ``kind``; ``loader`` turns a verified bundle into the model
    (e.g. ``ConversionModel.from_bundle``). Never raises for a missing, unreachable or
    corrupt model: the reason is in the result."""
    root = Path(cache_root) / kind
    try:
        champion = R.champion(registry, kind)
    except Exception as exc:  # the registry is down or unreadable: try the cache
        return _from_cache(kind, root, loader, f"registry unreachable ({exc.__class__.__name__})")
    if champion is None:
        return ServedModel(
            kind,
            None,
            reason=f"no {kind} champion in the registry: train one (leadcast train) — "
            "BANT rules score meanwhile",
        )
    dest = root / f"v{champion.version}"
    info = {
        "trained_at": champion.created_at.isoformat(),
        "training_window": champion.training_window,
        # the headline numbers; every metric is in GET /v1/models' registry block
        "metrics": {k: v for k, v in champion.metrics.items() if "." not in k},
    }
    try:
        if dest.exists():
            try:
                model = _load_verified(dest, loader)
                return ServedModel(kind, model, champion.version, REGISTRY, None, info)
            except Exception:
                shutil.rmtree(dest)  # a damaged cache copy is replaced, never trusted
        try:
            R.download_bundle(registry, kind, champion.version, dest)
        except OSError:
            # another worker starting beside this one moved its verified copy in first
            if not dest.is_dir():
                raise
        model = _load_verified(dest, loader)
    except Exception as exc:
        return ServedModel(
            kind,
            None,
            champion.version,
            reason=f"{kind} v{champion.version} was refused: {exc}. BANT rules score until a "
            "valid champion is promoted",
        )
    return ServedModel(kind, model, champion.version, REGISTRY, None, info)


def _from_cache(kind: str, root: Path, loader: Any, why: str) -> ServedModel[Any]:
    for version, path in _cached_versions(root):
        try:
            model = _load_verified(path, loader)
        except Exception:
            continue
        return ServedModel(kind, model, version, CACHE, f"{why}; serving the cached v{version}")
    return ServedModel(kind, None, reason=f"{why} and no verified cached {kind} model")


__all__ = ["CACHE", "REGISTRY", "ServedModel", "load_served"]
