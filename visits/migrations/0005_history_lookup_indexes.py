"""One record's history in order (the audit trail's "the change before this one" and a
record's own page): an index on (id, history_id) of each historical table.

Raw SQL (the same on PostgreSQL and SQLite), because simple-history builds the historical
models' Meta itself; the models' state is unchanged."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("visits", "0004_history")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS visits_historicalvisit_id_hist ON visits_historicalvisit (id, history_id)",
            "DROP INDEX IF EXISTS visits_historicalvisit_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS visits_historicalreadinessassessment_id_hist ON visits_historicalreadinessassessment (id, history_id)",
            "DROP INDEX IF EXISTS visits_historicalreadinessassessment_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS visits_historicalreadinesscheck_id_hist ON visits_historicalreadinesscheck (id, history_id)",
            "DROP INDEX IF EXISTS visits_historicalreadinesscheck_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS visits_historicalfollowupaction_id_hist ON visits_historicalfollowupaction (id, history_id)",
            "DROP INDEX IF EXISTS visits_historicalfollowupaction_id_hist",
        ),
    ]
