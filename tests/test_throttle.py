"""apply_throttle() runs in a child process, because niceness and affinity cannot be undone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
{before}
from coverpick.throttle import apply_throttle
lines = apply_throttle()
import torch
print(json.dumps({{
    "lines": lines,
    "nice": os.nice(0),
    "affinity": sorted(os.sched_getaffinity(0)),
    "omp": os.environ.get("OMP_NUM_THREADS"),
    "mkl": os.environ.get("MKL_NUM_THREADS"),
    "torch_threads": torch.get_num_threads(),
    "pid": os.getpid(),
    "ionice": {ionice},
}}))
"""

IONICE = "__import__('subprocess').run(['ionice', '-p', str(os.getpid())], capture_output=True, text=True).stdout.strip()"


def run_probe(import_torch_first: bool) -> dict:
    ionice = IONICE if shutil.which("ionice") else "None"
    code = PROBE.format(before="import torch" if import_torch_first else "", ionice=ionice)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def throttled() -> dict:
    return run_probe(import_torch_first=False)


def test_throttle_sets_niceness(throttled):
    assert throttled["nice"] == 19


def test_throttle_pins_one_cpu(throttled):
    assert len(throttled["affinity"]) == 1
    assert throttled["affinity"][0] == min(os.sched_getaffinity(0))


def test_throttle_sets_thread_variables(throttled):
    assert throttled["omp"] == "1"
    assert throttled["mkl"] == "1"


def test_throttle_torch_imported_later(throttled):
    assert throttled["torch_threads"] == 1


def test_throttle_torch_imported_before():
    probe = run_probe(import_torch_first=True)
    assert probe["torch_threads"] == 1
    assert any("torch.set_num_threads(1)" in line for line in probe["lines"])


@pytest.mark.skipif(shutil.which("ionice") is None, reason="ionice (util-linux) is not installed")
def test_throttle_idle_io_class(throttled):
    io_line = throttled["lines"][1]
    if "unchanged" in io_line:
        pytest.skip(f"the kernel did not allow ioprio_set here: {io_line}")
    assert throttled["ionice"] == "idle"


def test_throttle_reports_each_step(throttled):
    assert len(throttled["lines"]) == 4
    assert all(line.startswith("Throttle: ") for line in throttled["lines"])
    assert throttled["lines"][0].startswith("Throttle: niceness")
