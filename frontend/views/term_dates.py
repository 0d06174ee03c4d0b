"""The school's own calendar: its term dates and closure days (INSET days, other
closures), which the SLA clock, nudge send windows and "expected by now" hours run on.

A school lead keeps their school's; a trust lead each of the trust's schools (``?school=``),
and may enter a date for every school of the trust at once. Entering and uploading reuse
``accounts.calendars`` (the same rules and upserts as the ``import_term_dates`` command);
an uploaded file may only touch schools the user keeps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.calendars import (
    TermDatesFileError,
    TermDatesResult,
    calendar_editable_by,
    import_term_dates_csv,
    import_term_dates_ics,
    term_dates_add,
    term_dates_remove,
)
from accounts.models import ClosureDay, Organisation, Term
from accounts.scoping import scope_for
from termfeeds import services as feeds

from ..forms import add_service_errors
from ..roles import LEADS, role_required
from .common import FORM_ERROR
from .school import _pick_school

MAX_UPLOAD_BYTES = 1 << 20  # a year of term dates is a few kilobytes
SHOWN_BACK_DAYS = 365
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class TermDateForm(forms.Form):
    kind = forms.ChoiceField(
        label="What",
        choices=[
            ("term", "A term (first to last day)"),
            ("inset", "INSET day(s)"),
            ("holiday", "Holiday or closure inside a term (half term, a strike)"),
            ("other", "Other closure"),
        ],
        widget=forms.RadioSelect,
    )
    first = forms.DateField(label="First day", widget=DATE)
    last = forms.DateField(
        label="Last day", required=False, widget=DATE, help_text="Leave empty for one day."
    )
    name = forms.CharField(
        label="Name or note",
        required=False,
        max_length=50,
        help_text="e.g. Autumn 2026; a term without one is named from its first month.",
    )
    all_trust_schools = forms.BooleanField(label="Every school of the trust", required=False)


class FeedForm(forms.Form):
    url = forms.URLField(
        label="Calendar address",
        max_length=500,
        assume_scheme="https",
        help_text="The iCalendar (.ics) address your local authority or school publishes its "
        "term dates at. It is checked every day; changes wait here for you to apply them.",
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label="A term-dates file",
        help_text="CSV (columns kind, name, start, end; urn for other schools you keep) or "
        "an iCalendar .ics file, such as the one your local authority publishes.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError("The file is larger than 1 MB: is it a term-dates file?")
        name = upload.name.lower()
        if not name.endswith((".csv", ".ics", ".ical", ".icalendar")):
            raise ValidationError("Upload a .csv or an .ics file.")
        return upload


def _trust_schools(request: HttpRequest, school: Organisation) -> list[Organisation]:
    """The trust's schools the user keeps, when they lead the school's trust."""
    if school.trust_id is None or school.trust_id not in scope_for(request.user).trust_ids:
        return []
    return list(
        Organisation.objects.visible_to(request.user).filter(
            kind=Organisation.Kind.SCHOOL,
            trust_id=school.trust_id,
            pk__in=calendar_editable_by(request.user),
        )
    )


def _page(
    request: HttpRequest,
    school: Organisation,
    schools: list[Organisation],
    add_form: TermDateForm | None = None,
    upload_form: UploadForm | None = None,
    result: TermDatesResult | None = None,
    status: int = 200,
    feed_form: FeedForm | None = None,
) -> HttpResponse:
    since = timezone.localdate() - timedelta(days=SHOWN_BACK_DAYS)
    trust_schools = _trust_schools(request, school)
    add_form = add_form or TermDateForm(initial={"kind": "term"})
    if len(trust_schools) < 2:
        add_form.fields.pop("all_trust_schools", None)
    else:
        add_form.fields[
            "all_trust_schools"
        ].label = f"Every school of {school.trust} ({len(trust_schools)} schools)"
    return render(
        request,
        "frontend/school/term_dates.html",
        {
            "school": school,
            "schools": schools,
            "terms": Term.objects.filter(school=school, ends_on__gte=since).order_by("starts_on"),
            "closures": ClosureDay.objects.filter(school=school, date__gte=since).order_by("date"),
            "add_form": add_form,
            "upload_form": upload_form or UploadForm(),
            "result": result,
            "feed": feeds.feeds_visible_to(request.user).filter(school=school).first(),
            "feed_form": feed_form or FeedForm(),
        },
        status=status,
    )


@role_required(LEADS)
@require_http_methods(["GET", "POST"])
def term_dates(request: HttpRequest) -> HttpResponse:
    school, schools = _pick_school(request)
    if request.method == "GET":
        return _page(request, school, schools)
    back = f"{reverse('school-term-dates')}?school={school.pk}"
    action = request.POST.get("action", "")
    if action == "remove":
        removed = term_dates_remove(
            school=school,
            by=request.user,
            term_ids=_ids(request.POST.getlist("term")),
            closure_ids=_ids(request.POST.getlist("closure")),
        )
        messages.success(request, "Removed." if removed else "Nothing to remove.")
        return redirect(back)
    if action in ("feed-apply", "feed-ignore", "feed-stop"):
        return _feed_action(request, school, action, back)
    if action == "subscribe":
        feed_form = FeedForm(request.POST)
        if feed_form.is_valid():
            try:
                feed = feeds.subscribe(
                    school=school, url=feed_form.cleaned_data["url"], by=request.user
                )
            except ValidationError as exc:
                add_service_errors(feed_form, exc)
            else:
                if feed.error:
                    messages.error(
                        request, f"Subscribed, but the calendar could not be read: {feed.error}"
                    )
                elif feed.pending_changes:
                    messages.success(
                        request, "Subscribed. Read the changes below before applying them."
                    )
                else:
                    messages.success(request, "Subscribed: the calendar matches your dates.")
                return redirect(back)
        return _page(request, school, schools, feed_form=feed_form, status=FORM_ERROR)
    if action == "upload":
        upload = UploadForm(request.POST, request.FILES)
        if not upload.is_valid():
            return _page(request, school, schools, upload_form=upload, status=FORM_ERROR)
        result = _import(request, school, upload)
        if result is None:
            return _page(request, school, schools, upload_form=upload, status=FORM_ERROR)
        imported = (
            result.terms_created + result.terms_updated + result.closures_created
        ) + result.closures_updated
        status = FORM_ERROR if result.errors and not imported else 200
        return _page(request, school, schools, result=result, status=status)
    form = TermDateForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        targets = _trust_schools(request, school) if d.get("all_trust_schools") else [school]
        try:
            result = term_dates_add(
                schools=targets or [school],
                by=request.user,
                kind=d["kind"],
                first=d["first"],
                last=d["last"],
                name=d["name"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            for warning in result.warnings:
                messages.warning(request, warning)
            where = f"{len(targets)} schools" if len(targets) > 1 else school.name
            messages.success(request, f"Saved for {where}.")
            return redirect(back)
    return _page(request, school, schools, add_form=form, status=FORM_ERROR)


def _feed_action(
    request: HttpRequest, school: Organisation, action: str, back: str
) -> HttpResponse:
    feed = feeds.feeds_visible_to(request.user).filter(school=school).first()
    if feed is None:
        messages.error(request, "This school has no calendar subscription.")
        return redirect(back)
    try:
        if action == "feed-apply":
            result = feeds.apply(feed=feed, by=request.user)
            messages.success(
                request,
                f"Applied {len(result.changes)} change(s) from the calendar."
                if result.changes
                else "Nothing left to change.",
            )
        elif action == "feed-ignore":
            feeds.ignore(feed=feed, by=request.user)
            messages.success(request, "Ignored: shown again only if the calendar changes.")
        else:
            feeds.unsubscribe(feed=feed, by=request.user)
            messages.success(request, "Subscription stopped. Your dates are kept as they are.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(back)


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit() and len(v) < 12]


def _import(
    request: HttpRequest, school: Organisation, upload: UploadForm
) -> TermDatesResult | None:
    """The file into the school (or, for CSV rows naming another URN, that one of the
    user's schools); None with the reason on the form when the file is unusable."""
    f = upload.cleaned_data["file"]
    allowed = calendar_editable_by(request.user)
    try:
        if f.name.lower().endswith(".csv"):
            return import_term_dates_csv(f, school_urn=school.urn or "", allowed_school_ids=allowed)
        return import_term_dates_ics(f, school_urn=school.urn or "", allowed_school_ids=allowed)
    except TermDatesFileError as exc:
        upload.add_error("file", str(exc))
    except UnicodeDecodeError:
        upload.add_error("file", "The file is not text: save it as CSV or iCalendar.")
    return None
