"""Writes on accounts objects. Callers pass an object the user can already see; these
functions check what the user's role allows (PermissionDenied -> 403) and the rules
(ValidationError -> 400)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import (
    Contact,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    Stage,
    StageChange,
    SuccessCriterion,
    TrialPhase,
    User,
)
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


@transaction.atomic
def partnership_update(*, partnership: Partnership, by: User, **data: Any) -> Partnership:
    _require_manager(by, partnership.supplier_id)
    products = data.pop("products", None)
    manager = data.get("account_manager")
    if manager is not None and not scope_for(manager).supplier_role(partnership.supplier_id):
        raise ValidationError({"account_manager": "Choose a member of the supplier's staff."})
    if products is not None and any(p.supplier_id != partnership.supplier_id for p in products):
        raise ValidationError({"products": "Products must be the supplier's own."})
    fields = _apply(partnership, data)
    partnership.full_clean(exclude=["products", "contacts"])
    partnership.save(update_fields=[*fields, "updated_at"])
    if products is not None:
        partnership.products.set(products)
    return partnership


@transaction.atomic
def partnership_transition(
    *, partnership: Partnership, to_stage: str, by: User, override_reason: str = ""
) -> Partnership:
    """Move a partnership to another stage, enforcing the machine and the pilot gate."""
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
    now = timezone.now()
    StageChange.objects.create(
        partnership=locked,
        from_stage=locked.stage,
        to_stage=to_stage,
        by=by,
        at=now,
        is_override=is_override,
        reason=override_reason,
    )
    locked.stage_before_pause = locked.stage if to_stage == Stage.PAUSED else ""
    locked.stage = to_stage
    locked.stage_changed_at = now
    locked.save(update_fields=["stage", "stage_before_pause", "stage_changed_at", "updated_at"])
    return locked


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


def _can_edit_contact(user: User, contact: Contact) -> bool:
    s = scope_for(user)
    if s.leads_school(contact.school_id):
        return True
    managed = [sid for sid in s.supplier_ids if s.manages_supplier(sid)]
    return PartnershipContact.objects.filter(
        contact=contact, partnership__supplier_id__in=managed
    ).exists()


@transaction.atomic
def contact_create(
    *,
    by: User,
    school: Organisation | None = None,
    partnership: Partnership | None = None,
    tags: list[str] | None = None,
    **fields: Any,
) -> Contact:
    """A school lead adds staff to their school; a supplier adds a person it works with
    through one of its partnerships, which links them to it."""
    s = scope_for(by)
    if partnership is not None:
        _require_manager(by, partnership.supplier_id)
        if school is not None and school.pk != partnership.school_id:
            raise ValidationError(
                {"school": "The contact must belong to the partnership's school."}
            )
        school = partnership.school
    elif school is None:
        raise ValidationError({"school": "Give the school (or a partnership) for this contact."})
    elif not s.leads_school(school.pk):
        raise PermissionDenied(
            "Only the school's lead adds staff directly; suppliers add "
            "contacts through a partnership."
        )
    email = (fields.get("email") or "").lower()
    existing = Contact.objects.filter(school=school, email=email).first()
    if existing is not None:
        if partnership is None:
            raise ValidationError({"email": "This school already has a contact with this email."})
        contact = existing  # the school already holds this person: link, don't duplicate
    else:
        contact = Contact(school=school, **{**fields, "email": email})
        contact.tags = Contact.encode_tags(tags or [])
        contact.full_clean()
        _save_unique(contact, {"email": "This school already has a contact with this email."})
    if partnership is not None:
        PartnershipContact.objects.get_or_create(
            partnership=partnership, contact=contact, defaults={"added_by": by}
        )
    return contact


@transaction.atomic
def contact_update(
    *, contact: Contact, by: User, tags: list[str] | None = None, **data: Any
) -> Contact:
    if not _can_edit_contact(by, contact):
        raise PermissionDenied("You may not change this contact.")
    if "email" in data:
        data["email"] = data["email"].lower()
    fields = _apply(contact, data)
    if tags is not None:
        contact.tags = Contact.encode_tags(tags)
        fields.append("tags")
    contact.full_clean()
    contact.save(update_fields=[*fields, "updated_at"])
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, by: User) -> None:
    """Erasure is the school's call (UK GDPR): only its lead deletes a staff record."""
    if not scope_for(by).leads_school(contact.school_id):
        raise PermissionDenied("Only the school's lead may delete a staff record.")
    contact.delete()


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
        for contact in cohort:  # the cohort is part of the partnership
            PartnershipContact.objects.get_or_create(
                partnership=partnership, contact=contact, defaults={"added_by": by}
            )
    SuccessCriterion.objects.bulk_create(
        SuccessCriterion(phase=phase, **criterion) for criterion in criteria or []
    )
    return phase


@transaction.atomic
def trial_phase_update(
    *, phase: TrialPhase, by: User, cohort: list[Contact] | None = None, **data: Any
) -> TrialPhase:
    _require_manager(by, phase.partnership.supplier_id)
    data.pop("criteria", None)
    fields = _apply(phase, data)
    phase.full_clean(exclude=["cohort"])
    phase.save(update_fields=fields or None)
    if cohort is not None:
        _check_cohort(phase.partnership, cohort)
        phase.cohort.set(cohort)
        for contact in cohort:
            PartnershipContact.objects.get_or_create(
                partnership=phase.partnership, contact=contact, defaults={"added_by": by}
            )
    return phase
