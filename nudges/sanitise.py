"""The one place a supplier's HTML is made safe to send (nh3, the Rust ``ammonia``).

``sanitise_html(html)`` is called by ``templating.render_email`` on the rendered body,
so everything sent, stored as ``rendered_html`` and previewed went through it. It keeps
an email-sized allow-list of tags and attributes, links only to http, https and mailto
(with ``rel="noopener noreferrer"``), images only over http(s), drops ``<script>`` and
``<style>`` with their content and every ``style`` and ``on*`` attribute, and removes
tracking pixels: an image 0 or 1 pixel wide or high, and (when ``NUDGE_IMAGE_HOSTS``
lists the sender's own image hosts) any image from another host. With the setting empty
(the default) ordinary remote images such as a logo are kept.

``removed(html)`` says, in words for the template's author, what sanitising drops.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3
from django.conf import settings

TAGS = {
    "p", "br", "a", "strong", "em", "b", "i", "u", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "blockquote", "img", "span", "div",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "hr",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
}
DROPPED_WITH_CONTENT = {"script", "style"}
LINK_SCHEMES = {"http", "https", "mailto"}
IMAGE_SCHEMES = {"http", "https"}
PIXEL_SIZES = {"0", "1", "0px", "1px"}


def image_hosts() -> set[str]:
    """The sender's own image hosts (settings.NUDGE_IMAGE_HOSTS); empty: any host."""
    return {h.lower() for h in getattr(settings, "NUDGE_IMAGE_HOSTS", ()) if h}


def _scheme_host(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "", ""
    return parts.scheme.lower(), (parts.hostname or "").lower()


def _image_allowed(src: str, hosts: set[str]) -> bool:
    scheme, host = _scheme_host(src)
    return scheme in IMAGE_SCHEMES and bool(host) and (not hosts or host in hosts)


def _attribute_filter(hosts: set[str]):  # type: ignore[no-untyped-def]
    def keep(tag: str, attr: str, value: str) -> str | None:
        if tag == "a" and attr == "href":
            scheme, _ = _scheme_host(value)
            return value if scheme in LINK_SCHEMES else None
        if tag == "img" and attr == "src":
            return value if _image_allowed(value, hosts) else None
        if tag == "img" and attr in ("width", "height") and value.strip().lower() in PIXEL_SIZES:
            return "1"  # marked: the image is removed below (a tracking pixel)
        return value

    return keep


class _Images(HTMLParser):
    """The start tags (as written) of the images to remove: no source left, or a pixel."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.drop: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img":
            return
        a = dict(attrs)
        pixel = any((a.get(k) or "").strip().lower() in PIXEL_SIZES for k in ("width", "height"))
        if pixel or not a.get("src"):
            self.drop.append(self.get_starttag_text() or "")

    handle_startendtag = handle_starttag


def sanitise_html(html: str) -> str:
    """``html`` with only what is safe and fit to send by email."""
    if not html:
        return ""
    clean = nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=_attribute_filter(image_hosts()),
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    if "<img" not in clean:
        return clean
    images = _Images()
    images.feed(clean)
    images.close()
    # nh3's output is well formed and quotes attributes with '"' escaped inside values,
    # so an image's start tag as written appears nowhere else as markup.
    for tag in images.drop:
        if tag:
            clean = clean.replace(tag, "")
    return clean


class _Survey(HTMLParser):
    """What sanitising will drop from an author's HTML, in words."""

    def __init__(self, hosts: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.hosts = hosts
        self.found: dict[str, None] = {}

    def note(self, text: str) -> None:
        self.found.setdefault(text, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.note(f"<{tag}> elements and their content")
        elif tag not in TAGS:
            self.note(f"<{tag}> tags (their text is kept)")
        a = {k: (v or "") for k, v in attrs}
        for name in a:
            if name.startswith("on"):
                self.note("event handler attributes (on...)")
            elif name == "style":
                self.note("style attributes")
        if tag == "a" and "href" in a and _scheme_host(a["href"])[0] not in LINK_SCHEMES:
            self.note("links other than http, https and mailto (e.g. javascript:)")
        if tag == "img":
            if any(a.get(k, "").strip().lower() in PIXEL_SIZES for k in ("width", "height")):
                self.note("tracking pixels (images 0 or 1 pixel in size)")
            elif not _image_allowed(a.get("src", ""), self.hosts):
                self.note("images not served over http(s) from an allowed host (e.g. data:)")

    handle_startendtag = handle_starttag


def removed(html: str) -> list[str]:
    """What ``sanitise_html`` removes from ``html``, for the author (empty if nothing)."""
    if not html:
        return []
    survey = _Survey(image_hosts())
    survey.feed(html)
    survey.close()
    return list(survey.found)
