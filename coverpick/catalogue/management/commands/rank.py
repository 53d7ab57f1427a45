"""coverpick rank: recompute and store the primary cover of every game."""

from django.core.management.base import BaseCommand
from django.db.models import Count

from coverpick.catalogue.models import Game
from coverpick.ranking import compute_primaries


class Command(BaseCommand):
    help = "Recompute and store the primary cover of every game."

    def handle(self, **options):
        updated = compute_primaries()
        self.stdout.write(f"Primary covers computed for {updated} games")
        tiers = Game.objects.values("primary_tier").annotate(n=Count("pk")).order_by("primary_tier")
        counts = [f"tier {row['primary_tier']}: {row['n']}" for row in tiers if row["primary_tier"] is not None]
        # A game has no primary tier only when it has no listings left.
        unlisted = sum(row["n"] for row in tiers if row["primary_tier"] is None)
        if unlisted:
            counts.append(f"no listings: {unlisted}")
        self.stdout.write("Games per primary tier: " + ", ".join(counts))
