"""The value review's staff survey: "Would you notice if it was gone?"

The school's lead (or its trust's lead) sends it; each person asked gets a
SurveyInvitation and a nudge (occurrence ``survey:<invitation id>``) that the ordinary
dispatcher sends, within the school's send windows, consent and the per-contact limits.

The answer link ``/survey/<token>/`` is the only credential: a signed token (its own salt)
naming the invitation and its nonce, accepted once. Nobody but the recipient may hold a
working link, and the supplier's staff read nudges (subject, body, what was sent), so the
nudge's wording has a ``{{ survey_url }}`` placeholder that renders everywhere (previews,
the stored rendering, subject access) as a stand-in; only the email handed to the sender
carries the working link (nudges/context.py ``personal_links``, registered in apps.py).

Who sees the answers: the school's leads everything, named; the supplier's staff the
counts and the words, without names and sorted, and only from
``settings.SURVEY_MIN_RESPONDENTS`` answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from html import escape
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Contact, Partnership, StakeholderTag, User
from accounts.privacy_hash import erased
from accounts.scoping import scope_for
from nudges import templating
from nudges.models import Nudge, OptOut

from .models import SurveyInvitation, ValueReview

SALT = "renewals.survey"
OCCURRENCE_PREFIX = "survey:"
PLACEHOLDER = "survey_url"
MAX_TEXT = 1000
Notice = SurveyInvitation.Notice

QUESTION = "Would you notice if we no longer had {product}?"
USES_QUESTION = "What do you use it for?"
CHANGE_QUESTION = "What should change?"

SUBJECT = "Would you notice if we no longer had {{ product_name }}?"
BODY_TEXT = """Hello {{ first_name }},

{{ school_name }} is deciding whether to renew {{ product_name }} from {{ supplier_name }}, \
and would like to hear from the staff who use it.
{message}
Three short questions on one page, no sign-in needed: would you notice if it was gone, \
what do you use it for, and what should change?

Answer here (this link is yours alone): {{ survey_url }}

Your school's leaders see your answers. {{ supplier_name }} sees them only added up with \
other people's, without names, once at least {min} people have answered."""
BODY_HTML = """<p>Hello {{ first_name }},</p>
<p>{{ school_name }} is deciding whether to renew {{ product_name }} from {{ supplier_name }}, \
and would like to hear from the staff who use it.</p>
{message}<p>Three short questions on one page, no sign-in needed: would you notice if it was \
gone, what do you use it for, and what should change?</p>
<p><a href="{{ survey_url }}">Answer the three questions</a> (this link is yours alone)</p>
<p>Your school's leaders see your answers. {{ supplier_name }} sees them only added up with \
other people's, without names, once at least {min} people have answered.</p>"""


# --- The link ---------------------------------------------------------------------------


def survey_token(invitation: SurveyInvitation) -> str:
    """The signed token of one invitation's answer link (no expiry: a decided review
    closes it)."""
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce.hex}, salt=SALT)


def survey_url(invitation: SurveyInvitation) -> str:
    return f"{settings.SITE_URL}/survey/{survey_token(invitation)}/"


def read_survey_token(token: str) -> SurveyInvitation | None:
    """The invitation a token names, or None when it is forged, damaged, or its person
    has been erased."""
    try:
        data = signing.loads(token, salt=SALT)
        pk, nonce = int(data["i"]), uuid.UUID(hex=str(data["n"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (
        SurveyInvitation.objects.select_related(
            "review", "review__supplier", "review__partnership", "school", "contact"
        )
        .filter(pk=pk, nonce=nonce, contact__erased_at__isnull=True)
        .first()
    )


def survey_links(nudges: Iterable[Nudge]) -> dict[int, str]:
    """The working answer link of each survey nudge (for the dispatcher, only at the
    moment of sending), by nudge id. One query."""
    wanted: dict[int, int] = {}
    for n in nudges:
        if n.occurrence.startswith(OCCURRENCE_PREFIX):
            try:
                wanted[int(n.occurrence.removeprefix(OCCURRENCE_PREFIX))] = n.pk
            except ValueError:
                continue
    out = {}
    for inv in SurveyInvitation.objects.filter(pk__in=wanted).only("id", "nonce", "nudge_id"):
        nudge_id = wanted[inv.pk]
        if inv.nudge_id == nudge_id:
            out[nudge_id] = survey_url(inv)
    return out


def product_name(partnership: Partnership) -> str:
    """The partnership's product(s), as the nudges name them."""
    names = sorted(partnership.products.values_list("name", flat=True))
    return " and ".join(names) or partnership.supplier.name


# --- Sending ----------------------------------------------------------------------------


def _leads(user: Any, school_id: int) -> bool:
    s = scope_for(user)
    return s.leads_school(school_id) or school_id in s.trust_school_ids


def _clean_message(message: str) -> str:
    message = (message or "").replace("\r\n", "\n").strip()
    if len(message) > MAX_TEXT:
        raise ValidationError({"message": f"Keep the message to {MAX_TEXT:,} characters."})
    if "\x00" in message:
        raise ValidationError({"message": "The message contains a character we can't store."})
    try:
        templating.check(message)
    except templating.TemplateError as exc:
        raise ValidationError(
            {"message": "Write the message without {{ }} or {% %}: " + str(exc)}
        ) from exc
    return message


def _audience(review: ValueReview, contact_ids: list[int] | None, tag: str) -> list[Contact]:
    """Who to ask: the named contacts, else the school's contacts with the tag, else the
    cohorts of the partnership's trial phases. Always staff of the review's school linked
    to the partnership: the supplier's nudges list names whom it emailed, and the supplier
    may know only the staff linked to it."""
    linked = Contact.objects.filter(
        school_id=review.school_id, partnership_links__partnership_id=review.partnership_id
    )
    if contact_ids is not None:
        try:
            ids = {int(i) for i in contact_ids}
        except (TypeError, ValueError) as exc:
            raise ValidationError({"contact_ids": "Choose people by their ids."}) from exc
        if not ids:
            raise ValidationError({"contact_ids": "Choose at least one person."})
        chosen = list(linked.filter(pk__in=ids).distinct())
        if len(chosen) != len(ids):
            raise ValidationError(
                {"contact_ids": "Choose staff of this school who are linked to this partnership."}
            )
        return chosen
    if tag:
        if tag not in StakeholderTag.values:
            raise ValidationError({"tag": "Choose one of the stakeholder tags."})
        return list(linked.filter(tags__contains=f",{tag},").distinct())
    return list(linked.filter(trial_phases__partnership_id=review.partnership_id).distinct())


@transaction.atomic
def survey_send(
    *,
    by: User,
    review: ValueReview,
    contact_ids: list[int] | None = None,
    tag: str = "",
    message: str = "",
) -> list[SurveyInvitation]:
    """The school's lead (or trust lead) asks staff "would you notice if it was gone?".
    Audience: ``contact_ids``, else the stakeholder ``tag``, else the trial cohorts (see
    ``_audience``); erased people, those who opted out of this supplier or of everyone,
    and those already asked for this review are left out. Returns the new invitations,
    each with its nudge, due now (the dispatcher holds it to the send window and limits)."""
    if not _leads(by, review.school_id):
        raise PermissionDenied("Only the school's lead sends the staff survey.")
    locked = (
        ValueReview.objects.select_for_update()
        .select_related("partnership", "partnership__supplier")
        .get(pk=review.pk)
    )
    if locked.status != ValueReview.Status.OPEN:
        raise ValidationError({"review": "This review has been decided: the survey is closed."})
    partnership = locked.partnership
    if partnership.stage in ("paused", "ended"):
        raise ValidationError(
            {"review": f"The partnership is {partnership.stage}: no emails can go now."}
        )
    message = _clean_message(message)
    people = _audience(locked, contact_ids, tag)

    ids = [c.pk for c in people]
    opted = set(
        OptOut.objects.filter(contact_id__in=ids, supplier_id__isnull=True).values_list(
            "contact_id", flat=True
        )
    ) | set(
        OptOut.objects.filter(contact_id__in=ids, supplier_id=locked.supplier_id).values_list(
            "contact_id", flat=True
        )
    )
    asked = set(
        SurveyInvitation.objects.filter(review=locked, contact_id__in=ids).values_list(
            "contact_id", flat=True
        )
    )
    gone = erased({c.email.lower() for c in people if c.email})
    people = [
        c
        for c in people
        if c.erased_at is None
        and c.email
        and c.email.lower() not in gone
        and c.pk not in opted
        and c.pk not in asked
    ]

    lines = "\n" + message + "\n" if message else ""
    html = "<p>" + escape(message).replace("\n", "<br>\n") + "</p>\n" if message else ""
    minimum = str(settings.SURVEY_MIN_RESPONDENTS)
    # The lead's words go in last, so nothing in them is taken for our markers.
    body_text = BODY_TEXT.replace("{min}", minimum).replace("{message}", lines)
    body_html = BODY_HTML.replace("{min}", minimum).replace("{message}", html)
    now = timezone.now()
    made = []
    for contact in sorted(people, key=lambda c: c.pk):
        invitation = SurveyInvitation.objects.create(
            review=locked,
            school_id=locked.school_id,
            contact=contact,
            nonce=uuid.uuid4(),
            invited_at=now,
        )
        invitation.nudge = Nudge.objects.create(
            supplier_id=locked.supplier_id,
            school_id=locked.school_id,
            partnership=partnership,
            contact=contact,
            occurrence=f"{OCCURRENCE_PREFIX}{invitation.pk}",
            created_by=by,
            subject=SUBJECT,
            body_text=body_text,
            body_html=body_html,
            due_at=now,
            next_attempt_at=now,
        )
        invitation.save(update_fields=["nudge"])
        made.append(invitation)
    return made


def survey_close(*, review: ValueReview) -> int:
    """Once a review is decided: its survey emails not yet sent are cancelled (the link
    would only say the review has closed). Returns how many."""
    return Nudge.objects.filter(
        occurrence__startswith=OCCURRENCE_PREFIX,
        status=Nudge.Status.SCHEDULED,
        pk__in=SurveyInvitation.objects.filter(review_id=review.pk).values("nudge_id"),
    ).update(status=Nudge.Status.CANCELLED, status_reason="the review was decided")


# --- Answering --------------------------------------------------------------------------


def _clean_text(name: str, value: Any) -> str:
    value = ("" if value is None else str(value)).replace("\r\n", "\n").strip()
    if len(value) > MAX_TEXT:
        raise ValidationError({name: f"Keep this to {MAX_TEXT:,} characters."})
    if "\x00" in value:
        raise ValidationError({name: "This contains a character we can't store."})
    return value


@transaction.atomic
def survey_answer(*, token: str, notice: str, uses: str = "", change: str = "") -> SurveyInvitation:
    """Record one person's answer, once: a second answer with the same link is refused
    ("already answered"), as is any answer once the review is decided ("closed")."""
    found = read_survey_token(token)
    if found is None:
        raise ValidationError("This link is not valid.", code="invalid")
    invitation = SurveyInvitation.objects.select_for_update().get(pk=found.pk)
    if invitation.answered_at is not None:
        raise ValidationError("You have already answered: thank you.", code="already_answered")
    review = ValueReview.objects.only("status").get(pk=invitation.review_id)
    if review.status != ValueReview.Status.OPEN:
        raise ValidationError(
            "This review has closed: the school has made its decision.", code="closed"
        )
    errors = {}
    if notice not in Notice.values:
        errors["notice"] = "Choose one: not at all, a little or a lot."
    cleaned = {}
    for name, value in (("uses", uses), ("change", change)):
        try:
            cleaned[name] = _clean_text(name, value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    invitation.notice = notice
    invitation.uses = cleaned["uses"]
    invitation.change = cleaned["change"]
    invitation.answered_at = timezone.now()
    invitation.save(update_fields=["notice", "uses", "change", "answered_at"])
    return invitation


# --- What each side sees ----------------------------------------------------------------


def _tally(answered: list[SurveyInvitation]) -> dict[str, Any]:
    counts = {value: 0 for value in Notice.values}
    for r in answered:
        if r.notice in counts:
            counts[r.notice] += 1
    return {
        "counts": counts,
        "uses": sorted((r.uses for r in answered if r.uses), key=str.casefold),
        "changes": sorted((r.change for r in answered if r.change), key=str.casefold),
    }


def survey_summary(review: ValueReview, *, user: Any) -> dict[str, Any]:
    """The survey's answers as ``user`` may see them.

    School's leads (school lead, trust lead): everything, with each person's answer and
    name. The supplier's staff: how many were asked and answered, and the counts and the
    words without names, sorted (not in the order people were asked or answered), and
    only in whole steps of ``settings.SURVEY_MIN_RESPONDENTS`` answers in the order they
    came: below the first step the counts are None, the words empty and ``withheld`` True
    with the reason; after it, ``counted`` says how many answers the figures hold, so that
    comparing two readings never shows fewer than that many new answers at once (one
    more answer alone would otherwise be told apart). Anyone else: PermissionDenied."""
    s = scope_for(user)
    school_side = _leads(user, review.school_id)
    if not school_side and review.supplier_id not in s.supplier_ids:
        raise PermissionDenied("Only the school's leads and the supplier's staff see this.")
    minimum = max(1, settings.SURVEY_MIN_RESPONDENTS)
    rows = list(
        SurveyInvitation.objects.filter(review_id=review.pk)
        .select_related("contact")
        .order_by("id")
    )
    answered = [r for r in rows if r.answered_at is not None]
    out: dict[str, Any] = {
        "invited": len(rows),
        "answered": len(answered),
        "counted": len(answered),
        "min_respondents": minimum,
        "question": QUESTION.format(product=product_name(review.partnership)),
        "answers": [],
        "withheld": False,
        "withheld_reason": "",
        "note": "",
    }
    if school_side:
        out.update(_tally(answered))
        out["answers"] = [
            {
                "invitation": r.pk,
                "contact": r.contact_id,
                "name": f"{r.contact.first_name} {r.contact.last_name}".strip(),
                "notice": r.notice,
                "notice_label": Notice(r.notice).label if r.notice in Notice.values else "",
                "uses": r.uses,
                "change": r.change,
                "answered_at": r.answered_at,
            }
            for r in answered
        ]
        return out
    in_order = sorted(answered, key=lambda r: (r.answered_at, r.pk))
    released = in_order[: len(answered) // minimum * minimum]
    out["counted"] = len(released)
    if not released:
        out.update(
            counts=None,
            uses=[],
            changes=[],
            withheld=True,
            withheld_reason=(
                f"{len(answered)} of {len(rows)} staff have answered so far. The answers are "
                f"shown to the supplier from {minimum} answers, so that nobody's answer can "
                "be told apart."
            ),
        )
        return out
    out.update(_tally(released))
    if len(released) < len(answered):
        out["note"] = (
            f"These figures hold the first {len(released)} of {len(answered)} answers: they "
            f"grow {minimum} answers at a time, so that no single answer can be told apart."
        )
    return out
