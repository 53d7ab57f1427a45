"""Record on each classifier verdict how much text the cover adds to its game's other covers.

Verdicts written before this have none, so the labelling queue's new-text
tier leaves them out until they are predicted again (``coverpick sweep
--rescan-all --apply``, or the sweep of newly trained heads).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalogue", "0006_verdict_edition"),
    ]

    operations = [
        migrations.AddField(
            model_name="verdict",
            name="text_novelty",
            field=models.FloatField(blank=True, null=True),
        ),
    ]
