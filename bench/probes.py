"""Measurements and catalogue chores that bench/run.py runs in child processes.

    COVERPICK_HOME=... python bench/probes.py NAME [options]

Each probe prints one JSON object on its last line of standard output. The
parent pins the child to one CPU and sets one compute thread, so a probe only
has to set torch's own thread count.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    import django

    django.setup()


def sample_store_files(count: int, seed: int) -> list[Path]:
    from coverpick.vision.quantize import calibration_files

    return calibration_files(count, seed)


def probe_baseline(args) -> dict:
    """Time the original pipeline: eager PyTorch EfficientNet-Lite0, full-resolution decode, one cover at a time."""
    import torch
    from PIL import Image

    from coverpick.vision.backbones import build_feature_model
    from coverpick.vision.presets import to_input_array

    torch.set_num_threads(1)
    model = build_feature_model("efficientnet_lite0")
    files = sample_store_files(args.covers + args.warmup, args.seed)

    def run_one(path: Path) -> None:
        image = Image.open(io.BytesIO(path.read_bytes()))
        image.load()
        tensor = torch.from_numpy(to_input_array(image.convert("RGB")))[None]
        with torch.inference_mode():
            model(tensor)

    for path in files[: args.warmup]:
        run_one(path)
    timed = files[args.warmup :]
    started, cpu_started = time.perf_counter(), time.process_time()
    for path in timed:
        run_one(path)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "covers": len(timed),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "covers_per_s": round(len(timed) / seconds, 2),
        "covers_per_cpu_s": round(len(timed) / cpu_seconds, 2),
    }


def probe_backbone(args) -> dict:
    """Time the ONNX backbone alone on covers decoded and preprocessed beforehand, in the sweep's views and batch shape.

    Like featurize, each batch of BATCH_SIZE covers goes to the backbone once per view.
    """
    import numpy as np

    setup_django()
    from coverpick.covers.decode import decode_image, to_rgb_on_white
    from coverpick.model.featurize import BATCH_SIZE
    from coverpick.vision.extract import FeatureExtractor
    from coverpick.vision.presets import INPUT_SIZE, VIEWS, content_crop, normalise, view_image

    pixels = {view: [] for view in VIEWS}
    for path in sample_store_files(args.covers, args.seed):
        image, _info = decode_image(path.read_bytes(), draft_size=(INPUT_SIZE, INPUT_SIZE))
        rgb = image if image.mode == "RGB" else to_rgb_on_white(image)
        content = content_crop(rgb)
        for view in VIEWS:
            pixels[view].append(np.asarray(view_image(rgb, view, content)))
    covers = len(pixels[VIEWS[0]])
    batches = [
        normalise(np.stack(pixels[view][start : start + BATCH_SIZE]))
        for start in range(0, covers, BATCH_SIZE)
        for view in VIEWS
    ]
    extractor = FeatureExtractor("efficientnet_lite0", threads=1, precision=args.precision)
    for view_batch in batches[: len(VIEWS)]:
        extractor(view_batch[:1])
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        extractor(batch)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    tensors = sum(len(batch) for batch in batches)
    return {
        "precision": args.precision,
        "covers": covers,
        "views": list(VIEWS),
        "view_shapes": {view: list(batches[index].shape[2:]) for index, view in enumerate(VIEWS)},
        "tensors": tensors,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "tensors_per_s": round(tensors / seconds, 2),
        "covers_per_s": round(covers / seconds, 2),
        "covers_per_cpu_s": round(covers / cpu_seconds, 2),
        "model_bytes": extractor.model_file.stat().st_size,
    }


def feature_cache_roots(precision: str) -> list[Path]:
    """Return the cache folders the sweep fills for each cover: every view's features at ``precision``, the text, the spine and corner text and the strip profiles."""
    from coverpick.model.featurize import cache_for, corner_cache, profile_cache, spine_cache, text_cache
    from coverpick.vision.extract import FeatureCache
    from coverpick.vision.presets import VIEWS

    roots = []
    for view in VIEWS:
        cache = cache_for("efficientnet_lite0", view)
        roots.append(FeatureCache(cache.backbone_id, precision=precision).root)
    roots.append(text_cache().root)
    roots.append(spine_cache().root)
    roots.append(corner_cache().root)
    roots.append(profile_cache().root)
    return roots


def probe_reset(args) -> dict:
    """Clear the feature cache of one precision and every cover's statistics and phase-1 result."""
    setup_django()
    from coverpick.catalogue.models import CoverImage

    removed = []
    for root in feature_cache_roots(args.precision):
        if root.is_dir():
            shutil.rmtree(root)
            removed.append(root.name)
    covers = CoverImage.objects.update(stats=None, phase1=None)
    return {"removed": removed, "covers_reset": covers}


def probe_counts(args) -> dict:
    setup_django()
    from coverpick.catalogue.models import CoverImage, Edition, Game, Listing

    usable = CoverImage.objects.filter(listings__isnull=False, decode_error__isnull=True).distinct().count()
    return {
        "games": Game.objects.count(),
        "editions": Edition.objects.count(),
        "listings": Listing.objects.count(),
        "covers": usable,
    }


def probe_game_ids(args) -> dict:
    import random

    setup_django()
    from coverpick.catalogue.models import Game

    ids = list(Game.objects.filter(editions__listings__isnull=False).distinct().values_list("pk", flat=True))
    random.Random(args.seed).shuffle(ids)
    return {"game_ids": ids[: args.count]}


def probe_activate(args) -> dict:
    """Activate the newest heads trained at ``--precision``, because heads only run at the precision they were trained at.

    Run it with COVERPICK_BACKBONE_PRECISION set to the same precision, which activation checks.
    """
    setup_django()
    from coverpick import conf
    from coverpick.catalogue.models import ClassifierVersion
    from coverpick.model.heads import META_FILE
    from coverpick.model.versions import activate_version

    versions = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS).order_by("-created_at", "-pk")
    for version in versions:
        meta_path = conf.model_dir() / version.checkpoint / META_FILE
        if meta_path.is_file() and json.loads(meta_path.read_text()).get("backbone_precision") == args.precision:
            activate_version(version)
            return {"activated": version.name, "precision": args.precision}
    raise SystemExit(f"No trained heads at precision {args.precision}. Run `coverpick train` with COVERPICK_BACKBONE_PRECISION={args.precision}.")


def probe_prepare_first_verdict(args) -> dict:
    """Make one listing pending again, with its cover's features, statistics and phase-1 result removed."""
    setup_django()
    from coverpick.catalogue.models import CoverImage, Listing, Verdict
    from coverpick.model.versions import active_heads_version

    version = active_heads_version()
    listing = Listing.objects.filter(cover__isnull=False, cover__decode_error__isnull=True).order_by("-pk").first()
    Verdict.objects.filter(listing=listing, classifier_version=version).delete()
    CoverImage.objects.filter(pk=listing.cover_id).update(stats=None, phase1=None)
    removed = 0
    for root in feature_cache_roots(args.precision):
        path = root / listing.cover.sha256[:2] / f"{listing.cover.sha256}.npy"
        if path.is_file():
            path.unlink()
            removed += 1
    return {"listing": listing.pk, "cached_vectors_removed": removed}


def probe_first_verdict(args) -> dict:
    """Load the active heads and the backbone and sweep the pending listings, as a tick with work does before ranking."""
    setup_django()
    from coverpick.model.sweep import sweep

    summary = sweep(apply=True)
    return {"selected": summary.selected, "predicted": summary.predicted}


def probe_retrain(args) -> dict:
    """Time fit_heads on ``--rows`` training rows made by repeating the labelled rows over cached features."""
    import numpy as np
    import torch

    setup_django()
    from coverpick.model import train

    torch.set_num_threads(1)
    data = train.build_training_data("efficientnet_lite0")
    labelled = len(data.rows)
    repeat = np.resize(np.arange(labelled), args.rows)
    data.rows = data.rows[repeat]
    data.label_sets = [data.label_sets[i] for i in repeat]
    data.targets = data.targets[repeat]
    data.platform_targets = data.platform_targets[repeat]
    started, cpu_started = time.perf_counter(), time.process_time()
    train.fit_heads(data, np.arange(args.rows), seed=0)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    kept = len(train.cap_rows(data.label_sets))
    return {
        "rows": args.rows,
        "labelled_rows": labelled,
        "rows_after_class_cap": kept,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
    }


def probe_cross_validate(args) -> dict:
    setup_django()
    from coverpick.model.evaluate import cross_validate

    started = time.monotonic()
    result = cross_validate(Path(args.truth), folds=args.folds, seed=args.seed)
    return {
        "precision": os.environ.get("COVERPICK_BACKBONE_PRECISION", "fp32"),
        "folds": args.folds,
        "per_class": result["per_class"],
        "seconds": round(time.monotonic() - started, 1),
    }


PROBES = {
    "baseline": probe_baseline,
    "backbone": probe_backbone,
    "reset": probe_reset,
    "counts": probe_counts,
    "game-ids": probe_game_ids,
    "activate": probe_activate,
    "prepare-first-verdict": probe_prepare_first_verdict,
    "first-verdict": probe_first_verdict,
    "retrain": probe_retrain,
    "cross-validate": probe_cross_validate,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark probe in this process and print its result as JSON.")
    parser.add_argument("probe", choices=sorted(PROBES))
    parser.add_argument("--covers", type=int, default=200, help="Covers to time (default: 200)")
    parser.add_argument("--warmup", type=int, default=3, help="Covers run before timing starts (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="Seed for sampling covers or games (default: 0)")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="Backbone precision (default: fp32)")
    parser.add_argument("--rows", type=int, default=27000, help="Training rows for the retrain probe (default: 27000)")
    parser.add_argument("--count", type=int, default=200, help="Game ids to return (default: 200)")
    parser.add_argument("--truth", default="", help="truth.jsonl of the catalogue, for cross-validate")
    parser.add_argument("--folds", type=int, default=5, help="Folds for cross-validate (default: 5)")
    args = parser.parse_args(argv)
    result = PROBES[args.probe](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
