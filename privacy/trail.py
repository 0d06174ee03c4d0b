"""The audit trail, read: one selector over every tracked model's history (audit.registry).

``trail(user, filters, page, page_size)`` answers entries newest first: when, who (the
user, or "system: <task>"), the channel, the record (kind, label, link to its own
history), what changed (field label: before -> after; choices as labels, users,
organisations, contacts, partnerships, templates, rules and products by name) and the
change reason.

Who reads what (the trail is read-only for everyone):
- a school lead (and a trust lead, for the trust's schools): their school's records:
  partnerships of the school and what hangs off them (contact links, proposals, tickets,
  visits and readiness, phases and criteria, replies), the school's contacts and
  memberships, opt-outs of its staff; never a supplier's rules, templates or own
  memberships (suppliers' internal notes and messages are not tracked at all);
- a supplier admin: their supplier's partnerships and everything under them, rules,
  templates, their organisation's memberships, and the changes to contacts linked to
  their partnerships, limited to what suppliers see of a contact (name, email, role);
- everyone else (account managers, agents, teachers): nothing.

Cost: one UNION query for the page's keys (no count of the whole table), then two
queries per record kind on the page (its rows with the previous row's id, the previous
rows) and one per kind of name shown: constant in the number of entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import OuterRef, Q, Subquery, Value
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    Contact,
    ContactProposal,
    Membership,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    SuccessCriterion,
    TrialPhase,
    User,
)
from accounts.scoping import Scope, scope_for
from audit.models import Channel
from nudges.models import NudgeReply, NudgeRule, NudgeTemplate, OptOut
from renewals.models import AgreementTerm, ValueReview
from tickets.models import Ticket
from visits.models import FollowUpAction, ReadinessAssessment, ReadinessCheck, Visit

# The record kinds, as they are named in ?kind=.
KINDS: dict[str, type[models.Model]] = {
    "partnership": Partnership,
    "partnership_contact": PartnershipContact,
    "contact": Contact,
    "membership": Membership,
    "contact_proposal": ContactProposal,
    "ticket": Ticket,
    "visit": Visit,
    "readiness_assessment": ReadinessAssessment,
    "readiness_check": ReadinessCheck,
    "follow_up_action": FollowUpAction,
    "trial_phase": TrialPhase,
    "success_criterion": SuccessCriterion,
    "opt_out": OptOut,
    "nudge_reply": NudgeReply,
    "nudge_rule": NudgeRule,
    "nudge_template": NudgeTemplate,
    "agreement_term": AgreementTerm,
    "value_review": ValueReview,
}
KIND_OF = {model: kind for kind, model in KINDS.items()}
SUPPLIER_ONLY = {"nudge_rule", "nudge_template"}
# What a supplier sees of a contact's changes (issue 14: name, work email and role).
SUPPLIER_CONTACT_FIELDS = {"first_name", "last_name", "email", "job_title"}
# The record's own id and the denormalised tenancy copies are not "what changed".
NOT_SHOWN = {"id"}
VALUE_CHARS = 300
HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}
# Names looked up for these foreign keys (one query per model on a page).
NAMED = (User, Organisation, Contact, Partnership, Product, NudgeTemplate, NudgeRule)


def historical(model: type[models.Model]) -> Any:
    return getattr(model, model._meta.simple_history_manager_attribute).model


@dataclass
class Change:
    field: str
    label: str
    before: str | None
    after: str | None


@dataclass
class Entry:
    when: datetime
    who: str
    user_id: int | None
    channel: str
    channel_label: str
    via: str
    action: str
    kind: str
    kind_label: str
    object_id: int
    label: str
    link: str
    reason: str
    changes: list[Change] = field(default_factory=list)


@dataclass
class Filters:
    kind: str = ""
    object_id: int | None = None
    partnership: int | None = None
    user: int | None = None
    date_from: date | None = None
    date_to: date | None = None


def parse_filters(params: Any) -> Filters:
    """Filters from query parameters; ValidationError with field errors when malformed."""
    errors: dict[str, str] = {}
    f = Filters()
    kind = (params.get("kind") or "").strip()
    if kind and kind not in KINDS:
        errors["kind"] = "One of: " + ", ".join(KINDS) + "."
    f.kind = kind
    for name, attr in (("id", "object_id"), ("partnership", "partnership"), ("user", "user")):
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        if not raw.isdigit() or len(raw) > 18:
            errors[name] = "A whole number."
        else:
            setattr(f, attr, int(raw))
    if f.object_id is not None and not f.kind and "kind" not in errors:
        errors["id"] = "Give the record's kind with its id."
    for name in ("date_from", "date_to"):
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        try:
            setattr(f, name, date.fromisoformat(raw))
        except ValueError:
            errors[name] = "A date as YYYY-MM-DD."
    if f.date_from and f.date_to and f.date_from > f.date_to:
        errors["date_to"] = "On or after the start date."
    if errors:
        raise ValidationError(errors)
    return f


# --- Scope ---------------------------------------------------------------------------


def _school_q(kind: str, schools: frozenset[int], trusts: frozenset[int]) -> Q | None:
    """The historical rows of ``kind`` a lead of ``schools`` reads."""
    partnerships = Partnership.objects.filter(school_id__in=schools).values("id")
    visits = Visit.objects.filter(school_id__in=schools).values("id")
    assessments = ReadinessAssessment.objects.filter(visit__school_id__in=schools).values("id")
    return {
        "partnership": Q(school_id__in=schools),
        "partnership_contact": Q(partnership_id__in=partnerships),
        "contact": Q(school_id__in=schools),
        "membership": Q(organisation_id__in=schools | trusts),
        "contact_proposal": Q(partnership_id__in=partnerships),
        "ticket": Q(school_id__in=schools),
        "visit": Q(school_id__in=schools),
        "readiness_assessment": Q(visit_id__in=visits),
        "readiness_check": Q(assessment_id__in=assessments),
        "follow_up_action": Q(assessment_id__in=assessments),
        "trial_phase": Q(partnership_id__in=partnerships),
        "success_criterion": Q(
            phase_id__in=TrialPhase.objects.filter(partnership__school_id__in=schools).values("id")
        ),
        "opt_out": Q(contact_id__in=Contact.objects.filter(school_id__in=schools).values("id")),
        "nudge_reply": Q(partnership_id__in=partnerships),
        "agreement_term": Q(school_id__in=schools),
        "value_review": Q(school_id__in=schools),
    }.get(kind)


def _supplier_q(kind: str, suppliers: frozenset[int]) -> Q | None:
    """The historical rows of ``kind`` an admin of ``suppliers`` reads."""
    partnerships = Partnership.objects.filter(supplier_id__in=suppliers).values("id")
    assessments = ReadinessAssessment.objects.filter(visit__supplier_id__in=suppliers).values("id")
    linked = PartnershipContact.objects.filter(partnership__supplier_id__in=suppliers).values(
        "contact_id"
    )
    return {
        "partnership": Q(supplier_id__in=suppliers),
        "partnership_contact": Q(partnership_id__in=partnerships),
        "contact": Q(id__in=linked),
        "membership": Q(organisation_id__in=suppliers),
        "contact_proposal": Q(partnership_id__in=partnerships),
        "ticket": Q(supplier_id__in=suppliers),
        "visit": Q(supplier_id__in=suppliers),
        "readiness_assessment": Q(
            visit_id__in=Visit.objects.filter(supplier_id__in=suppliers).values("id")
        ),
        "readiness_check": Q(assessment_id__in=assessments),
        "follow_up_action": Q(assessment_id__in=assessments),
        "trial_phase": Q(partnership_id__in=partnerships),
        "success_criterion": Q(
            phase_id__in=TrialPhase.objects.filter(partnership__supplier_id__in=suppliers).values(
                "id"
            )
        ),
        "opt_out": Q(supplier_id__in=suppliers)
        | Q(supplier_id__isnull=True, contact_id__in=linked),
        "nudge_reply": Q(supplier_id__in=suppliers),
        "nudge_rule": Q(supplier_id__in=suppliers),
        "nudge_template": Q(supplier_id__in=suppliers),
        "agreement_term": Q(supplier_id__in=suppliers),
        "value_review": Q(supplier_id__in=suppliers),
    }.get(kind)


def _admin_suppliers(scope: Scope) -> frozenset[int]:
    return frozenset(s for s, role in scope.supplier_roles.items() if role == "supplier_admin")


def may_read(user: Any) -> bool:
    scope = scope_for(user)
    return bool(scope.all_school_ids or _admin_suppliers(scope))


def _scope_q(kind: str, scope: Scope) -> Q | None:
    parts = []
    if scope.all_school_ids and kind not in SUPPLIER_ONLY:
        trusts = scope.trust_ids
        part = _school_q(kind, scope.all_school_ids, trusts)
        if part is not None:
            parts.append(part)
    suppliers = _admin_suppliers(scope)
    if suppliers:
        part = _supplier_q(kind, suppliers)
        if part is not None:
            parts.append(part)
    if not parts:
        return None
    q = parts[0]
    for part in parts[1:]:
        q |= part
    return q


def _partnership_q(kind: str, partnership: int) -> Q | None:
    return {
        "partnership": Q(id=partnership),
        "partnership_contact": Q(partnership_id=partnership),
        "contact_proposal": Q(partnership_id=partnership),
        "ticket": Q(partnership_id=partnership),
        "visit": Q(partnership_id=partnership),
        "readiness_assessment": Q(
            visit_id__in=Visit.objects.filter(partnership_id=partnership).values("id")
        ),
        "readiness_check": Q(
            assessment_id__in=ReadinessAssessment.objects.filter(
                visit__partnership_id=partnership
            ).values("id")
        ),
        "follow_up_action": Q(
            assessment_id__in=ReadinessAssessment.objects.filter(
                visit__partnership_id=partnership
            ).values("id")
        ),
        "trial_phase": Q(partnership_id=partnership),
        "success_criterion": Q(
            phase_id__in=TrialPhase.objects.filter(partnership_id=partnership).values("id")
        ),
        "nudge_reply": Q(partnership_id=partnership),
        "nudge_rule": Q(partnership_id=partnership),
        "agreement_term": Q(partnership_id=partnership),
        "value_review": Q(partnership_id=partnership),
    }.get(kind)


def _day_start(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min))


def _keyed(user: Any, filters: Filters, limit: int) -> Any:
    """The union of (history_id, history_date, kind) over every readable kind, newest first;
    None when the user reads nothing."""
    scope = scope_for(user)
    parts = []
    for kind, model in KINDS.items():
        if filters.kind and kind != filters.kind:
            continue
        q = _scope_q(kind, scope)
        if q is None:
            continue
        if filters.partnership is not None:
            pq = _partnership_q(kind, filters.partnership)
            if pq is None:
                continue
            q &= pq
        if filters.object_id is not None:
            q &= Q(id=filters.object_id)
        if filters.user is not None:
            q &= Q(history_user_id=filters.user)
        if filters.date_from:
            q &= Q(history_date__gte=_day_start(filters.date_from))
        if filters.date_to:
            q &= Q(history_date__lt=_day_start(filters.date_to) + _ONE_DAY)
        part = (
            historical(model)
            .objects.filter(q)
            .values("history_id", "history_date")
            .annotate(kind=Value(kind, output_field=models.CharField()))
        )
        ordered = part.order_by("-history_date", "-history_id")
        if connection.features.supports_slicing_ordering_in_compound:
            # PostgreSQL: each kind reads at most ``limit`` rows down its history_date
            # index, so the union sorts a bounded number of rows, not every kind's history.
            part = ordered[:limit]
        else:
            part = part.order_by()
        parts.append(part)
    if not parts:
        return None
    if len(parts) == 1:
        return ordered
    return parts[0].union(*parts[1:], all=True).order_by("-history_date", "-history_id")


_ONE_DAY = timedelta(days=1)


@dataclass
class Page:
    entries: list[Entry]
    has_next: bool
    count: int
    count_capped: bool


def trail(
    user: Any,
    filters: Filters | None = None,
    *,
    page: int = 1,
    page_size: int = 50,
    count_cap: int = 1000,
) -> Page:
    filters = filters or Filters()
    offset = (page - 1) * page_size
    keyed = _keyed(user, filters, offset + page_size + 1)
    if keyed is None:
        return Page([], False, 0, False)
    keys = list(keyed[offset : offset + page_size + 1])
    has_next = len(keys) > page_size
    keys = keys[:page_size]
    if page == 1 and not has_next:
        count, capped = len(keys), False
    else:
        # At most count_cap + 1 keys of the user's own scope: never the whole table.
        seen = len(list(_keyed(user, filters, count_cap + 1)[: count_cap + 1]))
        count, capped = min(seen, count_cap), seen > count_cap
    entries = _entries(user, keys)
    return Page(entries, has_next, count, capped)


# --- Entries ---------------------------------------------------------------------------


def _entries(user: Any, keys: list[dict[str, Any]]) -> list[Entry]:
    scope = scope_for(user)
    by_kind: dict[str, list[int]] = {}
    for key in keys:
        by_kind.setdefault(key["kind"], []).append(key["history_id"])
    rows: dict[tuple[str, int], Any] = {}
    prev: dict[tuple[str, int], Any] = {}
    # many-to-many field name -> history id -> the ids it held then
    snapshots: dict[str, dict[int, set[int]]] = {}
    wanted: dict[type[models.Model], set[int]] = {}
    for kind, ids in by_kind.items():
        h = historical(KINDS[kind])
        before = (
            h.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
            .order_by("-history_id")
            .values("history_id")[:1]
        )
        found = list(h.objects.filter(history_id__in=ids).annotate(prev_id=Subquery(before)))
        prev_rows = {
            r.history_id: r
            for r in h.objects.filter(history_id__in=[r.prev_id for r in found if r.prev_id])
        }
        for r in found:
            rows[(kind, r.history_id)] = r
            prev[(kind, r.history_id)] = prev_rows.get(r.prev_id)
        every = [r.history_id for r in found] + list(prev_rows)
        for f, target, m2m_model, attr in _m2m_fields(KINDS[kind]):
            snapshot = snapshots.setdefault(f.name, {})
            for history_id, target_id in m2m_model.objects.filter(history_id__in=every).values_list(
                "history_id", attr
            ):
                snapshot.setdefault(history_id, set()).add(target_id)
                wanted.setdefault(target, set()).add(target_id)
    names = _names(rows.values(), wanted)
    entries = []
    for key in keys:
        kind = key["kind"]
        row = rows.get((kind, key["history_id"]))
        if row is None:
            continue
        hidden: set[str] = set()
        if kind == "contact" and row.school_id not in scope.all_school_ids:
            # Read as the supplier of a linked contact: only what suppliers see of one.
            hidden = {f.name for f in historical(Contact).tracked_fields} - SUPPLIER_CONTACT_FIELDS
        before = prev[(kind, key["history_id"])]
        changes = _changes(row, before, names, hidden)
        for f, target, _, _ in _m2m_fields(KINDS[kind]):
            snapshot = snapshots.get(f.name, {})
            then = (
                _names_of(target, snapshot.get(before.history_id, set()), names) if before else None
            )
            now = _names_of(target, snapshot.get(row.history_id, set()), names)
            if then != now and not (row.history_type == "+" and now is None):
                label = str(f.verbose_name)
                changes.append(Change(f.name, label[:1].upper() + label[1:], then, now))
        if hidden and row.history_type == "~" and not changes:
            continue  # a change to what suppliers do not see of a contact
        entries.append(_entry(kind, row, changes, names))
    return entries


def _fk_target(f: models.Field) -> type[models.Model] | None:
    target = getattr(f, "related_model", None)
    if target is None:
        return None
    for named in NAMED:
        if issubclass(target, named):
            return named
    return None


def _m2m_fields(model: type[models.Model]) -> list[tuple[Any, Any, Any, str]]:
    """(field, target model, snapshot model, target column) of a model's tracked
    many-to-many fields."""
    from simple_history.models import HistoricalRecords

    found = []
    for f, m2m_model in HistoricalRecords.m2m_models.items():
        if f.model is model:
            target = _fk_target(f) or f.related_model
            found.append((f, target, m2m_model, f.m2m_reverse_field_name() + "_id"))
    return found


def _names_of(target: Any, ids: set[int], names: dict[Any, str]) -> str | None:
    shown = sorted(names.get((target, i), f"#{i}") for i in ids)
    return ", ".join(shown) if shown else None


def _names(
    rows: Any, wanted: dict[type[models.Model], set[int]] | None = None
) -> dict[tuple[type[models.Model], int], str]:
    wanted = wanted if wanted is not None else {}
    for r in rows:
        if r.history_user_id:
            wanted.setdefault(User, set()).add(r.history_user_id)
        for f in r.tracked_fields:
            target = _fk_target(f)
            value = getattr(r, f.attname, None)
            if target is not None and value:
                wanted.setdefault(target, set()).add(value)
        for target, attr in _LABEL_FKS.get(type(r).instance_type, ()):
            value = getattr(r, attr, None)
            if value:
                wanted.setdefault(target, set()).add(value)
    names: dict[tuple[type[models.Model], int], str] = {}
    for model, ids in wanted.items():
        if model is Partnership:
            for p in Partnership.objects.filter(pk__in=ids).select_related("supplier", "school"):
                names[(Partnership, p.pk)] = f"{p.supplier.name} × {p.school.name}"
        elif model is User:
            for pk, full_name, email in User.objects.filter(pk__in=ids).values_list(
                "pk", "full_name", "email"
            ):
                names[(User, pk)] = full_name or email
        elif model is Contact:
            for pk, first, last in Contact.objects.filter(pk__in=ids).values_list(
                "pk", "first_name", "last_name"
            ):
                names[(Contact, pk)] = f"{first} {last}".strip()
        else:
            for obj in model.objects.filter(pk__in=ids):
                names[(model, obj.pk)] = str(obj)
    return names


# Foreign keys a record's label names (besides its own fields).
_LABEL_FKS: dict[type[models.Model], tuple[tuple[type[models.Model], str], ...]] = {
    Partnership: ((Organisation, "supplier_id"), (Organisation, "school_id")),
    PartnershipContact: ((Contact, "contact_id"), (Partnership, "partnership_id")),
    Membership: ((User, "user_id"), (Organisation, "organisation_id")),
    OptOut: ((Contact, "contact_id"),),
    NudgeReply: ((Contact, "contact_id"),),
}


def _show(row: Any, f: models.Field, names: dict[Any, str]) -> str | None:
    value = getattr(row, f.attname, None)
    if value is None or value == "":
        return None
    target = _fk_target(f)
    if target is not None:
        return names.get((target, value), f"#{value}")
    if getattr(f, "related_model", None) is not None:
        return f"#{value}"
    if f.choices:
        return str(dict(f.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if f.name == "tags" or f.name == "audience_tags":
        return ", ".join(t for t in str(value).split(",") if t) or None
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _changes(row: Any, before: Any, names: dict[Any, str], hidden: set[str]) -> list[Change]:
    changes = []
    for f in row.tracked_fields:
        if f.name in NOT_SHOWN or f.name in hidden:
            continue
        after_value = _show(row, f, names) if row.history_type != "-" else None
        before_value = _show(before, f, names) if before is not None else None
        if row.history_type == "-":
            before_value = _show(row, f, names)
        if before_value == after_value:
            continue
        label = str(f.verbose_name)
        changes.append(Change(f.name, label[:1].upper() + label[1:], before_value, after_value))
    return changes


def _label(kind: str, row: Any, names: dict[Any, str]) -> str:
    def name(model: type[models.Model], pk: int | None) -> str:
        return names.get((model, pk), f"#{pk}") if pk else "—"

    match kind:
        case "partnership":
            return f"{name(Organisation, row.supplier_id)} × {name(Organisation, row.school_id)}"
        case "partnership_contact":
            return f"{name(Contact, row.contact_id)} on {name(Partnership, row.partnership_id)}"
        case "contact" | "contact_proposal":
            return f"{row.first_name} {row.last_name}".strip()
        case "membership":
            return f"{name(User, row.user_id)} at {name(Organisation, row.organisation_id)}"
        case "ticket":
            return row.subject
        case "visit":
            return f"{row.get_kind_display()} on {timezone.localtime(row.starts_at):%Y-%m-%d}"
        case "readiness_assessment":
            return f"Readiness of visit #{row.visit_id}"
        case "readiness_check":
            return f"{row.get_area_display()} (assessment #{row.assessment_id})"
        case "follow_up_action" | "success_criterion":
            return row.description
        case "trial_phase":
            return f"{row.get_kind_display()} {row.start_date}–{row.end_date}"
        case "opt_out":
            return f"Opt-out of {name(Contact, row.contact_id)}"
        case "nudge_reply":
            return f"Reply from {name(Contact, row.contact_id)}"
        case "agreement_term":
            return f"Agreement term {row.number}: {row.starts_on} to {row.ends_on}"
        case "value_review":
            return f"Value review of term #{row.term_id}"
        case _:
            return getattr(row, "name", "") or f"#{row.id}"


def _entry(kind: str, row: Any, changes: list[Change], names: dict[Any, str]) -> Entry:
    if row.history_user_id:
        who = names.get((User, row.history_user_id), f"user #{row.history_user_id}")
    elif row.history_channel == Channel.TASK:
        who = f"system: {row.history_via}"
    elif row.history_channel == Channel.INBOUND:
        who = "inbound email"
    elif row.history_channel == Channel.COMMAND:
        who = f"command: {row.history_via}"
    else:
        who = "system"
    return Entry(
        when=row.history_date,
        who=who,
        user_id=row.history_user_id,
        channel=row.history_channel,
        channel_label=str(Channel(row.history_channel).label)
        if row.history_channel in Channel.values
        else row.history_channel,
        via=row.history_via,
        action=HISTORY_TYPES.get(row.history_type, row.history_type),
        kind=kind,
        kind_label=str(KINDS[kind]._meta.verbose_name).capitalize(),
        object_id=row.id,
        label=_label(kind, row, names),
        link=reverse("audit-trail") + f"?kind={kind}&id={row.id}",
        reason=row.history_change_reason or "",
        changes=changes,
    )
