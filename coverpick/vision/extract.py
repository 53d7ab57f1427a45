"""Feature extraction on ONNX Runtime, and the feature cache keyed by image content, backbone and precision.

This is the inference path: numpy, Pillow and ONNX Runtime only. When the
backbone has no ONNX export yet, it is exported once in a child process, so the
calling process never imports torch. The INT8 model is made the same way, by
``coverpick.vision.quantize`` in a child process.

COVERPICK_BACKBONE_PRECISION (coverpick.conf.backbone_precision) selects the
model: ``fp32`` (the default) or ``int8``. Features of the two precisions go
to separate cache folders, so they never mix, and checkpoints record the
precision they were trained at.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from coverpick import conf
from coverpick.conf import DEFAULT_PRECISION, PRECISIONS, backbone_precision  # noqa: F401  (imported from here too)

logger = logging.getLogger(__name__)


class BackboneExportError(RuntimeError):
    """The ONNX export of a backbone is missing, corrupt or could not be made."""


def cache_key(backbone_id: str, precision: str) -> str:
    """Return the feature cache folder name: the backbone id, with a suffix for any precision but fp32."""
    return backbone_id if precision == "fp32" else f"{backbone_id}-{precision}"


def onnx_path(backbone_id: str, precision: str = "fp32") -> Path:
    name = f"{backbone_id}.onnx" if precision == "fp32" else f"{backbone_id}.{precision}.onnx"
    return conf.model_dir() / "backbones" / name


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_onnx(backbone_id: str, precision: str | None = None) -> Path:
    """Return the verified ONNX model of the backbone at the given (default: configured) precision.

    A missing fp32 export is made in a child process. A missing INT8 model is
    quantized from the fp32 export in a child process, calibrated on covers of
    the image store.
    """
    precision = precision or backbone_precision()
    if precision not in PRECISIONS:
        raise ValueError(f"Backbone precision {precision!r} is invalid; valid values are {', '.join(PRECISIONS)}.")
    path = onnx_path(backbone_id, precision)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        if precision == "fp32":
            _export_fp32(backbone_id, path)
        else:
            ensure_onnx(backbone_id, "fp32")
            _quantize_int8(backbone_id, path)
    meta = json.loads(meta_path.read_text())
    actual = file_sha256(path)
    if meta.get("sha256") != actual:
        raise BackboneExportError(
            f"ONNX export {path} fails its checksum (expected {meta.get('sha256')}, found {actual}). "
            "Delete the file and its .json to make it again."
        )
    if precision != "fp32":
        _check_quantized_source(backbone_id, path, meta)
    return path


def _check_quantized_source(backbone_id: str, path: Path, meta: dict) -> None:
    """Raise when the INT8 model was quantized from another fp32 export than the one now on disk."""
    source_meta = onnx_path(backbone_id, "fp32").with_suffix(".json")
    if not source_meta.is_file():
        return
    current = json.loads(source_meta.read_text()).get("sha256")
    if meta.get("source_sha256") != current:
        raise BackboneExportError(
            f"{path} was quantized from another fp32 export (sha256 {meta.get('source_sha256')}, now {current}). "
            "Delete it and its .json to quantize it again."
        )


def _export_fp32(backbone_id: str, path: Path) -> None:
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


def _quantize_int8(backbone_id: str, path: Path) -> None:
    logger.info("No INT8 model of backbone %s yet; quantizing it to %s", backbone_id, path)
    result = subprocess.run(
        [sys.executable, "-m", "coverpick.vision.quantize", backbone_id],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    if result.returncode != 0:
        raise BackboneExportError(
            f"Quantizing backbone {backbone_id!r} to INT8 failed: {result.stderr.strip()[-2000:]} "
            "Quantization needs the onnx package (pip install 'coverpick[train]') and covers in the image store; "
            "or set COVERPICK_BACKBONE_PRECISION=fp32."
        )


# Images per ONNX Runtime call. On one thread, EfficientNet-Lite0 ran as fast
# at 1 to 8 images per call as at 32, and slower at 64. Peak RSS grew with the
# batch: 150 MB at 4 and 790 MB at 64 for fp32, 90 MB and 340 MB for int8.
# Measured with ONNX Runtime 1.32 on one AMD EPYC (Zen 4) core.
SESSION_BATCH = 4


def intra_op_threads() -> int:
    """Threads for one ONNX Runtime session: OMP_NUM_THREADS, default 1 to leave the web server a core."""
    raw = os.environ.get("OMP_NUM_THREADS", "")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def release_free_heap() -> bool:
    """Return the C heap's free memory to the operating system with glibc's malloc_trim.

    Returns False where the C library has no malloc_trim (macOS, musl), and
    does nothing there.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


class FeatureExtractor:
    """Run the exported backbone on batches of preprocessed covers, at the configured precision unless given one."""

    def __init__(
        self, backbone_id: str, model_file: Path | None = None, threads: int | None = None, precision: str | None = None
    ):
        import onnxruntime as ort

        self.backbone_id = backbone_id
        self.precision = precision or backbone_precision()
        self.model_file = model_file or ensure_onnx(backbone_id, self.precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or intra_op_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        # At ORT_ENABLE_ALL, creating the fp32 session leaves about 24 MB of
        # freed heap that glibc keeps (almost none at ORT_ENABLE_EXTENDED,
        # which skips the NCHWc layout transform). The first runs' buffers do
        # not reuse it, so without this trim a new process that sweeps one
        # cover peaked about 12 MB higher. Measured with ONNX Runtime 1.32 and
        # glibc 2.36. The trim runs once per session, not per batch.
        release_free_heap()
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Return the (N, D) features of a (N, 3, H, W) batch, run SESSION_BATCH images at a time."""
        if batch.ndim != 4:
            raise ValueError(f"Expected a (N, 3, H, W) batch, got shape {batch.shape}")
        batch = batch.astype(np.float32, copy=False)
        outputs = [
            self.session.run(None, {self.input_name: batch[start : start + SESSION_BATCH]})[0]
            for start in range(0, len(batch), SESSION_BATCH)
        ]
        if not outputs:
            width = self.session.get_outputs()[0].shape[-1]
            return np.zeros((0, width if isinstance(width, int) else 0), dtype=np.float32)
        return np.concatenate(outputs)


class FeatureCache:
    """Feature vectors on disk, one .npy file per (image SHA-256, backbone id, precision).

    Only content-derived values live here, never labels, so relabelling a cover
    can never train on a stale target. The precision defaults to the configured
    one, as in FeatureExtractor, so callers that pass neither read the features
    the extractor wrote.
    """

    def __init__(self, backbone_id: str, root: Path | None = None, precision: str | None = None):
        self.backbone_id = backbone_id
        self.precision = precision or backbone_precision()
        self.root = (root or conf.feature_cache_dir()) / cache_key(backbone_id, self.precision)

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
