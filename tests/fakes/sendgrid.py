"""A loopback fake of SendGrid's v3 HTTP API, and of its signed Event Webhook.

Tests point the real SDK at it (``SendGridAPIClient(api_key, host=fake.host)``)::

    with FakeSendGrid(api_key="SG.test") as fake:
        fake.script(Reply(429, {"Retry-After": "1"}), Reply(500), Reply(202))
        ...
        assert fake.calls == 3
        assert [d.nudge_id for d in fake.deliveries] == [...]

``POST /v3/mail/send`` checks ``Authorization: Bearer <key>`` (401 otherwise) and validates
the body the way SendGrid documents it (personalizations 1..1000, at most 1000 recipients,
no address twice, valid addresses, a subject, content with text/plain before text/html,
string substitutions of at most 10,000 bytes, string custom_args of at most 10,000 bytes,
no reserved headers), answering 400 with SendGrid's error JSON
(``{"errors": [{"message", "field", "help"}]}``, ``field`` like
``personalizations.3.to.0.email``), else 202 with an ``X-Message-Id``.

Each request takes the next scripted :class:`Reply` (or callable), else ``fake.default``.
A reply can also delay its answer (to provoke client timeouts) or drop the connection
after reading the request; by default the mail is accepted first, as when SendGrid queued
it and the answer was lost.

Every accepted personalization is recorded as a :class:`Delivery` (recipients, subject,
text and html after substitutions, custom_args, headers), so tests can assert that each
email went exactly once.

Given ``webhook_url``, a background thread POSTs event batches back the way SendGrid does,
signed with a generated ECDSA P-256 key (``fake.public_key``: base64 DER, what SendGrid's
settings page shows): ``processed`` then ``delivered`` for each personalization, or
``bounce`` for addresses in ``bounce``. Thread-safe.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
SUBSTITUTIONS_LIMIT = 10_000
CUSTOM_ARGS_LIMIT = 10_000
MAX_BODY_BYTES = 30 * 1024 * 1024
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)
# Close to what SendGrid accepts: local@domain.tld, no spaces or brackets.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."


# --- What tests script and read -------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. status None (or 2xx): behave like SendGrid (validate, then 202
    or 400). Any other status is answered as is, with SendGrid-style error JSON unless a
    body is given, and nothing is accepted."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # dict/list: JSON; str/bytes: as is
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # close the connection without answering
    accept: bool = True  # with delay/drop: queue the mail first (the answer is what is lost)


Script = Reply | Callable[["ReceivedRequest"], Reply | None]


@dataclass(frozen=True)
class ReceivedRequest:
    index: int  # 0-based, in arrival order
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Delivery:
    """One accepted personalization, as the recipient would get it."""

    request_index: int
    message_id: str  # the request's X-Message-Id
    sg_message_id: str  # this recipient's, as in webhook events
    from_: dict[str, str]
    reply_to: dict[str, str] | None
    to: tuple[dict[str, str], ...]
    cc: tuple[dict[str, str], ...]
    bcc: tuple[dict[str, str], ...]
    subject: str
    text: str | None
    html: str | None
    custom_args: dict[str, str]
    headers: dict[str, str]

    @property
    def to_email(self) -> str:
        return self.to[0]["email"]

    @property
    def nudge_id(self) -> int | None:
        value = self.custom_args.get("nudge_id")
        return int(value) if value and value.isdigit() else None


# --- Signing events ---------------------------------------------------------------------------


class EventSigner:
    """An ECDSA P-256 key pair standing in for SendGrid's Signed Event Webhook key."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """Base64 DER (SubjectPublicKeyInfo), the form SendGrid's settings page shows."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def sign(self, payload: str | bytes, timestamp: str) -> str:
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        signature = self._key.sign(timestamp.encode("ascii") + data, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode("ascii")

    def headers(self, payload: str | bytes, timestamp: int | str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {SIGNATURE_HEADER: self.sign(payload, ts), TIMESTAMP_HEADER: ts}


def new_event_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def make_event(
    event: str,
    email: str,
    *,
    nudge_id: int | None = None,
    sg_message_id: str | None = None,
    timestamp: int | None = None,
    sg_event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One event as the Event Webhook posts it: custom args are top-level keys."""
    out: dict[str, Any] = {
        "email": email,
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "event": event,
        "sg_event_id": sg_event_id or new_event_id(),
        "sg_message_id": sg_message_id or f"{new_event_id()}.filter0001.1.0",
        "smtp-id": f"<{new_event_id()}@fake.sendgrid>",
    }
    if nudge_id is not None:
        out["nudge_id"] = str(nudge_id)
    out.update(extra)
    return out


def closed_port() -> int:
    """A local TCP port with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Validation, as SendGrid documents it -----------------------------------------------------


def _error(message: str, field: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


def _valid_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 320 and bool(_EMAIL.match(value))


def _byte_size(mapping: Mapping[str, Any]) -> int:
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in mapping.items())


def validate_mail_send(payload: Any) -> list[dict[str, Any]]:
    """SendGrid's 400 errors for a v3 /mail/send body ([] when it would be accepted)."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    sender = payload.get("from")
    if not isinstance(sender, dict) or not _valid_email(sender.get("email")):
        errors.append(_error("The from email does not contain a valid address.", "from.email"))
    reply_to = payload.get("reply_to")
    if reply_to is not None and (
        not isinstance(reply_to, dict) or not _valid_email(reply_to.get("email"))
    ):
        errors.append(
            _error("The reply_to email does not contain a valid address.", "reply_to.email")
        )
    top_headers = payload.get("headers") or {}
    errors += _header_errors(top_headers, "headers")
    top_args = payload.get("custom_args") or {}
    if not isinstance(top_args, dict):
        errors.append(_error("Invalid type. Expected: object.", "custom_args"))
        top_args = {}

    people = payload.get("personalizations")
    if not isinstance(people, list) or not people:
        errors.append(_error("You must have at least one personalization.", "personalizations"))
        people = []
    elif len(people) > MAX_PERSONALIZATIONS:
        errors.append(
            _error(
                "The personalization block is limited to 1000 personalizations per API "
                f"request. You have provided {len(people)} personalizations. Please consider "
                "splitting this into multiple requests and resending your request.",
                "personalizations",
            )
        )
    seen: set[str] = set()
    total = 0
    has_subject = isinstance(payload.get("subject"), str) and bool(payload["subject"])
    for i, p in enumerate(people):
        where = f"personalizations.{i}"
        if not isinstance(p, dict):
            errors.append(_error("Invalid type. Expected: object.", where))
            continue
        if not p.get("to"):
            errors.append(
                _error("The to parameter is required for all personalization objects.", where)
            )
        for kind in ("to", "cc", "bcc"):
            recipients = p.get(kind) or []
            if not isinstance(recipients, list):
                errors.append(_error("Invalid type. Expected: array.", f"{where}.{kind}"))
                continue
            for j, r in enumerate(recipients):
                total += 1
                address = r.get("email") if isinstance(r, dict) else None
                if not _valid_email(address):
                    errors.append(
                        _error("Does not contain a valid address.", f"{where}.{kind}.{j}.email")
                    )
                    continue
                if address.lower() in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be unique "
                            f"between to, cc, and bcc. We found the first duplicate instance "
                            f"of [{address}] in the personalizations.{i}.{kind} field.",
                            f"{where}.{kind}.{j}.email",
                        )
                    )
                seen.add(address.lower())
        if "subject" in p:
            if not isinstance(p["subject"], str) or not p["subject"]:
                errors.append(_error("The subject must be a non-empty string.", f"{where}.subject"))
        elif not has_subject:
            errors.append(
                _error(
                    "The subject is required. You can get around this requirement if you use "
                    "a template with a subject defined or if every single personalization has "
                    "a subject defined.",
                    "subject",
                )
            )
        subs = p.get("substitutions")
        if subs is not None:
            if not isinstance(subs, dict) or not all(isinstance(v, str) for v in subs.values()):
                errors.append(_error("Substitutions must be strings.", f"{where}.substitutions"))
            elif _byte_size(subs) > SUBSTITUTIONS_LIMIT:
                errors.append(
                    _error(
                        "The total collective size of your substitutions may not exceed "
                        "10,000 bytes per personalization object.",
                        f"{where}.substitutions",
                    )
                )
        args = p.get("custom_args") or {}
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            errors.append(_error("Custom args must be of type string.", f"{where}.custom_args"))
        elif _byte_size({**top_args, **args}) > CUSTOM_ARGS_LIMIT:
            errors.append(
                _error(
                    "The size of your custom_args must not exceed 10,000 bytes.",
                    f"{where}.custom_args",
                )
            )
        errors += _header_errors(p.get("headers") or {}, f"{where}.headers")
    if total > MAX_RECIPIENTS:
        errors.append(
            _error(
                "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
                "personalizations",
            )
        )
    if not payload.get("template_id"):
        errors += _content_errors(payload.get("content"))
    return errors


def _header_errors(headers: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(headers, dict):
        return [_error("Invalid type. Expected: object.", where)]
    errors = []
    for name, value in headers.items():
        if str(name).lower() in RESERVED_HEADERS:
            errors.append(
                _error(
                    f"The following header is reserved and cannot be set: {name}.",
                    f"{where}.{name}",
                )
            )
        elif not isinstance(value, str):
            errors.append(_error("Header values must be strings.", f"{where}.{name}"))
    return errors


def _content_errors(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        return [
            _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        ]
    errors = []
    types = []
    for k, block in enumerate(content):
        if not isinstance(block, dict):
            errors.append(_error("Invalid type. Expected: object.", f"content.{k}"))
            continue
        if not isinstance(block.get("type"), str) or not block["type"]:
            errors.append(_error("The content type cannot be blank.", f"content.{k}.type"))
        if not isinstance(block.get("value"), str) or not block["value"]:
            errors.append(
                _error(
                    "The content value must be a string at least one character in length.",
                    f"content.{k}.value",
                )
            )
        types.append(block.get("type"))
    both = "text/plain" in types and "text/html" in types
    if both and types.index("text/plain") > types.index("text/html"):
        errors.append(
            _error(
                "If present, text/plain and text/html may only be provided in this order: "
                "text/plain, text/html.",
                "content",
            )
        )
    if len(set(map(str, types))) != len(types):
        errors.append(_error("Each content type may only be provided once.", "content"))
    return errors


def _substitute(text: str | None, subs: Mapping[str, str]) -> str | None:
    """SendGrid-style substitution: every tag replaced in one pass (values are not
    searched for further tags)."""
    if text is None or not subs:
        return text
    pattern = re.compile("|".join(re.escape(k) for k in sorted(subs, key=len, reverse=True)))
    return pattern.sub(lambda m: subs[m.group(0)], text)


def _substitute_address(address: dict[str, str] | None, subs: Mapping[str, str]):
    if address is None:
        return None
    return {k: _substitute(v, subs) or "" for k, v in address.items()}


# --- The server -------------------------------------------------------------------------------


class FakeSendGrid:
    def __init__(
        self,
        *,
        api_key: str = "SG.fake-test-key",
        webhook_url: str | None = None,
        bounce: Iterable[str] = (),
        event_delay: float = 0.2,
        signer: EventSigner | None = None,
    ) -> None:
        self.api_key = api_key
        self.webhook_url = webhook_url
        self.bounce = {a.lower() for a in bounce}
        self.event_delay = event_delay
        self.signer = signer or EventSigner()
        self.default: Script = Reply()
        self.requests: list[ReceivedRequest] = []
        self.answers: list[int] = []  # status per request (0: dropped)
        self.deliveries: list[Delivery] = []
        self.webhook_posts: list[tuple[int, list[dict[str, Any]]]] = []  # (status, events)
        self._script: deque[Script] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue[tuple[float, list[dict[str, Any]]] | None] = queue.Queue()
        self._events_pending = 0
        self._events_idle = threading.Condition(self._lock)
        self._event_thread: threading.Thread | None = None
        self._seq = 0

    # -- lifecycle
    def start(self) -> FakeSendGrid:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a delayed handler must not hold up stop()
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._event_thread = threading.Thread(target=self._post_events_loop, daemon=True)
        self._event_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._event_thread is not None:
            self._events.put(None)
            self._event_thread.join(timeout=5)
            self._event_thread = None

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """What to pass as SendGridAPIClient(host=...) / SENDGRID_API_HOST."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_key(self) -> str:
        """For SENDGRID_WEBHOOK_PUBLIC_KEY."""
        return self.signer.public_key

    # -- scripting and reading
    def script(self, *replies: Script | int) -> None:
        """Queue answers for the next requests: Reply objects, bare statuses, or callables
        (given the ReceivedRequest; returning None means "behave normally")."""
        with self._lock:
            for r in replies:
                self._script.append(Reply(r) if isinstance(r, int) else r)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def delivered_to(self, address: str) -> list[Delivery]:
        with self._lock:
            return [
                d
                for d in self.deliveries
                if any(r["email"].lower() == address.lower() for r in d.to)
            ]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.answers.clear()
            self.deliveries.clear()
            self.webhook_posts.clear()
            self._script.clear()

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        """Block until every scheduled event batch has been posted (True) or timeout."""
        deadline = time.monotonic() + timeout
        with self._events_idle:
            while self._events_pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._events_idle.wait(left)
        return True

    # -- events
    def post_events(self, events: list[dict[str, Any]], *, delay: float = 0.0) -> None:
        """Schedule a signed POST of these events to webhook_url (from the event thread)."""
        if not self.webhook_url:
            raise RuntimeError("FakeSendGrid(webhook_url=...) is needed to post events")
        with self._lock:
            self._events_pending += 1
        self._events.put((time.monotonic() + delay, events))

    def _post_events_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            due, events = item
            try:
                wait = due - time.monotonic()
                if wait > 0 and self._stopping.wait(wait):
                    return
                self._deliver_events(events)
            finally:
                with self._events_idle:
                    self._events_pending -= 1
                    self._events_idle.notify_all()

    def _deliver_events(self, events: list[dict[str, Any]]) -> None:
        assert self.webhook_url
        body = json.dumps(events).encode("utf-8")
        status = 0
        # SendGrid retries a failed POST; a few quick tries are enough here.
        for attempt in range(3):
            request = urllib.request.Request(
                self.webhook_url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "SendGrid Event API",
                    **self.signer.headers(body),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            if 200 <= status < 300 or self._stopping.wait(0.2 * (attempt + 1)):
                break
        with self._lock:
            self.webhook_posts.append((status, events))

    def _schedule_events(self, deliveries: list[Delivery]) -> None:
        if not self.webhook_url or not deliveries:
            return
        now = int(time.time())
        processed, outcome = [], []
        for d in deliveries:
            for r in (*d.to, *d.cc, *d.bcc):
                common = {"sg_message_id": d.sg_message_id, **d.custom_args}
                processed.append(make_event("processed", r["email"], timestamp=now, **common))
                if r["email"].lower() in self.bounce:
                    outcome.append(
                        make_event(
                            "bounce",
                            r["email"],
                            timestamp=now,
                            type="bounce",
                            status="5.1.1",
                            reason=BOUNCE_REASON,
                            bounce_classification="Invalid Address",
                            **common,
                        )
                    )
                else:
                    outcome.append(
                        make_event(
                            "delivered", r["email"], timestamp=now, response="250 OK", **common
                        )
                    )
        self.post_events(processed, delay=self.event_delay)
        self.post_events(outcome, delay=self.event_delay * 2)

    # -- handling one request (called from the handler thread)
    def _next_reply(self, received: ReceivedRequest) -> Reply:
        with self._lock:
            script = self._script.popleft() if self._script else self.default
        reply = script(received) if callable(script) else script
        return reply if reply is not None else Reply()

    def _handle(self, received: ReceivedRequest) -> tuple[Reply, int, dict[str, str], bytes]:
        reply = self._next_reply(received)
        if received.method != "POST" or received.path.split("?")[0] != "/v3/mail/send":
            return reply, 404, {}, _errors_body([_error("not found")])
        if reply.status is not None and not 200 <= reply.status < 300:
            return reply, reply.status, dict(reply.headers), _body_for(reply)
        expected = f"Bearer {self.api_key}"
        if received.headers.get("authorization") != expected:
            message = "The provided authorization grant is invalid, expired, or revoked"
            return reply, 401, {}, _errors_body([_error(message)])
        if len(received.body) > MAX_BODY_BYTES:
            return reply, 413, {}, _errors_body([_error("Payload Too Large")])
        payload = received.json
        if payload is None:
            return reply, 400, {}, _errors_body([_error("Bad Request")])
        errors = validate_mail_send(payload)
        if errors:
            return reply, 400, {}, _errors_body(errors)
        message_id = new_event_id()
        if reply.accept or not (reply.drop or reply.delay):
            deliveries = self._accept(received.index, message_id, payload)
            self._schedule_events(deliveries)
        headers = {"X-Message-Id": message_id, **reply.headers}
        return reply, reply.status or 202, headers, b""

    def _accept(self, index: int, message_id: str, payload: dict[str, Any]) -> list[Delivery]:
        content = {b["type"]: b["value"] for b in payload.get("content", [])}
        out = []
        with self._lock:
            for p in payload["personalizations"]:
                self._seq += 1
                subs = p.get("substitutions") or {}
                out.append(
                    Delivery(
                        request_index=index,
                        message_id=message_id,
                        sg_message_id=f"{message_id}.filter0001.{self._seq}.0",
                        from_=dict(p.get("from") or payload["from"]),
                        # SendGrid applies substitutions to reply_to too (its
                        # personalizations documentation): a per-recipient Reply-To.
                        reply_to=_substitute_address(payload.get("reply_to"), subs),
                        to=tuple(p.get("to") or ()),
                        cc=tuple(p.get("cc") or ()),
                        bcc=tuple(p.get("bcc") or ()),
                        subject=_substitute(p.get("subject", payload.get("subject", "")), subs)
                        or "",
                        text=_substitute(content.get("text/plain"), subs),
                        html=_substitute(content.get("text/html"), subs),
                        custom_args={
                            **(payload.get("custom_args") or {}),
                            **(p.get("custom_args") or {}),
                        },
                        headers={**(payload.get("headers") or {}), **(p.get("headers") or {})},
                    )
                )
            self.deliveries.extend(out)
        return out


def _errors_body(errors: list[dict[str, Any]]) -> bytes:
    return json.dumps({"errors": errors}).encode("utf-8")


def _body_for(reply: Reply) -> bytes:
    if reply.body is None:
        messages = {
            401: "The provided authorization grant is invalid, expired, or revoked",
            403: "The from address does not match a verified Sender Identity.",
            413: "Payload Too Large",
            429: "too many requests",
        }
        message = messages.get(reply.status or 0, "Internal server error")
        return _errors_body([_error(message)])
    if isinstance(reply.body, bytes):
        return reply.body
    if isinstance(reply.body, str):
        return reply.body.encode("utf-8")
    return json.dumps(reply.body).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeSendGrid
    protocol_version = "HTTP/1.1"
    server_version = "FakeSendGrid/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        fake = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with fake._lock:
            index = len(fake.requests)
            received = ReceivedRequest(
                index=index,
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            fake.requests.append(received)
            fake.answers.append(-1)
        reply, status, headers, out = fake._handle(received)
        if reply.delay and fake._stopping.wait(reply.delay):
            return
        if reply.drop:
            # Read the whole request, then hang up without a word.
            with fake._lock:
                fake.answers[index] = 0
            self.close_connection = True
            return
        with fake._lock:
            fake.answers[index] = status
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)
        self.close_connection = True

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()
