"""The demo pipeline: import → train → sweep → rank, with a summary a person can read."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from coverpick.catalogue.importer import import_catalogue
from coverpick.catalogue.models import Game, Verdict
from coverpick.model.sweep import sweep
from coverpick.model.train import train
from coverpick.model.versions import active_heads_version
from coverpick.ranking import compute_primaries, ranked_covers, verdict_source

GAMES_SHOWN = 8


def run_demo(catalogue: Path, out=None) -> list[str]:
    lines: list[str] = []
    say = lines.append if out is None else (lambda line: (lines.append(line), out(line)))
    say("== import")
    summary = import_catalogue(catalogue, progress=False)
    for line in summary.lines():
        say(line)
    say("== train")
    train(activate=True, out=say)
    say("== sweep")
    for line in sweep(apply=True).lines():
        say(line)
    say("== rank")
    say(f"Primary covers computed for {compute_primaries()} games")
    say("== listings per verdict (active classifier version)")
    version = active_heads_version()
    counts = Counter(
        Verdict.objects.filter(classifier_version=version).values_list("quality", flat=True)
    )
    for verdict, count in counts.most_common():
        say(f"  {verdict or 'error':<15} {count}")
    say("== chosen covers")
    for line in chosen_cover_lines():
        say(line)
    return lines


def chosen_cover_lines(shown: int = GAMES_SHOWN) -> list[str]:
    """Return a line per game with a primary cover, for the first ``shown`` games by title, then how many are left out."""
    with_primary = Game.objects.filter(primary_listing__isnull=False)
    lines = []
    for game in with_primary.order_by("title")[:shown]:
        best = ranked_covers(game).first()
        lines.append(
            f"  {game.title}: {best.shop.code} {best.product_id} — tier {best.tier}, "
            f"verdict {best.effective_verdict or 'none'} ({verdict_source(best)})"
        )
    hidden = with_primary.count() - shown
    if hidden > 0:
        lines.append(f"  and {hidden} more game{'s' if hidden != 1 else ''} (`coverpick export primaries` lists them all)")
    return lines
