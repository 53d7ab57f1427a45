"""Model reports: per-class validation recall, the verdict distribution, and their charts.

The web page /reports/ and ``coverpick report --out DIR`` both draw from
here. Charts are drawn with matplotlib's object API (Figure, never pyplot),
which keeps no global state, so a multi-threaded server can draw two charts
at once. matplotlib is imported when this module is, because two threads
importing it for the first time at the same moment can fail with a
partially initialised module.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from coverpick import conf
from coverpick.catalogue.models import ClassifierVersion, Verdict
from coverpick.labels import LABEL_CLASSES, UNKNOWN

logger = logging.getLogger(__name__)

# A class with at least this many training labels is drawn in colour. The
# recall of a class with fewer labels is too noisy to read much into, so it is grey.
SUPPORTED_MIN_LABELS = 50
SUPPORTED_COLOUR = "#2b6cb0"
SPARSE_COLOUR = "#a0aec0"
VERDICT_COLOUR = "#4a5568"
NO_VERDICT = "no verdict"

CHART_DPI = 100


@dataclass(frozen=True)
class RecallRow:
    name: str
    recall: float | None
    validation_count: int
    training_labels: int

    @property
    def supported(self) -> bool:
        return self.training_labels >= SUPPORTED_MIN_LABELS


def active_heads_version() -> ClassifierVersion | None:
    return ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).first()


def training_label_counts(version: ClassifierVersion) -> tuple[dict[str, int], str]:
    """Return how many training labels each class had, and where that number comes from.

    The checkpoint's meta.json records the counts at training time. When it
    cannot be read, the current manual-train labels are counted instead.
    """
    recorded = version.metrics.get("label_counts") if isinstance(version.metrics, dict) else None
    if recorded:
        return {name: int(recorded.get(name, 0)) for name in LABEL_CLASSES}, "training run"
    if version.checkpoint:
        meta_path = conf.model_dir() / version.checkpoint / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            logger.warning("Failed to read label counts from %s: %s", meta_path, exc)
        else:
            counts = meta.get("label_counts") or {}
            return {name: int(counts.get(name, 0)) for name in LABEL_CLASSES}, "training run"
    from coverpick.web.queue import manual_label_counts

    live = manual_label_counts()
    return {name: live[name] for name in LABEL_CLASSES}, "current manual labels"


def recall_rows(version: ClassifierVersion) -> list[RecallRow]:
    """Return the per-class validation recall of a version in class-list order, with each class's label counts."""
    per_class = (version.metrics or {}).get("quality", {}).get("per_class", {})
    training, _ = training_label_counts(version)
    rows = []
    for name in LABEL_CLASSES:
        entry = per_class.get(name) or {}
        rows.append(
            RecallRow(
                name=name,
                recall=entry.get("recall"),
                validation_count=int(entry.get("count", 0)),
                training_labels=training.get(name, 0),
            )
        )
    return rows


def verdict_distribution(version: ClassifierVersion) -> dict[str, int]:
    """Count the version's verdicts per quality value, largest first, with null quality as NO_VERDICT."""
    rows = Verdict.objects.filter(classifier_version=version).values("quality").annotate(n=Count("pk"))
    counts = Counter({row["quality"] or NO_VERDICT: row["n"] for row in rows})
    order = {name: index for index, name in enumerate((*LABEL_CLASSES, UNKNOWN, NO_VERDICT))}
    return dict(sorted(counts.items(), key=lambda item: (-item[1], order.get(item[0], len(order)))))


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=CHART_DPI, layout="constrained")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _message_chart(text: str) -> bytes:
    figure = _figure(8, 2)
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)
    return _png(figure)


def recall_chart(version: ClassifierVersion | None) -> bytes:
    """Draw per-class validation recall as a PNG, with each bar's training-label count on it."""
    if version is None:
        return _message_chart("No active trained heads: run `coverpick train --activate`.")
    rows = recall_rows(version)
    figure = _figure(10, 4.5)
    axes = figure.add_subplot()

    positions = range(len(rows))
    heights = [row.recall or 0.0 for row in rows]
    colours = [SUPPORTED_COLOUR if row.supported else SPARSE_COLOUR for row in rows]
    bars = axes.bar(positions, heights, color=colours)
    _label_bars(axes, bars, rows)

    axes.set_xticks(list(positions), [row.name for row in rows], rotation=40, ha="right")
    axes.set_ylim(0, 1.12)
    axes.set_ylabel("validation recall")
    axes.set_title(f"Validation recall per class, {version.name}", fontsize=11)
    figure.legend(
        handles=[
            Patch(color=SUPPORTED_COLOUR, label=f"at least {SUPPORTED_MIN_LABELS} training labels"),
            Patch(color=SPARSE_COLOUR, label=f"fewer than {SUPPORTED_MIN_LABELS}"),
            Patch(color="none", label="n = training labels, – = class not among the validation games"),
        ],
        loc="outside lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def _label_bars(axes, bars, rows: list[RecallRow]) -> None:
    """Write each class's training-label count above its bar."""
    for bar, row in zip(bars, rows):
        # A class with no row among the validation games has no recall, so its bar is empty and marked "–".
        label = f"n={row.training_labels}" if row.recall is not None else f"n={row.training_labels}\n–"
        axes.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )


def verdict_chart(version: ClassifierVersion | None) -> bytes:
    """Draw the catalogue-wide count of the version's verdicts per quality value as a PNG."""
    if version is None:
        return _message_chart("No active trained heads: run `coverpick train --activate`.")
    counts = verdict_distribution(version)
    if not counts:
        return _message_chart(f"{version.name} has no verdicts yet: run `coverpick sweep --apply`.")
    names = list(counts)[::-1]
    values = [counts[name] for name in names]
    figure = _figure(8, 0.6 + 0.32 * len(names))
    axes = figure.add_subplot()
    bars = axes.barh(names, values, color=VERDICT_COLOUR)
    axes.bar_label(bars, padding=3, fontsize=8)
    axes.set_xlabel("listings")
    axes.set_title(f"{version.name}: verdicts across the catalogue ({sum(values)} listings)", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_xlim(0, max(values) * 1.12)
    return _png(figure)


def version_summaries() -> list[dict]:
    """Describe every classifier version, newest first, with its headline metrics."""
    summaries = []
    for version in ClassifierVersion.objects.order_by("-created_at", "-pk"):
        metrics = version.metrics or {}
        per_class = metrics.get("quality", {}).get("per_class", {})
        recalls = [entry["recall"] for entry in per_class.values() if entry.get("recall") is not None]
        platform = metrics.get("platform") or {}
        summaries.append(
            {
                "name": version.name,
                "kind": version.kind,
                "backbone": version.backbone,
                "is_active": version.is_active,
                "created_at": version.created_at,
                "activated_at": version.activated_at,
                "mean_recall": sum(recalls) / len(recalls) if recalls else None,
                "classes_validated": len(recalls),
                "training_rows": metrics.get("training_rows"),
                "validation_rows": metrics.get("validation_rows"),
                "platform_accuracy": platform.get("accuracy"),
                "platform_coverage": platform.get("coverage"),
            }
        )
    return summaries


def report_counts(version: ClassifierVersion | None) -> dict:
    """Return the numbers behind both charts as JSON-ready data."""
    if version is None:
        return {"version": None, "recall": [], "verdicts": {}, "label_count_source": None}
    _, source = training_label_counts(version)
    return {
        "version": version.name,
        "recall": [
            {
                "class": row.name,
                "recall": row.recall,
                "validation_count": row.validation_count,
                "training_labels": row.training_labels,
            }
            for row in recall_rows(version)
        ],
        "label_count_source": source,
        "supported_min_labels": SUPPORTED_MIN_LABELS,
        "verdicts": verdict_distribution(version),
    }


def write_report(out_dir: Path) -> list[Path]:
    """Write recall.png, verdicts.png and counts.json into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = active_heads_version()
    files = {
        "recall.png": recall_chart(version),
        "verdicts.png": verdict_chart(version),
        "counts.json": (json.dumps(report_counts(version), indent=2) + "\n").encode(),
    }
    written = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written
