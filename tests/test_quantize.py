"""The INT8 backbone: quantization, precision selection and the per-precision feature cache."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from coverpick import conf
from coverpick.covers.store import relative_path_for, sha256_bytes, write_once
from coverpick.vision import quantize
from coverpick.vision.extract import (
    BackboneExportError,
    FeatureCache,
    FeatureExtractor,
    backbone_precision,
    ensure_onnx,
    file_sha256,
    onnx_path,
)

BACKBONE = "efficientnet_lite0"
FORMAT_BY_SUFFIX = {".jpg": "JPEG", ".png": "PNG"}


def sample_images(sample_catalogue: Path, count: int, seed: int) -> list[Path]:
    images = sorted((sample_catalogue / "images").glob("*/*"))
    random.Random(seed).shuffle(images)
    return images[:count]


@pytest.fixture(scope="module")
def int8_model(sample_catalogue) -> Path:
    """Fill the image store with 48 sample covers and quantize the backbone, once per module."""
    for path in sample_images(sample_catalogue, 48, seed=1):
        data = path.read_bytes()
        write_once(relative_path_for(sha256_bytes(data), FORMAT_BY_SUFFIX[path.suffix]), data)
    return ensure_onnx(BACKBONE, "int8")


@pytest.fixture(scope="module")
def held_out_batch(sample_catalogue) -> np.ndarray:
    """Preprocessed covers sampled with another seed than the calibration covers."""
    arrays = [quantize.preprocess_cover(path.read_bytes()) for path in sample_images(sample_catalogue, 32, seed=2)]
    return np.stack(arrays)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
def test_int8_features_match_fp32(int8_model, held_out_batch):
    fp32 = FeatureExtractor(BACKBONE, precision="fp32")(held_out_batch)
    int8 = FeatureExtractor(BACKBONE, precision="int8")(held_out_batch)
    similarity = cosine_rows(fp32, int8)
    assert similarity.min() > 0.9, f"lowest cosine similarity {similarity.min():.3f}"
    assert similarity.mean() > 0.97, f"mean cosine similarity {similarity.mean():.3f}"


@pytest.mark.slow
def test_int8_file_smaller(int8_model):
    fp32_size = onnx_path(BACKBONE, "fp32").stat().st_size
    int8_size = int8_model.stat().st_size
    assert int8_size < fp32_size / 2, f"INT8 model {int8_size} bytes, fp32 {fp32_size} bytes"


@pytest.mark.slow
def test_int8_checksum_file(int8_model):
    meta = json.loads(int8_model.with_suffix(".json").read_text())
    fp32_meta = json.loads(onnx_path(BACKBONE, "fp32").with_suffix(".json").read_text())
    assert int8_model.name == f"{BACKBONE}.int8.onnx"
    assert meta["sha256"] == file_sha256(int8_model)
    assert meta["source_sha256"] == fp32_meta["sha256"]
    assert meta["precision"] == "int8"
    assert meta["calibration_covers"] >= quantize.MIN_CALIBRATION_COVERS


@pytest.mark.slow
def test_extractor_follows_precision_setting(int8_model, monkeypatch):
    monkeypatch.setenv("COVERPICK_BACKBONE_PRECISION", "int8")
    extractor = FeatureExtractor(BACKBONE)
    assert extractor.precision == "int8"
    assert extractor.model_file == int8_model


def test_precision_default_fp32(monkeypatch):
    monkeypatch.delenv("COVERPICK_BACKBONE_PRECISION", raising=False)
    assert backbone_precision() == "fp32"


def test_precision_invalid_value(monkeypatch):
    monkeypatch.setenv("COVERPICK_BACKBONE_PRECISION", "fp16")
    with pytest.raises(ValueError, match="valid values are fp32, int8"):
        backbone_precision()


def test_cache_folder_per_precision(tmp_path):
    fp32 = FeatureCache(BACKBONE, root=tmp_path, precision="fp32")
    int8 = FeatureCache(BACKBONE, root=tmp_path, precision="int8")
    assert fp32.root == tmp_path / BACKBONE
    assert int8.root == tmp_path / f"{BACKBONE}-int8"
    fp32.put("ab" * 32, np.ones(4, dtype=np.float32))
    assert "ab" * 32 in fp32
    assert "ab" * 32 not in int8


def test_cache_follows_precision_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERPICK_BACKBONE_PRECISION", "int8")
    assert FeatureCache(BACKBONE, root=tmp_path).root.name == f"{BACKBONE}-int8"


def write_model(path: Path, content: bytes, **meta) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.with_suffix(".json").write_text(json.dumps({"sha256": sha256_bytes(content), **meta}))


def test_stale_int8_model_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))
    write_model(onnx_path("fake", "fp32"), b"new fp32 export")
    write_model(onnx_path("fake", "int8"), b"int8 model", source_sha256=sha256_bytes(b"old fp32 export"))
    with pytest.raises(BackboneExportError, match="quantized from another fp32 export"):
        ensure_onnx("fake", "int8")


def test_current_int8_model_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))
    write_model(onnx_path("fake", "fp32"), b"fp32 export")
    write_model(onnx_path("fake", "int8"), b"int8 model", source_sha256=sha256_bytes(b"fp32 export"))
    assert ensure_onnx("fake", "int8") == tmp_path / "models" / "backbones" / "fake.int8.onnx"


def test_ensure_onnx_invalid_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="'fp16' is invalid"):
        ensure_onnx("fake", "fp16")


def test_calibration_skips_broken_files(tmp_path, sample_catalogue):
    good = sample_images(sample_catalogue, 1, seed=3)[0]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"<html>not an image</html>")
    batches = list(quantize.iter_calibration_batches([broken, good], batch_size=4))
    assert len(batches) == 1
    assert batches[0].shape == (1, 3, 224, 224)


def test_calibration_files_sampled_from_store(tmp_path):
    for index in range(5):
        folder = tmp_path / f"{index:02x}"
        folder.mkdir()
        (folder / f"{index:02x}cover.jpg").write_bytes(b"x")
        (folder / f"{index:02x}cover.jpg.123.partial").write_bytes(b"x")
    files = quantize.calibration_files(3, store=tmp_path)
    assert len(files) == 3
    assert all(path.suffix == ".jpg" for path in files)
    assert files == quantize.calibration_files(3, store=tmp_path)


def test_quantize_too_few_covers(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))
    write_model(onnx_path(BACKBONE, "fp32"), b"fp32 export", feature_dim=1280)
    with pytest.raises(BackboneExportError, match="calibration needs at least"):
        quantize.quantize_backbone(BACKBONE)


def test_quantize_cli_rejects_small_sample(capsys):
    with pytest.raises(SystemExit) as exit_info:
        quantize.main(["--covers", "3"])
    assert exit_info.value.code == 2
    assert "--covers must be at least" in capsys.readouterr().err


def test_calibration_files_missing_store(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))
    assert not conf.image_store_dir().exists()
    assert quantize.calibration_files(10) == []


def test_quantize_invalid_calibration():
    with pytest.raises(ValueError, match="valid methods are minmax, percentile"):
        quantize.quantize_backbone(BACKBONE, calibration="entropy")


def test_quantize_invalid_format():
    with pytest.raises(ValueError, match="valid formats are qdq, qoperator"):
        quantize.quantize_backbone(BACKBONE, quant_format="qint4")
