"""Feature extraction on ONNX Runtime, and the feature cache keyed by image content and backbone.

This is the inference path: numpy, Pillow and ONNX Runtime only. When the
backbone has no ONNX export yet, it is exported once in a child process, so the
calling process never imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from coverpick import conf

logger = logging.getLogger(__name__)


class BackboneExportError(RuntimeError):
    """The ONNX export of a backbone is missing, corrupt or could not be made."""


def onnx_path(backbone_id: str) -> Path:
    return conf.model_dir() / "backbones" / f"{backbone_id}.onnx"


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_onnx(backbone_id: str) -> Path:
    """Return the verified ONNX export of the backbone, exporting it in a child process if missing."""
    path = onnx_path(backbone_id)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        logger.info("No ONNX export of backbone %s yet; exporting it to %s", backbone_id, path)
        result = subprocess.run(
            [sys.executable, "-m", "coverpick.vision.export", backbone_id, str(path)],
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        if result.returncode != 0:
            raise BackboneExportError(
                f"Exporting backbone {backbone_id!r} to ONNX failed: {result.stderr.strip()[-2000:]} "
                "Install the training extras (pip install 'coverpick[train]') on this machine once, "
                "or copy a model folder that already holds the export."
            )
    meta = json.loads(meta_path.read_text())
    actual = _sha256(path)
    if meta.get("sha256") != actual:
        raise BackboneExportError(
            f"ONNX export {path} fails its checksum (expected {meta.get('sha256')}, found {actual}). "
            "Delete the file and its .json to export it again."
        )
    return path


def intra_op_threads() -> int:
    """Threads for one ONNX Runtime session: OMP_NUM_THREADS, default 1 to leave the web server a core."""
    raw = os.environ.get("OMP_NUM_THREADS", "")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


class FeatureExtractor:
    """Run the exported backbone on batches of preprocessed covers."""

    def __init__(self, backbone_id: str, model_file: Path | None = None, threads: int | None = None):
        import onnxruntime as ort

        self.backbone_id = backbone_id
        self.model_file = model_file or ensure_onnx(backbone_id)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or intra_op_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.ndim != 4:
            raise ValueError(f"Expected a (N, 3, H, W) batch, got shape {batch.shape}")
        return self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})[0]


class FeatureCache:
    """Feature vectors on disk, one .npy file per (image SHA-256, backbone id).

    Only content-derived values live here, never labels, so relabelling a cover
    can never train on a stale target.
    """

    def __init__(self, backbone_id: str, root: Path | None = None):
        self.backbone_id = backbone_id
        self.root = (root or conf.feature_cache_dir()) / backbone_id

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.npy"

    def get(self, sha256: str) -> np.ndarray | None:
        path = self.path(sha256)
        try:
            return np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None

    def put(self, sha256: str, vector: np.ndarray) -> None:
        path = self.path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        with open(partial, "wb") as handle:
            np.save(handle, np.asarray(vector, dtype=np.float32), allow_pickle=False)
        os.replace(partial, path)

    def __contains__(self, sha256: str) -> bool:
        return self.path(sha256).is_file()
