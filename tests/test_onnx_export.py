"""The ONNX export of the backbone gives PyTorch's features within 1e-4 on every view of real covers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coverpick.covers.decode import decode_image, to_rgb_on_white
from coverpick.vision.extract import FeatureExtractor, file_sha256
from coverpick.vision.presets import INPUT_SIZE, VIEWS, normalise, view_image

torch = pytest.importorskip("torch", reason="exporting the backbone needs torch (pip install 'coverpick[train]')")

from coverpick.vision.backbones import build_feature_model, export_onnx  # noqa: E402  (needs torch)

pytestmark = pytest.mark.slow

BACKBONE = "efficientnet_lite0"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export_onnx(BACKBONE, tmp_path_factory.mktemp("export") / f"{BACKBONE}.onnx")


@pytest.fixture(scope="module")
def torch_model():
    return build_feature_model(BACKBONE)


def cover_views(sample_catalogue: Path, count: int) -> dict[str, np.ndarray]:
    """Return normalised batches of each view for ``count`` sample covers."""
    pixels = {view: [] for view in VIEWS}
    for path in sorted((sample_catalogue / "images").glob("*/*"))[:count]:
        image, _ = decode_image(path.read_bytes(), draft_size=(INPUT_SIZE, INPUT_SIZE))
        rgb = image if image.mode == "RGB" else to_rgb_on_white(image)
        for view in VIEWS:
            pixels[view].append(np.asarray(view_image(rgb, view)))
    return {view: normalise(np.stack(arrays)) for view, arrays in pixels.items()}


@pytest.mark.parametrize("view", VIEWS)
def test_onnx_matches_torch_on_covers(exported, torch_model, sample_catalogue, view):
    batch = cover_views(sample_catalogue, 6)[view]
    assert batch.shape[2:] == (INPUT_SIZE, INPUT_SIZE)

    onnx_features = FeatureExtractor(BACKBONE, model_file=exported, threads=1, precision="fp32")(batch)
    with torch.inference_mode():
        torch_features = torch_model(torch.from_numpy(batch)).numpy()

    assert onnx_features.shape == torch_features.shape
    assert np.abs(onnx_features - torch_features).max() < TOLERANCE


def test_onnx_matches_torch_on_noise(exported, torch_model):
    batch = np.random.default_rng(0).standard_normal((3, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)

    onnx_features = FeatureExtractor(BACKBONE, model_file=exported, threads=1, precision="fp32")(batch)
    with torch.inference_mode():
        torch_features = torch_model(torch.from_numpy(batch)).numpy()

    assert np.abs(onnx_features - torch_features).max() < TOLERANCE


def test_export_checksum_file(exported):
    meta = json.loads(exported.with_suffix(".json").read_text())

    assert meta["sha256"] == file_sha256(exported)
    assert meta["backbone"] == BACKBONE
