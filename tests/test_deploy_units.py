"""The systemd units in deploy/systemd: the keys each one must set, and `systemd-analyze verify` where installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
INSTALLED_BINARY = "/opt/coverpick/.venv/bin/coverpick"
ENV_FILE = "/etc/coverpick/env"


def parse_unit(name: str) -> configparser.ConfigParser:
    # strict=False because systemd allows a key to repeat (Environment= does).
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string((UNITS / name).read_text())
    return parser


def environment(parser: configparser.ConfigParser) -> dict[str, str]:
    pairs = parser["Service"].get("Environment", "").split()
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.mark.parametrize("name", ["coverpick-tick.service", "coverpick-train.service", "coverpick-web.service"])
def test_service_reads_environment_file(name):
    service = parse_unit(name)["Service"]
    assert service["EnvironmentFile"] == ENV_FILE
    assert service["User"] == "coverpick"
    assert service["ExecStart"].startswith(INSTALLED_BINARY + " ")


def test_environment_example_names_settings():
    keys = {line.split("=", 1)[0] for line in (UNITS / "env.example").read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert {"COVERPICK_HOME", "DATABASE_URL", "COVERPICK_SECRET_KEY"} <= keys


def test_tick_timer_schedule():
    timer = parse_unit("coverpick-tick.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/5"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "coverpick-tick.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_tick_service_runs_tick():
    service = parse_unit("coverpick-tick.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].split()[1] == "tick"


def test_train_service_limits():
    unit = parse_unit("coverpick-train.service")
    service = unit["Service"]
    assert service["ExecStart"].split()[1:3] == ["train", "--activate"]
    assert service["CPUQuota"] == "90%"
    assert service["Nice"] == "19"
    assert service["IOSchedulingClass"] == "idle"
    assert service["CPUAffinity"] == "0"
    assert environment(unit)["OMP_NUM_THREADS"] == "1"
    assert environment(unit)["MKL_NUM_THREADS"] == "1"


def test_web_service_runs_serve():
    unit = parse_unit("coverpick-web.service")
    assert unit["Service"]["ExecStart"].split()[1] == "serve"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_verify(tmp_path):
    # Point ExecStart at this virtualenv's console script, because verify
    # rejects a command that does not exist on this machine.
    local_binary = Path(sys.executable).with_name("coverpick")
    if not local_binary.is_file():
        pytest.skip(f"{local_binary} is not installed; run pip install -e .")
    names = sorted(path.name for path in UNITS.glob("coverpick-*.*"))
    for name in names:
        text = (UNITS / name).read_text().replace(INSTALLED_BINARY, str(local_binary))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
