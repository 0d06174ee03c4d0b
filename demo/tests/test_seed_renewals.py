from typing import Any

from django.core.management import call_command

from accounts.models import Partnership, Stage, User
from renewals.models import AgreementTerm, SurveyInvitation, ValueReview
from renewals.survey import survey_summary


def test_the_demo_has_agreement_terms_and_two_open_reviews(db: Any) -> None:
    call_command("seed_demo", "--public-password-ok", verbosity=0)
    call_command("seed_demo_activity", verbosity=0)
    with_dates = Partnership.objects.exclude(stage=Stage.ENDED).filter(
        contract_start__isnull=False, contract_end__isnull=False
    )
    terms = AgreementTerm.objects.filter(status="current")
    assert terms.count() == with_dates.count() > 10
    assert not terms.filter(annual_value__isnull=True).exists()
    reviews = ValueReview.objects.filter(status="open")
    assert sorted(reviews.values_list("opened_how", flat=True)) == ["automatic", "school"]
    surveyed = reviews.get(opened_how="school")
    assert (surveyed.supplier.name, surveyed.school.name) == (
        "Lanternfish Learning",
        "Cotswold Edge School",
    )
    invited = SurveyInvitation.objects.filter(review=surveyed)
    assert invited.filter(answered_at__isnull=False).count() == invited.count() - 1 >= 5
    # Enough answers for the supplier to see them added up, without names.
    admin = User.objects.get(email="priya.shah@lanternfish.example")
    summary = survey_summary(surveyed, user=admin)
    assert not summary["withheld"] and summary["answers"] == []
    # Renewal-stage notice dates are ahead, so the demo's reviews are still to decide.
    for t in terms.filter(partnership__stage=Stage.RENEWAL):
        assert t.notice_on > surveyed.opened_at.date()
    count = AgreementTerm.objects.count()
    call_command("seed_demo_activity", verbosity=0)
    assert AgreementTerm.objects.count() == count
