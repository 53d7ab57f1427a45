"""Lower the current process's claim on the machine, for `coverpick train --throttle`.

On hosts without systemd this gives a retrain the limits of the
coverpick-train unit but its CPU quota, which needs a cgroup: niceness 19,
the idle I/O scheduling class, one CPU and one compute thread. Each step that the kernel or platform does not allow is
reported and skipped, so training still runs.

Call apply_throttle() before torch is imported, for two reasons. Torch and
the BLAS libraries read OMP_NUM_THREADS and MKL_NUM_THREADS only when they
load. And Linux sets niceness, I/O priority and affinity on the calling
thread only, so only threads started afterwards inherit them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

logger = logging.getLogger(__name__)

NICENESS = 19
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# ioprio_set(2) has no libc wrapper, so it is called by syscall number.
# Numbers from the kernel's syscall tables for each architecture.
IOPRIO_SET_SYSCALL = {
    "x86_64": 251,
    "i386": 289,
    "i686": 289,
    "aarch64": 30,
    "arm64": 30,
    "riscv64": 30,
    "armv7l": 314,
    "ppc64le": 273,
    "s390x": 282,
}
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_IDLE = 3
IOPRIO_CLASS_SHIFT = 13


def apply_throttle() -> list[str]:
    """Apply every throttle step to this process and return one line per step for the operator.

    The caller prints the lines, so they are logged at debug level only and
    do not appear twice on a terminal.
    """
    lines = [set_niceness(), set_idle_io_class(), pin_to_one_cpu(), limit_threads()]
    for line in lines:
        logger.debug("%s", line)
    return lines


def set_niceness(target: int = NICENESS) -> str:
    current = os.nice(0)
    if current >= target:
        return f"Throttle: niceness already {current}"
    try:
        os.nice(target - current)
    except OSError as exc:
        return f"Throttle: niceness unchanged at {current}: {exc}"
    return f"Throttle: niceness {os.nice(0)}"


def set_idle_io_class() -> str:
    machine = platform.machine()
    number = IOPRIO_SET_SYSCALL.get(machine)
    if not sys.platform.startswith("linux") or number is None:
        return f"Throttle: I/O class unchanged: ioprio_set is not available on {sys.platform}/{machine}"
    libc = ctypes.CDLL(None, use_errno=True)
    ioprio = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT
    # who=0 is the calling thread. Threads and processes it starts later inherit the class.
    if libc.syscall(number, IOPRIO_WHO_PROCESS, 0, ioprio) != 0:
        errno = ctypes.get_errno()
        return f"Throttle: I/O class unchanged: ioprio_set failed: {os.strerror(errno)} (errno {errno})"
    return "Throttle: I/O scheduling class idle"


def pin_to_one_cpu() -> str:
    """Pin to the lowest CPU this process may run on, the same CPU the coverpick-train unit uses (CPUAffinity=0)."""
    if not hasattr(os, "sched_setaffinity"):
        return f"Throttle: CPU affinity unchanged: not supported on {sys.platform}"
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[0]
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return f"Throttle: CPU affinity unchanged ({len(allowed)} CPUs): {exc}"
    return f"Throttle: pinned to CPU {cpu} (of {len(allowed)} allowed)"


def limit_threads() -> str:
    """Set one compute thread for torch, OpenMP, MKL and, where already loaded, OpenBLAS."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    done = [f"{name}=1" for name in THREAD_VARIABLES]
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(1)
        done.append("torch.set_num_threads(1)")
    if "numpy" in sys.modules:
        # numpy loads its BLAS before this runs (the train command imports it),
        # so the environment variables come too late for it. threadpoolctl
        # resizes the loaded pools and ships with scikit-learn in the train extras.
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            done.append("numpy BLAS threads unchanged (threadpoolctl not installed)")
        else:
            threadpool_limits(limits=1)
            done.append("BLAS pools limited to 1")
    return "Throttle: one thread (" + ", ".join(done) + ")"
