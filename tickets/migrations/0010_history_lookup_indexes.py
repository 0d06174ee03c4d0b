"""One record's history in order (the audit trail's "the change before this one" and a
record's own page): an index on (id, history_id) of each historical table.

Raw SQL (the same on PostgreSQL and SQLite), because simple-history builds the historical
models' Meta itself; the models' state is unchanged."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tickets", "0009_history")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS tickets_historicalticket_id_hist ON tickets_historicalticket (id, history_id)",
            "DROP INDEX IF EXISTS tickets_historicalticket_id_hist",
        ),
    ]
