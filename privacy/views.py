"""Pages: the school's "data held" list, one person's export (page or JSON), erasure.

Who: the school's lead (everything, and erase); the trust's lead (read and export, no
erase); supplier staff reach the export of a contact they see from the partnership page
(what their supplier holds only). A contact outside the user's scope is a 404.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.models import Contact, Organisation, PartnershipContact
from accounts.scoping import scope_for
from frontend.roles import LEADS, get_visible, role_required
from nudges.models import Nudge
from tickets.models import Ticket
from visits.models import Visit

from .access import subject_access
from .erasure import can_erase, erase_contact

RETENTION_LABELS = {
    "ticket_messages": "Ticket messages and attachments, after the ticket closes",
    "nudge_bodies": "The wording of emails (nudges) sent",
    "webhook_payloads": "Delivery events from the email service",
    "inbound_raw": "Raw email replies received",
    "audit": "The audit trail (who changed what)",
}


def retention() -> list[dict[str, Any]]:
    out = []
    for key, days in settings.RETENTION_DAYS.items():
        years, rest = divmod(days, 365)
        span = f"{years} year{'s' if years != 1 else ''}" if years and not rest else f"{days} days"
        out.append(
            {"key": key, "label": RETENTION_LABELS.get(key, key), "days": days, "span": span}
        )
    return out


@dataclass
class Held:
    contact: Contact
    links: list[PartnershipContact] = field(default_factory=list)
    last_nudge: datetime | None = None
    last_ticket: datetime | None = None
    last_visit: datetime | None = None

    @property
    def last_contact(self) -> tuple[str, datetime] | None:
        found = [
            (label, when)
            for label, when in (
                ("Email (nudge) sent", self.last_nudge),
                ("Ticket raised", self.last_ticket),
                ("Visit", self.last_visit),
            )
            if when is not None
        ]
        return max(found, key=lambda x: x[1]) if found else None


def _schools(user: Any) -> list[Organisation]:
    s = scope_for(user)
    return list(
        Organisation.objects.visible_to(user)
        .filter(kind=Organisation.Kind.SCHOOL, id__in=s.all_school_ids)
        .order_by("name", "id")
    )


def held_rows(user: Any, school: Organisation) -> list[Held]:
    """The school's staff with who holds them and the last contact: five queries whatever
    the number of staff."""
    contacts = list(
        Contact.objects.visible_to(user).filter(school_id=school.pk).select_related("user")
    )
    rows = {c.pk: Held(contact=c) for c in contacts}
    for link in (
        PartnershipContact.objects.filter(contact_id__in=rows)
        .select_related("partnership__supplier")
        .order_by("partnership__supplier__name", "id")
    ):
        rows[link.contact_id].links.append(link)
    for cid, when in (
        Nudge.objects.visible_to(user)
        .filter(contact_id__in=rows, sent_at__isnull=False)
        .order_by()
        .values_list("contact_id")
        .annotate(last=Max("sent_at"))
    ):
        rows[cid].last_nudge = when
    by_user = {c.user_id: c.pk for c in contacts if c.user_id}
    if by_user:
        for uid, when in (
            Ticket.objects.visible_to(user)
            .filter(raised_by_id__in=by_user, school_id=school.pk)
            .order_by()
            .values_list("raised_by_id")
            .annotate(last=Max("created_at"))
        ):
            rows[by_user[uid]].last_ticket = when
    for cid, when in (
        Visit.contacts.through.objects.filter(
            contact_id__in=rows, visit__in=Visit.objects.visible_to(user).values("id")
        )
        .order_by()
        .values_list("contact_id")
        .annotate(last=Max("visit__starts_at"))
    ):
        rows[cid].last_visit = when
    return list(rows.values())


@role_required(LEADS)
@require_http_methods(["GET", "HEAD"])
def data_held(request: HttpRequest) -> HttpResponse:
    schools = _schools(request.user)
    if not schools:
        raise Http404
    wanted = request.GET.get("school", "").strip()
    if wanted:
        school = next((s for s in schools if str(s.pk) == wanted), None)
        if school is None:
            raise Http404
    else:
        led = scope_for(request.user).lead_school_ids
        school = next((s for s in schools if s.pk in led), schools[0])
    return render(
        request,
        "privacy/data_held.html",
        {
            "school": school,
            "schools": schools,
            "rows": held_rows(request.user, school),
            "retention": retention(),
            "can_erase": scope_for(request.user).leads_school(school.pk),
        },
    )


def _contact(request: HttpRequest, pk: int) -> Contact:
    return get_visible(
        Contact.objects.visible_to(request.user).select_related("school", "user"), pk
    )


SECTIONS = [
    ("contacts", "Contact record"),
    ("partnership_links", "Linked to partnerships"),
    ("tickets_raised", "Tickets raised"),
    ("messages_written", "Messages written"),
    ("visits_attended", "Visits attended"),
    ("nudges", "Emails (nudges) sent to them"),
    ("nudge_events", "Delivery events of those emails"),
    ("opt_outs", "Opt-outs and stops"),
    ("replies_and_stops", "Their replies"),
    ("inbound_emails", "Emails received from them"),
    ("proposals", "Suppliers' proposals of them"),
    ("supplier_notes", "Your supplier's notes about them"),
    ("survey_answers", "Renewal survey answers"),
    ("memberships", "Their sign-in's roles"),
    ("audit_entries", "Audit trail entries"),
]


@login_required
@require_http_methods(["GET", "HEAD"])
def person_export(request: HttpRequest, pk: int) -> HttpResponse:
    """One person's export: a readable page, or the JSON file (``?format=json``)."""
    contact = _contact(request, pk)
    data = subject_access(by=request.user, contact=contact)
    if request.GET.get("format") == "json":
        response = HttpResponse(
            json.dumps(data, cls=DjangoJSONEncoder, indent=2),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="subject-access-{contact.pk}.json"'
        return response
    sections = []
    for key, label in SECTIONS:
        rows = data.get(key) or []
        sections.append({"key": key, "label": label, "rows": rows})
    return render(
        request,
        "privacy/person.html",
        {
            "contact": contact,
            "data": data,
            "sections": sections,
            "account": data.get("user_account"),
            "can_erase": can_erase(request.user, contact) and contact.erased_at is None,
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def person_erase(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    if not can_erase(request.user, contact):
        raise PermissionDenied("Only the school's lead erases a member of its staff.")
    if request.method == "POST":
        try:
            erasure = erase_contact(by=request.user, contact=contact)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                f"Erased: the record is now “Erased person #{erasure.contact_id}”.",
            )
        return redirect(f"{reverse('data-held')}?school={contact.school_id}")
    return render(
        request,
        "privacy/erase_confirm.html",
        {"contact": contact, "retention": retention()},
    )
