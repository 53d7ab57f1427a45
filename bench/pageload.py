"""Closed-loop HTTP load on loopback: N clients each send one request, wait for the response, then send the next."""

from __future__ import annotations

import http.client
import math
import threading
import time


def fetch(port: int, path: str, timeout: float = 30.0) -> tuple[int, float]:
    """GET ``path`` from 127.0.0.1:``port`` on a new connection; return (HTTP status, seconds)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        status = response.status
    finally:
        connection.close()
    return status, time.perf_counter() - started


def wait_until_serving(port: int, path: str, timeout: float = 60.0) -> None:
    """Poll ``path`` until it returns 200; raise TimeoutError with the last failure after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            status, _seconds = fetch(port, path, timeout=5.0)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TimeoutError(f"http://127.0.0.1:{port}{path} did not return 200 within {timeout:.0f} s (last: {last})")


def percentile(sorted_values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of an ascending list (share 0.95 for p95)."""
    index = max(0, math.ceil(share * len(sorted_values)) - 1)
    return sorted_values[index]


def summarise(latencies: list[float], errors: list[str], seconds: float) -> dict:
    """Return request count, errors, p50, p95, max (ms) and requests per second of one run."""
    latencies = sorted(latencies)
    result = {"seconds": round(seconds, 1), "requests": len(latencies), "errors": len(errors), "first_errors": errors[:5]}
    if latencies:
        result.update(
            p50_ms=round(percentile(latencies, 0.50) * 1000, 1),
            p95_ms=round(percentile(latencies, 0.95) * 1000, 1),
            max_ms=round(latencies[-1] * 1000, 1),
            requests_per_s=round(len(latencies) / seconds, 1),
        )
    return result


def visit_each(port: int, paths: list[str], clients: int) -> dict:
    """Request every path once, ``clients`` requests at a time, and summarise those first requests.

    The server's page cache contains none of these pages yet, so this
    measures rendering pages, and ``measure`` run afterwards measures serving
    them from the cache.
    """
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    pending = iter(paths)

    def client() -> None:
        while True:
            with lock:
                path = next(pending, None)
            if path is None:
                return
            try:
                status, elapsed = fetch(port, path)
                failure = None if status == 200 else f"HTTP {status} for {path}"
            except OSError as exc:
                elapsed, failure = 0.0, f"{type(exc).__name__} for {path}: {exc}"
            with lock:
                if failure is None:
                    latencies.append(elapsed)
                else:
                    errors.append(failure)

    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": clients, **summarise(latencies, errors, time.monotonic() - started)}


def measure(port: int, paths: list[str], clients: int, seconds: float, warmup_seconds: float) -> dict:
    """Run ``clients`` threads over ``paths`` for ``warmup_seconds`` unrecorded, then ``seconds`` recorded."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic()
    record_from = start + warmup_seconds
    stop_at = record_from + seconds

    def client(offset: int) -> None:
        index = offset
        while True:
            now = time.monotonic()
            if now >= stop_at:
                return
            path = paths[index % len(paths)]
            index += clients
            try:
                status, elapsed = fetch(port, path)
                failure = None if status == 200 else f"HTTP {status} for {path}"
            except OSError as exc:
                elapsed, failure = 0.0, f"{type(exc).__name__} for {path}: {exc}"
            if now < record_from:
                continue
            with lock:
                if failure is None:
                    latencies.append(elapsed)
                else:
                    errors.append(failure)

    threads = [threading.Thread(target=client, args=(offset,), daemon=True) for offset in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": clients, **summarise(latencies, errors, seconds)}
