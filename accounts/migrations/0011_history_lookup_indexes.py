"""One record's history in order (the audit trail's "the change before this one" and a
record's own page): an index on (id, history_id) of each historical table.

Raw SQL (the same on PostgreSQL and SQLite), because simple-history builds the historical
models' Meta itself; the models' state is unchanged."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_history_of_products_and_cohort")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicalmembership_id_hist ON accounts_historicalmembership (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicalmembership_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicalcontact_id_hist ON accounts_historicalcontact (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicalcontact_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicalpartnership_id_hist ON accounts_historicalpartnership (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicalpartnership_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicalpartnershipcontact_id_hist ON accounts_historicalpartnershipcontact (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicalpartnershipcontact_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicalcontactproposal_id_hist ON accounts_historicalcontactproposal (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicalcontactproposal_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicaltrialphase_id_hist ON accounts_historicaltrialphase (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicaltrialphase_id_hist",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS accounts_historicalsuccesscriterion_id_hist ON accounts_historicalsuccesscriterion (id, history_id)",
            "DROP INDEX IF EXISTS accounts_historicalsuccesscriterion_id_hist",
        ),
    ]
