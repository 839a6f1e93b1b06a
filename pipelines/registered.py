"""Loading registered models for the CLI: one path for every kind.

``load_registered`` downloads a version (a number or ``champion``) into a temporary
directory, verifies it and loads it with the kind's loader; ``champion_or_reason`` is the
fallback-friendly form the forecast and the report use: the champion, or ``None`` and the
reason (with the command that fixes it) when there is none or it cannot be loaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from models import registry as R

#: the command that trains each kind, for the messages
TRAIN_COMMANDS = {
    "lead-conversion": "leadcast train conversion --data DIR",
    "deal-close-time": "leadcast train close-time --data DIR",
}


class _Registered(Protocol):
    meta: dict[str, Any]


M = TypeVar("M", bound=_Registered)


def load_registered(
    registry: R.RegistrySettings, kind: str, version: int | str, loader: Callable[[Path], M]
) -> M:
    """Version ``version`` of ``kind`` loaded by ``loader`` (e.g. ``ConversionModel.load``)
    from its verified bundle; ``meta["registered_version"]`` says which version it is.
    Raises ``ValueError`` naming the fix when ``champion`` is asked and there is none."""
    if version == R.CHAMPION and R.champion(registry, kind) is None:
        raise ValueError(
            f"no {kind} model is the champion in {registry.resolved_tracking_uri}; train "
            f"one first: {TRAIN_COMMANDS.get(kind, 'leadcast train')} (or set "
            "LEADCAST_HOME / MLFLOW_TRACKING_URI to the store that has it)"
        )
    resolved = R.get_version(registry, kind, version)
    with tempfile.TemporaryDirectory(prefix=f"leadcast-{kind}-") as tmp:
        model = loader(R.download_bundle(registry, kind, resolved.version, Path(tmp) / "bundle"))
    model.meta["registered_version"] = resolved.version
    return model


def champion_or_reason(
    registry: R.RegistrySettings, kind: str, loader: Callable[[Path], M]
) -> tuple[M | None, str | None]:
    """The champion of ``kind``, or ``None`` with the reason a fallback serves instead."""
    if R.champion(registry, kind) is None:
        return None, (
            f"no {kind} champion in the registry: train one with "
            f"`{TRAIN_COMMANDS.get(kind, 'leadcast train')}`"
        )
    try:
        return load_registered(registry, kind, R.CHAMPION, loader), None
    except Exception as exc:  # a broken bundle must not stop a forecast or a report
        return None, f"the {kind} champion could not be loaded ({exc})"


__all__ = ["TRAIN_COMMANDS", "champion_or_reason", "load_registered"]
