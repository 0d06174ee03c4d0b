"""Template helpers: the role navigation, dates in the school's time zone, small formats."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from accounts.scoping import scope_for
from accounts.working_time import zone

from ..roles import nav_for

register = template.Library()


@register.simple_tag(takes_context=True)
def role_nav(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The signed-in user's links; the one the current page is under is marked current."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return []
    path = request.path
    items = []
    for name, label in nav_for(scope_for(request.user)):
        url = reverse(name)
        items.append({"url": url, "label": label, "current": path.startswith(url)})
    # Only the most specific match is current (e.g. /school/tickets/ over /school/).
    current = [i for i in items if i["current"]]
    if len(current) > 1:
        best = max(current, key=lambda i: len(i["url"]))
        for i in current:
            i["current"] = i is best
    return items


@register.filter
def local(value: datetime | None, tz_name: str = "Europe/London") -> datetime | None:
    """A stored (UTC) time in a school's time zone."""
    if value is None:
        return None
    return value.astimezone(zone(tz_name))


@register.filter
def hours(value: Decimal | float | int | None) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value).quantize(Decimal('0.1'))}".rstrip("0").rstrip(".") or "0"


@register.filter
def working_hours(seconds: int | None) -> str:
    return "—" if seconds is None else hours(Decimal(seconds) / 3600)


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value)}%"


@register.simple_tag(takes_context=True)
def query(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters changed (None or "" removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + params.urlencode()


@register.simple_tag
def link_query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


@register.simple_tag
def field_widget(field: Any) -> str:
    """The field's input, described by its hint and its errors for screen readers."""
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_hint")
    if field.errors:
        described.append(f"{field.auto_id}_errors")
    attrs: dict[str, str] = {}
    if described and field.widget_type not in ("radioselect", "checkboxselectmultiple"):
        attrs["aria-describedby"] = " ".join(described)
    if field.errors:
        attrs["aria-invalid"] = "true"
    return field.as_widget(attrs=attrs)
