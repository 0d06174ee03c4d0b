"""Each partnership with contract dates gets its first agreement term, carrying the
commitments it records today."""

from datetime import timedelta

from django.db import migrations
from django.db.models import F


def first_terms(apps, schema_editor):
    Partnership = apps.get_model("accounts", "Partnership")
    AgreementTerm = apps.get_model("renewals", "AgreementTerm")
    rows = []
    for p in (
        Partnership.objects.filter(contract_start__isnull=False, contract_end__gt=F("contract_start"))
        .order_by("id")
        .iterator()
    ):
        rows.append(
            AgreementTerm(
                partnership_id=p.pk,
                supplier_id=p.supplier_id,
                school_id=p.school_id,
                number=1,
                starts_on=p.contract_start,
                ends_on=p.contract_end,
                notice_on=p.contract_end - timedelta(days=90),
                onsite_hours_per_term=p.onsite_hours_per_term,
                first_response_target_hours=p.first_response_target_hours,
                resolution_target_hours=p.resolution_target_hours,
                nudges_per_contact_per_week=p.nudges_per_contact_per_week,
                nudges_per_contact_per_term=p.nudges_per_contact_per_term,
                status="ended" if p.stage == "ended" else "current",
            )
        )
    AgreementTerm.objects.bulk_create(rows, batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("renewals", "0001_initial")]

    operations = [migrations.RunPython(first_terms, migrations.RunPython.noop)]
