"""The values behind a nudge's placeholders, for a batch of nudges in a fixed number of
queries (current trial phase, next visit, open tickets, products)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from html import escape

from django.conf import settings
from django.core import signing
from django.db.models import Count
from django.utils import timezone

from accounts.models import Partnership, TrialPhase
from tickets.models import OPEN_STATUSES, Ticket
from visits.models import Visit

from .models import Nudge

UNSUBSCRIBE_SALT = "nudges.unsubscribe"


def unsubscribe_token(contact_id: int, supplier_id: int) -> str:
    """Signed, no expiry: an unsubscribe link must work however old the email is."""
    return signing.dumps({"c": contact_id, "s": supplier_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, int] | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return int(data["c"]), int(data["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def unsubscribe_url(contact_id: int, supplier_id: int) -> str:
    return f"{settings.SITE_URL}/unsubscribe/{unsubscribe_token(contact_id, supplier_id)}/"


# Links only the recipient may hold (a value review's survey link, renewals/survey.py):
# occurrence prefix -> (placeholder, resolver of the working links by nudge id). The
# placeholder renders as a stand-in everywhere (previews, the stored rendering, what the
# supplier's staff read); the dispatcher swaps in the working link only in the email it
# hands to the sender (personal_links, personalise). Registered in the owning app's ready().
PERSONAL_LINKS: dict[str, tuple[str, Callable[[list[Nudge]], dict[int, str]]]] = {}


def register_personal_link(
    prefix: str, placeholder: str, resolve: Callable[[list[Nudge]], dict[int, str]]
) -> None:
    PERSONAL_LINKS[prefix] = (placeholder, resolve)


def personal_link_stand_in(placeholder: str) -> str:
    """What a personal link's placeholder shows except in the email sent: a link that
    opens nothing (the page answers 404)."""
    path = placeholder.removesuffix("_url")
    return f"{settings.SITE_URL}/{path}/personal-link-sent-only-to-the-recipient/"


def personal_links(nudges: Iterable[Nudge]) -> dict[int, dict[str, str]]:
    """For the dispatcher, at the moment of sending: per nudge id, stand-in -> working
    link."""
    nudges = list(nudges)
    out: dict[int, dict[str, str]] = {}
    for prefix, (placeholder, resolve) in PERSONAL_LINKS.items():
        mine = [n for n in nudges if n.occurrence.startswith(prefix)]
        if not mine:
            continue
        stand_in = personal_link_stand_in(placeholder)
        for nudge_id, url in resolve(mine).items():
            out.setdefault(nudge_id, {})[stand_in] = url
    return out


def redact_personal_links(text: str) -> str:
    """``text`` (a reply that may quote the email) with any working personal link put back
    to its stand-in, so the supplier reading the reply cannot use it."""
    for placeholder, _ in PERSONAL_LINKS.values():
        path = placeholder.removesuffix("_url")
        stand_in = personal_link_stand_in(placeholder)
        text = re.sub(rf"https?://[^\s<>\"']*/{re.escape(path)}/[^\s<>\"'/]+/?", stand_in, text)
    return text


def personalise(text: str, links: dict[str, str] | None, *, html: bool = False) -> str:
    """``text`` (a stored rendering) with its stand-ins replaced by the working links."""
    for stand_in, url in (links or {}).items():
        text = text.replace(escape(stand_in), escape(url)) if html else text.replace(stand_in, url)
    return text


def _long_date(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def values_for(nudges: Iterable[Nudge], today: date | None = None) -> dict[int, dict[str, str]]:
    """Placeholder values per nudge id. Expects contact, school, supplier and
    partnership__account_manager to be selected with the nudges."""
    nudges = list(nudges)
    today = today or timezone.localdate()
    partnership_ids = {n.partnership_id for n in nudges}
    phases: dict[int, TrialPhase] = {}
    for phase in TrialPhase.objects.filter(
        partnership_id__in=partnership_ids, end_date__gte=today
    ).order_by("start_date"):
        phases.setdefault(phase.partnership_id, phase)
    next_visits: dict[int, Visit] = {}
    for visit in Visit.objects.filter(
        partnership_id__in=partnership_ids, status="planned", starts_at__gte=timezone.now()
    ).order_by("starts_at"):
        next_visits.setdefault(visit.partnership_id, visit)
    open_counts = dict(
        Ticket.objects.filter(partnership_id__in=partnership_ids, status__in=OPEN_STATUSES)
        .values_list("partnership_id")
        .annotate(n=Count("id"))
    )
    products: dict[int, list[str]] = defaultdict(list)
    for pid, name in Partnership.products.through.objects.filter(
        partnership_id__in=partnership_ids
    ).values_list("partnership_id", "product__name"):
        products[pid].append(name)

    out = {}
    for n in nudges:
        c, p = n.contact, n.partnership
        am = p.account_manager
        phase = phases.get(p.pk)
        visit = next_visits.get(p.pk)
        am_name = am.get_full_name() if am else n.supplier.name
        tz = n.school.zone
        out[n.pk] = {
            "first_name": c.first_name,
            "last_name": c.last_name,
            "full_name": f"{c.first_name} {c.last_name}".strip(),
            "school_name": n.school.name,
            "supplier_name": n.supplier.name,
            "product_name": " and ".join(sorted(products.get(p.pk, []))) or n.supplier.name,
            "phase_name": phase.get_kind_display() if phase else "",
            "phase_start": _long_date(phase.start_date) if phase else "",
            "phase_end": _long_date(phase.end_date) if phase else "",
            "next_visit": (
                f"{visit.get_kind_display()} on {visit.starts_at.astimezone(tz):%A %-d %B at %H:%M}"
                if visit
                else "none planned"
            ),
            "open_tickets": str(open_counts.get(p.pk, 0)),
            "account_manager_name": am_name,
            "account_manager_signature": f"{am_name}\nAccount manager, {n.supplier.name}",
            "unsubscribe_url": unsubscribe_url(c.pk, n.supplier_id),
        }
        for prefix, (placeholder, _) in PERSONAL_LINKS.items():
            if n.occurrence.startswith(prefix):
                out[n.pk][placeholder] = personal_link_stand_in(placeholder)
    return out
