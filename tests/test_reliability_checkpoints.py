"""Checkpoints on disk and their activation: complete files, no pickles, mismatches rejected, one transaction.

The checkpoints here are small random heads written by the product's own
save_checkpoint, in a model folder of each test's own.
"""

from __future__ import annotations

import json
import pathlib
import uuid

import numpy as np
import pytest

from coverpick import conf
from coverpick.catalogue.models import AuditEvent, ClassifierVersion
from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.model.heads import META_FILE, MLP, WEIGHTS_FILE, CheckpointMismatch, HeadSet, load_heads
from coverpick.model.inputs import (
    LAYOUT_VERSION,
    fit_similarity_space,
    platform_layout,
    platform_stage2_layout,
    quality_layout,
    stage2_layout,
)
from coverpick.model.versions import activate_version, active_heads_version, load_active_heads, register_version
from coverpick.vision import extract
from coverpick.vision.extract import BackboneExportError
from coverpick.vision.presets import VIEWS, view_id
from coverpick.vision.profile import PROFILE_VERSION
from coverpick.vision.text import TEXT_DIM, TEXT_READINGS, TEXT_VERSION

torch = pytest.importorskip("torch", reason="save_checkpoint writes heads.pt with torch (pip install 'coverpick[train]')")

from coverpick.model.train import save_checkpoint  # noqa: E402  (needs torch)

BACKBONE = "efficientnet_lite0"
# Eight image columns, then the text vector.
FEATURE_DIM = 8 + TEXT_DIM
HIDDEN = 4


def random_mlp(rng: np.random.Generator, inputs: int, outputs: int) -> MLP:
    return MLP(
        mean=rng.normal(size=inputs).astype(np.float32),
        std=np.ones(inputs, dtype=np.float32),
        w1=rng.normal(size=(HIDDEN, inputs)).astype(np.float32),
        b1=rng.normal(size=HIDDEN).astype(np.float32),
        w2=rng.normal(size=(outputs, HIDDEN)).astype(np.float32),
        b2=rng.normal(size=outputs).astype(np.float32),
    )


def random_heads(seed: int = 0) -> HeadSet:
    rng = np.random.default_rng(seed)
    quality_inputs = sum(width for _, width in quality_layout(FEATURE_DIM))
    stage2_inputs = sum(width for _, width in stage2_layout())
    return HeadSet(
        quality=random_mlp(rng, quality_inputs, len(LABEL_CLASSES)),
        platform=random_mlp(rng, FEATURE_DIM - TEXT_DIM, len(PLATFORM_FAMILIES)),
        stage2=random_mlp(rng, stage2_inputs, len(LABEL_CLASSES)),
        similarity=fit_similarity_space(rng.normal(size=(20, 8)).astype(np.float32), full_dim=4),
        platform_stage2=random_mlp(rng, sum(width for _, width in platform_stage2_layout()), len(PLATFORM_FAMILIES)),
        text_quality=random_mlp(rng, TEXT_DIM, len(LABEL_CLASSES)),
        text_platform=random_mlp(rng, TEXT_DIM, len(PLATFORM_FAMILIES)),
    )


def checkpoint_meta(version: str) -> dict:
    """Return meta.json content that matches this code, with the fields train() writes."""
    return {
        "version": version,
        "backbone": BACKBONE,
        "backbone_precision": "fp32",
        "views": [view_id(view) for view in VIEWS],
        "strip_profile": PROFILE_VERSION,
        "cover_text": TEXT_VERSION,
        "text_readings": list(TEXT_READINGS),
        "feature_dim": FEATURE_DIM,
        "classes": list(LABEL_CLASSES),
        "platform_families": list(PLATFORM_FAMILIES),
        "layout_version": LAYOUT_VERSION,
        "quality_layout": quality_layout(FEATURE_DIM),
        "platform_layout": platform_layout(FEATURE_DIM),
        "stage2_layout": stage2_layout(),
        "platform_stage2_layout": platform_stage2_layout(),
        "thresholds": {"clean": conf.DEFAULT_CLEAN_THRESHOLD, "platform": conf.DEFAULT_PLATFORM_THRESHOLD},
        "metrics": {},
    }


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    """Return a function that saves a checkpoint folder in a model folder of this test's own.

    COVERPICK_HOME points at tmp_path, so these random heads never land in the
    session's model folder, where other tests look for trained checkpoints.
    The database stays the session's: Django read its settings at start-up.
    """
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))

    def save(meta_changes: dict | None = None, seed: int = 0) -> pathlib.Path:
        version = f"heads-reliability-{uuid.uuid4().hex[:12]}"
        meta = checkpoint_meta(version)
        meta.update(meta_changes or {})
        folder = conf.model_dir() / version
        save_checkpoint(folder, random_heads(seed), meta)
        return folder

    return save


@pytest.fixture
def onnx_export_present(monkeypatch):
    """Stand in for the backbone's ONNX export, which activation checks and these tests do not need."""
    monkeypatch.setattr(extract, "ensure_onnx", lambda backbone_id, precision=None: conf.model_dir() / "backbones")


def register(folder: pathlib.Path) -> ClassifierVersion:
    meta = json.loads((folder / META_FILE).read_text())
    return register_version(folder.name, meta["backbone"], folder, meta)


# Files and formats -------------------------------------------------------------------


def test_saved_checkpoint_has_only_final_files(checkpoints):
    folder = checkpoints()
    assert sorted(path.name for path in folder.iterdir()) == sorted([META_FILE, WEIGHTS_FILE, "heads.pt"])


def test_heads_pt_loads_with_weights_only(checkpoints):
    folder = checkpoints()
    tensors = torch.load(folder / "heads.pt", map_location="cpu", weights_only=True)
    with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as arrays:
        assert sorted(tensors) == sorted(arrays.files)
        for name in arrays.files:
            assert np.array_equal(tensors[name].numpy(), arrays[name]), name


def test_load_heads_returns_saved_weights(checkpoints):
    saved = random_heads(seed=3)
    folder = checkpoints(seed=3)
    loaded = load_heads(folder, BACKBONE)
    assert any(name.startswith("platform_stage2_") for name in saved.arrays())
    for name, array in saved.arrays().items():
        assert np.array_equal(loaded.heads.arrays()[name], array), name


@pytest.mark.parametrize(
    "dropped_prefix, message",
    [
        ("similarity_", "no similarity space"),
        ("text_quality_", "has a second stage but lacks the text_quality head weights"),
    ],
)
def test_load_rejects_missing_arrays(checkpoints, dropped_prefix, message):
    folder = checkpoints(seed=4)
    with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as arrays:
        remaining = {name: arrays[name] for name in arrays.files if not name.startswith(dropped_prefix)}
    np.savez(folder / WEIGHTS_FILE, **remaining)
    with pytest.raises(CheckpointMismatch, match=message):
        load_heads(folder, BACKBONE)


class TouchOnUnpickle:
    """An object whose unpickling creates a file, to show whether a loader ran pickled code."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_load_heads_rejects_pickled_npz(checkpoints, tmp_path):
    folder = checkpoints()
    marker = tmp_path / "unpickled"
    with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as arrays:
        contents = {name: arrays[name] for name in arrays.files}
    contents["quality_w1"] = np.array([TouchOnUnpickle(marker)], dtype=object)
    with open(folder / WEIGHTS_FILE, "wb") as handle:
        np.savez(handle, **contents)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_heads(folder, BACKBONE)
    assert not marker.exists()


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"classes": list(LABEL_CLASSES[:-1])}, "class list"),
        ({"classes": [*LABEL_CLASSES, "new_label"]}, "class list"),
        ({"backbone": "mobilenet_v3_small"}, "backbone 'mobilenet_v3_small' differs"),
        ({"views": ["full"]}, "backbone views"),
        ({"cover_text": "cover-text-v0"}, "cover text 'cover-text-v0' differs"),
        ({"text_readings": ["cover-text-v1", "cover-spine-v1"]}, "cover text readings ['cover-text-v1', 'cover-spine-v1'] differ"),
        ({"quality_layout": quality_layout(FEATURE_DIM + 1)}, "quality input layout"),
        ({"layout_version": LAYOUT_VERSION - 1}, "quality input layout"),
        ({"platform_layout": platform_layout(FEATURE_DIM + 1)}, "platform input layout"),
        ({"stage2_layout": stage2_layout()[:-1]}, "second-stage input layout"),
    ],
)
def test_load_heads_names_each_mismatch(checkpoints, changes, fragment):
    folder = checkpoints(changes)
    with pytest.raises(CheckpointMismatch) as caught:
        load_heads(folder, BACKBONE)
    assert fragment in str(caught.value)
    assert folder.name in str(caught.value)


def test_load_heads_names_checkpoint_without_text_readings(checkpoints):
    folder = checkpoints()
    meta = json.loads((folder / META_FILE).read_text())
    del meta["text_readings"]
    (folder / META_FILE).write_text(json.dumps(meta))

    with pytest.raises(CheckpointMismatch, match="records no cover text readings, because it predates the reading of the top corners"):
        load_heads(folder, BACKBONE)


def test_load_heads_without_meta_names_folder(checkpoints):
    folder = checkpoints()
    (folder / META_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=str(folder)):
        load_heads(folder, BACKBONE)


# Activation ----------------------------------------------------------------------------


@pytest.fixture
def active_version(db, checkpoints, onnx_export_present) -> ClassifierVersion:
    version = register(checkpoints())
    activate_version(version)
    return version


def activations_of(version: ClassifierVersion) -> int:
    return AuditEvent.objects.filter(action="activate", detail__version=version.name).count()


def assert_still_active(version: ClassifierVersion) -> None:
    active = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True)
    assert list(active.values_list("name", flat=True)) == [version.name]


def test_activation_switches_the_one_active_version(active_version, checkpoints):
    newer = register(checkpoints(seed=1))
    activate_version(newer)
    assert_still_active(newer)
    assert active_heads_version().activated_at is not None
    assert activations_of(newer) == 1


def test_activation_rejects_mismatched_checkpoint(active_version, checkpoints):
    newer = register(checkpoints({"classes": list(LABEL_CLASSES[:-1])}))
    with pytest.raises(CheckpointMismatch, match="class list"):
        activate_version(newer)
    assert_still_active(active_version)
    assert activations_of(newer) == 0


def test_activation_rejects_other_precision(active_version, checkpoints):
    newer = register(checkpoints({"backbone_precision": "int8"}))
    with pytest.raises(CheckpointMismatch, match="backbone precision 'int8' differs from the configured 'fp32'"):
        activate_version(newer)
    assert_still_active(active_version)


def test_active_heads_rejected_at_other_precision(active_version, monkeypatch):
    monkeypatch.setenv("COVERPICK_BACKBONE_PRECISION", "int8")
    with pytest.raises(CheckpointMismatch, match="set COVERPICK_BACKBONE_PRECISION=fp32"):
        load_active_heads()


def test_activation_rejects_folder_without_meta(active_version, checkpoints):
    # save_checkpoint writes meta.json last, so a training run killed while
    # saving leaves a folder without it.
    folder = checkpoints()
    newer = register(folder)
    (folder / META_FILE).unlink()
    with pytest.raises(FileNotFoundError):
        activate_version(newer)
    assert_still_active(active_version)


def test_activation_rejects_truncated_weights(active_version, checkpoints):
    folder = checkpoints()
    newer = register(folder)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointMismatch) as caught:
        activate_version(newer)
    assert "truncated or corrupt" in str(caught.value)
    assert str(weights) in str(caught.value)
    assert_still_active(active_version)


def test_activation_waits_for_backbone_export(active_version, checkpoints, monkeypatch):
    newer = register(checkpoints())

    def export_fails(backbone_id, precision=None):
        raise BackboneExportError(f"Exporting backbone {backbone_id!r} to ONNX failed")

    monkeypatch.setattr(extract, "ensure_onnx", export_fails)
    with pytest.raises(BackboneExportError):
        activate_version(newer)
    assert_still_active(active_version)


def test_activation_rolls_back_as_one_transaction(active_version, checkpoints, monkeypatch):
    newer = register(checkpoints())

    def audit_fails(**fields):
        raise RuntimeError("audit write failed")

    # The audit event is the last write of the activation transaction.
    monkeypatch.setattr(AuditEvent.objects, "create", audit_fails)
    with pytest.raises(RuntimeError, match="audit write failed"):
        activate_version(newer)
    assert_still_active(active_version)
    newer.refresh_from_db()
    assert newer.activated_at is None

