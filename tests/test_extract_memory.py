"""The extractor's session options, and the heap release after the session is created."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest

from coverpick.vision import extract

onnx = pytest.importorskip("onnx", reason="building the small test model needs onnx (pip install 'coverpick[train]')")
ort = pytest.importorskip("onnxruntime")

on_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "malloc_trim"),
    reason="malloc_trim is glibc's",
)


@pytest.fixture
def conv_model(tmp_path) -> Path:
    """Write a one-convolution model with a (N, 3, 8, 8) input and a (N, 4) output."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "weights"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"]),
        ],
        "conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "conv.onnx"
    onnx.save(model, path)
    return path


def rss_anon_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("/proc/self/status has no RssAnon line")


def test_session_keeps_fast_options(conv_model):
    extractor = extract.FeatureExtractor("conv", model_file=conv_model, threads=1, precision="fp32")
    options = extractor.session.get_session_options()

    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.enable_cpu_mem_arena
    assert options.enable_mem_pattern
    assert options.intra_op_num_threads == 1


def test_extractor_releases_heap_after_session(conv_model, monkeypatch):
    sessions_at_release = []
    real_session = ort.InferenceSession
    created = []

    def recording_session(*args, **kwargs):
        session = real_session(*args, **kwargs)
        created.append(session)
        return session

    monkeypatch.setattr(ort, "InferenceSession", recording_session)
    monkeypatch.setattr(extract, "release_free_heap", lambda: sessions_at_release.append(len(created)) or True)

    extractor = extract.FeatureExtractor("conv", model_file=conv_model, threads=1, precision="fp32")

    assert sessions_at_release == [1]
    assert extractor(np.zeros((2, 3, 8, 8), dtype=np.float32)).shape == (2, 4)


@on_glibc
def test_release_free_heap_returns_freed_blocks():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 2,000 blocks of 16 KB stay below glibc's mmap threshold, so they come from
    # the heap. The last block stays allocated, so free() cannot shrink the heap
    # from its top, and only malloc_trim can return the pages below it.
    block = 16 * 1024
    blocks = [libc.malloc(block) for _ in range(2000)]
    assert all(blocks)
    for address in blocks:
        ctypes.memset(address, 1, block)
    for address in blocks[:-1]:
        libc.free(address)
    before = rss_anon_mb()

    released = extract.release_free_heap()
    after = rss_anon_mb()
    libc.free(blocks[-1])

    assert released
    assert before - after > 20, f"RssAnon went from {before:.1f} MB to {after:.1f} MB"
