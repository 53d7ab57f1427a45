"""Measure of how well the heads find notices worded unlike the sample's.

    python bench/reworded.py [--catalogue DIR] [--per-class 12] [--features DIR] [--keep]

The sample's notices repeat a few wordings ("Game-Key Card", "code in a box",
"art not final", "available on"), and the text heads learn them from the
human labels. A catalogue in use prints others. This bench measures the gap.
It copies the sample catalogue twice into a temporary folder. In each copy
the same clean covers, one per game, get a notice painted on: a banner, a
corner sash, a sticker or a stamp, in one of the system's DejaVu faces and
colours drawn at random. In the first copy the notice uses the sample's
wordings; in the second, wordings that the sample never prints (other
words, other languages). Their human labels are removed, so no fold trains
on them; their reference labels become the notice's class. Each copy is
imported into a home of its own and cross-validated by game like
`coverpick evaluate`. The bench prints, for each class and each copy, how
many of the painted covers get that class and how many are called clean, and
then the same per wording. It also counts the covers called clean that the
labelling queue's new-text tier would still ask about.

The two copies differ only in the words, so the difference between their
rows is what the wording alone costs. Both copies also change the rest of
the catalogue a little (one clean cover fewer in each chosen game), so their
other numbers are not the README's.

`--features DIR` copies a features folder (for instance `var/evaluate/features`
after `make evaluate`) into the first home, so that only the painted covers
are read. Without it, the first copy's covers are all featurized and read
afresh, which takes about 10 minutes more. The second copy starts from the
first copy's features either way. The copies and homes are removed unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
FONT_FOLDER = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSans.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSans-BoldOblique.ttf",
)
NOTICE_CLASSES = ("gkc", "ciab", "placeholder", "multi_platform")

# Wordings as the sample prints them.
SAMPLE_WORDS = {
    "gkc": ["Game-Key Card: download required", "GAME-KEY CARD", "Game-Key Card - requires download"],
    "ciab": ["Code in a box - no disc inside", "Download code only - no disc", "This box contains a download code. No disc included."],
    "placeholder": ["ART NOT FINAL", "Artwork not final", "ART NOT FINAL - PLACEHOLDER"],
    "multi_platform": ["Available on PS5 | Xbox Series X | Switch", "Also available on PlayStation 4 and Xbox One", "Available on PC, PS5 and Xbox"],
}

# Wordings the sample never prints; written before any of them was run
# through the heads, and not to be tuned against this bench's results.
NEW_WORDS = {
    "gkc": [
        "Key card edition - internet connection needed",
        "Cartridge unlocks a download, no game data on it",
        "Spiel-Key-Karte: Download erforderlich",
        "Licence card only - the game installs online",
    ],
    "ciab": [
        "Digital copy only. Disc not included",
        "Activation voucher inside - no disc",
        "Redeem the enclosed code to play",
        "Nur Download-Code in der Packung",
    ],
    "placeholder": [
        "Artwork subject to change",
        "Provisional packshot",
        "Cover coming soon",
        "Image for illustration only",
    ],
    "multi_platform": [
        "Out now on PS5 / Xbox Series X / Switch",
        "Also for PlayStation 4 & Xbox One",
        "Play it on Switch, PC and PS5",
        "Erhaeltlich fuer PS5 und Xbox",
    ],
}

PALETTE = [(230, 40, 40), (250, 200, 20), (20, 120, 220), (30, 30, 30), (255, 255, 255), (40, 170, 80), (240, 120, 20), (120, 40, 160)]


def font(rng: random.Random, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FOLDER / rng.choice(FONT_FILES)), max(8, size))


def ink_for(fill: tuple) -> tuple:
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def fitted_font(rng: random.Random, text: str, width: int, height: int) -> ImageFont.FreeTypeFont:
    """Return a face whose rendering of ``text`` fits in ``width`` by ``height`` pixels."""
    chosen = font(rng, height)
    size = height
    while size > 8:
        face = ImageFont.truetype(chosen.path, size)
        left, top, right, bottom = face.getbbox(text)
        if right - left <= width and bottom - top <= height:
            return face
        size -= 1
    return ImageFont.truetype(chosen.path, 8)


def banner(cover: Image.Image, text: str, rng: random.Random, at_top: bool) -> None:
    width, height = cover.size
    band = max(14, int(height * rng.uniform(0.05, 0.09)))
    fill = rng.choice(PALETTE)
    top = 0 if at_top else height - band
    draw = ImageDraw.Draw(cover)
    draw.rectangle((0, top, width, top + band), fill=fill)
    face = fitted_font(rng, text, int(width * 0.92), int(band * 0.62))
    draw.text((width / 2, top + band / 2), text, font=face, fill=ink_for(fill), anchor="mm")


def sticker(cover: Image.Image, text: str, rng: random.Random) -> None:
    width, height = cover.size
    words = text.split()
    middle = (len(words) + 1) // 2
    lines = [" ".join(words[:middle]), " ".join(words[middle:])] if len(words) > 2 else [text]
    box_w, line_h = int(width * rng.uniform(0.38, 0.5)), int(height * 0.035)
    face = fitted_font(rng, max(lines, key=len), int(box_w * 0.88), line_h)
    box_h = int(line_h * 1.35 * len(lines) + line_h)
    x = rng.choice((int(width * 0.04), width - box_w - int(width * 0.04)))
    y = rng.choice((int(height * 0.12), height - box_h - int(height * 0.12)))
    fill = rng.choice(PALETTE)
    draw = ImageDraw.Draw(cover)
    draw.rounded_rectangle((x, y, x + box_w, y + box_h), radius=line_h // 2, fill=fill, outline=ink_for(fill), width=2)
    for n, line in enumerate(lines):
        draw.text((x + box_w / 2, y + line_h * (1.0 + 1.35 * n)), line, font=face, fill=ink_for(fill), anchor="mm")


def sash(cover: Image.Image, text: str, rng: random.Random) -> None:
    """Paint a band across the top right corner, turned 45 degrees."""
    width, height = cover.size
    side = min(width, height)
    band_w, band_h = int(side * 0.75), max(14, int(side * 0.08))
    fill = rng.choice(PALETTE)
    strip = Image.new("RGBA", (band_w, band_h), fill + (255,))
    face = fitted_font(rng, text, int(side * 0.5), int(band_h * 0.6))
    ImageDraw.Draw(strip).text((band_w / 2, band_h / 2), text, font=face, fill=ink_for(fill), anchor="mm")
    turned = strip.rotate(-45, expand=True, resample=Image.BICUBIC)
    centre = (width - int(side * 0.2), int(side * 0.2))
    cover.paste(turned, (centre[0] - turned.width // 2, centre[1] - turned.height // 2), turned)


def stamp(cover: Image.Image, text: str, rng: random.Random) -> None:
    """Paint large print across the middle, tilted or level, in a box with an outline."""
    width, height = cover.size
    layer = Image.new("RGBA", cover.size, (0, 0, 0, 0))
    face = fitted_font(rng, text, int(width * 0.8), int(height * 0.08))
    fill = rng.choice(PALETTE)
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((width / 2, height / 2), text, font=face, anchor="mm")
    pad = int(height * 0.02)
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=fill + (235,), outline=ink_for(fill) + (255,), width=3)
    draw.text((width / 2, height / 2), text, font=face, fill=ink_for(fill) + (255,), anchor="mm")
    layer = layer.rotate(rng.choice((0, 20, 30, -25)), resample=Image.BICUBIC)
    cover.alpha_composite(layer)


def paint(path: Path, name: str, text: str, rng: random.Random) -> None:
    """Paint the notice ``text`` of class ``name`` on the image file at ``path``, in its own format."""
    with Image.open(path) as opened:
        cover = opened.convert("RGBA")
    styles = {
        "gkc": ("top", "bottom", "sash", "sticker"),
        "ciab": ("top", "bottom", "sash", "sticker"),
        "placeholder": ("stamp", "stamp", "top", "sticker"),
        "multi_platform": ("top", "bottom", "top", "bottom"),
    }[name]
    style = rng.choice(styles)
    if style in ("top", "bottom"):
        banner(cover, text, rng, style == "top")
    elif style == "sash":
        sash(cover, text, rng)
    elif style == "sticker":
        sticker(cover, text, rng)
    else:
        stamp(cover, text, rng)
    path.unlink()
    out = cover.convert("RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        out.save(path, "JPEG", quality=92)
    else:
        out.save(path)


def choose_covers(truth: list[dict], per_class: int, seed: int) -> dict:
    """Pick clean covers of distinct games, ``per_class`` for each notice class; return {(shop, product_id): (class, image path)}."""
    rng = random.Random(seed)
    by_game = defaultdict(list)
    for row in truth:
        if row["labels"] == ["clean"] and row.get("image_family") in ("nintendo", "sony", "xbox", "pc"):
            by_game[row["game_id"]].append(row)
    games = sorted(by_game)
    rng.shuffle(games)
    needed = per_class * len(NOTICE_CLASSES)
    if len(games) < needed:
        raise SystemExit(f"The catalogue has clean covers in {len(games)} games, and --per-class {per_class} needs {needed}. Pass a smaller --per-class.")
    chosen = {}
    for n, game in enumerate(games[:needed]):
        row = rng.choice(by_game[game])
        chosen[(row["shop"], row["product_id"])] = (NOTICE_CLASSES[n % len(NOTICE_CLASSES)], row["image"])
    return chosen


def build_copy(source: Path, target: Path, chosen: dict, words: dict, seed: int) -> dict:
    """Copy the catalogue to ``target`` (images hard-linked), paint the chosen covers and rewrite both label files.

    Returns the wording painted on each chosen cover, by (shop, product_id).
    """
    shutil.copytree(source, target, copy_function=os.link)
    rng = random.Random(seed)
    painted = {}
    for n, (key, (name, image)) in enumerate(sorted(chosen.items())):
        text = words[name][n % len(words[name])]
        paint(target / image, name, text, rng)
        painted[key] = text
    truth_rows = [json.loads(line) for line in (source / "truth.jsonl").read_text().splitlines() if line.strip()]
    with open(target / "truth.jsonl.new", "w") as out:
        for row in truth_rows:
            key = (row["shop"], row["product_id"])
            if key in chosen:
                row["labels"] = [chosen[key][0]]
            out.write(json.dumps(row) + "\n")
    os.replace(target / "truth.jsonl.new", target / "truth.jsonl")
    label_lines = []
    for line in (source / "labels.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if (row.get("shop"), row.get("product_id")) not in chosen:
            label_lines.append(line)
    (target / "labels.jsonl").unlink()
    (target / "labels.jsonl").write_text("\n".join(label_lines) + "\n")
    return painted


def run_copy(catalogue: Path, home: Path, features: Path | None, folds: int, seed: int) -> list[dict]:
    """Import ``catalogue`` into ``home`` and return its out-of-fold records (in a child process)."""
    home.mkdir(parents=True)
    if features is not None:
        shutil.copytree(features, home / "features")
    env = dict(os.environ, COVERPICK_HOME=str(home))
    coverpick = [str(Path(sys.executable).parent / "coverpick")]
    for step in (["migrate", "-v", "0"], ["import", str(catalogue), "--quiet"]):
        run_step(coverpick + step, env, f"coverpick {step[0]}")
    out = home / "records.json"
    code = (
        "import json, os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'coverpick.settings'); django.setup();"
        "from pathlib import Path; from coverpick.model.evaluate import out_of_fold_records;"
        f"json.dump(out_of_fold_records(Path(sys.argv[1]), folds={folds}, seed={seed}, progress=True, report=print), open(sys.argv[2], 'w'))"
    )
    # -P keeps the working folder off sys.path, so the child imports the coverpick the bench runs with.
    run_step([sys.executable, "-P", "-c", code, str(catalogue / "truth.jsonl"), str(out)], env, "the cross-validation")
    return json.loads(out.read_text())


def run_step(command: list[str], env: dict, name: str) -> None:
    """Run one child step, and stop the bench with a worded error if it fails."""
    finished = subprocess.run(command, env=env)
    if finished.returncode != 0:
        raise SystemExit(
            f"{name} failed with exit status {finished.returncode} in COVERPICK_HOME={env['COVERPICK_HOME']}; its output is above. "
            "Fix the cause and run the bench again (--keep keeps the home to look into)."
        )


def tally(records: list[dict], chosen: dict, painted: dict) -> tuple[dict, dict]:
    """Count painted covers, those given their class and those called clean: per class, then per wording.

    ``queued`` counts the covers called clean that the labelling queue would
    still ask about for the text they add (coverpick.web.queue, tier N): their
    new text is above the level that the covers labelled clean alone set.
    The reference labels stand in for the staff labels the queue reads.
    """
    from coverpick.model.inputs import new_text_level

    level = new_text_level([r["text_novelty"] for r in records if r["labels"] == ["clean"] and r["text_novelty"] is not None])
    counts = defaultdict(Counter)
    by_wording = defaultdict(Counter)
    for record in records:
        key = (record["shop"], record["product_id"])
        entry = chosen.get(key)
        if entry is None:
            continue
        name = entry[0]
        for row in (counts[name], by_wording[painted[key]]):
            row["covers"] += 1
            row["found"] += record["quality"] == name
            row["clean"] += record["quality"] == "clean"
            novelty = record["text_novelty"]
            row["queued"] += record["quality"] == "clean" and level is not None and novelty is not None and novelty > level
    return counts, by_wording


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=REPO.parent / "shared" / "catalogue")
    parser.add_argument("--per-class", type=int, default=12)
    parser.add_argument("--features", type=Path, help="a features folder to copy into the first home")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies and homes")
    parser.add_argument("--json", type=Path, help="write the counts here as JSON")
    args = parser.parse_args(argv)

    if not (args.catalogue / "truth.jsonl").is_file():
        parser.error(f"--catalogue {args.catalogue} has no truth.jsonl. Pass the sample catalogue's folder.")
    missing_fonts = [name for name in FONT_FILES if not (FONT_FOLDER / name).is_file()]
    if missing_fonts:
        parser.error(f"Fonts not found in {FONT_FOLDER}: {', '.join(missing_fonts)}. Install the Debian packages fonts-dejavu-core and fonts-dejavu-extra.")
    if args.per_class < 1:
        parser.error(f"--per-class {args.per_class} is invalid. Pass 1 or more covers per notice class.")
    if args.features is not None and not args.features.is_dir():
        parser.error(f"--features {args.features} is not a folder. Pass a COVERPICK_HOME's features folder, or leave it out.")
    truth = [json.loads(line) for line in (args.catalogue / "truth.jsonl").read_text().splitlines() if line.strip()]
    chosen = choose_covers(truth, args.per_class, args.seed)

    work = Path(tempfile.mkdtemp(prefix="coverpick-reworded-"))
    results, wordings = {}, {}
    try:
        features = args.features
        for label, words in (("sample wording", SAMPLE_WORDS), ("new wording", NEW_WORDS)):
            slug = label.split()[0]
            print(f"{label}: painting {len(chosen)} covers, importing and cross-validating", flush=True)
            painted = build_copy(args.catalogue, work / f"catalogue-{slug}", chosen, words, args.seed)
            records = run_copy(work / f"catalogue-{slug}", work / f"home-{slug}", features, args.folds, args.seed)
            results[label], wordings[label] = tally(records, chosen, painted)
            # The copies share every cover but the painted ones, and the
            # caches are keyed by image content, so the next copy starts from
            # this one's features and reads only its own painted covers.
            features = work / f"home-{slug}" / "features"
    finally:
        if args.keep:
            print(f"Kept the copies and homes in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print("found: given the notice's class; clean: called clean; queued: called clean, but queued for its new text")
    print(f"{'class':<16}" + "".join(f"{label + ': found / clean / queued':>40}" for label in results))
    for name in NOTICE_CLASSES:
        cells = []
        for counts in results.values():
            row = counts[name]
            cells.append(f"{row['found']:>3} / {row['clean']:>3} / {row['queued']:>3} of {row['covers']:<3}")
        print(f"{name:<16}" + "".join(f"{cell:>40}" for cell in cells))
    print()
    for label, rows in wordings.items():
        print(f"{label:<56}{'found / clean / queued':>26}")
        for wording, row in sorted(rows.items()):
            print(f"{wording[:54]:<56}{row['found']:>8} / {row['clean']:>3} / {row['queued']:>3} of {row['covers']:<3}")
    if args.json is not None:
        summary = {label: {k: dict(v) for k, v in counts.items()} for label, counts in results.items()}
        summary["by wording"] = {label: {k: dict(v) for k, v in rows.items()} for label, rows in wordings.items()}
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
