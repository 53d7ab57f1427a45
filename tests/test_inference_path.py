"""The sweep runs on ONNX Runtime and never imports torch, at either backbone precision.

A child process imports two feeds of the sample catalogue and trains heads
(training imports torch). Each sweep then runs in its own child process
through a wrapper that reports which torch modules were loaded at exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SHOP_FEEDS = {"pixelcrate": "pixelcrate.csv", "quickkeys": "quickkeys.csv"}

WRAPPER = """
import json, sys
from coverpick.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "torch_modules": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}))
"""


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """Return this process's environment for a child on ``home``: SQLite, and fp32 unless ``extra`` sets a precision."""
    dropped = {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "COVERPICK_BACKBONE_PRECISION"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(COVERPICK_HOME=str(home), OMP_NUM_THREADS="2", **extra)
    return env


def coverpick(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "coverpick.cli", *args], env=child_env(home, **extra), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"coverpick {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result


def sweep_in_child(home: Path, *args: str, **extra: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, "sweep", "--apply", "--quiet", *args],
        env=child_env(home, **extra), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    probe = json.loads(lines[-1])
    assert probe["code"] in (0, None), f"coverpick sweep exited with {probe['code']}:\n{result.stderr[-3000:]}"
    return probe, "\n".join(lines[:-1])


def cached_vectors(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*/*.npy")) if folder.is_dir() else 0


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory, sample_catalogue) -> Path:
    """Import two feeds with their labels, train and activate heads, and return the COVERPICK_HOME."""
    catalogue = tmp_path_factory.mktemp("two-feeds")
    (catalogue / "feeds").mkdir()
    # Images are copied, not linked: the importer rejects paths that resolve outside the catalogue folder.
    for shop, feed in SHOP_FEEDS.items():
        shutil.copy(sample_catalogue / "feeds" / feed, catalogue / "feeds" / feed)
        shutil.copytree(sample_catalogue / "images" / shop, catalogue / "images" / shop)
    shutil.copy(sample_catalogue / "labels.jsonl", catalogue / "labels.jsonl")
    home = tmp_path_factory.mktemp("inference-home")
    coverpick(home, "migrate", "--verbosity", "0")
    # The importer rejects label lines of the shops left out, with a warning each.
    coverpick(home, "import", str(catalogue), "--quiet")
    coverpick(home, "train", "--activate", "--quiet")
    return home


def test_fp32_sweep_without_torch(trained_home):
    features = trained_home / "features"
    shutil.rmtree(features)
    probe, output = sweep_in_child(trained_home)
    assert probe["torch_modules"] == []
    assert "Verdict rows written: " in output
    assert cached_vectors(features / "efficientnet_lite0") > 300


def test_sweep_rejects_heads_of_other_precision(trained_home):
    """The active heads were trained on fp32 features, so an int8 sweep stops with an error naming both precisions."""
    result = subprocess.run(
        [sys.executable, "-m", "coverpick.cli", "sweep", "--apply", "--rescan-all", "--quiet"],
        env=child_env(trained_home, COVERPICK_BACKBONE_PRECISION="int8"), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode != 0
    assert "backbone precision 'fp32' differs from the configured 'int8'" in result.stderr
    assert "set COVERPICK_BACKBONE_PRECISION=fp32" in result.stderr


def test_int8_sweep_without_torch(trained_home):
    fp32_before = cached_vectors(trained_home / "features" / "efficientnet_lite0")
    # Heads read features of one precision, so the int8 sweep needs heads trained at int8.
    coverpick(trained_home, "train", "--activate", "--quiet", COVERPICK_BACKBONE_PRECISION="int8")
    probe, output = sweep_in_child(trained_home, "--rescan-all", COVERPICK_BACKBONE_PRECISION="int8")
    assert probe["torch_modules"] == []
    assert "Verdict rows written: " in output
    assert (trained_home / "models" / "backbones" / "efficientnet_lite0.int8.onnx").is_file()
    assert cached_vectors(trained_home / "features" / "efficientnet_lite0-int8") > 300
    assert cached_vectors(trained_home / "features" / "efficientnet_lite0") == fp32_before
