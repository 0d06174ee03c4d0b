"""Subject access (UK GDPR art. 15): everything held about one person, as one JSON document.

What goes in is what the asker may see, read through each model's ``visible_to``: a school
lead gets the school's whole record of the person (never a supplier's internal messages or
notes), a supplier's staff what their supplier holds (the contact as suppliers see it, their
partnerships' tickets, visits, nudges and their own notes), a teacher their own record, the
operator (a superuser) everything under the address across schools. One query per kind of
record whatever the number of rows.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import (
    Contact,
    ContactProposal,
    Membership,
    Partnership,
    PartnershipContact,
    SupplierContactNote,
    User,
)
from accounts.scoping import scope_for
from audit.registry import tracked_models
from inbound.models import InboundEmail
from nudges.models import Nudge, NudgeEvent, NudgeReply, OptOut
from renewals.models import SurveyInvitation
from tickets.models import Ticket, TicketMessage
from visits.models import Visit

VERSION = 1

SUPPLIER_CONTACT_FIELDS = ["id", "school_id", "school__name", "first_name", "last_name", "email"]
SUPPLIER_CONTACT_FIELDS.append("job_title")
SCHOOL_CONTACT_FIELDS = [
    *SUPPLIER_CONTACT_FIELDS,
    "tags",
    "user_id",
    "created_at",
    "updated_at",
    "erased_at",
]


def _is_operator(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False))


def _rows(model: Any, by: Any) -> QuerySet[Any]:
    if _is_operator(by):
        return model._default_manager.all()
    return model.objects.visible_to(by)


def _school_side(by: Any, contacts: list[Contact]) -> bool:
    """The asker reads the school's own record (its lead, its trust's lead, the operator,
    or the person themselves)."""
    if _is_operator(by):
        return True
    s = scope_for(by)
    return all(c.school_id in s.all_school_ids or c.user_id == by.pk for c in contacts)


def subject_access(*, by: Any, contact: Contact) -> dict[str, Any]:
    """The export of one contact for the asker; 404 if they may not see the contact."""
    if not _rows(Contact, by).filter(pk=contact.pk).exists():
        raise Http404
    user = contact.user if contact.user_id else None
    return _gather(by=by, contacts=[contact], user=user, emails={contact.email.lower()})


def subject_access_for_email(*, by: Any, email: str) -> dict[str, Any]:
    """The operator's export of everything held under an address, across schools."""
    if not _is_operator(by):
        raise PermissionDenied("Only the operator exports across schools.")
    email = email.strip().lower()
    contacts = list(Contact.objects.filter(email__iexact=email).select_related("user"))
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = next((c.user for c in contacts if c.user_id), None)
    return _gather(by=by, contacts=contacts, user=user, emails={email})


def _list(qs: QuerySet[Any], *fields: str) -> list[dict[str, Any]]:
    return list(qs.order_by().values(*fields))


def _gather(
    *, by: Any, contacts: list[Contact], user: User | None, emails: set[str]
) -> dict[str, Any]:
    contact_ids = [c.pk for c in contacts]
    user_id = user.pk if user is not None else None
    school_side = _school_side(by, contacts)
    out: dict[str, Any] = {
        "format": "partnership-crm subject access",
        "version": VERSION,
        "generated_at": timezone.now(),
        "requested_by": {"id": by.pk, "email": by.email, "name": by.get_full_name()},
        "scope": "operator" if _is_operator(by) else ("school" if school_side else "supplier"),
        "subject": {"emails": sorted(emails), "contact_ids": contact_ids},
    }
    contact_fields = SCHOOL_CONTACT_FIELDS if school_side else SUPPLIER_CONTACT_FIELDS
    out["contacts"] = _list(_rows(Contact, by).filter(id__in=contact_ids), *contact_fields)
    partnerships = _rows(Partnership, by).values("id")
    out["partnership_links"] = _list(
        PartnershipContact.objects.filter(
            contact_id__in=contact_ids, partnership_id__in=partnerships
        ),
        "id",
        "contact_id",
        "partnership_id",
        "partnership__supplier__name",
        "partnership__school__name",
        "partnership__stage",
        "added_at",
    )

    by_user = Q(raised_by_id=user_id) if user_id else Q(pk__in=[])
    out["tickets_raised"] = _list(
        _rows(Ticket, by).filter(by_user),
        "id",
        "partnership_id",
        "supplier__name",
        "subject",
        "description",
        "category",
        "priority",
        "status",
        "outcome",
        "outcome_reason",
        "rating",
        "rating_comment",
        "created_at",
        "resolved_at",
        "closed_at",
    )
    from_email = InboundEmail.objects.filter(sender__in=emails).values("ticket_message_id")
    written = Q(id__in=from_email)
    if user_id:
        written |= Q(author_id=user_id)
    out["messages_written"] = _list(
        _rows(TicketMessage, by).filter(written),
        "id",
        "ticket_id",
        "body",
        "channel",
        "is_internal",
        "created_at",
    )
    out["visits_attended"] = _list(
        _rows(Visit, by).filter(contacts__in=contact_ids).distinct(),
        "id",
        "partnership_id",
        "supplier__name",
        "kind",
        "status",
        "starts_at",
        "ends_at",
        "agenda",
        "notes",
    )
    nudges = _rows(Nudge, by).filter(contact_id__in=contact_ids)
    out["nudges"] = _list(
        nudges,
        "id",
        "contact_id",
        "partnership_id",
        "supplier__name",
        "status",
        "status_reason",
        "due_at",
        "sent_at",
        "rendered_subject",
        "rendered_text",
        "delivery",
        "delivered_at",
        "opened_at",
        "clicked_at",
    )
    out["nudge_events"] = _list(
        NudgeEvent.objects.filter(nudge_id__in=nudges.values("id")),
        "id",
        "nudge_id",
        "event",
        "email",
        "occurred_at",
        "reason",
    )
    out["opt_outs"] = _list(
        _rows(OptOut, by).filter(contact_id__in=contact_ids),
        "id",
        "contact_id",
        "supplier__name",
        "source",
        "note",
        "created_at",
    )
    replies = _rows(NudgeReply, by).filter(contact_id__in=contact_ids)
    out["replies_and_stops"] = _list(
        replies,
        "id",
        "nudge_id",
        "supplier__name",
        "subject",
        "body",
        "is_auto",
        "received_at",
        "stopped_rule_id",
        "resumed_at",
    )
    inbound = InboundEmail.objects.filter(
        Q(ticket_message_id__in=_rows(TicketMessage, by).filter(written).values("id"))
        | Q(nudge_reply_id__in=replies.values("id"))
    )
    if _is_operator(by):
        inbound = InboundEmail.objects.filter(Q(sender__in=emails) | Q(pk__in=inbound.values("pk")))
    out["inbound_emails"] = _list(
        inbound, "id", "received_at", "sender", "subject", "status", "reason"
    )
    out["proposals"] = _list(
        _rows(ContactProposal, by).filter(Q(email__in=emails) | Q(contact_id__in=contact_ids)),
        "id",
        "partnership__supplier__name",
        "first_name",
        "last_name",
        "email",
        "job_title",
        "tags",
        "status",
        "proposed_at",
        "decided_at",
        "decline_reason",
    )
    # Suppliers' own notes: visible_to shows them to their supplier's staff only.
    out["supplier_notes"] = _list(
        _rows(SupplierContactNote, by).filter(contact_id__in=contact_ids),
        "id",
        "contact_id",
        "supplier__name",
        "body",
        "created_at",
        "updated_at",
    )
    # A renewal survey's answers: the school's leads (and the person themselves) see who
    # answered what; the supplier only ever sees them aggregated, without names.
    survey = _rows(SurveyInvitation, by)
    if user_id and by.pk == user_id:
        survey = survey | SurveyInvitation.objects.filter(contact__user_id=user_id)
    out["survey_answers"] = _list(
        survey.filter(contact_id__in=contact_ids),
        "id",
        "contact_id",
        "review_id",
        "review__supplier__name",
        "invited_at",
        "answered_at",
        "notice",
        "uses",
        "change",
    )
    if user is not None and school_side:
        out["user_account"] = {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "date_joined": user.date_joined,
            "last_login": user.last_login,
        }
        out["memberships"] = _list(
            Membership.objects.filter(user_id=user.pk),
            "id",
            "organisation__name",
            "organisation__kind",
            "role",
            "created_at",
        )
    else:
        out["user_account"] = None
        out["memberships"] = []
    out["audit_entries"] = _audit(by, contact_ids, user_id if school_side else None)
    return json.loads(json.dumps(out, cls=DjangoJSONEncoder))


def _audit(by: Any, contact_ids: list[int], user_id: int | None) -> list[dict[str, Any]]:
    """Historical rows of their contact record(s) and user account, and rows of the changes
    they made (history_user), each model's rows narrowed to what the asker may see."""
    entries: list[dict[str, Any]] = []
    for model, historical in tracked_models():
        about = Q(pk__in=[])
        if model is Contact:
            about = Q(id__in=contact_ids)
        elif model is User and user_id:
            about = Q(id=user_id)
        if user_id:
            about |= Q(history_user_id=user_id)
        if about == Q(pk__in=[]):
            continue
        qs = historical._default_manager.filter(about)
        if not _is_operator(by):
            visible = getattr(model._default_manager, "visible_to", None)
            if visible is None:
                continue
            qs = qs.filter(id__in=visible(by).values("pk"))
        tracked = [f.attname for f in historical.tracked_fields]
        for row in qs.order_by("history_date", "history_id").values(
            "history_id",
            "history_date",
            "history_type",
            "history_user_id",
            "history_change_reason",
            "history_channel",
            "history_via",
            *tracked,
        ):
            entry = {k: row.pop(k) for k in list(row) if k.startswith("history_")}
            entry["model"] = model._meta.label
            entry["values"] = row
            entries.append(entry)
    return entries
