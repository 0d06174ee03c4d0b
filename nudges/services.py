"""Writes on nudges. Callers pass objects the user can already see; these check the
role (PermissionDenied -> 403) and the rules (ValidationError -> 400)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Contact, Organisation, Partnership, PartnershipContact, Stage, User
from accounts.scoping import scope_for
from partnership_crm.db import unique_or_invalid

from . import templating
from .models import Nudge, NudgeRule, NudgeTemplate, OptOut


def _require_manager(user: User, supplier_id: int) -> None:
    if not scope_for(user).manages_supplier(supplier_id):
        raise PermissionDenied("Only the supplier's admins and account managers manage nudges.")


def _check_wording(subject: str, body_text: str, body_html: str) -> None:
    errors = {}
    for name, text in (("subject", subject), ("body_text", body_text), ("body_html", body_html)):
        try:
            templating.check(text)
        except templating.TemplateError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def template_save(
    *, by: User, supplier: Organisation, instance: NudgeTemplate | None = None, **data: Any
) -> NudgeTemplate:
    _require_manager(by, supplier.pk)
    template = instance or NudgeTemplate(supplier=supplier, created_by=by)
    for name, value in data.items():
        setattr(template, name, value)
    _check_wording(template.subject, template.body_text, template.body_html)
    if (
        NudgeTemplate.objects.filter(supplier=supplier, name=template.name)
        .exclude(pk=template.pk)
        .exists()
    ):
        raise ValidationError({"name": "You already have a template with this name."})
    template.full_clean()
    # Two saves of one name at once both pass the checks above; the second breaks the
    # constraint on write.
    with unique_or_invalid(
        template_name_per_supplier=("name", "You already have a template with this name.")
    ):
        template.save()
    return template


def _check_rule(rule: NudgeRule, named: list[Contact] | None) -> None:
    T = NudgeRule.Trigger
    errors: dict[str, str] = {}
    if rule.template.supplier_id != rule.supplier_id:
        errors["template"] = "Use one of your own templates."
    if rule.partnership_id and rule.partnership.supplier_id != rule.supplier_id:
        errors["partnership"] = "Choose one of your own partnerships."
    if rule.trigger == T.CADENCE and not rule.every_n_school_weeks:
        errors["every_n_school_weeks"] = "Say how many school weeks apart."
    if (
        rule.trigger in (T.PHASE_STARTS, T.PHASE_ENDS, T.AFTER_VISIT, T.NO_CONTACT)
        and rule.days is None
    ):
        errors["days"] = "Say how many days."
    if rule.trigger == T.NO_CONTACT and (rule.days or 0) < 7:
        errors["days"] = "At least 7 days: teachers are busy."
    audience = rule.audience_tags.strip(",") or rule.audience_cohort or named
    if rule.trigger in (T.CADENCE, T.PHASE_STARTS, T.PHASE_ENDS, T.NO_CONTACT) and not audience:
        errors["audience_tags"] = (
            "Choose who: stakeholder tags, the trial cohort or named contacts."
        )
    stages = [s for s in rule.stages.split(",") if s]
    if any(s not in Stage.values for s in stages):
        errors["stages"] = "Unknown stage."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def rule_save(
    *,
    by: User,
    supplier: Organisation,
    instance: NudgeRule | None = None,
    audience_contacts: list[Contact] | None = None,
    **data: Any,
) -> NudgeRule:
    _require_manager(by, supplier.pk)
    rule = instance or NudgeRule(supplier=supplier, created_by=by)
    tags = data.pop("audience_tags", None)
    if tags is not None:
        rule.audience_tags = Contact.encode_tags(tags)
    stages = data.pop("stages", None)
    if stages is not None:
        rule.stages = ",".join(stages)
    for name, value in data.items():
        setattr(rule, name, value)
    named = (
        audience_contacts
        if audience_contacts is not None
        else (list(rule.audience_contacts.all()) if rule.pk else [])
    )
    _check_rule(rule, named)
    rule.full_clean()
    rule.save()
    if audience_contacts is not None:
        rule.audience_contacts.set(audience_contacts)
    return rule


@transaction.atomic
def nudge_create(
    *,
    by: User,
    partnership: Partnership,
    contact: Contact,
    due_at: datetime,
    template: NudgeTemplate | None = None,
    subject: str = "",
    body_text: str = "",
    body_html: str = "",
) -> Nudge:
    """A one-off nudge written by hand (or from a template), due at a time. The send
    window, consent and frequency limits still apply when it is sent."""
    _require_manager(by, partnership.supplier_id)
    if not PartnershipContact.objects.filter(partnership=partnership, contact=contact).exists():
        raise ValidationError({"contact": "Nudge people linked to this partnership only."})
    if template is not None:
        if template.supplier_id != partnership.supplier_id:
            raise ValidationError({"template": "Use one of your own templates."})
    elif not (subject.strip() and body_text.strip()):
        raise ValidationError({"body_text": "Write a subject and a message, or choose a template."})
    _check_wording(subject, body_text, body_html)
    stopped = OptOut.objects.filter(contact=contact)
    if (
        stopped.filter(supplier_id=partnership.supplier_id).exists()
        or stopped.filter(supplier__isnull=True).exists()
    ):
        raise ValidationError({"contact": "This person does not want these emails."})
    due = max(due_at, timezone.now())
    return Nudge.objects.create(
        supplier_id=partnership.supplier_id,
        school_id=partnership.school_id,
        partnership=partnership,
        contact=contact,
        template=template,
        occurrence=f"manual:{uuid.uuid4()}",
        created_by=by,
        subject=subject.strip(),
        body_text=body_text.strip(),
        body_html=body_html.strip(),
        due_at=due,
        next_attempt_at=due,
    )


def nudge_cancel(*, nudge: Nudge, by: User) -> Nudge:
    _require_manager(by, nudge.supplier_id)
    if nudge.occurrence.startswith("survey:"):
        raise PermissionDenied(
            "This is the school's staff survey; only the school's lead stops it."
        )
    cancelled = Nudge.objects.filter(pk=nudge.pk, status=Nudge.Status.SCHEDULED).update(
        status=Nudge.Status.CANCELLED, status_reason=f"cancelled by {by.get_full_name()}"
    )
    if cancelled != 1:
        raise ValidationError({"status": "Only a scheduled nudge can be cancelled."})
    return Nudge.objects.get(pk=nudge.pk)


def _require_admin(user: User, supplier_id: int) -> None:
    if not scope_for(user).is_supplier_admin(supplier_id):
        raise PermissionDenied("Only the supplier's admins decide on a nudge in doubt.")


def held_resend(*, nudge: Nudge, by: User) -> Nudge:
    """A nudge in doubt (HELD) sent again, by a supplier admin's decision: the same email
    as before (its stored rendering), within the usual windows and limits."""
    _require_admin(by, nudge.supplier_id)
    now = timezone.now()
    done = Nudge.objects.filter(pk=nudge.pk, status=Nudge.Status.HELD).update(
        status=Nudge.Status.SCHEDULED,
        next_attempt_at=now,
        send_attempted_at=None,
        decided_by=by,
        decided_at=now,
        status_reason=f"in doubt; sent again by {by.get_full_name()}"[:300],
    )
    if done != 1:
        raise ValidationError({"status": "Only a nudge held in doubt can be sent again."})
    return Nudge.objects.get(pk=nudge.pk)


def held_drop(*, nudge: Nudge, by: User) -> Nudge:
    """A nudge in doubt (HELD) left as it is: it may have arrived; it is not sent again."""
    _require_admin(by, nudge.supplier_id)
    done = Nudge.objects.filter(pk=nudge.pk, status=Nudge.Status.HELD).update(
        status=Nudge.Status.CANCELLED,
        decided_by=by,
        decided_at=timezone.now(),
        status_reason=f"in doubt; not sent again (may have arrived), by {by.get_full_name()}"[:300],
    )
    if done != 1:
        raise ValidationError({"status": "Only a nudge held in doubt can be dropped."})
    return Nudge.objects.get(pk=nudge.pk)


# --- Consent ----------------------------------------------------------------------------


def opt_out(
    *,
    contact: Contact,
    supplier: Organisation | None,
    source: str,
    by: User | None = None,
    note: str = "",
) -> OptOut:
    """Record a stop (idempotent) and cancel what is already scheduled."""
    try:
        with transaction.atomic():
            record, _ = OptOut.objects.get_or_create(
                contact=contact,
                supplier=supplier,
                defaults={"source": source, "created_by": by, "note": note},
            )
    except IntegrityError:  # a concurrent identical stop won
        record = OptOut.objects.get(contact=contact, supplier=supplier)
    pending = Nudge.objects.filter(contact=contact, status=Nudge.Status.SCHEDULED)
    if supplier is not None:
        pending = pending.filter(supplier=supplier)
    pending.update(status=Nudge.Status.SKIPPED, status_reason="the contact opted out")
    return record


def school_stop(
    *, by: User, contact: Contact, supplier: Organisation | None, note: str = ""
) -> OptOut:
    """A school lead stops a supplier (or every supplier) contacting a member of staff."""
    if not scope_for(by).leads_school(contact.school_id):
        raise PermissionDenied("Only the school's lead stops suppliers contacting staff.")
    return opt_out(
        contact=contact, supplier=supplier, source=OptOut.Source.SCHOOL_LEAD, by=by, note=note
    )


def opt_out_remove(*, record: OptOut, by: User) -> None:
    """Only whoever made a stop may lift it: the school lead their own stops, a member of
    staff their own opt-out. Nobody else overrides a person's choice."""
    s = scope_for(by)
    if record.source == OptOut.Source.SCHOOL_LEAD and s.leads_school(record.contact.school_id):
        record.delete()
        return
    if record.contact.user_id == by.pk and record.source in (
        OptOut.Source.LINK,
        OptOut.Source.ONE_CLICK,
    ):
        record.delete()
        return
    raise PermissionDenied(
        "Only the person who asked (or the school lead who stopped it) may lift this."
    )
