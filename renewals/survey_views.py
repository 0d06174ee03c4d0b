"""/survey/<token>/: the one-page staff survey, answered from the email link without
signing in. The signed token is the credential: a forged or damaged one is a 404; the
page shows only the school, the supplier and its product, and the questions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from .models import SurveyInvitation, ValueReview
from .survey import (
    CHANGE_QUESTION,
    MAX_TEXT,
    QUESTION,
    USES_QUESTION,
    product_name,
    read_survey_token,
    survey_answer,
)

TEMPLATE = "renewals/survey.html"
FORM_ERROR = 422  # as the other pages' forms with errors


class SurveyForm(forms.Form):
    notice = forms.ChoiceField(
        choices=SurveyInvitation.Notice.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose one: not at all, a little or a lot."},
    )
    uses = forms.CharField(
        required=False, max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 4})
    )
    change = forms.CharField(
        required=False, max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 4})
    )


def _respond(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, TEMPLATE, context, status=status)
    # The link is a credential: not indexed, not kept in caches (never_cache), and sent on
    # as a referrer only to this site ("no-referrer" would make browsers post the form
    # with "Origin: null", which the CSRF check refuses).
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "same-origin"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, token: str) -> HttpResponse:
    invitation = read_survey_token(token)
    if invitation is None:
        return _respond(request, {"state": "invalid"}, status=404)
    review = invitation.review
    product = product_name(review.partnership)
    context: dict[str, Any] = {
        "school_name": invitation.school.name,
        "supplier_name": review.supplier.name,
        "product": product,
        "question": QUESTION.format(product=product),
        "uses_question": USES_QUESTION,
        "change_question": CHANGE_QUESTION,
        "max_text": MAX_TEXT,
        "choices": SurveyInvitation.Notice.choices,
        "min_respondents": settings.SURVEY_MIN_RESPONDENTS,
    }
    if invitation.answered_at is not None:
        return _respond(request, {**context, "state": "answered"})
    if review.status != ValueReview.Status.OPEN:
        return _respond(request, {**context, "state": "closed"})
    if request.method == "GET":
        return _respond(request, {**context, "state": "form", "form": SurveyForm()})

    form = SurveyForm(request.POST)
    if form.is_valid():
        try:
            survey_answer(token=token, **form.cleaned_data)
        except ValidationError as exc:
            code = getattr(exc, "code", None)
            if code == "already_answered":
                return _respond(request, {**context, "state": "answered"})
            if code == "closed":
                return _respond(request, {**context, "state": "closed"})
            if code == "invalid":
                return _respond(request, {"state": "invalid"}, status=404)
            for field, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            return _respond(request, {**context, "state": "thanks"})
    return _respond(request, {**context, "state": "form", "form": form}, status=FORM_ERROR)
