"""Writes on accounts objects. Callers pass an object the user can already see; these
functions check what the user's role allows (PermissionDenied -> 403) and the rules
(ValidationError -> 400)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.history import record_changes

from .hooks import promise_changed
from .models import (
    Contact,
    ContactProposal,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    Stage,
    StageChange,
    SuccessCriterion,
    SupplierContactNote,
    TrialPhase,
    User,
)
from .privacy_hash import erased
from .scoping import scope_for
from .stages import PILOT_GATE_MESSAGE, allowed_next, is_technically_ready


class StageRefused(ValidationError):
    """A refused stage move; carries the stages the partnership may move to instead."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__({"stage": [message]})
        self.allowed = allowed


def _require_manager(user: User, supplier_id: int) -> None:
    if not scope_for(user).manages_supplier(supplier_id):
        raise PermissionDenied("Only the supplier's admins and account managers may do this.")


def _save_unique(instance: Any, message: dict[str, str]) -> None:
    """Insert; a concurrent insert that wins the unique constraint becomes a 400."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise ValidationError(message) from exc


def _apply(instance: Any, data: dict[str, Any]) -> list[str]:
    fields = []
    for name, value in data.items():
        setattr(instance, name, value)
        fields.append(name)
    return fields


# --- Partnerships ---------------------------------------------------------------------


@transaction.atomic
def partnership_create(
    *,
    by: User,
    supplier: Organisation,
    school: Organisation,
    products: list[Product] | None = None,
    **fields: Any,
) -> Partnership:
    _require_manager(by, supplier.pk)
    fields.pop("reason", None)  # only for lowering the promise of an existing agreement
    if school.kind != Organisation.Kind.SCHOOL:
        raise ValidationError({"school": "Choose a school."})
    if any(p.supplier_id != supplier.pk for p in products or []):
        raise ValidationError({"products": "Products must be the supplier's own."})
    if (
        Partnership.objects.filter(supplier=supplier, school=school)
        .exclude(stage=Stage.ENDED)
        .exists()
    ):
        raise ValidationError({"school": "This school already has a live partnership with you."})
    fields.setdefault("account_manager", by)
    partnership = Partnership(supplier=supplier, school=school, **fields)
    partnership.full_clean(exclude=["products", "contacts"])
    _save_unique(partnership, {"school": "This school already has a live partnership with you."})
    if products:
        partnership.products.set(products)
    StageChange.objects.create(
        partnership=partnership, from_stage="", to_stage=partnership.stage, by=by
    )
    return partnership


PROMISE_REASON_REQUIRED = (
    "Lowering the on-site hours promised per term changes whether the supplier is behind: "
    "say why in 'reason' (the school's leads see it)."
)


@transaction.atomic
def partnership_update(
    *, partnership: Partnership, by: User, reason: str = "", **data: Any
) -> Partnership:
    """Change the agreement (products, account manager, targets, limits, dates). The row
    is locked and re-read first, and only the fields that change are written. Lowering
    ``onsite_hours_per_term`` needs a ``reason``: the registered promise-change callbacks
    (accounts.hooks; visits records it for the school) see old and new hours and it."""
    _require_manager(by, partnership.supplier_id)
    locked = Partnership.objects.select_for_update(of=("self",)).get(pk=partnership.pk)
    products = data.pop("products", None)
    manager = data.get("account_manager")
    if manager is not None and not scope_for(manager).supplier_role(locked.supplier_id):
        raise ValidationError({"account_manager": "Choose a member of the supplier's staff."})
    if products is not None and any(p.supplier_id != locked.supplier_id for p in products):
        raise ValidationError({"products": "Products must be the supplier's own."})
    changed = {name: value for name, value in data.items() if getattr(locked, name) != value}
    old_hours = locked.onsite_hours_per_term
    fields = _apply(locked, changed)
    locked.full_clean(exclude=["products", "contacts"])
    if "onsite_hours_per_term" in changed:
        new_hours = locked.onsite_hours_per_term
        if new_hours < old_hours and not reason.strip():
            raise ValidationError({"reason": PROMISE_REASON_REQUIRED})
        promise_changed(
            partnership=locked,
            by=by,
            old_hours=old_hours,
            new_hours=new_hours,
            reason=reason.strip(),
        )
    if fields:
        locked.save(update_fields=[*fields, "updated_at"])
    if products is not None:
        locked.products.set(products)
    return locked


@transaction.atomic
def partnership_transition(
    *,
    partnership: Partnership,
    to_stage: str,
    by: User,
    override_reason: str = "",
    reason: str = "",
) -> Partnership:
    """Move a partnership to another stage, enforcing the machine and the pilot gate.
    ``reason`` is recorded with an ordinary move (e.g. the trial decision behind it);
    ``override_reason`` is the supplier admin's reason for passing the pilot gate."""
    _require_manager(by, partnership.supplier_id)
    # Lock the row so two concurrent moves cannot both read the same starting stage.
    locked = Partnership.objects.select_for_update().get(pk=partnership.pk)
    allowed = allowed_next(locked)
    if to_stage not in allowed:
        raise StageRefused(
            f"A partnership in '{locked.stage}' cannot move to '{to_stage}'.", allowed
        )
    override_reason = override_reason.strip()
    is_override = False
    if to_stage == Stage.PILOT and not is_technically_ready(locked):
        if not override_reason:
            raise StageRefused(PILOT_GATE_MESSAGE, allowed)
        if not scope_for(by).is_supplier_admin(locked.supplier_id):
            raise PermissionDenied("Only a supplier admin may override the technical review.")
        is_override = True
    return _move(locked, to_stage, by, override_reason or reason.strip(), is_override)


def _move(
    locked: Partnership, to_stage: str, by: User, reason: str, is_override: bool = False
) -> Partnership:
    now = timezone.now()
    StageChange.objects.create(
        partnership=locked,
        from_stage=locked.stage,
        to_stage=to_stage,
        by=by,
        at=now,
        is_override=is_override,
        reason=reason,
    )
    locked.stage_before_pause = locked.stage if to_stage == Stage.PAUSED else ""
    locked.stage = to_stage
    locked.stage_changed_at = now
    locked.save(update_fields=["stage", "stage_before_pause", "stage_changed_at", "updated_at"])
    return locked


@transaction.atomic
def partnership_end_by_school(*, partnership: Partnership, by: User, reason: str) -> Partnership:
    """The school's lead ends a partnership (a renewal decided against): the one stage
    move a school makes. Every stage may end; an ended one stays ended."""
    s = scope_for(by)
    if not (s.leads_school(partnership.school_id) or partnership.school_id in s.trust_school_ids):
        raise PermissionDenied("Only the school's lead may end the partnership.")
    locked = Partnership.objects.select_for_update().get(pk=partnership.pk)
    if locked.stage == Stage.ENDED:
        return locked
    return _move(locked, Stage.ENDED, by, reason.strip())


# --- Products -------------------------------------------------------------------------


def _require_supplier_admin(user: User, supplier_id: int) -> None:
    if not scope_for(user).is_supplier_admin(supplier_id):
        raise PermissionDenied("Only the supplier's admins may change its products.")


@transaction.atomic
def product_create(*, by: User, supplier: Organisation, **fields: Any) -> Product:
    _require_supplier_admin(by, supplier.pk)
    if Product.objects.filter(supplier=supplier, name=fields.get("name")).exists():
        raise ValidationError({"name": "You already have a product with this name."})
    product = Product(supplier=supplier, **fields)
    product.full_clean()
    _save_unique(product, {"name": "You already have a product with this name."})
    return product


@transaction.atomic
def product_update(*, product: Product, by: User, **data: Any) -> Product:
    _require_supplier_admin(by, product.supplier_id)
    name = data.get("name")
    if (
        name
        and Product.objects.filter(supplier_id=product.supplier_id, name=name)
        .exclude(pk=product.pk)
        .exists()
    ):
        raise ValidationError({"name": "You already have a product with this name."})
    fields = _apply(product, data)
    product.full_clean()
    product.save(update_fields=fields)
    return product


def product_delete(*, product: Product, by: User) -> None:
    _require_supplier_admin(by, product.supplier_id)
    if product.partnerships.exists():
        raise ValidationError(
            {"product": "This product is part of partnerships; mark it inactive instead."}
        )
    product.delete()


# --- Contacts -------------------------------------------------------------------------


def link_contacts(partnership: Partnership, contacts: Iterable[Contact], by: User) -> None:
    """Make the contacts part of the partnership (who the supplier may contact there); one
    insert whatever their number, and linking someone already linked changes nothing."""
    contacts = list(contacts)
    already = set(
        PartnershipContact.objects.filter(
            partnership=partnership, contact__in=contacts
        ).values_list("contact_id", flat=True)
    )
    PartnershipContact.objects.bulk_create(
        [PartnershipContact(partnership=partnership, contact=c, added_by=by) for c in contacts],
        ignore_conflicts=True,
    )
    # bulk_create writes no history (and returns no ids with ignore_conflicts): the new links'.
    new = [c.pk for c in contacts if c.pk not in already]
    if new:
        record_changes(
            PartnershipContact.objects.filter(partnership=partnership, contact_id__in=new),
            history_type="+",
            user=by,
        )


ERASED_MESSAGE = (
    "This person was erased at the school's request: their address may not be added again."
)


def _refuse_erased(email: str) -> None:
    if email and erased({email}):
        raise ValidationError({"email": ERASED_MESSAGE})


SUPPLIERS_PROPOSE = (
    "A school's staff record is the school's: propose the person with POST "
    "/api/v1/contact-proposals/ and the school's lead adds them."
)


@transaction.atomic
def contact_create(
    *,
    by: User,
    school: Organisation | None = None,
    partnership: Partnership | None = None,
    tags: list[str] | None = None,
    **fields: Any,
) -> Contact:
    """Only a school's lead adds staff to the school (optionally linking them to one of
    the school's partnerships). Suppliers propose (contact_proposal_create): a direct add
    would tell them, by its answer, which addresses the school already holds."""
    s = scope_for(by)
    if partnership is not None:
        if school is not None and school.pk != partnership.school_id:
            raise ValidationError(
                {"school": "The contact must belong to the partnership's school."}
            )
        school = partnership.school
    if school is None:
        raise ValidationError({"school": "Give the school (or a partnership) for this contact."})
    if not s.leads_school(school.pk):
        raise PermissionDenied(
            SUPPLIERS_PROPOSE if s.is_supplier_staff else "Only the school's lead adds staff."
        )
    email = (fields.get("email") or "").lower()
    _refuse_erased(email)
    if Contact.objects.filter(school=school, email=email).exists():
        raise ValidationError({"email": "This school already has a contact with this email."})
    contact = Contact(school=school, **{**fields, "email": email})
    contact.tags = Contact.encode_tags(tags or [])
    contact.full_clean()
    _save_unique(contact, {"email": "This school already has a contact with this email."})
    if partnership is not None:
        link_contacts(partnership, [contact], by)
    return contact


@transaction.atomic
def contact_update(
    *, contact: Contact, by: User, tags: list[str] | None = None, **data: Any
) -> Contact:
    # A staff record belongs to the school: a supplier's edit would change the name,
    # address and tags every other supplier's nudges use.
    if not scope_for(by).leads_school(contact.school_id):
        raise PermissionDenied(
            "This is the school's record of its staff: ask the school's lead to correct it."
        )
    if "email" in data:
        data["email"] = data["email"].lower()
    fields = _apply(contact, data)
    if tags is not None:
        contact.tags = Contact.encode_tags(tags)
        fields.append("tags")
    contact.full_clean()
    try:
        with transaction.atomic():
            contact.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as exc:
        # Two edits giving one address at once both pass full_clean; the second breaks the
        # constraint on write (a 500 before).
        raise ValidationError(
            {"email": "The school already has a member of staff with this address."}
        ) from exc
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, by: User) -> None:
    """Erasure is the school's call (UK GDPR): only its lead deletes a staff record."""
    if not scope_for(by).leads_school(contact.school_id):
        raise PermissionDenied("Only the school's lead may delete a staff record.")
    contact.delete()


# --- Contact proposals and suppliers' notes ------------------------------------------------


@transaction.atomic
def contact_proposal_create(
    *, by: User, partnership: Partnership, tags: list[str] | None = None, **fields: Any
) -> ContactProposal:
    """A supplier's admin or account manager proposes a member of the school's staff for
    its partnership. The answer is the same whether or not the school already holds a
    record for the address: only the school's lead learns that ("link to existing")."""
    _require_manager(by, partnership.supplier_id)
    if partnership.stage == Stage.ENDED:
        raise ValidationError({"partnership": "This partnership has ended."})
    email = (fields.pop("email", "") or "").strip().lower()
    _refuse_erased(email)
    linked = Contact.objects.filter(
        school_id=partnership.school_id, email=email, partnership_links__partnership=partnership
    )
    if linked.exists():  # the supplier already sees this person: nothing is revealed
        raise ValidationError({"email": "This person is already a contact of this partnership."})
    if ContactProposal.objects.pending().filter(partnership=partnership, email=email).exists():
        raise ValidationError({"email": "You have already proposed this address; it is pending."})
    proposal = ContactProposal(
        partnership=partnership,
        email=email,
        tags=Contact.encode_tags(tags or []),
        proposed_by=by,
        **fields,
    )
    proposal.full_clean(exclude=["contact"])
    _save_unique(proposal, {"email": "You have already proposed this address; it is pending."})
    return proposal


def existing_contact_for(proposal: ContactProposal) -> Contact | None:
    """The school's record for the proposed address, if it holds one. For the school's
    side only: never shown to the proposing supplier."""
    return Contact.objects.filter(
        school_id=proposal.partnership.school_id, email=proposal.email
    ).first()


def _lock_pending(proposal: ContactProposal, by: User) -> ContactProposal:
    """Lock and re-read the proposal; only the school's own lead decides, once."""
    locked = (
        ContactProposal.objects.select_for_update(of=("self",))
        .select_related("partnership")
        .get(pk=proposal.pk)
    )
    if not scope_for(by).leads_school(locked.partnership.school_id):
        raise PermissionDenied("Only the school's lead accepts or declines a proposed contact.")
    if locked.status != ContactProposal.Status.PENDING:
        raise ValidationError(
            {"status": f"This proposal was already {locked.get_status_display().lower()}."}
        )
    return locked


@transaction.atomic
def contact_proposal_accept(*, proposal: ContactProposal, by: User) -> ContactProposal:
    """Accept: link the school's existing record for the address (kept as the school
    holds it), or create the contact from the proposal; either way linked to the
    proposing partnership. Nobody is emailed."""
    proposal = _lock_pending(proposal, by)
    _refuse_erased(proposal.email)
    partnership = proposal.partnership
    contact = existing_contact_for(proposal)
    if contact is None:
        contact = Contact(
            school_id=partnership.school_id,
            first_name=proposal.first_name,
            last_name=proposal.last_name,
            email=proposal.email,
            job_title=proposal.job_title,
            tags=proposal.tags,
        )
        # Uniqueness is the database's to settle: an address added meanwhile (by the lead,
        # or by accepting another supplier's proposal of it) is linked, not refused.
        contact.full_clean(validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                contact.save()
        except IntegrityError:  # the lead added the same address meanwhile
            contact = Contact.objects.get(school_id=partnership.school_id, email=proposal.email)
    link_contacts(partnership, [contact], by)
    proposal.status = ContactProposal.Status.ACCEPTED
    proposal.contact = contact
    proposal.decided_by = by
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "contact", "decided_by", "decided_at"])
    return proposal


@transaction.atomic
def contact_proposal_decline(
    *, proposal: ContactProposal, by: User, reason: str = ""
) -> ContactProposal:
    """Decline, with an optional reason the supplier sees. Nobody is emailed."""
    proposal = _lock_pending(proposal, by)
    proposal.status = ContactProposal.Status.DECLINED
    proposal.decline_reason = reason.strip()
    proposal.decided_by = by
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "decline_reason", "decided_by", "decided_at"])
    return proposal


def _require_supplier_staff(user: User, supplier_id: int) -> None:
    if not scope_for(user).supplier_role(supplier_id):
        raise PermissionDenied("Only the supplier's own staff keep its notes.")


NOTE_EXISTS = "You already have a note on this contact: change it with PATCH."


@transaction.atomic
def contact_note_create(
    *, by: User, supplier: Organisation, contact: Contact, body: str
) -> SupplierContactNote:
    """A supplier's own note on a contact it works with (one per supplier and contact)."""
    _require_supplier_staff(by, supplier.pk)
    works_with = PartnershipContact.objects.filter(
        contact=contact, partnership__supplier=supplier
    ).exists()
    if not works_with:
        raise ValidationError(
            {"contact": "This person is not a contact of any of the supplier's partnerships."}
        )
    if SupplierContactNote.objects.filter(supplier=supplier, contact=contact).exists():
        raise ValidationError({"contact": NOTE_EXISTS})
    note = SupplierContactNote(supplier=supplier, contact=contact, body=body, updated_by=by)
    note.full_clean()
    _save_unique(note, {"contact": NOTE_EXISTS})
    return note


@transaction.atomic
def contact_note_update(*, note: SupplierContactNote, by: User, body: str) -> SupplierContactNote:
    _require_supplier_staff(by, note.supplier_id)
    note.body = body
    note.updated_by = by
    note.full_clean()
    note.save(update_fields=["body", "updated_by", "updated_at"])
    return note


def contact_note_delete(*, note: SupplierContactNote, by: User) -> None:
    _require_supplier_staff(by, note.supplier_id)
    note.delete()


# --- Schools ----------------------------------------------------------------------------


def require_school_lead(user: User, org: Organisation) -> None:
    """Only a school's own lead changes the school's settings (403 for anyone else who
    can see it, whatever they sent)."""
    if org.kind != Organisation.Kind.SCHOOL or not scope_for(user).leads_school(org.pk):
        raise PermissionDenied("Only the school's lead changes the school's settings.")


@transaction.atomic
def school_update(*, school: Organisation, by: User, nation: str) -> Organisation:
    """Set a school's nation, whose bank holidays its SLA clock, send windows and
    expected hours keep. GIAS tells England from Wales; a Scottish or Northern Irish
    school is set here by its own lead (or in the admin)."""
    require_school_lead(by, school)
    if nation not in Organisation.Nation.values:
        raise ValidationError({"nation": f"Unknown nation '{nation}'."})
    if school.nation != nation:
        school.nation = nation
        school.save(update_fields=["nation", "updated_at"])
    return school


# --- Trial phases ---------------------------------------------------------------------


def _check_cohort(partnership: Partnership, cohort: list[Contact]) -> None:
    foreign = [c for c in cohort if c.school_id != partnership.school_id]
    if foreign:
        raise ValidationError({"cohort": "Every cohort member must be staff of the school."})


@transaction.atomic
def trial_phase_create(
    *,
    by: User,
    partnership: Partnership,
    cohort: list[Contact] | None = None,
    criteria: list[dict[str, str]] | None = None,
    **fields: Any,
) -> TrialPhase:
    _require_manager(by, partnership.supplier_id)
    cohort = cohort or []
    _check_cohort(partnership, cohort)
    phase = TrialPhase(partnership=partnership, **fields)
    phase.full_clean(exclude=["cohort"])
    phase.save()
    if cohort:
        phase.cohort.set(cohort)
        link_contacts(partnership, cohort, by)  # the cohort is part of the partnership
    record_changes(
        SuccessCriterion.objects.bulk_create(
            SuccessCriterion(phase=phase, **criterion) for criterion in criteria or []
        ),
        history_type="+",
        user=by,
    )
    return phase


# A decided phase's kind and dates are the record of what was decided; its end moves only
# through the decision "extend", which keeps the trail in decision_notes.
_PLAN_FIELDS = ("kind", "start_date", "end_date")


@transaction.atomic
def trial_phase_update(
    *, phase: TrialPhase, by: User, cohort: list[Contact] | None = None, **data: Any
) -> TrialPhase:
    """Edit a phase's plan: its intent and implementation; its cohort; criteria to add
    and its impact until it is decided; its kind and start date until any decision, its
    end date until it starts (afterwards only "extend" moves it).

    The row is locked and re-read before anything is checked, and only the fields that
    change are written: a cohort or criteria edit racing a decision neither overwrites
    the decision nor is judged against the phase as it was before it.
    """
    _require_manager(by, phase.partnership.supplier_id)
    phase = (
        TrialPhase.objects.select_for_update(of=("self",))
        .select_related("partnership")
        .get(pk=phase.pk)
    )
    criteria = data.pop("criteria", None) or []
    changed = {name: value for name, value in data.items() if getattr(phase, name) != value}
    errors: dict[str, str] = {}
    if criteria and phase.decision in FINAL_DECISIONS:
        errors["criteria"] = "This phase has been decided: its criteria are the record of it."
    if "impact" in changed and phase.decision in FINAL_DECISIONS:
        # As POST …/evaluate/ refuses: the impact is the evidence the decision was made on.
        errors["impact"] = "This phase has been decided: its impact is the record of it."
    if phase.decision:
        decided = (
            f"This phase was decided ({phase.get_decision_display()}): its "
            "{what} is part of the record. Plan a new phase to change course."
        )
        for name, what in (("kind", "kind"), ("start_date", "start date")):
            if name in changed:
                errors[name] = decided.format(what=what)
    if "end_date" in changed and (phase.decision or phase.start_date <= timezone.localdate()):
        if phase.decision in FINAL_DECISIONS:
            errors["end_date"] = (
                f"This phase was decided ({phase.get_decision_display()}): its end date is "
                "part of the record."
            )
        else:
            errors["end_date"] = (
                f"The phase has started: its end date moves only by deciding to extend it "
                f"(POST …/decide/ with decision 'extend' and the new end date), currently "
                f"{phase.end_date}."
            )
    if errors:
        raise ValidationError(errors)
    fields = _apply(phase, changed)
    phase.full_clean(exclude=["cohort"])
    if fields:
        phase.save(update_fields=fields)
    if cohort is not None:
        _check_cohort(phase.partnership, cohort)
        phase.cohort.set(cohort)
        link_contacts(phase.partnership, cohort, by)
    # Criteria given here are added to the phase's; existing ones are never rewritten or
    # removed through the API (their evaluation would no longer match what they say).
    record_changes(
        SuccessCriterion.objects.bulk_create(
            SuccessCriterion(phase=phase, description=c["description"], target=c.get("target", ""))
            for c in criteria
        ),
        history_type="+",
        user=by,
    )
    return phase


# --- Trial phases: warnings, evaluation, decision -----------------------------------------

# The partnership stage a phase of each kind runs in, and where "expand" takes it. A
# whole-school phase cannot expand: it already covers the school (renewal is the contract
# coming round, moved by the partnership's own transition, not a trial decision).
PHASE_STAGE = {
    TrialPhase.Kind.PILOT: Stage.PILOT,
    TrialPhase.Kind.EXPANSION: Stage.EXPANSION,
    TrialPhase.Kind.WHOLE_SCHOOL: Stage.WHOLE_SCHOOL,
}
EXPANDS_TO = {
    TrialPhase.Kind.PILOT: Stage.EXPANSION,
    TrialPhase.Kind.EXPANSION: Stage.WHOLE_SCHOOL,
}
# "extend" gives the phase more time and leaves it open for its decision at the new end;
# these three close it.
FINAL_DECISIONS = (
    TrialPhase.Decision.CONTINUE,
    TrialPhase.Decision.EXPAND,
    TrialPhase.Decision.STOP,
)


class CriteriaNotEvaluated(ValidationError):
    """Expansion refused until every criterion is evaluated; lists the ones still open."""

    allowed_key = "unevaluated_criteria"

    def __init__(self, message: str, unevaluated: list[int]) -> None:
        super().__init__({"criteria": [message]})
        self.allowed = unevaluated


def trial_phase_warnings(phase: TrialPhase) -> list[str]:
    """Advice that does not block the save. Reads the cohort through ``.all()`` so that a
    prefetched list costs no query."""
    warnings = []
    limit = settings.PILOT_COHORT_WARN_SIZE
    if phase.kind == TrialPhase.Kind.PILOT and phase.pk:
        size = len(phase.cohort.all())
        if size > limit:
            warnings.append(
                f"This pilot's cohort has {size} people, more than the {limit} a pilot "
                "should have. Pilots work best small: a few confident teachers first, "
                "then expand on what they show."
            )
    return warnings


def _decided_already(phase: TrialPhase) -> ValidationError:
    when = f" on {timezone.localdate(phase.decided_at)}" if phase.decided_at else ""
    return ValidationError(
        {
            "decision": f"This phase was already decided ({phase.get_decision_display()}"
            f"{when}). A phase is decided once: plan a new phase to change course."
        }
    )


@transaction.atomic
def trial_phase_evaluate(
    *,
    phase: TrialPhase,
    by: User,
    criteria: list[dict[str, Any]] | None = None,
    impact: str | None = None,
) -> TrialPhase:
    """Rate criteria of this phase (met, partly met, not met), each with its evidence, and
    optionally record the phase's impact. Criteria not named keep their evaluation; a
    criterion may be re-evaluated until the phase is decided."""
    _require_manager(by, phase.partnership.supplier_id)
    phase = TrialPhase.objects.select_for_update().get(pk=phase.pk)
    if phase.decision in FINAL_DECISIONS:
        raise _decided_already(phase)
    criteria = criteria or []
    if not criteria and impact is None:
        raise ValidationError({"criteria": "Evaluate at least one criterion, or give the impact."})
    ids = [item["id"] for item in criteria]
    if len(ids) != len(set(ids)):
        raise ValidationError({"criteria": "Give each criterion once."})
    own = {c.pk: c for c in SuccessCriterion.objects.filter(phase=phase)}
    unknown = sorted(set(ids) - set(own))
    if unknown:
        listed = ", ".join(str(i) for i in unknown)
        raise ValidationError({"criteria": f"Not a success criterion of this phase: {listed}."})
    changed = []
    for item in criteria:
        evaluation = item.get("evaluation", "")
        evidence = (item.get("evidence") or "").strip()
        if evaluation not in SuccessCriterion.Evaluation.values:
            raise ValidationError({"criteria": f"Unknown evaluation '{evaluation}'."})
        if not evidence:
            raise ValidationError(
                {
                    "criteria": "An evaluation needs its evidence: what shows it (figures, observations)."
                }
            )
        criterion = own[item["id"]]
        criterion.evaluation, criterion.evidence = evaluation, evidence
        changed.append(criterion)
    SuccessCriterion.objects.bulk_update(changed, ["evaluation", "evidence"])
    record_changes(changed, user=by)
    if impact is not None:
        phase.impact = impact.strip()
        phase.save(update_fields=["impact"])
    return phase


def _stage_label(stage: str) -> str:
    return str(Stage(stage).label).lower() if stage in Stage.values else stage


def _check_stage_matches(phase: TrialPhase, partnership: Partnership, decision: str) -> None:
    """A phase is decided while the partnership is in that phase's stage (or, except to
    expand, paused from it): an old or not-yet-started phase cannot move the partnership."""
    at = PHASE_STAGE[phase.kind]
    kind = str(phase.get_kind_display()).lower()
    if partnership.stage == at:
        return
    if partnership.stage == Stage.PAUSED and partnership.stage_before_pause == at:
        if decision != TrialPhase.Decision.EXPAND:
            return
        raise ValidationError(
            {"decision": "The partnership is paused: resume it before expanding."}
        )
    raise ValidationError(
        {
            "decision": f"This {kind} phase is decided while the partnership is in its "
            f"{_stage_label(at)} stage, and the partnership is in "
            f"{_stage_label(partnership.stage)}."
        }
    )


@transaction.atomic
def trial_phase_decide(
    *,
    phase: TrialPhase,
    by: User,
    decision: str,
    notes: str = "",
    end_date: date | None = None,
    unmet_criteria_reason: str = "",
) -> TrialPhase:
    """Record the phase's decision and move the partnership to match, in one transaction
    (a refused stage move leaves the phase undecided):

    - continue: the phase closes, the partnership stays where it is;
    - extend: a later ``end_date``; no stage move, and the phase stays open for its
      decision at the new end (the extension is kept as a line of ``decision_notes``);
    - expand: every criterion evaluated first, and ``unmet_criteria_reason`` given when
      any was rated "not met" (recorded on the phase for the school to see, and with the
      stage move); pilot -> expansion, expansion -> whole_school; a whole-school phase
      cannot expand;
    - stop: the partnership ends.
    """
    _require_manager(by, phase.partnership.supplier_id)
    phase = TrialPhase.objects.select_for_update().get(pk=phase.pk)
    partnership = Partnership.objects.select_for_update().get(pk=phase.partnership_id)
    if phase.decision in FINAL_DECISIONS:
        raise _decided_already(phase)
    if decision not in TrialPhase.Decision.values:
        raise ValidationError({"decision": f"Unknown decision '{decision}'."})
    if end_date is not None and decision != TrialPhase.Decision.EXTEND:
        raise ValidationError({"end_date": "Only an extension changes the end date."})
    unmet_criteria_reason = unmet_criteria_reason.strip()
    if unmet_criteria_reason and decision != TrialPhase.Decision.EXPAND:
        raise ValidationError(
            {"unmet_criteria_reason": "Only an expansion with criteria not met takes this reason."}
        )
    _check_stage_matches(phase, partnership, decision)
    notes = notes.strip()
    kind = str(phase.get_kind_display()).lower()
    reason = (
        f"Decision on the {kind} phase ({phase.start_date} to {phase.end_date}): "
        f"{TrialPhase.Decision(decision).label.lower()}." + (f" {notes}" if notes else "")
    )
    # Earlier extensions of this phase, kept under the decision that follows them.
    trail = phase.decision_notes if phase.decision == TrialPhase.Decision.EXTEND else ""

    if decision == TrialPhase.Decision.EXTEND:
        if end_date is None:
            raise ValidationError({"end_date": "Extending needs the new end date."})
        if end_date <= phase.end_date:
            raise ValidationError(
                {"end_date": f"Extend to a date after the current end, {phase.end_date}."}
            )
        line = f"Extended from {phase.end_date} to {end_date} on {timezone.localdate()} by {by}"
        line += f": {notes}" if notes else "."
        phase.end_date = end_date
        phase.decision_notes = "\n".join(filter(None, [trail, line]))
    else:
        if decision == TrialPhase.Decision.EXPAND:
            if phase.kind not in EXPANDS_TO:
                raise ValidationError(
                    {
                        "decision": "A whole-school phase already covers the whole school: "
                        "decide continue, extend or stop. Renewal is a move of the "
                        "partnership itself when the contract comes round."
                    }
                )
            unmet = [
                c
                for c in _check_all_evaluated(phase)
                if c.evaluation == SuccessCriterion.Evaluation.NOT_MET
            ]
            if unmet and not unmet_criteria_reason:
                names = "; ".join(f'"{c.description}"' for c in unmet)
                raise ValidationError(
                    {
                        "unmet_criteria_reason": f"{len(unmet)} of the success criteria "
                        f"{'was' if len(unmet) == 1 else 'were'} rated not met ({names}): "
                        "say why the phase expands anyway. The school sees the reason "
                        "with the decision."
                    }
                )
            if unmet:
                reason += f" Expanded with criteria not met: {unmet_criteria_reason}"
            phase.unmet_criteria_reason = unmet_criteria_reason
            partnership_transition(
                partnership=partnership, to_stage=EXPANDS_TO[phase.kind], by=by, reason=reason
            )
        elif decision == TrialPhase.Decision.STOP:
            partnership_transition(
                partnership=partnership, to_stage=Stage.ENDED, by=by, reason=reason
            )
        phase.decision_notes = "\n\n".join(filter(None, [notes, trail]))
    phase.decision = decision
    phase.decided_at = timezone.now()
    phase.decided_by = by
    phase.save(
        update_fields=[
            "decision",
            "decision_notes",
            "unmet_criteria_reason",
            "decided_at",
            "decided_by",
            "end_date",
        ]
    )
    return phase


def _check_all_evaluated(phase: TrialPhase) -> list[SuccessCriterion]:
    """The phase's criteria, once each is evaluated; refused until then."""
    criteria = list(SuccessCriterion.objects.filter(phase=phase).order_by("id"))
    if not criteria:
        raise ValidationError(
            {
                "criteria": "A phase expands on evidence: give it success criteria and "
                "evaluate them before expanding."
            }
        )
    open_ = [c for c in criteria if not c.evaluation]
    if open_:
        names = "; ".join(f'"{c.description}" (id {c.pk})' for c in open_)
        raise CriteriaNotEvaluated(
            f"Evaluate every success criterion before expanding. Not yet evaluated: {names}.",
            [c.pk for c in open_],
        )
    return criteria
