"""Fetching a URL a school lead typed in, carefully: it is a request our server makes on a
user's behalf, so it must not reach inside our network (server-side request forgery).

Only http(s) on the default ports; every address the host resolves to must be a public
one (not loopback, private, link-local, multicast or reserved; tests allow loopback with
TERM_FEED_ALLOW_PRIVATE_HOSTS); redirects are not followed (the lead is told where it
points instead); a timeout; at most TERM_FEED_MAX_BYTES read. (A host that resolves
differently between our check and the connection could still slip through: the fetch is
also limited to GET, a short timeout and a size cap, and nothing of the answer is shown
except what parses as term dates.)"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings


class FetchError(Exception):
    """Why the calendar could not be fetched, in words for the school's lead."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise FetchError(f"The address redirects to {newurl}: subscribe to that address instead.")


def check_url(url: str) -> None:
    """Refuse what we will never fetch; raises FetchError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http"):
        raise FetchError("Give an http:// or https:// address.")
    if not parts.hostname:
        raise FetchError("The address has no host.")
    if parts.username or parts.password:
        raise FetchError("The address may not carry a user name or password.")
    allow_private = settings.TERM_FEED_ALLOW_PRIVATE_HOSTS
    if parts.port not in (None, 80, 443) and not allow_private:
        raise FetchError("Only the standard ports (80, 443) are fetched.")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"No such host: {parts.hostname}.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global and not (allow_private and address.is_loopback):
            raise FetchError(f"{parts.hostname} is not a public address.")


def fetch(url: str) -> bytes:
    check_url(url)
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(
        url.strip(),
        headers={"User-Agent": "PartnershipCRM-term-dates/1", "Accept": "text/calendar, */*"},
    )
    limit = settings.TERM_FEED_MAX_BYTES
    try:
        with opener.open(request, timeout=settings.TERM_FEED_TIMEOUT) as response:
            body = response.read(limit + 1)
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(f"The server answered {exc.code}.") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"Could not fetch it: {reason}.") from None
    if len(body) > limit:
        raise FetchError(f"The calendar is larger than {limit // 1024} KB.")
    return body
