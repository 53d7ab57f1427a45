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
        self.stdout.write("Games per primary tier: " + ", ".join(f"tier {row['primary_tier']}: {row['n']}" for row in tiers))
