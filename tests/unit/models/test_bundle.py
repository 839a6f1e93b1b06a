"""Model bundles: round trip, verification before LightGBM reads anything, fingerprints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

from models.bundle import (
    MANIFEST,
    BundleIntegrityError,
    fingerprint_frames,
    load_bundle,
    save_bundle,
    verify_bundle,
)

pytestmark = pytest.mark.unit

KIND = "lead-conversion"


@pytest.fixture(scope="module")
def booster() -> lightgbm.Booster:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 7, "num_threads": 1}
    return lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=10)


def _payload() -> dict[str, Any]:
    return {
        "features": {"names": ["a", "b", "c", "d"], "levels": {"source": ["web", "wechat"]}},
        "calibrator": {"method": "isotonic", "x": np.array([0.1, 0.5]), "y": [0.2, 0.6]},
        "grade_cutoffs": {"a": 0.75, "b": 0.5, "c": 0.25},
        "fingerprint": {"sha256": "0" * 64, "tables": {"leads": {"rows": np.int64(300)}}},
        "metrics": {"test": {"auc": np.float64(0.81), "log_loss": 0.47, "ece": float("nan")}},
    }


@pytest.fixture
def bundle_dir(tmp_path: Path, booster: lightgbm.Booster) -> Path:
    directory = tmp_path / "bundle"
    save_bundle(directory, kind=KIND, boosters={"booster": booster}, payload=_payload())
    return directory


def _forbid_lightgbm(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("LightGBM was asked to read a model before verification passed")

    monkeypatch.setattr(lightgbm, "Booster", refuse)


def test_save_and_load__round_trip_keeps_predictions_and_payload(
    bundle_dir: Path, booster: lightgbm.Booster
) -> None:
    # given a saved bundle
    x = np.random.default_rng(1).normal(size=(50, 4))
    # when it is loaded
    loaded = load_bundle(bundle_dir)
    # then the booster predicts exactly as before and the payload comes back as plain JSON
    np.testing.assert_array_equal(loaded.boosters["booster"].predict(x), booster.predict(x))
    assert loaded.kind == KIND
    assert loaded.info.format_version == 1
    assert loaded.info.files.keys() == {"booster.txt"}
    assert loaded.payload["calibrator"]["x"] == [0.1, 0.5]
    assert loaded.payload["metrics"]["test"]["auc"] == pytest.approx(0.81)
    assert loaded.payload["metrics"]["test"]["ece"] is None  # undefined metric: strict JSON null
    assert loaded.payload["fingerprint"]["tables"]["leads"]["rows"] == 300
    assert loaded.payload["grade_cutoffs"] == {"a": 0.75, "b": 0.5, "c": 0.25}


def test_save__bundle_holds_only_text_and_json_and_no_pickle(bundle_dir: Path) -> None:
    files = sorted(p.name for p in bundle_dir.iterdir())
    assert files == ["booster.txt", MANIFEST]
    assert all(Path(name).suffix in {".txt", ".json"} for name in files)
    for path in bundle_dir.iterdir():
        data = path.read_bytes()
        assert not data.startswith(b"\x80"), f"{path.name} starts like a pickle stream"
        data.decode("utf-8")  # text, not binary
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    assert (
        manifest["files"]["booster.txt"]
        == hashlib.sha256((bundle_dir / "booster.txt").read_bytes()).hexdigest()
    )
    assert {"format_version", "kind", "created_at", "boosters", "files", "payload"} <= set(manifest)
    assert "pickle" not in (bundle_dir / MANIFEST).read_text().lower()


def test_load__refuses_a_flipped_byte_before_lightgbm_reads_the_file(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a model file with one byte flipped
    model = bundle_dir / "booster.txt"
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    _forbid_lightgbm(monkeypatch)
    # when it is loaded, then it is refused, naming the file, both hashes and the remedy
    with pytest.raises(BundleIntegrityError) as caught:
        load_bundle(bundle_dir)
    message = str(caught.value)
    assert "booster.txt" in message
    assert expected in message and actual in message
    assert "retrain" in message and "re-download" in message
    assert (caught.value.file, caught.value.expected, caught.value.actual) == (
        "booster.txt",
        expected,
        actual,
    )


def test_load__refuses_content_lightgbm_would_reject_without_calling_lightgbm(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given content that LightGBM itself fails on
    garbage = "tree\nversion=v4\nnum_class=1\n"
    with pytest.raises(lightgbm.basic.LightGBMError):
        lightgbm.Booster(model_str=garbage)
    (bundle_dir / "booster.txt").write_text(garbage)
    _forbid_lightgbm(monkeypatch)
    # then verification stops it before LightGBM is ever called
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch"):
        load_bundle(bundle_dir)


def test_load__refuses_a_file_not_listed_in_the_manifest(bundle_dir: Path) -> None:
    (bundle_dir / "extra.txt").write_text("hello")
    with pytest.raises(BundleIntegrityError, match="not listed") as caught:
        load_bundle(bundle_dir)
    assert caught.value.file == "extra.txt"


def test_load__refuses_a_missing_model_file(bundle_dir: Path) -> None:
    (bundle_dir / "booster.txt").unlink()
    with pytest.raises(BundleIntegrityError, match="missing") as caught:
        load_bundle(bundle_dir)
    assert caught.value.file == "booster.txt"


def test_load__refuses_an_unknown_format_version(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["format_version"] = 99
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    _forbid_lightgbm(monkeypatch)
    with pytest.raises(BundleIntegrityError, match="format_version 99"):
        load_bundle(bundle_dir)


def test_load__refuses_a_missing_directory_and_a_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(BundleIntegrityError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleIntegrityError, match=r"bundle\.json is missing"):
        load_bundle(tmp_path / "empty")


def test_verify__pins_the_manifest_to_the_hash_the_registry_recorded(bundle_dir: Path) -> None:
    # given the manifest hash recorded at registration
    recorded = verify_bundle(bundle_dir).manifest_sha256
    assert load_bundle(bundle_dir, expected_manifest_sha256=recorded).kind == KIND
    # when the payload (e.g. grade cut-offs) is edited, file hashes still match
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["payload"]["grade_cutoffs"]["a"] = 0.1
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    # then only the pinned check notices, and refuses it
    verify_bundle(bundle_dir)
    with pytest.raises(BundleIntegrityError, match="registry recorded"):
        load_bundle(bundle_dir, expected_manifest_sha256=recorded)


def test_save__refuses_a_non_empty_directory_and_non_json_payloads(
    tmp_path: Path, booster: lightgbm.Booster
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        save_bundle(tmp_path / "taken", kind=KIND, boosters={"booster": booster}, payload={})
    with pytest.raises(ValueError, match=r"bundle\.json\.payload\.edges\[1\] is inf"):
        save_bundle(
            tmp_path / "inf",
            kind=KIND,
            boosters={"booster": booster},
            payload={"edges": [0.0, np.inf]},
        )
    with pytest.raises(TypeError, match="not JSON"):
        save_bundle(tmp_path / "obj", kind=KIND, boosters={"booster": booster}, payload={"m": {1}})
    assert not (tmp_path / "inf").exists() and not (tmp_path / "obj").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging left behind


def test_save__several_boosters_round_trip(tmp_path: Path, booster: lightgbm.Booster) -> None:
    info = save_bundle(
        tmp_path / "b",
        kind="deal-close-time",
        boosters={"won_hazard": booster, "lost_hazard": booster},
        payload={"horizon_days": 180},
    )
    assert set(info.files) == {"won_hazard.txt", "lost_hazard.txt"}
    loaded = load_bundle(tmp_path / "b")
    assert set(loaded.boosters) == {"won_hazard", "lost_hazard"}
    assert loaded.payload == {"horizon_days": 180}


def test_fingerprint__ignores_row_and_column_order_but_not_values() -> None:
    leads = pd.DataFrame(
        {"lead_id": ["a", "b", "c"], "budget": [1.0, None, 3.0], "at": pd.to_datetime(["2025"] * 3)}
    )
    window = (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-06-30"))
    base = fingerprint_frames({"leads": leads}, window=window)
    shuffled = leads.iloc[[2, 0, 1], ::-1].reset_index(drop=True)
    assert fingerprint_frames({"leads": shuffled}, window=window) == base
    assert base["tables"]["leads"]["rows"] == 3
    assert base["window"] == {"start": "2025-01-01T00:00:00", "end": "2025-06-30T00:00:00"}
    changed = leads.assign(budget=[1.0, None, 3.5])
    assert fingerprint_frames({"leads": changed}, window=window)["sha256"] != base["sha256"]
    assert fingerprint_frames({"leads": leads})["sha256"] != base["sha256"]
    assert fingerprint_frames({"leads": leads.iloc[:2]}, window=window)["sha256"] != base["sha256"]
    json.dumps(base)  # JSON-able
