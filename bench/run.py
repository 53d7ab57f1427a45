"""Benchmark the inference path, the idle tick, retraining and the game page on a scaled catalogue.

    python bench/run.py [--editions N] [--quick] [--profile] [--keep]

Builds a catalogue of N editions in a temporary COVERPICK_HOME from the sample
catalogue's images, then measures each part in a child process pinned to one
CPU with one compute thread, the shape of the one-core deployment VM. Writes
bench/results/latest.json and appends a row to the table in bench/README.md.
See bench/README.md for what each number means and the goals.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pageload  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
README = BENCH / "README.md"
BACKBONE = "efficientnet_lite0"
QUICK_EDITIONS = 2000
DEFAULT_EDITIONS = 10000
TICK_RUNS = 10
PAGE_CLIENTS = 20

# (metric, comparison, goal): the targets for the one-core deployment VM.
GOALS = [
    ("sweep_vs_backbone", ">=", 0.8),
    ("sweep_vs_baseline", ">=", 3.0),
    ("int8_backbone_speedup", ">=", 2.0),
    ("int8_sweep_vs_baseline", ">=", 5.0),
    ("int8_recall_drop", "<=", 1.0),
    ("idle_tick_ms", "<=", 50.0),
    ("idle_tick_rss_mb", "<=", 30.0),
    ("load_first_verdict_s", "<=", 1.0),
    ("load_rss_mb", "<=", 150.0),
    ("retrain_s", "<=", 60.0),
    ("page_p95_ms", "<=", 50.0),
]


@dataclass
class Finished:
    """A child process that exited: its wall time, CPU time, peak RSS, exit code and output."""

    argv: list[str]
    seconds: float
    cpu_seconds: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


class Bench:
    """Run children against one COVERPICK_HOME, pinned to one CPU, and log their output under the home."""

    def __init__(self, home: Path, cpu: int):
        self.home = home
        self.cpu = cpu
        self.logs = home / "bench-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.counter = 0

    def env(self, threads: int = 1, **extra: str) -> dict[str, str]:
        dropped = {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "COVERPICK_BACKBONE_PRECISION", "COVERPICK_BACKBONE"}
        env = {key: value for key, value in os.environ.items() if key not in dropped}
        env.update(COVERPICK_HOME=str(self.home), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        env.update(extra)
        return env

    def start(self, argv: list[str], *, pinned: bool = True, threads: int = 1, **extra: str) -> tuple[subprocess.Popen, float, Path]:
        self.counter += 1
        words = [Path(arg).name.removesuffix(".py").rsplit(".", 1)[-1] for arg in argv[1:4] if not arg.startswith("-")]
        log = self.logs / f"{self.counter:02d}-{'-'.join(words[:2]) or 'python'}"
        cpu = self.cpu

        def pin() -> None:
            os.sched_setaffinity(0, {cpu})

        stdout = open(f"{log}.out", "w")
        stderr = open(f"{log}.err", "w")
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, env=self.env(threads, **extra), stdout=stdout, stderr=stderr, cwd=REPO, preexec_fn=pin if pinned else None
        )
        stdout.close()
        stderr.close()
        return process, started, log

    def finish(self, running: tuple[subprocess.Popen, float, Path], check: bool = True) -> Finished:
        process, started, log = running
        # wait4 returns the resource usage of this child alone; RUSAGE_CHILDREN
        # would report the largest of all children so far.
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        finished = Finished(
            argv=process.args,
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            max_rss_mb=usage.ru_maxrss / 1024,
            returncode=process.returncode,
            stdout=Path(f"{log}.out").read_text(),
            stderr=Path(f"{log}.err").read_text(),
        )
        if check and finished.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, finished.argv))} exited with {finished.returncode}; output in {log}.err:\n"
                + finished.stderr[-3000:]
            )
        return finished

    def run(self, argv: list[str], *, pinned: bool = True, threads: int = 1, check: bool = True, **extra: str) -> Finished:
        return self.finish(self.start(argv, pinned=pinned, threads=threads, **extra), check=check)

    def probe(self, name: str, *options: str, pinned: bool = True, threads: int = 1, **extra: str) -> dict:
        argv = [sys.executable, str(BENCH / "probes.py"), name, *options]
        return self.run(argv, pinned=pinned, threads=threads, **extra).json()


def coverpick_argv(*args: str) -> list[str]:
    """Return the argv for the installed console script, the way systemd runs it."""
    script = Path(sys.executable).with_name("coverpick")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "coverpick.cli", *args]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine_info() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load_average_start": [round(value, 2) for value in os.getloadavg()],
    }


def setup_catalogue(bench: Bench, catalogue: Path) -> dict:
    say(f"Importing {catalogue} and training heads (2 threads, not measured)")
    started = time.monotonic()
    bench.run(coverpick_argv("migrate", "--verbosity", "0"), pinned=False)
    bench.run(coverpick_argv("import", str(catalogue), "--quiet"), pinned=False)
    bench.run(coverpick_argv("train", "--activate", "--quiet"), pinned=False, threads=2)
    return {"setup_s": round(time.monotonic() - started, 1)}


def quantize_and_cross_validate(bench: Bench, catalogue: Path, folds: int) -> dict:
    """Quantize the backbone on the sample's covers, then cross-validate at both precisions side by side."""
    say("Quantizing the backbone to INT8 (not pinned)")
    quantized = bench.run([sys.executable, "-m", "coverpick.vision.quantize", BACKBONE], pinned=False, threads=2)
    say(f"Cross-validating at fp32 and int8 in parallel ({folds} folds by game, not pinned)")
    truth = str(catalogue / "truth.jsonl")
    argv = [sys.executable, str(BENCH / "probes.py"), "cross-validate", "--truth", truth, "--folds", str(folds)]
    running_fp32 = bench.start(argv, pinned=False)
    running_int8 = bench.start(argv, pinned=False, COVERPICK_BACKBONE_PRECISION="int8")
    fp32 = bench.finish(running_fp32).json()
    int8 = bench.finish(running_int8).json()
    # Heads run only at the precision they were trained at, so the int8
    # measurements need heads of their own. The fp32 heads stay active.
    say("Training heads on int8 features (not activated, not measured)")
    bench.run(coverpick_argv("train", "--quiet"), pinned=False, threads=2, COVERPICK_BACKBONE_PRECISION="int8")
    drops = {}
    for name, entry in fp32["per_class"].items():
        if name in int8["per_class"]:
            drops[name] = round((entry["recall"] - int8["per_class"][name]["recall"]) * 100, 1)
    return {
        "quantize_s": round(quantized.seconds, 1),
        "quantize_rss_mb": round(quantized.max_rss_mb),
        "recall_fp32": {name: entry["recall"] for name, entry in fp32["per_class"].items()},
        "recall_int8": {name: entry["recall"] for name, entry in int8["per_class"].items()},
        "recall_counts": {name: entry["count"] for name, entry in fp32["per_class"].items()},
        "recall_drop_points": drops,
        "int8_recall_drop": max(drops.values()) if drops else None,
        "int8_recall_drop_mean": round(statistics.mean(drops.values()), 2) if drops else None,
    }


def measure_sweep(bench: Bench, precision: str, covers: int, profile_to: Path | None = None) -> dict:
    """Time `coverpick sweep --rescan-all --apply` from an empty feature cache at one precision, with heads of that precision."""
    activate(bench, precision)
    bench.probe("reset", "--precision", precision, pinned=False)
    say(f"Sweep B at {precision}: {covers} covers, pinned to CPU {bench.cpu}, one thread")
    load = os.getloadavg()[0]
    args = ("sweep", "--rescan-all", "--apply", "--quiet")
    if profile_to is None:
        argv = coverpick_argv(*args)
    else:
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile_to), "-m", "coverpick.cli", *args]
    finished = bench.run(argv, COVERPICK_BACKBONE_PRECISION=precision)
    return {
        "seconds": round(finished.seconds, 1),
        "cpu_seconds": round(finished.cpu_seconds, 1),
        "covers_per_s": round(covers / finished.seconds, 2),
        "covers_per_cpu_s": round(covers / finished.cpu_seconds, 2),
        "max_rss_mb": round(finished.max_rss_mb),
        "load_average": round(load, 2),
        "output": finished.stdout.strip().splitlines(),
    }


def write_profile(profile: Path, target: Path, entries: int = 25) -> None:
    import io
    import pstats

    buffer = io.StringIO()
    stats = pstats.Stats(str(profile), stream=buffer).strip_dirs()
    buffer.write("Sorted by internal time:\n")
    stats.sort_stats("tottime").print_stats(entries)
    buffer.write("Sorted by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(entries)
    target.write_text(buffer.getvalue())


def measure_idle_tick(bench: Bench) -> dict:
    say(f"Idle tick: {TICK_RUNS} runs of `coverpick tick --quiet`, and of `python -c pass` for comparison")
    ticks = [bench.run(coverpick_argv("tick", "--quiet")) for _ in range(TICK_RUNS)]
    for tick in ticks:
        if tick.stdout.strip():
            raise RuntimeError(f"The tick was not idle; it printed: {tick.stdout.strip()[:500]}")
    floor = [bench.run([sys.executable, "-c", "pass"]) for _ in range(TICK_RUNS)]
    return {
        "idle_tick_ms": round(statistics.median(t.seconds for t in ticks) * 1000, 1),
        "idle_tick_rss_mb": round(max(t.max_rss_mb for t in ticks), 1),
        "idle_tick_min_ms": round(min(t.seconds for t in ticks) * 1000, 1),
        "idle_tick_cpu_ms": round(statistics.median(t.cpu_seconds for t in ticks) * 1000, 1),
        "idle_tick_load_average": round(os.getloadavg()[0], 2),
        "interpreter_start_ms": round(statistics.median(t.seconds for t in floor) * 1000, 1),
        "interpreter_rss_mb": round(max(t.max_rss_mb for t in floor), 1),
    }


def activate(bench: Bench, precision: str) -> None:
    """Make the newest heads trained at ``precision`` the active ones."""
    bench.probe("activate", "--precision", precision, pinned=False, COVERPICK_BACKBONE_PRECISION=precision)


def measure_first_verdict(bench: Bench, precision: str) -> dict:
    activate(bench, precision)
    prepared = bench.probe("prepare-first-verdict", "--precision", precision, pinned=False)
    say(f"Load and first verdict at {precision}: a new process sweeps listing {prepared['listing']}, the only one pending")
    argv = [sys.executable, str(BENCH / "probes.py"), "first-verdict"]
    finished = bench.run(argv, COVERPICK_BACKBONE_PRECISION=precision)
    if finished.json()["predicted"] != 1:
        raise RuntimeError(f"Expected one predicted listing, got: {finished.stdout.strip()}")
    suffix = "" if precision == "fp32" else f"_{precision}"
    return {
        f"load_first_verdict{suffix}_s": round(finished.seconds, 2),
        f"load_first_verdict{suffix}_cpu_s": round(finished.cpu_seconds, 2),
        f"load{suffix}_rss_mb": round(finished.max_rss_mb, 1),
    }


def measure_retrain(bench: Bench, rows: int) -> dict:
    say(f"Retrain: fit_heads on {rows} rows over cached features, pinned, one thread")
    running = bench.start([sys.executable, str(BENCH / "probes.py"), "retrain", "--rows", str(rows)])
    finished = bench.finish(running)
    result = finished.json()
    return {
        "retrain_s": result["seconds"],
        "retrain_cpu_s": result["cpu_seconds"],
        "retrain_load_average": round(os.getloadavg()[0], 2),
        "retrain_rows": result["rows"],
        "retrain_rows_after_class_cap": result["rows_after_class_cap"],
        "retrain_process_rss_mb": round(finished.max_rss_mb),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_pages(bench: Bench, seconds: float) -> dict:
    if importlib.util.find_spec("coverpick.catalogue.management.commands.serve") is None:
        reason = "`coverpick serve` is not in this checkout yet"
        say(f"Game page latency skipped: {reason}")
        return {"page_p95_ms": None, "page_skipped": reason}
    game_ids = bench.probe("game-ids", "--count", "500", pinned=False)["game_ids"]
    paths = [f"/games/{game_id}/" for game_id in game_ids]
    port = free_port()
    say(
        f"Game pages: `coverpick serve` on 127.0.0.1:{port} pinned to CPU {bench.cpu}, {PAGE_CLIENTS} clients: "
        f"each of {len(paths)} pages once, then {seconds:.0f} s"
    )
    running = bench.start(coverpick_argv("serve", "--port", str(port)), COVERPICK_SECRET_KEY=secrets.token_urlsafe(40))
    server = running[0]
    own_cpus = os.sched_getaffinity(0)
    try:
        pageload.wait_until_serving(port, paths[0])
        others = own_cpus - {bench.cpu}
        if others:
            os.sched_setaffinity(0, others)
        # The first request for a page renders it and stores it in the page
        # cache, and later ones are served from the cache until the catalogue
        # changes. Both are reported, and the goal applies to the later ones.
        cold = pageload.visit_each(port, paths, PAGE_CLIENTS)
        result = pageload.measure(port, paths, PAGE_CLIENTS, seconds, warmup_seconds=3.0)
    finally:
        os.sched_setaffinity(0, own_cpus)
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {
        "page_p95_ms": result.get("p95_ms"),
        "page": result,
        "page_first_visit_p95_ms": cold.get("p95_ms"),
        "page_first_visit": cold,
        "page_server_cpus": 1,
        "page_client_cpus": len(own_cpus - {bench.cpu}) or 1,
    }


def evaluate_goals(results: dict) -> list[dict]:
    verdicts = []
    for metric, comparison, goal in GOALS:
        value = results.get(metric)
        if value is None:
            verdicts.append({"metric": metric, "goal": f"{comparison} {goal}", "value": None, "met": None})
            continue
        met = value >= goal if comparison == ">=" else value <= goal
        verdicts.append({"metric": metric, "goal": f"{comparison} {goal}", "value": value, "met": met})
    return verdicts


def append_readme_row(results: dict) -> None:
    """Append one row to the results table, the last table in bench/README.md."""
    details = results["details"]
    machine = details["machine"]

    def cell(value, unit: str = "") -> str:
        return "—" if value is None else f"{value}{unit}"

    row = (
        f"| {results['date']} | {machine['cpu']}, {machine['cores']} cores | {details['editions']} | "
        f"{details['counts']['covers']} | {cell(results['sweep_covers_per_s'])} | {cell(results['sweep_vs_baseline'])} | "
        f"{cell(results['sweep_vs_backbone'])} | {cell(results['int8_sweep_vs_baseline'])} | "
        f"{cell(results['int8_recall_drop'])} | {cell(results['idle_tick_ms'])} / {cell(results['idle_tick_rss_mb'])} | "
        f"{cell(results['load_first_verdict_s'])} / {cell(results['load_rss_mb'])} | {cell(results['retrain_s'])} | "
        f"{cell(results['page_p95_ms'])} | {' '.join(str(v) for v in machine['load_average_start'])} |"
    )
    lines = README.read_text().splitlines()
    last_table_line = max(i for i, line in enumerate(lines) if line.startswith("|"))
    lines.insert(last_table_line + 1, row)
    README.write_text("\n".join(lines) + "\n")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def run_benchmark(args, home: Path) -> dict:
    cpu = max(os.sched_getaffinity(0))
    bench = Bench(home, cpu)
    details: dict = {"machine": machine_info(), "editions": args.editions, "quick": args.quick, "measure_cpu": cpu}
    started = time.monotonic()

    details.update(setup_catalogue(bench, args.catalogue))
    details.update(quantize_and_cross_validate(bench, args.catalogue, args.folds))
    say(f"Scaling the catalogue to {args.editions} editions (all CPUs, not measured)")
    scaled = bench.run([sys.executable, str(BENCH / "scale.py"), "--editions", str(args.editions)], pinned=False)
    details["scale"] = scaled.json()
    counts = bench.probe("counts", pinned=False)
    details["counts"] = counts

    sample = str(args.sample_covers)
    say(f"Baseline A: eager PyTorch, full-resolution decode, one cover at a time ({sample} covers)")
    details["baseline"] = bench.probe("baseline", "--covers", sample)
    say(f"Backbone C: ONNX Runtime alone on preprocessed covers ({sample} covers, fp32 and int8)")
    details["backbone_fp32"] = bench.probe("backbone", "--covers", sample, "--precision", "fp32")
    details["backbone_int8"] = bench.probe("backbone", "--covers", sample, "--precision", "int8")

    details["sweep_int8"] = measure_sweep(bench, "int8", counts["covers"])
    details["sweep_fp32"] = measure_sweep(bench, "fp32", counts["covers"])
    if args.profile:
        profile = home / "sweep.prof"
        details["sweep_fp32_profiled"] = measure_sweep(bench, "fp32", counts["covers"], profile_to=profile)
        write_profile(profile, RESULTS / "sweep-profile.txt")

    details.update(measure_idle_tick(bench))
    details.update(measure_first_verdict(bench, "fp32"))
    details.update(measure_first_verdict(bench, "int8"))
    activate(bench, "fp32")
    details.update(measure_retrain(bench, args.retrain_rows))
    details.update(measure_pages(bench, args.page_seconds))
    details["machine"]["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    details["total_s"] = round(time.monotonic() - started, 1)

    a = details["baseline"]["covers_per_s"]
    b = details["sweep_fp32"]["covers_per_s"]
    b_int8 = details["sweep_int8"]["covers_per_s"]
    results = {
        "date": datetime.date.today().isoformat(),
        "sweep_covers_per_s": b,
        "sweep_vs_baseline": ratio(b, a),
        "sweep_vs_backbone": ratio(b, details["backbone_fp32"]["covers_per_s"]),
        "int8_sweep_vs_baseline": ratio(b_int8, a),
        "int8_sweep_vs_backbone": ratio(b_int8, details["backbone_int8"]["covers_per_s"]),
        "int8_backbone_speedup": ratio(details["backbone_int8"]["covers_per_s"], details["backbone_fp32"]["covers_per_s"]),
        "int8_recall_drop": details["int8_recall_drop"],
        "idle_tick_ms": details["idle_tick_ms"],
        "idle_tick_rss_mb": details["idle_tick_rss_mb"],
        "load_first_verdict_s": details["load_first_verdict_s"],
        "load_rss_mb": details["load_rss_mb"],
        "retrain_s": details["retrain_s"],
        "page_p95_ms": details["page_p95_ms"],
    }
    details["cpu_time_ratios"] = cpu_time_ratios(details)
    results["goals"] = evaluate_goals(results)
    results["details"] = details
    return results


def cpu_time_ratios(details: dict) -> dict:
    """Return the sweep ratios computed from each child's CPU time, which other load on the machine does not inflate."""
    a = details["baseline"]["covers_per_cpu_s"]
    return {
        "sweep_vs_baseline": ratio(details["sweep_fp32"]["covers_per_cpu_s"], a),
        "sweep_vs_backbone": ratio(details["sweep_fp32"]["covers_per_cpu_s"], details["backbone_fp32"]["covers_per_cpu_s"]),
        "int8_sweep_vs_baseline": ratio(details["sweep_int8"]["covers_per_cpu_s"], a),
        "int8_backbone_speedup": ratio(details["backbone_int8"]["covers_per_cpu_s"], details["backbone_fp32"]["covers_per_cpu_s"]),
    }


def print_summary(results: dict) -> None:
    details = results["details"]
    print()
    print(f"Catalogue: {details['counts']['editions']} editions, {details['counts']['listings']} listings, {details['counts']['covers']} covers")
    print(f"A baseline (eager PyTorch):      {details['baseline']['covers_per_s']:8.2f} covers/s")
    print(f"C backbone fp32 (ONNX alone):    {details['backbone_fp32']['covers_per_s']:8.2f} covers/s")
    print(f"C backbone int8 (ONNX alone):    {details['backbone_int8']['covers_per_s']:8.2f} covers/s")
    print(f"B sweep fp32:                    {details['sweep_fp32']['covers_per_s']:8.2f} covers/s")
    print(f"B sweep int8:                    {details['sweep_int8']['covers_per_s']:8.2f} covers/s")
    for goal in results["goals"]:
        if goal["met"] is None:
            state = "not measured"
        else:
            state = "met" if goal["met"] else "MISSED"
        print(f"  {goal['metric']:<24} {str(goal['value']):>10}  goal {goal['goal']:<8} {state}")
    print(f"Total benchmark time: {details['total_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editions", type=int, default=None, help=f"Editions in the scaled catalogue (default: {DEFAULT_EDITIONS}, {QUICK_EDITIONS} with --quick)")
    parser.add_argument("--quick", action="store_true", help=f"Scale to {QUICK_EDITIONS} editions and shorten the page test")
    parser.add_argument(
        "--catalogue", type=Path,
        default=Path(os.environ.get("COVERPICK_SAMPLE_CATALOGUE", REPO.parent / "shared" / "catalogue")),
        help="Sample catalogue folder with feeds/, images/, labels.jsonl and truth.jsonl "
        "(default: COVERPICK_SAMPLE_CATALOGUE or ../shared/catalogue)",
    )
    parser.add_argument("--sample-covers", type=int, default=None, help="Covers timed for A and C (default: 300, 150 with --quick)")
    parser.add_argument("--retrain-rows", type=int, default=27000, help="Training rows for the retrain measurement (default: 27000)")
    parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds for the INT8 recall comparison (default: 5)")
    parser.add_argument("--page-seconds", type=float, default=None, help="Recorded seconds of page load (default: 30, 10 with --quick)")
    parser.add_argument("--profile", action="store_true", help="Also run the fp32 sweep under cProfile and write bench/results/sweep-profile.txt")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary COVERPICK_HOME and print its path")
    args = parser.parse_args(argv)
    args.editions = args.editions or (QUICK_EDITIONS if args.quick else DEFAULT_EDITIONS)
    args.sample_covers = args.sample_covers or (150 if args.quick else 300)
    args.page_seconds = args.page_seconds or (10.0 if args.quick else 30.0)
    if not (args.catalogue / "feeds").is_dir() or not (args.catalogue / "truth.jsonl").is_file():
        parser.error(f"{args.catalogue} is not a sample catalogue (feeds/ and truth.jsonl); pass --catalogue")

    home = Path(tempfile.mkdtemp(prefix="coverpick-bench-"))
    say(f"COVERPICK_HOME={home}")
    try:
        results = run_benchmark(args, home)
    finally:
        if args.keep:
            say(f"Kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    append_readme_row(results)
    print_summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
