"""Erasure of a person (UK GDPR art. 17), in one transaction.

Name, email and the free text the person wrote are replaced by a pseudonym
("Erased person #<contact id>", ``erased-<contact id>@erased.invalid``) in the live rows and
in every historical (django-simple-history) row, kept in place with their ids and dates.
The rows reports count stay (tickets, their status and timestamps, sent nudges, opt-outs),
so the scorecards read the same before and after. What only identifies the person goes:
their user account's sign-in (deactivated, unusable password, memberships, API tokens,
sessions, calendar feed), the suppliers' notes about them, django-axes' log lines with
their address. Their address is kept only as a keyed hash (``accounts.ErasedAddress``),
which contact creation, proposals and the nudge dispatcher refuse.

After the targeted changes, every text and JSON column of every table (project apps and
third-party alike, historical tables included) is swept for the address, its local part
and the full name; the single first and last names are swept in the rows about the
person (their tickets and the messages on them, their nudges, replies, visits, proposals).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from accounts.models import (
    Contact,
    ContactProposal,
    ErasedAddress,
    Membership,
    SupplierContactNote,
)
from accounts.privacy_hash import email_hash
from accounts.scoping import scope_for
from audit.registry import historical_model_for
from inbound.models import InboundEmail
from nudges.models import Nudge, NudgeEvent, NudgeReply, OptOut, Suppression
from renewals.models import SurveyInvitation
from tickets.models import Ticket, TicketMessage
from visits.models import CalendarFeed, Visit

from .models import Erasure

ERASED_TEXT = "(erased at the school's request)"
TEXT_FIELDS = (models.CharField, models.TextField)
MIN_NEEDLE = 4  # shorter local parts / names are not swept across the whole database


def pseudonym_name(contact_id: int) -> str:
    return f"Erased person #{contact_id}"


def pseudonym_email(key: str | int) -> str:
    return f"erased-{key}@erased.invalid"


class Operator:
    """The operator at the command line (``manage.py erase_person``, ``subject_access``):
    a superuser who is not a signed-in user."""

    pk = None
    is_superuser = True
    is_authenticated = True
    email = ""

    def get_full_name(self) -> str:
        return "the operator (manage.py)"

    def __str__(self) -> str:
        return self.get_full_name()


def can_erase(user: Any, contact: Contact) -> bool:
    return bool(user.is_superuser) or scope_for(user).leads_school(contact.school_id)


def erase_contact(*, by: Any, contact: Contact) -> Erasure:
    """The school's lead erases one of their staff; a superuser (operator) anyone. Someone
    who sees the record but may not erase it: 403; a record outside their scope: 404."""
    if not by.is_superuser:
        if not Contact.objects.visible_to(by).filter(pk=contact.pk).exists():
            raise Http404
        if not scope_for(by).leads_school(contact.school_id):
            raise PermissionDenied("Only the school's lead erases a member of its staff.")
    if contact.erased_at is not None:
        raise ValidationError({"contact": "This person has already been erased."})
    users = [contact.user] if contact.user_id else []
    return _erase(by=by, contacts=[contact], users=users)


def erase_person(*, by: Any, email: str) -> Erasure:
    """The operator's erasure of everyone held under an address: every contact (at any
    school) and the user account."""
    if not by.is_superuser:
        raise PermissionDenied("Only the operator erases a person across schools.")
    email = email.strip().lower()
    contacts = list(Contact.objects.filter(email__iexact=email, erased_at__isnull=True))
    user_model = get_user_model()
    users = {u.pk: u for u in user_model.objects.filter(email__iexact=email)}
    for c in contacts:
        if c.user_id and c.user_id not in users:
            users[c.user_id] = c.user
    if not contacts and not users:
        raise ValidationError({"email": "Nobody is held under this address."})
    return _erase(by=by, contacts=contacts, users=list(users.values()), extra_emails={email})


class _Run:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, model: type[models.Model], n: int) -> None:
        if n:
            self.counts[model._meta.label] += n

    def set(self, model: type[models.Model], ids: list[Any], values: dict[str, Any]) -> None:
        """The same values on the rows and on every historical row of them."""
        if not ids:
            return
        manager = model._default_manager
        self.add(model, manager.filter(pk__in=ids).update(**values))
        historical = historical_model_for(model)
        if historical is not None:
            names = {f.name for f in historical._meta.fields}
            hist_values = {k: v for k, v in values.items() if k in names}
            if hist_values:
                n = historical._default_manager.filter(id__in=ids).update(**hist_values)
                self.add(historical, n)


@transaction.atomic
def _erase(
    *,
    by: Any,
    contacts: list[Contact],
    users: list[Any],
    extra_emails: set[str] | None = None,
) -> Erasure:
    now = timezone.now()
    run = _Run()
    contact_ids = [c.pk for c in contacts]
    user_ids = [u.pk for u in users]
    key = contact_ids[0] if contact_ids else f"u{user_ids[0]}"
    fake_name = pseudonym_name(contact_ids[0]) if contact_ids else f"Erased user #{user_ids[0]}"
    fake_email = pseudonym_email(key)

    emails = {e.lower() for e in [*(c.email for c in contacts), *(u.email for u in users)] if e}
    emails |= extra_emails or set()
    full_names = {f"{c.first_name} {c.last_name}".strip() for c in contacts}
    full_names |= {u.full_name.strip() for u in users if u.full_name.strip()}
    name_parts = {p for c in contacts for p in (c.first_name, c.last_name) if len(p) >= 2}
    name_parts |= {p for n in full_names for p in n.split() if len(p) >= 2}
    local_parts = {e.split("@")[0] for e in emails}

    # Global needles: the addresses, their (distinctive) local parts, the full names.
    global_subs = [(e, fake_email) for e in emails]
    global_subs += [(lp, fake_email.split("@")[0]) for lp in local_parts if len(lp) >= MIN_NEEDLE]
    global_subs += [(n, fake_name) for n in full_names if len(n) >= MIN_NEEDLE and " " in n]
    # In the rows about the person: their single names too.
    related_subs = global_subs + [(p, fake_name) for p in name_parts]

    # --- The person's own records ------------------------------------------------------
    for c in contacts:
        run.set(
            Contact,
            [c.pk],
            {
                "first_name": "Erased",
                "last_name": f"person #{c.pk}",
                "email": pseudonym_email(c.pk),
                "job_title": "",
                "tags": "",
            },
        )
    user_model = get_user_model()
    for u in users:
        u.email = pseudonym_email(f"user-{u.pk}")
        u.full_name = fake_name
        u.is_active = False
        u.is_staff = False
        u.is_superuser = False
        u.set_unusable_password()
        run.set(
            user_model,
            [u.pk],
            {
                "email": u.email,
                "full_name": u.full_name,
                "is_active": False,
                "is_staff": False,
                "is_superuser": False,
                "password": u.password,
            },
        )
    if user_ids:
        memberships = list(Membership.objects.filter(user_id__in=user_ids))
        for m in memberships:
            m._change_reason = "the person was erased"
            m.delete()
        run.add(Membership, len(memberships))
        _delete(
            run, apps.get_model("knox", "AuthToken")._default_manager.filter(user_id__in=user_ids)
        )
        _delete(run, CalendarFeed.objects.filter(user_id__in=user_ids))
        _delete_sessions(run, {str(uid) for uid in user_ids})
        user_model._default_manager.filter(pk__in=user_ids).update(last_login=None)

    # --- What they wrote ----------------------------------------------------------------
    ticket_ids = list(Ticket.objects.filter(raised_by_id__in=user_ids).values_list("id", flat=True))
    run.set(
        Ticket,
        ticket_ids,
        {
            "subject": "Erased ticket",
            "description": ERASED_TEXT,
            "rating_comment": "",
            "search_document": f"Erased ticket\n{ERASED_TEXT}",
        },
    )
    inbound = InboundEmail.objects.filter(sender__in=emails)
    inbound_message_ids = [m for m in inbound.values_list("ticket_message_id", flat=True) if m]
    message_ids = list(
        TicketMessage.objects.filter(
            Q(author_id__in=user_ids) | Q(id__in=inbound_message_ids)
        ).values_list("id", flat=True)
    )
    run.set(TicketMessage, message_ids, {"body": ERASED_TEXT})
    inbound_ids = list(
        InboundEmail.objects.filter(
            Q(sender__in=emails) | Q(ticket_message_id__in=message_ids)
        ).values_list("id", flat=True)
    )
    run.set(InboundEmail, inbound_ids, {"sender": fake_email, "subject": ""})

    # --- Nudges to them, their replies and opt-outs --------------------------------------
    nudge_ids = list(Nudge.objects.filter(contact_id__in=contact_ids).values_list("id", flat=True))
    cancel = Nudge.objects.filter(
        id__in=nudge_ids, status__in=[Nudge.Status.SCHEDULED, Nudge.Status.HELD]
    )
    run.add(
        Nudge,
        cancel.update(
            status=Nudge.Status.CANCELLED, status_reason="the person was erased", updated_at=now
        ),
    )
    run.set(
        Nudge,
        nudge_ids,
        {
            "subject": "",
            "body_text": "",
            "body_html": "",
            "rendered_subject": "",
            "rendered_text": "",
            "rendered_html": "",
            "last_error": "",
        },
    )
    event_ids = list(
        NudgeEvent.objects.filter(Q(nudge_id__in=nudge_ids) | Q(email__in=emails)).values_list(
            "id", flat=True
        )
    )
    run.set(NudgeEvent, event_ids, {"email": fake_email, "reason": ""})
    reply_ids = list(
        NudgeReply.objects.filter(contact_id__in=contact_ids).values_list("id", flat=True)
    )
    run.set(NudgeReply, reply_ids, {"subject": "", "body": ERASED_TEXT})
    opt_out_ids = list(
        OptOut.objects.filter(contact_id__in=contact_ids).values_list("id", flat=True)
    )
    run.set(OptOut, opt_out_ids, {"note": ""})
    # Staff survey answers (renewals): their words go; the tick stays in the review's counts.
    invitation_ids = list(
        SurveyInvitation.objects.filter(contact_id__in=contact_ids).values_list("id", flat=True)
    )
    run.set(SurveyInvitation, invitation_ids, {"uses": "", "change": ""})

    # --- Proposals of their address (any supplier), suppliers' notes -----------------------
    proposals = ContactProposal.objects.filter(Q(email__in=emails) | Q(contact_id__in=contact_ids))
    pending = list(
        proposals.filter(status=ContactProposal.Status.PENDING).values_list("id", flat=True)
    )
    run.set(
        ContactProposal,
        pending,
        {
            "status": ContactProposal.Status.DECLINED,
            "decided_at": now,
            "decided_by_id": by.pk if isinstance(by, models.Model) else None,
        },
    )
    for pid in list(proposals.values_list("id", flat=True)):
        run.set(
            ContactProposal,
            [pid],
            {
                "first_name": "Erased",
                "last_name": "person",
                "email": pseudonym_email(f"proposal-{pid}"),
                "job_title": "",
                "tags": "",
                "decline_reason": "The person was erased at the school's request.",
            },
        )
    _delete(run, SupplierContactNote.objects.filter(contact_id__in=contact_ids))

    # --- Sign-in logs, suppression ---------------------------------------------------------
    axes_q = Q()
    for e in emails:
        axes_q |= Q(username__iexact=e)
    for name in ("AccessAttempt", "AccessLog", "AccessFailureLog"):
        try:
            model = apps.get_model("axes", name)
        except LookupError:
            continue
        _delete(run, model._default_manager.filter(axes_q))
    _delete(run, Suppression.objects.filter(email__in=emails))
    for e in emails:
        _, created = ErasedAddress.objects.get_or_create(email_hash=email_hash(e))
        run.add(ErasedAddress, int(created))

    # --- What is left anywhere: sweeps ------------------------------------------------------
    visit_ids = list(
        Visit.contacts.through.objects.filter(contact_id__in=contact_ids).values_list(
            "visit_id", flat=True
        )
    )
    related = {
        Ticket: ticket_ids,
        TicketMessage: list(
            TicketMessage.objects.filter(ticket_id__in=ticket_ids).values_list("id", flat=True)
        ),
        apps.get_model("tickets", "TicketEvent"): list(
            apps.get_model("tickets", "TicketEvent")
            .objects.filter(ticket_id__in=ticket_ids)
            .values_list("id", flat=True)
        ),
        apps.get_model("tickets", "TicketAttachment"): list(
            apps.get_model("tickets", "TicketAttachment")
            .objects.filter(ticket_id__in=ticket_ids)
            .values_list("id", flat=True)
        ),
        Nudge: nudge_ids,
        NudgeReply: reply_ids,
        Visit: visit_ids,
        OptOut: opt_out_ids,
        Contact: contact_ids,
    }
    related_pattern = _pattern(related_subs)
    for model, ids in related.items():
        if ids:
            _sweep(run, model._default_manager.filter(pk__in=ids), related_pattern, related_subs)
            historical = historical_model_for(model)
            if historical is not None:
                qs = historical._default_manager.filter(id__in=ids)
                _sweep(run, qs, related_pattern, related_subs)
    global_pattern = _pattern(global_subs)
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed or model._meta.label == "sessions.Session":
            continue
        _sweep(run, model._default_manager.all(), global_pattern, global_subs)

    # --- The audit trail and the record of the erasure ------------------------------------
    reason = f"erased at the school's request by {by}"
    for c in contacts:
        fresh = Contact.objects.get(pk=c.pk)
        fresh.erased_at = now
        fresh._change_reason = reason
        fresh.save(update_fields=["erased_at", "updated_at"])
    first = contacts[0] if contacts else None
    return Erasure.objects.create(
        by=by if isinstance(by, models.Model) else None,
        at=now,
        contact_id=first.pk if first else None,
        school_id=first.school_id if first else None,
        user_id=user_ids[0] if user_ids else None,
        counts=dict(sorted(run.counts.items())),
    )


def _delete(run: _Run, qs: models.QuerySet) -> None:
    _, per_model = qs.delete()
    for label, n in per_model.items():
        if n:
            run.counts[label] += n


def _delete_sessions(run: _Run, user_ids: set[str]) -> None:
    """Signed-in sessions of the person (also void anyway: the password hash changed)."""
    session_model = apps.get_model("sessions", "Session")
    doomed = []
    for s in session_model.objects.filter(expire_date__gt=timezone.now()).iterator():
        try:
            uid = s.get_decoded().get("_auth_user_id")
        except Exception:
            continue
        if uid in user_ids:
            doomed.append(s.pk)
    if doomed:
        _delete(run, session_model.objects.filter(pk__in=doomed))


def _pattern(subs: list[tuple[str, str]]) -> re.Pattern[str] | None:
    needles = sorted({n for n, _ in subs if n}, key=len, reverse=True)
    if not needles:
        return None
    alternatives = [rf"(?<![\w.+-]){re.escape(n)}(?![\w-])" for n in needles]
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _replace(pattern: re.Pattern[str], subs: list[tuple[str, str]], text: str) -> str:
    lookup = {n.lower(): r for n, r in subs}
    return pattern.sub(lambda m: lookup.get(m.group(0).lower(), "(erased)"), text)


def _replace_json(pattern: re.Pattern[str], subs: list[tuple[str, str]], value: Any) -> Any:
    if isinstance(value, str):
        return _replace(pattern, subs, value)
    if isinstance(value, list):
        return [_replace_json(pattern, subs, v) for v in value]
    if isinstance(value, dict):
        return {
            _replace(pattern, subs, k): _replace_json(pattern, subs, v) for k, v in value.items()
        }
    return value


def _sweep(
    run: _Run, qs: models.QuerySet, pattern: re.Pattern[str] | None, subs: list[tuple[str, str]]
) -> None:
    """Replace the needles in every text and JSON column of the rows of ``qs`` (one
    SELECT per column, then a write per row that held one)."""
    if pattern is None:
        return
    model = qs.model
    needles = {n for n, _ in subs}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.choices:
            continue
        if isinstance(field, TEXT_FIELDS):
            lookup = Q()
            for n in needles:
                lookup |= Q(**{f"{field.attname}__icontains": n})
            rows = qs.filter(lookup).values_list("pk", field.attname)
            for pk, text in rows:
                new = _replace(pattern, subs, text or "")
                if new != text:
                    value = new[: field.max_length] if field.max_length else new
                    model._default_manager.filter(pk=pk).update(**{field.attname: value})
                    run.add(model, 1)
        elif isinstance(field, models.JSONField):
            lookup = Q()
            as_text = Cast(field.attname, models.TextField())
            annotated = qs.annotate(_as_text=as_text)
            for n in needles:
                lookup |= Q(_as_text__icontains=n)
                # JSON escapes non-ASCII; addresses and names of interest are matched as is.
            for pk, value in annotated.filter(lookup).values_list("pk", field.attname):
                new = _replace_json(pattern, subs, value)
                if json.dumps(new) != json.dumps(value):
                    model._default_manager.filter(pk=pk).update(**{field.attname: new})
                    run.add(model, 1)
