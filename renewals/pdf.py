"""The value review as a pack for governors' and finance meetings: the page's sections in
one column, as a PDF (WeasyPrint, with Debian's Pango and the DejaVu fonts).

``review_context`` is what both the review page and the pack show: the figures of
``renewals.figures`` (live while the review is open, the stored snapshot once decided),
laid out as labelled values each with its definition. No figure is computed here; a share
of fewer than ``SMALL_NUMBER`` tickets is shown as its count ("2 of 3"), not a percentage.

The PDF is rendered from HTML with its stylesheet inline, and the URL fetcher refuses
every URL but ``data:``: a ticket subject or a reason can't make the server fetch anything.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from .figures import review_figures
from .models import SurveyInvitation, ValueReview

Notice = SurveyInvitation.Notice

# WeasyPrint reports each layout step at INFO; a pack is one request, not a progress bar.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

SMALL_NUMBER = 5  # below this many tickets, a share is shown as "n of m"

SECTIONS: list[tuple[str, str]] = [
    ("agreement", "Agreement"),
    ("tickets", "Tickets raised and acted on"),
    ("you_said", "You said, we did"),
    ("response", "Response and resolution against targets"),
    ("onsite", "On-site hours term by term"),
    ("visits", "Visits"),
    ("phases", "Trial phases"),
    ("ratings", "Ratings"),
    ("nudges", "Nudges"),
    ("follow_ups", "Open follow-up actions"),
    ("survey", "Staff survey"),
    ("decision", "Decision"),
]


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    definition: str = ""
    key: str = ""


def share(pct: float | None, part: int | None, whole: int | None) -> str:
    """A share honestly: "none" of nothing, "2 of 3" of a handful, "80% (8 of 10)"."""
    if whole is None or part is None:  # a snapshot without the counts
        return "—" if pct is None else f"{pct:g}%"
    if whole == 0:
        return "none yet"
    if whole < SMALL_NUMBER:
        return f"{part} of {whole}"
    shown = pct if pct is not None else round(100 * part / whole, 1)
    return f"{shown:g}% ({part} of {whole})"


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:g} h"


def _day(iso: str | None) -> str:
    if not iso:
        return "?"
    return date.fromisoformat(iso).strftime("%-d %b %Y")


def _dates(rows: list[dict], *keys: str) -> list[dict]:
    """Copies of the snapshot's rows with their ISO dates as dates (for the templates)."""
    out = []
    for row in rows:
        row = dict(row)
        for k in keys:
            if isinstance(row.get(k), str):
                row[k] = date.fromisoformat(row[k])
        out.append(row)
    return out


def figures_for(review: ValueReview, *, user: Any, now: datetime | None = None) -> dict:
    """Live while the review is open; as the deciding lead saw them once decided."""
    if review.status == ValueReview.Status.DECIDED and review.figures:
        return review.figures
    return review_figures(review, user=user, now=now)


def survey_for(review: ValueReview, *, user: Any) -> dict | None:
    """The staff survey's summary as ``user`` may see it (renewals.survey), or None when
    the survey is not available."""
    try:
        from .survey import survey_summary
    except ImportError:  # pragma: no cover - the survey ships with the renewals app
        return None
    summary = survey_summary(review, user=user)
    counts = summary.get("counts")
    summary["count_rows"] = (
        [(label, counts.get(value, 0)) for value, label in reversed(Notice.choices)]
        if counts is not None
        else []
    )
    return summary


def review_context(review: ValueReview, *, user: Any, now: datetime | None = None) -> dict:
    f = figures_for(review, user=user, now=now)
    d = f.get("definitions", {})
    t = f.get("tickets", {})
    c = f.get("ticket_counts") or {}
    targets = f.get("targets", {})
    ratings_n = t.get("ratings") or 0

    tickets = [
        Figure("Tickets raised", str(t.get("tickets_raised", 0)), d.get("tickets_raised", "")),
        Figure(
            "Acted on",
            share(t.get("acted_on_pct"), c.get("acted_on"), c.get("resolved")),
            d.get("acted_on_pct", ""),
            "acted_on",
        ),
        Figure(
            "Resolved in the period",
            str(f.get("you_said_we_did_count", 0)),
            d.get("you_said_we_did", ""),
        ),
        Figure(
            "Reopened",
            share(t.get("reopen_rate_pct"), c.get("reopened"), c.get("ever_resolved")),
            d.get("reopen_rate_pct", ""),
            "reopened",
        ),
    ]
    response = [
        Figure(
            f"First response within {targets.get('first_response_target_hours', '?')} "
            "school working hours",
            share(
                t.get("first_response_within_target_pct"),
                c.get("answered_in_time"),
                c.get("answered_or_due"),
            ),
            d.get("first_response_within_target_pct", ""),
            "first_response",
        ),
        Figure(
            "First responses late",
            str(t.get("first_responses_late", 0)),
            d.get("first_responses_late", ""),
        ),
        Figure(
            "Median first response",
            _hours(t.get("first_response_median_hours")),
            d.get("first_response_median_hours", ""),
        ),
        Figure(
            "90th percentile first response",
            _hours(t.get("first_response_p90_hours")),
            d.get("first_response_p90_hours", ""),
        ),
        Figure(
            f"Resolved within {targets.get('resolution_target_hours', '?')} school working hours",
            share(
                t.get("resolved_within_target_pct"),
                c.get("resolved_in_time"),
                c.get("resolved"),
            ),
            d.get("resolved_within_target_pct", ""),
            "resolution",
        ),
        Figure(
            "Median resolution",
            _hours(t.get("resolution_median_hours")),
            d.get("resolution_median_hours", ""),
        ),
    ]
    avg = t.get("rating_average")
    ratings = [
        Figure(
            "Average rating",
            "no ratings"
            if not ratings_n
            else f"{avg:g} of 5 from {ratings_n} rating{'s' if ratings_n != 1 else ''}",
            d.get("rating_average", ""),
        ),
        Figure("Tickets rated", str(ratings_n), d.get("ratings", "")),
    ]
    v = f.get("visits", {})
    visits = [
        Figure("Visits completed", str(v.get("visits_completed", 0)), d.get("visits_completed")),
        Figure("Visits planned", str(v.get("visits_planned", 0)), d.get("visits_planned", "")),
        Figure("No-shows", str(v.get("visits_no_show", 0)), d.get("visits_no_show", "")),
    ]
    n = f.get("nudges", {})
    nudges = [
        Figure("Nudges sent", str(n.get("nudges_sent", 0)), d.get("nudges_sent", "")),
        Figure("Staff reached", str(n.get("staff_reached", 0)), d.get("staff_reached", "")),
        Figure("Staff who stopped them", str(n.get("staff_stopped", 0)), d.get("staff_stopped")),
        Figure("Opt-outs", str(n.get("opt_outs", 0)), d.get("opt_outs", "")),
    ]
    hours = f.get("onsite_hours_by_term", [])
    period = f.get("period", {})
    term = f.get("term", {})
    return {
        "review": review,
        "p": review.partnership,
        "school": review.school,
        "supplier": review.supplier,
        "figures": f,
        "definitions": d,
        "definition_rows": [
            (k.replace("_pct", " (%)").replace("_", " ").capitalize(), v) for k, v in d.items()
        ],
        "period_label": f"{_day(period.get('start'))} to {_day(period.get('end'))}",
        "term_label": f"{_day(term.get('starts_on'))} to {_day(term.get('ends_on'))}",
        "notice_label": _day(term.get("notice_on")),
        "annual_value": term.get("annual_value"),
        "targets": targets,
        "ticket_rows": tickets,
        "response_rows": response,
        "rating_rows": ratings,
        "ratings_by_score": [
            (score, f.get("ratings_by_score", {}).get(score, 0)) for score in "54321"
        ],
        "visit_rows": visits,
        "nudge_rows": nudges,
        "onsite_rows": _dates(hours, "starts_on", "ends_on"),
        "onsite_definition": d.get("onsite_hours_by_term", ""),
        "you_said": _dates(f.get("you_said_we_did", []), "resolved_on"),
        "you_said_count": f.get("you_said_we_did_count", 0),
        "phases": _dates(f.get("trial_phases", []), "start_date", "end_date"),
        "follow_ups": _dates(f.get("open_follow_ups", []), "due_on"),
        "survey": survey_for(review, user=user),
        "sections": SECTIONS,
        "headings": dict(SECTIONS),
        "live": review.status == ValueReview.Status.OPEN,
        "generated_at": timezone.now(),
    }


def pack_filename(review: ValueReview, context: dict | None = None) -> str:
    """value-review-<school>-<period>.pdf, ASCII only (a header value)."""
    f = (context or {}).get("figures") or review.figures or {}
    period = f.get("period", {})
    start, end = period.get("start", ""), period.get("end", "")
    if not start:
        start, end = review.term.starts_on.isoformat(), review.term.ends_on.isoformat()
    school = slugify(review.school.name)[:60] or "school"
    name = f"value-review-{school}-{start}-to-{end}.pdf"
    return re.sub(r"[^A-Za-z0-9._-]", "", name)


def _refuse(url: str) -> Any:
    """Nothing is fetched: only inline ``data:`` URLs are read."""
    from weasyprint.urls import URLFetcher

    if url.startswith("data:"):
        return URLFetcher.fetch(URLFetcher(), url)
    raise ValueError(f"The pack fetches no URLs: {url[:80]}")


def _local_only() -> Any:
    """WeasyPrint's fetcher (a URLFetcher whose ``fetch`` refuses everything but ``data:``
    URLs; WeasyPrint is imported only when a pack is made)."""
    from weasyprint.urls import URLFetcher

    class LocalOnly(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            return _refuse(url)

    return LocalOnly(allow_redirects=False)


def pack_html(review: ValueReview, *, user: Any, context: dict | None = None) -> str:
    ctx = context or review_context(review, user=user)
    return render_to_string("frontend/renewals/pack.html", {**ctx, "pack": True})


def review_pdf(review: ValueReview, *, user: Any) -> bytes:
    """The review's pack as a PDF, with what ``user`` may see of it."""
    from weasyprint import HTML

    html = pack_html(review, user=user)
    return HTML(string=html, base_url="about:blank", url_fetcher=_local_only()).write_pdf()
