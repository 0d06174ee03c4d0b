"""One record's history in order (the audit trail's "the change before this one" and a
record's own page): an index on (id, history_id) of each historical table.

Raw SQL (the same on PostgreSQL and SQLite), because simple-history builds the historical
models' Meta itself; the models' state is unchanged."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("nudges", "0004_history")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS nudges_historicalnudgetemplate_id_hist ON nudges_historicalnudgetemplate (id, history_id)",
            "DROP INDEX IF EXISTS nudges_historicalnudgetemplate_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS nudges_historicalnudgerule_id_hist ON nudges_historicalnudgerule (id, history_id)",
            "DROP INDEX IF EXISTS nudges_historicalnudgerule_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS nudges_historicaloptout_id_hist ON nudges_historicaloptout (id, history_id)",
            "DROP INDEX IF EXISTS nudges_historicaloptout_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS nudges_historicalnudgereply_id_hist ON nudges_historicalnudgereply (id, history_id)",
            "DROP INDEX IF EXISTS nudges_historicalnudgereply_id_hist",
        ),
    ]
