"""The nudge placeholder language: ``{{ name }}`` from a fixed list, and nothing else.

No Django template code ever runs on a supplier's text: a template is split into literal
text and placeholders, unknown names are refused when the template is saved, and values
are HTML-escaped in the HTML body, which is then sanitised (nudges/sanitise.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from .sanitise import sanitise_html

PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# Whatever is left of these once the well-formed placeholders are taken out.
LOOKS_LIKE_CODE = re.compile(r"\{%|%\}|\{#|#\}|\{\{|\}\}")

VARIABLES: dict[str, str] = {
    "first_name": "The contact's first name",
    "last_name": "The contact's last name",
    "full_name": "The contact's full name",
    "school_name": "The school's name",
    "supplier_name": "Your organisation's name",
    "product_name": "The partnership's product(s)",
    "phase_name": "The current trial phase (e.g. Pilot)",
    "phase_start": "Its start date (e.g. 6 January 2027)",
    "phase_end": "Its end date",
    "next_visit": "The next planned visit (kind and date), or 'none planned'",
    "open_tickets": "How many of the school's tickets are open",
    "account_manager_name": "The account manager's name",
    "account_manager_signature": "The account manager's name, role and organisation",
    "unsubscribe_url": "The contact's unsubscribe link (one is always added at the end)",
}


class TemplateError(ValueError):
    pass


def check(text: str) -> list[str]:
    """The placeholders ``text`` uses; TemplateError naming any unknown one or any
    template code."""
    if LOOKS_LIKE_CODE.search(PLACEHOLDER.sub("", text)):
        raise TemplateError("Only {{ placeholders }} are allowed: no template tags or code.")
    names = PLACEHOLDER.findall(text)
    unknown = sorted({n for n in names if n not in VARIABLES})
    if unknown:
        allowed = ", ".join(VARIABLES)
        raise TemplateError(f"Unknown placeholder(s): {', '.join(unknown)}. Allowed: {allowed}.")
    return names


def render(text: str, values: Mapping[str, str], *, html: bool = False) -> str:
    def one(match: re.Match[str]) -> str:
        value = str(values.get(match.group(1), ""))
        return escape(value) if html else value

    return PLACEHOLDER.sub(one, text)


def text_to_html(text: str) -> str:
    """A plain, readable HTML body from a text template: paragraphs and line breaks; the
    placeholders stay as they are (they are escaped when rendered)."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    parts = []
    for block in blocks:
        # Escape the literal text around the placeholders, keep the placeholders.
        pieces = PLACEHOLDER.split(block)
        out = []
        for i, piece in enumerate(pieces):
            out.append(escape(piece) if i % 2 == 0 else "{{ " + piece + " }}")
        parts.append("<p>" + "".join(out).replace("\n", "<br>\n") + "</p>")
    return "\n".join(parts)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render_email(
    subject: str, body_text: str, body_html: str, values: Mapping[str, str]
) -> Rendered:
    html_source = body_html or text_to_html(body_text)
    unsubscribe = values.get("unsubscribe_url", "")
    text = render(body_text, values).rstrip()
    # The supplier's HTML, placeholders filled, made safe to send (our footer is added after).
    html = sanitise_html(render(html_source, values, html=True))
    if unsubscribe:
        text += f"\n\n--\nDon't want these emails? Unsubscribe: {unsubscribe}\n"
        html += (
            f'\n<p style="font-size:12px;color:#555">Don\'t want these emails? '
            f'<a href="{escape(unsubscribe)}">Unsubscribe</a>.</p>'
        )
    return Rendered(
        subject=render(subject, values).replace("\n", " ").strip(), text=text, html=html
    )
