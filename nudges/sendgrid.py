"""The one narrow door to SendGrid's v3 Mail Send API, for batches of nudges.

The official SDK (``sendgrid`` 6.12.5) only builds the HTTP request: it has no default
timeout, no retries and no idempotency (see docs/ECOSYSTEM notes), so this module adds them:

* a timeout on every request (``sg.client.timeout``);
* retries inside ``send()`` only where SendGrid certainly did not accept the mail: 429,
  5xx, and a request that never fully left this machine (connection refused, DNS, connect
  timeout). Exponential backoff with jitter, honouring ``Retry-After`` / ``X-RateLimit-Reset``;
* never a retry once the request was sent and the answer was lost (read timeout, dropped
  connection): SendGrid may have queued it, so the outcome is ``unknown`` and the dispatcher
  settles it from the event webhook (``processed``/``delivered`` carry ``nudge_id``) before
  any resend.

As few requests as SendGrid allows: one request carries up to 1000 emails, each its own
personalization. Mail Send has one ``content`` per request, so the bodies travel as
per-personalization substitutions and the content is just the two substitution tags. An
email that cannot travel that way (over SendGrid's 10,000-byte substitution limit, or whose
text contains our tags) goes in a request of its own with its content inline.

Nothing here touches the database: the dispatcher owns the Nudge rows.
"""

from __future__ import annotations

import abc
import contextlib
import email.utils
import http.client
import json
import logging
import random
import re
import time
import urllib.error
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

log = logging.getLogger(__name__)

# SendGrid's documented Mail Send limits.
MAX_PERSONALIZATIONS = 1000  # personalizations per request, and recipients per request
SUBSTITUTIONS_LIMIT = 10_000  # bytes of substitutions per personalization

# Substitution tags for the two bodies. SendGrid substitutes them in the subject, reply-to
# and content, so they must never occur in real text: an email whose subject or bodies
# contain one is sent alone with its content inline (see _needs_own_request).
TEXT_TAG = "[%crm_nudge_text%]"
HTML_TAG = "[%crm_nudge_html%]"
# A batch has one reply_to; SendGrid applies each personalization's substitutions to it, so
# a tag that is itself a valid address becomes each recipient's own reply address.
REPLY_TAG = "crm-reply-tag@reply-tag.invalid"

BASE_BACKOFF = 0.5  # seconds before the first retry; doubles each attempt
# How many extra requests send() may spend splitting a rejected batch in halves to find the
# email SendGrid objects to, when its 400 does not say which one.
MAX_SPLIT_REQUESTS = 64

_PERSONALIZATION_FIELD = re.compile(r"^personalizations[.\[](\d+)")
# Request-level fields that are the same for every email of a batch (one From per batch):
# splitting the batch cannot help.
_SENDER_FIELDS = ("from", "reply_to")


# --- The interface the dispatcher uses ---------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """One From per batch: the account manager's name, via our sending address."""

    email: str
    name: str
    reply_to_email: str = ""
    reply_to_name: str = ""


@dataclass(frozen=True)
class OutgoingEmail:
    """One nudge, rendered: becomes one personalization."""

    nudge_id: int
    to_email: str
    to_name: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str
    # This email's own Reply-To (a signed reply+token address), else the sender's.
    reply_to: str = ""


Status = Literal["accepted", "failed", "retry", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """What became of one email.

    accepted: SendGrid queued it (202); message_id is the request's X-Message-Id.
    failed:   SendGrid said no for good (400/401/403/413 and other 4xx); error says why.
    retry:    certainly not accepted (429, 5xx, could not connect) after our own retries;
              safe to send again, not before retry_after seconds (when known).
    unknown:  the request was sent but the answer was lost (timeout, dropped connection):
              it may have been queued. Settle it from the webhook's events before any resend.
    """

    status: Status
    error: str = ""
    message_id: str = ""
    retry_after: float | None = None


@dataclass
class SendReport:
    outcomes: dict[int, Outcome]  # by nudge_id, one per email given
    calls: int  # HTTP requests made, retries included


class RequestLog:
    """Told about every request a sender makes, so that only the request in flight is in
    doubt after a crash. ``started`` is called (and must have committed) before the request
    goes, and returns the emails that may still go in it (a claim another worker took
    over is left out); ``finished`` is called with the request's end. This one records
    nothing."""

    def started(self, emails: list[OutgoingEmail]) -> list[OutgoingEmail]:
        return emails

    def finished(self, emails: list[OutgoingEmail], result: PostResult) -> None:
        return None


NO_LOG = RequestLog()


class BatchSender(abc.ABC):
    """Sends a batch of nudges from one sender; never raises for a delivery problem: every
    email gets an Outcome, except one ``request_log.started`` left out (it was not sent). (A
    programming error, e.g. a repeated nudge_id, still raises.)"""

    @abc.abstractmethod
    def send(
        self, sender: Sender, emails: list[OutgoingEmail], request_log: RequestLog = NO_LOG
    ) -> SendReport: ...


def default_sender() -> BatchSender:
    """SendGrid when SENDGRID_API_KEY is set, else the embedded outbox folder."""
    from django.conf import settings

    if settings.SENDGRID_API_KEY:
        return SendGridBatchSender(
            api_key=settings.SENDGRID_API_KEY,
            host=settings.SENDGRID_API_HOST,
            timeout=float(settings.SENDGRID_TIMEOUT),
        )
    from .outbox import OutboxBatchSender

    return OutboxBatchSender()


# --- One HTTP request, with the retry policy ----------------------------------------------


@dataclass(frozen=True)
class PostResult:
    """The end of one logical request (after any retries)."""

    kind: Literal["accepted", "rejected", "retry", "unknown"]
    status: int | None = None
    message_id: str = ""
    error: str = ""
    errors: tuple[dict[str, Any], ...] = ()  # SendGrid's {"message", "field", "help"} list
    retry_after: float | None = None


class SendGridTransport:
    """Configuration of the client and the retry policy; shareable between threads. Each
    batch (or each email backend connection) opens its own session()."""

    def __init__(
        self,
        *,
        api_key: str,
        host: str,
        timeout: float,
        max_attempts: int = 4,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            raise ValueError("a SendGrid API key is required")
        if timeout is None or timeout <= 0:
            # The SDK's default is no timeout at all: a hung connection would hold a worker
            # (and its claimed nudges) forever.
            raise ValueError("a positive timeout is required")
        if not host.startswith(("https://", "http://")):
            raise ValueError(f"SendGrid host must be an http(s) URL, not {host!r}")
        self.api_key = api_key
        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.max_attempts = max(1, int(max_attempts))
        self.max_backoff = float(max_backoff)
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock

    def session(self) -> TransportSession:
        return TransportSession(self)


class TransportSession:
    """One SDK client and what this run has learnt about SendGrid: a rate limit to respect
    before the next request, and whether it is failing (then later requests get one try)."""

    def __init__(self, transport: SendGridTransport) -> None:
        self.t = transport
        self.calls = 0
        sg = SendGridAPIClient(api_key=transport.api_key, host=transport.host)
        # Child clients (client.mail.send) copy the timeout when they are built.
        sg.client.timeout = transport.timeout
        self._client = sg.client
        self._resume_at = 0.0  # monotonic time before which SendGrid asked us not to call
        self._waited_for = 0.0  # the _resume_at we have already slept until
        self._degraded = False  # a request already used up its retries on 5xx/refusals
        self._rng = random.Random()

    def post(self, payload: Mapping[str, Any]) -> PostResult:
        attempts = 1 if self._degraded else self.t.max_attempts
        attempt = 0
        while True:
            # A rate limit learnt from an earlier request of this session.
            pending = self._resume_at - self.t.clock()
            if pending > 0 and self._resume_at > self._waited_for:
                if pending > self.t.max_backoff:
                    return PostResult(
                        "retry", 429, error="SendGrid rate limit in force", retry_after=pending
                    )
                self.t.sleep(pending)
                self._waited_for = self._resume_at
            attempt += 1
            self.calls += 1
            try:
                response = self._client.mail.send.post(request_body=dict(payload))
            except HTTPError as exc:
                status = int(exc.status_code)
                error = f"SendGrid answered {status}: {_error_text(exc.body)}"
                if status != 429 and not 500 <= status <= 599:
                    return PostResult(
                        "rejected", status, error=error, errors=tuple(_error_list(exc.body))
                    )
                server_wait = self._server_wait(exc.headers)
                delay = server_wait if server_wait else self._backoff(attempt)
                if status == 429 and server_wait:
                    # Applies to every request of this session, not just this one.
                    self._resume_at = max(self._resume_at, self.t.clock() + server_wait)
                if attempt >= attempts or delay > self.t.max_backoff:
                    if status != 429:
                        self._degraded = True
                    return PostResult("retry", status, error=error, retry_after=delay)
            except urllib.error.URLError as exc:
                # urllib raises URLError only while connecting or writing the request
                # (AbstractHTTPHandler.do_open wraps h.request's OSError): SendGrid never
                # received a complete request, so it cannot have queued it. Safe to retry.
                error = f"could not reach SendGrid: {exc.reason}"
                delay = self._backoff(attempt)
                if attempt >= attempts:
                    self._degraded = True
                    return PostResult("retry", None, error=error, retry_after=delay)
            except (OSError, http.client.HTTPException) as exc:
                # Sent, then no (complete) answer: read timeout, reset, remote closed. It may
                # have been queued; a retry could send every email twice.
                kind = "timed out" if isinstance(exc, TimeoutError) else "connection lost"
                return PostResult(
                    "unknown",
                    None,
                    error=f"{kind} after the request was sent ({type(exc).__name__}: {exc})",
                )
            else:
                status = int(response.status_code)
                if 200 <= status < 300:
                    return PostResult(
                        "accepted", status, message_id=_header(response.headers, "X-Message-Id")
                    )
                return PostResult("rejected", status, error=f"SendGrid answered {status}")
            log.info("SendGrid: %s; retrying in %.1f s (attempt %d)", error, delay, attempt)
            self._resume_at = max(self._resume_at, self.t.clock() + delay)
            self.t.sleep(delay)
            self._waited_for = self._resume_at

    def _backoff(self, attempt: int) -> float:
        """Exponential, with "equal jitter" so that workers that failed together do not
        retry together."""
        ceiling = min(self.t.max_backoff, BASE_BACKOFF * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _server_wait(self, headers: Any) -> float | None:
        """Seconds SendGrid asked us to wait: Retry-After (seconds or an HTTP date) or
        X-RateLimit-Reset (epoch seconds), whichever is later."""
        waits = []
        retry_after = _header(headers, "Retry-After")
        if retry_after:
            try:
                waits.append(float(retry_after))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    waits.append(when.timestamp() - self.t.wall_clock())
                except (TypeError, ValueError, IndexError, OverflowError):
                    pass
        reset = _header(headers, "X-RateLimit-Reset")
        if reset:
            with contextlib.suppress(ValueError):
                waits.append(float(reset) - self.t.wall_clock())
        if not waits:
            return None
        return max(0.0, max(waits))


def _header(headers: Any, name: str) -> str:
    if headers is None:
        return ""
    try:
        value = headers.get(name)
    except AttributeError:
        return ""
    return str(value).strip() if value is not None else ""


def _error_list(body: Any) -> list[dict[str, Any]]:
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        errors = data.get("errors", [])
        return [e for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        return []


def _error_text(body: Any) -> str:
    errors = _error_list(body)
    if errors:
        return "; ".join(
            f"{e.get('message', '')}" + (f" ({e['field']})" if e.get("field") else "")
            for e in errors
        )[:1000]
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body or "")[:300]


# --- Batches of nudges ----------------------------------------------------------------------


@dataclass
class _Request:
    emails: list[OutgoingEmail]
    inline: bool  # content inline (exactly one email) instead of substitutions


@dataclass
class _Ledger:
    """Outcomes collected during send(); retry_after is kept as a deadline so that it is
    still right when send() returns, after the batch's other requests."""

    clock: Callable[[], float]
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    retry_deadlines: dict[int, float] = field(default_factory=dict)

    def set(self, emails: list[OutgoingEmail], outcome: Outcome) -> None:
        for e in emails:
            self.outcomes[e.nudge_id] = outcome
            if outcome.retry_after is not None:
                self.retry_deadlines[e.nudge_id] = self.clock() + outcome.retry_after

    def report(self, calls: int) -> SendReport:
        now = self.clock()
        for nudge_id, deadline in self.retry_deadlines.items():
            o = self.outcomes[nudge_id]
            self.outcomes[nudge_id] = Outcome(
                o.status, o.error, o.message_id, round(max(0.0, deadline - now), 3)
            )
        return SendReport(outcomes=self.outcomes, calls=calls)


class SendGridBatchSender(BatchSender):
    def __init__(
        self,
        *,
        api_key: str,
        host: str,
        timeout: float,
        max_attempts: int = 4,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_split_requests: int = MAX_SPLIT_REQUESTS,
    ) -> None:
        self.transport = SendGridTransport(
            api_key=api_key,
            host=host,
            timeout=timeout,
            max_attempts=max_attempts,
            max_backoff=max_backoff,
            sleep=sleep,
            clock=clock,
        )
        self.clock = clock
        self.max_split_requests = max_split_requests

    def send(
        self, sender: Sender, emails: list[OutgoingEmail], request_log: RequestLog = NO_LOG
    ) -> SendReport:
        ids = [e.nudge_id for e in emails]
        if len(set(ids)) != len(ids):
            raise ValueError("each nudge may appear only once in a batch")
        ledger = _Ledger(self.clock)
        if not emails:
            return ledger.report(0)
        queue = deque(self._plan(emails, ledger))
        if not queue:
            return ledger.report(0)
        session = self.transport.session()
        splits_left = self.max_split_requests
        while queue:
            request = queue.popleft()
            going = request_log.started(request.emails)
            if not going:
                continue
            if len(going) != len(request.emails):
                request = _Request(going, request.inline)
            result = session.post(self._payload(sender, request))
            request_log.finished(request.emails, result)
            if result.kind == "accepted":
                ledger.set(request.emails, Outcome("accepted", message_id=result.message_id))
            elif result.kind == "retry":
                ledger.set(
                    request.emails,
                    Outcome("retry", error=result.error, retry_after=result.retry_after),
                )
            elif result.kind == "unknown":
                ledger.set(request.emails, Outcome("unknown", error=result.error))
            else:
                action, rest = self._rejected(request, result, ledger)
                if action == "resend":
                    queue.appendleft(_Request(rest, request.inline))
                elif action == "split":
                    # SendGrid did not say which email it objects to: halve and try each
                    # half, so that one bad address does not fail a thousand good ones.
                    if splits_left >= 2:
                        splits_left -= 2
                        half = len(rest) // 2
                        queue.appendleft(_Request(rest[half:], request.inline))
                        queue.appendleft(_Request(rest[:half], request.inline))
                    else:
                        # Out of budget: these were not accepted, and may well be fine.
                        ledger.set(
                            rest,
                            Outcome(
                                "retry",
                                error=f"{result.error} (could not tell which email of the "
                                "batch SendGrid objected to; not sent)",
                            ),
                        )
        report = ledger.report(session.calls)
        log.info(
            "SendGrid batch of %d from %s: %d request(s), %s",
            len(emails),
            sender.email,
            report.calls,
            _summary(report.outcomes),
        )
        return report

    @staticmethod
    def _rejected(
        request: _Request, result: PostResult, ledger: _Ledger
    ) -> tuple[Literal["done", "resend", "split"], list[OutgoingEmail]]:
        """Settle what a rejection says. "resend": some emails were failed, send the rest
        again; "split": cannot tell which email is at fault; "done": all settled."""
        if result.status == 400:
            # A 400 usually names the personalization at fault: "personalizations.3.to.0.email".
            named: dict[int, list[str]] = {}
            sender_fault = []
            for err in result.errors:
                fld = str(err.get("field") or "")
                match = _PERSONALIZATION_FIELD.match(fld)
                if match and int(match.group(1)) < len(request.emails):
                    named.setdefault(int(match.group(1)), []).append(
                        f"{err.get('message', '')} ({fld})"
                    )
                elif fld.startswith(_SENDER_FIELDS):
                    sender_fault.append(f"{err.get('message', '')} ({fld})")
            if named:
                for index, messages in named.items():
                    ledger.set(
                        [request.emails[index]],
                        Outcome("failed", error="SendGrid answered 400: " + "; ".join(messages)),
                    )
                rest = [e for i, e in enumerate(request.emails) if i not in named]
                return ("resend", rest) if rest else ("done", [])
            if sender_fault:
                # Every email of the batch has this From: splitting cannot help.
                ledger.set(
                    request.emails,
                    Outcome("failed", error="SendGrid answered 400: " + "; ".join(sender_fault)),
                )
                return "done", []
        if result.status in (400, 413) and len(request.emails) > 1:
            return "split", request.emails
        ledger.set(request.emails, Outcome("failed", error=result.error))
        return "done", []

    @staticmethod
    def _plan(emails: list[OutgoingEmail], ledger: _Ledger) -> list[_Request]:
        """Group the emails into as few requests as SendGrid allows: at most 1000 each, and
        no address twice in one request (SendGrid rejects a repeated address)."""
        batches: list[tuple[list[OutgoingEmail], set[str]]] = []
        alone: list[_Request] = []
        for e in emails:
            problem = _local_problem(e)
            if problem:
                ledger.set([e], Outcome("failed", error=problem))
                continue
            if _needs_own_request(e):
                alone.append(_Request([e], inline=True))
                continue
            address = e.to_email.strip().lower()
            for batch, seen in batches:
                if len(batch) < MAX_PERSONALIZATIONS and address not in seen:
                    batch.append(e)
                    seen.add(address)
                    break
            else:
                batches.append(([e], {address}))
        return [_Request(batch, inline=False) for batch, _ in batches] + alone

    @staticmethod
    def _payload(sender: Sender, request: _Request) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "personalizations": [_personalization(e, request.inline) for e in request.emails],
            "from": _address(sender.email, sender.name),
        }
        if request.inline and request.emails[0].reply_to:
            payload["reply_to"] = _address(request.emails[0].reply_to, sender.reply_to_name)
        elif not request.inline and any(e.reply_to for e in request.emails):
            payload["reply_to"] = _address(REPLY_TAG, sender.reply_to_name)
            for p in payload["personalizations"]:
                # An email of the batch without its own address replies to the sender's.
                p["substitutions"].setdefault(REPLY_TAG, sender.reply_to_email or sender.email)
        elif sender.reply_to_email:
            payload["reply_to"] = _address(sender.reply_to_email, sender.reply_to_name)
        if request.inline:
            e = request.emails[0]
            payload["content"] = [
                {"type": kind, "value": value}
                for kind, value in (("text/plain", e.text), ("text/html", e.html))
                if value
            ]
        else:
            # text/plain must come before text/html.
            payload["content"] = [
                {"type": "text/plain", "value": TEXT_TAG},
                {"type": "text/html", "value": HTML_TAG},
            ]
        return payload


def _address(email_address: str, name: str) -> dict[str, str]:
    out = {"email": email_address.strip()}
    if name and name.strip():
        out["name"] = " ".join(name.split())  # no line breaks in a header
    return out


def _personalization(e: OutgoingEmail, inline: bool) -> dict[str, Any]:
    p: dict[str, Any] = {
        "to": [_address(e.to_email, e.to_name)],
        "subject": e.subject,
        # Comes back on every webhook event for this email: how events find their nudge.
        "custom_args": {"nudge_id": str(e.nudge_id)},
    }
    if e.unsubscribe_url:
        # RFC 8058 one-click unsubscribe: mail clients POST to the URL.
        p["headers"] = {
            "List-Unsubscribe": f"<{e.unsubscribe_url.strip()}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    if not inline:
        p["substitutions"] = _substitutions(e)
    return p


def _substitutions(e: OutgoingEmail) -> dict[str, str]:
    subs = {TEXT_TAG: e.text, HTML_TAG: e.html}
    if e.reply_to:
        subs[REPLY_TAG] = e.reply_to
    return subs


def substitutions_size(e: OutgoingEmail) -> int:
    """Bytes of the email's substitutions, counted as the JSON SendGrid receives (escapes
    included): an overestimate of any byte count SendGrid might use, so never over."""
    return len(json.dumps(_substitutions(e), ensure_ascii=False).encode("utf-8"))


def _needs_own_request(e: OutgoingEmail) -> bool:
    if not e.text or not e.html:
        return True  # the batch content always has both parts
    tags = (TEXT_TAG, HTML_TAG, REPLY_TAG)
    if any(tag in s for tag in tags for s in (e.subject, e.text, e.html)):
        return True
    return substitutions_size(e) > SUBSTITUTIONS_LIMIT


def _local_problem(e: OutgoingEmail) -> str:
    """What SendGrid would certainly refuse, found without spending a request."""
    if not e.to_email.strip() or "@" not in e.to_email:
        return "no valid recipient address"
    if not e.subject.strip():
        return "empty subject"
    if not e.text and not e.html:
        return "empty body"
    return ""


def _summary(outcomes: Mapping[int, Outcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[o.status] = counts.get(o.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
